/* `nextuser plan --hosts`: the plan over several servers running the
 * sharded retrieval of docs/mpi.md (rank 0 runs the generator and merges,
 * every rank scans its rows; per batch a broadcast of the queries and a
 * gather of each rank's candidates), with the network figure it assumes.
 * The bytes come from plan/plan_bytes.h, the formulas the MPI code counts
 * its own bytes with. */
#ifndef NU_PLAN_HOSTS_H
#define NU_PLAN_HOSTS_H

#include <stddef.h>

#include "plan/plan.h"

#define NU_PLAN_HOSTS_SHOWN 12

typedef struct nu_plan_hosts_request {
    double gbps, latency_us; /* the network: bandwidth per link, one message's latency */
    double memory_gib;       /* of one server */
    double history;          /* excluded rows per item (retrieve); 0: none sent */
    double merge_ns;         /* rank 0's merge, per candidate */
    size_t max_hosts;
} nu_plan_hosts_request;

/* One candidate H: every figure of a batch and what follows. */
typedef struct nu_plan_hosts_eval {
    size_t H;
    double steps;                 /* ceil(log2 H): levels of the binomial trees */
    double bcast_ms, gather_ms, comm_ms; /* network time per batch */
    double gen_ms, scan_ms, merge_ms, batch_ms, p99_ms;
    double set_ips;               /* items/s of one replica set (B / batch time) */
    size_t sets, servers;
    double rows, host0_bytes, host_bytes;
    int fits, meets;
} nu_plan_hosts_eval;

typedef struct nu_plan_hosts {
    double B, qd, pool, arrays;
    double bcast_bytes, gather_bytes; /* per batch, per rank */
    double row_bytes, model_bytes, scratch_bytes;
    size_t h_mem;  /* fewest hosts whose memory holds the table */
    size_t h_lat;  /* fewest hosts that meet the bound (0: none up to max) */
    size_t n;      /* evaluated: H = 1..n */
    nu_plan_hosts_eval *all; /* [n] */
    size_t chosen; /* index into all */
} nu_plan_hosts;

/* Network time of one batch over H ranks (docs/plan.md): binomial trees,
 * ceil(log2 H) levels; the broadcast sends the whole message at each level,
 * the gather brings every other rank's candidates through rank 0's link. */
void nu_plan_hosts_comm(double H, double bcast_bytes, double gather_bytes, double gbps,
                        double latency_us, double *bcast_ms, double *gather_ms);

/* Fills *h (free with nu_plan_hosts_free); NU_ERR_INVALID_ARG with the
 * reason when no H meets the bound within the memory. */
nu_status nu_plan_hosts_compute(const nu_plan_request *q, const nu_plan_measured *m,
                                const nu_plan *p, const nu_plan_hosts_request *hq,
                                nu_plan_hosts *h);
void nu_plan_hosts_free(nu_plan_hosts *h);

/* A measured sharded run, from the JSON tools/mpi-bench.sh writes
 * (tools/mpi_results.py). */
typedef struct nu_plan_mpi_run {
    char command[16], dtype[8];
    int ranks;
    double batch, k, pool, qd, queries, batches, history_rows;
    double bcast_bytes, gather_bytes; /* measured, per batch */
    double comm_min_s, comm_max_s, scan_max_s, merge_s;
} nu_plan_mpi_run;

typedef struct nu_plan_mpi_results {
    size_t count;
    nu_plan_mpi_run *runs;
    double loop_gbps, loop_latency_us; /* 0: not measured */
    char how[256];
} nu_plan_mpi_results;

nu_status nu_plan_mpi_results_load(const char *path, nu_plan_mpi_results *r);
void nu_plan_mpi_results_free(nu_plan_mpi_results *r);

#endif
