/* %.9g of a float by exact integer arithmetic (float_text.h).
 *
 * A float is m * 2^e exactly (m < 2^24).  For the values scores take
 * (1e-19 <= |v| < 2^24, normal), m * 10^p fits 128 bits for the p = 8 - X
 * that brings the nine digits before the point (X the decimal exponent), so
 * the digits and the round-half-even of printf come from one multiply and
 * one shift.  Anything else (subnormals, huge values, Inf/NaN) goes to
 * snprintf, which is exact everywhere. */
#include "util/float_text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef unsigned __int128 u128;

static size_t slow(float v, char *out)
{
    int n = snprintf(out, NU_FLOAT_TEXT_MAX, "%.9g", (double)v);
    return n > 0 ? (size_t)n : 0;
}

static const uint64_t POW10[20] = {1ull,
                                   10ull,
                                   100ull,
                                   1000ull,
                                   10000ull,
                                   100000ull,
                                   1000000ull,
                                   10000000ull,
                                   100000000ull,
                                   1000000000ull,
                                   10000000000ull,
                                   100000000000ull,
                                   1000000000000ull,
                                   10000000000000ull,
                                   100000000000000ull,
                                   1000000000000000ull,
                                   10000000000000000ull,
                                   100000000000000000ull,
                                   1000000000000000000ull,
                                   10000000000000000000ull};

/* m * 10^p for p <= 27 (fits: m < 2^24, 10^27 < 2^90). */
static u128 times_pow10(uint32_t m, int p)
{
    u128 n = (u128)m * POW10[p < 19 ? p : 19];
    return p > 19 ? n * POW10[p - 19] : n;
}

/* The nine significant digits of m * 2^-s rounded half to even, and the
 * decimal exponent X of the rounded value; 0 when outside the fast range. */
static int nine_digits(uint32_t m, int s, uint32_t *digits, int *exp10)
{
    /* floor(log10(2^(23 - s))) or one below the true exponent: the loop
     * corrects it (78913 / 2^18 ~ log10(2), floor division for negatives). */
    int e2 = 23 - s;
    int X = e2 >= 0 ? (e2 * 78913) >> 18 : -((-e2 * 78913 + (1 << 18) - 1) >> 18);
    for (int tries = 0; tries < 3; tries++) {
        int p = 8 - X;
        if (p < 0 || p > 27)
            return 0;
        u128 n = times_pow10(m, p);
        u128 q = n >> s, rem = n - (q << s);
        if (q < 100000000u) {
            X--;
            continue;
        }
        if (q >= 1000000000u) {
            X++;
            continue;
        }
        if (s > 0) {
            u128 half = (u128)1 << (s - 1);
            if (rem > half || (rem == half && (q & 1)))
                q++;
        }
        if (q == 1000000000u) {
            q = 100000000u;
            X++;
        }
        *digits = (uint32_t)q;
        *exp10 = X;
        return 1;
    }
    return 0;
}

size_t nu_float_text9(float v, char out[NU_FLOAT_TEXT_MAX])
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    int neg = (int)(bits >> 31), E = (int)((bits >> 23) & 0xff);
    uint32_t frac = bits & 0x7fffffu;
    if (E == 0 && frac == 0) {
        memcpy(out, neg ? "-0" : "0", neg ? 3 : 2);
        return (size_t)(neg ? 2 : 1);
    }
    if (E == 0 || E == 0xff)
        return slow(v, out);
    int s = 150 - E; /* |v| = m * 2^-s */
    if (s < 0 || s > 120)
        return slow(v, out);
    uint32_t q;
    int X;
    if (!nine_digits(frac | 0x800000u, s, &q, &X))
        return slow(v, out);
    char d[9];
    for (int i = 8; i >= 0; i--, q /= 10)
        d[i] = (char)('0' + q % 10);
    int nd = 9; /* significant digits left once trailing zeros go (%g) */
    while (nd > 1 && d[nd - 1] == '0')
        nd--;
    size_t n = 0;
    if (neg)
        out[n++] = '-';
    if (X < -4 || X >= 9) {
        out[n++] = d[0];
        if (nd > 1) {
            out[n++] = '.';
            memcpy(out + n, d + 1, (size_t)nd - 1);
            n += (size_t)nd - 1;
        }
        int ax = X < 0 ? -X : X;
        out[n++] = 'e';
        out[n++] = X < 0 ? '-' : '+';
        if (ax >= 100)
            out[n++] = (char)('0' + ax / 100);
        out[n++] = (char)('0' + ax / 10 % 10);
        out[n++] = (char)('0' + ax % 10);
    } else if (X >= 0) {
        memcpy(out + n, d, (size_t)X + 1);
        n += (size_t)X + 1;
        if (nd > X + 1) {
            out[n++] = '.';
            memcpy(out + n, d + X + 1, (size_t)(nd - X - 1));
            n += (size_t)(nd - X - 1);
        }
    } else {
        out[n++] = '0';
        out[n++] = '.';
        for (int z = 0; z < -X - 1; z++)
            out[n++] = '0';
        memcpy(out + n, d, (size_t)nd);
        n += (size_t)nd;
    }
    out[n] = 0;
    return n;
}
