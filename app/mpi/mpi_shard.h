/* Which rows of the user table each rank owns, and the agreement of ranks
 * on an error (no rank waits forever on one that gave up). */
#ifndef NU_MPI_SHARD_H
#define NU_MPI_SHARD_H

#include <mpi.h>
#include <stddef.h>

/* The even split: rank r of R owns rows [rows * r / R, rows * (r + 1) / R),
 * contiguous, sizes differing by at most one, in rank order. */
void nu_mpi_shard_rows(size_t rows, int ranks, int rank, size_t *first, size_t *count);

/* Every rank passes its exit code (0: fine; else nu_last_error() holds the
 * message); rank 0 prints each failing rank's message once, prefixed with
 * "nextuser CMD: " (and "rank r: " but for rank 0), and all return the
 * largest code.  Collective. */
int nu_mpi_agree(MPI_Comm comm, const char *cmd, int rc);

/* The same report for a message already gathered: rank 0 side. */
void nu_mpi_print_failure(const char *cmd, int rank, const char *msg, const char *prev);

#endif
