/* The served plan of `nextuser plan --served`: from an open-loop sweep of
 * `nextuser serve` (tools/load/open_loop.py --sweep, as run by
 * tools/load/run_serve_bench.sh) to processes, cores and servers.  The
 * arithmetic (docs/plan.md, "From the served figures") is kept here so the
 * command can print every step and the tests can check it by hand. */
#ifndef NU_PLAN_SERVED_H
#define NU_PLAN_SERVED_H

#include <stddef.h>

#include "nextuser/nextuser.h"
#include "plan/plan.h"

struct cJSON;

/* Served figures scale to at most this many times the measured users (A13). */
#define NU_PLAN_SERVED_MAX_SCALE 10.0
/* Sweeps considered from one file. */
#define NU_PLAN_SERVED_MAX_SWEEPS 16

typedef struct nu_plan_served_file {
    struct cJSON *root;
    int single;         /* the file is one open_loop.py document, not results.json */
    size_t count;       /* sweeps of nextuser serve found */
    const struct cJSON *sweeps[NU_PLAN_SERVED_MAX_SWEEPS];
    const char *keys[NU_PLAN_SERVED_MAX_SWEEPS]; /* "sweep-nextuser-100k", or "sweep" */
} nu_plan_served_file;

/* Loads PATH: results.json of run_serve_bench.sh (its "sweep-nextuser-*"
 * members) or one open_loop.py --sweep document.  NU_ERR_IO when unreadable,
 * NU_ERR_FORMAT when it is not JSON, NU_ERR_INVALID_ARG (naming the command
 * that writes one) when it holds no sweep of nextuser serve. */
nu_status nu_plan_served_load(const char *path, nu_plan_served_file *f);
void nu_plan_served_free(nu_plan_served_file *f);

/* One sweep as the plan reads it. */
typedef struct nu_plan_served_sweep {
    const char *key, *label, *command, *service_command, *dtype, *table, *cpu;
    double users;          /* rows of the table served */
    double d;              /* its width (0: not recorded) */
    double model_bytes_per_user, weights_bytes; /* 0: not recorded */
    int threads, workers, machine_cores; /* machine_cores 0: not recorded */
    int max_batch;
    double max_wait_us, k; /* k of the requests */
    int items_per_request;
    double bound_ms;       /* the sweep's p99 bound */
    double max_rate;       /* its highest passing rate (requests/s), 0 if none */
    size_t runs;
} nu_plan_served_sweep;

/* What the plan takes from the file for a request. */
typedef struct nu_plan_served_measured {
    size_t count;                       /* sweeps of nextuser serve in the file */
    nu_plan_served_sweep all[NU_PLAN_SERVED_MAX_SWEEPS];
    size_t chosen;                      /* index into all[] */
    int cores;                          /* c: cores of the measured process */
    double rho;                         /* U / U_measured */
    double sigma;                       /* max(1, rho): the time scale (A12) */
    /* the run used: the highest achieved rate whose p99 x sigma <= the bound,
     * with no errors and achieved >= 0.9 x its arrivals */
    size_t run;                         /* its index in the sweep's runs (0-based) */
    int run_is_sweeps_max;              /* it is the sweep's own answer */
    double offered, offered_actual, achieved, p50_ms, p99_ms, p999_ms;
    /* context from results.json (0 when absent): not used in the arithmetic */
    double light_rate, light_p50, light_p99, wrk1_rps, wrk1_p99, wrk16_ips, wrk16_p99,
        engine_ips, engine_batch, capacity_rps;
    const char *date;
} nu_plan_served_measured;

/* Picks the sweep and the run for Q (users, dtype, p99 bound).  Returns
 * NU_ERR_INVALID_ARG with a message saying what is missing or why the
 * figures do not apply (dtype, users out of range, a bound tighter than
 * every run's p99) and the command that measures what is needed. */
nu_status nu_plan_served_measure(const nu_plan_served_file *f, const nu_plan_request *q,
                                 nu_plan_served_measured *m);

typedef struct nu_plan_served {
    double process_ips;       /* R: items/s per process at the bound, at U users */
    double per_core_ips;      /* R / c */
    double p99_ms;            /* the run's p99 x sigma: the plan's p99 at R */
    size_t processes;         /* ceil(X / ((1 - h) R)) */
    double processes_busy;    /* X / R */
    size_t cores;             /* processes x c */
    size_t per_server;        /* floor(C / c) */
    size_t servers;           /* ceil(processes / per_server) */
    double utilisation;       /* X / (processes R) */
    /* memory of one process at U users (0 when the file lacks d) */
    double table_bytes, model_bytes, process_bytes, server_bytes;
} nu_plan_served;

/* Fills *p; NU_ERR_INVALID_ARG when a measured process does not fit a server. */
nu_status nu_plan_served_compute(const nu_plan_request *q, const nu_plan_served_measured *m,
                                 nu_plan_served *p);

#endif
