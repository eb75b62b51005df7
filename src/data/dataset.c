#include "dataset.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/features_json.h"
#include "error.h"
#include "util/grow.h"
#include "util/json_strict.h"
#include "util/line_reader.h"
#include "util/path.h"
#include "util/rng.h"

#define DATA_FORMAT "nextuser-data-1"
#define DATA_JSON_MAX_BYTES (1 << 20)
#define DATA_JSON_MAX_VALUES 4096
/* The longest items.jsonl line (docs/data-format.md): an item with about
 * two million positives; a longer line is refused before memory goes to it. */
#define ITEMS_LINE_MAX ((size_t)64 << 20)

/* ---- data.json ---- */

static nu_status read_text(const char *path, char **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return nu_error(NU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0, r;
    do {
        if (len + 4097 > cap) {
            cap = 2 * cap + 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return nu_error(NU_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
        }
        r = fread(buf + len, 1, 4096, f);
        len += r;
        if (len > DATA_JSON_MAX_BYTES) {
            free(buf);
            fclose(f);
            return nu_error(NU_ERR_FORMAT, "%s: more than %d bytes: not a data.json", path,
                            DATA_JSON_MAX_BYTES);
        }
    } while (r == 4096);
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return nu_error(NU_ERR_IO, "%s: read failed", path);
    }
    buf[len] = 0;
    *out = buf;
    *out_len = len;
    return NU_OK;
}

static int whole(const cJSON *v, double lo, double hi)
{
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= lo &&
           v->valuedouble <= hi;
}

/* The config part (num_users, prefix_fields) goes through the model
 * config's own parser, so fields obey exactly the model's rules. */
static nu_status parse_data_json(const cJSON *root, const char *path, nu_dataset *ds)
{
    if (!cJSON_IsObject(root))
        return nu_error(NU_ERR_FORMAT, "%s: not a JSON object", path);
    static const char *const known[] = {"format", "num_users", "num_items",
                                        "prefix_fields", "seed", "source"};
    const cJSON *kv;
    cJSON_ArrayForEach(kv, root)
    {
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            ok |= strcmp(kv->string, known[i]) == 0;
        if (!ok)
            return nu_error(NU_ERR_FORMAT, "%s: unknown key \"%s\"", path, kv->string);
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, DATA_FORMAT) != 0)
        return nu_error(NU_ERR_FORMAT, "%s: \"format\" must be \"%s\"", path, DATA_FORMAT);
    const cJSON *nu = cJSON_GetObjectItemCaseSensitive(root, "num_users");
    const cJSON *ni = cJSON_GetObjectItemCaseSensitive(root, "num_items");
    if (!whole(nu, 1, 4294967294.0))
        return nu_error(NU_ERR_FORMAT, "%s: \"num_users\" must be a whole number >= 1", path);
    if (!whole(ni, 0, 4294967294.0))
        return nu_error(NU_ERR_FORMAT, "%s: \"num_items\" must be a whole number >= 0", path);
    ds->num_items = (size_t)ni->valuedouble;
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(root, "seed");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(root, "source");
    if (seed && !cJSON_IsNumber(seed))
        return nu_error(NU_ERR_FORMAT, "%s: \"seed\" must be a number", path);
    if (src && !cJSON_IsString(src))
        return nu_error(NU_ERR_FORMAT, "%s: \"source\" must be a string", path);
    ds->seed = seed ? seed->valuedouble : 0;
    if (src)
        snprintf(ds->source, sizeof ds->source, "%s", src->valuestring);
    cJSON *cfg = cJSON_CreateObject();
    const cJSON *pf = cJSON_GetObjectItemCaseSensitive(root, "prefix_fields");
    if (!cfg || !cJSON_AddItemToObject(cfg, "num_users", cJSON_CreateNumber(nu->valuedouble)) ||
        (pf && !cJSON_AddItemToObject(cfg, "prefix_fields", cJSON_Duplicate(pf, 1)))) {
        cJSON_Delete(cfg);
        return nu_error(NU_ERR_NOMEM, "out of memory");
    }
    char *json = cJSON_PrintUnformatted(cfg);
    cJSON_Delete(cfg);
    if (!json)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    nu_status s = nu_config_parse(json, path, &ds->cfg);
    free(json);
    return s == NU_ERR_INVALID_ARG ? NU_ERR_FORMAT : s; /* a bad field is a bad file here */
}

static nu_status load_data_json(const char *dir, nu_dataset *ds)
{
    char path[NU_PATH_MAX], *text = NULL;
    size_t len = 0;
    nu_status s = nu_path_join(path, sizeof path, dir, "data.json");
    if (s == NU_OK)
        s = read_text(path, &text, &len);
    if (s != NU_OK)
        return s;
    cJSON *root = NULL;
    s = nu_json_parse_strict(text, len, path, DATA_JSON_MAX_VALUES, &root, NULL);
    free(text);
    if (s == NU_OK)
        s = parse_data_json(root, path, ds);
    cJSON_Delete(root);
    return s;
}

/* ---- items.jsonl ---- */

/* The line being parsed: its text and where its numbers are, so ids given
 * as numbers read exactly as written (util/json_strict.h). */
typedef struct line_ctx {
    const char *text;
    nu_json_numbers nums;
} line_ctx;

/* A string id, or an integer literal as written (number k of the line). */
static const char *id_text(const cJSON *v, const line_ctx *lc, size_t k, char *buf, size_t cap)
{
    if (cJSON_IsString(v))
        return v->valuestring;
    return cJSON_IsNumber(v) ? nu_json_integer_text(lc->text, &lc->nums, k, buf, cap) : NULL;
}

static nu_status push_interaction(nu_interactions *in, uint32_t row, int64_t t)
{
    size_t cap = in->cap;
    if (!nu_grow((void **)&in->user, &cap, in->len + 1, sizeof(uint32_t)) ||
        !nu_grow((void **)&in->time, &in->cap, in->len + 1, sizeof(int64_t)))
        return nu_error(NU_ERR_NOMEM, "out of memory for interactions");
    in->user[in->len] = row;
    in->time[in->len++] = t;
    return NU_OK;
}

/* Appends the list `key` ([[user, timestamp], ...], sorted by time then
 * user row) of the current item to `in`. */
static nu_status parse_interactions(const cJSON *list, const char *key, const nu_dataset *ds,
                                    const line_ctx *lc, size_t k_num, nu_interactions *in)
{
    if (!list || cJSON_IsNull(list))
        return NU_OK;
    if (!cJSON_IsArray(list))
        return nu_error(NU_ERR_FORMAT, "\"%s\" must be a list of [user, timestamp]", key);
    size_t k = 0, first = in->len;
    const cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        char buf[48];
        const cJSON *u = cJSON_GetArrayItem(e, 0), *t = cJSON_GetArrayItem(e, 1);
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2)
            return nu_error(NU_ERR_FORMAT, "%s[%zu] must be [user, timestamp]", key, k);
        const char *us = id_text(u, lc, k_num, buf, sizeof buf);
        size_t k_time = k_num + (cJSON_IsNumber(u) ? 1 : 0);
        k_num += nu_json_count_numbers(e);
        if (!us)
            return nu_error(NU_ERR_FORMAT, "%s[%zu]: the user must be a string or an integer "
                            "(digits only)", key, k);
        /* Read from the text, not cJSON's double (exact to 2^53 only). */
        int64_t ts;
        if (!cJSON_IsNumber(t) || !nu_json_int64_at(lc->text, &lc->nums, k_time, &ts))
            return nu_error(NU_ERR_FORMAT, "%s[%zu]: the timestamp must be an integer written "
                            "as digits, within -2^63..2^63-1", key, k);
        uint32_t row = nu_idmap_find(&ds->users, us, strlen(us));
        if (row == NU_ID_NONE)
            return nu_error(NU_ERR_FORMAT, "%s[%zu]: unknown user \"%s\" (not in users.txt)", key,
                            k, us);
        if (in->len > first) {
            int64_t pt = in->time[in->len - 1];
            uint32_t pr = in->user[in->len - 1];
            if (ts < pt || (ts == pt && row < pr))
                return nu_error(NU_ERR_FORMAT,
                                "%s[%zu]: not sorted by time, then user row (%lld after %lld)",
                                key, k, (long long)ts, (long long)pt);
        }
        nu_status s = push_interaction(in, row, ts);
        if (s != NU_OK)
            return s;
        k++;
    }
    return NU_OK;
}

static nu_status parse_item(const cJSON *root, const line_ctx *lc, nu_dataset *ds,
                            nu_feature_bufs *lb)
{
    if (!cJSON_IsObject(root))
        return nu_error(NU_ERR_FORMAT, "not a JSON object");
    const cJSON *kv;
    cJSON_ArrayForEach(kv, root)
    {
        const char *k = kv->string;
        if (strcmp(k, "id") && strcmp(k, "split") && strcmp(k, "features") &&
            strcmp(k, "positives") && strcmp(k, "negatives"))
            return nu_error(NU_ERR_FORMAT,
                            "unknown key \"%s\" (expected id, split, features, positives, negatives)",
                            k);
    }
    size_t i = ds->items.count;
    if (i >= ds->num_items)
        return nu_error(NU_ERR_FORMAT, "more items than data.json's num_items (%zu)", ds->num_items);
    char buf[48];
    const cJSON *idv = cJSON_GetObjectItemCaseSensitive(root, "id");
    const char *id =
        idv ? id_text(idv, lc, nu_json_numbers_before(root, idv), buf, sizeof buf) : NULL;
    if (!id || !id[0] || strpbrk(id, "\t\r\n"))
        return nu_error(NU_ERR_FORMAT, "\"id\" must be a non-empty string or an integer, "
                                       "without tabs or line breaks");
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(root, "split");
    static const char *const names[3] = {"train", "val", "test"};
    int split = -1;
    for (int q = 0; q < 3 && cJSON_IsString(sp); q++)
        if (strcmp(sp->valuestring, names[q]) == 0)
            split = q;
    if (split < 0)
        return nu_error(NU_ERR_FORMAT, "\"split\" must be \"train\", \"val\" or \"test\"");
    size_t counts[NU_MAX_FIELDS];
    nu_status s = nu_features_parse(cJSON_GetObjectItemCaseSensitive(root, "features"), &ds->cfg,
                                    ds->vocab, "data.json's prefix fields",
                                    &ds->feats.unknown_values, lb, counts);
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(root, "positives");
    const cJSON *neg = cJSON_GetObjectItemCaseSensitive(root, "negatives");
    if (s == NU_OK)
        s = parse_interactions(pos, "positives", ds, lc,
                               pos ? nu_json_numbers_before(root, pos) : 0, &ds->pos);
    if (s == NU_OK)
        s = parse_interactions(neg, "negatives", ds, lc,
                               neg ? nu_json_numbers_before(root, neg) : 0, &ds->neg);
    if (s == NU_OK)
        s = nu_idmap_add(&ds->items, id, strlen(id), NULL, 0);
    if (s == NU_OK)
        s = nu_items_push(&ds->feats, &ds->cfg, NULL, NULL, 0, lb->vals, counts,
                          ds->feats.dense_width ? lb->dense : NULL);
    if (s != NU_OK)
        return s;
    ds->split[i] = (uint8_t)split;
    ds->n_split[split]++;
    ds->pos.off[i + 1] = ds->pos.len;
    ds->neg.off[i + 1] = ds->neg.len;
    return NU_OK;
}

static int blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

static nu_status load_items(const char *dir, nu_dataset *ds)
{
    char path[NU_PATH_MAX];
    nu_status s = nu_path_join(path, sizeof path, dir, "items.jsonl");
    if (s != NU_OK)
        return s;
    FILE *f = fopen(path, "r");
    if (!f)
        return nu_error(NU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    nu_feature_bufs lb = {0};
    line_ctx lc = {0};
    lb.dense = calloc(ds->feats.dense_width + 1, sizeof(float));
    nu_line_reader lr;
    nu_line_reader_init(&lr, f, ITEMS_LINE_MAX);
    int got = 0;
    s = lb.dense ? NU_OK : nu_error(NU_ERR_NOMEM, "out of memory");
    while (s == NU_OK && (got = nu_line_reader_next(&lr)) == 1) {
        if (lr.too_long) {
            s = nu_error(NU_ERR_FORMAT, "%s:%zu: the line is longer than %zu bytes (the limit "
                         "of an items.jsonl line)", path, lr.lineno, lr.max);
            break;
        }
        if (blank(lr.line, lr.len))
            continue;
        cJSON *root = NULL;
        lc.text = lr.line;
        s = nu_json_parse_strict(lr.line, lr.len, NULL, 0, &root, &lc.nums);
        if (s == NU_OK)
            s = parse_item(root, &lc, ds, &lb);
        cJSON_Delete(root);
        if (s != NU_OK)
            s = nu_error_context(s, "%s:%zu: ", path, lr.lineno);
    }
    if (s == NU_OK && got < 0)
        s = nu_error(NU_ERR_IO, "%s: read failed: %s", path, strerror(errno));
    if (s == NU_OK && ds->items.count != ds->num_items)
        s = nu_error(NU_ERR_FORMAT, "%s: %zu items, data.json's num_items says %zu", path,
                     ds->items.count, ds->num_items);
    nu_line_reader_free(&lr);
    free(lb.vals);
    free(lb.dense);
    nu_json_numbers_free(&lc.nums);
    fclose(f);
    return s;
}

nu_status nu_dataset_load(const char *dir, nu_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    nu_status s = load_data_json(dir, ds);
    if (s == NU_OK)
        s = nu_idmap_load_count(&ds->users, dir, "users.txt", ds->cfg.num_users, 0, "data.json");
    for (size_t f = 0; s == NU_OK && f < ds->cfg.n_prefix; f++) {
        if (ds->cfg.prefix[f].kind == NU_FIELD_DENSE)
            continue;
        char file[128];
        snprintf(file, sizeof file, "vocab_%s.txt", ds->cfg.prefix[f].name);
        s = nu_idmap_load_count(&ds->vocab[f], dir, file, ds->cfg.prefix[f].size, 1, "data.json");
    }
    if (s == NU_OK) {
        nu_items_init(&ds->feats, &ds->cfg);
        size_t n = ds->num_items;
        ds->split = calloc(n + 1, 1);
        ds->pos.off = calloc(n + 1, sizeof(size_t));
        ds->neg.off = calloc(n + 1, sizeof(size_t));
        if (!ds->split || !ds->pos.off || !ds->neg.off)
            s = nu_error(NU_ERR_NOMEM, "out of memory for %zu items", n);
    }
    if (s == NU_OK)
        s = load_items(dir, ds);
    if (s != NU_OK)
        nu_dataset_free(ds);
    return s;
}

static void free_interactions(nu_interactions *in)
{
    free(in->off);
    free(in->user);
    free(in->time);
}

void nu_dataset_free(nu_dataset *ds)
{
    nu_idmap_free(&ds->users);
    nu_idmap_free(&ds->items);
    for (size_t f = 0; f < NU_MAX_FIELDS; f++)
        nu_idmap_free(&ds->vocab[f]);
    nu_items_free(&ds->feats);
    free(ds->split);
    free_interactions(&ds->pos);
    free_interactions(&ds->neg);
    memset(ds, 0, sizeof *ds);
}

static nu_status same_fields(const nu_model_config *a, const nu_model_config *b)
{
    if (a->num_users != b->num_users)
        return nu_error(NU_ERR_INVALID_ARG, "the model has %zu users, the data %zu",
                        b->num_users, a->num_users);
    if (b->n_prefix == 0)
        return NU_OK; /* a model without a prefix reads no item features */
    if (a->n_prefix != b->n_prefix)
        return nu_error(NU_ERR_INVALID_ARG, "the model has %zu prefix fields, the data %zu",
                        b->n_prefix, a->n_prefix);
    for (size_t f = 0; f < a->n_prefix; f++)
        if (strcmp(a->prefix[f].name, b->prefix[f].name) || a->prefix[f].kind != b->prefix[f].kind ||
            a->prefix[f].size != b->prefix[f].size)
            return nu_error(NU_ERR_INVALID_ARG,
                            "prefix field %zu differs: the model has \"%s\" (size %zu), the data "
                            "\"%s\" (size %zu)",
                            f, b->prefix[f].name, b->prefix[f].size, a->prefix[f].name,
                            a->prefix[f].size);
    return NU_OK;
}

static nu_status same_ids(const nu_idmap *a, const nu_idmap *b, const char *what)
{
    for (size_t r = 0; r < a->count && r < b->count; r++)
        if (strcmp(a->names[r], b->names[r]))
            return nu_error(NU_ERR_INVALID_ARG, "%s row %zu: the model has \"%s\", the data \"%s\"",
                            what, r, b->names[r], a->names[r]);
    return NU_OK;
}

nu_status nu_dataset_check_model(const nu_dataset *ds, const nu_model *m)
{
    nu_status s = same_fields(&ds->cfg, &m->cfg);
    if (s == NU_OK)
        s = same_ids(&ds->users, &m->users, "users.txt");
    for (size_t f = 0; s == NU_OK && f < m->cfg.n_prefix; f++)
        if (ds->cfg.prefix[f].kind != NU_FIELD_DENSE)
            s = same_ids(&ds->vocab[f], &m->vocab[f], ds->cfg.prefix[f].name);
    return s;
}

void nu_dataset_user_positives(const nu_dataset *ds, nu_split split, size_t *counts)
{
    memset(counts, 0, ds->cfg.num_users * sizeof *counts);
    for (size_t i = 0; i < ds->num_items; i++)
        if (ds->split[i] == split)
            for (size_t p = ds->pos.off[i]; p < ds->pos.off[i + 1]; p++)
                counts[ds->pos.user[p]]++;
}

/* ---- training examples ---- */

static size_t window_len(size_t m, size_t max_users)
{
    return m < max_users + 1 ? m : max_users + 1;
}

/* Windows of an item with m >= 1 positives. */
static size_t window_count(size_t m, size_t max_users, nu_windows mode)
{
    size_t w = window_len(m, max_users);
    return mode == NU_WINDOWS_ALL ? m - w + 1 : (m - w + w - 1) / w + 1;
}

nu_status nu_examples_init(nu_examples *ex, const nu_dataset *ds, const nu_model_config *c,
                           nu_split split, nu_windows windows, size_t neg_per_pos)
{
    memset(ex, 0, sizeof *ex);
    nu_status s = same_fields(&ds->cfg, c);
    if (s != NU_OK)
        return s;
    ex->ds = ds;
    ex->cfg = *c;
    ex->windows = windows;
    ex->neg_per_pos = neg_per_pos;
    ex->win_off = malloc((ds->num_items + 1) * sizeof *ex->win_off);
    if (!ex->win_off)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    ex->win_off[0] = 0;
    for (size_t i = 0; i < ds->num_items; i++) {
        size_t m = nu_dataset_n_pos(ds, i), n = 0;
        if (ds->split[i] == split && m >= 1)
            n = window_count(m, c->max_users, windows);
        ex->win_off[i + 1] = ex->win_off[i] + n;
    }
    ex->count = ex->win_off[ds->num_items];
    ex->order = malloc((ex->count + 1) * sizeof *ex->order);
    if (!ex->order) {
        nu_examples_free(ex);
        return nu_error(NU_ERR_NOMEM, "out of memory for %zu windows", ex->count);
    }
    for (size_t k = 0; k < ex->count; k++)
        ex->order[k] = k;
    return NU_OK;
}

void nu_examples_free(nu_examples *ex)
{
    free(ex->win_off);
    free(ex->order);
    memset(ex, 0, sizeof *ex);
}

void nu_examples_shuffle(nu_examples *ex, uint64_t seed, uint64_t epoch)
{
    nu_random r = {seed ^ (epoch * 0xd1b54a32d192ed03ull)};
    nu_random_next(&r);
    for (size_t k = 0; k < ex->count; k++)
        ex->order[k] = k;
    for (size_t i = ex->count; i > 1; i--) {
        size_t j = (size_t)nu_random_below(&r, i), t = ex->order[i - 1];
        ex->order[i - 1] = ex->order[j];
        ex->order[j] = t;
    }
}

void nu_examples_locate(const nu_examples *ex, size_t k, size_t *item, size_t *start)
{
    /* The item i with win_off[i] <= k < win_off[i + 1]. */
    size_t lo = 0, hi = ex->ds->num_items;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (ex->win_off[mid] <= k)
            lo = mid;
        else
            hi = mid;
    }
    *item = lo;
    *start = k - ex->win_off[lo];
    if (ex->windows == NU_WINDOWS_DISJOINT) {
        size_t m = nu_dataset_n_pos(ex->ds, lo), w = window_len(m, ex->cfg.max_users);
        *start = *start * w < m - w ? *start * w : m - w; /* the last one ends at p_m */
    }
}

size_t nu_nearest_negatives(const nu_dataset *ds, size_t item, int64_t t, uint32_t skip_user,
                            size_t most, uint32_t *rows)
{
    size_t b = ds->neg.off[item], e = ds->neg.off[item + 1];
    const int64_t *time = ds->neg.time;
    const uint32_t *user = ds->neg.user;
    size_t lo = b, hi = e; /* first index with time >= t */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (time[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Walk outward: left = next candidate below (index left - 1), right = next above. */
    size_t left = lo, right = lo, n = 0;
    while (n < most && (left > b || right < e)) {
        int take_left;
        if (left == b)
            take_left = 0;
        else if (right == e)
            take_left = 1;
        else
            /* Distances in uint64: exact over the whole int64 range, where
             * the signed difference could overflow. */
            take_left = (uint64_t)t - (uint64_t)time[left - 1] <=
                        (uint64_t)time[right] - (uint64_t)t;
        uint32_t u = take_left ? user[--left] : user[right++];
        if (u != skip_user)
            rows[n++] = u;
    }
    return n;
}

void nu_train_batch_init(nu_train_batch *b) { memset(b, 0, sizeof *b); }

void nu_train_batch_free(nu_train_batch *b)
{
    nu_items_free(&b->items);
    free(b->pos_off);
    free(b->target);
    free(b->neg_off);
    free(b->neg);
    free(b->window);
    memset(b, 0, sizeof *b);
}

nu_status nu_train_batch_build(nu_train_batch *b, const nu_examples *ex, const size_t *windows, size_t count)
{
    const nu_dataset *ds = ex->ds;
    size_t mu = ex->cfg.max_users, k = ds->cfg.n_prefix, dw = ds->feats.dense_width;
    nu_items_free(&b->items);
    nu_items_init(&b->items, &ex->cfg);
    b->count = b->n_pos = 0;
    if (!nu_grow((void **)&b->pos_off, &b->cap_off, count + 1, sizeof(size_t)) ||
        !nu_grow((void **)&b->window, &b->cap_win, count + 1, sizeof(size_t)) ||
        !nu_grow((void **)&b->neg_off, &b->cap_negoff, 1, sizeof(size_t)))
        return nu_error(NU_ERR_NOMEM, "out of memory for a batch of %zu", count);
    b->pos_off[0] = 0;
    b->neg_off[0] = 0;
    size_t nneg = 0;
    for (size_t q = 0; q < count; q++) {
        size_t item, start;
        if (windows[q] >= ex->count)
            return nu_error(NU_ERR_INVALID_ARG, "window %zu of %zu", windows[q], ex->count);
        nu_examples_locate(ex, windows[q], &item, &start);
        size_t off = ds->pos.off[item] + start;
        size_t w = window_len(nu_dataset_n_pos(ds, item), mu);
        const uint32_t *users = ds->pos.user + off;
        size_t counts[NU_MAX_FIELDS];
        for (size_t f = 0; f < k; f++)
            counts[f] = ds->feats.feat_off[item * k + f + 1] - ds->feats.feat_off[item * k + f];
        nu_status s = nu_items_push(&b->items, &ex->cfg, ds->items.names[item], users, w - 1,
                                    ds->feats.feat_vals + ds->feats.feat_off[item * k], counts,
                                    dw ? ds->feats.dense + item * dw : NULL);
        if (s != NU_OK)
            return s;
        size_t p0 = b->n_pos;
        if (!nu_grow((void **)&b->target, &b->cap_target, p0 + w, sizeof(uint32_t)) ||
            !nu_grow((void **)&b->neg_off, &b->cap_negoff, p0 + w + 1, sizeof(size_t)) ||
            !nu_grow((void **)&b->neg, &b->cap_neg, nneg + w * ex->neg_per_pos + 1, sizeof(uint32_t)))
            return nu_error(NU_ERR_NOMEM, "out of memory for a batch");
        for (size_t j = 0; j < w; j++) {
            b->target[p0 + j] = users[j];
            nneg += nu_nearest_negatives(ds, item, ds->pos.time[off + j], users[j],
                                         ex->neg_per_pos, b->neg + nneg);
            b->neg_off[p0 + j + 1] = nneg;
        }
        b->n_pos = p0 + w;
        b->pos_off[q + 1] = b->n_pos;
        b->window[q] = windows[q];
        b->count = q + 1;
    }
    return NU_OK;
}
