/* The bf16 packed weight layout (bf16_pack.h): portable packing, done once
 * per weight when an engine is made, so it need not be fast. */
#include "bf16_pack.h"

#include <string.h>

uint16_t nu_bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu))
        return (uint16_t)((u >> 16) | 0x0040u); /* NaN: keep it quiet */
    if ((u & 0x7F800000u) == 0)
        return (uint16_t)((u >> 16) & 0x8000u); /* zero or denormal: signed zero */
    u += 0x7FFFu + ((u >> 16) & 1u);           /* round half to even */
    return (uint16_t)(u >> 16);
}

float nu_bf16_widen(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

size_t nu_bf16_packed_elems(size_t K, size_t N)
{
    size_t panels = (N + NU_BF16_PANEL - 1) / NU_BF16_PANEL, k2 = (K + 1) / 2;
    return panels * k2 * 2 * NU_BF16_PANEL;
}

void nu_bf16_pack_b(size_t K, size_t N, const float *B, size_t ldb, uint16_t *out)
{
    const size_t k2 = (K + 1) / 2, panels = (N + NU_BF16_PANEL - 1) / NU_BF16_PANEL;
    for (size_t p = 0; p < panels; p++)
        for (size_t kp = 0; kp < k2; kp++) {
            uint16_t *row = out + (p * k2 + kp) * 2 * NU_BF16_PANEL;
            for (size_t j = 0; j < NU_BF16_PANEL; j++)
                for (size_t h = 0; h < 2; h++) {
                    const size_t k = 2 * kp + h, col = p * NU_BF16_PANEL + j;
                    row[2 * j + h] = k < K && col < N ? nu_bf16_round(B[k * ldb + col]) : 0;
                }
        }
}
