/* The training loss (loss.h).  Positions with a target are processed in
 * chunks of NU_LOSS_CHUNK so the chunk x (M + 1) logits block stays small:
 * per chunk, the û rows and target rows are gathered (and normalised for
 * cosine); one matmul_nt gives every chunk x M InfoNCE logit; exp_shift and
 * a row sum (cosine: the logits' bound 1/τ is the shift) or logsumexp and
 * exp_shift (dot) turn each row into its softmax, i.e. dL/dlogit; matmul_nn and
 * matmul_tn take that back to the û rows and to the shared negatives (whose
 * gradient accumulates over chunks and reaches the table once, at the end).
 * Exposed negatives are few per position: handled per position in blocks.
 * Internally the logit is z = s a.b with a, b the (normalised) û and user
 * rows and s = 1/τ (cosine) or 1 (dot); the shared rows are kept pre-scaled
 * (s b) so the matmuls need no extra pass. */
#include "loss.h"

#include <math.h>
#include <string.h>

#include "dispatch.h"
#include "error.h"
#include "f32_pack.h"

#define NU_LOSS_CHUNK 128 /* positions per logits block: 128 x 1025 floats = 0.5 MB */
#define NU_LOSS_NEG_BLOCK 64 /* exposed negatives of one position per block */

void nu_loss_config_defaults(const nu_model_config *c, nu_loss_config *out)
{
    out->lambda_con = 1.0;
    out->lambda_ce = 0.5;
    out->lambda_aux = 0.1;
    out->similarity_dot = c->similarity_dot;
    out->tau = c->tau;
}

static size_t rup(size_t bytes)
{
    return (bytes + 63) & ~(size_t)63;
}

size_t nu_loss_scratch_bytes(size_t d, size_t R, size_t M, size_t n_exposed)
{
    const size_t f4 = sizeof(float), C = NU_LOSS_CHUNK, NB = NU_LOSS_NEG_BLOCK;
    const size_t cand = (R + M + n_exposed) * sizeof(uint32_t) + 4;
    return 2 * rup(cand)                                    /* touched list + sort buffer */
           + 3 * rup(M * d * f4) + rup(M * f4)              /* Bn, Bs, dBn, norms */
           + rup(nu_f32_packed_elems(d, M) * f4)            /* Bs^T packed */
           + rup(nu_f32_packed_elems(M, d) * f4)            /* Bs packed */
           + rup(2 * M * sizeof(uint64_t))                  /* accidental-hit keys */
           + rup(C * sizeof(size_t)) + 3 * rup(C * d * f4)  /* idx, A, T, dA */
           + rup((C > NB ? C : NB) * sizeof(uint32_t))      /* row ids */
           + rup(C * (M + 1) * f4) + 6 * rup(C * f4)        /* logits, per-row values */
           + rup((M + 1) * f4)                              /* ones for the row sums */
           + rup(NB * d * f4) + 4 * rup(NB * f4) + rup(d * f4); /* exposed negatives */
}

/* ---- sorted unique row list (LSD radix sort: no allocation, O(n)) ---- */

static size_t sort_unique(uint32_t *x, uint32_t *tmp, size_t n)
{
    uint32_t hi = 0;
    for (size_t i = 0; i < n; i++)
        hi |= x[i];
    for (unsigned shift = 0; shift < 32 && (hi >> shift) != 0; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++)
            count[((x[i] >> shift) & 255u) + 1]++;
        for (size_t k = 1; k < 257; k++)
            count[k] += count[k - 1];
        for (size_t i = 0; i < n; i++)
            tmp[count[(x[i] >> shift) & 255u]++] = x[i];
        memcpy(x, tmp, n * sizeof *x);
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || x[i] != x[m - 1])
            x[m++] = x[i];
    return m;
}

/* Sorts (row << 32 | j) keys by row, stable in j (LSD on the row bytes). */
static void sort_by_row(uint64_t *x, uint64_t *tmp, size_t n)
{
    for (unsigned shift = 32; shift < 64; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++)
            count[((x[i] >> shift) & 255u) + 1]++;
        for (size_t k = 1; k < 257; k++)
            count[k] += count[k - 1];
        for (size_t i = 0; i < n; i++)
            tmp[count[(x[i] >> shift) & 255u]++] = x[i];
        memcpy(x, tmp, n * sizeof *x);
    }
}

/* ---- shared state of one call ---- */

typedef struct lctx {
    const nu_kernel_table *K;
    const nu_loss_config *cfg;
    const nu_loss_batch *b;
    const float *table;
    size_t d, M;
    int cosine;
    float s;                  /* logit scale: 1/τ or 1 */
    int shift_known;          /* cosine with s <= 40: logits in [-s, s] */
    float w_con, w_ce, w_aux; /* λ / count: weight of one term of each mean */
    float *dhat, *dtable;
    /* shared negatives; hits: (row << 32 | j) sorted by row, to find the
     * accidental hits of a target without scanning all M */
    float *Bn, *Bs, *dBn, *bnorm;
    /* Bs packed once per call for matmul_f32p (NULL where it is not a
     * vector kernel): as Bs^T (the logits' nt product) and as Bs (dA) */
    float *Bs_t_packed, *Bs_packed;
    uint64_t *hits;
    /* one chunk */
    size_t *idx;
    uint32_t *rows; /* row ids being gathered: max(chunk, negative block) */
    float *A, *anorm, *T, *tnorm, *dA, *z0, *gpos, *ones, *dz0, *Z;
    float *ones_row; /* M + 1 ones: a logits row's sum as a dot product */
    /* exposed negatives of one position */
    float *E, *enorm, *ze, *zeros, *dze, *drow;
    double con, ce, aux;
} lctx;

/* Copies `rows` table rows (ids) into X and normalises them for cosine. */
static void gather_rows(const lctx *L, size_t rows, const uint32_t *ids, float *X, float *norm)
{
    for (size_t r = 0; r < rows; r++)
        memcpy(X + r * L->d, L->table + (size_t)ids[r] * L->d, L->d * sizeof(float));
    if (L->cosine)
        L->K->l2norm_fwd(rows, L->d, X, L->d, NU_LOSS_NORM_EPS, X, L->d, norm);
}

/* Adds dL/db for b = the (normalised) copy X of table row `row` to dtable. */
static void table_grad_row(const lctx *L, uint32_t row, const float *X, float norm,
                           const float *dX)
{
    float *dst = L->dtable + (size_t)row * L->d;
    if (L->cosine)
        L->K->l2norm_bwd(1, L->d, X, L->d, &norm, NU_LOSS_NORM_EPS, dX, L->d, dst, L->d);
    else
        L->K->axpy(L->d, 1.0f, dX, dst);
}

/* Sets z[j] = -inf for every shared negative j equal to row t (accidental
 * hit: not a negative of this position). */
static void mask_hits(const lctx *L, uint32_t t, float *z)
{
    size_t lo = 0, hi = L->M; /* first key with row >= t */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uint32_t)(L->hits[mid] >> 32) < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < L->M && (uint32_t)(L->hits[lo] >> 32) == t; lo++)
        z[(uint32_t)L->hits[lo]] = -INFINITY;
}

/* InfoNCE over the c positions of the chunk: loss, dA (written) and dBn
 * (accumulated, unscaled), gpos[k] = dL/dz0. */
static void chunk_contrastive(lctx *L, size_t c)
{
    const nu_kernel_table *K = L->K;
    const size_t d = L->d, M = L->M, ldz = M + 1;
    const uint32_t *tgt = L->b->target;
    /* matmul_f32p on the packed Bs^T has matmul_nt's bits from 3 rows up */
    if (L->Bs_t_packed && c >= 3)
        K->matmul_f32p(c, M, d, L->A, d, L->Bs_t_packed, NULL, L->Z + 1, ldz, 0);
    else
        K->matmul_nt(c, M, d, L->A, d, L->Bs, d, NULL, L->Z + 1, ldz, 0);
    for (size_t k = 0; k < c; k++) {
        float *z = L->Z + k * ldz;
        const uint32_t t = tgt[L->idx[k]];
        z[0] = L->z0[k];
        mask_hits(L, t, z + 1);
        if (L->shift_known) {
            /* Cosine logits lie in [-s, s]: exp(z - s) neither overflows
             * nor (s <= 40) underflows, so one exp pass gives the softmax
             * and the log-sum (logsumexp would make a max and an exp pass
             * of its own first). */
            K->exp_shift(ldz, z, L->s, z);
            float sum;
            K->dot_rows(1, ldz, L->ones_row, z, ldz, &sum);
            L->con += (double)L->s + log((double)sum) - (double)L->z0[k];
            const float w = L->w_con / sum;
            for (size_t j = 0; j < ldz; j++)
                z[j] *= w;
            z[0] -= L->w_con; /* softmax - 1 at the positive */
            L->gpos[k] = z[0];
            continue;
        }
        const float lse = K->logsumexp(ldz, z);
        L->con += (double)lse - (double)z[0];
        if (L->w_con == 0.0f)
            continue;
        K->exp_shift(ldz, z, lse, z); /* softmax = dL/dz (+ -1 at the positive) */
        z[0] -= 1.0f;
        for (size_t j = 0; j < ldz; j++)
            z[j] *= L->w_con;
        L->gpos[k] = z[0];
    }
    if (L->w_con == 0.0f) {
        memset(L->dA, 0, c * d * sizeof(float));
        return;
    }
    /* dA = G Bs (= s G Bn); dBn += G^T A (scaled by s once, at the end). */
    if (L->Bs_packed) /* matmul_nn's bits */
        K->matmul_f32p(c, d, M, L->Z + 1, ldz, L->Bs_packed, NULL, L->dA, d, 0);
    else
        K->matmul_nn(c, d, M, L->Z + 1, ldz, L->Bs, d, NULL, L->dA, d, 0);
    K->matmul_tn(M, d, c, L->Z + 1, ldz, L->A, d, NULL, L->dBn, d, 1);
}

/* BCE pairs (t, û) label 1 for the chunk: loss and gpos += dL/dz0. */
static void chunk_ce_positive(lctx *L, size_t c)
{
    L->ce += L->K->sigmoid_xent(c, L->z0, L->ones, L->dz0);
    for (size_t k = 0; k < c; k++)
        L->gpos[k] += L->w_ce * L->dz0[k];
}

/* BCE pairs (e, û) label 0 for the exposed negatives of chunk row k:
 * loss, dA_k += dL/da, table rows += dL/du_e. */
static void position_ce_negatives(lctx *L, size_t k)
{
    const nu_loss_batch *b = L->b;
    if (!b->neg_off)
        return;
    const nu_kernel_table *K = L->K;
    const size_t p = L->idx[k], d = L->d;
    const uint32_t t = b->target[p];
    const float *a = L->A + k * d;
    float *da = L->dA + k * d;
    uint32_t *ids = L->rows;
    size_t e = b->neg_off[p];
    while (e < b->neg_off[p + 1]) {
        size_t n = 0;
        for (; e < b->neg_off[p + 1] && n < NU_LOSS_NEG_BLOCK; e++)
            if (b->neg_rows[e] != t) /* same pair as the positive: left out */
                ids[n++] = b->neg_rows[e];
        if (n == 0)
            continue;
        gather_rows(L, n, ids, L->E, L->enorm);
        K->dot_rows(n, d, a, L->E, d, L->ze);
        for (size_t j = 0; j < n; j++)
            L->ze[j] *= L->s;
        L->ce += K->sigmoid_xent(n, L->ze, L->zeros, L->dze);
        if (L->w_ce == 0.0f)
            continue;
        for (size_t j = 0; j < n; j++) {
            const float g = L->w_ce * L->dze[j] * L->s; /* dL/d(a.b_e) */
            K->axpy(d, g, L->E + j * d, da);
            if (L->dtable) {
                memset(L->drow, 0, d * sizeof(float));
                K->axpy(d, g, a, L->drow);
                table_grad_row(L, ids[j], L->E + j * d, L->enorm[j], L->drow);
            }
        }
    }
}

/* Positive pair gradients, aux term, and dL/dû of the chunk's positions. */
static void chunk_finish(lctx *L, size_t c)
{
    const nu_kernel_table *K = L->K;
    const size_t d = L->d;
    const nu_loss_batch *b = L->b;
    const int pos_grad = L->w_con != 0.0f || L->w_ce != 0.0f;
    for (size_t k = 0; k < c; k++) {
        const size_t p = L->idx[k];
        const uint32_t t = b->target[p];
        const float *a = L->A + k * d, *tk = L->T + k * d;
        const float *uh = b->uhat + p * b->ld_uhat, *ut = L->table + (size_t)t * d;
        float *da = L->dA + k * d;
        const float g = L->gpos[k] * L->s;
        if (pos_grad) {
            K->axpy(d, g, tk, da);
            if (L->dtable) {
                memset(L->drow, 0, d * sizeof(float));
                K->axpy(d, g, a, L->drow);
                table_grad_row(L, t, tk, L->tnorm[k], L->drow);
            }
        }
        /* L_aux on the raw vectors; sg(u): nothing reaches the table. */
        double sq = 0;
        for (size_t i = 0; i < d; i++) {
            const double diff = (double)uh[i] - (double)ut[i];
            sq += diff * diff;
        }
        L->aux += sq;
        if (!L->dhat)
            continue;
        float *dh = L->dhat + p * d;
        const float w = 2.0f * L->w_aux;
        for (size_t i = 0; i < d; i++)
            dh[i] = w * (uh[i] - ut[i]);
        if (L->cosine)
            K->l2norm_bwd(1, d, a, d, &L->anorm[k], NU_LOSS_NORM_EPS, da, d, dh, d);
        else
            K->axpy(d, 1.0f, da, dh);
    }
}

/* One row of d floats towards the cache (a hint: no effect on results). */
static void prefetch_row(const float *row, size_t d, int for_write)
{
    for (size_t i = 0; i < d; i += 16) {
        if (for_write)
            __builtin_prefetch(row + i, 1, 3);
        else
            __builtin_prefetch(row + i, 0, 3);
    }
}

/* The chunk's scattered rows: its exposed negatives' table rows (read per
 * position, after the chunk's products) and the gradient rows of its
 * targets and exposed negatives (written last).  Asked for before the
 * products, they arrive from memory while those run instead of stalling
 * the row updates one miss at a time. */
static void prefetch_chunk_rows(const lctx *L, size_t c)
{
    const nu_loss_batch *b = L->b;
    const size_t d = L->d;
    for (size_t k = 0; k < c; k++) {
        const size_t p = L->idx[k];
        if (L->dtable)
            prefetch_row(L->dtable + (size_t)b->target[p] * d, d, 1);
        if (!b->neg_off)
            continue;
        for (size_t e = b->neg_off[p]; e < b->neg_off[p + 1]; e++) {
            prefetch_row(L->table + (size_t)b->neg_rows[e] * d, d, 0);
            if (L->dtable)
                prefetch_row(L->dtable + (size_t)b->neg_rows[e] * d, d, 1);
        }
    }
}

static void run_chunk(lctx *L, size_t c)
{
    const nu_kernel_table *K = L->K;
    const size_t d = L->d;
    const nu_loss_batch *b = L->b;
    uint32_t *ids = L->rows;
    prefetch_chunk_rows(L, c);
    for (size_t k = 0; k < c; k++) {
        memcpy(L->A + k * d, b->uhat + L->idx[k] * b->ld_uhat, d * sizeof(float));
        ids[k] = b->target[L->idx[k]];
    }
    if (L->cosine)
        K->l2norm_fwd(c, d, L->A, d, NU_LOSS_NORM_EPS, L->A, d, L->anorm);
    gather_rows(L, c, ids, L->T, L->tnorm);
    for (size_t k = 0; k < c; k++) {
        K->dot_rows(1, d, L->A + k * d, L->T + k * d, d, &L->z0[k]);
        L->z0[k] *= L->s;
        L->gpos[k] = 0.0f;
    }
    chunk_contrastive(L, c);
    chunk_ce_positive(L, c);
    for (size_t k = 0; k < c; k++)
        position_ce_negatives(L, k);
    chunk_finish(L, c);
}

/* The shared negatives' accumulated gradient (times s) into the table. */
#define NU_LOSS_PREFETCH_AHEAD 8 /* rows: covers a miss at a few rows' work each */

static void shared_to_table(lctx *L)
{
    for (size_t j = 0; j < L->M; j++) {
        if (j + NU_LOSS_PREFETCH_AHEAD < L->M)
            prefetch_row(L->dtable + (size_t)L->b->shared[j + NU_LOSS_PREFETCH_AHEAD] * L->d,
                         L->d, 1);
        float *g = L->dBn + j * L->d;
        for (size_t i = 0; i < L->d; i++)
            g[i] *= L->s;
        table_grad_row(L, L->b->shared[j], L->Bn + j * L->d, L->bnorm[j], g);
    }
}

/* ---- argument checks and counts ---- */

static nu_status check_batch(const nu_loss_config *cfg, const nu_loss_batch *b, size_t num_users,
                             size_t d)
{
    if (d == 0 || b->ld_uhat < d || (b->R > 0 && (!b->uhat || !b->target)) ||
        (b->M > 0 && !b->shared) || (b->neg_off && !b->neg_rows && b->neg_off[b->R] > b->neg_off[0]))
        return nu_error(NU_ERR_INVALID_ARG, "loss: bad batch shape or missing array");
    if (!cfg->similarity_dot && !(cfg->tau > 0))
        return nu_error(NU_ERR_INVALID_ARG, "loss: tau must be > 0, got %g", cfg->tau);
    for (size_t i = 0; i < b->R; i++)
        if (b->target[i] != NU_LOSS_NO_TARGET && b->target[i] >= num_users)
            return nu_error(NU_ERR_INVALID_ARG, "loss: target row %u of position %zu >= %zu users",
                            b->target[i], i, num_users);
    for (size_t j = 0; j < b->M; j++)
        if (b->shared[j] >= num_users)
            return nu_error(NU_ERR_INVALID_ARG, "loss: shared negative %zu is row %u >= %zu users",
                            j, b->shared[j], num_users);
    if (b->neg_off) {
        for (size_t i = 0; i < b->R; i++)
            if (b->neg_off[i + 1] < b->neg_off[i])
                return nu_error(NU_ERR_INVALID_ARG, "loss: neg_off decreases at position %zu", i);
        for (size_t e = b->neg_off[0]; e < b->neg_off[b->R]; e++)
            if (b->neg_rows[e] >= num_users)
                return nu_error(NU_ERR_INVALID_ARG, "loss: exposed negative %zu is row %u >= %zu users",
                                e, b->neg_rows[e], num_users);
    }
    return NU_OK;
}

void nu_loss_count_terms(const nu_loss_batch *b, size_t *positions, size_t *pairs)
{
    size_t P = 0, Q = 0;
    for (size_t i = 0; i < b->R; i++) {
        if (b->target[i] == NU_LOSS_NO_TARGET)
            continue;
        P++;
        Q++;
        if (b->neg_off)
            for (size_t e = b->neg_off[i]; e < b->neg_off[i + 1]; e++)
                Q += b->neg_rows[e] != b->target[i];
    }
    *positions = P;
    *pairs = Q;
}

/* The rows of the terms with λ != 0, sorted and unique, into list. */
static size_t touched_rows(const nu_loss_config *cfg, const nu_loss_batch *b, size_t P,
                           uint32_t *list, uint32_t *tmp)
{
    size_t n = 0;
    if (P == 0)
        return 0;
    for (size_t i = 0; i < b->R; i++) {
        const uint32_t t = b->target[i];
        if (t == NU_LOSS_NO_TARGET)
            continue;
        if (cfg->lambda_con != 0 || cfg->lambda_ce != 0)
            list[n++] = t;
        if (cfg->lambda_ce != 0 && b->neg_off)
            for (size_t e = b->neg_off[i]; e < b->neg_off[i + 1]; e++)
                if (b->neg_rows[e] != t)
                    list[n++] = b->neg_rows[e];
    }
    if (cfg->lambda_con != 0)
        for (size_t j = 0; j < b->M; j++)
            list[n++] = b->shared[j];
    return sort_unique(list, tmp, n);
}

/* Carves the scratch from the arena; 0 when it is too small. */
static int take_scratch(lctx *L, nu_arena *a)
{
    const size_t d = L->d, M = L->M, C = NU_LOSS_CHUNK, NB = NU_LOSS_NEG_BLOCK;
    L->Bn = nu_arena_floats(a, M * d);
    L->Bs = nu_arena_floats(a, M * d);
    L->dBn = nu_arena_floats(a, M * d);
    L->bnorm = nu_arena_floats(a, M);
    L->Bs_t_packed = nu_arena_floats(a, nu_f32_packed_elems(d, M));
    L->Bs_packed = nu_arena_floats(a, nu_f32_packed_elems(M, d));
    L->hits = nu_arena_bytes(a, 2 * M * sizeof(uint64_t)); /* keys + sort buffer */
    L->idx = nu_arena_bytes(a, C * sizeof(size_t));
    L->rows = nu_arena_bytes(a, (C > NB ? C : NB) * sizeof(uint32_t));
    L->A = nu_arena_floats(a, C * d);
    L->T = nu_arena_floats(a, C * d);
    L->dA = nu_arena_floats(a, C * d);
    L->Z = nu_arena_floats(a, C * (M + 1));
    L->ones_row = nu_arena_floats(a, M + 1);
    L->anorm = nu_arena_floats(a, C);
    L->tnorm = nu_arena_floats(a, C);
    L->z0 = nu_arena_floats(a, C);
    L->gpos = nu_arena_floats(a, C);
    L->ones = nu_arena_floats(a, C);
    L->dz0 = nu_arena_floats(a, C);
    L->E = nu_arena_floats(a, NB * d);
    L->enorm = nu_arena_floats(a, NB);
    L->ze = nu_arena_floats(a, NB);
    L->zeros = nu_arena_floats(a, NB);
    L->dze = nu_arena_floats(a, NB);
    L->drow = nu_arena_floats(a, d);
    if (!L->drow || !L->dze || !L->zeros || !L->ze || !L->enorm || !L->E || !L->dz0 || !L->ones ||
        !L->gpos || !L->z0 || !L->tnorm || !L->anorm || !L->Z || !L->ones_row || !L->dA ||
        !L->T || !L->A || !L->idx || !L->rows || !L->hits || !L->bnorm || !L->dBn || !L->Bs ||
        !L->Bn || !L->Bs_t_packed || !L->Bs_packed)
        return 0;
    if (!L->K->matmul_f32p_native) /* the reference would be slower than matmul_nt / nn */
        L->Bs_t_packed = L->Bs_packed = NULL;
    for (size_t k = 0; k < C; k++)
        L->ones[k] = 1.0f;
    for (size_t j = 0; j <= M; j++)
        L->ones_row[j] = 1.0f;
    memset(L->zeros, 0, NB * sizeof(float));
    return 1;
}

nu_status nu_loss_compute(const nu_loss_config *cfg, const nu_loss_batch *b, const float *table,
                          size_t num_users, size_t d, nu_arena *arena, float *dhat,
                          float *dtable, nu_row_list *touched, nu_loss_value *out)
{
    nu_status st = nu_init();
    if (st != NU_OK)
        return st;
    st = check_batch(cfg, b, num_users, d);
    if (st != NU_OK)
        return st;
    size_t P, Q;
    nu_loss_count_terms(b, &P, &Q);
    const size_t ncand = b->R + b->M + (b->neg_off ? b->neg_off[b->R] - b->neg_off[0] : 0);
    uint32_t *list = nu_arena_bytes(arena, ncand * sizeof(uint32_t) + 4);
    const size_t keep = arena->used; /* the touched list outlives the call */
    uint32_t *tmp = nu_arena_bytes(arena, ncand * sizeof(uint32_t) + 4);
    lctx L = {0};
    L.K = nu_kernels();
    L.cfg = cfg;
    L.b = b;
    L.table = table;
    L.d = d;
    L.M = b->M;
    L.cosine = !cfg->similarity_dot;
    L.s = L.cosine ? (float)(1.0 / cfg->tau) : 1.0f;
    L.shift_known = L.cosine && L.s <= 40.0f;
    L.w_con = P ? (float)(cfg->lambda_con / (double)P) : 0.0f;
    L.w_aux = P ? (float)(cfg->lambda_aux / (double)P) : 0.0f;
    L.w_ce = Q ? (float)(cfg->lambda_ce / (double)Q) : 0.0f;
    L.dhat = dhat;
    L.dtable = dtable;
    if (!list || !tmp || !take_scratch(&L, arena)) {
        arena->used = keep;
        return nu_error(NU_ERR_NOMEM, "loss: arena too small (see nu_loss_scratch_bytes)");
    }
    size_t ntouched = touched_rows(cfg, b, P, list, tmp);

    /* Shared negatives: normalised copies, pre-scaled copies, zero gradient. */
    gather_rows(&L, L.M, b->shared, L.Bn, L.bnorm);
    for (size_t i = 0; i < L.M * d; i++)
        L.Bs[i] = L.Bn[i] * L.s;
    if (L.Bs_packed) {
        nu_f32_pack_bt(d, L.M, L.Bs, d, L.Bs_t_packed);
        if (L.w_con != 0.0f)
            nu_f32_pack_b(L.M, d, L.Bs, d, L.Bs_packed);
    }
    memset(L.dBn, 0, L.M * d * sizeof(float));
    for (size_t j = 0; j < L.M; j++)
        L.hits[j] = (uint64_t)b->shared[j] << 32 | j;
    sort_by_row(L.hits, L.hits + L.M, L.M);

    size_t c = 0;
    for (size_t i = 0; i < b->R; i++) {
        if (b->target[i] == NU_LOSS_NO_TARGET) {
            if (dhat)
                memset(dhat + i * d, 0, d * sizeof(float));
            continue;
        }
        L.idx[c++] = i;
        if (c == NU_LOSS_CHUNK) {
            run_chunk(&L, c);
            c = 0;
        }
    }
    if (c > 0)
        run_chunk(&L, c);
    if (dtable && L.w_con != 0.0f)
        shared_to_table(&L);

    nu_loss_value v = {0};
    v.positions = P;
    v.pairs = Q;
    v.con = P ? L.con / (double)P : 0.0;
    v.ce = Q ? L.ce / (double)Q : 0.0;
    v.aux = P ? L.aux / (double)P : 0.0;
    v.total = cfg->lambda_con * v.con + cfg->lambda_ce * v.ce + cfg->lambda_aux * v.aux;
    if (out)
        *out = v;
    if (touched) {
        touched->rows = list;
        touched->count = ntouched;
    }
    arena->used = keep;
    return NU_OK;
}
