/* nu_plan_user_model: a results file of `nextuser bench --model` describes
 * its model in its context, so the plan needs no model directory. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "plan/plan.h"

static int number(const nu_plan_results *r, const char *key, double *out)
{
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(r->root, "context");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ctx, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0))
        return 0;
    *out = v->valuedouble;
    return 1;
}

nu_status nu_plan_user_model(const nu_plan_results *r, nu_plan_request *q)
{
    static const char *const keys[] = {"model_d", "model_table_width", "model_query_dim",
                                       "model_weights_bytes", "model_scratch_bytes"};
    double *dst[] = {&q->model_d, &q->model_table_width, &q->model_query_dim,
                     &q->model_weights_bytes, &q->model_scratch_bytes};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!number(r, keys[i], dst[i]))
            return nu_error(NU_ERR_INVALID_ARG,
                            "shape model: the context lacks a positive \"%s\" (written by: "
                            "nextuser bench --model DIR --json FILE)", keys[i]);
    /* Written since the generator packs its weights: older files count none. */
    char key[64];
    snprintf(key, sizeof key, "model_packed_weights_bytes_%s", q->gen_dtype);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(r->root, "context"), key);
    q->model_packed_bytes = cJSON_IsNumber(v) && v->valuedouble > 0 ? v->valuedouble : 0;
    return NU_OK;
}
