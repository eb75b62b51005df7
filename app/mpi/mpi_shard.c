#include "mpi_shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nextuser/nextuser.h"

void nu_mpi_shard_rows(size_t rows, int ranks, int rank, size_t *first, size_t *count)
{
    /* rows * r fits: rows < 2^32 (row ids are uint32) and ranks < 2^31. */
    size_t lo = rows * (size_t)rank / (size_t)ranks, hi = rows * ((size_t)rank + 1) / (size_t)ranks;
    *first = lo;
    *count = hi - lo;
}

#define MSG_BYTES 512

void nu_mpi_print_failure(const char *cmd, int rank, const char *msg, const char *prev)
{
    /* The same failure on several ranks (a bad query reaches them all) once. */
    if (prev && strcmp(prev, msg) == 0)
        return;
    if (rank == 0)
        fprintf(stderr, "nextuser %s: %s\n", cmd, msg[0] ? msg : "failed");
    else
        fprintf(stderr, "nextuser %s: rank %d: %s\n", cmd, rank, msg[0] ? msg : "failed");
}

int nu_mpi_agree(MPI_Comm comm, const char *cmd, int rc)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    char mine[4 + MSG_BYTES] = {0};
    memcpy(mine, &rc, 4);
    if (rc)
        snprintf(mine + 4, MSG_BYTES, "%s", nu_last_error());
    char *all = rank == 0 ? malloc((size_t)size * sizeof mine) : NULL;
    if (rank == 0 && !all) {
        fprintf(stderr, "nextuser %s: out of memory\n", cmd);
        MPI_Abort(comm, 1);
    }
    int worst = rc;
    MPI_Gather(mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, 0, comm);
    if (rank == 0) {
        const char *prev = NULL;
        for (int r = 0; r < size; r++) {
            int code;
            memcpy(&code, all + (size_t)r * sizeof mine, 4);
            if (!code)
                continue;
            const char *msg = all + (size_t)r * sizeof mine + 4;
            nu_mpi_print_failure(cmd, r, msg, prev);
            prev = msg;
            worst = code > worst ? code : worst;
        }
    }
    MPI_Bcast(&worst, 1, MPI_INT, 0, comm);
    free(all);
    return worst;
}
