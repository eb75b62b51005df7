/* Sharded search: results equal a brute-force double-precision reference on
 * well-separated data whatever the thread count and NUMA layout (hwloc
 * synthetic topologies), shards cover the table once and are contiguous per
 * node, exclusions and K > rows behave, and a NaN query is a clear error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_test_util.h"
#include "retrieval/search.h"

static nu_model *model(size_t users, size_t d, uint64_t seed)
{
    char json[256];
    snprintf(json, sizeof json, "{\"num_users\": %zu, \"d\": %zu, \"heads\": 1}", users, d);
    nu_model_config c;
    nu_model *m;
    if (nu_config_parse(json, "t", &c) != NU_OK || nu_model_create(&c, &m) != NU_OK)
        exit(2);
    /* Integer-valued rows: many exact ties, which exercise the tie rule. */
    nu_rng r = {seed};
    for (size_t i = 0; i < users * d; i++)
        m->w.user_emb[i] = (float)(int)nu_rng_range(&r, 0, 14) - 7.0f;
    return m;
}

/* Exact cosine of query q with row r, in double. */
static double exact_score(const nu_user_table *t, const float *q, uint32_t r)
{
    double s = 0, qn = 0;
    for (size_t j = 0; j < t->d; j++) {
        s += (double)q[j] * t->f32[(size_t)r * t->d + j];
        qn += (double)q[j] * q[j];
    }
    return s / sqrt(qn);
}

/* Brute force in double over normalised rows, ties by lower id. */
static void reference(const nu_user_table *t, const float *q, size_t k, const nu_id_list *ex,
                      uint32_t *ids, double *sc)
{
    double qn = 0;
    for (size_t j = 0; j < t->d; j++)
        qn += (double)q[j] * q[j];
    qn = sqrt(qn);
    for (size_t j = 0; j < k; j++) {
        ids[j] = NU_TOPK_NONE;
        sc[j] = -INFINITY;
    }
    for (size_t r = 0; r < t->rows; r++) {
        int skip = 0;
        for (size_t e = 0; ex && e < ex->count; e++)
            skip |= ex->ids[e] == r;
        if (skip)
            continue;
        double s = 0;
        for (size_t j = 0; j < t->d; j++)
            s += (double)q[j] * t->f32[r * t->d + j];
        s /= qn;
        size_t pos = k;
        while (pos > 0 && (s > sc[pos - 1] || ids[pos - 1] == NU_TOPK_NONE))
            pos--;
        if (pos >= k)
            continue;
        memmove(ids + pos + 1, ids + pos, (k - pos - 1) * sizeof *ids);
        memmove(sc + pos + 1, sc + pos, (k - pos - 1) * sizeof *sc);
        ids[pos] = (uint32_t)r;
        sc[pos] = s;
    }
}

static void check_against_reference(const nu_user_table *t, nu_table_dtype dt, int threads,
                                    const char *topo, const float *Q, size_t B, size_t k,
                                    const nu_id_list *ex)
{
    if (topo)
        setenv("HWLOC_SYNTHETIC", topo, 1);
    else
        unsetenv("HWLOC_SYNTHETIC");
    uint32_t *ids = malloc(B * k * sizeof *ids), *rid = malloc(k * sizeof *rid);
    float *sc = malloc(B * k * sizeof *sc);
    double *rsc = malloc(k * sizeof *rsc);
    nu_search_opts o = {.k = k, .dtype = dt, .threads = threads};
    nu_search_stats st;
    nu_status s = nu_search(t, &o, Q, B, t->d, ex, ids, sc, &st);
    NU_CHECK(s == NU_OK, "search: %s", nu_last_error());
    if (s != NU_OK)
        return;
    /* Shards: cover every row once, contiguous, node by node. */
    size_t covered = 0;
    int ordered = 1;
    for (int th = 0; th < st.threads; th++) {
        covered += st.shard_hi[th] - st.shard_lo[th];
        for (int u = 0; u < st.threads; u++)
            if (st.shard_node[u] < st.shard_node[th] && st.shard_lo[u] > st.shard_lo[th] &&
                st.shard_hi[th] > st.shard_lo[th])
                ordered = 0;
    }
    NU_CHECK(covered == t->rows && ordered, "%d threads on %s: shards cover %zu of %zu rows, nodes in order",
             st.threads, topo ? topo : "this machine", covered, t->rows);
    /* Rank j must hold a user whose exact score is the j-th best exact score
     * (up to float rounding, 1e-6: near-ties may swap), never an excluded one. */
    int same = 1;
    double worst = 0;
    for (size_t b = 0; b < B; b++) {
        const float *q = Q + b * t->d;
        reference(t, q, k, ex ? &ex[b] : NULL, rid, rsc);
        for (size_t j = 0; j < k; j++) {
            uint32_t got = ids[b * k + j];
            if (rid[j] == NU_TOPK_NONE || got == NU_TOPK_NONE) {
                same &= rid[j] == got;
                continue;
            }
            for (size_t e = 0; ex && e < ex[b].count; e++)
                same &= got != ex[b].ids[e];
            double diff = fabs(exact_score(t, q, got) - rsc[j]);
            worst = diff > worst ? diff : worst;
            worst = fabs(sc[b * k + j] - rsc[j]) > worst ? fabs(sc[b * k + j] - rsc[j]) : worst;
        }
    }
    NU_CHECK(same && worst < 1e-6, "%s, %d threads, %s: the exact top %zu (worst score diff %g)",
             nu_table_dtype_name(dt), threads, topo ? topo : "this machine", k, worst);
    nu_search_stats_free(&st);
    free(ids);
    free(rid);
    free(sc);
    free(rsc);
}

int main(void)
{
    if (nu_init() != NU_OK)
        return 2;
    nu_model *m = model(5000, 24, 3);
    nu_user_table t;
    NU_CHECK(nu_user_table_build(m, 1, 1, &t) == NU_OK, "build: %s", nu_last_error());
    size_t B = 7, d = 24;
    float *Q = malloc(B * d * sizeof *Q);
    nu_rng r = {9};
    for (size_t i = 0; i < B * d; i++)
        Q[i] = (float)(int)nu_rng_range(&r, 0, 10) - 5.0f;
    nu_id_list ex[7];
    uint32_t exids[7][3];
    for (size_t b = 0; b < B; b++) {
        for (int e = 0; e < 3; e++)
            exids[b][e] = (uint32_t)nu_rng_range(&r, 0, 4999);
        ex[b].ids = exids[b];
        ex[b].count = 3;
    }
    const char *topos[] = {NULL, "pack:2 [numa] core:4 pu:1", "numa:3 core:2 pu:1"};
    int threads[] = {1, 2, 3, 8};
    for (size_t ti = 0; ti < 3; ti++)
        for (size_t h = 0; h < 4; h++)
            check_against_reference(&t, NU_TABLE_F32, threads[h], topos[ti], Q, B, 50, ex);
    unsetenv("HWLOC_SYNTHETIC");
    /* bf16 and int8 re-rank in exact fp32: on this well-separated data the
     * top 20 must match the exact ranking. */
    check_against_reference(&t, NU_TABLE_BF16, 2, NULL, Q, B, 20, ex);
    check_against_reference(&t, NU_TABLE_I8, 2, NULL, Q, B, 20, ex);
    /* The exclusions of query 0 never appear. */
    uint32_t ids[7 * 50];
    float sc[7 * 50];
    nu_search_opts o = {.k = 50, .dtype = NU_TABLE_F32, .threads = 2};
    nu_search(&t, &o, Q, B, d, ex, ids, sc, NULL);
    int clean = 1;
    for (size_t b = 0; b < B; b++)
        for (size_t j = 0; j < 50; j++)
            for (int e = 0; e < 3; e++)
                clean &= ids[b * 50 + j] != exids[b][e];
    NU_CHECK(clean, "excluded users never returned");
    nu_model_free(m);
    nu_user_table_free(&t);

    /* K larger than the table: padded with NONE / -inf after every row. */
    m = model(10, 8, 4);
    nu_user_table_build(m, 0, 0, &t);
    uint32_t id20[20];
    float s20[20];
    o.k = 20;
    NU_CHECK(nu_search(&t, &o, Q, 1, 8, NULL, id20, s20, NULL) == NU_OK, "k > rows works");
    int padded = 1;
    for (size_t j = 0; j < 20; j++)
        padded &= j < 10 ? id20[j] != NU_TOPK_NONE : (id20[j] == NU_TOPK_NONE && isinf(s20[j]));
    NU_CHECK(padded, "10 users then 10 empty slots");
    float bad[8] = {1, 2, NAN, 4, 5, 6, 7, 8};
    NU_CHECK(nu_search(&t, &o, bad, 1, 8, NULL, id20, s20, NULL) == NU_ERR_INVALID_ARG &&
                 strstr(nu_last_error(), "NaN"),
             "a NaN query is refused: %s", nu_last_error());
    o.dtype = NU_TABLE_BF16;
    NU_CHECK(nu_search(&t, &o, Q, 1, 8, NULL, id20, s20, NULL) == NU_ERR_INVALID_ARG,
             "asking for an encoding the table lacks is an error");
    nu_model_free(m);
    nu_user_table_free(&t);
    free(Q);
    return nu_test_finish("unit_search");
}
