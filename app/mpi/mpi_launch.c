#include "mpi_launch.h"

#include <fcntl.h>
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

int nu_mpi_parse(MPI_Comm comm, const char *cmd, const char *help, const char *input,
                 const char **path, int argc, char **argv, nu_cli_retrieval_opts *o)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    int saved_out = -1, saved_err = -1, null = -1;
    if (rank != 0 && (null = open("/dev/null", O_WRONLY)) >= 0) {
        fflush(stdout);
        fflush(stderr);
        saved_out = dup(1);
        saved_err = dup(2);
        dup2(null, 1);
        dup2(null, 2);
    }
    int r = nu_cli_parse_retrieval(cmd, help, input, path, argc, argv, o);
    if (null >= 0) {
        fflush(stdout);
        fflush(stderr);
        dup2(saved_out, 1);
        dup2(saved_err, 2);
        close(saved_out);
        close(saved_err);
        close(null);
    }
    return r;
}

int nu_mpi_main(int argc, char **argv)
{
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) {
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
    else if (size == 1)
        rc = nu_cli_run_command(argc, argv);
    else {
        if (rank == 0)
            fprintf(stderr, "nextuser %s: only search and retrieve run on several MPI ranks "
                            "(this job has %d); run it without mpirun\n", argv[0], size);
        rc = NU_EXIT_USAGE;
    }
    MPI_Finalize();
    return rc;
}
