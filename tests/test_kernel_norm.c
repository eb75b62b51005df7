/* Tests of the kernel groups "layernorm" (layernorm, L2 normalisation),
 * "activation" (GELU), "vector" (axpy, bias add/sum, dot_rows) and "loss"
 * (logsumexp, exp_shift, sigmoid cross-entropy).  One file, as before the
 * groups were split: the checks share their buffers, helpers and one random
 * stream, and several (zero sizes, elementwise) cover kernels of two groups.
 *
 * 1. The scalar reference against naive double-precision code written here.
 * 2. Every ISA the host runs against the scalar table on odd sizes, unaligned
 *    starts (0..3 floats), row strides above the width, and zero sizes.
 *    Padding between rows and guard zones must stay untouched.
 * 3. Backward kernels of every ISA against central finite differences of a
 *    double-precision forward written here; "+=" outputs are pre-filled with
 *    random values that must be accumulated into.
 * 4. Aliasing (y == x where kernels.h allows it) must give the same bits as
 *    the non-aliased call; l2norm of a zero row; logsumexp edge cases.
 *
 * Tolerances (fp32 unit roundoff u = 6e-8; data mostly in [-2, 2]):
 *  - add_bias_rows, sum_rows: exact.  Same additions in the same order.
 *  - axpy: atol 1e-6, rtol 1e-6.  FMA vs mul+add differ by <= 1 rounding of
 *    |alpha x| + |y| <= 4.
 *  - exp_shift: rtol 4e-7 (~3.4 ulp).  SLEEF u10 and glibc expf are each
 *    within 1 ulp of exp, and x - shift is the same fp32 subtraction.
 *  - gelu fwd/bwd: atol 2e-6, rtol 1e-5.  erf is within 1 ulp in both, but
 *    1 + erf(z) cancels for z << 0, leaving an absolute error of ~2 ulp(1)
 *    times 0.5 |x| <= 3.
 *  - reductions (layernorm, l2norm, dot_rows, logsumexp, sigmoid_xent): the
 *    reference sums in double, the vector kernels in fp32 with a few
 *    accumulators: error grows like (d / width) u times the sum of |terms|.
 *    Bounds per check below, each several times above the observed error.
 *  - finite differences: h = 1e-4 in double, truncation error ~h^2 f''' ~ 1e-8
 *    (relative (h / ||x||)^2 for l2norm), rounding ~1e-16 / h ~ 1e-12; the
 *    kernel's own fp32 error is ~1e-6 relative: atol 2e-5, rtol 1e-4.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_test_util.h"

static nu_rng rng = {0x6e6f726dull};

/* ---- buffers ---- */

static nu_buf rbuf(size_t n, float lo, float hi)
{
    nu_buf b = nu_buf_new(n, nu_rng_range(&rng, 0, 3));
    nu_rng_fill(&rng, b.data, n, lo, hi);
    return b;
}

static nu_buf copy_buf(const nu_buf *s)
{
    nu_buf b = nu_buf_new(s->n, nu_rng_range(&rng, 0, 3));
    if (s->n)
        memcpy(b.data, s->data, s->n * sizeof(float));
    return b;
}

/* Floats spanned by `rows` rows of width d at stride ld. */
static size_t msz(size_t rows, size_t d, size_t ld)
{
    return rows ? (rows - 1) * ld + d : 0;
}

static void guard(const char *what, const nu_buf *b)
{
    NU_CHECK(nu_buf_guard_ok(b), "%s: guard zone overwritten", what);
}

/* Checks two buffers, then both guard zones. */
static void close_bufs(const char *what, const nu_buf *got, const nu_buf *want, float atol,
                       float rtol)
{
    nu_check_close(what, got->data, want->data, got->n, atol, rtol);
    guard(what, got);
    guard(what, want);
}

static void same_bits(const char *what, const nu_buf *a, const nu_buf *b)
{
    NU_CHECK(a->n == b->n && (a->n == 0 || memcmp(a->data, b->data, a->n * sizeof(float)) == 0),
             "%s: results differ", what);
    guard(what, a);
    guard(what, b);
}

static void free_all(nu_buf *bs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        nu_buf_free(&bs[i]);
}

static const size_t widths[] = {1,  2,  3,  4,  5,  7,  8,  9,   15,  16,  17,  31,
                                32, 33, 47, 63, 64, 65, 100, 127, 128, 129, 257};
#define NW (sizeof widths / sizeof widths[0])

static const size_t lengths[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 63, 65, 127, 1000, 1025, 4099};
#define NL (sizeof lengths / sizeof lengths[0])

static char name[160];
#define NAME(...) (snprintf(name, sizeof name, __VA_ARGS__), name)

/* ---- double-precision forwards (independent of the kernels) ---- */

static void ln_row_d(size_t d, const double *x, const float *gamma, const float *beta,
                     double eps, double *y)
{
    double s = 0, v = 0;
    for (size_t c = 0; c < d; c++)
        s += x[c];
    const double m = s / (double)d;
    for (size_t c = 0; c < d; c++)
        v += (x[c] - m) * (x[c] - m);
    const double rs = 1.0 / sqrt(v / (double)d + eps);
    for (size_t c = 0; c < d; c++)
        y[c] = (x[c] - m) * rs * gamma[c] + beta[c];
}

static double gelu_d(double x)
{
    return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}

static void l2_row_d(size_t d, const double *x, double eps, double *y)
{
    double s = 0;
    for (size_t c = 0; c < d; c++)
        s += x[c] * x[c];
    double n = sqrt(s);
    if (!(n > eps))
        n = eps;
    for (size_t c = 0; c < d; c++)
        y[c] = x[c] / n;
}

static double xent_d(double x, double l)
{
    return (x > 0 ? x : 0) - x * l + log1p(exp(-fabs(x)));
}

/* ---- 1. scalar reference against double ---- */

static void ref_layernorm(const nu_kernel_table *s)
{
    const size_t rows = 5;
    double xr[300], yr[300];
    for (size_t w = 0; w < NW; w++) {
        const size_t d = widths[w], ld = d + 3;
        nu_buf x = rbuf(msz(rows, d, ld), -2, 2), g = rbuf(d, 0.5f, 1.5f), b = rbuf(d, -1, 1);
        nu_buf y = rbuf(msz(rows, d, ld), -9, 9), m = rbuf(rows, -9, 9), r = rbuf(rows, -9, 9);
        for (size_t i = 0; i < x.n; i++)
            x.data[i] += 5.0f; /* an offset: the two-pass variance must cope */
        s->layernorm_fwd(rows, d, x.data, ld, g.data, b.data, 1e-5f, y.data, ld, m.data, r.data);
        nu_buf want = copy_buf(&y);
        for (size_t i = 0; i < rows; i++) {
            for (size_t c = 0; c < d; c++)
                xr[c] = x.data[i * ld + c];
            ln_row_d(d, xr, g.data, b.data, 1e-5f, yr);
            for (size_t c = 0; c < d; c++)
                want.data[i * ld + c] = (float)yr[c];
        }
        /* Both all in double with one final rounding: at most 1 ulp apart. */
        nu_check_close(NAME("ref layernorm_fwd d=%zu", d), y.data, want.data, y.n, 1e-7f, 2.4e-7f);
        guard("ref layernorm_fwd", &y);
        nu_buf bufs[] = {x, g, b, y, m, r, want};
        free_all(bufs, 7);
    }
}

static void ref_elementwise(const nu_kernel_table *s)
{
    const size_t n = 4099;
    nu_buf x = rbuf(n, -6, 6), dy = rbuf(n, -1, 1), y = rbuf(n, 0, 1), want = rbuf(n, 0, 1);
    s->gelu_fwd(n, x.data, y.data);
    for (size_t i = 0; i < n; i++)
        want.data[i] = (float)gelu_d(x.data[i]);
    nu_check_close("ref gelu_fwd", y.data, want.data, n, 2e-6f, 1e-5f);
    s->exp_shift(n, x.data, 1.5f, y.data);
    for (size_t i = 0; i < n; i++)
        want.data[i] = (float)exp((double)(x.data[i] - 1.5f));
    nu_check_close("ref exp_shift", y.data, want.data, n, 0, 2e-7f);
    nu_buf y0 = copy_buf(&dy);
    s->axpy(n, -0.75f, x.data, dy.data);
    for (size_t i = 0; i < n; i++)
        want.data[i] = (float)((double)y0.data[i] - 0.75 * x.data[i]);
    nu_check_close("ref axpy", dy.data, want.data, n, 1e-6f, 1e-6f);
    nu_buf bufs[] = {x, dy, y, want, y0};
    for (int i = 0; i < 5; i++)
        guard("ref elementwise", &bufs[i]);
    free_all(bufs, 5);
}

static void ref_rows(const nu_kernel_table *s)
{
    const size_t rows = 7, n = 37, ld = 41;
    nu_buf x = rbuf(msz(rows, n, ld), -1, 1), bias = rbuf(n, -1, 1), acc = rbuf(n, -1, 1);
    nu_buf x0 = copy_buf(&x), acc0 = copy_buf(&acc), out = rbuf(rows, 0, 1);
    s->add_bias_rows(rows, n, x.data, ld, bias.data);
    s->sum_rows(rows, n, x0.data, ld, acc.data);
    s->dot_rows(rows, n, bias.data, x0.data, ld, out.data);
    double dot[7];
    for (size_t r = 0; r < rows; r++) {
        dot[r] = 0;
        for (size_t c = 0; c < n; c++) {
            const size_t i = r * ld + c;
            NU_CHECK(x.data[i] == x0.data[i] + bias.data[c], "ref add_bias_rows [%zu]", i);
            dot[r] += (double)bias.data[c] * x0.data[i];
        }
        NU_CHECK(fabs(out.data[r] - dot[r]) <= 1e-6, "ref dot_rows [%zu]", r);
    }
    for (size_t c = 0; c < n; c++) {
        double t = acc0.data[c];
        for (size_t r = 0; r < rows; r++)
            t += x0.data[r * ld + c];
        NU_CHECK(fabs(acc.data[c] - t) <= 1e-5, "ref sum_rows [%zu]", c);
    }
    nu_buf bufs[] = {x, bias, acc, x0, acc0, out};
    for (int i = 0; i < 6; i++)
        guard("ref rows", &bufs[i]);
    free_all(bufs, 6);
}

static void ref_l2norm(const nu_kernel_table *s)
{
    const size_t rows = 4, d = 33, ld = 35;
    nu_buf x = rbuf(msz(rows, d, ld), -1, 1), y = rbuf(x.n, 0, 1), nr = rbuf(rows, 0, 1);
    for (size_t c = 0; c < d; c++)
        x.data[2 * ld + c] = 0; /* a zero row: norm 0, y = 0 / eps = 0 */
    s->l2norm_fwd(rows, d, x.data, ld, 1e-6f, y.data, ld, nr.data);
    double xr[64], yr[64];
    for (size_t r = 0; r < rows; r++) {
        double ss = 0;
        for (size_t c = 0; c < d; c++) {
            xr[c] = x.data[r * ld + c];
            ss += xr[c] * xr[c];
        }
        NU_CHECK(fabs(nr.data[r] - sqrt(ss)) <= 2e-7 * sqrt(ss), "ref l2norm norm [%zu]", r);
        l2_row_d(d, xr, 1e-6f, yr);
        for (size_t c = 0; c < d; c++)
            NU_CHECK(fabs(y.data[r * ld + c] - yr[c]) <= 2e-7 * fabs(yr[c]) + 1e-30,
                     "ref l2norm y [%zu][%zu]: %g vs %g", r, c, (double)y.data[r * ld + c], yr[c]);
    }
    guard("ref l2norm", &y);
    nu_buf bufs[] = {x, y, nr};
    free_all(bufs, 3);
}

static void ref_softmax_loss(const nu_kernel_table *s)
{
    const size_t n = 1025;
    nu_buf x = rbuf(n, -30, 30), l = rbuf(n, 0, 1), dl = rbuf(n, -9, 9);
    double m = -INFINITY, se = 0, loss = 0;
    for (size_t i = 0; i < n; i++) /* not fmax: aarch64 gcc 12 -O3 ICEs on it */
        if (x.data[i] > m)
            m = x.data[i];
    for (size_t i = 0; i < n; i++)
        se += exp(x.data[i] - m);
    const double lse = m + log(se);
    NU_CHECK(fabs(s->logsumexp(n, x.data) - lse) <= 4e-6, "ref logsumexp");
    for (size_t i = 0; i < n; i++)
        loss += xent_d(x.data[i], l.data[i]);
    const double got = s->sigmoid_xent(n, x.data, l.data, dl.data);
    /* fp32 terms: ~2 ulp of max(x,0) + x l per term. */
    NU_CHECK(fabs(got - loss) <= 1e-6 * loss + 1e-3, "ref sigmoid_xent %.9g vs %.9g", got, loss);
    for (size_t i = 0; i < n; i++) {
        const double sig = 1.0 / (1.0 + exp(-(double)x.data[i]));
        NU_CHECK(fabs(dl.data[i] - (sig - l.data[i])) <= 3e-7, "ref dlogits [%zu]", i);
    }
    guard("ref sigmoid_xent", &dl);
    nu_buf bufs[] = {x, l, dl};
    free_all(bufs, 3);
}

/* ---- 2. every ISA against the scalar table ---- */

static void cross_layernorm(const nu_kernel_table *t, const nu_kernel_table *s, size_t d)
{
    /* up to 40 rows: the avx512 16-row groups and their partial last one */
    const size_t rows = nu_rng_range(&rng, 1, 40);
    const size_t ldx = d + nu_rng_range(&rng, 0, 5), ldy = d + nu_rng_range(&rng, 0, 5);
    const float eps = 1e-5f;
    nu_buf x = rbuf(msz(rows, d, ldx), -2, 2), g = rbuf(d, 0.5f, 1.5f), b = rbuf(d, -1, 1);
    for (size_t r = 0; r < rows; r++) /* a per-row offset */
        for (size_t c = 0; c < d; c++)
            x.data[r * ldx + c] += (float)r - 2.0f;
    nu_buf y = rbuf(msz(rows, d, ldy), -9, 9), m = rbuf(rows, -9, 9), rs = rbuf(rows, -9, 9);
    nu_buf ys = copy_buf(&y), ms = copy_buf(&m), rss = copy_buf(&rs);
    t->layernorm_fwd(rows, d, x.data, ldx, g.data, b.data, eps, y.data, ldy, m.data, rs.data);
    s->layernorm_fwd(rows, d, x.data, ldx, g.data, b.data, eps, ys.data, ldy, ms.data, rss.data);
    /* fp32 mean vs double mean: the shifted values carry ~d/width u |x|. */
    close_bufs(NAME("%s layernorm_fwd y d=%zu", t->name, d), &y, &ys, 1e-5f, 1e-5f);
    close_bufs(NAME("%s layernorm_fwd mean d=%zu", t->name, d), &m, &ms, 1e-6f, 1e-6f);
    close_bufs(NAME("%s layernorm_fwd rstd d=%zu", t->name, d), &rs, &rss, 0, 1e-5f);

    /* Aliasing y == x (and NULL stats) gives the same bits as a separate y. */
    nu_buf xa = copy_buf(&x), xb = copy_buf(&x);
    t->layernorm_fwd(rows, d, x.data, ldx, g.data, b.data, eps, xa.data, ldx, NULL, NULL);
    t->layernorm_fwd(rows, d, xb.data, ldx, g.data, b.data, eps, xb.data, ldx, NULL, NULL);
    same_bits(NAME("%s layernorm_fwd y==x d=%zu", t->name, d), &xa, &xb);

    /* Backward on the scalar forward's stats; dx, dgamma, dbeta pre-filled. */
    const size_t lddy = d + nu_rng_range(&rng, 0, 5), lddx = d + nu_rng_range(&rng, 0, 5);
    nu_buf dy = rbuf(msz(rows, d, lddy), -1, 1), dx = rbuf(msz(rows, d, lddx), -1, 1);
    nu_buf dg = rbuf(d, -1, 1), db = rbuf(d, -1, 1);
    nu_buf dxs = copy_buf(&dx), dgs = copy_buf(&dg), dbs = copy_buf(&db);
    t->layernorm_bwd(rows, d, x.data, ldx, g.data, ms.data, rss.data, dy.data, lddy, dx.data,
                     lddx, dg.data, db.data);
    s->layernorm_bwd(rows, d, x.data, ldx, g.data, ms.data, rss.data, dy.data, lddy, dxs.data,
                     lddx, dgs.data, dbs.data);
    close_bufs(NAME("%s layernorm_bwd dx d=%zu", t->name, d), &dx, &dxs, 2e-6f, 2e-6f);
    close_bufs(NAME("%s layernorm_bwd dgamma d=%zu", t->name, d), &dg, &dgs, 1e-5f, 1e-5f);
    close_bufs(NAME("%s layernorm_bwd dbeta d=%zu", t->name, d), &db, &dbs, 1e-6f, 1e-6f);
    guard("layernorm inputs", &x);
    guard("layernorm inputs", &dy);
    nu_buf bufs[] = {x, g, b, y, m, rs, ys, ms, rss, xa, xb, dy, dx, dg, db, dxs, dgs, dbs};
    free_all(bufs, sizeof bufs / sizeof bufs[0]);
}

static void cross_elementwise(const nu_kernel_table *t, const nu_kernel_table *s, size_t n)
{
    nu_buf x = rbuf(n, -6, 6), dy = rbuf(n, -1, 1), y = rbuf(n, -9, 9);
    nu_buf ys = copy_buf(&y);
    t->gelu_fwd(n, x.data, y.data);
    s->gelu_fwd(n, x.data, ys.data);
    close_bufs(NAME("%s gelu_fwd n=%zu", t->name, n), &y, &ys, 2e-6f, 1e-5f);
    t->gelu_bwd(n, x.data, dy.data, y.data);
    s->gelu_bwd(n, x.data, dy.data, ys.data);
    close_bufs(NAME("%s gelu_bwd n=%zu", t->name, n), &y, &ys, 2e-6f, 1e-5f);
    nu_buf a = copy_buf(&x);
    t->gelu_fwd(n, a.data, a.data); /* y == x */
    t->gelu_fwd(n, x.data, y.data);
    same_bits(NAME("%s gelu_fwd y==x n=%zu", t->name, n), &a, &y);
    nu_buf dd = copy_buf(&dy);
    t->gelu_bwd(n, x.data, dd.data, dd.data); /* dx == dy */
    t->gelu_bwd(n, x.data, dy.data, y.data);
    same_bits(NAME("%s gelu_bwd dx==dy n=%zu", t->name, n), &dd, &y);

    const float shift = nu_rng_uniform(&rng, -3, 3);
    t->exp_shift(n, x.data, shift, y.data);
    s->exp_shift(n, x.data, shift, ys.data);
    close_bufs(NAME("%s exp_shift n=%zu", t->name, n), &y, &ys, 0, 4e-7f);
    memcpy(a.data, x.data, n * sizeof(float));
    t->exp_shift(n, a.data, shift, a.data);
    same_bits(NAME("%s exp_shift y==x n=%zu", t->name, n), &a, &y);

    memcpy(ys.data, dy.data, n * sizeof(float));
    memcpy(y.data, dy.data, n * sizeof(float));
    t->axpy(n, 0.37f, x.data, y.data);
    s->axpy(n, 0.37f, x.data, ys.data);
    close_bufs(NAME("%s axpy n=%zu", t->name, n), &y, &ys, 1e-6f, 1e-6f);
    guard("elementwise inputs", &x);
    guard("elementwise inputs", &dy);
    nu_buf bufs[] = {x, dy, y, ys, a, dd};
    free_all(bufs, 6);
}

static void cross_rows(const nu_kernel_table *t, const nu_kernel_table *s, size_t n)
{
    const size_t rows = nu_rng_range(&rng, 1, 9), ld = n + nu_rng_range(&rng, 0, 5);
    nu_buf x = rbuf(msz(rows, n, ld), -1, 1), bias = rbuf(n, -1, 1), acc = rbuf(n, -1, 1);
    nu_buf xs = copy_buf(&x), accs = copy_buf(&acc);
    t->add_bias_rows(rows, n, x.data, ld, bias.data);
    s->add_bias_rows(rows, n, xs.data, ld, bias.data);
    close_bufs(NAME("%s add_bias_rows n=%zu", t->name, n), &x, &xs, 0, 0);
    t->sum_rows(rows, n, x.data, ld, acc.data);
    s->sum_rows(rows, n, x.data, ld, accs.data);
    close_bufs(NAME("%s sum_rows n=%zu", t->name, n), &acc, &accs, 0, 0);

    /* dot_rows: many rows so the 4-row blocks and the leftovers both run.
     * |x|,|T| <= 1: error <= (n / width + 8) u sum|x T|; 2e-7 n covers it. */
    const size_t R = nu_rng_range(&rng, 1, 23);
    nu_buf T = rbuf(msz(R, n, ld), -1, 1), out = rbuf(R, -9, 9);
    nu_buf outs = copy_buf(&out);
    t->dot_rows(R, n, bias.data, T.data, ld, out.data);
    s->dot_rows(R, n, bias.data, T.data, ld, outs.data);
    close_bufs(NAME("%s dot_rows d=%zu rows=%zu", t->name, n, R), &out, &outs, 2e-7f * (float)n,
               1e-6f);
    guard("dot_rows T", &T);
    guard("dot_rows x", &bias);
    nu_buf bufs[] = {x, bias, acc, xs, accs, T, out, outs};
    free_all(bufs, 8);
}

static void cross_l2norm(const nu_kernel_table *t, const nu_kernel_table *s, size_t d)
{
    const size_t rows = nu_rng_range(&rng, 2, 6);
    const size_t ldx = d + nu_rng_range(&rng, 0, 5), ldy = d + nu_rng_range(&rng, 0, 5);
    const float eps = 1e-6f;
    nu_buf x = rbuf(msz(rows, d, ldx), -1, 1);
    for (size_t c = 0; c < d; c++)
        x.data[ldx + c] = 0; /* row 1 is zero: the eps rule */
    nu_buf y = rbuf(msz(rows, d, ldy), -9, 9), nr = rbuf(rows, -9, 9);
    nu_buf ys = copy_buf(&y), nrs = copy_buf(&nr);
    t->l2norm_fwd(rows, d, x.data, ldx, eps, y.data, ldy, nr.data);
    s->l2norm_fwd(rows, d, x.data, ldx, eps, ys.data, ldy, nrs.data);
    /* fp32 sum of squares vs double: ~(d / width) u relative; y = x * (1/n). */
    close_bufs(NAME("%s l2norm_fwd y d=%zu", t->name, d), &y, &ys, 1e-7f, 2e-6f);
    close_bufs(NAME("%s l2norm_fwd norm d=%zu", t->name, d), &nr, &nrs, 0, 2e-6f);
    NU_CHECK(nr.data[1] == 0.0f, "%s l2norm_fwd: zero row has norm %g", t->name,
             (double)nr.data[1]);
    for (size_t c = 0; c < d; c++)
        NU_CHECK(y.data[ldy + c] == 0.0f, "%s l2norm_fwd: zero row gives y %g", t->name,
                 (double)y.data[ldy + c]);

    nu_buf xa = copy_buf(&x), xb = copy_buf(&x);
    t->l2norm_fwd(rows, d, x.data, ldx, eps, xa.data, ldx, NULL);
    t->l2norm_fwd(rows, d, xb.data, ldx, eps, xb.data, ldx, NULL);
    same_bits(NAME("%s l2norm_fwd y==x d=%zu", t->name, d), &xa, &xb);

    const size_t lddy = d + nu_rng_range(&rng, 0, 5), lddx = d + nu_rng_range(&rng, 0, 5);
    nu_buf dy = rbuf(msz(rows, d, lddy), -1, 1), dx = rbuf(msz(rows, d, lddx), -1, 1);
    nu_buf dxs = copy_buf(&dx);
    t->l2norm_bwd(rows, d, ys.data, ldy, nrs.data, eps, dy.data, lddy, dx.data, lddx);
    s->l2norm_bwd(rows, d, ys.data, ldy, nrs.data, eps, dy.data, lddy, dxs.data, lddx);
    /* The zero row adds dy / eps = 1e6 |dy|: relative tolerance covers it. */
    close_bufs(NAME("%s l2norm_bwd d=%zu", t->name, d), &dx, &dxs, 2e-6f, 2e-6f);
    guard("l2norm inputs", &x);
    guard("l2norm inputs", &dy);
    nu_buf bufs[] = {x, y, nr, ys, nrs, xa, xb, dy, dx, dxs};
    free_all(bufs, 10);
}

static void cross_softmax_loss(const nu_kernel_table *t, const nu_kernel_table *s, size_t n)
{
    nu_buf x = rbuf(n, -20, 20), l = rbuf(n, 0, 1), dl = rbuf(n, -9, 9);
    for (size_t i = 0; i < n; i += 7)
        l.data[i] = (float)(i & 8 ? 1 : 0); /* hard labels too */
    nu_buf dls = copy_buf(&dl);
    const float a = t->logsumexp(n, x.data), b = s->logsumexp(n, x.data);
    /* 1 ulp of the result each, plus the fp32 sum of n terms <= 1: relative
     * error <= n u, which log turns into an absolute error. */
    NU_CHECK(fabsf(a - b) <= 1e-6f + 3e-7f * fabsf(b) + 6e-8f * (float)n,
             "%s logsumexp n=%zu: %.9g vs %.9g", t->name, n, (double)a, (double)b);
    const double la = t->sigmoid_xent(n, x.data, l.data, dl.data);
    const double lb = s->sigmoid_xent(n, x.data, l.data, dls.data);
    double mag = 0;
    for (size_t i = 0; i < n; i++)
        mag += fabsf(x.data[i]) + 1.0;
    /* Each fp32 term is within ~3 ulp of (|x| + 1); sums in double. */
    NU_CHECK(fabs(la - lb) <= 4e-7 * mag, "%s sigmoid_xent n=%zu: %.12g vs %.12g", t->name, n,
             la, lb);
    close_bufs(NAME("%s sigmoid_xent dlogits n=%zu", t->name, n), &dl, &dls, 1e-6f, 0);
    const double lc = t->sigmoid_xent(n, x.data, l.data, NULL);
    NU_CHECK(la == lc, "%s sigmoid_xent: NULL dlogits changes the loss", t->name);
    guard("xent inputs", &x);
    guard("xent inputs", &l);
    nu_buf bufs[] = {x, l, dl, dls};
    free_all(bufs, 4);
}

/* Zero sizes: outputs keep every bit. */
static void cross_empty(const nu_kernel_table *t)
{
    nu_buf x = rbuf(64, -1, 1), o = rbuf(64, -1, 1), o2 = rbuf(8, -1, 1), o3 = rbuf(8, -1, 1);
    nu_buf k = copy_buf(&o), k2 = copy_buf(&o2), k3 = copy_buf(&o3);
    t->layernorm_fwd(0, 8, x.data, 8, x.data, x.data, 1e-5f, o.data, 8, o2.data, o3.data);
    t->layernorm_fwd(4, 0, x.data, 8, x.data, x.data, 1e-5f, o.data, 8, o2.data, o3.data);
    t->layernorm_bwd(0, 8, x.data, 8, x.data, x.data, x.data, x.data, 8, o.data, 8, o2.data,
                     o3.data);
    t->layernorm_bwd(4, 0, x.data, 8, x.data, x.data, x.data, x.data, 8, o.data, 8, o2.data,
                     o3.data);
    t->gelu_fwd(0, x.data, o.data);
    t->gelu_bwd(0, x.data, x.data, o.data);
    t->axpy(0, 2.0f, x.data, o.data);
    t->add_bias_rows(0, 8, o.data, 8, x.data);
    t->add_bias_rows(4, 0, o.data, 8, x.data);
    t->sum_rows(0, 8, x.data, 8, o2.data);
    t->sum_rows(4, 0, x.data, 8, o.data);
    t->l2norm_fwd(0, 8, x.data, 8, 1e-6f, o.data, 8, o2.data);
    t->l2norm_bwd(0, 8, x.data, 8, x.data, 1e-6f, x.data, 8, o.data, 8);
    t->l2norm_bwd(4, 0, x.data, 8, x.data, 1e-6f, x.data, 8, o.data, 8);
    t->exp_shift(0, x.data, 0.0f, o.data);
    NU_CHECK(t->sigmoid_xent(0, x.data, x.data, o.data) == 0.0, "%s sigmoid_xent n=0", t->name);
    t->dot_rows(0, 8, x.data, x.data, 8, o.data);
    same_bits(NAME("%s empty sizes", t->name), &o, &k);
    same_bits(NAME("%s empty sizes (row stats)", t->name), &o2, &k2);
    same_bits(NAME("%s empty sizes (row stats 2)", t->name), &o3, &k3);
    /* d == 0 with rows: a dot product of nothing is 0. */
    t->dot_rows(5, 0, x.data, x.data, 8, o2.data);
    for (int i = 0; i < 5; i++)
        NU_CHECK(o2.data[i] == 0.0f, "%s dot_rows d=0 gives %g", t->name, (double)o2.data[i]);
    NU_CHECK(o2.data[5] == k2.data[5], "%s dot_rows d=0 wrote past rows", t->name);
    nu_buf bufs[] = {x, o, o2, o3, k, k2, k3};
    free_all(bufs, 7);
}

static void logsumexp_edges(const nu_kernel_table *t)
{
    float v[40] = {0};
    const size_t sizes[] = {1, 5, 17, 40};
    NU_CHECK(t->logsumexp(0, v) == -INFINITY, "%s logsumexp n=0", t->name);
    for (size_t k = 0; k < 4; k++) {
        const size_t n = sizes[k];
        for (size_t i = 0; i < n; i++)
            v[i] = -INFINITY;
        float r = t->logsumexp(n, v);
        NU_CHECK(r == -INFINITY, "%s logsumexp all -inf n=%zu: %g", t->name, n, (double)r);
        v[n - 1] = 2.0f; /* one finite value among -inf: exactly that value */
        r = t->logsumexp(n, v);
        NU_CHECK(fabsf(r - 2.0f) <= 2.4e-7f, "%s logsumexp one finite n=%zu: %g", t->name, n,
                 (double)r);
        v[n / 2] = INFINITY;
        r = t->logsumexp(n, v);
        NU_CHECK(r == INFINITY, "%s logsumexp +inf n=%zu: %g", t->name, n, (double)r);
        v[0] = NAN;
        r = t->logsumexp(n, v);
        NU_CHECK(isnan(r), "%s logsumexp NaN n=%zu: %g", t->name, n, (double)r);
        for (size_t i = 0; i < n; i++)
            v[i] = 1000.0f; /* far outside expf's range: shifting keeps it finite */
        r = t->logsumexp(n, v);
        const double want = 1000.0 + log((double)n);
        NU_CHECK(fabs(r - want) <= 1e-4, "%s logsumexp large n=%zu: %g", t->name, n, (double)r);
        for (size_t i = 0; i < n; i++)
            v[i] = -1000.0f;
        r = t->logsumexp(n, v);
        NU_CHECK(fabs(r + 1000.0 - log((double)n)) <= 1e-4, "%s logsumexp small n=%zu: %g",
                 t->name, n, (double)r);
    }
}

/* exp_shift over the whole range of expf, against exp in double: the
 * vector kernels' own exp (the one attention and GELU use) must stay within
 * 2 ulp of the normal results and ~1 ulp (1.4e-45) of the denormal ones,
 * give 0 below the range (and for -inf, the masked scores of a softmax),
 * inf above it and NaN for NaN.  A missing polynomial term, a wrong ln 2
 * split or a clamp that ate the NaN would fail here. */
static void exp_shift_range(const nu_kernel_table *t)
{
    enum { N = 4099 };
    static float x[N], y[N];
    nu_rng rng = {77};
    for (size_t i = 0; i < N; i++)
        x[i] = i % 3 == 0 ? nu_rng_uniform(&rng, -12.0f, 12.0f) : nu_rng_uniform(&rng, -110.0f, 95.0f);
    const float special[] = {-INFINITY, INFINITY, NAN, 0.0f, -0.0f, 88.72f, 88.73f, -87.33f,
                             -103.9f, -104.5f, 1e-7f, -1e-7f};
    memcpy(x, special, sizeof special);
    t->exp_shift(N, x, 0.0f, y);
    size_t bad = 0;
    for (size_t i = 0; i < N; i++) {
        const double want = exp((double)x[i]);
        const float w = (float)want;
        int ok;
        if (isnan(x[i]))
            ok = isnan(y[i]);
        else if (isinf(w) || w == 0.0f)
            ok = y[i] == w || fabs(y[i] - want) <= 1.5e-45;
        else if (fabs(want) < 1.17549435e-38)
            ok = fabs(y[i] - want) <= 1.5e-45;
        else
            ok = fabs(y[i] - want) <= 2.0 * 0x1p-23 * fabs(want);
        if (!ok && bad++ < 5)
            fprintf(stderr, "  %s exp(%.9g) = %.9g, want %.9g\n", t->name, (double)x[i],
                    (double)y[i], want);
    }
    NU_CHECK(bad == 0, "%s exp_shift over expf's range: %zu values beyond 2 ulp", t->name, bad);
}

/* ---- 3. backward kernels against finite differences ---- */

#define FD_H 1e-4

static void fd_layernorm(const nu_kernel_table *t, const nu_kernel_table *s, size_t d)
{
    const size_t rows = 3, ld = d + 2;
    const float eps = 1e-5f;
    nu_buf x = rbuf(msz(rows, d, ld), -2, 2), g = rbuf(d, 0.5f, 1.5f), b = rbuf(d, -1, 1);
    nu_buf dy = rbuf(x.n, -1, 1), dx = rbuf(x.n, -1, 1), dg = rbuf(d, -1, 1), db = rbuf(d, -1, 1);
    nu_buf y = rbuf(x.n, 0, 1), m = rbuf(rows, 0, 1), rs = rbuf(rows, 0, 1);
    nu_buf dx0 = copy_buf(&dx), dg0 = copy_buf(&dg), db0 = copy_buf(&db);
    s->layernorm_fwd(rows, d, x.data, ld, g.data, b.data, eps, y.data, ld, m.data, rs.data);
    t->layernorm_bwd(rows, d, x.data, ld, g.data, m.data, rs.data, dy.data, ld, dx.data, ld,
                     dg.data, db.data);
    nu_buf wdx = copy_buf(&dx0), wdg = copy_buf(&dg0), wdb = copy_buf(&db0);
    double xr[64], yr[64];
    float gp[64];
    /* L = sum dy . y, one row at a time (rows are independent in x). */
    for (size_t r = 0; r < rows; r++) {
        const float *dyr = dy.data + r * ld;
        for (size_t c = 0; c < d; c++)
            xr[c] = x.data[r * ld + c];
        for (size_t c = 0; c < d; c++) {
            double lp = 0, lm = 0;
            const double x0 = xr[c];
            xr[c] = x0 + FD_H;
            ln_row_d(d, xr, g.data, b.data, eps, yr);
            for (size_t j = 0; j < d; j++)
                lp += dyr[j] * yr[j];
            xr[c] = x0 - FD_H;
            ln_row_d(d, xr, g.data, b.data, eps, yr);
            for (size_t j = 0; j < d; j++)
                lm += dyr[j] * yr[j];
            xr[c] = x0;
            wdx.data[r * ld + c] = (float)(dx0.data[r * ld + c] + (lp - lm) / (2 * FD_H));
        }
        /* dgamma, dbeta: y is linear in them, so the difference is exact-ish. */
        for (size_t c = 0; c < d; c++) {
            memcpy(gp, g.data, d * sizeof(float));
            double l0 = 0, l1 = 0;
            ln_row_d(d, xr, gp, b.data, eps, yr);
            for (size_t j = 0; j < d; j++)
                l0 += dyr[j] * yr[j];
            gp[c] += 0.5f;
            ln_row_d(d, xr, gp, b.data, eps, yr);
            for (size_t j = 0; j < d; j++)
                l1 += dyr[j] * yr[j];
            wdg.data[c] += (float)((l1 - l0) / ((double)gp[c] - g.data[c]));
            wdb.data[c] += dyr[c];
        }
    }
    close_bufs(NAME("%s layernorm_bwd dx vs fd d=%zu", t->name, d), &dx, &wdx, 2e-5f, 1e-4f);
    close_bufs(NAME("%s layernorm_bwd dgamma vs fd d=%zu", t->name, d), &dg, &wdg, 2e-5f, 1e-4f);
    close_bufs(NAME("%s layernorm_bwd dbeta vs fd d=%zu", t->name, d), &db, &wdb, 2e-6f, 1e-5f);
    nu_buf bufs[] = {x, g, b, dy, dx, dg, db, y, m, rs, dx0, dg0, db0, wdx, wdg, wdb};
    free_all(bufs, sizeof bufs / sizeof bufs[0]);
}

static void fd_gelu(const nu_kernel_table *t)
{
    const size_t n = 301;
    nu_buf x = rbuf(n, -5, 5), dy = rbuf(n, -1, 1), dx = rbuf(n, -9, 9), want = rbuf(n, 0, 1);
    x.data[0] = 0.0f;
    t->gelu_bwd(n, x.data, dy.data, dx.data);
    for (size_t i = 0; i < n; i++) {
        const double xi = x.data[i];
        want.data[i] = (float)(dy.data[i] * (gelu_d(xi + FD_H) - gelu_d(xi - FD_H)) / (2 * FD_H));
    }
    close_bufs(NAME("%s gelu_bwd vs fd", t->name), &dx, &want, 2e-6f, 1e-5f);
    nu_buf bufs[] = {x, dy, dx, want};
    free_all(bufs, 4);
}

static void fd_l2norm(const nu_kernel_table *t, const nu_kernel_table *s, size_t d)
{
    const size_t rows = 3, ld = d + 1;
    const float eps = 1e-4f;
    nu_buf x = rbuf(msz(rows, d, ld), -1, 1), dy = rbuf(x.n, -1, 1), dx = rbuf(x.n, -1, 1);
    for (size_t c = 0; c < d; c++)
        x.data[2 * ld + c] *= 1e-6f; /* row 2 is below eps: clamped, linear */
    nu_buf y = rbuf(x.n, 0, 1), nr = rbuf(rows, 0, 1), dx0 = copy_buf(&dx);
    nu_buf want = copy_buf(&dx);
    s->l2norm_fwd(rows, d, x.data, ld, eps, y.data, ld, nr.data);
    t->l2norm_bwd(rows, d, y.data, ld, nr.data, eps, dy.data, ld, dx.data, ld);
    double xr[64], yr[64];
    for (size_t r = 0; r < rows; r++) {
        const float *dyr = dy.data + r * ld;
        /* A step small against the row keeps the clamped row clamped. */
        const double h = r == 2 ? 1e-9 : FD_H;
        for (size_t c = 0; c < d; c++)
            xr[c] = x.data[r * ld + c];
        for (size_t c = 0; c < d; c++) {
            double lp = 0, lm = 0;
            const double x0 = xr[c];
            xr[c] = x0 + h;
            l2_row_d(d, xr, eps, yr);
            for (size_t j = 0; j < d; j++)
                lp += dyr[j] * yr[j];
            xr[c] = x0 - h;
            l2_row_d(d, xr, eps, yr);
            for (size_t j = 0; j < d; j++)
                lm += dyr[j] * yr[j];
            xr[c] = x0;
            want.data[r * ld + c] = (float)(dx0.data[r * ld + c] + (lp - lm) / (2 * h));
        }
    }
    close_bufs(NAME("%s l2norm_bwd vs fd d=%zu", t->name, d), &dx, &want, 2e-5f, 1e-4f);
    nu_buf bufs[] = {x, dy, dx, y, nr, dx0, want};
    free_all(bufs, 7);
}

static void fd_xent(const nu_kernel_table *t)
{
    const size_t n = 67;
    nu_buf x = rbuf(n, -8, 8), l = rbuf(n, 0, 1), dl = rbuf(n, -9, 9), want = rbuf(n, 0, 1);
    t->sigmoid_xent(n, x.data, l.data, dl.data);
    for (size_t i = 0; i < n; i++) {
        const double xi = x.data[i], li = l.data[i];
        want.data[i] = (float)((xent_d(xi + FD_H, li) - xent_d(xi - FD_H, li)) / (2 * FD_H));
    }
    close_bufs(NAME("%s sigmoid_xent dlogits vs fd", t->name), &dl, &want, 2e-6f, 1e-5f);
    nu_buf bufs[] = {x, l, dl, want};
    free_all(bufs, 4);
}

/* A row's layernorm output must not depend on its position in the batch or
 * on the batch size (bit for bit): the model's outputs for an item must not
 * depend on which other items share its batch. */
static void layernorm_row_invariance(const nu_kernel_table *t)
{
    nu_rng r = {77};
    /* 16 and 64: the avx512 16-row groups (37 rows: two and a partial) */
    static const size_t ds[] = {1, 16, 44, 64, 87, 130};
    for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
        size_t d = ds[di], rows = 37;
        nu_buf x = nu_buf_new(rows * d, 1), y = nu_buf_new(rows * d, 0), y1 = nu_buf_new(d, 2);
        nu_buf g = nu_buf_new(d, 0), b = nu_buf_new(d, 0);
        nu_rng_fill(&r, x.data, rows * d, -3, 3);
        nu_rng_fill(&r, g.data, d, 0.5f, 1.5f);
        nu_rng_fill(&r, b.data, d, -1, 1);
        t->layernorm_fwd(rows, d, x.data, d, g.data, b.data, 1e-5f, y.data, d, NULL, NULL);
        int same = 1;
        for (size_t i = 0; i < rows; i++) {
            t->layernorm_fwd(1, d, x.data + i * d, d, g.data, b.data, 1e-5f, y1.data, d, NULL, NULL);
            same &= memcmp(y1.data, y.data + i * d, d * sizeof(float)) == 0;
        }
        NU_CHECK(same, "%s layernorm_fwd d=%zu: a row alone equals the row in a batch, bit for bit",
                 t->name, d);
        nu_buf_free(&x);
        nu_buf_free(&y);
        nu_buf_free(&y1);
        nu_buf_free(&g);
        nu_buf_free(&b);
    }
}

int main(void)
{
    const nu_kernel_table *s = nu_kernels_for(NU_ISA_SCALAR), *t;
    ref_layernorm(s);
    ref_elementwise(s);
    ref_rows(s);
    ref_l2norm(s);
    ref_softmax_loss(s);
    NU_FOR_EACH_ISA(t)
    {
        layernorm_row_invariance(t);
        /* Three rounds: each draws new row counts, strides and misalignments. */
        for (size_t w = 0; w < 3 * NW; w++) {
            cross_layernorm(t, s, widths[w % NW]);
            cross_rows(t, s, widths[w % NW]);
            cross_l2norm(t, s, widths[w % NW]);
        }
        for (size_t i = 0; i < NL; i++) {
            cross_elementwise(t, s, lengths[i]);
            cross_softmax_loss(t, s, lengths[i]);
        }
        cross_empty(t);
        logsumexp_edges(t);
        exp_shift_range(t);
        const size_t fd_widths[] = {1, 2, 5, 17, 33};
        for (size_t w = 0; w < 5; w++) {
            fd_layernorm(t, s, fd_widths[w]);
            fd_l2norm(t, s, fd_widths[w]);
        }
        fd_gelu(t);
        fd_xent(t);
    }
    return nu_test_finish("kernel_norm");
}
