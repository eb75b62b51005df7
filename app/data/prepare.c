/* nu_prepare: the MovieLens, ml100k and csv readers (prepare.h); the
 * generic item-features file is read in prepare_features.c and the output
 * written in prepare_write.c. */
#include "prepare.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "io/atomic_dir.h"
#include "prepare_state.h"

#define MAX_COLS PREP_MAX_COLS

/* The built-in prefix fields' positions when no item-features file is given. */
enum { FIELD_GENRES, FIELD_YEAR, FIELD_TAGS };

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

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) /* any int64, read exactly (not through a double) */
        return 0;
    *out = v;
    return 1;
}

/* A MovieLens id: digits without a sign, spaces or leading zeros, so that
 * two spellings of one number ("7", "07") never become one id silently. */
static int parse_id(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18 || strspn(s, "0123456789") != n || (s[0] == '0' && n > 1))
        return 0;
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

/* ---- items ---- */

static nu_status add_year(prep *g, uint32_t item, long year)
{
    char b[24];
    snprintf(b, sizeof b, "%lds", year / 10 * 10);
    return prep_field_value(g, FIELD_YEAR, item, b);
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

/* Checks a movie's genres ("A|B|...") before any is kept. */
static const char *genres_problem(const char *list)
{
    char one[256];
    for (const char *t = list, *e; t; t = e ? e + 1 : NULL) {
        e = strchr(t, '|');
        size_t n = e ? (size_t)(e - t) : strlen(t);
        if (!n)
            continue;
        snprintf(one, sizeof one, "%.*s", (int)(n < sizeof one - 1 ? n : sizeof one - 1), t);
        const char *p = prep_value_problem(one);
        if (p)
            return p;
    }
    return NULL;
}

static nu_status add_genre(prep *g, uint32_t item, const char *name)
{
    if (!*name || !strcmp(name, "(no genres listed)"))
        return NU_OK;
    return prep_field_value(g, FIELD_GENRES, item, name);
}

static nu_status new_item(prep *g, const reader *r, const char *id, uint32_t *idx, int *dup)
{
    size_t before = g->items.count;
    nu_status s = prep_item_index(g, id, idx);
    if (s != NU_OK)
        return nu_error_context(s, "%s:%zu: ", r->path, r->line);
    *dup = g->items.count == before;
    return NU_OK;
}

static nu_status movies_row(prep *g, reader *r, char *line)
{
    char *f[MAX_COLS], buf[32], *id = buf;
    int n = prep_split_fields(line, ',', 1, f, MAX_COLS);
    int64_t mid;
    if (n != 3)
        return prep_bad_row(g, r, "expected 3 columns (movieId,title,genres), found %d", n);
    const char *problem = genres_problem(f[2]);
    if (problem)
        return prep_bad_row(g, r, "genres: %s", problem);
    if (g->p->format == NU_PREP_CSV) {
        if (!prep_plain_id(f[0]))
            return prep_bad_row(g, r, "empty item id");
        id = f[0];
    } else if (!parse_id(f[0], &mid))
        return prep_bad_row(g, r, "bad movie id \"%s\"", f[0]);
    else
        snprintf(buf, sizeof buf, "m%lld", (long long)mid);
    uint32_t it;
    int dup = 0;
    nu_status s = new_item(g, r, id, &it, &dup);
    if (s != NU_OK)
        return s;
    if (dup)
        return prep_bad_row(g, r, "item %s listed twice", id);
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
    int n = prep_split_fields(line, '|', 0, f, MAX_COLS);
    int64_t mid;
    if (n != 24)
        return prep_bad_row(g, r, "expected 24 \"|\"-separated columns, found %d", n);
    if (!parse_id(f[0], &mid))
        return prep_bad_row(g, r, "bad movie id \"%s\"", f[0]);
    for (int k = 0; k < 19; k++)
        if (strcmp(f[5 + k], "0") && strcmp(f[5 + k], "1"))
            return prep_bad_row(g, r, "genre flag %d is \"%s\", expected 0 or 1", k + 1, f[5 + k]);
    snprintf(id, sizeof id, "m%lld", (long long)mid);
    uint32_t it;
    int dup = 0;
    nu_status s = new_item(g, r, id, &it, &dup);
    if (s != NU_OK)
        return s;
    if (dup)
        return prep_bad_row(g, r, "item %s listed twice", id);
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
    nu_status s = prep_reader_open(&r, g->p->items);
    int ml100k = g->p->format == NU_PREP_ML100K;
    r.any_bytes = ml100k; /* u.item titles are Latin-1; only ids, dates and flags are kept */
    if (s == NU_OK && !ml100k)
        s = prep_header(&r, 3, ',');
    char *l;
    while (s == NU_OK && (l = prep_reader_next(&r)))
        if (r.bad)
            s = prep_bad_row(g, &r, "%s", r.bad);
        else if (*l)
            s = ml100k ? uitem_row(g, &r, l) : movies_row(g, &r, l);
    s = prep_reader_check(&r, s);
    if (s == NU_OK && g->items.count == 0)
        s = nu_error(NU_ERR_FORMAT, "%s: no items", r.path);
    prep_reader_close(&r);
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
        return prep_bad_row(g, r, "unknown item %s (not in %s)", item, g->p->items);
    if (!pos && !neg) {
        g->sum->ignored_ratings++;
        return NU_OK;
    }
    nu_status s = NU_OK;
    if (it == NU_ID_NONE && (s = prep_item_index(g, item, &it)) != NU_OK)
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
    int n = prep_split_fields(line, ml100k ? '\t' : ',', !ml100k, f, MAX_COLS);
    if (n != 4)
        return prep_bad_row(g, r, "expected 4 columns, found %d", n);
    int64_t t, a, b;
    double v = 0;
    if (csv) {
        if (!prep_plain_id(f[0]) || !prep_plain_id(f[1]))
            return prep_bad_row(g, r, "empty user or item id");
        if (!parse_i64(f[2], &t))
            return prep_bad_row(g, r, "bad timestamp \"%s\"", f[2]);
        if (!strcmp(f[3], "positive") || !strcmp(f[3], "exposed"))
            return add_rating(g, r, f[0], f[1], f[3][0] == 'p', 0, t);
        if (!parse_num(f[3], &v))
            return prep_bad_row(g, r, "bad signal \"%s\" (positive, exposed or a rating)", f[3]);
        return add_rating(g, r, f[0], f[1], v, 1, t);
    }
    if (!parse_id(f[0], &a))
        return prep_bad_row(g, r, "bad user id \"%s\"", f[0]);
    if (!parse_id(f[1], &b))
        return prep_bad_row(g, r, "bad item id \"%s\"", f[1]);
    if (!parse_num(f[2], &v))
        return prep_bad_row(g, r, "bad rating \"%s\"", f[2]);
    if (!parse_i64(f[3], &t))
        return prep_bad_row(g, r, "bad timestamp \"%s\"", f[3]);
    snprintf(uid, sizeof uid, "u%lld", (long long)a);
    snprintf(iid, sizeof iid, "m%lld", (long long)b);
    return add_rating(g, r, uid, iid, v, 1, t);
}

static nu_status read_ratings(prep *g)
{
    reader r;
    nu_status s = prep_reader_open(&r, g->p->ratings);
    if (s == NU_OK && g->p->format != NU_PREP_ML100K)
        s = prep_header(&r, 4, ',');
    char *l;
    while (s == NU_OK && (l = prep_reader_next(&r)))
        if (r.bad)
            s = prep_bad_row(g, &r, "%s", r.bad);
        else if (*l)
            s = ratings_row(g, &r, l);
    s = prep_reader_check(&r, s);
    if (s == NU_OK && g->users.count == 0)
        s = nu_error(NU_ERR_FORMAT, "%s: no positive or negative ratings", r.path);
    prep_reader_close(&r);
    return s;
}

/* ---- tags ---- */

static nu_status tags_row(prep *g, reader *r, char *line)
{
    char *f[MAX_COLS], buf[32], *iid = buf;
    int n = prep_split_fields(line, ',', 1, f, MAX_COLS);
    int64_t a, b, t;
    if (n != 4)
        return prep_bad_row(g, r, "expected 4 columns (userId,movieId,tag,timestamp), found %d", n);
    if (g->p->format == NU_PREP_CSV)
        iid = f[1];
    else if (!parse_id(f[1], &b))
        return prep_bad_row(g, r, "bad movie id \"%s\"", f[1]);
    else
        snprintf(buf, sizeof buf, "m%lld", (long long)b);
    if (g->p->format != NU_PREP_CSV && !parse_id(f[0], &a))
        return prep_bad_row(g, r, "bad user id \"%s\"", f[0]);
    if (!parse_i64(f[3], &t))
        return prep_bad_row(g, r, "bad timestamp \"%s\"", f[3]);
    uint32_t it = nu_idmap_find(&g->items, iid, strlen(iid));
    if (it == NU_ID_NONE) {
        if (g->p->items)
            return prep_bad_row(g, r, "unknown item %s (not in %s)", iid, g->p->items);
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
        return prep_bad_row(g, r, "empty tag");
    const char *problem = prep_value_problem(tag);
    if (problem)
        return prep_bad_row(g, r, "tag: %s", problem);
    return prep_field_value(g, FIELD_TAGS, it, tag);
}

static nu_status read_tags(prep *g)
{
    reader r;
    nu_status s = prep_reader_open(&r, g->p->tags);
    if (s == NU_OK)
        s = prep_header(&r, 4, ',');
    char *l;
    while (s == NU_OK && (l = prep_reader_next(&r)))
        if (r.bad)
            s = prep_bad_row(g, &r, "%s", r.bad);
        else if (*l)
            s = tags_row(g, &r, l);
    s = prep_reader_check(&r, s);
    prep_reader_close(&r);
    return s;
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
    /* The features file replaces movies.csv and tags.csv: one source of features. */
    if (p->item_features && (p->items || p->tags))
        return nu_error(NU_ERR_INVALID_ARG, "an item-features file excludes items and tags files");
    if (p->item_features && p->format != NU_PREP_CSV)
        return nu_error(NU_ERR_INVALID_ARG, "an item-features file needs the csv format");
    return NU_OK;
}

/* genres, year and (with a tags file) tags, the fields of the MovieLens readers. */
static nu_status builtin_fields(prep *g)
{
    size_t at;
    nu_status s = prep_field_add(g, "genres", 1, 1, &at);
    if (s == NU_OK)
        s = prep_field_add(g, "year", 0, 1, &at);
    if (s == NU_OK && g->p->tags) /* tags of a single item teach nothing */
        s = prep_field_add(g, "tags", 1, 2, &at);
    return s;
}

static nu_status prepare(const nu_prepare_params *p, const char *dir, nu_prepare_summary *sum)
{
    nu_prepare_summary local;
    if (!sum)
        sum = &local;
    memset(sum, 0, sizeof *sum);
    nu_status s = check_params(p);
    if (s == NU_OK && dir)
        s = nu_atomic_dir_check(dir); /* before reading the logs */
    if (s != NU_OK)
        return s;
    prep g;
    memset(&g, 0, sizeof g);
    g.p = p;
    g.sum = sum;
    nu_idmap_init(&g.users);
    nu_idmap_init(&g.items);
    if (!p->item_features)
        s = builtin_fields(&g);
    if (s == NU_OK && p->items)
        s = read_items(&g);
    if (s == NU_OK)
        s = read_ratings(&g);
    if (s == NU_OK && p->tags)
        s = read_tags(&g);
    if (s == NU_OK && p->item_features) /* after the ratings: they decide the items */
        s = prep_read_item_features(&g);
    if (s == NU_OK && dir)
        s = prep_write_dir(&g, dir);
    sum->users = g.users.count;
    sum->items = g.items.count;
    prep_free(&g);
    return s;
}

nu_status nu_prepare(const nu_prepare_params *p, const char *dir, nu_prepare_summary *sum)
{
    if (!dir)
        return nu_error(NU_ERR_INVALID_ARG, "prepare: no output directory");
    return prepare(p, dir, sum);
}

nu_status nu_prepare_read(const nu_prepare_params *p, nu_prepare_summary *sum)
{
    return prepare(p, NULL, sum);
}
