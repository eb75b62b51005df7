/* Fused dot-product scoring + top-K, scalar reference: one query at a time,
 * a plain left-to-right dot product per row, offered to the bounded heap. */
#include "../kernels.h"
#include "../topk.h"

static float dot_scalar(size_t d, const float *q, const float *t)
{
    float s = 0.0f;
    for (size_t k = 0; k < d; k++)
        s += q[k] * t[k];
    return s;
}

static void score_topk_scalar(size_t B, size_t N, size_t d, const float *Q, size_t ldq,
                              const float *T, size_t ldt, uint32_t row_base, size_t K,
                              const nu_id_list *exclude, uint32_t *top_ids,
                              float *top_scores)
{
    if (K == 0)
        return;
    for (size_t b = 0; b < B; b++) {
        float *hs = top_scores + b * K;
        uint32_t *hi = top_ids + b * K;
        const nu_id_list *ex = nu_topk_list(exclude, b);
        nu_topk_init(hs, hi, K);
        for (size_t r = 0; r < N; r++) {
            float s = dot_scalar(d, Q + b * ldq, T + r * ldt);
            nu_topk_consider(hs, hi, K, ex, s, row_base + (uint32_t)r);
        }
        nu_topk_finish(hs, hi, K);
    }
}

void nu_fill_score_scalar(nu_kernel_table *t)
{
    t->score_topk = score_topk_scalar;
}
