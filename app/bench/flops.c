#include "bench/flops.h"

#include <stdint.h>

#include "model/forward.h"

/* Keys admitted over all rows of a mask. */
static double mask_keys(const uint32_t *kb, const uint32_t *ke, size_t rows)
{
    double s = 0;
    for (size_t r = 0; r < rows; r++)
        s += (double)(ke[r] - kb[r]);
    return s;
}

/* Dense prefix projections + encoder + decoder, with queries j0..n+1. */
static double forward_flops(const nu_model_config *c, size_t n, size_t j0)
{
    uint32_t kb[4096], ke[4096];
    double d = (double)c->d, F = (double)c->ffn;
    size_t T = nu_item_tokens(c, n), R = n + 2 - j0;
    if (T > 4096 || R > 4096)
        return 0;
    double f = 0;
    for (size_t i = 0; i < c->n_prefix; i++)
        if (c->prefix[i].kind == NU_FIELD_DENSE)
            f += 2.0 * (double)c->prefix[i].size * d;
    nu_encoder_mask(c, n, kb, ke);
    double enc_keys = mask_keys(kb, ke, T);
    /* per layer: QKV (3 d^2), output (d^2), FFN (2 d F) products; QK^T and AV */
    f += (double)c->enc_layers * ((double)T * 2.0 * (4.0 * d * d + 2.0 * d * F) + 4.0 * d * enc_keys);
    nu_decoder_mask(c, n, j0, R, kb, ke);
    double dec_keys = mask_keys(kb, ke, R);
    /* per layer: K/V of the encoder output (2 d^2 per token), query and
     * output projections (2 d^2) and FFN per query, cross-attention */
    f += (double)c->dec_layers * ((double)T * 2.0 * 2.0 * d * d +
                                  (double)R * 2.0 * (2.0 * d * d + 2.0 * d * F) + 4.0 * d * dec_keys);
    return f;
}

double nu_bench_infer_flops(const nu_model_config *c, size_t n)
{
    return forward_flops(c, n, n + 1);
}

double nu_bench_train_forward_flops(const nu_model_config *c, size_t n)
{
    return forward_flops(c, n, 1);
}

double nu_bench_train_flops(const nu_model_config *c, size_t n, size_t negatives, size_t exposed)
{
    double scores = (double)(n + 1) * (double)(1 + negatives + exposed);
    return 3.0 * nu_bench_train_forward_flops(c, n) + 3.0 * 2.0 * (double)c->d * scores;
}
