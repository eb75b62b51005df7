/* The public API's row-range tables: one shard of a table file per handle. */
#include <stdio.h>
#include <stdlib.h>

#include "api/handles.h"
#include "error.h"
#include "util/path.h"

nu_status nu_table_open_rows(const nu_model *m, const char *model_dir, nu_dtype dtype,
                             size_t first, size_t count, nu_table **out)
{
    if (!m || !model_dir || !out)
        return nu_error(NU_ERR_INVALID_ARG,
                        "nu_table_open_rows: model, directory and out are required");
    if (dtype != NU_DTYPE_FP32 && dtype != NU_DTYPE_BF16 && dtype != NU_DTYPE_INT8)
        return nu_error(NU_ERR_INVALID_ARG, "nu_table_open_rows: unknown dtype %d", (int)dtype);
    char path[NU_PATH_MAX];
    nu_status s = nu_path_join(path, sizeof path, model_dir, "user_table.safetensors");
    if (s != NU_OK)
        return s;
    nu_table *t = calloc(1, sizeof *t);
    if (!t)
        return nu_error(NU_ERR_NOMEM, "out of memory for a table handle");
    s = nu_user_table_open_rows(path, model_dir, first, count, &t->table);
    const nu_user_table *u = &t->table;
    if (s == NU_OK && (u->total_rows != m->cfg.num_users || u->unit_d != m->cfg.d))
        s = nu_error(NU_ERR_INVALID_ARG, "%s: %zu rows of width %zu, the model has %zu users of "
                     "width %zu (run 'nextuser table --model %s')",
                     path, u->total_rows, u->unit_d, m->cfg.num_users, m->cfg.d, model_dir);
    if (s == NU_OK && !nu_user_table_has(u, (nu_table_dtype)dtype))
        s = nu_error(NU_ERR_INVALID_ARG, "%s: holds no %s encoding (run 'nextuser table --model "
                     "%s --dtypes ...')", path, nu_table_dtype_name((nu_table_dtype)dtype),
                     model_dir);
    if (s != NU_OK) {
        nu_user_table_free(&t->table);
        free(t);
        return s;
    }
    t->model = m;
    *out = t;
    return NU_OK;
}

void nu_table_row_range(const nu_table *t, size_t *first, size_t *count)
{
    if (first)
        *first = t ? t->table.first_row : 0;
    if (count)
        *count = t ? t->table.rows : 0;
}
