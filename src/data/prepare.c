#include "prepare.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/idmap.h"
#include "error.h"
#include "io/atomic_dir.h"
#include "io/atomic_file.h"
#include "util/path.h"
#include "util/rng.h"

#define MAX_COLS 32
#define MAX_TIME 9007199254740992.0 /* 2^53: what the reader accepts */

void nu_prepare_defaults(nu_prepare_params *p)
{
    memset(p, 0, sizeof *p);
    p->pos_threshold = 4.0;
    p->neg_threshold = 2.0;
    p->seed = 1;
}

int nu_prepare_format_parse(const char *name, nu_prep_format *out)
{
    static const char *const names[] = {"movielens", "ml100k", "csv"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, names[i])) {
            *out = (nu_prep_format)i;
            return 1;
        }
    return 0;
}

/* ---- state ---- */

typedef struct strlist { char **v; size_t n, cap; } strlist;

typedef struct inter {
    uint32_t item, user;
    int64_t t;
    uint8_t neg;
} inter;

typedef struct prep {
    const nu_prepare_params *p;
    nu_prepare_summary *sum;
    nu_idmap users, items, genres, years, tags;
    size_t item_cap;
    strlist *item_genres, *item_tags; /* per item */
    uint32_t *item_year;              /* per item: index into years, NU_ID_NONE = <unk> */
    size_t *tag_items;                /* per tag: distinct items using it */
    inter *rows;
    size_t n_rows, cap_rows;
} prep;

static int strlist_add(strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s))
            return 2; /* already there */
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

static void prep_free(prep *g)
{
    for (size_t i = 0; i < g->items.count; i++) {
        strlist_free(&g->item_genres[i]);
        strlist_free(&g->item_tags[i]);
    }
    free(g->item_genres);
    free(g->item_tags);
    free(g->item_year);
    free(g->tag_items);
    free(g->rows);
    nu_idmap_free(&g->users);
    nu_idmap_free(&g->items);
    nu_idmap_free(&g->genres);
    nu_idmap_free(&g->years);
    nu_idmap_free(&g->tags);
}

/* Adds (or finds) an item and makes room for its features. */
static nu_status item_index(prep *g, const char *id, uint32_t *idx)
{
    nu_status s = nu_idmap_add(&g->items, id, strlen(id), idx, 1);
    if (s != NU_OK)
        return s;
    if (g->items.count > g->item_cap) {
        size_t c = g->item_cap ? 2 * g->item_cap : 256;
        strlist *a = realloc(g->item_genres, c * sizeof *a);
        if (a)
            g->item_genres = a;
        strlist *b = a ? realloc(g->item_tags, c * sizeof *b) : NULL;
        if (b)
            g->item_tags = b;
        uint32_t *y = b ? realloc(g->item_year, c * sizeof *y) : NULL;
        if (!y)
            return nu_error(NU_ERR_NOMEM, "out of memory for %zu items", c);
        g->item_year = y;
        memset(g->item_genres + g->item_cap, 0, (c - g->item_cap) * sizeof *a);
        memset(g->item_tags + g->item_cap, 0, (c - g->item_cap) * sizeof *b);
        for (size_t i = g->item_cap; i < c; i++)
            y[i] = NU_ID_NONE;
        g->item_cap = c;
    }
    return NU_OK;
}

/* ---- line and field parsing ---- */

typedef struct reader {
    FILE *f;
    const char *path;
    size_t line;
    char *buf;
    size_t cap;
} reader;

static nu_status reader_open(reader *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    if (!(r->f = fopen(path, "rb")))
        return nu_error(NU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    return NU_OK;
}

/* Next line without its end of line; NULL at end of file. */
static char *reader_next(reader *r)
{
    ssize_t n = getline(&r->buf, &r->cap, r->f);
    if (n < 0)
        return NULL;
    r->line++;
    while (n > 0 && (r->buf[n - 1] == '\n' || r->buf[n - 1] == '\r'))
        r->buf[--n] = 0;
    return r->buf;
}

static void reader_close(reader *r)
{
    if (r->f)
        fclose(r->f);
    free(r->buf);
}

/* Splits in place on `sep`; with quotes (CSV) a field may be "quoted" with
 * "" for a quote.  Returns the field count, or -1 for an unterminated quote
 * or too many fields. */
static int split_fields(char *s, char sep, int quotes, char **out, int most)
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

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || !(fabs((double)v) <= MAX_TIME))
        return 0;
    *out = v;
    return 1;
}

static int parse_id(const char *s, int64_t *out)
{
    return parse_i64(s, out) && *out >= 0;
}

static int parse_num(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

/* A malformed row: an error naming file:line, or counted with skip_bad. */
static nu_status bad_row(prep *g, const reader *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static nu_status bad_row(prep *g, const reader *r, const char *fmt, ...)
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

/* Reads the header line of a file that has one; an empty file is an error. */
static nu_status header(reader *r, int cols, char sep)
{
    char *f[MAX_COLS];
    char *l = reader_next(r);
    if (!l)
        return nu_error(NU_ERR_FORMAT, "%s:1: empty file (expected a header line)", r->path);
    int n = split_fields(l, sep, 1, f, MAX_COLS);
    if (n < cols)
        return nu_error(NU_ERR_FORMAT, "%s:1: header has %d columns, expected %d", r->path, n,
                        cols);
    return NU_OK;
}

/* ---- items ---- */

static int plain_id(const char *s)
{
    return *s && !strpbrk(s, "\t\n\r");
}


static nu_status add_year(prep *g, uint32_t item, long year)
{
    char b[24];
    snprintf(b, sizeof b, "%lds", year / 10 * 10);
    return nu_idmap_add(&g->years, b, strlen(b), &g->item_year[item], 1);
}

/* The year of a MovieLens title: the last "(dddd)" in it. */
static long title_year(const char *t)
{
    long year = -1;
    for (const char *p = strchr(t, '('); p; p = strchr(p + 1, '('))
        if (isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
            isdigit((unsigned char)p[3]) && isdigit((unsigned char)p[4]) && p[5] == ')')
            year = strtol(p + 1, NULL, 10);
    return year;
}

static nu_status add_genre(prep *g, uint32_t item, const char *name)
{
    uint32_t k;
    if (!*name || !strcmp(name, "(no genres listed)"))
        return NU_OK;
    nu_status s = nu_idmap_add(&g->genres, name, strlen(name), &k, 1);
    if (s == NU_OK && !strlist_add(&g->item_genres[item], name))
        s = nu_error(NU_ERR_NOMEM, "out of memory");
    return s;
}

static nu_status new_item(prep *g, const reader *r, const char *id, uint32_t *idx, int *dup)
{
    size_t before = g->items.count;
    nu_status s = item_index(g, id, idx);
    if (s != NU_OK)
        return nu_error_context(s, "%s:%zu: ", r->path, r->line);
    *dup = g->items.count == before;
    return NU_OK;
}

static nu_status movies_row(prep *g, reader *r, char *line)
{
    char *f[MAX_COLS], buf[32], *id = buf;
    int n = split_fields(line, ',', 1, f, MAX_COLS);
    int64_t mid;
    if (n != 3)
        return bad_row(g, r, "expected 3 columns (movieId,title,genres), found %d", n);
    if (g->p->format == NU_PREP_CSV) {
        if (!plain_id(f[0]))
            return bad_row(g, r, "empty item id");
        id = f[0];
    } else if (!parse_id(f[0], &mid))
        return bad_row(g, r, "bad movie id \"%s\"", f[0]);
    else
        snprintf(buf, sizeof buf, "m%lld", (long long)mid);
    uint32_t it;
    int dup = 0;
    nu_status s = new_item(g, r, id, &it, &dup);
    if (s != NU_OK)
        return s;
    if (dup)
        return bad_row(g, r, "item %s listed twice", id);
    long y = title_year(f[1]);
    if (y >= 0 && (s = add_year(g, it, y)) != NU_OK)
        return s;
    for (char *t = f[2], *e; s == NU_OK && t; t = e) {
        if ((e = strchr(t, '|')))
            *e++ = 0;
        s = add_genre(g, it, t);
    }
    return s;
}

static const char *const ml100k_genres[19] = {
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western"};

static nu_status uitem_row(prep *g, reader *r, char *line)
{
    char *f[MAX_COLS], id[32];
    int n = split_fields(line, '|', 0, f, MAX_COLS);
    int64_t mid;
    if (n != 24)
        return bad_row(g, r, "expected 24 \"|\"-separated columns, found %d", n);
    if (!parse_id(f[0], &mid))
        return bad_row(g, r, "bad movie id \"%s\"", f[0]);
    for (int k = 0; k < 19; k++)
        if (strcmp(f[5 + k], "0") && strcmp(f[5 + k], "1"))
            return bad_row(g, r, "genre flag %d is \"%s\", expected 0 or 1", k + 1, f[5 + k]);
    snprintf(id, sizeof id, "m%lld", (long long)mid);
    uint32_t it;
    int dup = 0;
    nu_status s = new_item(g, r, id, &it, &dup);
    if (s != NU_OK)
        return s;
    if (dup)
        return bad_row(g, r, "item %s listed twice", id);
    size_t len = strlen(f[2]); /* "01-Jan-1995" */
    if (len >= 4 && isdigit((unsigned char)f[2][len - 4]) &&
        (s = add_year(g, it, strtol(f[2] + len - 4, NULL, 10))) != NU_OK)
        return s;
    for (int k = 1; s == NU_OK && k < 19; k++) /* flag 0, "unknown", means no genre */
        if (f[5 + k][0] == '1')
            s = add_genre(g, it, ml100k_genres[k]);
    return s;
}

static nu_status read_items(prep *g)
{
    reader r;
    nu_status s = reader_open(&r, g->p->items);
    int ml100k = g->p->format == NU_PREP_ML100K;
    if (s == NU_OK && !ml100k)
        s = header(&r, 3, ',');
    char *l;
    while (s == NU_OK && (l = reader_next(&r)))
        if (*l)
            s = ml100k ? uitem_row(g, &r, l) : movies_row(g, &r, l);
    if (s == NU_OK && g->items.count == 0)
        s = nu_error(NU_ERR_FORMAT, "%s: no items", r.path);
    reader_close(&r);
    return s;
}

/* ---- ratings ---- */

static nu_status add_rating(prep *g, reader *r, const char *user, const char *item, double v,
                            int judged, int64_t t)
{
    int pos = judged ? v >= g->p->pos_threshold : v > 0;
    int neg = judged ? v <= g->p->neg_threshold : v <= 0;
    uint32_t it = nu_idmap_find(&g->items, item, strlen(item)), u;
    if (it == NU_ID_NONE && g->p->items)
        return bad_row(g, r, "unknown item %s (not in %s)", item, g->p->items);
    if (!pos && !neg) {
        g->sum->ignored_ratings++;
        return NU_OK;
    }
    nu_status s = NU_OK;
    if (it == NU_ID_NONE && (s = item_index(g, item, &it)) != NU_OK)
        return s;
    if ((s = nu_idmap_add(&g->users, user, strlen(user), &u, 1)) != NU_OK)
        return nu_error_context(s, "%s:%zu: ", r->path, r->line);
    if (g->n_rows == g->cap_rows) {
        size_t c = g->cap_rows ? 2 * g->cap_rows : 1024;
        inter *a = realloc(g->rows, c * sizeof *a);
        if (!a)
            return nu_error(NU_ERR_NOMEM, "out of memory for %zu ratings", c);
        g->rows = a;
        g->cap_rows = c;
    }
    g->rows[g->n_rows++] = (inter){it, u, t, (uint8_t)!pos};
    return NU_OK;
}

static nu_status ratings_row(prep *g, reader *r, char *line)
{
    char *f[MAX_COLS], uid[32], iid[32];
    int csv = g->p->format == NU_PREP_CSV, ml100k = g->p->format == NU_PREP_ML100K;
    int n = split_fields(line, ml100k ? '\t' : ',', !ml100k, f, MAX_COLS);
    if (n != 4)
        return bad_row(g, r, "expected 4 columns, found %d", n);
    int64_t t, a, b;
    double v = 0;
    if (csv) {
        if (!plain_id(f[0]) || !plain_id(f[1]))
            return bad_row(g, r, "empty user or item id");
        if (!parse_i64(f[2], &t))
            return bad_row(g, r, "bad timestamp \"%s\"", f[2]);
        if (!strcmp(f[3], "positive") || !strcmp(f[3], "exposed"))
            return add_rating(g, r, f[0], f[1], f[3][0] == 'p', 0, t);
        if (!parse_num(f[3], &v))
            return bad_row(g, r, "bad signal \"%s\" (positive, exposed or a rating)", f[3]);
        return add_rating(g, r, f[0], f[1], v, 1, t);
    }
    if (!parse_id(f[0], &a))
        return bad_row(g, r, "bad user id \"%s\"", f[0]);
    if (!parse_id(f[1], &b))
        return bad_row(g, r, "bad item id \"%s\"", f[1]);
    if (!parse_num(f[2], &v))
        return bad_row(g, r, "bad rating \"%s\"", f[2]);
    if (!parse_i64(f[3], &t))
        return bad_row(g, r, "bad timestamp \"%s\"", f[3]);
    snprintf(uid, sizeof uid, "u%lld", (long long)a);
    snprintf(iid, sizeof iid, "m%lld", (long long)b);
    return add_rating(g, r, uid, iid, v, 1, t);
}

static nu_status read_ratings(prep *g)
{
    reader r;
    nu_status s = reader_open(&r, g->p->ratings);
    if (s == NU_OK && g->p->format != NU_PREP_ML100K)
        s = header(&r, 4, ',');
    char *l;
    while (s == NU_OK && (l = reader_next(&r)))
        if (*l)
            s = ratings_row(g, &r, l);
    if (s == NU_OK && g->users.count == 0)
        s = nu_error(NU_ERR_FORMAT, "%s: no positive or negative ratings", r.path);
    reader_close(&r);
    return s;
}

/* ---- tags ---- */

static nu_status tags_row(prep *g, reader *r, char *line)
{
    char *f[MAX_COLS], buf[32], *iid = buf;
    int n = split_fields(line, ',', 1, f, MAX_COLS);
    int64_t a, b, t;
    if (n != 4)
        return bad_row(g, r, "expected 4 columns (userId,movieId,tag,timestamp), found %d", n);
    if (g->p->format == NU_PREP_CSV)
        iid = f[1];
    else if (!parse_id(f[1], &b))
        return bad_row(g, r, "bad movie id \"%s\"", f[1]);
    else
        snprintf(buf, sizeof buf, "m%lld", (long long)b);
    if (g->p->format != NU_PREP_CSV && !parse_id(f[0], &a))
        return bad_row(g, r, "bad user id \"%s\"", f[0]);
    if (!parse_i64(f[3], &t))
        return bad_row(g, r, "bad timestamp \"%s\"", f[3]);
    uint32_t it = nu_idmap_find(&g->items, iid, strlen(iid));
    if (it == NU_ID_NONE) {
        if (g->p->items)
            return bad_row(g, r, "unknown item %s (not in %s)", iid, g->p->items);
        g->sum->unused_tag_rows++;
        return NU_OK;
    }
    /* Lower-case, trimmed, inner whitespace kept; tabs would break vocab files. */
    char *tag = f[2];
    while (isspace((unsigned char)*tag))
        tag++;
    size_t len = strlen(tag);
    while (len && isspace((unsigned char)tag[len - 1]))
        tag[--len] = 0;
    for (char *c = tag; *c; c++)
        *c = *c == '\t' ? ' ' : (char)tolower((unsigned char)*c);
    if (!len)
        return bad_row(g, r, "empty tag");
    int added = strlist_add(&g->item_tags[it], tag);
    if (!added)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    uint32_t k;
    size_t before = g->tags.count;
    nu_status s = nu_idmap_add(&g->tags, tag, len, &k, 1);
    if (s != NU_OK)
        return s;
    if (g->tags.count > before) {
        size_t *c = realloc(g->tag_items, g->tags.count * sizeof *c);
        if (!c)
            return nu_error(NU_ERR_NOMEM, "out of memory");
        g->tag_items = c;
        c[k] = 0;
    }
    g->tag_items[k] += added == 1;
    return NU_OK;
}

static nu_status read_tags(prep *g)
{
    reader r;
    nu_status s = reader_open(&r, g->p->tags);
    if (s == NU_OK)
        s = header(&r, 4, ',');
    char *l;
    while (s == NU_OK && (l = reader_next(&r)))
        if (*l)
            s = tags_row(g, &r, l);
    reader_close(&r);
    return s;
}

static int kept_tag(const prep *g, const char *t)
{
    uint32_t k = nu_idmap_find(&g->tags, t, strlen(t));
    return k != NU_ID_NONE && g->tag_items[k] >= 2;
}

/* ---- writing ---- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_inter(const void *a, const void *b)
{
    const inter *x = a, *y = b;
    if (x->item != y->item)
        return x->item < y->item ? -1 : 1;
    if (x->neg != y->neg)
        return x->neg < y->neg ? -1 : 1;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->user < y->user ? -1 : x->user > y->user;
}

/* Writes <unk> then the (kept) names sorted; returns the line count or 0. */
static size_t write_vocab(FILE *f, const prep *g, const nu_idmap *m, int tags)
{
    char **v = malloc((m->count + 1) * sizeof *v);
    size_t n = 0;
    if (!v)
        return 0;
    for (size_t i = 0; i < m->count; i++)
        if (!tags || g->tag_items[i] >= 2)
            v[n++] = m->names[i];
    qsort(v, n, sizeof *v, cmp_str);
    fputs("<unk>\n", f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s\n", v[i]);
    free(v);
    return n + 1;
}

static void write_pairs(FILE *f, const prep *g, const char *key, const inter *r, size_t n)
{
    fprintf(f, ", \"%s\": [", key);
    for (size_t k = 0; k < n; k++) {
        fputs(k ? ", [" : "[", f);
        json_str(f, g->users.names[r[k].user]);
        fprintf(f, ", %lld]", (long long)r[k].t);
    }
    fputc(']', f);
}

static const char *const split_names[3] = {"train", "val", "test"};

static void write_items(FILE *f, prep *g, const uint8_t *split)
{
    size_t k = 0;
    for (size_t i = 0; i < g->items.count; i++) {
        fputs("{\"id\": ", f);
        json_str(f, g->items.names[i]);
        fprintf(f, ", \"split\": \"%s\", \"features\": {\"genres\": [", split_names[split[i]]);
        strlist *gl = &g->item_genres[i];
        if (gl->n > 1)
            qsort(gl->v, gl->n, sizeof *gl->v, cmp_str);
        for (size_t j = 0; j < gl->n; j++) {
            fputs(j ? ", " : "", f);
            json_str(f, gl->v[j]);
        }
        fputs("], \"year\": ", f);
        json_str(f, g->item_year[i] == NU_ID_NONE ? "<unk>" : g->years.names[g->item_year[i]]);
        if (g->p->tags) {
            fputs(", \"tags\": [", f);
            strlist *tl = &g->item_tags[i];
            if (tl->n > 1)
                qsort(tl->v, tl->n, sizeof *tl->v, cmp_str);
            int first = 1;
            for (size_t j = 0; j < tl->n; j++)
                if (kept_tag(g, tl->v[j])) {
                    fputs(first ? "" : ", ", f);
                    json_str(f, tl->v[j]);
                    first = 0;
                }
            fputc(']', f);
        }
        fputc('}', f);
        size_t a = k;
        while (k < g->n_rows && g->rows[k].item == i && !g->rows[k].neg)
            k++;
        size_t b = k;
        while (k < g->n_rows && g->rows[k].item == i)
            k++;
        write_pairs(f, g, "positives", g->rows + a, b - a);
        write_pairs(f, g, "negatives", g->rows + b, k - b);
        fputs("}\n", f);
        g->sum->positives += b - a;
        g->sum->negatives += k - b;
        g->sum->split_items[split[i]]++;
    }
}

static void write_data_json(FILE *f, const prep *g)
{
    static const char *const fmt_names[] = {"movielens", "ml100k", "csv"};
    const nu_prepare_summary *s = g->sum;
    fprintf(f,
            "{\"format\": \"nextuser-data-1\", \"num_users\": %zu, \"num_items\": %zu,\n"
            " \"prefix_fields\": [{\"name\": \"genres\", \"kind\": \"multi\", \"vocab\": %zu},\n"
            "  {\"name\": \"year\", \"kind\": \"categorical\", \"vocab\": %zu}",
            g->users.count, g->items.count, s->genres_vocab, s->years_vocab);
    if (g->p->tags)
        fprintf(f, ",\n  {\"name\": \"tags\", \"kind\": \"multi\", \"vocab\": %zu}",
                s->tags_vocab);
    fprintf(f, "],\n \"seed\": %llu,\n \"source\": ", (unsigned long long)g->p->seed);
    char src[512];
    snprintf(src, sizeof src, "prepare %s: pos >= %g, neg <= %g, split 0.7/0.1/0.2",
             fmt_names[g->p->format], g->p->pos_threshold, g->p->neg_threshold);
    json_str(f, src);
    fputs("}\n", f);
}

enum { F_USERS, F_GENRES, F_YEAR, F_TAGS, F_ITEMS, F_DATA, F_COUNT };
static const char *const file_names[F_COUNT] = {"users.txt", "vocab_genres.txt",
                                                "vocab_year.txt", "vocab_tags.txt",
                                                "items.jsonl", "data.json"};

static nu_status write_one(prep *g, const char *dir, int which, const uint8_t *split)
{
    char path[NU_PATH_MAX];
    nu_status s = nu_path_join(path, sizeof path, dir, file_names[which]);
    nu_atomic_file af;
    if (s == NU_OK)
        s = nu_atomic_open(path, &af);
    if (s != NU_OK)
        return s;
    FILE *f = af.fp;
    nu_prepare_summary *sum = g->sum;
    switch (which) {
    case F_USERS:
        for (size_t u = 0; u < g->users.count; u++)
            fprintf(f, "%s\n", g->users.names[u]);
        break;
    case F_GENRES: sum->genres_vocab = write_vocab(f, g, &g->genres, 0); break;
    case F_YEAR: sum->years_vocab = write_vocab(f, g, &g->years, 0); break;
    case F_TAGS: sum->tags_vocab = write_vocab(f, g, &g->tags, 1); break;
    case F_ITEMS: write_items(f, g, split); break;
    default: write_data_json(f, g); break;
    }
    if (which >= F_GENRES && which <= F_TAGS && !(which == F_GENRES ? sum->genres_vocab
                                                  : which == F_YEAR  ? sum->years_vocab
                                                                     : sum->tags_vocab))
        s = nu_error(NU_ERR_NOMEM, "out of memory");
    if (s == NU_OK && ferror(f))
        s = nu_error(NU_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (s != NU_OK) {
        nu_atomic_abort(&af);
        return s;
    }
    return nu_atomic_commit(&af);
}

/* The seeded split: a permutation's first round(0.7 I) train, then val. */
static uint8_t *make_split(size_t I, uint64_t seed)
{
    uint8_t *split = malloc(I ? I : 1);
    uint32_t *perm = malloc((I ? I : 1) * sizeof *perm);
    if (!split || !perm) {
        free(split);
        free(perm);
        return NULL;
    }
    nu_random r = {seed ^ 0x5eed5b117ull};
    nu_random_next(&r);
    for (size_t i = 0; i < I; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = I; i > 1; i--) {
        size_t j = (size_t)nu_random_below(&r, i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    size_t n_train = (size_t)llround(0.7 * (double)I), n_val = (size_t)llround(0.1 * (double)I);
    if (n_train + n_val > I)
        n_val = I - n_train;
    for (size_t i = 0; i < I; i++)
        split[perm[i]] = i < n_train ? 0 : i < n_train + n_val ? 1 : 2;
    free(perm);
    return split;
}

static nu_status check_params(const nu_prepare_params *p)
{
    if (!p->ratings)
        return nu_error(NU_ERR_INVALID_ARG, "a ratings file is required");
    if (!(isfinite(p->pos_threshold) && isfinite(p->neg_threshold) &&
          p->neg_threshold < p->pos_threshold))
        return nu_error(NU_ERR_INVALID_ARG,
                        "thresholds must be finite with neg-threshold (%g) < pos-threshold (%g)",
                        p->neg_threshold, p->pos_threshold);
    if ((unsigned)p->format > NU_PREP_CSV)
        return nu_error(NU_ERR_INVALID_ARG, "unknown input format");
    return NU_OK;
}

static nu_status write_dir(prep *g, const char *dir)
{
    qsort(g->rows, g->n_rows, sizeof *g->rows, cmp_inter);
    uint8_t *split = make_split(g->items.count, g->p->seed);
    if (!split)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    nu_atomic_dir ad;
    nu_status s = nu_atomic_dir_begin(dir, &ad);
    if (s != NU_OK) {
        free(split);
        return s;
    }
    for (int w = 0; s == NU_OK && w < F_COUNT; w++)
        if (w != F_TAGS || g->p->tags)
            s = write_one(g, ad.tmp, w, split);
    free(split);
    if (s == NU_OK)
        s = nu_atomic_dir_commit(&ad);
    else
        nu_atomic_dir_abort(&ad);
    return s;
}

nu_status nu_prepare(const nu_prepare_params *p, const char *dir, nu_prepare_summary *sum)
{
    nu_prepare_summary local;
    if (!sum)
        sum = &local;
    memset(sum, 0, sizeof *sum);
    nu_status s = check_params(p);
    if (s == NU_OK)
        s = nu_atomic_dir_check(dir); /* before reading the logs */
    if (s != NU_OK)
        return s;
    prep g;
    memset(&g, 0, sizeof g);
    g.p = p;
    g.sum = sum;
    nu_idmap_init(&g.users);
    nu_idmap_init(&g.items);
    nu_idmap_init(&g.genres);
    nu_idmap_init(&g.years);
    nu_idmap_init(&g.tags);
    if (p->items)
        s = read_items(&g);
    if (s == NU_OK)
        s = read_ratings(&g);
    if (s == NU_OK && p->tags)
        s = read_tags(&g);
    if (s == NU_OK)
        s = write_dir(&g, dir);
    sum->users = g.users.count;
    sum->items = g.items.count;
    prep_free(&g);
    return s;
}
