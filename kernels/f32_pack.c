/* The fp32 packed weight layout (f32_pack.h): portable packing, done once
 * per weight when an engine is made (or once per loss call for the shared
 * negatives), so it need not be fast. */
#include "f32_pack.h"

size_t nu_f32_packed_elems(size_t K, size_t N)
{
    return (N + NU_F32_PANEL - 1) / NU_F32_PANEL * NU_F32_PANEL * K;
}

/* B(k, col) at B[k * rs + col * cs]. */
static void pack(size_t K, size_t N, const float *B, size_t rs, size_t cs, float *out)
{
    const size_t panels = (N + NU_F32_PANEL - 1) / NU_F32_PANEL;
    for (size_t p = 0; p < panels; p++)
        for (size_t k = 0; k < K; k++) {
            float *row = out + (p * K + k) * NU_F32_PANEL;
            for (size_t j = 0; j < NU_F32_PANEL; j++) {
                const size_t col = p * NU_F32_PANEL + j;
                row[j] = col < N ? B[k * rs + col * cs] : 0.0f;
            }
        }
}

void nu_f32_pack_b(size_t K, size_t N, const float *B, size_t ldb, float *out)
{
    pack(K, N, B, ldb, 1, out);
}

void nu_f32_pack_bt(size_t K, size_t N, const float *Bt, size_t ldbt, float *out)
{
    pack(K, N, Bt, 1, ldbt, out);
}
