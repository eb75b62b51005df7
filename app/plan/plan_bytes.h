/* The bytes of one batch of sharded retrieval (docs/mpi.md, "Bytes per
 * batch"): the one place the formulas live.  app/mpi/mpi_search.c counts
 * what it sends with them, and `nextuser plan --hosts` predicts with them,
 * so a measured run and the plan agree byte for byte by construction --
 * and tests/plan checks that they do on a real mpirun. */
#ifndef NU_PLAN_BYTES_H
#define NU_PLAN_BYTES_H

#include <stddef.h>
#include <string.h>

/* Rank 0 -> each rank: a header of 3 x int64 (kind, queries, exclusions). */
#define NU_MPI_HEADER_BYTES 24
/* Each rank -> rank 0: its status and, on failure, its message. */
#define NU_MPI_STATUS_BYTES 256

/* The candidate pool P a rank sends per query: k for fp32, else the pool
 * (default max(4k, 256); nu_search_opts.pool when given). */
static inline size_t nu_plan_pool(const char *dtype, size_t k, size_t pool_opt)
{
    size_t pool = strcmp(dtype, "fp32") == 0 ? k : (pool_opt ? pool_opt : (4 * k > 256 ? 4 * k : 256));
    return pool < k ? k : pool; /* as src/retrieval/search.c */
}

/* Arrays per candidate: id and score for fp32; id, scanned and exact score
 * for bf16 and int8. */
static inline size_t nu_plan_candidate_arrays(int is_fp32)
{
    return is_fp32 ? 2 : 3;
}

/* Broadcast to each rank for a batch of n queries of width qd, with
 * (retrieve) n_ex excluded rows in all: 24 + 4 n qd [+ 4 (n + n_ex)]. */
static inline double nu_plan_bcast_bytes(double n, double qd, int exclusions, double n_ex)
{
    return NU_MPI_HEADER_BYTES + 4.0 * n * qd + (exclusions ? 4.0 * (n + n_ex) : 0.0);
}

/* Gathered from each rank: 256 + 4 n P a. */
static inline double nu_plan_gather_bytes(double n, double pool, double arrays)
{
    return NU_MPI_STATUS_BYTES + 4.0 * n * pool * arrays;
}

#endif
