/* retrieve/<dtype>/U<u>/B<b>/threads:<t>: nu_search of B query vectors over
 * a synthetic U x 64 user table (top-100), a warm-up call then `reps` timed
 * repetitions of about rep_seconds each.  queries/s is the median over
 * repetitions; p50/p99 over every call's latency; GB/s counts the table
 * bytes one scan reads (the re-rank's few rows are left out); recall@100 of
 * bf16 and int8 is against the exact fp32 search of the same 256 queries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/stats.h"
#include "bench/table_synth.h"
#include "bench/user_model.h"
#include "error.h"
#include "retrieval/search.h"

#define RETRIEVE_D 64
#define RECALL_QUERIES 256

typedef struct recall_set {
    uint32_t *exact; /* RECALL_QUERIES x k ids of the fp32 search */
    double recall[3];
} recall_set;

/* Fraction of the exact top-k found by the search in `dtype`. */
static nu_status recall_of(const nu_user_table *t, const nu_bench_config *c, nu_table_dtype dtype,
                           const float *Q, size_t ldq, const uint32_t *exact, double *out)
{
    size_t k = c->k, nq = RECALL_QUERIES;
    uint32_t *ids = malloc(nq * k * sizeof *ids);
    float *sc = malloc(nq * k * sizeof *sc);
    nu_search_opts o = {.k = k, .dtype = dtype, .threads = c->threads[c->n_threads - 1], .pool = c->pool};
    nu_status s = ids && sc ? nu_search(t, &o, Q, nq, ldq, NULL, ids, sc, NULL)
                            : nu_error(NU_ERR_NOMEM, "out of memory for recall");
    size_t hit = 0, total = 0;
    for (size_t q = 0; s == NU_OK && q < nq; q++)
        for (size_t i = 0; i < k; i++) {
            uint32_t want = exact[q * k + i];
            if (want == NU_TOPK_NONE)
                continue;
            total++;
            for (size_t j = 0; j < k; j++)
                if (ids[q * k + j] == want) {
                    hit++;
                    break;
                }
        }
    *out = total ? (double)hit / (double)total : 1.0;
    free(ids);
    free(sc);
    return s;
}

static nu_status one_case(const nu_bench_config *c, const nu_bench_peaks *p, const nu_user_table *t,
                          const float *Q, size_t ldq, nu_table_dtype dtype, size_t U, size_t B, int T,
                          double recall, nu_bench_results *out)
{
    const char *dn = nu_table_dtype_name(dtype);
    nu_bench_progress("retrieve/%s/U%zu/B%zu/threads:%d", dn, U, B, T);
    size_t k = c->k;
    uint32_t *ids = malloc(B * k * sizeof *ids);
    float *sc = malloc(B * k * sizeof *sc);
    double *rate = malloc((size_t)c->reps * sizeof *rate);
    if (!ids || !sc || !rate) {
        free(ids);
        free(sc);
        free(rate);
        return nu_error(NU_ERR_NOMEM, "out of memory for the retrieve workload");
    }
    /* As the engine searches: planned once, pinned as the CLI runs. */
    nu_search_opts o = {.k = k, .dtype = dtype, .threads = T, .pool = c->pool};
    nu_search_plan plan;
    nu_search_scratch scratch = {0};
    nu_status s = nu_search_plan_make(t, T, 1, &plan);
    if (s != NU_OK) {
        free(ids);
        free(sc);
        free(rate);
        return s;
    }
    s = nu_search_scratch_make(&plan, &o, B, &scratch);
    double t0 = nu_bench_now();
    if (s == NU_OK)
        s = nu_search_run(&plan, &scratch, Q, B, ldq, NULL, ids, sc); /* warm-up */
    double call = nu_bench_now() - t0;
    size_t calls = (size_t)(c->rep_seconds / (call > 1e-6 ? call : 1e-6));
    if (calls < 1)
        calls = 1;
    if (calls > 20000)
        calls = 20000;
    double *lat = malloc((size_t)c->reps * calls * sizeof *lat);
    size_t n_lat = 0;
    if (!lat)
        s = nu_error(NU_ERR_NOMEM, "out of memory for latencies");
    for (int rep = 0; rep < c->reps && s == NU_OK; rep++) {
        double r0 = nu_bench_now();
        for (size_t i = 0; i < calls && s == NU_OK; i++) {
            double b0 = nu_bench_now();
            s = nu_search_run(&plan, &scratch, Q, B, ldq, NULL, ids, sc);
            lat[n_lat++] = nu_bench_now() - b0;
        }
        rate[rep] = (double)(calls * B) / (nu_bench_now() - r0);
    }
    if (s == NU_OK) {
        nu_bench_sort(lat, n_lat);
        char uname[32];
        nu_bench_users_name(U, uname, sizeof uname);
        nu_bench_result *e = nu_bench_add(out, T, "retrieve/%s/U%s/B%zu/threads:%d", dn, uname, B, T);
        if (!e)
            s = nu_error(NU_ERR_NOMEM, "out of memory");
        else {
            double qps = nu_bench_median(rate, (size_t)c->reps);
            double calls_ps = qps / (double)B; /* scans per second */
            double gbps = calls_ps * nu_bench_table_scan_bytes(t, dtype) * 1e-9;
            double gflops = qps * 2.0 * (double)U * (double)t->d * 1e-9;
            double bw = nu_bench_peak_read(p, T);
            nu_bench_set(e, "queries_per_second", qps);
            nu_bench_set_latency(e, c->reps, lat, n_lat);
            nu_bench_set(e, "gbps", gbps);
            nu_bench_set(e, "gflops", gflops);
            nu_bench_set(e, "frac_bw", bw > 0 ? gbps / bw : 0);
            nu_bench_set(e, "recall_at_100", recall);
        }
    }
    nu_search_scratch_free(&scratch);
    nu_search_plan_free(&plan);
    free(ids);
    free(sc);
    free(rate);
    free(lat);
    return s;
}

/* Every dtype, batch and thread count over table t with queries Q (at
 * least max(RECALL_QUERIES, the largest batch) rows of ldq floats). */
static nu_status scan_table(const nu_bench_config *c, const nu_bench_peaks *p, const nu_user_table *t,
                            const float *Q, size_t ldq, nu_bench_results *out)
{
    nu_status s = NU_OK;
    uint32_t *exact = malloc(RECALL_QUERIES * c->k * sizeof *exact);
    float *sc = malloc(RECALL_QUERIES * c->k * sizeof *sc);
    if (!exact || !sc)
        s = nu_error(NU_ERR_NOMEM, "out of memory for queries");
    double recall[3] = {1, 1, 1};
    if (s == NU_OK) {
        nu_bench_progress("retrieve: recall@%zu of %zu queries vs exact fp32", c->k, (size_t)RECALL_QUERIES);
        nu_search_opts o = {.k = c->k, .dtype = NU_TABLE_F32, .threads = c->threads[c->n_threads - 1]};
        s = nu_search(t, &o, Q, RECALL_QUERIES, ldq, NULL, exact, sc, NULL);
    }
    for (int di = 0; di < c->n_dtypes && s == NU_OK; di++)
        if (c->dtypes[di] != NU_TABLE_F32)
            s = recall_of(t, c, c->dtypes[di], Q, ldq, exact, &recall[c->dtypes[di]]);
    for (int di = 0; di < c->n_dtypes && s == NU_OK; di++)
        for (int bi = 0; bi < c->n_retrieve_batches && s == NU_OK; bi++)
            for (int ti = 0; ti < c->n_threads && s == NU_OK; ti++)
                s = one_case(c, p, t, Q, ldq, c->dtypes[di], t->rows, c->retrieve_batches[bi],
                             c->threads[ti], recall[c->dtypes[di]], out);
    free(exact);
    free(sc);
    return s;
}

static size_t max_batch(const nu_bench_config *c)
{
    size_t maxB = RECALL_QUERIES;
    for (int i = 0; i < c->n_retrieve_batches; i++)
        maxB = c->retrieve_batches[i] > maxB ? c->retrieve_batches[i] : maxB;
    return maxB;
}

static nu_status one_table(const nu_bench_config *c, const nu_bench_peaks *p, size_t U,
                           nu_bench_results *out)
{
    nu_bench_progress("retrieve: building a %zu x %d table", U, RETRIEVE_D);
    nu_user_table t;
    nu_status s = nu_bench_user_table(U, RETRIEVE_D, c->seed + 7, &t);
    if (s != NU_OK)
        return s;
    float *Q = nu_bench_queries(max_batch(c), RETRIEVE_D, c->seed + 11);
    s = Q ? scan_table(c, p, &t, Q, t.d, out) : nu_error(NU_ERR_NOMEM, "out of memory for queries");
    free(Q);
    nu_user_table_free(&t);
    return s;
}

size_t nu_bench_retrieve_queries(const nu_bench_config *c)
{
    return max_batch(c);
}

nu_status nu_bench_retrieve(const nu_bench_config *c, const nu_bench_peaks *p, nu_bench_results *out)
{
    if (c->user) { /* the search queries of the user's items, over the model's table */
        const nu_bench_user_model *u = c->user;
        if (u->n_queries < max_batch(c))
            return nu_error(NU_ERR_INVALID_ARG, "retrieve: %zu queries, %zu needed", u->n_queries,
                            max_batch(c));
        return scan_table(c, p, nu_bench_user_table_of(u), u->queries, u->query_dim, out);
    }
    nu_status s = NU_OK;
    for (int ui = 0; ui < c->n_users && s == NU_OK; ui++)
        s = one_table(c, p, c->users[ui], out);
    return s;
}
