/* The kernel table: the contract every ISA implements.
 *
 * Every entry has a scalar reference (kernels/scalar/) and optimised versions
 * (kernels/avx2/, kernels/avx512/, kernels/neon/).  An ISA's table is first filled
 * with the scalar kernels, then each kernel group of that ISA overrides the
 * entries it implements (BLIS-style), so a table is always complete.
 *
 * Conventions for every kernel:
 *  - fp32, row-major; "ld*" is the row stride in elements (>= the row width).
 *  - Pointers need no particular alignment.  Zero sizes are valid no-ops
 *    (outputs of size zero are not touched).
 *  - Kernels never allocate per call; any scratch is either passed in or a
 *    bounded _Thread_local buffer inside the kernel file.
 *  - Backward kernels ACCUMULATE (+=) into parameter gradients and into the
 *    activation gradients named "accumulates" below; others write (=).
 */
#ifndef NU_SIMD_KERNELS_H
#define NU_SIMD_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef enum nu_isa {
    NU_ISA_SCALAR = 0,
    NU_ISA_AVX2 = 1,
    NU_ISA_AVX512 = 2,
    NU_ISA_NEON = 3,
    NU_ISA_COUNT = 4
} nu_isa;

/* Row ids to leave out of one query's top-K (unsorted, duplicates allowed). */
typedef struct nu_id_list {
    const uint32_t *ids;
    size_t count;
} nu_id_list;

/* Sentinel for an unfilled top-K slot (fewer eligible rows than K). */
#define NU_TOPK_NONE UINT32_MAX

/* A row and its score.  Best first means a higher score, then a lower id;
 * ids are unique within one query's candidates, so the order is total. */
typedef struct nu_topk_pair {
    float score;
    uint32_t id;
} nu_topk_pair;
/* Moves the best k of e[0..n) to e[0..k) (unordered), the k-th best to
 * e[k - 1], in linear time (0 < k <= n). */
void nu_topk_select_best(nu_topk_pair *e, size_t n, size_t k);
/* Sorts e[0..n) best first. */
void nu_topk_sort_best_first(nu_topk_pair *e, size_t n);

typedef struct nu_kernel_table nu_kernel_table;

struct nu_kernel_table {
    nu_isa isa;
    const char *name; /* "scalar", "avx2", "avx512", "neon" */

    /* Returns the name of the ISA whose code actually runs: defined in that
     * ISA's own file (compiled with its flags), so a test can check that the
     * dispatched table is really the one it claims to be. */
    const char *(*whoami)(void);

    /* ---- reference loops for the roofline (group "peak") ---- */
    /* Runs `iters` rounds of independent FMA chains; returns a checksum so the
     * work cannot be optimised away.  FLOPs done = iters * peak_fma_flops_per_iter. */
    float (*peak_fma)(size_t iters);
    size_t peak_fma_flops_per_iter;
    /* Streams n floats from x and returns their sum (read bandwidth probe). */
    float (*stream_sum)(size_t n, const float *x);

    /* ---- matmul (group "matmul") ----
     * matmul_nn: C[M x N] (=|+=) A[M x K] . B[K x N] (+ bias[N] per row)
     * matmul_nt: C[M x N] (=|+=) A[M x K] . B[N x K]^T (+ bias[N])
     * matmul_tn: C[M x N] (=|+=) A[K x M]^T . B[K x N] (+ bias[N])
     * accumulate != 0: C += product (+ bias); else C = product (+ bias).
     * bias may be NULL.  K == 0 gives C = bias (or 0), C += bias when accumulating. */
    void (*matmul_nn)(size_t M, size_t N, size_t K, const float *A, size_t lda,
                      const float *B, size_t ldb, const float *bias, float *C,
                      size_t ldc, int accumulate);
    void (*matmul_nt)(size_t M, size_t N, size_t K, const float *A, size_t lda,
                      const float *B, size_t ldb, const float *bias, float *C,
                      size_t ldc, int accumulate);
    void (*matmul_tn)(size_t M, size_t N, size_t K, const float *A, size_t lda,
                      const float *B, size_t ldb, const float *bias, float *C,
                      size_t ldc, int accumulate);

    /* ---- matmul with bf16 weights packed once (group "matmul_bf16") ----
     * C[M x N] (=|+=) bf16(A)[M x K] . bf16(B)[K x N] (+ bias[N] per row),
     * B given packed by nu_bf16_pack_b (kernels/bf16_pack.h).  Each element
     * of A is rounded to bf16 (nearest even, denormals to zero) on the way
     * in; the products are exact in fp32 and summed in fp32.  accumulate,
     * bias and K == 0 as matmul_nn.  Rows are invariant as in matmul_nn:
     * output row i depends only on row i of A (and B, bias, old C, K, N).
     * matmul_bf16_native is 1 when the entry runs on bf16 dot-product
     * hardware (AVX512_BF16); otherwise the entry is the scalar reference,
     * far slower than the fp32 matmul_nn, and callers should keep fp32. */
    void (*matmul_bf16)(size_t M, size_t N, size_t K, const float *A, size_t lda,
                        const uint16_t *Bp, const float *bias, float *C, size_t ldc,
                        int accumulate);
    int matmul_bf16_native;
    /* C = GELU(bf16(A) . bf16(B) + bias) (writes): matmul_bf16 (accumulate
     * 0) then the same table's gelu_fwd, bit for bit, where native (the
     * scalar gelu_fwd elsewhere), with the GELU applied in registers as in
     * matmul_f32p_gelu. */
    void (*matmul_bf16_gelu)(size_t M, size_t N, size_t K, const float *A, size_t lda,
                             const uint16_t *Bp, const float *bias, float *C, size_t ldc);

    /* ---- matmul with fp32 weights packed once (group "matmul_f32p") ----
     * C[M x N] (=|+=) A[M x K] . B[K x N] (+ bias[N] per row), B given
     * packed by nu_f32_pack_b (kernels/f32_pack.h), so no call packs B.
     * Where native, every output element has the bits the same table's
     * matmul_nn gives on the unpacked B (same start value, same k order),
     * so a model's answers do not change when its weights are packed; the
     * reference has the scalar matmul_nn's bits.  accumulate, bias
     * and K == 0 as matmul_nn.  matmul_f32p_native is 1 when the entry is a
     * vector kernel; otherwise it is the scalar reference, slower than
     * matmul_nn, and callers should keep matmul_nn. */
    void (*matmul_f32p)(size_t M, size_t N, size_t K, const float *A, size_t lda,
                        const float *Bp, const float *bias, float *C, size_t ldc,
                        int accumulate);
    int matmul_f32p_native;
    /* C[M x N] = GELU(A . B + bias), B packed as for matmul_f32p (writes; no
     * accumulate): the FFN's first layer with its activation applied while
     * the tile is in registers instead of in a second pass over C.  Bits:
     * matmul_f32p (accumulate 0) then the same table's gelu_fwd where
     * matmul_f32p_native, the scalar ones elsewhere. */
    void (*matmul_f32p_gelu)(size_t M, size_t N, size_t K, const float *A, size_t lda,
                             const float *Bp, const float *bias, float *C, size_t ldc);

    /* ---- layernorm and L2 normalisation (group "layernorm") ---- */
    /* y = (x - mean) * rstd * gamma + beta per row of width d (population
     * variance, rstd = 1/sqrt(var + eps)).  mean/rstd (rows floats each) may
     * be NULL; when given they are written for the backward pass.  y may alias
     * x (same pointer and stride).  gamma/beta are never NULL.  d == 0 leaves
     * every output untouched. */
    void (*layernorm_fwd)(size_t rows, size_t d, const float *x, size_t ldx,
                          const float *gamma, const float *beta, float eps, float *y,
                          size_t ldy, float *mean, float *rstd);
    /* dx accumulates (+=), dgamma/dbeta accumulate (+=); mean/rstd from the forward. */
    void (*layernorm_bwd)(size_t rows, size_t d, const float *x, size_t ldx,
                          const float *gamma, const float *mean, const float *rstd,
                          const float *dy, size_t lddy, float *dx, size_t lddx,
                          float *dgamma, float *dbeta);
    /* y = x / max(||x||, eps) per row; norm (rows floats, may be NULL) gets ||x||. y may alias x. */
    void (*l2norm_fwd)(size_t rows, size_t d, const float *x, size_t ldx, float eps,
                       float *y, size_t ldy, float *norm);
    /* Given y = x / max(||x||, eps), norm = ||x|| from the forward: dx accumulates
     * (+=) (dy - y (y.dy)) / ||x|| where ||x|| > eps, else dy / eps. */
    void (*l2norm_bwd)(size_t rows, size_t d, const float *y, size_t ldy,
                       const float *norm, float eps, const float *dy, size_t lddy,
                       float *dx, size_t lddx);

    /* ---- activations (group "activation") ---- */
    /* Exact GELU: y = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).  y may alias x. */
    void (*gelu_fwd)(size_t n, const float *x, float *y);
    /* dx = dy * GELU'(x)  (writes; dx may alias dy). */
    void (*gelu_bwd)(size_t n, const float *x, const float *dy, float *dx);

    /* ---- elementwise ops and row sums/dots (group "vector") ---- */
    /* y[i] += alpha * x[i]  (residual adds, gradient sums). */
    void (*axpy)(size_t n, float alpha, const float *x, float *y);
    /* x[r][c] += bias[c] for every row. */
    void (*add_bias_rows)(size_t rows, size_t n, float *x, size_t ldx, const float *bias);
    /* dbias[c] += sum_r dy[r][c]  (bias gradient). */
    void (*sum_rows)(size_t rows, size_t n, const float *dy, size_t lddy, float *dbias);
    /* Dot products of one vector with each of `rows` rows: out[r] = x . T[r]. */
    void (*dot_rows)(size_t rows, size_t d, const float *x, const float *T, size_t ldt,
                     float *out);

    /* ---- softmax pieces and the loss (group "loss") ---- */
    /* Returns log(sum exp x[i]) computed stably (max-shifted); -inf for n == 0
     * or all -inf; +inf if any +inf; NaN if any NaN. */
    float (*logsumexp)(size_t n, const float *x);
    /* y[i] = exp(x[i] - shift)  (softmax numerator; shift = logsumexp gives softmax). y may alias x. */
    void (*exp_shift)(size_t n, const float *x, float shift, float *y);
    /* Sigmoid cross-entropy summed over i, labels in [0,1]:
     * loss = sum max(x,0) - x*l + log1p(exp(-|x|)), accumulated in double.
     * dlogits (may be NULL) is written: sigmoid(x) - l. */
    double (*sigmoid_xent)(size_t n, const float *logits, const float *labels,
                           float *dlogits);

    /* ---- masked multi-head attention for one item (group "attention") ----
     * Q: Tq x (heads*dh), K, V: Tk x (heads*dh); head h uses columns
     * [h*dh, (h+1)*dh).  Query row i sees keys [key_begin[i], key_end[i]);
     * key_begin/key_end NULL means every query sees every key.  An empty range
     * gives an output row of zeros and lse = -INFINITY (key_end > Tk is
     * clamped to Tk; key_begin >= key_end is empty).
     * S = scale * Q K^T, P = softmax over the visible keys, O = P V.
     * lse (Tq x heads, [i*heads + h], may be NULL) saves logsumexp of S rows
     * for the backward.  scratch: at least 2*Tk floats. */
    void (*attention_fwd)(size_t Tq, size_t Tk, size_t heads, size_t dh, const float *Q,
                          size_t ldq, const float *K, size_t ldk, const float *V,
                          size_t ldv, const uint32_t *key_begin,
                          const uint32_t *key_end, float scale, float *O, size_t ldo,
                          float *lse, float *scratch);
    /* attention_fwd's contract and tolerance, for the generator: where
     * dh == 16 and there are many queries, a faster order (16 queries in
     * vector lanes, no reductions across lanes), so its bits may differ from
     * attention_fwd's; elsewhere, or on an ISA without such a path, it is
     * attention_fwd itself. */
    void (*attention_fwd16)(size_t Tq, size_t Tk, size_t heads, size_t dh, const float *Q,
                            size_t ldq, const float *K, size_t ldk, const float *V,
                            size_t ldv, const uint32_t *key_begin,
                            const uint32_t *key_end, float scale, float *O, size_t ldo,
                            float *lse, float *scratch);
    /* Given dO, O and lse (non-NULL) from the forward: dQ, dK, dV accumulate (+=).
     * scratch: at least 2*Tk floats. */
    void (*attention_bwd)(size_t Tq, size_t Tk, size_t heads, size_t dh, const float *Q,
                          size_t ldq, const float *K, size_t ldk, const float *V,
                          size_t ldv, const uint32_t *key_begin,
                          const uint32_t *key_end, float scale, const float *O,
                          size_t ldo, const float *lse, const float *dO, size_t lddo,
                          float *dQ, size_t lddq, float *dK, size_t lddk, float *dV,
                          size_t lddv, float *scratch);

    /* ---- fused dot-product scoring + top-K (group "score") ----
     * For each of B queries Q[b] (d floats), scores every row r of T (N rows
     * of d floats, stride ldt) as Q[b] . T[r] and keeps the K best, never
     * materialising the B x N score matrix.  Row r is reported as id
     * row_base + r.  exclude (NULL, or B lists of global ids) removes rows.
     * NaN scores are never selected; -inf scores are eligible (after every
     * finite score).  Ids must stay below NU_TOPK_NONE (row_base + N does not
     * wrap).  Output per query b: top_ids[b*K ..],
     * top_scores[b*K ..] sorted by descending score, ties by lower id; slots
     * past the eligible rows get NU_TOPK_NONE and -INFINITY.  K <= 1000. */
    void (*score_topk)(size_t B, size_t N, size_t d, const float *Q, size_t ldq,
                       const float *T, size_t ldt, uint32_t row_base, size_t K,
                       const nu_id_list *exclude, uint32_t *top_ids, float *top_scores);

    /* ---- compressed user tables (group "score_lowp") ----
     * Same top-K rules as score_topk (ordering, ties, exclusions, NaN,
     * padding), on tables stored in fewer bytes.  They give approximate
     * scores: the caller re-ranks a larger candidate pool in exact fp32.
     *
     * score_topk_bf16: T holds bf16 values (the upper 16 bits of an fp32),
     * rows of d, stride ldt elements.  score ~= Q[b] . widen(T[r]); an ISA
     * may also round the query to bf16 (AVX512_BF16 dot products), so
     * scores may differ from the fp32 dot product of the widened row by the
     * rounding of the query (relative ~2^-8 per term).
     *
     * score_topk_i8: T holds int8 rows with per-row scale: the row
     * approximates row_scale[r] * T[r].  The caller quantises each query to
     * Q8[b] (int8 in [-127, 127]) with scale qscale[b].  row_sum[r] =
     * sum_k T[r][k] (lets u8 x s8 dot products run on Q8 + 128).  The score
     * is EXACTLY, on every ISA: ((float)dot_i32(Q8[b], T[r]) * row_scale[r])
     * * qscale[b], so every ISA returns the same top-K bit for bit.
     * d <= 4096 (no int32 overflow). */
    void (*score_topk_bf16)(size_t B, size_t N, size_t d, const float *Q, size_t ldq,
                            const uint16_t *T, size_t ldt, uint32_t row_base, size_t K,
                            const nu_id_list *exclude, uint32_t *top_ids, float *top_scores);
    void (*score_topk_i8)(size_t B, size_t N, size_t d, const int8_t *Q8, size_t ldq,
                          const float *qscale, const int8_t *T, size_t ldt,
                          const float *row_scale, const int32_t *row_sum, uint32_t row_base,
                          size_t K, const nu_id_list *exclude, uint32_t *top_ids,
                          float *top_scores);
};

/* Per-ISA fill functions.  nu_fill_<group>_<isa> overrides the table entries
 * of one kernel group; the scalar ones fill every entry. */
#define NU_DECLARE_FILLS(isa)                                   \
    void nu_fill_peak_##isa(nu_kernel_table *t);                \
    void nu_fill_matmul_##isa(nu_kernel_table *t);              \
    void nu_fill_layernorm_##isa(nu_kernel_table *t);           \
    void nu_fill_activation_##isa(nu_kernel_table *t);          \
    void nu_fill_vector_##isa(nu_kernel_table *t);              \
    void nu_fill_loss_##isa(nu_kernel_table *t);                \
    void nu_fill_attention_##isa(nu_kernel_table *t);           \
    void nu_fill_score_##isa(nu_kernel_table *t);               \
    void nu_fill_score_lowp_##isa(nu_kernel_table *t);          \
    const char *nu_whoami_##isa(void);
NU_DECLARE_FILLS(scalar)
NU_DECLARE_FILLS(avx2)
NU_DECLARE_FILLS(avx512)
NU_DECLARE_FILLS(neon)

/* Group "matmul_bf16": the reference, and the AVX512_BF16 kernel (left as
 * the reference when the CPU lacks AVX512_BF16). */
void nu_fill_matmul_bf16_scalar(nu_kernel_table *t);
void nu_fill_matmul_bf16_avx512(nu_kernel_table *t);
/* Group "matmul_f32p": the reference, and the AVX-512 kernel. */
void nu_fill_matmul_f32p_scalar(nu_kernel_table *t);
void nu_fill_matmul_f32p_avx512(nu_kernel_table *t);

/* Builds the table of one ISA into *t (scalar entries overridden by the ISA's
 * own).  Defined in kernels/<isa>/table_<isa>.c. */
void nu_build_table_scalar(nu_kernel_table *t);
void nu_build_table_avx2(nu_kernel_table *t);
void nu_build_table_avx512(nu_kernel_table *t);
void nu_build_table_neon(nu_kernel_table *t);

#endif
