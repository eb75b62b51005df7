#include "select/validation_open.h"

#include <stdlib.h>

#include "error.h"
#include "select/validation.h"

nu_status nu_validation_open(const char *data_dir, int threads, int no_prior, nu_validation **out)
{
    nu_validation *v = calloc(1, sizeof *v);
    if (!v)
        return nu_error(NU_ERR_NOMEM, "out of memory for the validation");
    v->threads = threads;
    v->no_prior = no_prior;
    nu_status s = nu_dataset_load(data_dir, &v->ds);
    if (s != NU_OK) {
        free(v);
        return s;
    }
    *out = v;
    return NU_OK;
}

void nu_validation_close(nu_validation *v)
{
    if (!v)
        return;
    nu_dataset_free(&v->ds);
    free(v);
}

nu_status nu_validation_score(nu_model *m, double *score, void *ctx)
{
    return nu_validate(m, score, ctx);
}
