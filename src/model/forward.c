/* Forward pass: embeddings -> encoder blocks -> decoder blocks, every dense
 * step on the whole token-packed batch through the kernel table. */
#include "forward.h"

#include <math.h>
#include <string.h>

#include "dispatch.h"
#include "error.h"
#include "model/packed_weights.h"

typedef struct batch_shape {
    size_t tokens, queries, max_tokens;
} batch_shape;

static batch_shape shape_of(const nu_model_config *c, const nu_items *s, size_t first,
                            size_t count, nu_forward_mode mode)
{
    batch_shape b = {0, 0, 0};
    for (size_t i = first; i < first + count; i++) {
        size_t n = nu_items_n_users(s, i), t = nu_item_tokens(c, n);
        b.tokens += t;
        b.queries += mode == NU_FORWARD_TRAIN ? n + 1 : 1;
        if (t > b.max_tokens)
            b.max_tokens = t;
    }
    return b;
}

static size_t floats_needed(const nu_model_config *c, size_t T, size_t R, size_t Tmax)
{
    size_t d = c->d, F = c->ffn;
    size_t per_token = 3 * d + 3 * d + (F > 2 * d ? F : 2 * d); /* X, H, A | QKV | FFN */
    /* q, Hq, Qd, Aq | FFN | the inference cross-attention's Qk and Xbar */
    size_t per_query = 4 * d + F + 2 * c->heads * d;
    size_t dense = 0;
    for (size_t f = 0; f < c->n_prefix; f++)
        if (c->prefix[f].kind == NU_FIELD_DENSE)
            dense += c->prefix[f].size;
    /* + attention scratch and masks, + 16 floats of alignment slack per buffer */
    return T * per_token + R * per_query + 2 * Tmax + 2 * (Tmax > R ? Tmax : R) + dense + 16 * 16;
}

size_t nu_forward_scratch_bytes(const nu_model_config *c, size_t max_items, nu_forward_mode mode)
{
    size_t Tmax = nu_item_tokens(c, c->max_users);
    size_t R = mode == NU_FORWARD_TRAIN ? max_items * (c->max_users + 1) : max_items;
    return floats_needed(c, max_items * Tmax, R, Tmax) * sizeof(float) + 64 * 16;
}

/* ---- embeddings ---- */

static void add_rows(float *dst, const float *a, const float *b, size_t d)
{
    for (size_t j = 0; j < d; j++)
        dst[j] = a[j] + b[j];
}

static void embed_item(const nu_kernel_table *K, const nu_model_config *c, const nu_model_view *w,
                       const nu_items *s, size_t i, float *X, float *dense_tmp)
{
    size_t d = c->d, k = c->n_prefix, n = nu_items_n_users(s, i);
    const float *dense = s->dense_width ? s->dense + i * s->dense_width : NULL;
    size_t dense_pos = 0;
    for (size_t f = 0; f < k; f++) {
        const nu_field_config *fc = &c->prefix[f];
        float *row = X + f * d;
        const float *pos = w->pos_prefix + f * d;
        if (fc->kind == NU_FIELD_DENSE) {
            /* x . W + b for one row, then the position */
            K->matmul_nn(1, d, fc->size, dense + dense_pos, fc->size, w->prefix_proj[f].w, d,
                         w->prefix_proj[f].b, dense_tmp, d, 0);
            add_rows(row, dense_tmp, pos, d);
            dense_pos += fc->size;
            continue;
        }
        size_t lo = s->feat_off[i * k + f], hi = s->feat_off[i * k + f + 1];
        const float *emb = w->prefix_emb[f];
        if (hi == lo) {
            add_rows(row, emb, pos, d); /* no value: the <unk> row */
        } else if (hi - lo == 1) {
            add_rows(row, emb + (size_t)s->feat_vals[lo] * d, pos, d);
        } else {
            /* multi-valued: mean of the lookups */
            for (size_t j = 0; j < d; j++)
                row[j] = 0.0f;
            for (size_t v = lo; v < hi; v++) {
                const float *e = emb + (size_t)s->feat_vals[v] * d;
                for (size_t j = 0; j < d; j++)
                    row[j] += e[j];
            }
            float cnt = (float)(hi - lo);
            for (size_t j = 0; j < d; j++)
                row[j] = row[j] / cnt + pos[j];
        }
    }
    const uint32_t *users = s->users + s->user_off[i];
    /* The rows are random lines of a large table: ask for all of them before
     * the first is used, so their cache misses overlap. */
    for (size_t u = 0; u < n; u++)
        for (size_t j = 0; j < d; j += 16)
            __builtin_prefetch(w->user_emb + (size_t)users[u] * d + j);
    for (size_t u = 0; u < n; u++)
        add_rows(X + (k + u) * d, w->user_emb + (size_t)users[u] * d, w->pos_user + u * d, d);
    if (c->use_cls)
        add_rows(X + (k + n) * d, w->cls, w->pos_cls, d);
}

/* ---- masks ---- */

/* Encoder rows of one item: prefix sees the prefix, user i sees the prefix
 * and users 1..i, CLS sees all (causal); bidirectional: all see all. */
void nu_encoder_mask(const nu_model_config *c, size_t n, uint32_t *kb, uint32_t *ke)
{
    size_t k = c->n_prefix, T = nu_item_tokens(c, n);
    for (size_t r = 0; r < T; r++) {
        kb[r] = 0;
        if (c->bidirectional || r >= k + n)
            ke[r] = (uint32_t)T;
        else if (r < k)
            ke[r] = (uint32_t)k;
        else
            ke[r] = (uint32_t)(r + 1);
    }
}

/* Decoder query j (1-based) sees the prefix and users before j; query n+1 sees all. */
void nu_decoder_mask(const nu_model_config *c, size_t n, size_t j_first, size_t nq,
                     uint32_t *kb, uint32_t *ke)
{
    size_t k = c->n_prefix, T = nu_item_tokens(c, n);
    for (size_t q = 0; q < nq; q++) {
        size_t j = j_first + q;
        kb[q] = 0;
        ke[q] = (uint32_t)(j == n + 1 ? T : k + j - 1);
    }
}

/* ---- groups of items (training) ---- */

size_t nu_train_group_end(const nu_model_config *c, const nu_items *s, size_t i0, size_t end,
                          size_t tokens, size_t *T, size_t *R)
{
    size_t i = i0, t = 0, r = 0;
    for (; i < end && (t < tokens || r < 3); i++) {
        t += nu_item_tokens(c, nu_items_n_users(s, i));
        r += nu_items_n_users(s, i) + 1;
    }
    size_t rt = 0, rr = 0; /* the rest, counted up to 3 */
    for (size_t j = i; j < end && (rt < 3 || rr < 3); j++) {
        rt += nu_item_tokens(c, nu_items_n_users(s, j));
        rr += nu_items_n_users(s, j) + 1;
    }
    if (rt < 3 || rr < 3)
        for (; i < end; i++) {
            t += nu_item_tokens(c, nu_items_n_users(s, i));
            r += nu_items_n_users(s, i) + 1;
        }
    *T = t;
    *R = r;
    return i;
}

/* ---- blocks ---- */

typedef struct bufs {
    float *X, *H, *A, *QKV, *U;   /* per token */
    float *q, *Hq, *Qd, *Aq, *Uq; /* per query */
    float *Qk, *Xbar;             /* per query, heads x d: inference only */
    float *att_scratch, *dense_tmp;
    uint32_t *kb, *ke;
    nu_train_cache *cache; /* NULL unless training with saved activations */
} bufs;

/* y (=|+=) x W + b for `rows` rows (x: rows x in, y: rows x out), through
 * the layer's packed weight when an inference plan or the training step made
 * one (fp32: matmul_nn's bits). */
static void linear(const nu_kernel_table *K, size_t rows, size_t in, size_t out, const float *x,
                   const nu_linear_view *l, float *y, int accumulate)
{
    if (l->packed && l->packed->format == NU_PACKED_BF16)
        K->matmul_bf16(rows, out, in, x, in, l->packed->data, l->b, y, out, accumulate);
    else if (l->packed && l->packed->format == NU_PACKED_F32)
        K->matmul_f32p(rows, out, in, x, in, l->packed->data, l->b, y, out, accumulate);
    else
        K->matmul_nn(rows, out, in, x, in, l->w, out, l->b, y, out, accumulate);
}

/* Training's FFN in blocks of rows: h and pre are kept for the backward
 * (written in full); u holds one block's GELU output, read back from L2 by
 * the second product and not kept.  Every step is row by row
 * (row-invariant kernels), so the bits are those of one call over all rows. */
#define FFN_TRAIN_BLOCK 256

static void ffn_blocks(const nu_kernel_table *K, const nu_model_config *c, size_t rows, float *x,
                       const nu_ln_view *ln, const nu_linear_view *l1, const nu_linear_view *l2,
                       float *h, float *u, float *mean, float *rstd, float *pre)
{
    size_t d = c->d, F = c->ffn;
    for (size_t r0 = 0, n; r0 < rows; r0 += n) {
        n = rows - r0 < FFN_TRAIN_BLOCK ? rows - r0 : FFN_TRAIN_BLOCK;
        float *xb = x + r0 * d, *hb = h + r0 * d, *pb = pre + r0 * F, *ub = u;
        K->layernorm_fwd(n, d, xb, d, ln->g, ln->b, (float)c->ln_eps, hb, d, mean + r0, rstd + r0);
        linear(K, n, d, F, hb, l1, pb, 0);
        K->gelu_fwd(n * F, pb, ub);
        linear(K, n, F, d, ub, l2, xb, 1);
    }
}

/* x += GELU(LN(x) W1 + b1) W2 + b2.  When `pre` is given (training), the
 * LN statistics and the pre-activation are kept for the backward. */
static void ffn(const nu_kernel_table *K, const nu_model_config *c, size_t rows, float *x,
                const nu_ln_view *ln, const nu_linear_view *l1, const nu_linear_view *l2, float *h,
                float *u, float *mean, float *rstd, float *pre)
{
    size_t d = c->d, F = c->ffn;
    K->layernorm_fwd(rows, d, x, d, ln->g, ln->b, (float)c->ln_eps, h, d, mean, rstd);
    if (!pre && l1->packed && l1->packed->format == NU_PACKED_F32) {
        /* GELU on the tile in registers: the bits of the two steps below */
        K->matmul_f32p_gelu(rows, F, d, h, d, l1->packed->data, l1->b, u, F);
    } else if (!pre && l1->packed && l1->packed->format == NU_PACKED_BF16) {
        K->matmul_bf16_gelu(rows, F, d, h, d, l1->packed->data, l1->b, u, F);
    } else {
        float *z = pre ? pre : u; /* inference: GELU in place */
        linear(K, rows, d, F, h, l1, z, 0);
        K->gelu_fwd(rows * F, z, u);
    }
    linear(K, rows, F, d, u, l2, x, 1); /* x += u W2 + b2 */
}

/* Training: encoder layer l over groups of items (nu_train_group_end), each
 * group's Q/K/V and attention output read back from L2. */
#define TRAIN_GROUP_TOKENS 256

static void encoder_layer_groups(const nu_kernel_table *K, const nu_model_config *c,
                                 const nu_enc_view *e, nu_enc_saved *sv, const nu_items *s,
                                 size_t first, size_t count, bufs *b)
{
    size_t d = c->d, dh = d / c->heads, F = c->ffn, t0 = 0, Tg, Rg;
    float scale = 1.0f / sqrtf((float)dh);
    for (size_t i0 = first, i1; i0 < first + count; i0 = i1, t0 += Tg) {
        i1 = nu_train_group_end(c, s, i0, first + count, TRAIN_GROUP_TOKENS, &Tg, &Rg);
        float *x = b->X + t0 * d, *qkv_g = sv->qkv + t0 * 3 * d, *att = sv->att + t0 * d;
        memcpy(sv->x_in + t0 * d, x, Tg * d * sizeof(float));
        K->layernorm_fwd(Tg, d, x, d, e->ln1.g, e->ln1.b, (float)c->ln_eps, sv->ln1 + t0 * d, d,
                         sv->mean1 + t0, sv->rstd1 + t0);
        linear(K, Tg, d, 3 * d, sv->ln1 + t0 * d, &e->qkv, qkv_g, 0);
        size_t off = 0;
        for (size_t i = i0; i < i1; i++) {
            size_t n = nu_items_n_users(s, i), Ti = nu_item_tokens(c, n);
            nu_encoder_mask(c, n, b->kb, b->ke);
            const float *qkv = qkv_g + off * 3 * d;
            K->attention_fwd(Ti, Ti, c->heads, dh, qkv, 3 * d, qkv + d, 3 * d, qkv + 2 * d, 3 * d,
                             b->kb, b->ke, scale, att + off * d, d, sv->lse + (t0 + off) * c->heads,
                             b->att_scratch);
            off += Ti;
        }
        linear(K, Tg, d, d, att, &e->o, x, 1); /* x += attn Wo + bo */
        memcpy(sv->x_mid + t0 * d, x, Tg * d * sizeof(float));
        ffn_blocks(K, c, Tg, x, &e->ln2, &e->ffn1, &e->ffn2, sv->ln2 + t0 * d,
                   b->cache->ffn_act, sv->mean2 + t0, sv->rstd2 + t0, sv->ffn_pre + t0 * F);
    }
}

static void encoder(const nu_kernel_table *K, const nu_model_config *c, const nu_model_view *w,
                    const nu_items *s, size_t first, size_t count, size_t T, bufs *b)
{
    size_t d = c->d, dh = d / c->heads;
    float scale = 1.0f / sqrtf((float)dh);
    for (size_t l = 0; l < c->enc_layers; l++) {
        const nu_enc_view *e = &w->enc[l];
        nu_enc_saved *sv = b->cache ? &b->cache->enc[l] : NULL;
        if (sv) {
            encoder_layer_groups(K, c, e, sv, s, first, count, b);
            continue;
        }
        if (sv)
            memcpy(sv->x_in, b->X, T * d * sizeof(float));
        float *qkv_all = sv ? sv->qkv : b->QKV, *att = sv ? sv->att : b->A;
        K->layernorm_fwd(T, d, b->X, d, e->ln1.g, e->ln1.b, (float)c->ln_eps, b->H, d,
                         sv ? sv->mean1 : NULL, sv ? sv->rstd1 : NULL);
        linear(K, T, d, 3 * d, b->H, &e->qkv, qkv_all, 0);
        size_t off = 0;
        for (size_t i = first; i < first + count; i++) {
            size_t n = nu_items_n_users(s, i), Ti = nu_item_tokens(c, n);
            nu_encoder_mask(c, n, b->kb, b->ke);
            const float *qkv = qkv_all + off * 3 * d;
            /* the generator's entry: no lse, and bits the training need not share */
            K->attention_fwd16(Ti, Ti, c->heads, dh, qkv, 3 * d, qkv + d, 3 * d, qkv + 2 * d,
                               3 * d, b->kb, b->ke, scale, att + off * d, d, NULL,
                               b->att_scratch);
            off += Ti;
        }
        linear(K, T, d, d, att, &e->o, b->X, 1); /* x += attn Wo + bo */
        if (sv)
            memcpy(sv->x_mid, b->X, T * d * sizeof(float));
        ffn(K, c, T, b->X, &e->ln2, &e->ffn1, &e->ffn2, b->H, b->U, sv ? sv->mean2 : NULL,
            sv ? sv->rstd2 : NULL, sv ? sv->ffn_pre : NULL);
    }
    nu_train_cache *tc = b->cache;
    if (tc) {
        memcpy(tc->enc_x, b->X, T * d * sizeof(float));
        tc->enc_out = b->X; /* the decoder never writes X: it stays the encoder output */
    }
    K->layernorm_fwd(T, d, b->X, d, w->enc_ln.g, w->enc_ln.b, (float)c->ln_eps, b->X, d,
                     tc ? tc->enc_mean : NULL, tc ? tc->enc_rstd : NULL);
}

/* Training: decoder layer l over groups of items, as the encoder's. */
static void decoder_layer_groups(const nu_kernel_table *K, const nu_model_config *c,
                                 const nu_dec_view *e, nu_dec_saved *sv, const nu_items *s,
                                 size_t first, size_t count, bufs *b)
{
    size_t d = c->d, dh = d / c->heads, F = c->ffn, t0 = 0, q0 = 0, Tg, Rg;
    float scale = 1.0f / sqrtf((float)dh);
    for (size_t i0 = first, i1; i0 < first + count; i0 = i1, t0 += Tg, q0 += Rg) {
        i1 = nu_train_group_end(c, s, i0, first + count, TRAIN_GROUP_TOKENS, &Tg, &Rg);
        float *q = b->q + q0 * d, *kv_g = sv->kv + t0 * 2 * d, *Qd = sv->qd + q0 * d;
        float *att = sv->att + q0 * d;
        memcpy(sv->q_in + q0 * d, q, Rg * d * sizeof(float));
        linear(K, Tg, d, 2 * d, b->X + t0 * d, &e->kv, kv_g, 0);
        K->layernorm_fwd(Rg, d, q, d, e->ln1.g, e->ln1.b, (float)c->ln_eps, sv->ln1 + q0 * d, d,
                         sv->mean1 + q0, sv->rstd1 + q0);
        linear(K, Rg, d, d, sv->ln1 + q0 * d, &e->q, Qd, 0);
        size_t toff = 0, qoff = 0;
        for (size_t i = i0; i < i1; i++) {
            size_t n = nu_items_n_users(s, i), Ti = nu_item_tokens(c, n);
            nu_decoder_mask(c, n, 1, n + 1, b->kb, b->ke);
            const float *kv = kv_g + toff * 2 * d;
            K->attention_fwd(n + 1, Ti, c->heads, dh, Qd + qoff * d, d, kv, 2 * d, kv + d, 2 * d,
                             b->kb, b->ke, scale, att + qoff * d, d,
                             sv->lse + (q0 + qoff) * c->heads, b->att_scratch);
            toff += Ti;
            qoff += n + 1;
        }
        linear(K, Rg, d, d, att, &e->o, q, 1);
        memcpy(sv->q_mid + q0 * d, q, Rg * d * sizeof(float));
        ffn_blocks(K, c, Rg, q, &e->ln2, &e->ffn1, &e->ffn2, sv->ln2 + q0 * d,
                   b->cache->ffn_act, sv->mean2 + q0, sv->rstd2 + q0, sv->ffn_pre + q0 * F);
    }
}

/* Inference's one query per item (n + 1, which sees every token): its
 * cross-attention without the K/V projection of the encoder output X.
 * Per head h, with Wk_h, Wv_h the head's columns of the K/V weight:
 *   q_h . (x_j Wk_h + bk_h) = (Wk_h q_h) . x_j + q_h . bk_h,
 * and the second term, the same for every key, cancels in the softmax; as
 * the weights sum to 1, sum_j p_j (x_j Wv_h + bv_h) = (sum_j p_j x_j) Wv_h
 * + bv_h.  So: Qk_h = Wk_h q_h (d floats), attention of the heads' Qk rows
 * over the rows of X as keys and values (dh = d), then one d x dh product
 * per head: ~0.1 MFLOP an item instead of the 2 d^2 T of the projection
 * (~0.9 at T = 55).  The same result up to rounding. */
static void cross_attention_last(const nu_kernel_table *K, const nu_model_config *c,
                                 const nu_dec_view *e, const nu_items *s, size_t first,
                                 size_t count, bufs *b)
{
    const size_t d = c->d, H = c->heads, dh = d / H, R = count;
    const float *W = e->kv.w; /* d x 2d: K columns, then V columns */
    for (size_t h = 0; h < H; h++) /* Qk[r][h] = q_h Wk_h^T */
        K->matmul_nt(R, d, dh, b->Qd + h * dh, d, W + h * dh, 2 * d, NULL, b->Qk + h * d, H * d,
                     0);
    size_t toff = 0;
    for (size_t i = first, r = 0; i < first + count; i++, r++) {
        const size_t Ti = nu_item_tokens(c, nu_items_n_users(s, i));
        const float *X = b->X + toff * d;
        /* H "queries" (one per head) over the item's tokens, no mask */
        K->attention_fwd(H, Ti, 1, d, b->Qk + r * H * d, d, X, d, X, d, NULL, NULL,
                         1.0f / sqrtf((float)dh), b->Xbar + r * H * d, d, NULL, b->att_scratch);
        toff += Ti;
    }
    for (size_t h = 0; h < H; h++) /* Aq[r][h] = Xbar[r][h] Wv_h + bv_h */
        K->matmul_nn(R, dh, d, b->Xbar + h * d, H * d, W + d + h * dh, 2 * d, e->kv.b + d + h * dh,
                     b->Aq + h * dh, d, 0);
}

static void decoder(const nu_kernel_table *K, const nu_model_config *c, const nu_model_view *w,
                    const nu_items *s, size_t first, size_t count, size_t T, size_t R,
                    nu_forward_mode mode, bufs *b)
{
    size_t d = c->d, dh = d / c->heads;
    float scale = 1.0f / sqrtf((float)dh);
    /* Queries start from their learned positions. */
    size_t r = 0;
    for (size_t i = first; i < first + count; i++) {
        size_t n = nu_items_n_users(s, i);
        size_t j0 = mode == NU_FORWARD_TRAIN ? 1 : n + 1;
        for (size_t j = j0; j <= n + 1; j++, r++)
            memcpy(b->q + r * d, w->query_pos + (j - 1) * d, d * sizeof(float));
    }
    float *KV = b->QKV; /* the encoder's QKV buffer is free now: 2d of its 3d columns */
    for (size_t l = 0; l < c->dec_layers; l++) {
        const nu_dec_view *e = &w->dec[l];
        nu_dec_saved *sv = b->cache ? &b->cache->dec[l] : NULL;
        if (sv) { /* every layer's K/V is kept for the backward */
            decoder_layer_groups(K, c, e, sv, s, first, count, b);
            continue;
        }
        float *Qd = sv ? sv->qd : b->Qd, *Aq = sv ? sv->att : b->Aq;
        K->layernorm_fwd(R, d, b->q, d, e->ln1.g, e->ln1.b, (float)c->ln_eps, b->Hq, d,
                         sv ? sv->mean1 : NULL, sv ? sv->rstd1 : NULL);
        linear(K, R, d, d, b->Hq, &e->q, Qd, 0);
        if (mode == NU_FORWARD_INFER)
            cross_attention_last(K, c, e, s, first, count, b);
        else
            linear(K, T, d, 2 * d, b->X, &e->kv, KV, 0);
        size_t toff = 0, qoff = 0;
        for (size_t i = first; mode != NU_FORWARD_INFER && i < first + count; i++) {
            size_t n = nu_items_n_users(s, i), Ti = nu_item_tokens(c, n);
            size_t nq = mode == NU_FORWARD_TRAIN ? n + 1 : 1;
            nu_decoder_mask(c, n, mode == NU_FORWARD_TRAIN ? 1 : n + 1, nq, b->kb, b->ke);
            const float *kv = KV + toff * 2 * d;
            K->attention_fwd(nq, Ti, c->heads, dh, Qd + qoff * d, d, kv, 2 * d, kv + d, 2 * d,
                             b->kb, b->ke, scale, Aq + qoff * d, d,
                             sv ? sv->lse + qoff * c->heads : NULL, b->att_scratch);
            toff += Ti;
            qoff += nq;
        }
        linear(K, R, d, d, Aq, &e->o, b->q, 1);
        if (sv)
            memcpy(sv->q_mid, b->q, R * d * sizeof(float));
        ffn(K, c, R, b->q, &e->ln2, &e->ffn1, &e->ffn2, b->Hq, b->Uq, sv ? sv->mean2 : NULL,
            sv ? sv->rstd2 : NULL, sv ? sv->ffn_pre : NULL);
    }
}

/* Takes n floats from the arena, or (arena NULL) only counts the bytes it
 * would take: one routine both sizes and carves the training cache. */
typedef struct taker {
    nu_arena *arena;
    size_t bytes;
    int failed;
} taker;

static float *take(taker *t, size_t n)
{
    t->bytes += (n * sizeof(float) + 63) & ~(size_t)63;
    if (!t->arena)
        return NULL;
    float *p = nu_arena_floats(t->arena, n);
    if (!p)
        t->failed = 1;
    return p;
}

/* The saved activations of a batch of T tokens and R queries. */
static void take_cache(taker *t, const nu_model_config *c, size_t T, size_t R, nu_train_cache *tc)
{
    size_t d = c->d, F = c->ffn, h = c->heads;
    for (size_t l = 0; l < c->enc_layers; l++) {
        nu_enc_saved *e = &tc->enc[l];
        e->x_in = take(t, T * d);
        e->mean1 = take(t, T);
        e->rstd1 = take(t, T);
        e->ln1 = take(t, T * d);
        e->qkv = take(t, T * 3 * d);
        e->att = take(t, T * d);
        e->lse = take(t, T * h);
        e->x_mid = take(t, T * d);
        e->mean2 = take(t, T);
        e->rstd2 = take(t, T);
        e->ln2 = take(t, T * d);
        e->ffn_pre = take(t, T * F);
    }
    tc->enc_x = take(t, T * d);
    tc->enc_mean = take(t, T);
    tc->enc_rstd = take(t, T);
    for (size_t l = 0; l < c->dec_layers; l++) {
        nu_dec_saved *e = &tc->dec[l];
        e->q_in = take(t, R * d);
        e->mean1 = take(t, R);
        e->rstd1 = take(t, R);
        e->ln1 = take(t, R * d);
        e->qd = take(t, R * d);
        e->kv = take(t, T * 2 * d);
        e->att = take(t, R * d);
        e->lse = take(t, R * h);
        e->q_mid = take(t, R * d);
        e->mean2 = take(t, R);
        e->rstd2 = take(t, R);
        e->ln2 = take(t, R * d);
        e->ffn_pre = take(t, R * F);
    }
    tc->dec_mean = take(t, R);
    tc->dec_rstd = take(t, R);
    tc->ffn_act = take(t, FFN_TRAIN_BLOCK * F);
}

size_t nu_forward_train_bytes(const nu_model_config *c, size_t max_items)
{
    size_t T = max_items * nu_item_tokens(c, c->max_users), R = max_items * (c->max_users + 1);
    nu_train_cache tc;
    taker t = {NULL, 0, 0};
    take_cache(&t, c, T, R, &tc);
    return nu_forward_scratch_bytes(c, max_items, NU_FORWARD_TRAIN) + t.bytes;
}

static nu_status forward_run(const nu_model_config *c, const nu_model_view *w, const nu_items *s,
                             size_t first, size_t count, nu_forward_mode mode, nu_arena *arena,
                             float *out, nu_train_cache *cache)
{
    if (count == 0)
        return NU_OK;
    if (first + count > s->count)
        return nu_error(NU_ERR_INVALID_ARG, "batch [%zu, %zu) outside the %zu items", first,
                        first + count, s->count);
    nu_status st = nu_init();
    if (st != NU_OK)
        return st;
    const nu_kernel_table *K = nu_kernels();
    batch_shape sh = shape_of(c, s, first, count, mode);
    size_t d = c->d, T = sh.tokens, R = sh.queries, F = c->ffn;
    size_t Tm = sh.max_tokens, idx = Tm > R ? Tm : R;
    bufs b;
    /* With a cache, Q/K/V and attention outputs are written into it, so
     * their reusable buffers (A, QKV, Qd, Aq) are not taken. */
    size_t own = cache ? 0 : 1;
    b.X = nu_arena_floats(arena, T * d);
    b.H = nu_arena_floats(arena, T * d);
    b.A = own ? nu_arena_floats(arena, T * d) : NULL;
    b.QKV = own ? nu_arena_floats(arena, T * 3 * d) : NULL;
    b.U = nu_arena_floats(arena, T * (F > 2 * d ? F : 2 * d));
    b.q = nu_arena_floats(arena, R * d);
    b.Hq = nu_arena_floats(arena, R * d);
    b.Qd = own ? nu_arena_floats(arena, R * d) : NULL;
    b.Aq = own ? nu_arena_floats(arena, R * d) : NULL;
    b.Uq = nu_arena_floats(arena, R * F);
    int cross = mode == NU_FORWARD_INFER && !cache; /* cross_attention_last's buffers */
    b.Qk = cross ? nu_arena_floats(arena, R * c->heads * d) : NULL;
    b.Xbar = cross ? nu_arena_floats(arena, R * c->heads * d) : NULL;
    b.att_scratch = nu_arena_floats(arena, 2 * Tm + 16);
    b.dense_tmp = nu_arena_floats(arena, d);
    b.kb = nu_arena_bytes(arena, idx * sizeof(uint32_t));
    b.ke = nu_arena_bytes(arena, idx * sizeof(uint32_t));
    b.cache = cache;
    int short_arena = 0;
    if (cache) {
        taker t = {arena, 0, 0};
        take_cache(&t, c, T, R, cache);
        short_arena = t.failed;
        cache->first = first;
        cache->count = count;
        cache->tokens = T;
        cache->queries = R;
        cache->max_tokens = Tm;
    }
    int missing_own = own && (!b.A || !b.QKV || !b.Qd || !b.Aq);
    missing_own = missing_own || (cross && (!b.Qk || !b.Xbar));
    if (!b.X || !b.H || missing_own || !b.U || !b.q || !b.Hq || !b.Uq || !b.att_scratch ||
        !b.dense_tmp || !b.kb || !b.ke || short_arena)
        return nu_error(NU_ERR_INTERNAL, "forward scratch arena too small for %zu items (%zu tokens)",
                        count, T);
    size_t off = 0;
    for (size_t i = first; i < first + count; i++) {
        embed_item(K, c, w, s, i, b.X + off * d, b.dense_tmp);
        off += nu_item_tokens(c, nu_items_n_users(s, i));
    }
    encoder(K, c, w, s, first, count, T, &b);
    decoder(K, c, w, s, first, count, T, R, mode, &b);
    if (cache)
        cache->dec_x = b.q; /* the final LN writes `out`, so q survives as its input */
    K->layernorm_fwd(R, d, b.q, d, w->dec_ln.g, w->dec_ln.b, (float)c->ln_eps, out, d,
                     cache ? cache->dec_mean : NULL, cache ? cache->dec_rstd : NULL);
    return NU_OK;
}

nu_status nu_forward_batch(const nu_model_config *c, const nu_model_view *w,
                           const nu_items *s, size_t first, size_t count,
                           nu_forward_mode mode, nu_arena *arena, float *out)
{
    return forward_run(c, w, s, first, count, mode, arena, out, NULL);
}

nu_status nu_forward_train(const nu_model_config *c, const nu_model_view *w,
                           const nu_items *s, size_t first, size_t count,
                           nu_arena *arena, float *out, nu_train_cache *cache)
{
    memset(cache, 0, sizeof *cache);
    return forward_run(c, w, s, first, count, NU_FORWARD_TRAIN, arena, out, cache);
}
