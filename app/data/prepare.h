/* Real interaction logs -> a training data directory (docs/data-format.md).
 *
 * Inputs: MovieLens "latest" CSV files (ratings.csv, movies.csv, tags.csv),
 * the older MovieLens 100K layout (u.data tab-separated, u.item "|"), or a
 * generic CSV (header; user,item,timestamp,signal where signal is
 * "positive", "exposed" or a numeric rating).  A rating >= pos_threshold is
 * a positive, <= neg_threshold an exposed negative, anything between is
 * ignored (and counted).
 *
 * Output ids: MovieLens formats write users "u<userId>" and items
 * "m<movieId>"; csv keeps the ids as given.  users.txt lists every user with
 * at least one positive or negative in first-seen order (file order of the
 * ratings); items keep the items file's order (else first-seen order in the
 * ratings).  Prefix fields: genres (multi), year (categorical decade bucket
 * "1990s", "<unk>" when unknown) and, when a tags file is given, tags
 * (multi, lower-cased, only tags used by >= 2 items).  With a generic
 * item-features file instead (csv only: "item,features" rows of
 * field=value|field=value, prepare_features.c), each field of that file is a
 * prefix field in first-seen order: multi when some item has two values of
 * it, else categorical.  Vocabularies are sorted (byte order) after line 0
 * "<unk>".  Items are split by a seeded permutation: round(0.7 I) train,
 * round(0.1 I) val, the rest test. */
#ifndef NU_PREPARE_H
#define NU_PREPARE_H

#include <stddef.h>
#include <stdint.h>

#include "model/config.h"
#include "nextuser/nextuser.h"

typedef enum nu_prep_format {
    NU_PREP_MOVIELENS = 0, /* ratings.csv, movies.csv, tags.csv (with headers) */
    NU_PREP_ML100K = 1,    /* u.data (tab), u.item ("|", 19 genre flags) */
    NU_PREP_CSV = 2        /* user,item,timestamp,signal; items like movies.csv */
} nu_prep_format;

typedef struct nu_prepare_params {
    const char *ratings;       /* required */
    const char *items, *tags;  /* optional (NULL) */
    const char *item_features; /* optional; csv only, excludes items and tags */
    nu_prep_format format;
    double pos_threshold;      /* [4.0] */
    double neg_threshold;      /* [2.0] */
    uint64_t seed;             /* split seed [1] */
    int skip_bad;              /* count malformed rows instead of failing */
} nu_prepare_params;

typedef struct nu_prepare_summary {
    size_t users, items, positives, negatives;
    size_t split_items[3];   /* train, val, test */
    size_t ignored_ratings;  /* between the thresholds */
    size_t skipped_rows;     /* malformed rows (only with skip_bad) */
    size_t unused_tag_rows;  /* tag rows of items absent from the data */
    size_t unused_feature_rows; /* item-features rows of items absent from the data */
    size_t n_fields;         /* the prefix fields written, in data.json order */
    struct {
        char name[NU_FIELD_NAME_MAX];
        int multi;           /* 0: categorical */
        size_t vocab;        /* rows including <unk> */
    } fields[NU_MAX_FIELDS];
    char first_bad[256];     /* the first skipped row's message, "" if none */
} nu_prepare_summary;

void nu_prepare_defaults(nu_prepare_params *p);
/* Parses a format name (movielens, ml100k, csv); returns 0 if unknown. */
int nu_prepare_format_parse(const char *name, nu_prep_format *out);
/* Reads the inputs and writes DIR atomically.  A malformed row is an error
 * naming file:line unless skip_bad.  `sum` may be NULL. */
nu_status nu_prepare(const nu_prepare_params *p, const char *dir, nu_prepare_summary *sum);
/* The same reading and checking of every row without writing a directory
 * (the fuzz target, tests/fuzz): the summary is what nu_prepare would
 * report, short of the split and vocabulary sizes it computes on writing. */
nu_status nu_prepare_read(const nu_prepare_params *p, nu_prepare_summary *sum);

#endif
