#include "kernel_test_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long nu_test_passed, nu_test_failed;

uint64_t nu_rng_next(nu_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float nu_rng_uniform(nu_rng *r, float lo, float hi)
{
    double u = (double)(nu_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(lo + (hi - lo) * u);
}

size_t nu_rng_range(nu_rng *r, size_t lo, size_t hi)
{
    return lo + (size_t)(nu_rng_next(r) % (uint64_t)(hi - lo + 1));
}

void nu_rng_fill(nu_rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = nu_rng_uniform(r, lo, hi);
}

#define GUARD 16
static const float guard_value = -12345.678f;

nu_buf nu_buf_new(size_t n, size_t misalign)
{
    nu_buf b = {0};
    size_t total = GUARD + misalign + n + GUARD + 16;
    b.raw = aligned_alloc(64, ((total * sizeof(float)) + 63) / 64 * 64);
    if (!b.raw) {
        fprintf(stderr, "out of memory for %zu floats\n", n);
        exit(2);
    }
    float *base = (float *)b.raw;
    for (size_t i = 0; i < total; i++)
        base[i] = guard_value;
    b.data = base + GUARD + misalign;
    b.n = n;
    b.misalign = misalign;
    for (size_t i = 0; i < n; i++)
        b.data[i] = 0.0f;
    return b;
}

int nu_buf_guard_ok(const nu_buf *b)
{
    const float *base = (const float *)b->raw;
    for (size_t i = 0; i < GUARD + b->misalign; i++)
        if (base[i] != guard_value)
            return 0;
    for (size_t i = 0; i < GUARD; i++)
        if (b->data[b->n + i] != guard_value)
            return 0;
    return 1;
}

void nu_buf_free(nu_buf *b)
{
    free(b->raw);
    memset(b, 0, sizeof *b);
}

void nu_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    nu_test_failed++;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int nu_check_close(const char *what, const float *got, const float *want, size_t n,
                   float atol, float rtol)
{
    size_t bad = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        float g = got[i], w = want[i];
        int ok;
        if (isnan(w) || isnan(g))
            ok = isnan(w) && isnan(g);
        else if (isinf(w) || isinf(g))
            ok = g == w;
        else
            ok = fabsf(g - w) <= atol + rtol * fabsf(w);
        if (!ok) {
            if (bad < 5)
                fprintf(stderr, "  %s[%zu]: got %.9g want %.9g (diff %.3g)\n", what, i,
                        (double)g, (double)w, (double)fabsf(g - w));
            bad++;
        } else if (!isnan(w) && !isinf(w)) {
            double d = fabs((double)g - w);
            if (d > worst)
                worst = d;
        }
    }
    NU_CHECK(bad == 0, "%s: %zu of %zu values differ beyond atol %g rtol %g", what, bad,
             n, (double)atol, (double)rtol);
    return bad == 0;
}

const nu_kernel_table *nu_test_isa_table(int isa)
{
    const nu_kernel_table *t = nu_kernels_for((nu_isa)isa);
    static int reported[NU_ISA_COUNT];
    if (!t && !reported[isa]) {
        printf("SKIP isa %s: this host or build cannot run it\n", nu_isa_name((nu_isa)isa));
        reported[isa] = 1;
    }
    if (t && !reported[isa]) {
        printf("isa %s: testing (table reports %s)\n", t->name, t->whoami());
        reported[isa] = 1;
    }
    return t;
}

int nu_test_finish(const char *suite)
{
    printf("%s: %ld passed, %ld failed\n", suite, nu_test_passed, nu_test_failed);
    return nu_test_failed ? 1 : 0;
}

void nu_test_put(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) == EOF) {
        perror(path);
        exit(2);
    }
    fclose(f);
}
