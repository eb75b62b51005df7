/* Reading a result file of `nextuser bench` (Google Benchmark's JSON schema,
 * docs/bench.md) for the capacity planner: one median entry per workload. */
#ifndef NU_PLAN_RESULTS_H
#define NU_PLAN_RESULTS_H

#include <stddef.h>

#include "nextuser/nextuser.h"

struct cJSON;

typedef struct nu_plan_results {
    struct cJSON *root;
    size_t count;              /* workloads */
    const char **names;        /* [count] */
    const struct cJSON **rows; /* [count]: the median aggregate, else the first entry */
} nu_plan_results;

/* The JSON document in file PATH, parsed strictly, into *root (cJSON_Delete
 * it); NU_ERR_IO naming the file when it cannot be read, NU_ERR_FORMAT when
 * it is not strict JSON. */
nu_status nu_plan_read_json(const char *path, struct cJSON **root);

/* Loads PATH; NU_ERR_IO when unreadable, NU_ERR_FORMAT (naming the file) when
 * it is not JSON with a "benchmarks" list of named entries. */
nu_status nu_plan_results_load(const char *path, nu_plan_results *out);
void nu_plan_results_free(nu_plan_results *r);

/* Index of the workload called NAME, or -1. */
long nu_plan_results_find(const nu_plan_results *r, const char *name);
/* Numeric field KEY of workload I into *out; returns 0 when it is absent. */
int nu_plan_results_field(const nu_plan_results *r, size_t i, const char *key, double *out);
/* A string of the file's "context" (e.g. "command"), or NULL. */
const char *nu_plan_results_context(const nu_plan_results *r, const char *key);

#endif
