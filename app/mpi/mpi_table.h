/* A rank's shard of the model's user table: its rows (mpi_shard.h) of
 * MODEL/user_table.safetensors, mapped alone. */
#ifndef NU_MPI_TABLE_H
#define NU_MPI_TABLE_H

#include <mpi.h>

#include "nextuser/nextuser.h"
#include "retrieval/user_table.h"

/* Opens this rank's rows of the table of a model of `users` users and query
 * width `query_d` (rank 0's model, broadcast), checks they fit and hold
 * `dtype`, and copies them into private memory when `resident`. */
nu_status nu_mpi_open_shard(MPI_Comm comm, const char *model_dir, size_t users, size_t query_d,
                            nu_table_dtype dtype, int resident, nu_user_table *out);

/* --table auto|map|copy (cli/table_residency.h) resolved for this rank's
 * shard of a users x query_d table, the host's memory shared by its ranks:
 * 1 copy, 0 map.  Collective. */
int nu_mpi_table_copy(MPI_Comm comm, int option, size_t users, size_t query_d);

/* Threads per rank: the option, else the cores shared out over the ranks
 * of this node (one per core in all). */
int nu_mpi_threads(MPI_Comm comm, int option);

/* Rank 0 sends the model's user count and query width to every rank. */
void nu_mpi_share_shape(MPI_Comm comm, size_t *users, size_t *query_d);

/* The library's table encoding of a public dtype (the same numbering). */
static inline nu_table_dtype nu_mpi_table_dtype(nu_dtype d)
{
    _Static_assert(NU_TABLE_F32 == (int)NU_DTYPE_FP32 && NU_TABLE_BF16 == (int)NU_DTYPE_BF16 &&
                       NU_TABLE_I8 == (int)NU_DTYPE_INT8,
                   "public and table dtypes are numbered alike");
    return (nu_table_dtype)d;
}

#endif
