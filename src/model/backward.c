/* Backward pass: reverse of forward.c, block by block, every dense step on
 * the whole token-packed batch through the kernel table.  Activations,
 * LN and GELU outputs included, come from the training cache. */
#include "backward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "error.h"
#include "model/packed_weights.h"

/* Everything the block functions share: shapes, kernels, scratch. */
typedef struct bwd {
    const nu_kernel_table *K;
    const nu_model_config *c;
    const nu_items *s;
    const nu_train_cache *tc;
    size_t d, F, T, R;
    float scale, eps;
    float *dh, *da, *du;         /* max(T, R) rows of d (dh, da) or ffn (du) */
    float *act;                  /* one FFN block's GELU output, recomputed */
    float *dqkv;                 /* T x 3d (encoder) or R x d (decoder dQ) */
    float *dkv;                  /* T x 2d: decoder dK | dV */
    float *att_scratch;
    uint32_t *kb, *ke;
} bwd;

typedef struct shape {
    size_t T, R, rows, att, idx, users;
} shape;

/* Sizes for T tokens and R queries (rows = the larger, for shared buffers). */
static shape shape_for(const nu_model_config *c, size_t T, size_t R, size_t Tmax, size_t users)
{
    shape s = {T, R, T > R ? T : R, 2 * Tmax + 16, 0, users};
    s.idx = Tmax > c->max_users + 1 ? Tmax : c->max_users + 1;
    return s;
}

/* The FFN backward runs in blocks of rows so that each block's F-wide
 * gradient (written, then read four times) stays in L2 instead of making
 * round trips to memory.  The bits do not change: the weight and bias
 * gradients continue their sums over the rows in the same order, and the
 * other steps are row by row (matmul_nt's rows are independent of the
 * others for M >= 3, so no block is left with fewer than 3 rows). */
#define FFN_BLOCK 256

/* Rows of the FFN's block buffer. */
static size_t ffn_rows(const shape *s)
{
    return s->rows < FFN_BLOCK + 2 ? s->rows : FFN_BLOCK + 2;
}

static size_t rup(size_t bytes)
{
    return (bytes + 63) & ~(size_t)63;
}

static size_t scratch_bytes(const nu_model_config *c, const shape *s)
{
    size_t d = c->d, F = c->ffn, f4 = sizeof(float);
    size_t dq = s->T * 3 * d > s->R * d ? s->T * 3 * d : s->R * d;
    size_t b = rup(s->R * d * f4) + 2 * rup(s->T * d * f4) /* dq, dE, dX */
               + 2 * rup(s->rows * d * f4) + 2 * rup(ffn_rows(s) * F * f4) + rup(dq * f4) +
               rup(s->T * 2 * d * f4) + rup(s->att * f4) + 2 * rup(s->idx * sizeof(uint32_t)) +
               rup(s->users * sizeof(uint32_t));
    for (size_t f = 0; f < c->n_prefix; f++)
        if (c->prefix[f].kind != NU_FIELD_DENSE)
            b += rup(c->prefix[f].size * sizeof(uint32_t)) + rup(c->prefix[f].size);
    return b;
}

size_t nu_backward_scratch_bytes(const nu_model_config *c, size_t max_items)
{
    size_t Tmax = nu_item_tokens(c, c->max_users);
    shape s = shape_for(c, max_items * Tmax, max_items * (c->max_users + 1), Tmax,
                        max_items * c->max_users);
    return scratch_bytes(c, &s);
}

/* ---- blocks ---- */

/* dx (=|+=) dy w^T for a layer y = x w + b (w: in x out): through w^T
 * packed once per step when the step made it (matmul_nt's bits from 3
 * rows up; fewer take matmul_nt's own path). */
static void linear_dx(const nu_kernel_table *K, size_t rows, size_t in, size_t out,
                      const float *dy, size_t lddy, const nu_linear_view *l, float *dx,
                      size_t lddx, int accumulate)
{
    if (l->packed_t && rows >= 3)
        K->matmul_f32p(rows, in, out, dy, lddy, l->packed_t->data, NULL, dx, lddx, accumulate);
    else
        K->matmul_nt(rows, in, out, dy, lddy, l->w, out, NULL, dx, lddx, accumulate);
}

static size_t ffn_block_rows(size_t left)
{
    return left <= FFN_BLOCK + 2 ? left : FFN_BLOCK;
}

/* FFN half of a pre-LN block, x_out = x_mid + GELU(h W1 + b1) W2 + b2 with
 * h = LN2(x_mid) and pre = h W1 + b1 as the forward saved them; GELU(pre)
 * is recomputed per block (gelu_fwd, the forward's bits).
 * On entry dx = dL/dx_out; on exit dL/dx_mid (the residual passes dx through
 * and LN2's backward accumulates onto it). */
static void ffn_backward(const bwd *B, size_t rows, const float *x_mid, const float *mean,
                         const float *rstd, const float *h, const float *pre,
                         const nu_ln_view *ln, const nu_linear_view *l1, const nu_linear_view *l2,
                         const nu_ln_view *gln, const nu_linear_view *g1,
                         const nu_linear_view *g2, float *dx)
{
    const nu_kernel_table *K = B->K;
    size_t d = B->d, F = B->F;
    for (size_t r0 = 0, n; r0 < rows; r0 += n) {
        n = ffn_block_rows(rows - r0);
        const float *hb = h + r0 * d, *preb = pre + r0 * F;
        float *dxb = dx + r0 * d;
        K->gelu_fwd(n * F, preb, B->act);
        K->matmul_tn(F, d, n, B->act, F, dxb, d, NULL, g2->w, d, 1); /* dW2 += GELU^T dx */
        K->sum_rows(n, d, dxb, d, g2->b);
        linear_dx(K, n, F, d, dxb, d, l2, B->du, F, 0); /* d GELU = dx W2^T */
        K->gelu_bwd(n * F, preb, B->du, B->du);
        K->matmul_tn(d, F, n, hb, d, B->du, F, NULL, g1->w, F, 1);
        K->sum_rows(n, F, B->du, F, g1->b);
        linear_dx(K, n, d, F, B->du, F, l1, B->dh, d, 0);
        K->layernorm_bwd(n, d, x_mid + r0 * d, d, ln->g, mean + r0, rstd + r0, B->dh, d, dxb, d,
                         gln->g, gln->b);
    }
}

/* Output projection of an attention half: x_mid = x_in + A Wo + bo.
 * dx = dL/dx_mid; writes B->da = dL/dA. */
static void attn_out_backward(const bwd *B, size_t rows, const float *att,
                              const nu_linear_view *o, const nu_linear_view *go, const float *dx)
{
    const nu_kernel_table *K = B->K;
    size_t d = B->d;
    K->matmul_tn(d, d, rows, att, d, dx, d, NULL, go->w, d, 1);
    K->sum_rows(rows, d, dx, d, go->b);
    linear_dx(K, rows, d, d, dx, d, o, B->da, d, 0);
}

/* Blocks run over groups of whole items (nu_train_group_end), so that the
 * gradients they pass between steps (dA, dQKV, dK|dV, dh) stay in L2; the
 * weight and bias gradients continue their sums over the rows in order. */
#define GROUP_TOKENS 256

typedef struct group {
    size_t i0, i1;       /* items [i0, i1) */
    size_t t0, T, q0, R; /* their first token and query, and counts */
} group;

/* Advances g to the group after it; 0 past the last. */
static int next_group(const bwd *B, group *g)
{
    g->t0 += g->T;
    g->q0 += g->R;
    g->i0 = g->i1;
    g->T = g->R = 0;
    if (g->i0 >= B->tc->first + B->tc->count)
        return 0;
    g->i1 = nu_train_group_end(B->c, B->s, g->i0, B->tc->first + B->tc->count, GROUP_TOKENS,
                               &g->T, &g->R);
    return 1;
}

static group first_group(const bwd *B)
{
    group g = {B->tc->first, B->tc->first, 0, 0, 0, 0};
    return g;
}

/* Encoder block l: self-attention over each item's tokens, then FFN.
 * dx: dL/d(block output) on entry, dL/d(block input) on exit. */
static void encoder_block_backward(const bwd *B, size_t l, const nu_model_view *w,
                                   const nu_model_view *g, float *dx)
{
    const nu_kernel_table *K = B->K;
    const nu_model_config *c = B->c;
    const nu_enc_saved *sv = &B->tc->enc[l];
    const nu_enc_view *e = &w->enc[l], *ge = &g->enc[l];
    size_t d = B->d, dh = d / c->heads;
    for (group gr = first_group(B); next_group(B, &gr);) {
        const size_t t0 = gr.t0, T = gr.T;
        float *dxg = dx + t0 * d;
        ffn_backward(B, T, sv->x_mid + t0 * d, sv->mean2 + t0, sv->rstd2 + t0, sv->ln2 + t0 * d,
                     sv->ffn_pre + t0 * B->F, &e->ln2, &e->ffn1,
                     &e->ffn2, &ge->ln2, &ge->ffn1, &ge->ffn2, dxg);
        attn_out_backward(B, T, sv->att + t0 * d, &e->o, &ge->o, dxg);
        memset(B->dqkv, 0, T * 3 * d * sizeof(float)); /* attention_bwd accumulates */
        size_t off = 0;
        for (size_t i = gr.i0; i < gr.i1; i++) {
            size_t n = nu_items_n_users(B->s, i), Ti = nu_item_tokens(c, n);
            nu_encoder_mask(c, n, B->kb, B->ke);
            const float *qkv = sv->qkv + (t0 + off) * 3 * d;
            float *dqkv = B->dqkv + off * 3 * d;
            K->attention_bwd(Ti, Ti, c->heads, dh, qkv, 3 * d, qkv + d, 3 * d, qkv + 2 * d,
                             3 * d, B->kb, B->ke, B->scale, sv->att + (t0 + off) * d, d,
                             sv->lse + (t0 + off) * c->heads, B->da + off * d, d, dqkv, 3 * d,
                             dqkv + d, 3 * d, dqkv + 2 * d, 3 * d, B->att_scratch);
            off += Ti;
        }
        K->matmul_tn(d, 3 * d, T, sv->ln1 + t0 * d, d, B->dqkv, 3 * d, NULL, ge->qkv.w, 3 * d, 1);
        K->sum_rows(T, 3 * d, B->dqkv, 3 * d, ge->qkv.b);
        linear_dx(K, T, d, 3 * d, B->dqkv, 3 * d, &e->qkv, B->dh, d, 0);
        K->layernorm_bwd(T, d, sv->x_in + t0 * d, d, e->ln1.g, sv->mean1 + t0, sv->rstd1 + t0,
                         B->dh, d, dxg, d, ge->ln1.g, ge->ln1.b);
    }
}

/* Decoder block l: cross-attention of the queries into the encoder output,
 * then FFN.  dq as dx above; dE accumulates dL/d(encoder output) through
 * this layer's K/V projection. */
static void decoder_block_backward(const bwd *B, size_t l, const nu_model_view *w,
                                   const nu_model_view *g, float *dq, float *dE)
{
    const nu_kernel_table *K = B->K;
    const nu_model_config *c = B->c;
    const nu_dec_saved *sv = &B->tc->dec[l];
    const nu_dec_view *e = &w->dec[l], *ge = &g->dec[l];
    size_t d = B->d, dh = d / c->heads;
    float *dQ = B->dqkv;
    for (group gr = first_group(B); next_group(B, &gr);) {
        const size_t t0 = gr.t0, T = gr.T, q0 = gr.q0, R = gr.R;
        float *dqg = dq + q0 * d;
        ffn_backward(B, R, sv->q_mid + q0 * d, sv->mean2 + q0, sv->rstd2 + q0, sv->ln2 + q0 * d,
                     sv->ffn_pre + q0 * B->F, &e->ln2, &e->ffn1,
                     &e->ffn2, &ge->ln2, &ge->ffn1, &ge->ffn2, dqg);
        attn_out_backward(B, R, sv->att + q0 * d, &e->o, &ge->o, dqg);
        memset(dQ, 0, R * d * sizeof(float));
        memset(B->dkv, 0, T * 2 * d * sizeof(float));
        size_t toff = 0, qoff = 0;
        for (size_t i = gr.i0; i < gr.i1; i++) {
            size_t n = nu_items_n_users(B->s, i), Ti = nu_item_tokens(c, n), nq = n + 1;
            nu_decoder_mask(c, n, 1, nq, B->kb, B->ke);
            const float *kv = sv->kv + (t0 + toff) * 2 * d;
            float *dkv = B->dkv + toff * 2 * d;
            K->attention_bwd(nq, Ti, c->heads, dh, sv->qd + (q0 + qoff) * d, d, kv, 2 * d,
                             kv + d, 2 * d, B->kb, B->ke, B->scale, sv->att + (q0 + qoff) * d, d,
                             sv->lse + (q0 + qoff) * c->heads, B->da + qoff * d, d,
                             dQ + qoff * d, d, dkv, 2 * d, dkv + d, 2 * d, B->att_scratch);
            toff += Ti;
            qoff += nq;
        }
        /* K | V = enc W_kv + b_kv */
        K->matmul_tn(d, 2 * d, T, B->tc->enc_out + t0 * d, d, B->dkv, 2 * d, NULL, ge->kv.w,
                     2 * d, 1);
        K->sum_rows(T, 2 * d, B->dkv, 2 * d, ge->kv.b);
        linear_dx(K, T, d, 2 * d, B->dkv, 2 * d, &e->kv, dE + t0 * d, d, 1);
        /* Q = LN1(q_in) W_q + b_q */
        K->matmul_tn(d, d, R, sv->ln1 + q0 * d, d, dQ, d, NULL, ge->q.w, d, 1);
        K->sum_rows(R, d, dQ, d, ge->q.b);
        linear_dx(K, R, d, d, dQ, d, &e->q, B->dh, d, 0);
        K->layernorm_bwd(R, d, sv->q_in + q0 * d, d, e->ln1.g, sv->mean1 + q0, sv->rstd1 + q0,
                         B->dh, d, dqg, d, ge->ln1.g, ge->ln1.b);
    }
}

/* Query j of each item started as dec.query_pos[j-1]. */
static void query_pos_backward(const bwd *B, const nu_model_view *g, const float *dq)
{
    size_t d = B->d, r = 0;
    for (size_t i = B->tc->first; i < B->tc->first + B->tc->count; i++) {
        size_t n = nu_items_n_users(B->s, i);
        for (size_t j = 1; j <= n + 1; j++, r++)
            B->K->axpy(d, 1.0f, dq + r * d, g->query_pos + (j - 1) * d);
    }
}

/* Marks embedding rows as touched: prefix fields through a per-row flag
 * (vocabularies are small), users collected then sorted and deduplicated. */
typedef struct marks {
    nu_row_list users;
    size_t users_cap;
    nu_row_list prefix[NU_MAX_FIELDS];
    unsigned char *seen[NU_MAX_FIELDS];
} marks;

static void mark_prefix(marks *m, size_t f, uint32_t v)
{
    if (!m->seen[f][v]) {
        m->seen[f][v] = 1;
        m->prefix[f].rows[m->prefix[f].count++] = v;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void sort_unique(nu_row_list *l)
{
    if (l->count == 0)
        return;
    qsort(l->rows, l->count, sizeof *l->rows, cmp_u32);
    size_t k = 1;
    for (size_t i = 1; i < l->count; i++)
        if (l->rows[i] != l->rows[k - 1])
            l->rows[k++] = l->rows[i];
    l->count = k;
}

/* Embedding step of one item (X rows of its tokens: prefix, users, CLS):
 * every token is a sum of its lookups and a position, so each gets dX. */
static void embed_item_backward(const bwd *B, const nu_model_view *g, size_t i, const float *dX,
                                marks *m)
{
    const nu_kernel_table *K = B->K;
    const nu_model_config *c = B->c;
    const nu_items *s = B->s;
    size_t d = B->d, k = c->n_prefix, n = nu_items_n_users(s, i);
    const float *dense = s->dense_width ? s->dense + i * s->dense_width : NULL;
    size_t dense_pos = 0;
    for (size_t f = 0; f < k; f++) {
        const nu_field_config *fc = &c->prefix[f];
        const float *row = dX + f * d;
        K->axpy(d, 1.0f, row, g->pos_prefix + f * d);
        if (fc->kind == NU_FIELD_DENSE) {
            /* token = x W + b: dW += x^T row (an outer product), db += row */
            K->matmul_tn(fc->size, d, 1, dense + dense_pos, fc->size, row, d, NULL,
                         g->prefix_proj[f].w, d, 1);
            K->axpy(d, 1.0f, row, g->prefix_proj[f].b);
            dense_pos += fc->size;
            continue;
        }
        size_t lo = s->feat_off[i * k + f], hi = s->feat_off[i * k + f + 1];
        if (hi == lo) {
            K->axpy(d, 1.0f, row, g->prefix_emb[f]); /* the <unk> row */
            mark_prefix(m, f, 0);
            continue;
        }
        /* the mean of the lookups: each value's row gets row / count
         * (a value listed twice gets it twice, as in the forward's sum) */
        float w = 1.0f / (float)(hi - lo);
        for (size_t v = lo; v < hi; v++) {
            K->axpy(d, w, row, g->prefix_emb[f] + (size_t)s->feat_vals[v] * d);
            mark_prefix(m, f, s->feat_vals[v]);
        }
    }
    const uint32_t *users = s->users + s->user_off[i];
    for (size_t u = 0; u < n; u++) {
        const float *row = dX + (k + u) * d;
        K->axpy(d, 1.0f, row, g->user_emb + (size_t)users[u] * d);
        K->axpy(d, 1.0f, row, g->pos_user + u * d);
        m->users.rows[m->users.count++] = users[u];
    }
    if (c->use_cls) {
        const float *row = dX + (k + n) * d;
        K->axpy(d, 1.0f, row, g->cls);
        K->axpy(d, 1.0f, row, g->pos_cls);
    }
}

/* ---- the pass ---- */

static nu_status take_scratch(bwd *B, nu_arena *a, const shape *sh, float **dq, float **dE,
                              float **dX, marks *m)
{
    const nu_model_config *c = B->c;
    size_t d = B->d, F = B->F;
    size_t ndq = sh->T * 3 * d > sh->R * d ? sh->T * 3 * d : sh->R * d;
    *dq = nu_arena_floats(a, sh->R * d);
    *dE = nu_arena_floats(a, sh->T * d);
    *dX = nu_arena_floats(a, sh->T * d);
    B->dh = nu_arena_floats(a, sh->rows * d);
    B->da = nu_arena_floats(a, sh->rows * d);
    B->du = nu_arena_floats(a, ffn_rows(sh) * F);
    B->act = nu_arena_floats(a, ffn_rows(sh) * F);
    B->dqkv = nu_arena_floats(a, ndq);
    B->dkv = nu_arena_floats(a, sh->T * 2 * d);
    B->att_scratch = nu_arena_floats(a, sh->att);
    B->kb = nu_arena_bytes(a, sh->idx * sizeof(uint32_t));
    B->ke = nu_arena_bytes(a, sh->idx * sizeof(uint32_t));
    m->users.rows = nu_arena_bytes(a, sh->users * sizeof(uint32_t));
    int ok = *dq && *dE && *dX && B->dh && B->da && B->du && B->act && B->dqkv && B->dkv &&
             B->att_scratch && B->kb && B->ke && m->users.rows;
    for (size_t f = 0; f < c->n_prefix && ok; f++) {
        if (c->prefix[f].kind == NU_FIELD_DENSE)
            continue;
        size_t V = c->prefix[f].size;
        m->prefix[f].rows = nu_arena_bytes(a, V * sizeof(uint32_t));
        m->seen[f] = nu_arena_bytes(a, V);
        ok = m->prefix[f].rows && m->seen[f];
        if (ok)
            memset(m->seen[f], 0, V);
    }
    if (!ok)
        return nu_error(NU_ERR_INTERNAL, "backward scratch arena too small for %zu items "
                        "(%zu tokens)", B->tc->count, sh->T);
    return NU_OK;
}

nu_status nu_backward_batch(const nu_model_config *c, const nu_model_view *w,
                            const nu_items *s, const nu_train_cache *tc, const float *dout,
                            const nu_model_view *g, nu_arena *arena, nu_touched_rows *touched)
{
    if (touched)
        memset(touched, 0, sizeof *touched);
    if (tc->count == 0)
        return NU_OK;
    if (tc->first + tc->count > s->count)
        return nu_error(NU_ERR_INVALID_ARG, "backward batch [%zu, %zu) outside the %zu items",
                        tc->first, tc->first + tc->count, s->count);
    nu_status st = nu_init();
    if (st != NU_OK)
        return st;
    bwd B = {.K = nu_kernels(), .c = c, .s = s, .tc = tc, .d = c->d, .F = c->ffn,
             .T = tc->tokens, .R = tc->queries,
             .scale = 1.0f / sqrtf((float)(c->d / c->heads)), .eps = (float)c->ln_eps};
    const nu_kernel_table *K = B.K;
    size_t d = B.d, T = B.T, R = B.R;
    size_t n_users = s->user_off[tc->first + tc->count] - s->user_off[tc->first];
    shape sh = shape_for(c, T, R, tc->max_tokens, n_users);
    float *dq, *dE, *dX;
    marks m;
    memset(&m, 0, sizeof m);
    if ((st = take_scratch(&B, arena, &sh, &dq, &dE, &dX, &m)) != NU_OK)
        return st;

    /* û = LN(q): the decoder stream's gradient starts here. */
    memset(dq, 0, R * d * sizeof(float));
    K->layernorm_bwd(R, d, tc->dec_x, d, w->dec_ln.g, tc->dec_mean, tc->dec_rstd, dout, d, dq, d,
                     g->dec_ln.g, g->dec_ln.b);
    memset(dE, 0, T * d * sizeof(float));
    for (size_t l = c->dec_layers; l-- > 0;)
        decoder_block_backward(&B, l, w, g, dq, dE);
    query_pos_backward(&B, g, dq);

    /* enc = LN(x): every decoder layer's K/V gradient met in dE. */
    memset(dX, 0, T * d * sizeof(float));
    K->layernorm_bwd(T, d, tc->enc_x, d, w->enc_ln.g, tc->enc_mean, tc->enc_rstd, dE, d, dX, d,
                     g->enc_ln.g, g->enc_ln.b);
    for (size_t l = c->enc_layers; l-- > 0;)
        encoder_block_backward(&B, l, w, g, dX);

    size_t off = 0;
    for (size_t i = tc->first; i < tc->first + tc->count; i++) {
        embed_item_backward(&B, g, i, dX + off * d, &m);
        off += nu_item_tokens(c, nu_items_n_users(s, i));
    }
    sort_unique(&m.users);
    if (touched) {
        touched->users = m.users;
        for (size_t f = 0; f < c->n_prefix; f++) {
            touched->prefix[f] = m.prefix[f];
            sort_unique(&touched->prefix[f]);
        }
    }
    return NU_OK;
}
