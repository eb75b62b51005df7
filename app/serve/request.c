/* Parsing, validation and answers of /v1/recommend and /v1/embed
 * (request.h, docs/serve.md). */
#include "request.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_spans.h"
#include "util/clock.h"
#include "util/json_strict.h"
#include "strbuf.h"

void sv_request_free(sv_request *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        if (r->id_json)
            free(r->id_json[i]);
    }
    nu_batch_free(r->batch);
    free(r->id_json);
    free(r->unknown_users);
    free(r->unknown_values);
    free(r->truncated);
    free(r->rows);
    free(r->scores);
    free(r->names);
    free(r->vectors);
    free(r->answer);
    if (r->ver)
        sv_version_release(r->ver);
    free(r);
}

char *sv_error_json(const char *msg, size_t *len)
{
    sv_strbuf b = {0};
    sv_sb_puts(&b, "{\"error\": ");
    sv_sb_json_string(&b, msg);
    sv_sb_puts(&b, "}\n");
    return sv_sb_take(&b, len);
}

/* An integer-valued JSON number in [lo, hi]. */
static int json_uint(const cJSON *x, double lo, double hi, size_t *out)
{
    if (!cJSON_IsNumber(x))
        return 0;
    double d = x->valuedouble;
    if (!(d >= lo && d <= hi) || d != floor(d))
        return 0;
    *out = (size_t)d;
    return 1;
}

/* A JSON id: a non-empty string or an integer (the items format). */
static int json_id(const cJSON *x)
{
    if (cJSON_IsString(x))
        return x->valuestring && x->valuestring[0];
    return cJSON_IsNumber(x) && x->valuedouble == floor(x->valuedouble) &&
           fabs(x->valuedouble) < 9007199254740992.0;
}

/* Checks the shape of items[i] (types of id, users, features; no other key),
 * so that the message names the field; the library checks the rest. */
static int check_item(const cJSON *it, size_t i, char *err, size_t errcap)
{
    if (!cJSON_IsObject(it)) {
        snprintf(err, errcap, "items[%zu]: must be an object {\"id\", \"features\", \"users\"}", i);
        return 0;
    }
    const cJSON *id = NULL;
    for (const cJSON *kv = it->child; kv; kv = kv->next) {
        if (!strcmp(kv->string, "id")) {
            id = kv;
            if (!json_id(kv)) {
                snprintf(err, errcap, "items[%zu].id: must be a non-empty string or an integer", i);
                return 0;
            }
        } else if (!strcmp(kv->string, "users")) {
            if (!cJSON_IsArray(kv)) {
                snprintf(err, errcap, "items[%zu].users: must be a list of user ids", i);
                return 0;
            }
            size_t j = 0;
            for (const cJSON *u = kv->child; u; u = u->next, j++)
                if (!json_id(u)) {
                    snprintf(err, errcap,
                             "items[%zu].users[%zu]: must be a user id (a string or an integer)", i,
                             j);
                    return 0;
                }
        } else if (!strcmp(kv->string, "features")) {
            if (!cJSON_IsObject(kv) && !cJSON_IsNull(kv)) {
                snprintf(err, errcap, "items[%zu].features: must be an object of feature values",
                         i);
                return 0;
            }
        } else {
            snprintf(err, errcap,
                     "items[%zu]: unknown key \"%.64s\" (expected id, features, users)", i,
                     kv->string);
            return 0;
        }
    }
    if (!id) {
        snprintf(err, errcap, "items[%zu].id: missing (a non-empty string or an integer)", i);
        return 0;
    }
    return 1;
}

static sv_request *request_alloc(sv_kind kind, size_t n, size_t k, const sv_version *v)
{
    sv_request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->kind = kind;
    r->n = n;
    r->k = k;
    atomic_init(&r->remaining, n);
    atomic_init(&r->failed, 0);
    r->id_json = calloc(n, sizeof *r->id_json);
    r->unknown_users = calloc(n, sizeof *r->unknown_users);
    r->unknown_values = calloc(n, sizeof *r->unknown_values);
    r->truncated = calloc(n, 1);
    int ok = r->id_json && r->unknown_users && r->unknown_values && r->truncated;
    if (kind == SV_RECOMMEND) {
        r->rows = malloc(n * k * sizeof *r->rows);
        r->scores = malloc(n * k * sizeof *r->scores);
        r->names = malloc(k * sizeof *r->names);
        ok = ok && r->rows && r->scores && r->names;
    } else {
        r->vectors = malloc(n * (v->dim ? v->dim : 1) * sizeof *r->vectors);
        ok = ok && r->vectors;
    }
    if (!ok) {
        sv_request_free(r);
        return NULL;
    }
    return r;
}

int sv_request_parse(sv_kind kind, const char *body, size_t len, sv_version *v, size_t max_items,
                     size_t default_k, size_t max_k, sv_request **out, char *err, size_t errcap)
{
    *out = NULL;
    /* Strict: trailing text, duplicate keys, NUL bytes, bad UTF-8 and more
     * values than max_items items could hold are refused before a tree. */
    cJSON *doc = NULL;
    nu_batch *b = NULL;
    sv_request *r = NULL;
    int status = 400;
    if (!len) {
        snprintf(err, errcap, "body: empty (expected a JSON object)");
        goto done;
    }
    if (nu_json_parse_strict(body, len, "body", 0, &doc, NULL) != NU_OK) {
        snprintf(err, errcap, "%s", nu_last_error());
        goto done;
    }
    if (!cJSON_IsObject(doc)) {
        snprintf(err, errcap, "body: must be a JSON object {\"items\": [...]}");
        goto done;
    }
    const cJSON *items = NULL, *kj = NULL;
    for (const cJSON *kv = doc->child; kv; kv = kv->next) {
        if (!strcmp(kv->string, "items"))
            items = kv;
        else if (!strcmp(kv->string, "k") && kind == SV_RECOMMEND)
            kj = kv;
        else {
            snprintf(err, errcap, "body: unknown key \"%.64s\" (expected %s)", kv->string,
                     kind == SV_RECOMMEND ? "items, k" : "items");
            goto done;
        }
    }
    if (!items || !cJSON_IsArray(items)) {
        snprintf(err, errcap, "items: must be a list of items");
        goto done;
    }
    size_t n = (size_t)cJSON_GetArraySize(items);
    if (n == 0) {
        snprintf(err, errcap, "items: must hold at least one item");
        goto done;
    }
    if (n > max_items) {
        snprintf(err, errcap, "items: at most %zu items per request (got %zu)", max_items, n);
        goto done;
    }
    size_t k = default_k;
    if (kj && !json_uint(kj, 1, (double)max_k, &k)) {
        snprintf(err, errcap, "k: must be an integer in [1, %zu]", max_k);
        goto done;
    }
    size_t i = 0;
    for (const cJSON *it = items->child; it; it = it->next, i++)
        if (!check_item(it, i, err, errcap))
            goto done;
    status = 500;
    r = request_alloc(kind, n, k, v);
    if (!r || nu_batch_create(v->model, &b) != NU_OK) {
        snprintf(err, errcap, "out of memory");
        goto done;
    }
    /* The library reads each item as it was sent (its text in the body)
     * and checks it (feature names, types and values); the counts of what it
     * skipped go in the answer, and the parsed items go to the worker. */
    const char **spans = malloc(n * sizeof *spans);
    size_t *span_len = malloc(n * sizeof *span_len);
    if (!spans || !span_len) {
        free(spans);
        free(span_len);
        snprintf(err, errcap, "out of memory");
        goto done;
    }
    int in_body = sv_json_array_spans(body, len, "items", n, spans, span_len) == n;
    size_t uu0 = 0, uv0 = 0, tr0 = 0;
    nu_status st = NU_OK;
    i = 0;
    for (const cJSON *it = items->child; it && st == NU_OK; it = it->next, i++) {
        r->id_json[i] = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(it, "id"));
        /* A body whose top-level names have escapes: print the item back. */
        char *text = in_body ? NULL : cJSON_PrintUnformatted(it);
        if (!r->id_json[i] || (!in_body && !text)) {
            st = NU_ERR_NOMEM;
            snprintf(err, errcap, "out of memory");
            break;
        }
        st = in_body ? nu_batch_add_json(b, spans[i], span_len[i])
                     : nu_batch_add_json(b, text, strlen(text));
        free(text);
        if (st != NU_OK) {
            snprintf(err, errcap, "items[%zu]: %s", i, nu_last_error());
            break;
        }
        size_t uu, uv, tr;
        nu_batch_input_counts(b, &uu, &uv, &tr);
        r->unknown_users[i] = uu - uu0;
        r->unknown_values[i] = uv - uv0;
        r->truncated[i] = tr != tr0;
        uu0 = uu;
        uv0 = uv;
        tr0 = tr;
    }
    free(spans);
    free(span_len);
    if (st != NU_OK) {
        status = st == NU_ERR_NOMEM || st == NU_ERR_INTERNAL ? 500 : 400;
        goto done;
    }
    r->batch = b;
    b = NULL;
    sv_version_ref(v);
    r->ver = v;
    *out = r;
    r = NULL;
    status = 0;
done:
    nu_batch_free(b);
    sv_request_free(r);
    cJSON_Delete(doc);
    return status;
}

static void answer_items(sv_request *r, sv_strbuf *b)
{
    const sv_version *v = r->ver;
    for (size_t i = 0; i < r->n; i++) {
        sv_sb_puts(b, i ? ", {\"id\": " : "{\"id\": ");
        sv_sb_puts(b, r->id_json[i]);
        if (r->kind == SV_RECOMMEND) {
            sv_sb_puts(b, ", \"users\": [");
            const uint32_t *rows = r->rows + i * r->k;
            const float *sc = r->scores + i * r->k;
            /* The names lie scattered over the vocabulary, cold after the
             * table scan: look them all up and prefetch them first, so the
             * cache misses overlap instead of coming one per user. */
            size_t m = 0;
            while (m < r->k && rows[m] != UINT32_MAX)
                m++;
            for (size_t j = 0; j < m; j++) {
                r->names[j] = nu_model_user_id(v->model, rows[j]);
                __builtin_prefetch(r->names[j]);
            }
            for (size_t j = 0; j < m; j++) {
                const char *u = r->names[j];
                sv_sb_puts(b, j ? ", {\"user\": " : "{\"user\": ");
                sv_sb_json_string(b, u ? u : "");
                sv_sb_puts(b, ", \"score\": ");
                sv_sb_json_float(b, sc[j]);
                sv_sb_puts(b, "}");
            }
            sv_sb_printf(
                b, "], \"unknown_users\": %zu, \"unknown_values\": %zu, \"truncated\": %s}",
                r->unknown_users[i], r->unknown_values[i], r->truncated[i] ? "true" : "false");
        } else {
            sv_sb_puts(b, ", \"vector\": [");
            const float *x = r->vectors + i * v->dim;
            for (size_t j = 0; j < v->dim; j++) {
                if (j)
                    sv_sb_puts(b, ", ");
                sv_sb_json_float(b, x[j]);
            }
            sv_sb_puts(b, "]}");
        }
    }
}

void sv_request_finish(sv_request *r)
{
    if (atomic_load(&r->failed)) {
        r->status = 500;
        r->answer = sv_error_json(r->error, &r->answer_len);
    } else {
        sv_strbuf b = {0};
        sv_sb_puts(&b, "{\"model_version\": ");
        sv_sb_json_string(&b, r->ver->name);
        sv_sb_puts(&b, ", \"items\": [");
        answer_items(r, &b);
        sv_sb_puts(&b, "]}\n");
        r->status = 200;
        r->answer = sv_sb_take(&b, &r->answer_len);
        if (!r->answer) {
            r->status = 500;
            r->answer = sv_error_json("out of memory for the answer", &r->answer_len);
        }
    }
    r->t_answered = nu_now_seconds();
    /* The version may go now (its users' names are in the answer). */
    sv_version *v = r->ver;
    r->ver = NULL;
    sv_version_release(v);
    r->done(r, r->done_arg);
}
