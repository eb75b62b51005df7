#include "items_jsonl.h"

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

/* Per-line working buffers, grown as needed and reused across lines. */
typedef struct line_bufs {
    uint32_t *users;
    size_t users_cap;
    nu_feature_bufs feats;
    nu_json_numbers nums;
} line_bufs;

/* An id given as a string, or as an integer exactly as written (number k
 * of the line); NULL when it is neither. */
static const char *id_text(const cJSON *v, const char *text, const nu_json_numbers *nums,
                           size_t k, char *buf, size_t cap)
{
    if (cJSON_IsString(v))
        return v->valuestring;
    return cJSON_IsNumber(v) ? nu_json_integer_text(text, nums, k, buf, cap) : NULL;
}

static nu_status parse_object(const cJSON *root, const char *text, const nu_json_numbers *nums,
                              const nu_model *m, nu_items *out, line_bufs *lb)
{
    if (!cJSON_IsObject(root))
        return nu_error(NU_ERR_FORMAT, "not a JSON object");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *users = cJSON_GetObjectItemCaseSensitive(root, "users");
    const cJSON *feats = cJSON_GetObjectItemCaseSensitive(root, "features");
    const cJSON *kv;
    cJSON_ArrayForEach(kv, root)
    {
        if (strcmp(kv->string, "id") && strcmp(kv->string, "users") && strcmp(kv->string, "features"))
            return nu_error(NU_ERR_FORMAT, "unknown key \"%s\" (expected id, features, users)",
                            kv->string);
    }
    char idbuf[NU_ID_NUMBER_MAX];
    const char *idstr = id ? id_text(id, text, nums, nu_json_numbers_before(root, id), idbuf,
                                     sizeof idbuf)
                           : NULL;
    if (!idstr)
        return nu_error(NU_ERR_FORMAT, "\"id\" must be a string or an integer (digits only, "
                                       "at most %d: no fraction or exponent)",
                        NU_ID_NUMBER_MAX - 2);
    if (idstr[0] == 0 || strpbrk(idstr, "\t\r\n"))
        return nu_error(NU_ERR_FORMAT, "\"id\" must be non-empty, without tabs or line breaks");
    if (users && !cJSON_IsArray(users))
        return nu_error(NU_ERR_FORMAT, "\"users\" must be a list of user ids");
    size_t n = 0, k = users ? nu_json_numbers_before(root, users) : 0;
    const cJSON *u;
    if (users)
        cJSON_ArrayForEach(u, users)
        {
            char ubuf[NU_ID_NUMBER_MAX];
            const char *us = id_text(u, text, nums, k, ubuf, sizeof ubuf);
            k += cJSON_IsNumber(u);
            if (!us)
                return nu_error(NU_ERR_FORMAT, "\"users\" entries must be strings or integers "
                                               "(digits only: no fraction or exponent)");
            uint32_t row = nu_idmap_find(&m->users, us, strlen(us));
            if (row == NU_ID_NONE) {
                out->unknown_users++;
                continue;
            }
            if (!nu_grow((void **)&lb->users, &lb->users_cap, n + 1, sizeof(uint32_t)))
                return nu_error(NU_ERR_NOMEM, "out of memory");
            lb->users[n++] = row;
        }
    size_t counts[NU_MAX_FIELDS];
    nu_status s = nu_features_parse(feats, &m->cfg, m->vocab, "this model", &out->unknown_values,
                                    &lb->feats, counts);
    if (s != NU_OK)
        return s;
    return nu_items_push(out, &m->cfg, idstr, lb->users, n, lb->feats.vals, counts,
                         out->dense_width ? lb->feats.dense : NULL);
}

static nu_status parse_line(const char *line, size_t len, const nu_model *m, nu_items *out,
                            line_bufs *lb)
{
    if (len > NU_ITEMS_MAX_LINE_BYTES)
        return nu_error(NU_ERR_FORMAT, "a line of %zu bytes (at most %d)", len,
                        NU_ITEMS_MAX_LINE_BYTES);
    cJSON *root = NULL;
    nu_status s = nu_json_parse_strict(line, len, NULL, NU_ITEMS_MAX_LINE_VALUES, &root, &lb->nums);
    if (s == NU_OK)
        s = parse_object(root, line, &lb->nums, m, out, lb);
    cJSON_Delete(root);
    return s;
}

static void free_bufs(line_bufs *lb)
{
    free(lb->users);
    free(lb->feats.vals);
    free(lb->feats.dense);
    nu_json_numbers_free(&lb->nums);
}

nu_status nu_items_parse_line(const char *line, size_t len, const nu_model *m, nu_items *out)
{
    line_bufs lb = {0};
    lb.feats.dense = calloc(out->dense_width + 1, sizeof(float));
    nu_status s = lb.feats.dense ? parse_line(line, len, m, out, &lb)
                           : nu_error(NU_ERR_NOMEM, "out of memory");
    free_bufs(&lb);
    return s;
}

static int blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

nu_status nu_items_read_jsonl(const char *path, const nu_model *m, nu_items *out)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f)
        return nu_error(NU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    line_bufs lb = {0};
    lb.feats.dense = calloc(out->dense_width + 1, sizeof(float));
    /* Bounded before memory goes to a line (getline would take any). */
    nu_line_reader lr;
    nu_line_reader_init(&lr, f, NU_ITEMS_MAX_LINE_BYTES);
    int got = 0;
    /* The file's item ids and the line of each: an id twice is an error. */
    nu_idmap seen;
    nu_idmap_init(&seen);
    size_t *seen_line = NULL, seen_cap = 0;
    nu_status s = lb.feats.dense ? NU_OK : nu_error(NU_ERR_NOMEM, "out of memory");
    while (s == NU_OK && (got = nu_line_reader_next(&lr)) == 1) {
        size_t lineno = lr.lineno;
        if (lr.too_long) {
            s = nu_error(NU_ERR_FORMAT, "%s:%zu: the line is longer than %zu bytes", path, lineno,
                         lr.max);
            break;
        }
        if (blank(lr.line, lr.len))
            continue; /* blank lines carry no item */
        s = parse_line(lr.line, lr.len, m, out, &lb);
        if (s == NU_OK) {
            const char *id = out->ids[out->count - 1];
            uint32_t at = nu_idmap_find(&seen, id, strlen(id));
            if (at != NU_ID_NONE)
                s = nu_error(NU_ERR_FORMAT, "item id \"%s\" appears twice (also on line %zu)", id,
                             seen_line[at]);
            else if ((s = nu_idmap_add(&seen, id, strlen(id), &at, 0)) == NU_OK) {
                if (nu_grow((void **)&seen_line, &seen_cap, at + 1, sizeof *seen_line))
                    seen_line[at] = lineno;
                else
                    s = nu_error(NU_ERR_NOMEM, "out of memory");
            }
        }
        if (s != NU_OK)
            s = nu_error_context(s, "%s:%zu: ", path, lineno);
    }
    nu_idmap_free(&seen);
    free(seen_line);
    if (s == NU_OK && got < 0)
        s = nu_error(NU_ERR_IO, "%s: read failed: %s", path, strerror(errno));
    nu_line_reader_free(&lr);
    free_bufs(&lb);
    if (f != stdin)
        fclose(f);
    return s;
}
