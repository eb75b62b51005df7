/* mpirun -np R nextuser train: data-parallel training with row-sharded
 * tables (docs/mpi.md, "Training").  Every rank runs the train command
 * with the same options over MPI's collectives; rank 0 alone prints,
 * validates and writes --out, and ends with each rank's traffic. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "mpi_cmds.h"
#include "mpi_collectives.h"

/* What each rank reports at the end. */
typedef struct rank_traffic {
    double steps, fetch, push, dense, small, comm_s, compute_s;
} rank_traffic;

int nu_mpi_cmd_train(MPI_Comm comm, int argc, char **argv)
{
    nu_collectives c;
    nu_mpi_collectives(&comm, &c);
    nu_training_result res = {.size = sizeof res};
    nu_mpi_quiet q = nu_mpi_quiet_begin(c.rank);
    int rc = nu_cmd_train_with(argc, argv, &c, &res);
    nu_mpi_quiet_end(&q);
    /* Every rank ran the same steps and ends with the same code. */
    rank_traffic mine = {(double)res.steps, (double)res.fetch_bytes, (double)res.push_bytes,
                         (double)res.dense_bytes, (double)res.small_bytes, res.comm_seconds,
                         res.compute_seconds};
    rank_traffic *all = c.rank == 0 ? calloc((size_t)c.ranks, sizeof *all) : NULL;
    MPI_Gather(&mine, (int)(sizeof mine / sizeof(double)), MPI_DOUBLE, all,
               (int)(sizeof mine / sizeof(double)), MPI_DOUBLE, 0, comm);
    if (rc == NU_EXIT_OK && all && res.steps > 0)
        for (int r = 0; r < c.ranks; r++) {
            double n = all[r].steps;
            fprintf(stderr, "nextuser train: rank %d of %d: per step sent %.0f bytes (rows fetched "
                            "%.0f, row gradients %.0f, dense gradient %.0f, counts %.0f); "
                            "compute %.4f s, communication %.4f s\n",
                    r, c.ranks, (all[r].fetch + all[r].push + all[r].dense + all[r].small) / n,
                    all[r].fetch / n, all[r].push / n, all[r].dense / n, all[r].small / n,
                    all[r].compute_s / n, all[r].comm_s / n);
        }
    free(all);
    return rc;
}
