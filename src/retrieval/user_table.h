/* The user table for scoring: the model's user embeddings L2-normalised,
 * in fp32 (always: the exact re-rank needs it) and optionally bf16 and int8
 * with a per-row scale.  Built in memory from a model, or memory-mapped from
 * a table file written by `nextuser table` (large tables are not copied). */
#ifndef NU_USER_TABLE_H
#define NU_USER_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"
#include "model/model.h"

typedef enum nu_table_dtype { NU_TABLE_F32 = 0, NU_TABLE_BF16 = 1, NU_TABLE_I8 = 2 } nu_table_dtype;

const char *nu_table_dtype_name(nu_table_dtype t); /* "fp32", "bf16", "int8" */
/* Parses "fp32", "bf16", "int8"; returns 0 on an unknown name. */
int nu_table_dtype_parse(const char *s, nu_table_dtype *out);

typedef struct nu_user_table {
    size_t rows, d;
    /* The queries' width: d, or d - 1 when the table carries the model's
     * popularity prior as a last column (tau * prior_weight * user_prior[u],
     * matched by a 1 that the search appends to each unit query), so the scan
     * ranks by cosine + that prior with the same kernels. */
    size_t query_d;
    /* The leading query columns that are normalised (the model's d); the
     * query_d - unit_d after them are the item's feature-prior indicators
     * (model/feature_prior.h), matched by that many columns after the
     * prior column, which hold tau * feature_prior_weight * the user's
     * feature prior. */
    size_t unit_d;
    double prior_weight;   /* the model's, when the column is there; else 0 */
    double feature_prior_weight; /* the model's, when its columns are there; else 0 */
    const float *f32;      /* rows x d, unit rows (or zero rows), then the prior column */
    const uint16_t *bf16;  /* rows x d or NULL */
    const int8_t *i8;      /* rows x d or NULL */
    const float *i8_scale; /* rows */
    const int32_t *i8_sum; /* rows */
    /* A row range of a table file (nu_user_table_open_rows): the rows above
     * are rows [first_row, first_row + rows) of total_rows, and searches
     * report global row ids.  total_rows is 0 for a whole table. */
    size_t first_row, total_rows;
    /* storage */
    nu_st_file file;       /* when memory-mapped (only the header for a row range) */
    int mapped;
    void *owned;           /* one block when built in memory */
    void *range_map[5];    /* a row range's mappings: f32, bf16, i8, scales, sums */
    size_t range_len[5];
} nu_user_table;

/* Rows of the whole table a (possibly row-range) table belongs to. */
static inline size_t nu_user_table_total_rows(const nu_user_table *t)
{
    return t->total_rows ? t->total_rows : t->rows;
}

/* Builds from the model's user_emb: normalises rows, appends the prior
 * column when the model weighs one (cfg.prior_weight > 0), and also encodes
 * bf16 and int8 when asked (has_bf16 / has_i8). */
nu_status nu_user_table_build(const nu_model *m, int with_bf16, int with_i8, nu_user_table *out);
/* Writes f32 and whatever encodings the table holds to `path`, atomically,
 * with the model file's size and mtime so stale tables are detected. */
nu_status nu_user_table_save(const nu_user_table *t, const char *path, const char *model_dir);
/* Memory-maps a table file; checks its shapes, that it was made from the
 * model now in model_dir (else NU_ERR_FORMAT "stale"), and that every fp32
 * value is finite. */
nu_status nu_user_table_open(const char *path, const char *model_dir, nu_user_table *out);
/* Rows [first, first + count) of a table file, count >= 1: reads the header,
 * then maps only those rows of each tensor (user_table_rows.c); the same
 * checks as nu_user_table_open on those rows.  For a process that holds one
 * shard of a table too large for one machine. */
nu_status nu_user_table_open_rows(const char *path, const char *model_dir, size_t first,
                                  size_t count, nu_user_table *out);
/* The header checks both openers share: format, model stamp (when
 * model_dir is given), shapes and the prior keys; sets rows (the file's),
 * d, query_d, unit_d and the weights. */
nu_status nu_user_table_read_header(const nu_st_file *file, const char *path,
                                    const char *model_dir, nu_user_table *out);
/* Tensor `name` of a table file when present, checked for dtype and shape
 * (cols 0: a vector); NULL when absent or when *s is already an error. */
const nu_st_tensor *nu_user_table_tensor(const nu_st_file *f, const char *path, const char *name,
                                         nu_st_dtype dt, size_t rows, size_t cols, nu_status *s);
/* The table for a model directory: DIR/user_table.safetensors when it
 * exists, is current and holds `dtype`; else built in memory. */
nu_status nu_user_table_for_model(const nu_model *m, const char *model_dir, nu_table_dtype dtype,
                                  nu_user_table *out, int *from_file);
/* Copies a memory-mapped table into anonymous memory (2 MiB pages where
 * granted) and drops the mapping: faster scans for a process that serves
 * for long, at the cost of a private copy.  A no-op for built tables. */
nu_status nu_user_table_make_resident(nu_user_table *t);
int nu_user_table_has(const nu_user_table *t, nu_table_dtype dtype);
void nu_user_table_free(nu_user_table *t);

/* Encodings, exposed for tests. */
uint16_t nu_bf16_from_float(float x); /* round to nearest even */
/* Quantises x (d floats) to q in [-127, 127] with x ~= scale * q; returns sum q. */
int32_t nu_quantize_i8(const float *x, size_t d, int8_t *q, float *scale);

#endif
