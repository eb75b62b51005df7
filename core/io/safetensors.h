/* safetensors files: fp32 tensors + a JSON header, read by memory map with
 * every field checked, written atomically (temporary file, fsync, rename). */
#ifndef NU_SAFETENSORS_H
#define NU_SAFETENSORS_H

#include <stddef.h>

#include "nextuser/nextuser.h"

#define NU_ST_MAX_DIMS 4
/* Limits of the files read (docs/model-format.md), checked before the
 * header is parsed into a tree: the header's bytes, its JSON values
 * (an upper bound of the tree cJSON builds: a tensor entry counts at most
 * 13, so 65536 tensors fit), and the
 * tensors. */
#define NU_ST_MAX_HEADER_BYTES (16 << 20)
#define NU_ST_MAX_HEADER_VALUES (1 << 20)
#define NU_ST_MAX_TENSORS 65536

typedef enum nu_st_dtype { NU_ST_F32, NU_ST_BF16, NU_ST_I8, NU_ST_I32 } nu_st_dtype;

/* Bytes per element of a dtype. */
size_t nu_st_dtype_size(nu_st_dtype t);

typedef struct nu_st_tensor {
    char *name;
    nu_st_dtype dtype;
    int ndim;
    size_t shape[NU_ST_MAX_DIMS];
    size_t nelem;
    const void *raw;   /* inside the mapping; may be unaligned (NULL: header only) */
    size_t offset;     /* of its first byte, from the start of the data section */
    const float *data; /* = raw when dtype is F32 and raw is 4-byte aligned, else NULL */
} nu_st_tensor;

typedef struct nu_st_file {
    void *map;
    size_t map_size;
    nu_st_tensor *tensors;
    size_t count;
    char **meta_keys, **meta_values; /* __metadata__ string map */
    size_t meta_count;
    size_t data_start; /* file offset of the data section: 8 + header length */
    size_t file_size;
    size_t *index, index_size; /* tensors by name (open addressing, SIZE_MAX: empty) */
} nu_st_file;

/* Opens and validates: header length, JSON (strict: util/json_strict.h),
 * the limits above, dtype (F32, BF16, I8, I32), shapes,
 * offsets inside the data section and matching the shape, no overlaps.
 * A bad file is NU_ERR_FORMAT with a message naming the path and field. */
nu_status nu_st_open(const char *path, nu_st_file *out);
/* The same checks on the header alone, read without mapping the file (for
 * a reader that maps only part of each tensor: tensor.raw is NULL, offset
 * and data_start say where the bytes are). */
nu_status nu_st_open_header(const char *path, nu_st_file *out);
void nu_st_close(nu_st_file *f);
const nu_st_tensor *nu_st_find(const nu_st_file *f, const char *name);
const char *nu_st_meta(const nu_st_file *f, const char *key); /* NULL if absent */

typedef struct nu_st_out_tensor {
    const char *name;
    int ndim;
    size_t shape[NU_ST_MAX_DIMS];
    const float *data;   /* F32 data, or NULL when raw is used */
    nu_st_dtype dtype;   /* dtype of raw (ignored when data is set) */
    const void *raw;
} nu_st_out_tensor;

/* Writes tensors (sorted by name) and metadata pairs atomically: the file
 * at `path` is either the old one or the complete new one. */
nu_status nu_st_write(const char *path, const nu_st_out_tensor *tensors, size_t count,
                      const char *const *meta_keys, const char *const *meta_values,
                      size_t meta_count);

/* Writes `size` bytes to `path` atomically (temporary file in the same
 * directory, fsync, rename, fsync of the directory). */
nu_status nu_write_file_atomic(const char *path, const void *data, size_t size);

#endif
