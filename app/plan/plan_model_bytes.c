/* nu_plan_model_bytes: what the model of a bench shape takes in memory. */
#include <string.h>

#include "bench/shapes.h"
#include "model/config.h"
#include "model/forward.h"
#include "model/packed_weights.h"
#include "model/params.h"
#include "plan/plan.h"
#include "plan/plan_bytes.h"

size_t nu_plan_shape_dim(const char *shape)
{
    if (strcmp(shape, "base") == 0)
        return 64;
    if (strcmp(shape, "large") == 0)
        return 128;
    return 0;
}

double nu_plan_dim(const nu_plan_request *q)
{
    return q->model_d > 0 ? q->model_d : (double)nu_plan_shape_dim(q->shape);
}

double nu_plan_row_width(const nu_plan_request *q)
{
    return q->model_table_width > 0 ? q->model_table_width : nu_plan_dim(q);
}

double nu_plan_query_width(const nu_plan_request *q)
{
    return q->model_query_dim > 0 ? q->model_query_dim : nu_plan_dim(q);
}

double nu_plan_packed_bytes(const nu_plan_request *q)
{
    if (q->model_d > 0)
        return q->model_packed_bytes;
    nu_model_config c;
    if (nu_bench_shape_config(q->shape, 1, &c) != NU_OK)
        return 0;
    return (double)nu_packed_weights_bytes(&c, strcmp(q->gen_dtype, "bf16") == 0 ? NU_GEN_BF16
                                                                               : NU_GEN_FP32);
}

nu_status nu_plan_model_bytes(const nu_plan_request *q, size_t batch, double *weights,
                              double *user_emb, double *scratch_per_thread)
{
    const char *shape = q->shape, *dtype = q->dtype;
    double users = q->users;
    size_t k = q->k;
    size_t pool = nu_plan_pool(dtype, k, 0);
    if (q->model_d > 0) {
        /* The user's model: its weights and the generator's scratch at the
         * server batch, as bench counted them (the batch measured here). */
        *weights = q->model_weights_bytes + nu_plan_packed_bytes(q);
        *user_emb = 4.0 * users * q->model_d;
        *scratch_per_thread = q->model_scratch_bytes + 4.0 * (double)batch * q->model_query_dim +
                              8.0 * (double)(batch * pool);
        return NU_OK;
    }
    /* The model bench measured (app/bench/shapes.h), with one placeholder
     * user: the user embeddings are counted apart. */
    nu_model_config c;
    nu_status s = nu_bench_shape_config(shape, 1, &c);
    if (s != NU_OK)
        return s;
    nu_param_layout l;
    s = nu_param_layout_build(&c, &l);
    if (s != NU_OK)
        return s;
    const nu_param_spec *ue = nu_param_find(&l, "user_emb");
    /* Everything but the one placeholder user row: the per-node copy. */
    *weights = 4.0 * (double)(l.total - (ue ? ue->count : 0)) + nu_plan_packed_bytes(q);
    nu_param_layout_free(&l);
    *user_emb = 4.0 * users * (double)c.d;
    /* Generator scratch for one batch, the query copies, and the private
     * top lists of the scan (ids + scores; bf16/int8 keep a re-rank pool of
     * max(4K, 256) candidates). */
    *scratch_per_thread = (double)nu_forward_scratch_bytes(&c, batch, NU_FORWARD_INFER) +
                          4.0 * (double)(batch * c.d) + 8.0 * (double)(batch * pool);
    return NU_OK;
}
