#include "util/json_strict.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "util/grow.h"

/* Scratch space for one object's members, reused across objects. */
typedef struct key_scratch {
    const cJSON **items;
    size_t cap;
} key_scratch;

static int cmp_member_keys(const void *a, const void *b)
{
    const cJSON *const *x = a, *const *y = b;
    return strcmp((*x)->string, (*y)->string);
}

static nu_status duplicate_error(const cJSON *obj, const char *key, const char *origin)
{
    const char *sep = origin ? ": " : "";
    if (obj->string)
        return nu_error(NU_ERR_FORMAT, "%s%skey \"%s\" appears twice (in \"%s\")",
                        origin ? origin : "", sep, key, obj->string);
    return nu_error(NU_ERR_FORMAT, "%s%skey \"%s\" appears twice", origin ? origin : "", sep, key);
}

/* Sorting the member pointers puts equal keys next to each other. */
static nu_status check_object(const cJSON *obj, const char *origin, key_scratch *ks)
{
    size_t n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, obj)
    {
        if (!m->string)
            return nu_error(NU_ERR_FORMAT, "%s%sobject member without a key", origin ? origin : "",
                            origin ? ": " : "");
        if (!nu_grow((void **)&ks->items, &ks->cap, n + 1, sizeof *ks->items))
            return nu_error(NU_ERR_NOMEM, "out of memory checking JSON keys");
        ks->items[n++] = m;
    }
    if (n < 2)
        return NU_OK;
    qsort(ks->items, n, sizeof *ks->items, cmp_member_keys);
    for (size_t i = 1; i < n; i++)
        if (strcmp(ks->items[i - 1]->string, ks->items[i]->string) == 0)
            return duplicate_error(obj, ks->items[i]->string, origin);
    return NU_OK;
}

/* cJSON's parser limits nesting (CJSON_NESTING_LIMIT), which bounds the
 * recursion here too. */
static nu_status check_value(const cJSON *v, const char *origin, key_scratch *ks)
{
    nu_status s = NU_OK;
    if (cJSON_IsObject(v))
        s = check_object(v, origin, ks);
    if (s != NU_OK || !(cJSON_IsObject(v) || cJSON_IsArray(v)))
        return s;
    const cJSON *child;
    cJSON_ArrayForEach(child, v)
    {
        s = check_value(child, origin, ks);
        if (s != NU_OK)
            break;
    }
    return s;
}

nu_status nu_json_check_unique_keys(const cJSON *root, const char *origin)
{
    key_scratch ks = {NULL, 0};
    nu_status s = root ? check_value(root, origin, &ks) : NU_OK;
    free(ks.items);
    return s;
}

/* ---- the strict parse ---- */

void nu_json_numbers_free(nu_json_numbers *n)
{
    free(n->off);
    free(n->len);
    memset(n, 0, sizeof *n);
}

static nu_status strict_error(const char *origin, size_t at, const char *what)
{
    return nu_error(NU_ERR_FORMAT, "%s%s%s (at byte %zu)", origin ? origin : "", origin ? ": " : "",
                    what, at);
}

/* Length of the UTF-8 sequence at s[i..len), or 0 when it is not valid
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t i, size_t len)
{
    unsigned c = s[i];
    if (c < 0x80)
        return c ? 1 : 0;
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (len - i < n)
        return 0;
    if (s[i + 1] < lo || s[i + 1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if (s[i + k] < 0x80 || s[i + k] > 0xbf)
            return 0;
    return n;
}

nu_status nu_utf8_check(const char *s, size_t len, size_t *bad)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(u, i, len);
        if (!n) {
            if (bad)
                *bad = i;
            return NU_ERR_FORMAT;
        }
        i += n;
    }
    return NU_OK;
}

static int push_number(nu_json_numbers *nums, size_t off, size_t len)
{
    if (nums->count == nums->cap) {
        size_t cap = nums->cap ? 2 * nums->cap : 16;
        size_t *o = realloc(nums->off, cap * sizeof *o);
        if (!o)
            return 0;
        nums->off = o;
        size_t *l = realloc(nums->len, cap * sizeof *l);
        if (!l)
            return 0;
        nums->len = l;
        nums->cap = cap;
    }
    nums->off[nums->count] = off;
    nums->len[nums->count++] = len;
    return 1;
}

/* One pass over the bytes before cJSON sees them: encoding, \u0000, the
 * number of values (an upper bound of cJSON's nodes: 1 + 2 per container +
 * 1 per comma) and, when asked, where the numbers are. */
static nu_status prescan(const char *text, size_t len, const char *origin, size_t max_values,
                         nu_json_numbers *nums)
{
    const unsigned char *u = (const unsigned char *)text;
    size_t values = 1;
    int in_string = 0;
    for (size_t i = 0; i < len;) {
        unsigned c = u[i];
        if (c == 0)
            return strict_error(origin, i, "NUL byte");
        if (c >= 0x80) {
            size_t n = utf8_seq(u, i, len);
            if (!n)
                return strict_error(origin, i, "invalid UTF-8");
            i += n;
            continue;
        }
        if (in_string) {
            if (c == '\\' && i + 1 < len) {
                if (u[i + 1] == 'u' && len - i >= 6 && memcmp(text + i + 2, "0000", 4) == 0)
                    return strict_error(origin, i, "\\u0000 in a string");
                i += 2;
                continue;
            }
            if (c == '"')
                in_string = 0;
            i++;
            continue;
        }
        if (c == '"')
            in_string = 1;
        else if (c == '[' || c == '{')
            values += 2;
        else if (c == ',')
            values++;
        else if (nums && (c == '-' || (c >= '0' && c <= '9'))) {
            size_t b = i;
            while (i < len && (u[i] == '-' || u[i] == '+' || u[i] == '.' || u[i] == 'e' ||
                               u[i] == 'E' || (u[i] >= '0' && u[i] <= '9')))
                i++;
            if (!push_number(nums, b, i - b))
                return nu_error(NU_ERR_NOMEM, "out of memory reading JSON");
            continue;
        }
        if (max_values && values > max_values) {
            char what[96];
            snprintf(what, sizeof what, "more than %zu JSON values", max_values);
            return strict_error(origin, i, what);
        }
        i++;
    }
    return NU_OK;
}

nu_status nu_json_parse_strict(const char *text, size_t len, const char *origin,
                               size_t max_values, cJSON **out, nu_json_numbers *numbers)
{
    *out = NULL;
    if (numbers)
        numbers->count = 0;
    nu_status s = prescan(text, len, origin, max_values, numbers);
    if (s != NU_OK)
        return s;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) /* where cJSON stopped says little (often the end): not given */
        return nu_error(NU_ERR_FORMAT, "%s%snot valid JSON", origin ? origin : "",
                        origin ? ": " : "");
    size_t pos = end && end >= text && end <= text + len ? (size_t)(end - text) : len;
    while (pos < len && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n' ||
                         text[pos] == '\r'))
        pos++;
    if (pos < len) {
        cJSON_Delete(root);
        return strict_error(origin, pos, "text after the JSON value");
    }
    s = nu_json_check_unique_keys(root, origin);
    if (s != NU_OK) {
        cJSON_Delete(root);
        return s;
    }
    *out = root;
    return NU_OK;
}

size_t nu_json_count_numbers(const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return 1;
    size_t n = 0;
    const cJSON *c;
    if (cJSON_IsArray(v) || cJSON_IsObject(v))
        cJSON_ArrayForEach(c, v) n += nu_json_count_numbers(c);
    return n;
}

const char *nu_json_integer_text(const char *text, const nu_json_numbers *nums, size_t k,
                                 char *buf, size_t cap)
{
    if (!nums || k >= nums->count)
        return NULL;
    const char *t = text + nums->off[k];
    size_t n = nums->len[k], i = t[0] == '-';
    if (n >= cap || i >= n || (t[i] == '0' && n > i + 1))
        return NULL;
    for (size_t j = i; j < n; j++)
        if (t[j] < '0' || t[j] > '9')
            return NULL;
    memcpy(buf, t, n);
    buf[n] = 0;
    return buf;
}

int nu_json_int64_at(const char *text, const nu_json_numbers *nums, size_t k, int64_t *out)
{
    char buf[24]; /* "-9223372036854775808" and its NUL fit; longer is out of range */
    if (!nu_json_integer_text(text, nums, k, buf, sizeof buf))
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end)
        return 0;
    *out = (int64_t)v;
    return 1;
}

size_t nu_json_numbers_before(const cJSON *root, const cJSON *member)
{
    size_t n = 0;
    const cJSON *kv;
    cJSON_ArrayForEach(kv, root)
    {
        if (kv == member)
            break;
        n += nu_json_count_numbers(kv);
    }
    return n;
}
