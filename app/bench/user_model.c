/* Loading a user's model, table and items for `nextuser bench --model`:
 * the public API does the loading and the checking, as in a deployment. */
#include "bench/user_model.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/handles.h"
#include "cli/table_residency.h"
#include "error.h"
#include "model/model.h"
#include "util/rng.h"

#define SYNTH_ITEMS 4096 /* items synthesised without --items */

/* The error of a failed public call, prefixed with what was being read. */
static nu_status fail(nu_status s, const char *what, const char *path)
{
    return nu_error_context(s, "%s %s: ", what, path);
}

/* The table with every asked encoding: the model's file when it holds them
 * (copied or memory-mapped as table_copy says: --table auto|copy|map),
 * else built in memory. */
static nu_status open_table(const nu_bench_user_request *q, nu_bench_user_model *u)
{
    nu_status s = nu_table_open(u->model, q->dir, NU_DTYPE_FP32, &u->table);
    if (s != NU_OK)
        return fail(s, "--model", q->dir);
    u->table_from_file = nu_table_source(u->table) != NU_TABLE_BUILT;
    unsigned held = 0, want = q->dtypes | NU_DTYPE_BIT(NU_DTYPE_FP32);
    for (unsigned d = NU_DTYPE_FP32; d <= NU_DTYPE_INT8; d++)
        if (nu_table_has(u->table, (nu_dtype)d))
            held |= NU_DTYPE_BIT(d);
    if (q->file_dtypes && u->table_from_file)
        want |= held;
    if (want & ~held) {
        nu_table_free(u->table);
        u->table = NULL;
        u->table_from_file = 0;
        if ((s = nu_table_build(u->model, want, &u->table)) != NU_OK)
            return fail(s, "--model", q->dir);
        held = want;
    }
    u->table_dtypes = held;
    if (u->table_from_file && nu_cli_table_resolve(q->table_copy, nu_cli_table_bytes(u->table), 1)) {
        if ((s = nu_table_make_resident(u->table)) != NU_OK)
            return fail(s, "--model", q->dir);
        u->table_copied = 1;
    }
    return NU_OK;
}

/* Without --items: SYNTH_ITEMS items of full windows (max_users users drawn
 * uniformly from the model's users), one value per categorical field, two
 * per multi field (drawn from its vocabulary, <unk> left out) and dense
 * values uniform in [-1, 1], written as JSON lines and read by the same
 * parser as a file. */
static nu_status synthesise(const nu_bench_user_request *q, nu_bench_user_model *u, nu_batch *b)
{
    const nu_model *m = u->model;
    const nu_model_config *c = &m->cfg;
    nu_random r = {q->seed + 1};
    nu_status s = NU_OK;
    for (size_t i = 0; i < SYNTH_ITEMS && s == NU_OK; i++) {
        cJSON *o = cJSON_CreateObject(), *users = cJSON_AddArrayToObject(o, "users");
        cJSON *feat = cJSON_AddObjectToObject(o, "features");
        char id[32];
        snprintf(id, sizeof id, "synth-%zu", i);
        cJSON_AddStringToObject(o, "id", id);
        for (size_t k = 0; k < c->max_users; k++)
            cJSON_AddItemToArray(users, cJSON_CreateString(nu_model_user_id(
                                            m, (uint32_t)nu_random_below(&r, c->num_users))));
        for (size_t f = 0; f < c->n_prefix; f++) {
            const nu_field_config *fc = &c->prefix[f];
            if (fc->kind == NU_FIELD_DENSE) {
                cJSON *v = cJSON_AddArrayToObject(feat, fc->name);
                for (size_t j = 0; j < fc->size; j++)
                    cJSON_AddItemToArray(v, cJSON_CreateNumber(2 * nu_random_unit(&r) - 1));
                continue;
            }
            if (fc->size < 2)
                continue; /* only <unk> */
            const nu_idmap *vm = &m->vocab[f];
            size_t want = fc->kind == NU_FIELD_CATEGORICAL ? 1 : 2;
            cJSON *v = fc->kind == NU_FIELD_CATEGORICAL ? feat : cJSON_AddArrayToObject(feat, fc->name);
            for (size_t j = 0; j < want; j++) {
                const char *val = vm->names[1 + nu_random_below(&r, vm->count - 1)];
                if (fc->kind == NU_FIELD_CATEGORICAL)
                    cJSON_AddStringToObject(v, fc->name, val);
                else
                    cJSON_AddItemToArray(v, cJSON_CreateString(val));
            }
        }
        char *line = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        s = line ? nu_batch_add_json(b, line, strlen(line))
                 : nu_error(NU_ERR_NOMEM, "out of memory synthesising items");
        cJSON_free(line);
    }
    return s;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Context lengths, and a refusal of items that name mostly users the model
 * does not know: items written for another model. */
static nu_status item_stats(const nu_bench_user_request *q, nu_bench_user_model *u, const nu_batch *b)
{
    size_t n = nu_batch_count(b), known = 0;
    nu_batch_input_counts(b, &u->unknown_users, &u->unknown_values, &u->truncated_items);
    size_t *len = malloc(n * sizeof *len);
    if (!len)
        return nu_error(NU_ERR_NOMEM, "out of memory for item statistics");
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t *rows;
        size_t h = 0;
        nu_batch_item_history(b, i, &rows, &h);
        known += h;
        len[i] = nu_batch_item_users(b, i);
        sum += (double)len[i];
    }
    qsort(len, n, sizeof *len, cmp_size);
    u->items = n;
    u->users_mean = sum / (double)n;
    u->users_min = len[0];
    u->users_p50 = len[(n - 1) / 2];
    u->users_max = len[n - 1];
    free(len);
    if (u->unknown_users > known)
        return nu_error(NU_ERR_INVALID_ARG,
                        "--items %s: %zu of the %zu users it names are not users of the model %s "
                        "(items for another model?)",
                        q->items_path, u->unknown_users, u->unknown_users + known, q->dir);
    return NU_OK;
}

static nu_status load_items(const nu_bench_user_request *q, nu_bench_user_model *u)
{
    nu_batch *b = NULL;
    nu_status s = nu_batch_create(u->model, &b);
    if (s != NU_OK)
        return s;
    if (q->items_path) {
        if ((s = nu_batch_read_jsonl(b, q->items_path)) != NU_OK)
            s = fail(s, "--items", q->items_path);
        else if (nu_batch_count(b) == 0)
            s = nu_error(NU_ERR_INVALID_ARG, "--items %s: no items", q->items_path);
    } else {
        s = synthesise(q, u, b);
    }
    if (s == NU_OK)
        s = item_stats(q, u, b);
    /* Repeated in file order up to the pool: the traffic's own mix. */
    size_t n = nu_batch_count(b);
    if (s == NU_OK && n < q->pool_min) {
        s = nu_batch_create(u->model, &u->pool);
        while (s == NU_OK && nu_batch_count(u->pool) < q->pool_min)
            s = nu_batch_append(u->pool, b, 0, n);
        nu_batch_free(b);
    } else {
        u->pool = b;
    }
    return s;
}

/* The search queries of the pool's first items, repeated to q->queries rows. */
static nu_status make_queries(const nu_bench_user_request *q, nu_bench_user_model *u)
{
    size_t n = q->queries, have = nu_batch_count(u->pool);
    size_t e = n < have ? n : have;
    u->query_dim = nu_model_query_dim(u->model);
    u->queries = malloc(n * u->query_dim * sizeof *u->queries);
    nu_batch *head = NULL;
    nu_status s = u->queries ? nu_batch_create(u->model, &head)
                             : nu_error(NU_ERR_NOMEM, "out of memory for %zu queries", n);
    if (s == NU_OK)
        s = nu_batch_append(head, u->pool, 0, e);
    nu_embed_options o;
    nu_embed_options_init(&o);
    o.kind = NU_EMBED_QUERY;
    o.threads = q->threads;
    if (s == NU_OK)
        s = nu_embed(u->model, head, &o, u->queries, NULL);
    for (size_t i = e; s == NU_OK && i < n; i++)
        memcpy(u->queries + i * u->query_dim, u->queries + (i % e) * u->query_dim,
               u->query_dim * sizeof *u->queries);
    nu_batch_free(head);
    u->n_queries = n;
    return s;
}

nu_status nu_bench_user_load(const nu_bench_user_request *q, nu_bench_user_model *u)
{
    memset(u, 0, sizeof *u);
    u->dir = q->dir;
    u->items_path = q->items_path;
    nu_status s = nu_model_load(q->dir, &u->model);
    if (s != NU_OK)
        s = fail(s, "--model", q->dir);
    if (s == NU_OK)
        s = open_table(q, u);
    if (s == NU_OK)
        s = load_items(q, u);
    if (s == NU_OK && q->queries)
        s = make_queries(q, u);
    if (s != NU_OK)
        nu_bench_user_free(u);
    return s;
}

void nu_bench_user_free(nu_bench_user_model *u)
{
    free(u->queries);
    nu_batch_free(u->pool);
    nu_table_free(u->table);
    nu_model_free(u->model);
    memset(u, 0, sizeof *u);
}

const nu_items *nu_bench_user_items_of(const nu_bench_user_model *u)
{
    return &u->pool->items;
}

const nu_user_table *nu_bench_user_table_of(const nu_bench_user_model *u)
{
    return &u->table->table;
}
