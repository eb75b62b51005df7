/* Internal to nu_prepare (prepare.c, prepare_features.c, prepare_write.c):
 * the state the readers fill and the writers read, and the line reader
 * every input file goes through. */
#ifndef NU_PREPARE_STATE_H
#define NU_PREPARE_STATE_H

#include <stdint.h>
#include <stdio.h>

#include "data/idmap.h"
#include "data/prepare.h"
#include "util/line_reader.h"

#define PREP_MAX_COLS 32
/* Vocabulary rows, <unk> included: model configs take sizes below 2^31. */
#define PREP_MAX_VOCAB 2147483647u

typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist;

/* One prefix field: its values and, per item, the values the item has. */
typedef struct prep_field {
    char name[NU_FIELD_NAME_MAX];
    int multi;            /* 0: categorical (no item has two values) */
    size_t min_items;     /* values of fewer items stay out of the vocabulary */
    nu_idmap values;      /* every value seen, first-seen order */
    size_t *value_items;  /* per value: the distinct items that have it */
    size_t value_items_cap;
    strlist *item_values; /* per item (item_cap entries) */
    /* The (item, value) pairs given so far, as item << 32 | value index + 1
     * in an open-addressing set (0: empty), so a repeated value is found in
     * O(1) however many values an item has. */
    uint64_t *pairs;
    size_t pairs_count, pairs_cap;
} prep_field;

typedef struct inter {
    uint32_t item, user;
    int64_t t;
    uint8_t neg;
} inter;

typedef struct prep {
    const nu_prepare_params *p;
    nu_prepare_summary *sum;
    nu_idmap users, items;
    size_t item_cap;
    prep_field fields[NU_MAX_FIELDS];
    size_t n_fields;
    inter *rows;
    size_t n_rows, cap_rows;
} prep;

/* Appends s to l (the caller knows it is not there): 1, or 0 out of memory. */
int prep_strlist_push(strlist *l, const char *s);

/* Why `v` cannot be a value of a prefix field (a vocabulary file holds one
 * value per line and line 0 is "<unk>"), or NULL when it can. */
const char *prep_value_problem(const char *v);

/* Adds (or finds) an item and makes room for its values in every field. */
nu_status prep_item_index(prep *g, const char *id, uint32_t *idx);
/* A new field (after the existing ones); *index is its position. */
nu_status prep_field_add(prep *g, const char *name, int multi, size_t min_items, size_t *index);
/* Gives `item` the value `v` of field f (once: a repeated value is kept once). */
nu_status prep_field_value(prep *g, size_t f, uint32_t item, const char *v);
void prep_free(prep *g);

/* The longest line of an input file (docs/data-format.md); a longer one is
 * a malformed row, refused before memory goes to it. */
#define PREP_LINE_MAX ((size_t)1 << 20)

typedef struct reader {
    FILE *f;
    const char *path;
    size_t line;
    nu_line_reader lr;
    int any_bytes; /* 1: lines need not be UTF-8 (u.item is Latin-1; none of it is kept) */
    const char *bad; /* why the last line cannot be read (a NUL byte, not UTF-8), or NULL */
    int failed;      /* the errno of a read error (or ENOMEM) that ended the file early, or 0 */
} reader;

nu_status prep_reader_open(reader *r, const char *path);
/* The next line without its end of line; NULL at end of file or on a read
 * error (then r->failed).  A line with a NUL byte, bytes that are not UTF-8,
 * or more than PREP_LINE_MAX bytes (of which it holds the first) sets r->bad
 * (a row to refuse). */
char *prep_reader_next(reader *r);
/* s, or when s is NU_OK and reading failed, an error naming the file. */
nu_status prep_reader_check(const reader *r, nu_status s);
void prep_reader_close(reader *r);

/* Splits in place on `sep`; with quotes (CSV) a field may be "quoted" with
 * "" for a quote.  Returns the field count, or -1 for an unterminated quote
 * or more than `most` fields. */
int prep_split_fields(char *s, char sep, int quotes, char **out, int most);
/* Reads the header line of a file that has one: at least `cols` columns. */
nu_status prep_header(reader *r, int cols, char sep);
/* A non-empty id without tabs or line breaks. */
int prep_plain_id(const char *s);

/* A malformed row: an error naming file:line, or counted with skip_bad. */
nu_status prep_bad_row(prep *g, const reader *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reads p->item_features (prepare_features.c). */
nu_status prep_read_item_features(prep *g);
/* Sorts the interactions and writes the data directory (prepare_write.c). */
nu_status prep_write_dir(prep *g, const char *dir);

#endif
