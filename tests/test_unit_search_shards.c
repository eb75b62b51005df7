/* Sharded search without MPI: a table file opened by row ranges (the even
 * split of app/mpi over R = 1..5 shards), each shard's candidate pool
 * (nu_search_run_pool), and the merge (nu_search_merge) give exactly the
 * top-K of one search of the whole table -- ids and scores bit for bit --
 * for fp32, bf16 and int8, with exclusions, on rows with many exact ties
 * (integer-valued embeddings, duplicated rows across shard boundaries).
 * Also: a row range maps only its rows, bad ranges are refused, and the
 * public nu_table_open_rows serves global row ids. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel_test_util.h"
#include "retrieval/search.h"
#include "retrieval/search_merge.h"

enum { USERS = 1001, D = 16, B = 9, K = 20 };

static nu_model *model(void)
{
    char json[256];
    snprintf(json, sizeof json, "{\"num_users\": %d, \"d\": %d, \"heads\": 1}", USERS, D);
    nu_model_config c;
    nu_model *m;
    if (nu_config_parse(json, "t", &c) != NU_OK || nu_model_create(&c, &m) != NU_OK)
        exit(2);
    nu_rng r = {5};
    for (size_t i = 0; i < (size_t)USERS * D; i++)
        m->w.user_emb[i] = (float)(int)nu_rng_range(&r, 0, 6) - 3.0f;
    /* Whole duplicated rows across every split: exact ties at any R. */
    for (size_t u = 500; u < 520; u++)
        memcpy(m->w.user_emb + u * D, m->w.user_emb + (u - 500) * D, D * sizeof(float));
    return m;
}

static void shard_rows(size_t rows, int R, int r, size_t *first, size_t *count)
{
    *first = rows * (size_t)r / (size_t)R;
    *count = rows * ((size_t)r + 1) / (size_t)R - *first;
}

/* The R shards' pools merged, against one whole-table search. */
static void check_split(const char *path, const nu_user_table *whole, nu_table_dtype dt, int R,
                        int threads, const float *Q, const nu_id_list *ex, size_t pool)
{
    nu_search_opts o = {.k = K, .dtype = dt, .threads = 2, .pool = pool};
    uint32_t want_ids[B * K], got_ids[B * K];
    float want_sc[B * K], got_sc[B * K];
    NU_CHECK(nu_search(whole, &o, Q, B, D, ex, want_ids, want_sc, NULL) == NU_OK, "whole: %s",
             nu_last_error());
    o.threads = threads;
    pool = dt == NU_TABLE_F32 ? K : pool;
    uint32_t *ids = malloc((size_t)R * B * pool * sizeof *ids);
    float *ap = malloc((size_t)R * B * pool * sizeof *ap), *exs = malloc((size_t)R * B * pool * 4);
    int ok = 1;
    for (int r = 0; r < R; r++) {
        size_t first, count;
        shard_rows(USERS, R, r, &first, &count);
        nu_user_table t;
        nu_search_plan p;
        nu_search_scratch s;
        ok &= nu_user_table_open_rows(path, NULL, first, count, &t) == NU_OK;
        ok &= ok && nu_search_plan_make(&t, threads, 0, &p) == NU_OK;
        ok &= ok && nu_search_scratch_make(&p, &o, B, &s) == NU_OK && s.pool == pool;
        size_t at = (size_t)r * B * pool;
        ok &= ok && nu_search_run_pool(&p, &s, Q, B, D, ex, ids + at, ap + at, exs + at) == NU_OK;
        for (size_t i = 0; ok && i < B * pool; i++)
            ok &= ids[at + i] == NU_TOPK_NONE || (ids[at + i] >= first && ids[at + i] < first + count);
        nu_search_scratch_free(&s);
        nu_search_plan_free(&p);
        nu_user_table_free(&t);
    }
    NU_CHECK(ok, "%s R=%d: shards open and scan, ids within each shard: %s",
             nu_table_dtype_name(dt), R, nu_last_error());
    void *scratch = malloc(nu_search_merge_scratch_bytes((size_t)R, pool));
    for (size_t b = 0; b < B; b++)
        nu_search_merge(dt, (size_t)R, pool, B * pool, ids + b * pool, ap + b * pool,
                        exs + b * pool, K, scratch, got_ids + b * K, got_sc + b * K);
    NU_CHECK(!memcmp(got_ids, want_ids, sizeof got_ids) && !memcmp(got_sc, want_sc, sizeof got_sc),
             "%s, %d shards x %d threads, pool %zu: merged top-%d equals the whole table's bit "
             "for bit", nu_table_dtype_name(dt), R, threads, pool, K);
    free(scratch);
    free(ids);
    free(ap);
    free(exs);
}

int main(void)
{
    if (nu_init() != NU_OK)
        return 2;
    char dir[] = "/tmp/nu_shards_XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    char path[256];
    snprintf(path, sizeof path, "%s/user_table.safetensors", dir);
    nu_test_put(dir, "model.safetensors", "stamp"); /* the table records a model file */
    nu_model *m = model();
    nu_user_table whole;
    NU_CHECK(nu_user_table_build(m, 1, 1, &whole) == NU_OK, "build: %s", nu_last_error());
    NU_CHECK(nu_user_table_save(&whole, path, dir) == NU_OK, "save: %s", nu_last_error());

    float Q[B * D];
    nu_rng r = {11};
    for (size_t i = 0; i < B * D; i++)
        Q[i] = (float)(int)nu_rng_range(&r, 0, 5) - 2.0f;
    memset(Q + 3 * D, 0, D * sizeof(float)); /* every score 0: the tie rule alone */
    Q[4 * D] = 1;                            /* one axis: many equal scores */
    memset(Q + 4 * D + 1, 0, (D - 1) * sizeof(float));
    uint32_t ex0[] = {0, 1, 2, 500, 1000, 333}, ex2[] = {7};
    nu_id_list ex[B] = {{ex0, 6}, {NULL, 0}, {ex2, 1}, {ex0, 6}};
    for (int dt = 0; dt < 3; dt++)
        for (int R = 1; R <= 5; R++) {
            /* A pool near k: which candidates make the pool decides the result. */
            check_split(path, &whole, (nu_table_dtype)dt, R, 1, Q, NULL, 48);
            check_split(path, &whole, (nu_table_dtype)dt, R, R % 2 ? 3 : 2, Q, ex, 48);
            check_split(path, &whole, (nu_table_dtype)dt, R, 2, Q, ex, K);
        }

    /* Only the range is mapped: each tensor's rows, plus less than a page. */
    nu_user_table t;
    NU_CHECK(nu_user_table_open_rows(path, dir, 400, 100, &t) == NU_OK, "open rows: %s",
             nu_last_error());
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    NU_CHECK(t.rows == 100 && t.first_row == 400 && t.total_rows == USERS && !t.file.map &&
                 t.range_len[0] < 100 * whole.d * 4 + page && t.range_len[1] < 100 * whole.d * 2 + page,
             "rows [400, 500): %zu rows mapped in %zu + %zu bytes", t.rows, t.range_len[0],
             t.range_len[1]);
    NU_CHECK(!memcmp(t.f32, whole.f32 + 400 * whole.d, 100 * whole.d * 4) &&
                 !memcmp(t.i8_scale, whole.i8_scale + 400, 100 * 4),
             "the mapped rows are the table's");
    NU_CHECK(nu_user_table_make_resident(&t) == NU_OK && !t.range_map[0] && t.first_row == 400 &&
                 !memcmp(t.f32, whole.f32 + 400 * whole.d, 100 * whole.d * 4),
             "a row range copied into private memory keeps its rows");
    nu_user_table_free(&t);
    NU_CHECK(nu_user_table_open_rows(path, dir, 1000, 2, &t) == NU_ERR_INVALID_ARG &&
                 nu_user_table_open_rows(path, dir, 5, 0, &t) == NU_ERR_INVALID_ARG,
             "a range past the table, or empty, is refused: %s", nu_last_error());

    /* The public API: an engine over rows [600, 1001) answers with global rows. */
    nu_table *pt = NULL;
    nu_engine *e = NULL;
    nu_session *ses = NULL;
    nu_engine_options eo;
    nu_engine_options_init(&eo);
    eo.k = 5;
    eo.threads = 1;
    size_t first = 0, count = 0;
    uint32_t rows[5];
    float sc[5];
    NU_CHECK(nu_table_open_rows(m, dir, NU_DTYPE_INT8, 600, 401, &pt) == NU_OK &&
                 nu_engine_create(m, pt, &eo, &e) == NU_OK && nu_session_create(e, &ses) == NU_OK &&
                 nu_session_search(ses, Q, 1, D, rows, sc) == NU_OK,
             "nu_table_open_rows + engine: %s", nu_last_error());
    nu_table_row_range(pt, &first, &count);
    int inside = first == 600 && count == 401;
    for (int j = 0; j < 5; j++)
        inside &= rows[j] >= 600 && rows[j] < USERS;
    NU_CHECK(inside, "the shard's rows, by their global ids");
    nu_session_free(ses);
    nu_engine_free(e);
    nu_table_free(pt);

    nu_user_table_free(&whole);
    nu_model_free(m);
    unlink(path);
    char mp[256];
    snprintf(mp, sizeof mp, "%s/model.safetensors", dir);
    unlink(mp);
    rmdir(dir);
    return nu_test_finish("unit_search_shards");
}
