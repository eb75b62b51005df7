/* The generic item-features file of `prepare --item-features`
 * (docs/data-format.md, "prepare"): a header line, then one row per item,
 *   item,field=value|field=value|...
 * Every field becomes a prefix field, in the order the file first names
 * them; a field is multi when some row gives it two different values, else
 * categorical.  Rows of items the ratings do not have still decide fields
 * and kinds but add no values to the vocabularies (they are counted). */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "prepare_state.h"
#include "util/grow.h"

/* What a model config accepts as a field name (src/model/config.c): the name
 * goes into tensor and file names. */
static const char field_name_chars[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";

/* Longest piece of a row quoted in a message. */
#define QUOTE_MAX 60

static int valid_field_name(const char *s, size_t len)
{
    return len >= 1 && len < NU_FIELD_NAME_MAX && strspn(s, field_name_chars) >= len;
}

static int quoted_len(size_t len)
{
    return (int)(len < QUOTE_MAX ? len : QUOTE_MAX);
}

static int field_index(const prep *g, const char *name, size_t len)
{
    for (size_t f = 0; f < g->n_fields; f++)
        if (strlen(g->fields[f].name) == len && !memcmp(g->fields[f].name, name, len))
            return (int)f;
    return -1;
}

typedef enum { ROW_OK, ROW_BAD, ROW_TOO_MANY_FIELDS } row_check;

/* Checks every pair of a features string before anything is kept, so a
 * skipped row (--skip-bad) leaves no trace; explains the first problem. */
static row_check check_pairs(const prep *g, const char *feats, char *msg, size_t cap)
{
    const char *new_names[NU_MAX_FIELDS];
    size_t new_lens[NU_MAX_FIELDS], n_new = 0;
    for (const char *p = feats; *feats;) {
        const char *end = strchr(p, '|');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!len) {
            snprintf(msg, cap, "empty field=value pair (\"||\", or \"|\" at an end)");
            return ROW_BAD;
        }
        if (!eq) {
            snprintf(msg, cap, "\"%.*s\" is not field=value", quoted_len(len), p);
            return ROW_BAD;
        }
        size_t name_len = (size_t)(eq - p), value_len = len - name_len - 1;
        if (!valid_field_name(p, name_len)) {
            snprintf(msg, cap, "field name \"%.*s\" must be 1..%d of [A-Za-z0-9_-]",
                     quoted_len(name_len), p, NU_FIELD_NAME_MAX - 1);
            return ROW_BAD;
        }
        if (!value_len) {
            snprintf(msg, cap, "field %.*s has an empty value", (int)name_len, p);
            return ROW_BAD;
        }
        if (memchr(eq + 1, '\t', value_len) || memchr(eq + 1, '\r', value_len) ||
            memchr(eq + 1, '\n', value_len)) {
            snprintf(msg, cap,
                     "the value of field %.*s has a tab or line break (a vocabulary file "
                     "holds one value per line)",
                     (int)name_len, p);
            return ROW_BAD;
        }
        int known = field_index(g, p, name_len) >= 0;
        for (size_t k = 0; !known && k < n_new; k++)
            known = new_lens[k] == name_len && !memcmp(new_names[k], p, name_len);
        if (!known) {
            if (g->n_fields + n_new == NU_MAX_FIELDS) {
                snprintf(msg, cap, "field %.*s would be prefix field %d; at most %d are allowed",
                         (int)name_len, p, NU_MAX_FIELDS + 1, NU_MAX_FIELDS);
                return ROW_TOO_MANY_FIELDS;
            }
            new_names[n_new] = p;
            new_lens[n_new++] = name_len;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return ROW_OK;
}

/* Keeps a checked features string (splitting it in place): new fields, the
 * kinds, and when the item is in the data (item != NU_ID_NONE) its values. */
static nu_status keep_pairs(prep *g, uint32_t item, char *feats)
{
    const char *first[NU_MAX_FIELDS] = {0}; /* this row's first value per field */
    nu_status s = NU_OK;
    for (char *p = *feats ? feats : NULL, *end; s == NU_OK && p; p = end) {
        if ((end = strchr(p, '|')))
            *end++ = 0;
        char *v = strchr(p, '=');
        *v++ = 0;
        int fi = field_index(g, p, strlen(p));
        size_t added;
        if (fi < 0 && (s = prep_field_add(g, p, 0, 1, &added)) == NU_OK)
            fi = (int)added;
        if (s != NU_OK || !strcmp(v, "<unk>")) /* <unk>: explicitly no value */
            continue;
        if (!first[fi])
            first[fi] = v;
        else if (strcmp(first[fi], v))
            g->fields[fi].multi = 1;
        if (item != NU_ID_NONE)
            s = prep_field_value(g, (size_t)fi, item, v);
    }
    return s;
}

/* The item ids listed so far and the line of each, for duplicates. */
typedef struct listed {
    nu_idmap ids;
    size_t *line;
    size_t cap;
} listed;

static nu_status feature_row(prep *g, reader *r, char *line, listed *seen)
{
    char *f[PREP_MAX_COLS], msg[160];
    int n = prep_split_fields(line, ',', 1, f, PREP_MAX_COLS);
    if (n < 0)
        return prep_bad_row(g, r, "unterminated quote or too many columns");
    if (n != 2)
        return prep_bad_row(g, r, "expected 2 columns (item,features), found %d", n);
    if (!prep_plain_id(f[0]))
        return prep_bad_row(g, r, "empty item id, or one with a tab or line break");
    uint32_t before = nu_idmap_find(&seen->ids, f[0], strlen(f[0]));
    if (before != NU_ID_NONE)
        return prep_bad_row(g, r, "item %s listed twice (also on line %zu)", f[0],
                            seen->line[before]);
    row_check c = check_pairs(g, f[1], msg, sizeof msg);
    if (c == ROW_TOO_MANY_FIELDS)
        return nu_error(NU_ERR_FORMAT, "%s:%zu: %s", r->path, r->line, msg);
    if (c == ROW_BAD)
        return prep_bad_row(g, r, "%s", msg);
    uint32_t at;
    nu_status s = nu_idmap_add(&seen->ids, f[0], strlen(f[0]), &at, 0);
    if (s == NU_OK && !nu_grow((void **)&seen->line, &seen->cap, at + 1, sizeof *seen->line))
        s = nu_error(NU_ERR_NOMEM, "out of memory");
    if (s != NU_OK)
        return s;
    seen->line[at] = r->line;
    uint32_t item = nu_idmap_find(&g->items, f[0], strlen(f[0]));
    g->sum->unused_feature_rows += item == NU_ID_NONE;
    if ((s = keep_pairs(g, item, f[1])) != NU_OK)
        return nu_error_context(s, "%s:%zu: ", r->path, r->line);
    return NU_OK;
}

/* Two columns; their names are free (item,features by convention). */
static nu_status features_header(reader *r)
{
    char *l = prep_reader_next(r), *head[PREP_MAX_COLS];
    if (!l)
        return nu_error(NU_ERR_FORMAT, "%s:1: empty file (expected the header item,features)",
                        r->path);
    if (r->bad)
        return nu_error(NU_ERR_FORMAT, "%s:1: %s", r->path, r->bad);
    int n = prep_split_fields(l, ',', 1, head, PREP_MAX_COLS);
    if (n != 2)
        return nu_error(NU_ERR_FORMAT,
                        "%s:1: header has %d columns, expected 2 (item,features)", r->path, n);
    return NU_OK;
}

nu_status prep_read_item_features(prep *g)
{
    reader r;
    listed seen = {.line = NULL, .cap = 0};
    nu_idmap_init(&seen.ids);
    nu_status s = prep_reader_open(&r, g->p->item_features);
    if (s == NU_OK)
        s = features_header(&r);
    char *l;
    while (s == NU_OK && (l = prep_reader_next(&r)))
        if (r.bad)
            s = prep_bad_row(g, &r, "%s", r.bad);
        else if (*l)
            s = feature_row(g, &r, l, &seen);
    s = prep_reader_check(&r, s);
    if (s == NU_OK && seen.ids.count == 0)
        s = nu_error(NU_ERR_FORMAT, "%s: no item rows", r.path);
    prep_reader_close(&r);
    nu_idmap_free(&seen.ids);
    free(seen.line);
    return s;
}
