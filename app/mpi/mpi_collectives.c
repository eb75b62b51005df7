/* nu_collectives over MPI: byte messages (MPI_BYTE), counts and offsets
 * checked against MPI's int before the call. */
#include "mpi_collectives.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static int mpi_allgather(void *ctx, const void *send, void *recv, size_t bytes)
{
    if (bytes > INT_MAX)
        return 1;
    return MPI_Allgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE,
                         *(MPI_Comm *)ctx) != MPI_SUCCESS;
}

/* size_t counts and offsets as MPI's ints; 0 if one does not fit. */
static int to_ints(const size_t *a, int *out, int n)
{
    for (int i = 0; i < n; i++) {
        if (a[i] > INT_MAX)
            return 0;
        out[i] = (int)a[i];
    }
    return 1;
}

static int mpi_alltoallv(void *ctx, const void *send, const size_t *sb, const size_t *so, void *recv,
                         const size_t *rb, const size_t *ro)
{
    MPI_Comm comm = *(MPI_Comm *)ctx;
    int R;
    MPI_Comm_size(comm, &R);
    int *v = malloc(4 * (size_t)R * sizeof *v);
    int ok = v && to_ints(sb, v, R) && to_ints(so, v + R, R) && to_ints(rb, v + 2 * R, R) &&
             to_ints(ro, v + 3 * R, R);
    /* A failed check still takes part (with nothing), so no process waits
     * forever; the caller sees the failure and the agreement after it stops
     * every process. */
    if (!ok && v)
        memset(v, 0, 4 * (size_t)R * sizeof *v);
    int rc = v ? MPI_Alltoallv(send, v, v + R, MPI_BYTE, recv, v + 2 * R, v + 3 * R, MPI_BYTE, comm)
               : MPI_ERR_NO_MEM;
    free(v);
    return !ok || rc != MPI_SUCCESS;
}

void nu_mpi_collectives(MPI_Comm *comm, nu_collectives *c)
{
    memset(c, 0, sizeof *c);
    c->size = sizeof *c;
    MPI_Comm_rank(*comm, &c->rank);
    MPI_Comm_size(*comm, &c->ranks);
    c->ctx = comm;
    c->allgather = mpi_allgather;
    c->alltoallv = mpi_alltoallv;
}
