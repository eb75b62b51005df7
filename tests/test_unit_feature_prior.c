/* The feature prior (label model): its columns and entries built from a
 * hand-made data directory where they are computed by hand below; an item's
 * query indicators; the user table and the search ranking exactly by
 *   cos / tau + w * prior[u] + fw * sum of the item's columns of u
 * (a double-precision brute force, every encoding); the model and table
 * files keeping it; bad files refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/items.h"
#include "kernel_test_util.h"
#include "model/feature_prior.h"
#include "retrieval/search.h"
#include "train/feature_prior_build.h"

enum { USERS = 6, D = 8, COLS = 5 };

/* Users u0..u5; fields g (multi: action comedy drama) and y (categorical:
 * 1990s 2000s).  Train items (values; positives):
 *   T1 action comedy, 1990s; u0 u1
 *   T2 drama, 2000s;         u2 u3 u4
 *   T3 action, 2000s;        u1 u5
 *   T4 no features;          u2 u4 u5
 *   V  drama, 1990s;         u0 u1 u2 u3  (validation: never counted)
 * Masses (positives on train items holding the value): 2000s 5, action 4,
 * drama 3, comedy 2, 1990s 2, so the columns are, most first and ties by
 * field: (y 2000s) (g action) (g drama) (g comedy) (y 1990s).
 * Counts per user over those columns:
 *   u0 0 1 0 1 1   u1 1 2 0 1 1   u2 1 0 1 0 0
 *   u3 1 0 1 0 0   u4 1 0 1 0 0   u5 1 1 0 0 0 */
static const int32_t want_cols[COLS][2] = {{1, 2}, {0, 1}, {0, 3}, {0, 2}, {1, 1}};
static const float want_counts[USERS][COLS] = {{0, 1, 0, 1, 1}, {1, 2, 0, 1, 1}, {1, 0, 1, 0, 0},
                                               {1, 0, 1, 0, 0}, {1, 0, 1, 0, 0}, {1, 1, 0, 0, 0}};

static const char *const items_jsonl =
    "{\"id\": \"T1\", \"split\": \"train\", \"features\": {\"g\": [\"action\", \"comedy\"], "
    "\"y\": \"1990s\"}, \"positives\": [[\"u0\", 1], [\"u1\", 2]]}\n"
    "{\"id\": \"T2\", \"split\": \"train\", \"features\": {\"g\": [\"drama\"], \"y\": \"2000s\"}, "
    "\"positives\": [[\"u2\", 1], [\"u3\", 2], [\"u4\", 3]]}\n"
    "{\"id\": \"T3\", \"split\": \"train\", \"features\": {\"g\": [\"action\"], \"y\": \"2000s\"}, "
    "\"positives\": [[\"u1\", 1], [\"u5\", 2]]}\n"
    "{\"id\": \"T4\", \"split\": \"train\", \"positives\": [[\"u2\", 1], [\"u4\", 2], [\"u5\", 3]]}\n"
    "{\"id\": \"V\", \"split\": \"val\", \"features\": {\"g\": [\"drama\"], \"y\": \"1990s\"}, "
    "\"positives\": [[\"u0\", 1], [\"u1\", 2], [\"u2\", 3], [\"u3\", 4]]}\n";

static int load_data(nu_dataset *ds)
{
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/nu_test_fprior_%d", (int)getpid());
    mkdir(dir, 0777);
    nu_test_put(dir, "data.json",
                "{\"format\": \"nextuser-data-1\", \"num_users\": 6, \"num_items\": 5, \"seed\": 1, "
                "\"source\": \"hand\", \"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\", "
                "\"vocab\": 4}, {\"name\": \"y\", \"kind\": \"categorical\", \"vocab\": 3}]}\n");
    nu_test_put(dir, "users.txt", "u0\nu1\nu2\nu3\nu4\nu5\n");
    nu_test_put(dir, "vocab_g.txt", "<unk>\naction\ncomedy\ndrama\n");
    nu_test_put(dir, "vocab_y.txt", "<unk>\n1990s\n2000s\n");
    nu_test_put(dir, "items.jsonl", items_jsonl);
    nu_status s = nu_dataset_load(dir, ds);
    NU_CHECK(s == NU_OK, "load: %s", nu_last_error());
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 0;
    return s == NU_OK;
}

static nu_model *model_for(const nu_dataset *ds)
{
    nu_model_config c;
    nu_config_defaults(&c);
    c.d = D;
    c.heads = 1;
    c.ffn = 16;
    c.num_users = USERS;
    c.n_prefix = ds->cfg.n_prefix;
    memcpy(c.prefix, ds->cfg.prefix, sizeof c.prefix);
    nu_model *m = NULL;
    if (nu_model_create(&c, &m) != NU_OK)
        exit(2);
    nu_rng r = {3};
    for (size_t i = 0; i < (size_t)USERS * D; i++)
        m->w.user_emb[i] = nu_rng_range(&r, -1, 1);
    m->user_prior = malloc(USERS * sizeof(float));
    for (size_t u = 0; u < USERS; u++)
        m->user_prior[u] = log1pf((float)u);
    return m;
}

/* The exact score of user u for query q (d values, then COLS indicators). */
static double exact(const nu_model *m, const float *q, size_t u)
{
    double dot = 0, qn = 0, un = 0;
    for (size_t j = 0; j < D; j++) {
        dot += (double)q[j] * m->w.user_emb[u * D + j];
        qn += (double)q[j] * q[j];
        un += (double)m->w.user_emb[u * D + j] * m->w.user_emb[u * D + j];
    }
    double s = dot / sqrt(qn * un) / m->cfg.tau + m->cfg.prior_weight * m->user_prior[u];
    for (size_t c = 0; c < COLS; c++)
        s += m->cfg.feature_prior_weight * q[D + c] * m->user_feature_prior[u * COLS + c];
    return s;
}

static void check_ranking(const nu_model *m, const nu_user_table *t, const float *Q, size_t B)
{
    for (int dt = 0; dt < 3; dt++) {
        nu_search_opts o = {.k = USERS, .dtype = (nu_table_dtype)dt, .threads = 1};
        uint32_t ids[4 * USERS];
        float sc[4 * USERS];
        NU_CHECK(nu_search(t, &o, Q, B, D + COLS, NULL, ids, sc, NULL) == NU_OK, "search %d: %s",
                 dt, nu_last_error());
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < USERS; j++) {
                double want = exact(m, Q + b * (D + COLS), ids[b * USERS + j]);
                NU_CHECK(fabs(sc[b * USERS + j] / m->cfg.tau - want) < 1e-4,
                         "%s query %zu rank %zu: score %g, exact %g",
                         nu_table_dtype_name((nu_table_dtype)dt), b, j,
                         sc[b * USERS + j] / m->cfg.tau, want);
                if (j > 0)
                    NU_CHECK(sc[b * USERS + j] <= sc[b * USERS + j - 1], "best first");
            }
    }
}

int main(void)
{
    if (nu_init() != NU_OK)
        return 2;
    nu_dataset ds;
    if (!load_data(&ds))
        return nu_test_finish("unit_feature_prior");
    nu_model *m = model_for(&ds);
    NU_CHECK(nu_feature_prior_build(m, &ds) == NU_OK, "build: %s", nu_last_error());
    NU_CHECK(m->n_feature_prior == COLS, "%zu columns", m->n_feature_prior);
    for (size_t c = 0; c < COLS && m->n_feature_prior == COLS; c++)
        NU_CHECK(m->fp_values[c][0] == want_cols[c][0] && m->fp_values[c][1] == want_cols[c][1],
                 "column %zu is field %d value %d", c, (int)m->fp_values[c][0],
                 (int)m->fp_values[c][1]);
    for (size_t u = 0; u < USERS && m->n_feature_prior == COLS; u++)
        for (size_t c = 0; c < COLS; c++)
            NU_CHECK(fabsf(m->user_feature_prior[u * COLS + c] - log1pf(want_counts[u][c])) < 1e-6f,
                     "u%zu column %zu: %g", u, c, m->user_feature_prior[u * COLS + c]);

    /* Weight 0: no feature columns, queries of width d. */
    NU_CHECK(nu_model_query_width(m) == D && nu_feature_prior_columns(m) == 0, "unweighed");
    m->cfg.prior_weight = 0.5;
    m->cfg.feature_prior_weight = 2;
    NU_CHECK(nu_model_query_width(m) == D + COLS, "weighed: width d + columns");

    /* Indicators: an item with drama, action (and <unk>) and 2000s; one with none. */
    nu_items it;
    nu_items_init(&it, &m->cfg);
    const uint32_t vals1[] = {3, 1, 0, 2}, users[] = {1};
    const size_t counts1[] = {3, 1}, counts0[] = {0, 0};
    NU_CHECK(nu_items_push(&it, &m->cfg, "a", users, 1, vals1, counts1, NULL) == NU_OK &&
                 nu_items_push(&it, &m->cfg, "b", users, 0, vals1, counts0, NULL) == NU_OK,
             "items: %s", nu_last_error());
    float Q[2 * (D + COLS)];
    nu_rng r = {9};
    for (size_t i = 0; i < 2 * D; i++)
        Q[i] = nu_rng_range(&r, -1, 1);
    const float keep_second = Q[D];
    nu_model_query_tails(m, &it, 0, Q, 2);
    const float want_tail[2][COLS] = {{1, 1, 1, 0, 0}, {0, 0, 0, 0, 0}};
    NU_CHECK(Q[D + COLS] == keep_second, "the second query moved to its widened row");
    for (size_t b = 0; b < 2; b++)
        for (size_t c = 0; c < COLS; c++)
            NU_CHECK(Q[b * (D + COLS) + D + c] == want_tail[b][c], "query %zu indicator %zu: %g",
                     b, c, Q[b * (D + COLS) + D + c]);

    /* The table and the search rank by the exact sum. */
    nu_user_table t;
    NU_CHECK(nu_user_table_build(m, 1, 1, &t) == NU_OK, "table: %s", nu_last_error());
    NU_CHECK(t.unit_d == D && t.query_d == D + COLS && t.d == D + 1 + COLS &&
                 t.prior_weight == 0.5 && t.feature_prior_weight == 2,
             "table widths %zu %zu %zu", t.unit_d, t.query_d, t.d);
    check_ranking(m, &t, Q, 2);
    /* The feature prior moves users: item a's top user differs from item b's
     * at the same û only because of its indicators. */
    float Q2[2 * (D + COLS)];
    memcpy(Q2, Q, sizeof Q2);
    memcpy(Q2 + D + COLS, Q, D * sizeof *Q); /* b gets a's û, keeps no indicator */
    uint32_t ids[2 * USERS];
    float sc[2 * USERS];
    nu_search_opts o = {.k = USERS, .dtype = NU_TABLE_F32, .threads = 1};
    NU_CHECK(nu_search(&t, &o, Q2, 2, D + COLS, NULL, ids, sc, NULL) == NU_OK, "search");
    NU_CHECK(memcmp(ids, ids + USERS, sizeof *ids * USERS) != 0,
             "the indicators change the ranking");

    /* Files: the model and the table keep everything. */
    char dir[96], path[160];
    snprintf(dir, sizeof dir, "/tmp/nu_fprior_model_%ld", (long)getpid());
    NU_CHECK(nu_model_save(m, dir) == NU_OK, "save: %s", nu_last_error());
    nu_model *back = NULL;
    NU_CHECK(nu_model_load(dir, &back) == NU_OK, "load: %s", nu_last_error());
    if (back) {
        NU_CHECK(back->cfg.feature_prior_weight == 2 && back->n_feature_prior == COLS &&
                     !memcmp(back->fp_values, m->fp_values, sizeof m->fp_values[0] * COLS) &&
                     !memcmp(back->user_feature_prior, m->user_feature_prior,
                             USERS * COLS * sizeof(float)),
                 "the feature prior saved and loaded");
        snprintf(path, sizeof path, "%s/user_table.safetensors", dir);
        NU_CHECK(nu_user_table_save(&t, path, dir) == NU_OK, "table save: %s", nu_last_error());
        nu_user_table f;
        int from_file = 0;
        NU_CHECK(nu_user_table_for_model(back, dir, NU_TABLE_I8, &f, &from_file) == NU_OK &&
                     from_file && f.unit_d == D && f.query_d == D + COLS &&
                     f.feature_prior_weight == 2,
                 "the table file keeps unit_d and the weights");
        if (from_file)
            check_ranking(m, &f, Q, 2);
        nu_user_table_free(&f);
        back->cfg.feature_prior_weight = 1; /* another weight: built anew */
        NU_CHECK(nu_user_table_for_model(back, dir, NU_TABLE_F32, &f, &from_file) == NU_OK &&
                     !from_file && f.feature_prior_weight == 1,
                 "a table made for another feature weight is not used");
        nu_user_table_free(&f);
        nu_model_free(back);
    }
    /* Refused: a column naming a value the config does not have; a weight
     * without the tensors. */
    m->fp_values[0][1] = 3; /* y has values 1..2 */
    NU_CHECK(nu_model_save(m, dir) == NU_OK, "save a bad column");
    back = NULL;
    NU_CHECK(nu_model_load(dir, &back) == NU_ERR_FORMAT &&
                 strstr(nu_last_error(), "feature_prior_values"),
             "a column outside the vocabulary refused: %s", nu_last_error());
    nu_model_free(back);
    m->fp_values[0][1] = 2;
    size_t keep_n = m->n_feature_prior;
    m->n_feature_prior = 0;
    NU_CHECK(nu_model_save(m, dir) == NU_OK, "save without the feature prior");
    back = NULL;
    NU_CHECK(nu_model_load(dir, &back) == NU_ERR_FORMAT &&
                 strstr(nu_last_error(), "user_feature_prior"),
             "feature_prior_weight without the tensors refused: %s", nu_last_error());
    nu_model_free(back);
    m->n_feature_prior = keep_n;
    nu_model_config c;
    NU_CHECK(nu_config_parse("{\"num_users\": 3, \"feature_prior_weight\": -1}", "cfg", &c) ==
                     NU_ERR_INVALID_ARG && strstr(nu_last_error(), "feature_prior_weight"),
             "a negative feature_prior_weight refused");
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    NU_CHECK(system(cmd) == 0, "cleanup");
    nu_user_table_free(&t);
    nu_items_free(&it);
    nu_model_free(m);
    nu_dataset_free(&ds);
    return nu_test_finish("unit_feature_prior");
}
