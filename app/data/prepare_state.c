/* The state of nu_prepare and its line reader (prepare_state.h). */
#include "prepare_state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "util/grow.h"
#include "util/json_strict.h"

int prep_strlist_push(strlist *l, const char *s)
{
    if (l->n == l->cap) {
        size_t c = l->cap ? 2 * l->cap : 4;
        char **v = realloc(l->v, c * sizeof *v);
        if (!v)
            return 0;
        l->v = v;
        l->cap = c;
    }
    if (!(l->v[l->n] = strdup(s)))
        return 0;
    l->n++;
    return 1;
}

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* Grows every field's per-item lists to `cap` items, the new ones empty. */
static int grow_item_values(prep *g, size_t cap)
{
    for (size_t f = 0; f < g->n_fields; f++) {
        prep_field *fd = &g->fields[f];
        strlist *a = realloc(fd->item_values, cap * sizeof *a);
        if (!a)
            return 0;
        memset(a + g->item_cap, 0, (cap - g->item_cap) * sizeof *a);
        fd->item_values = a;
    }
    return 1;
}

nu_status prep_item_index(prep *g, const char *id, uint32_t *idx)
{
    nu_status s = nu_idmap_add(&g->items, id, strlen(id), idx, 1);
    if (s != NU_OK || g->items.count <= g->item_cap)
        return s;
    size_t c = g->item_cap ? 2 * g->item_cap : 256;
    if (!grow_item_values(g, c))
        return nu_error(NU_ERR_NOMEM, "out of memory for %zu items", c);
    g->item_cap = c;
    return NU_OK;
}

nu_status prep_field_add(prep *g, const char *name, int multi, size_t min_items, size_t *index)
{
    if (g->n_fields == NU_MAX_FIELDS)
        return nu_error(NU_ERR_FORMAT, "more than %d prefix fields", NU_MAX_FIELDS);
    prep_field *fd = &g->fields[g->n_fields];
    memset(fd, 0, sizeof *fd);
    snprintf(fd->name, sizeof fd->name, "%s", name);
    fd->multi = multi;
    fd->min_items = min_items;
    nu_idmap_init(&fd->values);
    if (g->item_cap && !(fd->item_values = calloc(g->item_cap, sizeof *fd->item_values)))
        return nu_error(NU_ERR_NOMEM, "out of memory");
    *index = g->n_fields++;
    return NU_OK;
}

const char *prep_value_problem(const char *v)
{
    if (!*v)
        return "an empty value";
    if (!strcmp(v, "<unk>"))
        return "the value \"<unk>\" (reserved: line 0 of every vocabulary, unknown values)";
    if (strpbrk(v, "\t\r\n"))
        return "a value with a tab or line break (a vocabulary file holds one value per line)";
    return NULL;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* Adds key to the field's pair set: 1 added, 2 already there, 0 out of memory. */
static int pair_add(prep_field *fd, uint64_t key)
{
    if (2 * (fd->pairs_count + 1) > fd->pairs_cap) {
        size_t cap = fd->pairs_cap ? 2 * fd->pairs_cap : 1024;
        uint64_t *t = calloc(cap, sizeof *t);
        if (!t)
            return 0;
        for (size_t i = 0; i < fd->pairs_cap; i++)
            if (fd->pairs[i]) {
                size_t h = mix64(fd->pairs[i]) & (cap - 1);
                while (t[h])
                    h = (h + 1) & (cap - 1);
                t[h] = fd->pairs[i];
            }
        free(fd->pairs);
        fd->pairs = t;
        fd->pairs_cap = cap;
    }
    size_t h = mix64(key) & (fd->pairs_cap - 1);
    while (fd->pairs[h]) {
        if (fd->pairs[h] == key)
            return 2;
        h = (h + 1) & (fd->pairs_cap - 1);
    }
    fd->pairs[h] = key;
    fd->pairs_count++;
    return 1;
}

nu_status prep_field_value(prep *g, size_t f, uint32_t item, const char *v)
{
    prep_field *fd = &g->fields[f];
    const char *problem = prep_value_problem(v);
    if (problem)
        return nu_error(NU_ERR_FORMAT, "field %s: %s", fd->name, problem);
    size_t before = fd->values.count;
    if (before + 1 >= PREP_MAX_VOCAB && nu_idmap_find(&fd->values, v, strlen(v)) == NU_ID_NONE)
        return nu_error(NU_ERR_FORMAT, "field %s has more than %u values", fd->name,
                        PREP_MAX_VOCAB - 1);
    uint32_t k;
    nu_status s = nu_idmap_add(&fd->values, v, strlen(v), &k, 1);
    if (s != NU_OK)
        return s;
    if (fd->values.count > before) {
        /* Geometric growth: one realloc per new value would copy the array
         * each time where realloc cannot grow in place (quadratic). */
        if (!nu_grow((void **)&fd->value_items, &fd->value_items_cap, fd->values.count,
                     sizeof *fd->value_items))
            return nu_error(NU_ERR_NOMEM, "out of memory");
        fd->value_items[k] = 0;
    }
    int added = pair_add(fd, (uint64_t)item << 32 | ((uint64_t)k + 1));
    if (added == 1 && !prep_strlist_push(&fd->item_values[item], v))
        added = 0;
    if (!added)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    fd->value_items[k] += added == 1;
    return NU_OK;
}

void prep_free(prep *g)
{
    for (size_t f = 0; f < g->n_fields; f++) {
        prep_field *fd = &g->fields[f];
        for (size_t i = 0; fd->item_values && i < g->items.count && i < g->item_cap; i++)
            strlist_free(&fd->item_values[i]);
        free(fd->item_values);
        free(fd->value_items);
        free(fd->pairs);
        nu_idmap_free(&fd->values);
    }
    free(g->rows);
    nu_idmap_free(&g->users);
    nu_idmap_free(&g->items);
}

/* ---- lines and fields ---- */

nu_status prep_reader_open(reader *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    if (!(r->f = fopen(path, "rb")))
        return nu_error(NU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    nu_line_reader_init(&r->lr, r->f, PREP_LINE_MAX);
    return NU_OK;
}

char *prep_reader_next(reader *r)
{
    int got = nu_line_reader_next(&r->lr);
    if (got != 1) {
        r->failed = got < 0 ? errno : 0;
        return NULL;
    }
    r->line = r->lr.lineno;
    char *buf = r->lr.line;
    size_t n = r->lr.len;
    while (n > 0 && buf[n - 1] == '\r')
        buf[--n] = 0;
    /* C strings stop at a NUL: the rest of the line would be lost silently. */
    size_t bad;
    r->bad = r->lr.too_long                  ? "the line is longer than 1 MiB (the limit of an input line)"
             : memchr(buf, 0, n)             ? "a NUL byte in the line"
             : !r->any_bytes && nu_utf8_check(buf, n, &bad) != NU_OK ? "not valid UTF-8"
                                                                   : NULL;
    return buf;
}

nu_status prep_reader_check(const reader *r, nu_status s)
{
    if (s == NU_OK && r->failed)
        return nu_error(NU_ERR_IO, "%s:%zu: read failed: %s", r->path, r->line + 1,
                        strerror(r->failed));
    return s;
}

void prep_reader_close(reader *r)
{
    if (r->f)
        fclose(r->f);
    nu_line_reader_free(&r->lr);
}

int prep_split_fields(char *s, char sep, int quotes, char **out, int most)
{
    int n = 0;
    for (;;) {
        if (n == most)
            return -1;
        if (quotes && *s == '"') {
            char *w = s, *q = s + 1;
            out[n++] = w;
            for (;;) {
                if (!*q)
                    return -1;
                if (*q == '"') {
                    if (q[1] == '"') {
                        *w++ = '"';
                        q += 2;
                        continue;
                    }
                    q++;
                    break;
                }
                *w++ = *q++;
            }
            *w = 0;
            if (*q != sep && *q)
                return -1;
            if (!*q)
                return n;
            s = q + 1;
            continue;
        }
        out[n++] = s;
        char *e = strchr(s, sep);
        if (!e)
            return n;
        *e = 0;
        s = e + 1;
    }
}

nu_status prep_header(reader *r, int cols, char sep)
{
    char *f[PREP_MAX_COLS];
    char *l = prep_reader_next(r);
    if (!l)
        return nu_error(NU_ERR_FORMAT, "%s:1: empty file (expected a header line)", r->path);
    if (r->bad)
        return nu_error(NU_ERR_FORMAT, "%s:1: %s", r->path, r->bad);
    int n = prep_split_fields(l, sep, 1, f, PREP_MAX_COLS);
    if (n < cols)
        return nu_error(NU_ERR_FORMAT, "%s:1: header has %d columns, expected %d", r->path, n,
                        cols);
    return NU_OK;
}

int prep_plain_id(const char *s)
{
    return *s && !strpbrk(s, "\t\n\r");
}

nu_status prep_bad_row(prep *g, const reader *r, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!g->p->skip_bad)
        return nu_error(NU_ERR_FORMAT, "%s:%zu: %s", r->path, r->line, msg);
    if (!g->sum->skipped_rows++)
        snprintf(g->sum->first_bad, sizeof g->sum->first_bad, "%s:%zu: %s", r->path, r->line,
                 msg);
    return NU_OK;
}
