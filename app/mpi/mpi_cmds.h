/* The commands that run sharded under mpirun. */
#ifndef NU_MPI_CMDS_H
#define NU_MPI_CMDS_H

#include <mpi.h>

#include "cli/retrieve_common.h"

int nu_mpi_cmd_search(MPI_Comm comm, int argc, char **argv);
int nu_mpi_cmd_retrieve(MPI_Comm comm, int argc, char **argv);
int nu_mpi_cmd_train(MPI_Comm comm, int argc, char **argv);
#ifdef NU_HAVE_SERVE
int nu_mpi_cmd_serve(MPI_Comm comm, int argc, char **argv);
#endif

/* Ranks > 0 send their standard output and error to /dev/null between
 * begin and end (a usage message is printed once, by rank 0). */
typedef struct nu_mpi_quiet {
    int saved_out, saved_err, null;
} nu_mpi_quiet;
nu_mpi_quiet nu_mpi_quiet_begin(int rank);
void nu_mpi_quiet_end(nu_mpi_quiet *q);

/* nu_cli_parse_retrieval on every rank (they all get the same command
 * line), with only rank 0's help or usage message shown. */
int nu_mpi_parse(MPI_Comm comm, const char *cmd, const char *help, const char *input,
                 const char **path, int argc, char **argv, nu_cli_retrieval_opts *o);

#endif
