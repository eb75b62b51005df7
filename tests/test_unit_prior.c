/* The serving prior (label retrieve): a model with user_prior and
 * prior_weight w scores users by cos(q, u) / tau + w * prior[u].  The table
 * carries tau * w * prior as a last column and the search appends a 1 to
 * each unit query, so the same kernels rank by that sum: checked against a
 * double-precision brute force for fp32, by recall for bf16 and int8; the
 * model files and the table file keep the prior; a table made for another
 * weight is not used; bad priors are refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel_test_util.h"
#include "retrieval/search.h"

enum { USERS = 3000, D = 32, B = 6, K = 30 };

static nu_model *model_with_prior(double weight)
{
    char json[256];
    snprintf(json, sizeof json, "{\"num_users\": %d, \"d\": %d, \"heads\": 1}", USERS, D);
    nu_model_config c;
    nu_model *m;
    if (nu_config_parse(json, "t", &c) != NU_OK || nu_model_create(&c, &m) != NU_OK)
        exit(2);
    nu_rng r = {5};
    for (size_t i = 0; i < (size_t)USERS * D; i++)
        m->w.user_emb[i] = nu_rng_range(&r, -1, 1);
    m->user_prior = malloc(USERS * sizeof(float));
    for (size_t u = 0; u < USERS; u++) /* a skewed activity, as log(1 + positives) */
        m->user_prior[u] = log1pf(floorf(expf(nu_rng_range(&r, 0, 6))));
    m->cfg.prior_weight = weight;
    return m;
}

/* The top K of cos / tau + w * prior in double, ties by lower row. */
static void reference(const nu_model *m, const float *q, uint32_t *ids, double *sc)
{
    double qn = 0;
    for (size_t j = 0; j < D; j++)
        qn += (double)q[j] * q[j];
    for (size_t j = 0; j < K; j++) {
        ids[j] = NU_TOPK_NONE;
        sc[j] = -INFINITY;
    }
    for (size_t u = 0; u < USERS; u++) {
        double dot = 0, un = 0;
        for (size_t j = 0; j < D; j++) {
            dot += (double)q[j] * m->w.user_emb[u * D + j];
            un += (double)m->w.user_emb[u * D + j] * m->w.user_emb[u * D + j];
        }
        double s = dot / sqrt(qn * un) / m->cfg.tau + m->cfg.prior_weight * m->user_prior[u];
        size_t pos = K;
        while (pos > 0 && s > sc[pos - 1])
            pos--;
        if (pos >= K)
            continue;
        memmove(ids + pos + 1, ids + pos, (K - pos - 1) * sizeof *ids);
        memmove(sc + pos + 1, sc + pos, (K - pos - 1) * sizeof *sc);
        ids[pos] = (uint32_t)u;
        sc[pos] = s;
    }
}

static double overlap(const uint32_t *a, const uint32_t *b, size_t k)
{
    size_t hit = 0;
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++)
            hit += a[i] == b[j];
    return (double)hit / (double)k;
}

int main(void)
{
    if (nu_init() != NU_OK)
        return 2;
    float Q[B * D];
    nu_rng r = {11};
    for (size_t i = 0; i < B * D; i++)
        Q[i] = nu_rng_range(&r, -1, 1);

    nu_model *m = model_with_prior(1.0);
    nu_user_table t;
    NU_CHECK(nu_user_table_build(m, 1, 1, &t) == NU_OK, "build: %s", nu_last_error());
    NU_CHECK(t.d == D + 1 && t.query_d == D && t.prior_weight == 1.0, "a prior column: d %zu",
             t.d);
    NU_CHECK(fabsf(t.f32[7 * t.d + D] - (float)(0.1 * 1.0 * m->user_prior[7])) < 1e-7f,
             "the column is tau * w * prior");
    uint32_t ids[B * K], want[K];
    float sc[B * K];
    double wsc[K];
    /* The prior must matter here: the ranking differs from cosine alone. */
    double moved = 0;
    for (int dt = 0; dt < 3; dt++) {
        nu_search_opts o = {.k = K, .dtype = (nu_table_dtype)dt, .threads = 2};
        NU_CHECK(nu_search(&t, &o, Q, B, D, NULL, ids, sc, NULL) == NU_OK, "search %d: %s", dt,
                 nu_last_error());
        for (size_t b = 0; b < B; b++) {
            reference(m, Q + b * D, want, wsc);
            double rec = overlap(ids + b * K, want, K);
            if (dt == NU_TABLE_F32) {
                int same = 1;
                for (size_t j = 0; j < K; j++) /* scores: cos + tau w prior, scaled by tau */
                    same &= fabs(sc[b * K + j] / 0.1 - wsc[j]) < 1e-3;
                /* float vs double may swap a near-tie at the boundary: the
                 * scores rank by rank are what must agree. */
                NU_CHECK(rec >= 0.96 && same, "fp32 query %zu: the exact top %d of cos/tau + w "
                         "prior (overlap %.3f)", b, K, rec);
            } else {
                NU_CHECK(rec >= 0.95, "%s query %zu: recall %.3f of the exact top %d",
                         nu_table_dtype_name((nu_table_dtype)dt), b, rec, K);
            }
        }
    }
    nu_model *plain = model_with_prior(0.0);
    nu_user_table t0;
    NU_CHECK(nu_user_table_build(plain, 0, 0, &t0) == NU_OK && t0.d == D && t0.query_d == D,
             "prior_weight 0: no column");
    nu_search_opts o = {.k = K, .dtype = NU_TABLE_F32, .threads = 1};
    uint32_t ids0[B * K];
    nu_search(&t0, &o, Q, B, D, NULL, ids0, sc, NULL);
    for (size_t b = 0; b < B; b++)
        moved += 1.0 - overlap(ids0 + b * K, ids + b * K, K);
    nu_search(&t, &o, Q, B, D, NULL, ids, sc, NULL);
    moved = 0;
    for (size_t b = 0; b < B; b++)
        moved += 1.0 - overlap(ids0 + b * K, ids + b * K, K);
    NU_CHECK(moved / B > 0.2, "the prior changes the top %d (%.2f of it on average)", K, moved / B);
    nu_user_table_free(&t0);
    nu_model_free(plain);

    /* Model files keep the prior; the table file records its weight. */
    char dir[96], path[160];
    snprintf(dir, sizeof dir, "/tmp/nu_prior_%ld", (long)getpid());
    NU_CHECK(nu_model_save(m, dir) == NU_OK, "save: %s", nu_last_error());
    nu_model *back = NULL;
    NU_CHECK(nu_model_load(dir, &back) == NU_OK, "load: %s", nu_last_error());
    if (back) {
        NU_CHECK(back->cfg.prior_weight == 1.0 && back->user_prior &&
                     !memcmp(back->user_prior, m->user_prior, USERS * sizeof(float)),
                 "prior_weight and user_prior saved and loaded");
        snprintf(path, sizeof path, "%s/user_table.safetensors", dir);
        NU_CHECK(nu_user_table_save(&t, path, dir) == NU_OK, "table save: %s", nu_last_error());
        nu_user_table f;
        int from_file = 0;
        NU_CHECK(nu_user_table_for_model(back, dir, NU_TABLE_I8, &f, &from_file) == NU_OK &&
                     from_file && f.d == D + 1 && f.query_d == D && f.prior_weight == 1.0,
                 "the table file keeps query_d and the weight");
        nu_user_table_free(&f);
        back->cfg.prior_weight = 0.5; /* another weight: the file does not fit, built anew */
        NU_CHECK(nu_user_table_for_model(back, dir, NU_TABLE_F32, &f, &from_file) == NU_OK &&
                     !from_file && f.prior_weight == 0.5,
                 "a table made for another weight is not used");
        nu_user_table_free(&f);
        nu_model_free(back);
    }
    /* Refused: a weight without the prior, a negative weight. */
    float *keep = m->user_prior;
    m->user_prior = NULL;
    NU_CHECK(nu_model_save(m, dir) == NU_OK, "save without the prior");
    back = NULL;
    NU_CHECK(nu_model_load(dir, &back) == NU_ERR_FORMAT && strstr(nu_last_error(), "user_prior"),
             "prior_weight without user_prior refused: %s", nu_last_error());
    nu_model_free(back);
    m->user_prior = keep;
    nu_model_config c;
    NU_CHECK(nu_config_parse("{\"num_users\": 3, \"prior_weight\": -1}", "cfg", &c) ==
                     NU_ERR_INVALID_ARG && strstr(nu_last_error(), "prior_weight"),
             "a negative prior_weight refused");
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    NU_CHECK(system(cmd) == 0, "cleanup");
    nu_user_table_free(&t);
    nu_model_free(m);
    return nu_test_finish("unit_prior");
}
