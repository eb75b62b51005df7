#include "mpi_table.h"

#include <stdint.h>
#include <unistd.h>

#include "error.h"
#include "mpi_shard.h"
#include "cli/table_residency.h"
#include "util/path.h"

nu_status nu_mpi_open_shard(MPI_Comm comm, const char *model_dir, size_t users, size_t query_d,
                            nu_table_dtype dtype, int resident, nu_user_table *out)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    char path[NU_PATH_MAX];
    nu_status s = nu_path_join(path, sizeof path, model_dir, "user_table.safetensors");
    if (s != NU_OK)
        return s;
    if ((size_t)size > users)
        return nu_error(NU_ERR_INVALID_ARG, "%d ranks for %zu users: at most one rank per user",
                        size, users);
    size_t first, count;
    nu_mpi_shard_rows(users, size, rank, &first, &count);
    /* Sharded runs read the table file (never build it): each rank maps its rows alone. */
    if (access(path, R_OK) != 0)
        return nu_error(NU_ERR_IO, "%s: no user table (sharded retrieval maps its rows: run "
                        "'nextuser table --model %s' first)", path, model_dir);
    s = nu_user_table_open_rows(path, model_dir, first, count, out);
    if (s != NU_OK)
        return s;
    if (out->total_rows != users || out->query_d != query_d)
        s = nu_error(NU_ERR_FORMAT, "%s: %zu rows with queries of %zu, the model has %zu users "
                     "and queries of %zu (run 'nextuser table --model %s' again)",
                     path, out->total_rows, out->query_d, users, query_d, model_dir);
    else if (!nu_user_table_has(out, dtype))
        s = nu_error(NU_ERR_INVALID_ARG, "%s: holds no %s encoding (run 'nextuser table --model "
                     "%s --dtypes %s')", path, nu_table_dtype_name(dtype), model_dir,
                     nu_table_dtype_name(dtype));
    else if (resident)
        s = nu_user_table_make_resident(out);
    if (s != NU_OK)
        nu_user_table_free(out);
    return s;
}

int nu_mpi_threads(MPI_Comm comm, int option)
{
    if (option > 0)
        return option;
    MPI_Comm node;
    int local = 1;
    if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &local);
        MPI_Comm_free(&node);
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long t = cpus / (local > 0 ? local : 1);
    return t > 0 ? (int)t : 1;
}

void nu_mpi_share_shape(MPI_Comm comm, size_t *users, size_t *query_d)
{
    uint64_t v[2] = {*users, *query_d};
    MPI_Bcast(v, 2, MPI_UINT64_T, 0, comm);
    *users = (size_t)v[0];
    *query_d = (size_t)v[1];
}

/* Ranks of this rank's host (MPI_COMM_TYPE_SHARED), at least 1. */
static int ranks_on_host(MPI_Comm comm)
{
    MPI_Comm node;
    int local = 1;
    if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &local);
        MPI_Comm_free(&node);
    }
    return local > 0 ? local : 1;
}

int nu_mpi_table_copy(MPI_Comm comm, int option, size_t users, size_t query_d)
{
    int size;
    MPI_Comm_size(comm, &size);
    /* Collective (the host's ranks are counted) whatever the option. */
    int sharers = ranks_on_host(comm);
    /* The shard's rows with every encoding the file may hold (4 + 2 + 1
     * bytes a value, 8 a row for int8's scale and sum). */
    uint64_t rows = (uint64_t)(users / (size_t)size + 1);
    return nu_cli_table_resolve(option, rows * (uint64_t)query_d * 7 + rows * 8, sharers);
}
