/* Shared helpers for the kernel tests: deterministic random data, buffers
 * with deliberately unaligned starts and guard zones, tolerant comparison,
 * and the loop over every ISA this host runs. */
#ifndef NU_KERNEL_TEST_UTIL_H
#define NU_KERNEL_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "dispatch.h"

/* splitmix64: same sequence on every platform. */
typedef struct nu_rng { uint64_t s; } nu_rng;
uint64_t nu_rng_next(nu_rng *r);
float nu_rng_uniform(nu_rng *r, float lo, float hi); /* [lo, hi) */
size_t nu_rng_range(nu_rng *r, size_t lo, size_t hi); /* [lo, hi] inclusive */
void nu_rng_fill(nu_rng *r, float *x, size_t n, float lo, float hi);

/* A float buffer whose data pointer is offset by `misalign` floats from a
 * 64-byte boundary, with guard floats before and after that must stay
 * untouched (checked by nu_buf_guard_ok). */
typedef struct nu_buf {
    float *data;
    size_t n;
    void *raw;
    size_t misalign;
} nu_buf;
nu_buf nu_buf_new(size_t n, size_t misalign);
int nu_buf_guard_ok(const nu_buf *b); /* 1 when guards are intact */
void nu_buf_free(nu_buf *b);

/* Failure bookkeeping: every check counts one pass or one fail. */
extern long nu_test_passed, nu_test_failed;
void nu_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define NU_CHECK(cond, ...)                                    \
    do {                                                       \
        if (cond)                                              \
            nu_test_passed++;                                  \
        else                                                   \
            nu_test_fail(__FILE__, __LINE__, __VA_ARGS__);     \
    } while (0)

/* Compares got to want elementwise: |got - want| <= atol + rtol * |want|
 * (NaN equals only NaN; infinities must match).  Reports the first few
 * mismatches with `what`; returns 1 when all match.  Counts one check. */
int nu_check_close(const char *what, const float *got, const float *want, size_t n,
                   float atol, float rtol);

/* Iterates over ISAs: sets *t to each table this host runs, scalar first,
 * and prints a SKIP line for each ISA it cannot run (or not compiled). */
#define NU_FOR_EACH_ISA(t)                                     \
    for (int nu_isa_i_ = 0; nu_isa_i_ < NU_ISA_COUNT; nu_isa_i_++) \
        if (((t) = nu_test_isa_table(nu_isa_i_)) != NULL)
const nu_kernel_table *nu_test_isa_table(int isa);

/* Writes `text` to DIR/NAME (the small files tests build data directories
 * from); exits with 2 when it cannot, since the test could not go on. */
void nu_test_put(const char *dir, const char *name, const char *text);

/* Prints "N passed, N failed" and returns the process exit code. */
int nu_test_finish(const char *suite);

#endif
