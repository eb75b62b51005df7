/* The public API's user table: a handle over nu_user_table. */
#include <stdlib.h>
#include <string.h>

#include "api/handles.h"
#include "error.h"
#include "retrieval/search.h"
#include "util/path.h"

const char *nu_dtype_name(nu_dtype t)
{
    return nu_table_dtype_name((nu_table_dtype)t);
}

nu_status nu_dtype_parse(const char *name, nu_dtype *out)
{
    nu_table_dtype t;
    if (!name || !out)
        return nu_error(NU_ERR_INVALID_ARG, "nu_dtype_parse: name and out are required");
    if (!nu_table_dtype_parse(name, &t))
        return nu_error(NU_ERR_INVALID_ARG, "\"%s\" is not fp32, bf16 or int8", name);
    *out = (nu_dtype)t;
    return NU_OK;
}

nu_status nu_table_open(const nu_model *m, const char *model_dir, nu_dtype dtype, nu_table **out)
{
    if (!m || !model_dir || !out)
        return nu_error(NU_ERR_INVALID_ARG, "nu_table_open: model, directory and out are required");
    if (dtype != NU_DTYPE_FP32 && dtype != NU_DTYPE_BF16 && dtype != NU_DTYPE_INT8)
        return nu_error(NU_ERR_INVALID_ARG, "nu_table_open: unknown dtype %d", (int)dtype);
    nu_table *t = calloc(1, sizeof *t);
    if (!t)
        return nu_error(NU_ERR_NOMEM, "out of memory for a table handle");
    nu_status s = nu_user_table_for_model(m, model_dir, (nu_table_dtype)dtype, &t->table,
                                          &t->from_file);
    if (s != NU_OK) {
        free(t);
        return s;
    }
    t->model = m;
    *out = t;
    return NU_OK;
}

nu_status nu_table_make_resident(nu_table *t)
{
    if (!t)
        return nu_error(NU_ERR_INVALID_ARG, "nu_table_make_resident: a table is required");
    return nu_user_table_make_resident(&t->table);
}

void nu_table_free(nu_table *t)
{
    if (!t)
        return;
    nu_user_table_free(&t->table);
    free(t);
}

nu_status nu_table_build(const nu_model *m, unsigned dtypes, nu_table **out)
{
    if (!m || !out)
        return nu_error(NU_ERR_INVALID_ARG, "nu_table_build: model and out are required");
    unsigned known = NU_DTYPE_BIT(NU_DTYPE_FP32) | NU_DTYPE_BIT(NU_DTYPE_BF16) |
                     NU_DTYPE_BIT(NU_DTYPE_INT8);
    if (dtypes & ~known)
        return nu_error(NU_ERR_INVALID_ARG, "nu_table_build: unknown encoding bits 0x%x",
                        dtypes & ~known);
    nu_table *t = calloc(1, sizeof *t);
    if (!t)
        return nu_error(NU_ERR_NOMEM, "out of memory for a table handle");
    nu_status s = nu_user_table_build(m, (dtypes & NU_DTYPE_BIT(NU_DTYPE_BF16)) != 0,
                                      (dtypes & NU_DTYPE_BIT(NU_DTYPE_INT8)) != 0, &t->table);
    if (s != NU_OK) {
        free(t);
        return s;
    }
    t->model = m;
    *out = t;
    return NU_OK;
}

nu_status nu_table_save(const nu_table *t, const char *model_dir)
{
    if (!t || !model_dir)
        return nu_error(NU_ERR_INVALID_ARG, "nu_table_save: table and directory are required");
    char path[NU_PATH_MAX];
    nu_status s = nu_path_join(path, sizeof path, model_dir, "user_table.safetensors");
    return s == NU_OK ? nu_user_table_save(&t->table, path, model_dir) : s;
}

size_t nu_table_rows(const nu_table *t)
{
    return t ? t->table.rows : 0;
}

size_t nu_table_width(const nu_table *t)
{
    return t ? t->table.d : 0;
}

int nu_table_has(const nu_table *t, nu_dtype dtype)
{
    return t && (unsigned)dtype <= NU_DTYPE_INT8 &&
           nu_user_table_has(&t->table, (nu_table_dtype)dtype);
}

nu_table_origin nu_table_source(const nu_table *t)
{
    if (!t || !t->from_file)
        return NU_TABLE_BUILT;
    return t->table.mapped ? NU_TABLE_MAPPED : NU_TABLE_COPIED;
}

size_t nu_table_place(const nu_table *t, int threads)
{
    return t ? nu_search_place_table(&t->table, threads) : 0;
}
