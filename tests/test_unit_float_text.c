/* nu_float_text9 (label model): the text of a float must be exactly
 * printf("%.9g", (double)v)'s, since the service's answers are compared with
 * the CLI's bit for bit and read back into the same float.  Checked on
 * random bit patterns over every exponent, on the magnitudes scores take,
 * at the rounding boundaries of nine digits (half-way cases round to even),
 * and on the special values. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/float_text.h"

static long failures;

static void check(float v)
{
    char want[64], got[NU_FLOAT_TEXT_MAX + 8];
    memset(got, 'x', sizeof got);
    int n = snprintf(want, sizeof want, "%.9g", (double)v);
    size_t len = nu_float_text9(v, got);
    if (strcmp(want, got) != 0 || len != (size_t)n) {
        uint32_t b;
        memcpy(&b, &v, sizeof b);
        if (failures < 20)
            fprintf(stderr, "FAIL bits %08x: printf \"%s\", nu_float_text9 \"%s\" (len %zu)\n", b,
                    want, got, len);
        failures++;
    }
}

static float from_bits(uint32_t b)
{
    float v;
    memcpy(&v, &b, sizeof v);
    return v;
}

int main(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    long n = 0;
    for (long i = 0; i < 3000000; i++, n++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint32_t b = (uint32_t)x;
        if (i & 1) /* half of them at score-like magnitudes, 2^-27 .. 2^32 */
            b = (b & 0x807fffffu) | ((uint32_t)(100 + (x >> 40) % 60) << 23);
        check(from_bits(b));
    }
    /* Near every power of ten and at nine-digit boundaries: the neighbours of
     * d.dddddddd5 * 10^X, where rounding half to even decides. */
    for (int X = -30; X <= 30; X++)
        for (int j = 0; j < 200; j++, n += 5) {
            double t = (1.0 + j * 0.0449999995) * pow(10.0, X);
            float f = (float)t;
            check(f);
            check(nextafterf(f, INFINITY));
            check(nextafterf(f, -INFINITY));
            check(-f);
            check((float)pow(10.0, X));
        }
    /* Exact halves: small integers + 0.5 scaled so the tenth digit is a 5. */
    for (uint32_t k = 100000000u; k < 100000000u + 4096u; k++, n += 2) {
        check((float)k + 0.5f);
        check(((float)k + 0.5f) / 1024.0f);
    }
    const float specials[] = {0.0f,     -0.0f,     1.0f,      -1.0f,    INFINITY,
                              -INFINITY, NAN,      1e-45f,    1e-38f,   3.4028235e38f,
                              16777216.f, 16777215.f, 123456789.f, 1e9f,  0.0001f,
                              0.00001f,  999999999.f, 9.99999999e-5f};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++, n++)
        check(specials[i]);
    printf("float_text: %ld values, %ld differ from printf\n", n, failures);
    return failures != 0;
}
