/* Masked multi-head attention, scalar reference: plain loops, one (query,
 * head) row at a time.  Scores are kept in the caller's scratch so the
 * softmax is computed in two passes (max, then exp) exactly as documented. */
#include <math.h>

#include "../kernels.h"

/* Visible key range of query i, clamped to [0, Tk] so a bad end cannot read
 * past K; begin >= end means the row sees nothing. */
static void key_range(size_t i, size_t Tk, const uint32_t *kb, const uint32_t *ke,
                      size_t *b, size_t *e)
{
    size_t lo = kb ? kb[i] : 0, hi = ke ? ke[i] : Tk;
    if (hi > Tk)
        hi = Tk;
    if (lo > hi)
        lo = hi;
    *b = lo;
    *e = hi;
}

static float dot(size_t n, const float *a, const float *b)
{
    float s = 0.0f;
    for (size_t d = 0; d < n; d++)
        s += a[d] * b[d];
    return s;
}

/* s[j - b] = scale * q . K_j for the visible keys. */
static void scores(size_t b, size_t e, size_t dh, const float *q, const float *K,
                   size_t ldk, float scale, float *s)
{
    for (size_t j = b; j < e; j++)
        s[j - b] = scale * dot(dh, q, K + j * ldk);
}

static void attention_fwd_scalar(size_t Tq, size_t Tk, size_t heads, size_t dh,
                                 const float *Q, size_t ldq, const float *K, size_t ldk,
                                 const float *V, size_t ldv, const uint32_t *key_begin,
                                 const uint32_t *key_end, float scale, float *O,
                                 size_t ldo, float *lse, float *scratch)
{
    for (size_t i = 0; i < Tq; i++) {
        size_t b, e;
        key_range(i, Tk, key_begin, key_end, &b, &e);
        for (size_t h = 0; h < heads; h++) {
            float *o = O + i * ldo + h * dh;
            for (size_t d = 0; d < dh; d++)
                o[d] = 0.0f;
            if (b == e) {
                if (lse)
                    lse[i * heads + h] = -INFINITY;
                continue;
            }
            float *s = scratch;
            scores(b, e, dh, Q + i * ldq + h * dh, K + h * dh, ldk, scale, s);
            float m = s[0];
            for (size_t j = 1; j < e - b; j++)
                m = s[j] > m ? s[j] : m;
            float sum = 0.0f;
            for (size_t j = 0; j < e - b; j++) {
                s[j] = expf(s[j] - m);
                sum += s[j];
            }
            for (size_t j = b; j < e; j++) {
                const float *v = V + j * ldv + h * dh;
                for (size_t d = 0; d < dh; d++)
                    o[d] += s[j - b] * v[d];
            }
            /* sum >= 1 (the max term is exp(0)), so the division is safe. */
            float inv = 1.0f / sum;
            for (size_t d = 0; d < dh; d++)
                o[d] *= inv;
            if (lse)
                lse[i * heads + h] = m + logf(sum);
        }
    }
}

static void attention_bwd_scalar(size_t Tq, size_t Tk, size_t heads, size_t dh,
                                 const float *Q, size_t ldq, const float *K, size_t ldk,
                                 const float *V, size_t ldv, const uint32_t *key_begin,
                                 const uint32_t *key_end, float scale, const float *O,
                                 size_t ldo, const float *lse, const float *dO,
                                 size_t lddo, float *dQ, size_t lddq, float *dK,
                                 size_t lddk, float *dV, size_t lddv, float *scratch)
{
    for (size_t i = 0; i < Tq; i++) {
        size_t b, e;
        key_range(i, Tk, key_begin, key_end, &b, &e);
        if (b == e)
            continue; /* the output row was a constant zero: no gradient */
        for (size_t h = 0; h < heads; h++) {
            const size_t c = h * dh;
            const float *q = Q + i * ldq + c, *go = dO + i * lddo + c;
            float *gq = dQ + i * lddq + c;
            const float Di = dot(dh, go, O + i * ldo + c);
            const float L = lse[i * heads + h];
            float *p = scratch, *ds = scratch + Tk;
            scores(b, e, dh, q, K + c, ldk, scale, p);
            for (size_t j = b; j < e; j++) {
                p[j - b] = expf(p[j - b] - L);
                float dp = dot(dh, go, V + j * ldv + c);
                ds[j - b] = p[j - b] * (dp - Di);
            }
            for (size_t j = b; j < e; j++) {
                const float *k = K + j * ldk + c;
                float *gk = dK + j * lddk + c, *gv = dV + j * lddv + c;
                const float g = scale * ds[j - b], pj = p[j - b];
                for (size_t d = 0; d < dh; d++) {
                    gq[d] += g * k[d];
                    gk[d] += g * q[d];
                    gv[d] += pj * go[d];
                }
            }
        }
    }
}

void nu_fill_attention_scalar(nu_kernel_table *t)
{
    t->attention_fwd = attention_fwd_scalar;
    t->attention_fwd16 = attention_fwd_scalar; /* no dh = 16 path of its own */
    t->attention_bwd = attention_bwd_scalar;
}
