#include "mpi_launch.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "mpi_cmds.h"

int nu_mpi_launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

nu_mpi_quiet nu_mpi_quiet_begin(int rank)
{
    nu_mpi_quiet q = {-1, -1, -1};
    if (rank != 0 && (q.null = open("/dev/null", O_WRONLY)) >= 0) {
        fflush(stdout);
        fflush(stderr);
        q.saved_out = dup(1);
        q.saved_err = dup(2);
        dup2(q.null, 1);
        dup2(q.null, 2);
    }
    return q;
}

void nu_mpi_quiet_end(nu_mpi_quiet *q)
{
    if (q->null < 0)
        return;
    fflush(stdout);
    fflush(stderr);
    dup2(q->saved_out, 1);
    dup2(q->saved_err, 2);
    close(q->saved_out);
    close(q->saved_err);
    close(q->null);
    q->null = -1;
}

int nu_mpi_parse(MPI_Comm comm, const char *cmd, const char *help, const char *input,
                 const char **path, int argc, char **argv, nu_cli_retrieval_opts *o)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    nu_mpi_quiet q = nu_mpi_quiet_begin(rank);
    int r = nu_cli_parse_retrieval(cmd, help, input, path, argc, argv, o);
    nu_mpi_quiet_end(&q);
    return r;
}

int nu_mpi_main(int argc, char **argv)
{
#ifdef NU_HAVE_SERVE
    int serve = !strcmp(argv[0], "serve");
#else
    int serve = 0;
#endif
    int provided = 0;
    if (serve) {
        /* The service's signals go to rank 0's sigwait; the other ranks
         * ignore them and stop when rank 0 says so.  Blocked before
         * MPI_Init, so that MPI's own threads inherit the mask. */
        sigset_t sigs;
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGHUP);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    }
    /* The service's workers call MPI (one at a time): SERIALIZED. */
    if ((serve ? MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided)
               : MPI_Init(NULL, NULL)) != MPI_SUCCESS) {
        fprintf(stderr, "nextuser: MPI_Init failed\n");
        return NU_EXIT_FAIL;
    }
    int rank, size, rc;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (!strcmp(argv[0], "search"))
        rc = nu_mpi_cmd_search(MPI_COMM_WORLD, argc, argv);
    else if (!strcmp(argv[0], "retrieve"))
        rc = nu_mpi_cmd_retrieve(MPI_COMM_WORLD, argc, argv);
    else if (!strcmp(argv[0], "train"))
        rc = nu_mpi_cmd_train(MPI_COMM_WORLD, argc, argv);
#ifdef NU_HAVE_SERVE
    else if (serve)
        rc = nu_mpi_cmd_serve(MPI_COMM_WORLD, argc, argv);
#endif
    else if (size == 1)
        rc = nu_cli_run_command(argc, argv);
    else {
        if (rank == 0)
            fprintf(stderr, "nextuser %s: only search, retrieve, serve and train run on several MPI ranks "
                            "(this job has %d); run it without mpirun\n", argv[0], size);
        rc = NU_EXIT_USAGE;
    }
    MPI_Finalize();
    return rc;
}
