/* The public API's user table: a handle over nu_user_table. */
#include <stdlib.h>

#include "api/handles.h"
#include "error.h"

nu_status nu_table_open(const nu_model *m, const char *model_dir, nu_dtype dtype, nu_table **out)
{
    if (!m || !model_dir || !out)
        return nu_error(NU_ERR_INVALID_ARG, "nu_table_open: model, directory and out are required");
    if (dtype != NU_DTYPE_FP32 && dtype != NU_DTYPE_BF16 && dtype != NU_DTYPE_INT8)
        return nu_error(NU_ERR_INVALID_ARG, "nu_table_open: unknown dtype %d", (int)dtype);
    nu_table *t = calloc(1, sizeof *t);
    if (!t)
        return nu_error(NU_ERR_NOMEM, "out of memory for a table handle");
    int from_file = 0;
    nu_status s = nu_user_table_for_model(m, model_dir, (nu_table_dtype)dtype, &t->table, &from_file);
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
