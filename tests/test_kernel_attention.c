/* Tests of attention_fwd / attention_bwd.
 *
 * 1. Every ISA's forward against an independent double-precision naive
 *    attention written here (scalar included: this validates the reference),
 *    and against the scalar table's output.
 * 2. Every ISA's backward against the scalar table, and on small shapes
 *    against central finite differences in double of loss = sum(O * R), with
 *    dQ/dK/dV pre-filled with random values to check the "+=" semantics.
 * Shapes: the model's masks (causal encoder, decoder cross-attention with
 * possibly empty rows, inference Tq = 1), NULL masks, random ranges with
 * empties, Q/K/V as column slices of one fused QKV buffer, sizes that are not
 * multiples of any vector width, unaligned starts, padded strides, zero sizes.
 * Every buffer has guard zones checked after every call, and the padding
 * columns of every output are checked untouched.
 *
 * Tolerances (float kernels vs double truth; inputs in [-1, 1]).  A build
 * with -DTOL_SCALE=0.1f shows the margin: every check still passes at 1/10
 * of the bounds below (natively and on NEON); at 1/30 the first O and dQ
 * values fail.  So the bounds sit ~10-30x above the errors seen.
 *  - a score s = scale * q.k carries a float error of about
 *    eps_f * scale * dh (eps_f = 6e-8, summing dh products of magnitude <= 1);
 *    P = softmax(s) inherits that as a relative error, and O, a convex
 *    combination of V rows in [-1, 1], an absolute one.  Exp (libm or SLEEF
 *    u10) adds ~1 ulp.  So forward O: atol = 2e-6 + 2e-7 * scale * dh,
 *    rtol 1e-5, still far below the O(0.01..1) size of any indexing or
 *    masking bug.  The lse (magnitude up to ~log Tk + max s) gets the same
 *    atol and rtol 1e-5 (~100 ulp: logf of a float sum of Tk terms).
 *  - backward: dS = P (dP - D) cancels terms of magnitude up to dh, and the
 *    sums run over up to Tk keys / Tq queries, so the absolute error grows
 *    with dh and the number of summed terms: atol = 1e-5 + 4e-7 * scale * dh
 *    * (1 + sqrt(T)), rtol 1e-4.  Finite differences use h = 1e-4 in double
 *    (truncation ~h^2 = 1e-8, rounding ~1e-16 / h = 1e-12): invisible here.
 *  - ISA vs scalar: the same bounds (both are float computations that differ
 *    only in summation order, exp implementation and where scale is applied).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_test_util.h"

#define SENTINEL 7.25f
/* Multiplies every tolerance: builds with a smaller value show the margin. */
#ifndef TOL_SCALE
#define TOL_SCALE 1.0f
#endif

typedef struct acase {
    const char *name;
    size_t Tq, Tk, heads, dh;
    size_t ldq, ldk, ldv, ldo; /* strides of Q, K, V, O (and dQ.., dO alike) */
    int fused;                 /* Q, K, V (and dQ, dK, dV) are slices of one buffer */
    const uint32_t *kb, *ke;
    float scale;
    int fd; /* also check the backward against finite differences */
} acase;

/* ---- masks -------------------------------------------------------------- */

static uint32_t mask_b[1024], mask_e[1024];

/* Encoder self-attention over T = k + n + 1 tokens. */
static void mask_encoder(size_t k, size_t n)
{
    size_t T = k + n + 1;
    for (size_t i = 0; i < T; i++) {
        mask_b[i] = 0;
        if (i < k)
            mask_e[i] = (uint32_t)k;
        else if (i < k + n)
            mask_e[i] = (uint32_t)(i + 1); /* user u = i - k sees [0, k + u + 1) */
        else
            mask_e[i] = (uint32_t)T;
    }
}

/* Decoder cross-attention: n + 1 queries over the encoder's T keys. */
static void mask_decoder(size_t k, size_t n)
{
    for (size_t j = 1; j <= n; j++) {
        mask_b[j - 1] = 0;
        mask_e[j - 1] = (uint32_t)(k + j - 1); /* empty when k = 0, j = 1 */
    }
    mask_b[n] = 0;
    mask_e[n] = (uint32_t)(k + n + 1);
}

/* Random ranges: about one in six empty (anywhere, also at Tk), some full. */
static void mask_random(nu_rng *r, size_t Tq, size_t Tk)
{
    for (size_t i = 0; i < Tq; i++) {
        size_t kind = nu_rng_range(r, 0, 5);
        if (kind == 0 || Tk == 0) {
            size_t p = nu_rng_range(r, 0, Tk);
            mask_b[i] = mask_e[i] = (uint32_t)p;
        } else if (kind == 1) {
            mask_b[i] = 0;
            mask_e[i] = (uint32_t)Tk;
        } else {
            size_t b = nu_rng_range(r, 0, Tk - 1);
            mask_b[i] = (uint32_t)b;
            mask_e[i] = (uint32_t)nu_rng_range(r, b + 1, Tk);
        }
    }
}

/* ---- buffers of one case ------------------------------------------------ */

typedef struct io {
    nu_buf qkv[3];            /* separate Q, K, V, or qkv[0] holds all three */
    const float *Q, *K, *V;
    nu_buf dqkv[3];           /* the gradients, laid out like the inputs */
    float *dQ, *dK, *dV;
    nu_buf dO;
} io;

static size_t HD(const acase *c) { return c->heads * c->dh; }

/* Allocates a layout like Q/K/V: either three buffers or one fused one. */
static void layout(const acase *c, nu_rng *r, nu_buf b[3], float *p[3])
{
    if (c->fused) {
        b[0] = nu_buf_new(c->Tq * c->ldq, nu_rng_range(r, 0, 3));
        for (int k = 0; k < 3; k++)
            p[k] = b[0].data + (size_t)k * HD(c);
        b[1].raw = b[2].raw = NULL;
    } else {
        size_t rows[3] = {c->Tq, c->Tk, c->Tk}, ld[3] = {c->ldq, c->ldk, c->ldv};
        for (int k = 0; k < 3; k++) {
            b[k] = nu_buf_new(rows[k] * ld[k], nu_rng_range(r, 0, 3));
            p[k] = b[k].data;
        }
    }
}

static int layout_guards_ok(const acase *c, const nu_buf b[3])
{
    int ok = nu_buf_guard_ok(&b[0]);
    if (!c->fused)
        ok = ok && nu_buf_guard_ok(&b[1]) && nu_buf_guard_ok(&b[2]);
    return ok;
}

static void layout_free(nu_buf b[3])
{
    for (int k = 0; k < 3; k++)
        if (b[k].raw)
            nu_buf_free(&b[k]);
}

static void io_new(const acase *c, nu_rng *r, io *x)
{
    float *p[3];
    layout(c, r, x->qkv, p);
    for (int k = 0; k < 3; k++)
        if (x->qkv[k].raw)
            nu_rng_fill(r, x->qkv[k].data, x->qkv[k].n, -1.0f, 1.0f);
    x->Q = p[0];
    x->K = p[1];
    x->V = p[2];
    layout(c, r, x->dqkv, p);
    x->dQ = p[0];
    x->dK = p[1];
    x->dV = p[2];
    x->dO = nu_buf_new(c->Tq * c->ldo, nu_rng_range(r, 0, 3));
    nu_rng_fill(r, x->dO.data, x->dO.n, -1.0f, 1.0f);
}

static void io_free(io *x)
{
    layout_free(x->qkv);
    layout_free(x->dqkv);
    nu_buf_free(&x->dO);
}

/* ---- double-precision truth --------------------------------------------- */

static void range_of(const acase *c, size_t i, size_t *b, size_t *e)
{
    *b = c->kb ? c->kb[i] : 0;
    *e = c->ke ? c->ke[i] : c->Tk;
}

/* O (Tq x HD, dense) and lse (Tq x heads) in double from double inputs with
 * the case's strides. */
static void ref_fwd(const acase *c, const double *Q, const double *K, const double *V,
                    double *O, double *lse)
{
    double *s = malloc((c->Tk + 1) * sizeof *s);
    for (size_t i = 0; i < c->Tq; i++) {
        size_t b, e;
        range_of(c, i, &b, &e);
        for (size_t h = 0; h < c->heads; h++) {
            double *o = O + i * HD(c) + h * c->dh;
            for (size_t d = 0; d < c->dh; d++)
                o[d] = 0;
            if (b >= e) {
                lse[i * c->heads + h] = -INFINITY;
                continue;
            }
            double m = -INFINITY, sum = 0;
            for (size_t j = b; j < e; j++) {
                double acc = 0;
                for (size_t d = 0; d < c->dh; d++)
                    acc += Q[i * c->ldq + h * c->dh + d] * K[j * c->ldk + h * c->dh + d];
                s[j - b] = c->scale * acc;
                m = s[j - b] > m ? s[j - b] : m;
            }
            for (size_t j = b; j < e; j++) {
                double p = exp(s[j - b] - m);
                sum += p;
                for (size_t d = 0; d < c->dh; d++)
                    o[d] += p * V[j * c->ldv + h * c->dh + d];
            }
            for (size_t d = 0; d < c->dh; d++)
                o[d] /= sum;
            lse[i * c->heads + h] = m + log(sum);
        }
    }
    free(s);
}

/* ---- helpers -------------------------------------------------------------- */

static double *to_double(const float *x, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

static float fwd_atol(const acase *c)
{
    return TOL_SCALE * (2e-6f + 2e-7f * c->scale * (float)c->dh);
}

static float bwd_atol(const acase *c)
{
    float T = (float)(c->Tq > c->Tk ? c->Tq : c->Tk);
    return TOL_SCALE * (1e-5f + 4e-7f * c->scale * (float)c->dh * (1.0f + sqrtf(T)));
}

/* Packs rows x cols of a strided float matrix into a dense one. */
static void pack(const float *x, size_t ld, size_t rows, size_t cols, float *out)
{
    for (size_t i = 0; i < rows; i++)
        memcpy(out + i * cols, x + i * ld, cols * sizeof *out);
}

/* 1 when every float of x outside the rows x cols block (row stride ld) still
 * equals want[] (a copy taken before the call), i.e. padding untouched. */
static int pad_untouched(const float *x, const float *want, size_t n, size_t ld,
                         size_t col0, size_t cols)
{
    for (size_t k = 0; k < n; k++) {
        size_t col = k % ld;
        int inside = col >= col0 && col < col0 + cols;
        if (!inside && memcmp(&x[k], &want[k], sizeof(float)) != 0)
            return 0;
    }
    return 1;
}

/* ---- forward ---------------------------------------------------------------- */

typedef struct fwd_out {
    nu_buf O, lse;
} fwd_out;

typedef void (*fwd_fn)(size_t Tq, size_t Tk, size_t heads, size_t dh, const float *Q,
                       size_t ldq, const float *K, size_t ldk, const float *V, size_t ldv,
                       const uint32_t *key_begin, const uint32_t *key_end, float scale, float *O,
                       size_t ldo, float *lse, float *scratch);

/* Runs one forward entry of table t (attention_fwd or attention_fwd16) into
 * fresh sentinel-filled buffers; checks guards, untouched padding and that
 * lse = NULL gives the same O. */
static fwd_out run_fwd_fn(const nu_kernel_table *t, fwd_fn fwd, const acase *c, const io *x,
                          nu_rng *r)
{
    fwd_out f;
    f.O = nu_buf_new(c->Tq * c->ldo, nu_rng_range(r, 0, 3));
    f.lse = nu_buf_new(c->Tq * c->heads, nu_rng_range(r, 0, 3));
    nu_buf scratch = nu_buf_new(2 * c->Tk, nu_rng_range(r, 0, 3));
    for (size_t k = 0; k < f.O.n; k++)
        f.O.data[k] = SENTINEL;
    for (size_t k = 0; k < f.lse.n; k++)
        f.lse.data[k] = SENTINEL;
    float *before = malloc((f.O.n ? f.O.n : 1) * sizeof(float));
    memcpy(before, f.O.data, f.O.n * sizeof(float));
    fwd(c->Tq, c->Tk, c->heads, c->dh, x->Q, c->ldq, x->K, c->ldk, x->V, c->ldv, c->kb, c->ke,
        c->scale, f.O.data, c->ldo, f.lse.data, scratch.data);
    NU_CHECK(nu_buf_guard_ok(&f.O) && nu_buf_guard_ok(&f.lse) && nu_buf_guard_ok(&scratch) &&
                 layout_guards_ok(c, x->qkv),
             "%s/%s fwd: guard zone overwritten", t->name, c->name);
    NU_CHECK(pad_untouched(f.O.data, before, f.O.n, c->ldo, 0, HD(c)),
             "%s/%s fwd: O padding columns touched", t->name, c->name);
    /* Again without lse: O must be bit-identical. */
    nu_buf O2 = nu_buf_new(c->Tq * c->ldo, 1);
    fwd(c->Tq, c->Tk, c->heads, c->dh, x->Q, c->ldq, x->K, c->ldk, x->V, c->ldv, c->kb, c->ke,
        c->scale, O2.data, c->ldo, NULL, scratch.data);
    int same = 1;
    for (size_t i = 0; i < c->Tq; i++)
        same = same && memcmp(O2.data + i * c->ldo, f.O.data + i * c->ldo,
                              HD(c) * sizeof(float)) == 0;
    NU_CHECK(same && nu_buf_guard_ok(&O2), "%s/%s fwd: O differs with lse = NULL", t->name,
             c->name);
    nu_buf_free(&O2);
    nu_buf_free(&scratch);
    free(before);
    return f;
}

static fwd_out run_fwd(const nu_kernel_table *t, const acase *c, const io *x, nu_rng *r)
{
    return run_fwd_fn(t, t->attention_fwd, c, x, r);
}

static void fwd_free(fwd_out *f)
{
    nu_buf_free(&f->O);
    nu_buf_free(&f->lse);
}

/* Compares a forward result with dense O / lse. */
static void check_fwd(const char *tag, const acase *c, const fwd_out *f, const float *O,
                      const float *lse)
{
    char what[160];
    size_t n = c->Tq * HD(c);
    float *got = malloc((n ? n : 1) * sizeof *got);
    pack(f->O.data, c->ldo, c->Tq, HD(c), got);
    snprintf(what, sizeof what, "%s/%s O", tag, c->name);
    nu_check_close(what, got, O, n, fwd_atol(c), TOL_SCALE * 1e-5f);
    snprintf(what, sizeof what, "%s/%s lse", tag, c->name);
    nu_check_close(what, f->lse.data, lse, c->Tq * c->heads, fwd_atol(c), TOL_SCALE * 1e-5f);
    free(got);
}

/* ---- backward --------------------------------------------------------------- */

/* Runs one table's backward on pre-filled gradients (copies of `pre`);
 * returns the gradient buffers. */
static void run_bwd(const nu_kernel_table *t, const acase *c, io *x, const fwd_out *f,
                    const nu_buf pre[3], nu_rng *r)
{
    for (int k = 0; k < 3; k++)
        if (x->dqkv[k].raw)
            memcpy(x->dqkv[k].data, pre[k].data, pre[k].n * sizeof(float));
    nu_buf scratch = nu_buf_new(2 * c->Tk, nu_rng_range(r, 0, 3));
    t->attention_bwd(c->Tq, c->Tk, c->heads, c->dh, x->Q, c->ldq, x->K, c->ldk, x->V, c->ldv,
                     c->kb, c->ke, c->scale, f->O.data, c->ldo, f->lse.data, x->dO.data,
                     c->ldo, x->dQ, c->ldq, x->dK, c->ldk, x->dV, c->ldv, scratch.data);
    NU_CHECK(nu_buf_guard_ok(&scratch) && layout_guards_ok(c, x->dqkv) &&
                 nu_buf_guard_ok(&x->dO),
             "%s/%s bwd: guard zone overwritten", t->name, c->name);
    /* Columns outside the gradient's own slice must be untouched. */
    size_t col0[3] = {0, 0, 0}, ld[3] = {c->ldq, c->ldk, c->ldv};
    int ok = 1;
    if (c->fused) {
        /* Q, K, V slices are all inside qkv[0]; only the padding is outside. */
        ok = pad_untouched(x->dqkv[0].data, pre[0].data, pre[0].n, c->ldq, 0, 3 * HD(c));
    } else {
        for (int k = 0; k < 3; k++)
            ok = ok && pad_untouched(x->dqkv[k].data, pre[k].data, pre[k].n, ld[k], col0[k],
                                     HD(c));
    }
    NU_CHECK(ok, "%s/%s bwd: gradient padding touched", t->name, c->name);
    nu_buf_free(&scratch);
}

/* Dense copies (rows x HD) of dQ, dK, dV minus the pre-fill: the increment. */
static void grad_increments(const acase *c, const io *x, const nu_buf pre[3], float *out[3])
{
    const float *g[3] = {x->dQ, x->dK, x->dV};
    size_t rows[3] = {c->Tq, c->Tk, c->Tk}, ld[3] = {c->ldq, c->ldk, c->ldv};
    for (int k = 0; k < 3; k++) {
        const float *p0 = c->fused ? pre[0].data + (size_t)k * HD(c) : pre[k].data;
        out[k] = malloc((rows[k] * HD(c) + 1) * sizeof(float));
        for (size_t i = 0; i < rows[k]; i++)
            for (size_t d = 0; d < HD(c); d++)
                out[k][i * HD(c) + d] = g[k][i * ld[k] + d] - p0[i * ld[k] + d];
    }
}

/* Gradients by central differences in double of loss = sum(O * R), R = dO. */
static void fd_grads(const acase *c, const io *x, double *out[3])
{
    size_t nq = c->fused ? x->qkv[0].n : c->Tq * c->ldq;
    double *in[3];
    if (c->fused) {
        in[0] = to_double(x->qkv[0].data, nq);
        in[1] = in[0] + HD(c);
        in[2] = in[0] + 2 * HD(c);
    } else {
        for (int k = 0; k < 3; k++)
            in[k] = to_double(x->qkv[k].data, x->qkv[k].n);
    }
    double *O = malloc((c->Tq * HD(c) + 1) * sizeof *O);
    double *lse = malloc((c->Tq * c->heads + 1) * sizeof *lse);
    size_t rows[3] = {c->Tq, c->Tk, c->Tk}, ld[3] = {c->ldq, c->ldk, c->ldv};
    const double h = 1e-4;
    for (int k = 0; k < 3; k++) {
        out[k] = malloc((rows[k] * HD(c) + 1) * sizeof(double));
        for (size_t i = 0; i < rows[k]; i++)
            for (size_t d = 0; d < HD(c); d++) {
                double *p = &in[k][i * ld[k] + d], keep = *p, L[2];
                for (int sgn = 0; sgn < 2; sgn++) {
                    *p = keep + (sgn ? -h : h);
                    ref_fwd(c, in[0], in[1], in[2], O, lse);
                    double acc = 0;
                    for (size_t a = 0; a < c->Tq; a++)
                        for (size_t b = 0; b < HD(c); b++)
                            acc += O[a * HD(c) + b] * x->dO.data[a * c->ldo + b];
                    L[sgn] = acc;
                }
                *p = keep;
                out[k][i * HD(c) + d] = (L[0] - L[1]) / (2 * h);
            }
    }
    free(O);
    free(lse);
    for (int k = 0; k < (c->fused ? 1 : 3); k++)
        free(in[k]);
}

/* ---- one case on every ISA ------------------------------------------------- */

static void run_case(const acase *c, nu_rng *r)
{
    io x;
    io_new(c, r, &x);
    const nu_kernel_table *sc = nu_kernels_for(NU_ISA_SCALAR);

    /* Truth in double. */
    size_t nO = c->Tq * HD(c), nL = c->Tq * c->heads;
    double *Qd = to_double(x.Q, c->fused ? x.qkv[0].n : x.qkv[0].n);
    double *Kd = c->fused ? Qd + HD(c) : to_double(x.K, x.qkv[1].n);
    double *Vd = c->fused ? Qd + 2 * HD(c) : to_double(x.V, x.qkv[2].n);
    double *Od = malloc((nO + 1) * sizeof *Od), *Ld = malloc((nL + 1) * sizeof *Ld);
    ref_fwd(c, Qd, Kd, Vd, Od, Ld);
    float *Of = malloc((nO + 1) * sizeof *Of), *Lf = malloc((nL + 1) * sizeof *Lf);
    for (size_t k = 0; k < nO; k++)
        Of[k] = (float)Od[k];
    for (size_t k = 0; k < nL; k++)
        Lf[k] = (float)Ld[k];

    /* Scalar forward: both the truth check and the reference for the ISAs. */
    fwd_out fs = run_fwd(sc, c, &x, r);
    check_fwd("scalar-vs-double", c, &fs, Of, Lf);
    float *Os = malloc((nO + 1) * sizeof *Os);
    pack(fs.O.data, c->ldo, c->Tq, HD(c), Os);

    /* Backward: random pre-fill, scalar result and (small cases) FD. */
    nu_buf pre[3];
    float *tmp[3];
    layout(c, r, pre, tmp);
    for (int k = 0; k < 3; k++)
        if (pre[k].raw)
            nu_rng_fill(r, pre[k].data, pre[k].n, -1.0f, 1.0f);
    run_bwd(sc, c, &x, &fs, pre, r);
    float *gs[3];
    grad_increments(c, &x, pre, gs);
    size_t rows[3] = {c->Tq, c->Tk, c->Tk};
    double *fd[3] = {NULL, NULL, NULL};
    float *fdf[3] = {NULL, NULL, NULL};
    if (c->fd) {
        fd_grads(c, &x, fd);
        for (int k = 0; k < 3; k++) {
            fdf[k] = malloc((rows[k] * HD(c) + 1) * sizeof(float));
            for (size_t i = 0; i < rows[k] * HD(c); i++)
                fdf[k][i] = (float)fd[k][i];
        }
    }
    static const char *gname[3] = {"dQ", "dK", "dV"};

    const nu_kernel_table *t;
    NU_FOR_EACH_ISA(t)
    {
        char what[160];
        fwd_out f = t == sc ? fs : run_fwd(t, c, &x, r);
        if (t != sc) {
            check_fwd("vs-double", c, &f, Of, Lf);
            snprintf(what, sizeof what, "%s-vs-scalar", t->name);
            check_fwd(what, c, &f, Os, fs.lse.data);
        }
        {
            /* The generator's entry: the same bounds against both references. */
            fwd_out f16 = run_fwd_fn(t, t->attention_fwd16, c, &x, r);
            check_fwd(t == sc ? "fwd16-vs-double/scalar" : "fwd16-vs-double", c, &f16, Of, Lf);
            snprintf(what, sizeof what, "%s-fwd16-vs-scalar", t->name);
            check_fwd(what, c, &f16, Os, fs.lse.data);
            fwd_free(&f16);
        }
        /* Backward from the SCALAR forward's O and lse, so only bwd differs. */
        run_bwd(t, c, &x, &fs, pre, r);
        float *g[3];
        grad_increments(c, &x, pre, g);
        for (int k = 0; k < 3; k++) {
            size_t n = rows[k] * HD(c);
            if (t != sc) {
                snprintf(what, sizeof what, "%s-vs-scalar/%s %s", t->name, c->name, gname[k]);
                nu_check_close(what, g[k], gs[k], n, bwd_atol(c), TOL_SCALE * 1e-4f);
            }
            if (c->fd) {
                snprintf(what, sizeof what, "%s-vs-fd/%s %s", t->name, c->name, gname[k]);
                nu_check_close(what, g[k], fdf[k], n, bwd_atol(c), TOL_SCALE * 1e-4f);
            }
            free(g[k]);
        }
        if (t != sc)
            fwd_free(&f);
    }

    for (int k = 0; k < 3; k++) {
        free(gs[k]);
        free(fd[k]);
        free(fdf[k]);
    }
    layout_free(pre);
    fwd_free(&fs);
    free(Os);
    free(Of);
    free(Lf);
    free(Od);
    free(Ld);
    free(Qd);
    if (!c->fused) {
        free(Kd);
        free(Vd);
    }
    io_free(&x);
}

/* Fills strides: packed, padded, or fused QKV. */
static void set_strides(acase *c, nu_rng *r, int padded)
{
    size_t hd = HD(c), pad = padded ? nu_rng_range(r, 1, 5) : 0;
    if (c->fused) {
        c->ldq = c->ldk = c->ldv = 3 * hd + pad;
    } else {
        c->ldq = hd + pad;
        c->ldk = hd + (padded ? nu_rng_range(r, 1, 5) : 0);
        c->ldv = hd + (padded ? nu_rng_range(r, 1, 5) : 0);
    }
    c->ldo = hd + (padded ? nu_rng_range(r, 1, 5) : 0);
}

/* ---- case lists --------------------------------------------------------------- */

static int fd_small(const acase *c)
{
    /* FD costs 2 * params forward passes: keep it to small shapes. */
    double params = (double)(c->Tq + 2 * c->Tk) * (double)HD(c);
    double pass = (double)c->Tq * (double)c->Tk * (double)HD(c);
    return params * pass <= 2e7;
}

/* The model's shapes and masks. */
static void model_cases(nu_rng *r)
{
    static const size_t ks[] = {4, 0, 4, 4, 4, 4};
    static const size_t ns[] = {0, 1, 1, 5, 50, 295};
    static const size_t hs[] = {4, 4, 8, 4, 8, 4};
    char name[96];
    for (size_t m = 0; m < sizeof ks / sizeof ks[0]; m++) {
        size_t k = ks[m], n = ns[m], T = k + n + 1;
        acase c = {0};
        c.heads = hs[m];
        c.dh = 16;
        c.scale = 0.25f;
        /* Encoder self-attention, fused QKV, causal mask. */
        mask_encoder(k, n);
        c.Tq = c.Tk = T;
        c.fused = 1;
        c.kb = mask_b;
        c.ke = mask_e;
        set_strides(&c, r, m & 1);
        snprintf(name, sizeof name, "encoder_k%zu_n%zu_h%zu", k, n, c.heads);
        c.name = name;
        c.fd = fd_small(&c);
        run_case(&c, r);
        /* Decoder cross-attention: n + 1 queries, first may be empty. */
        mask_decoder(k, n);
        c.Tq = n + 1;
        c.fused = 0;
        set_strides(&c, r, !(m & 1));
        snprintf(name, sizeof name, "decoder_k%zu_n%zu_h%zu", k, n, c.heads);
        c.fd = fd_small(&c);
        run_case(&c, r);
        /* Inference: one query over every key (NULL mask). */
        c.Tq = 1;
        c.kb = c.ke = NULL;
        set_strides(&c, r, 1);
        snprintf(name, sizeof name, "infer_T%zu_h%zu", T, c.heads);
        c.fd = fd_small(&c);
        run_case(&c, r);
    }
}

/* Finite-difference cases chosen to cover tails and both mask kinds. */
static void fd_cases(nu_rng *r)
{
    static const size_t shp[][4] = {/* Tq, Tk, heads, dh */
                                    {5, 7, 2, 3},  {1, 9, 3, 17}, {6, 6, 1, 33},
                                    {3, 17, 2, 5}, {9, 4, 2, 16}, {2, 33, 1, 8}};
    char name[96];
    for (size_t s = 0; s < sizeof shp / sizeof shp[0]; s++) {
        acase c = {0};
        c.Tq = shp[s][0];
        c.Tk = shp[s][1];
        c.heads = shp[s][2];
        c.dh = shp[s][3];
        c.scale = s & 1 ? 1.0f : 1.0f / sqrtf((float)c.dh);
        c.fused = c.Tq == c.Tk;
        mask_random(r, c.Tq, c.Tk);
        c.kb = mask_b;
        c.ke = mask_e;
        set_strides(&c, r, 1);
        snprintf(name, sizeof name, "fd_%zux%zu_h%zu_dh%zu", c.Tq, c.Tk, c.heads, c.dh);
        c.name = name;
        c.fd = 1;
        run_case(&c, r);
    }
}

/* Random shapes: odd sizes, both kernel paths (few and many queries), big
 * Tk * dh (beyond any transposed-K buffer), padded strides, all mask kinds. */
static void random_cases(nu_rng *r, int count)
{
    static const size_t tqs[] = {1, 2, 3, 4, 5, 7, 15, 17, 31, 33, 55};
    static const size_t tks[] = {1, 3, 7, 15, 16, 17, 31, 33, 55, 63, 65, 300};
    static const size_t hs[] = {1, 2, 3, 4, 8};
    static const size_t dhs[] = {1, 2, 3, 4, 7, 8, 15, 16, 17, 31, 33, 64, 65};
    char name[128];
    for (int it = 0; it < count; it++) {
        acase c = {0};
        c.Tq = tqs[nu_rng_range(r, 0, sizeof tqs / sizeof tqs[0] - 1)];
        c.Tk = tks[nu_rng_range(r, 0, sizeof tks / sizeof tks[0] - 1)];
        c.heads = hs[nu_rng_range(r, 0, sizeof hs / sizeof hs[0] - 1)];
        c.dh = dhs[nu_rng_range(r, 0, sizeof dhs / sizeof dhs[0] - 1)];
        /* Keep each case small enough for qemu. */
        while ((double)c.Tq * (double)c.Tk * (double)c.heads * (double)c.dh > 2e5 && c.heads > 1)
            c.heads--;
        size_t kind = nu_rng_range(r, 0, 2);
        c.scale = kind == 0 ? 1.0f / sqrtf((float)c.dh) : kind == 1 ? 0.5f : 2.0f;
        c.fused = c.Tq == c.Tk && nu_rng_range(r, 0, 1);
        size_t mk = nu_rng_range(r, 0, 2);
        if (mk == 0) {
            c.kb = c.ke = NULL;
        } else {
            mask_random(r, c.Tq, c.Tk);
            c.kb = mask_b;
            c.ke = mask_e;
        }
        set_strides(&c, r, (int)nu_rng_range(r, 0, 1));
        snprintf(name, sizeof name, "rand%d_%zux%zu_h%zu_dh%zu_%s", it, c.Tq, c.Tk, c.heads,
                 c.dh, mk ? "mask" : "nomask");
        c.name = name;
        c.fd = 0;
        run_case(&c, r);
    }
}

/* Zero sizes: outputs of size zero untouched; Tk = 0 gives zero rows and
 * lse = -inf, and no gradient. */
static void zero_cases(nu_rng *r)
{
    static const size_t shp[][4] = {{0, 5, 2, 4}, {3, 5, 0, 4}, {3, 5, 2, 0}, {3, 0, 2, 4}};
    const nu_kernel_table *t;
    NU_FOR_EACH_ISA(t)
    {
        for (size_t s = 0; s < sizeof shp / sizeof shp[0]; s++) {
            size_t Tq = shp[s][0], Tk = shp[s][1], H = shp[s][2], dh = shp[s][3];
            size_t ld = 8 * 4 + 3, n = 8 * ld;
            nu_buf in = nu_buf_new(n, 1), O = nu_buf_new(n, 2), L = nu_buf_new(16, 3);
            nu_buf g = nu_buf_new(n, 1), sc = nu_buf_new(16, 0);
            nu_rng_fill(r, in.data, n, -1.0f, 1.0f);
            for (size_t k = 0; k < n; k++)
                O.data[k] = g.data[k] = SENTINEL;
            for (size_t k = 0; k < 16; k++)
                L.data[k] = SENTINEL;
            t->attention_fwd(Tq, Tk, H, dh, in.data, ld, in.data, ld, in.data, ld, NULL, NULL,
                             0.5f, O.data, ld, L.data, sc.data);
            int ok = 1;
            for (size_t i = 0; i < 8; i++)
                for (size_t d = 0; d < ld; d++) {
                    int written = i < Tq && d < H * dh;
                    float want = written && Tk == 0 ? 0.0f : SENTINEL;
                    ok = ok && O.data[i * ld + d] == want;
                }
            for (size_t k = 0; k < 16; k++) {
                int written = k < Tq * H && dh > 0;
                if (Tk == 0 && written)
                    ok = ok && isinf(L.data[k]) && L.data[k] < 0;
                else if (k >= Tq * H)
                    ok = ok && L.data[k] == SENTINEL;
            }
            NU_CHECK(ok, "%s zero fwd %zux%zu h%zu dh%zu: wrong outputs", t->name, Tq, Tk, H, dh);
            for (size_t k = 0; k < 16; k++)
                L.data[k] = 0.0f;
            t->attention_bwd(Tq, Tk, H, dh, in.data, ld, in.data, ld, in.data, ld, NULL, NULL,
                             0.5f, in.data, ld, L.data, in.data, ld, g.data, ld, g.data, ld,
                             g.data, ld, sc.data);
            ok = 1;
            for (size_t k = 0; k < n; k++)
                ok = ok && g.data[k] == SENTINEL;
            NU_CHECK(ok, "%s zero bwd %zux%zu h%zu dh%zu: gradient touched", t->name, Tq, Tk, H,
                     dh);
            NU_CHECK(nu_buf_guard_ok(&in) && nu_buf_guard_ok(&O) && nu_buf_guard_ok(&L) &&
                         nu_buf_guard_ok(&g) && nu_buf_guard_ok(&sc),
                     "%s zero sizes: guard zone overwritten", t->name);
            nu_buf_free(&in);
            nu_buf_free(&O);
            nu_buf_free(&L);
            nu_buf_free(&g);
            nu_buf_free(&sc);
        }
    }
}

/* Large scores: the softmax must be max-shifted (no overflow to inf/NaN). */
static void large_score_case(nu_rng *r)
{
    acase c = {0};
    c.Tq = 7;
    c.Tk = 19;
    c.heads = 2;
    c.dh = 16;
    c.scale = 20.0f; /* |s| up to ~300: exp overflows without the shift */
    c.kb = c.ke = NULL;
    set_strides(&c, r, 1);
    c.name = "large_scores";
    /* Error bounds scale with |s|; the generic tolerance formula covers it. */
    run_case(&c, r);
}

/* dh = 16 with many queries (attention_fwd16's lanes path): block edges,
 * and more keys than its score buffer holds (the general path then). */
static void lanes_cases(nu_rng *r)
{
    static const size_t shp[][2] = {{8, 8}, {16, 16}, {17, 40}, {48, 48}, {20, 513}, {33, 700}};
    char name[96];
    for (size_t s = 0; s < sizeof shp / sizeof shp[0]; s++)
        for (int mk = 0; mk < 2; mk++) {
            acase c = {0};
            c.Tq = shp[s][0];
            c.Tk = shp[s][1];
            c.heads = 2;
            c.dh = 16;
            c.scale = 0.25f;
            c.fused = c.Tq == c.Tk;
            if (mk) {
                mask_random(r, c.Tq, c.Tk);
                c.kb = mask_b;
                c.ke = mask_e;
            }
            set_strides(&c, r, (int)(s & 1));
            snprintf(name, sizeof name, "lanes_%zux%zu_%s", c.Tq, c.Tk, mk ? "mask" : "nomask");
            c.name = name;
            run_case(&c, r);
        }
}

int main(void)
{
    nu_rng r = {20260401};
    const nu_kernel_table *t;
    NU_FOR_EACH_ISA(t)
    {
        NU_CHECK(strcmp(t->whoami(), t->name) == 0, "table %s runs %s code", t->name,
                 t->whoami());
        NU_CHECK(t->attention_fwd && t->attention_fwd16 && t->attention_bwd,
                 "%s: attention entries missing", t->name);
    }
    zero_cases(&r);
    fd_cases(&r);
    model_cases(&r);
    large_score_case(&r);
    lanes_cases(&r);
    random_cases(&r, 60);
    return nu_test_finish("kernel_attention");
}
