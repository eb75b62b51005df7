/* The shared blocking loop of the packed matmul kernels; see gemm_drive.h. */
#include "gemm_drive.h"

/* Per-thread packing buffers, sized for the largest blocking of any ISA. */
static _Thread_local _Alignas(64) float b_pack[NU_GEMM_KC_MAX * NU_GEMM_NC_MAX];
static _Thread_local _Alignas(64) float a_pack[NU_GEMM_KC_MAX * NU_GEMM_MR_MAX + 16];

static inline size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

void nu_gemm_drive(const nu_gemm_isa *isa, size_t M, size_t N, size_t K, nu_gemm_view A,
                   nu_gemm_view B, const float *bias, float *C, size_t ldc, int accumulate)
{
    if (M == 0 || N == 0)
        return;
    if (K == 0) {
        isa->fill_bias(M, N, bias, C, ldc, accumulate);
        return;
    }
    if (M <= 2 && B.cs == 1) {
        isa->rows(M, N, K, A, B.p, B.rs, bias, C, ldc, accumulate);
        return;
    }
    const size_t MR = isa->mr, NR = isa->nr, KC = isa->kc, NC = isa->nc;
    float *bp_base = b_pack, *ap = a_pack;
    /* Up to two row panels, packing B costs more than reading it in place
     * twice (measured with K = 256, N = 1024 and K = N = 128). */
    const int in_place = isa->in_place && M <= 2 * MR && B.cs == 1;
    /* A read in place: always for tn (each k's MR elements are adjacent,
     * packing would only copy them); for nn / nt's rows when K is small or
     * A small (measured on Zen 5: with long rows of a large A, 8 row
     * streams ran slower than the packed panel). */
    const int direct = !in_place && isa->direct &&
                       (A.rs == 1 || (A.cs == 1 && (K <= 128 || M * K <= 65536)));
    for (size_t jc = 0; jc < N; jc += NC) {
        const size_t nc = min_sz(NC, N - jc);
        for (size_t pc = 0; pc < K; pc += KC) {
            const size_t kc = min_sz(KC, K - pc);
            /* Bias and the caller's accumulate flag set the start of the
             * first K block only; later blocks continue the FMA chain from
             * what the previous one stored in C. */
            const float *bias_c = pc == 0 && bias ? bias + jc : NULL;
            const int load_c = pc == 0 ? accumulate : 1;
            const float *b_src = B.p + pc * B.rs + jc * B.cs;
            if (!in_place)
                isa->pack_b(bp_base, (nu_gemm_view){b_src, B.rs, B.cs}, kc, nc);
            for (size_t ic = 0; ic < M; ic += MR) {
                const size_t mr = min_sz(MR, M - ic);
                if (direct) {
                    const float *a = A.p + ic * A.rs + pc * A.cs;
                    for (size_t jr = 0; jr < nc; jr += NR)
                        isa->direct[mr](kc, a, A.rs, A.cs, bp_base + jr * kc, min_sz(NR, nc - jr),
                                        C + ic * ldc + jc + jr, ldc, bias_c ? bias_c + jr : NULL,
                                        load_c);
                    continue;
                }
                isa->pack_a(ap, (nu_gemm_view){A.p + ic * A.rs + pc * A.cs, A.rs, A.cs}, mr, kc);
                const nu_gemm_micro_fn kern = in_place ? isa->in_place[mr] : isa->packed[mr];
                for (size_t jr = 0; jr < nc; jr += NR) {
                    const size_t nr = min_sz(NR, nc - jr);
                    const float *bp = in_place ? b_src + jr : bp_base + jr * kc;
                    kern(kc, ap, bp, in_place ? B.rs : NR, nr, C + ic * ldc + jc + jr, ldc,
                         bias_c ? bias_c + jr : NULL, load_c);
                }
            }
        }
    }
}
