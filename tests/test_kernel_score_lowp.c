/* Tests of the compressed-table scoring + top-K kernels (group "score_lowp").
 *
 * 1. The scalar reference against an independent brute force on the SAME
 *    quantised data: every row scored in double (bf16: widened rows; int8:
 *    exact integer dot, then the contract's fp32 formula), sorted by score
 *    desc / id asc, NaN and excluded rows dropped.
 * 2. Every ISA the host runs, and every code path of it (AVX-512 with and
 *    without VDPBF16PS and VPDPBUSD; NEON with and without SDOT) through the
 *    test hook of kernels/score_lowp_variants.h, against scalar:
 *  - int8: ids and scores identical (memcmp): the contract makes the score
 *    exact on every ISA.
 *  - bf16 with integer-valued data in [-3, 3] (exact in bf16, and every dot
 *    product exact in fp32 in any order, even with the query rounded to
 *    bf16): identical to the brute force, ties (duplicated rows) included.
 *  - bf16 with real data: summation order changes the rounding by at most
 *    gamma_d * sum|q_i t_i| (gamma_d ~= d 2^-24); rounding the query to bf16
 *    (VDPBF16PS) adds at most 2^-9 per term, so we allow
 *    tol = (d FLT_EPSILON + [2^-8 when the path rounds the query]) * sum|q t|
 *    (twice the bounds).  Each output must be a valid top-K within tol of
 *    the exact scores; against scalar, scores within 2 tol and ids equal
 *    where scalar's scores are more than 2 tol from their neighbours.
 * NaN / Inf (bf16 elements, int8 row scales): NaN never selected, +inf
 * first, -inf eligible after every finite score. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "kernel_test_util.h"
#include "score_lowp_variants.h"

/* ---- byte buffers with unaligned starts and guard zones ---------------- */
#define GUARD 64
#define GUARD_BYTE 0xA5
typedef struct gbuf {
    unsigned char *raw, *data;
    size_t bytes;
} gbuf;

/* n elements of es bytes, starting misalign elements past a 64-byte line. */
static gbuf gbuf_new(size_t n, size_t es, size_t misalign)
{
    gbuf b;
    b.bytes = n * es;
    size_t lead = GUARD + misalign * es;
    b.raw = aligned_alloc(64, (lead + b.bytes + GUARD + 63) / 64 * 64);
    if (!b.raw) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memset(b.raw, GUARD_BYTE, lead);
    b.data = b.raw + lead;
    memset(b.data + b.bytes, GUARD_BYTE, GUARD);
    return b;
}

static int gbuf_ok(const gbuf *b)
{
    for (size_t i = 0; i < GUARD; i++)
        if (b->data[-1 - (ptrdiff_t)i] != GUARD_BYTE || b->data[b->bytes + i] != GUARD_BYTE)
            return 0;
    return 1;
}

static void gbuf_free(gbuf *b)
{
    free(b->raw);
}

/* ---- the variants under test --------------------------------------------- */
typedef struct variant {
    nu_kernel_table t;
    char name[48];
    int rounds_query; /* bf16 path may round the query to bf16 */
} variant;

static variant variants[12];
static size_t nvariants;

static void add_variant(const nu_kernel_table *t, const char *name, int rounds_query)
{
    variant *v = &variants[nvariants++];
    v->t = *t;
    snprintf(v->name, sizeof v->name, "%s", name);
    v->rounds_query = rounds_query;
}

static void make_variants(void)
{
    const nu_kernel_table *t;
    const nu_cpu_features *f = nu_cpu_detect();
    NU_FOR_EACH_ISA(t)
    {
        if (t->isa == NU_ISA_SCALAR)
            continue;
        add_variant(t, t->name, t->isa == NU_ISA_AVX512 && f->avx512_bf16);
#if defined(__x86_64__)
        if (t->isa == NU_ISA_AVX512) {
            for (int dp = 0; dp < 2; dp++)
                for (int vnni = 0; vnni < 2; vnni++) {
                    if ((dp && !f->avx512_bf16) || (vnni && !f->avx512_vnni)) {
                        printf("SKIP avx512 variant bf16dp=%d vnni=%d: CPU lacks it\n", dp, vnni);
                        continue;
                    }
                    nu_kernel_table v = *t;
                    nu_fill_score_lowp_avx512_variant(&v, dp, vnni);
                    char name[48];
                    snprintf(name, sizeof name, "avx512[%s,%s]", dp ? "bf16dp" : "widen",
                             vnni ? "vnni" : "widen");
                    add_variant(&v, name, dp);
                }
        }
#endif
#if defined(__aarch64__)
        if (t->isa == NU_ISA_NEON) {
            for (int dot = 0; dot < 2; dot++) {
                if (dot && !f->asimd_dotprod) {
                    printf("SKIP neon variant dotprod: CPU lacks it\n");
                    continue;
                }
                nu_kernel_table v = *t;
                nu_fill_score_lowp_neon_variant(&v, dot);
                add_variant(&v, dot ? "neon[sdot]" : "neon[widen]", 0);
            }
        }
#endif
    }
    printf("score_lowp variants:");
    for (size_t i = 0; i < nvariants; i++)
        printf(" %s", variants[i].name);
    printf("\n");
}

/* ---- one problem instance ---------------------------------------------- */
enum { KIND_BF16_INT, KIND_BF16_REAL, KIND_I8 };

typedef struct prob {
    int kind;
    size_t B, N, d, ldq, ldt, K;
    uint32_t row_base;
    gbuf q, t;             /* bf16: float / uint16; int8: int8 / int8 */
    gbuf qscale, rscale, rsum; /* int8 only */
    nu_id_list *ex;
    uint32_t *ex_ids;
} prob;

static uint16_t to_bf16(float x) /* round to nearest even (finite x) */
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static double bf16_val(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static float *qf(const prob *p) { return (float *)(void *)p->q.data; }
static uint16_t *tb(const prob *p) { return (uint16_t *)(void *)p->t.data; }
static int8_t *q8(const prob *p) { return (int8_t *)(void *)p->q.data; }
static int8_t *t8(const prob *p) { return (int8_t *)(void *)p->t.data; }
static float *qs(const prob *p) { return (float *)(void *)p->qscale.data; }
static float *rs(const prob *p) { return (float *)(void *)p->rscale.data; }
static int32_t *rsum(const prob *p) { return (int32_t *)(void *)p->rsum.data; }

static void make_excludes(prob *p, nu_rng *rng, size_t max_count)
{
    p->ex = NULL;
    p->ex_ids = NULL;
    if (p->B == 0 || max_count == 0 || nu_rng_range(rng, 0, 3) == 0)
        return;
    p->ex = calloc(p->B, sizeof *p->ex);
    p->ex_ids = malloc((p->B * max_count + 1) * sizeof(uint32_t));
    size_t used = 0;
    for (size_t b = 0; b < p->B; b++) {
        size_t n = nu_rng_range(rng, 0, max_count);
        p->ex[b].ids = n ? p->ex_ids + used : NULL;
        p->ex[b].count = n;
        for (size_t j = 0; j < n; j++) {
            size_t how = nu_rng_range(rng, 0, 9);
            uint32_t id;
            if (how == 0 && j > 0)
                id = p->ex_ids[used + j - 1]; /* duplicate */
            else if (how == 1)
                id = p->row_base + (uint32_t)p->N + (uint32_t)nu_rng_range(rng, 0, 50);
            else if (how == 2 && p->row_base > 0)
                id = p->row_base - 1;
            else
                id = p->row_base + (uint32_t)nu_rng_range(rng, 0, p->N ? p->N - 1 : 0);
            p->ex_ids[used + j] = id;
        }
        used += n;
    }
}

/* Row sums and, for duplicated rows, equal scales (so exact ties occur). */
static void finish_i8(prob *p)
{
    for (size_t r = 0; r < p->N; r++) {
        int32_t s = 0;
        for (size_t k = 0; k < p->d; k++)
            s += t8(p)[r * p->ldt + k];
        rsum(p)[r] = s;
    }
}

static prob make_prob(nu_rng *rng, int kind, size_t B, size_t N, size_t d, size_t K,
                      size_t max_excl)
{
    prob p;
    memset(&p, 0, sizeof p);
    p.kind = kind;
    p.B = B;
    p.N = N;
    p.d = d;
    p.K = K;
    p.ldq = d + nu_rng_range(rng, 0, 1) * nu_rng_range(rng, 1, 7);
    p.ldt = d + nu_rng_range(rng, 0, 1) * nu_rng_range(rng, 1, 9);
    p.row_base = nu_rng_range(rng, 0, 1) ? (uint32_t)nu_rng_range(rng, 1, 1000000) : 0;
    if (kind == KIND_I8) {
        p.q = gbuf_new(B * p.ldq, 1, nu_rng_range(rng, 0, 3));
        p.t = gbuf_new(N * p.ldt, 1, nu_rng_range(rng, 0, 3));
        p.qscale = gbuf_new(B, 4, nu_rng_range(rng, 0, 3));
        p.rscale = gbuf_new(N, 4, nu_rng_range(rng, 0, 3));
        p.rsum = gbuf_new(N, 4, nu_rng_range(rng, 0, 3));
        /* Extremes included: -128 rows against +-127 queries. */
        for (size_t i = 0; i < B * p.ldq; i++)
            q8(&p)[i] = (int8_t)((int)nu_rng_range(rng, 0, 254) - 127);
        for (size_t i = 0; i < N * p.ldt; i++)
            t8(&p)[i] = (int8_t)((int)nu_rng_range(rng, 0, 255) - 128);
        for (size_t b = 0; b < B; b++)
            qs(&p)[b] = nu_rng_uniform(rng, 0.001f, 0.02f);
        for (size_t r = 0; r < N; r++) /* a few coarse values: equal scales */
            rs(&p)[r] = nu_rng_range(rng, 0, 3) ? nu_rng_uniform(rng, 0.001f, 0.02f)
                                                : 0.01f * (float)nu_rng_range(rng, 1, 2);
    } else {
        p.q = gbuf_new(B * p.ldq, 4, nu_rng_range(rng, 0, 3));
        p.t = gbuf_new(N * p.ldt, 2, nu_rng_range(rng, 0, 3));
        for (size_t i = 0; i < B * p.ldq; i++)
            qf(&p)[i] = kind == KIND_BF16_INT ? (float)((int)nu_rng_range(rng, 0, 6) - 3)
                                             : nu_rng_uniform(rng, -1.0f, 1.0f);
        for (size_t i = 0; i < N * p.ldt; i++)
            tb(&p)[i] = to_bf16(kind == KIND_BF16_INT ? (float)((int)nu_rng_range(rng, 0, 6) - 3)
                                                      : nu_rng_uniform(rng, -1.0f, 1.0f));
    }
    /* Duplicated rows: exact ties in every kind. */
    size_t es = kind == KIND_I8 ? 1 : 2;
    for (size_t j = 0; N > 1 && j < N / 8; j++) {
        size_t src = nu_rng_range(rng, 0, N - 1), dst = nu_rng_range(rng, 0, N - 1);
        memcpy(p.t.data + dst * p.ldt * es, p.t.data + src * p.ldt * es, d * es);
        if (kind == KIND_I8)
            rs(&p)[dst] = rs(&p)[src];
    }
    if (kind == KIND_I8)
        finish_i8(&p);
    make_excludes(&p, rng, max_excl);
    return p;
}

static void free_prob(prob *p)
{
    gbuf_free(&p->q);
    gbuf_free(&p->t);
    if (p->kind == KIND_I8) {
        gbuf_free(&p->qscale);
        gbuf_free(&p->rscale);
        gbuf_free(&p->rsum);
    }
    free(p->ex);
    free(p->ex_ids);
}

static int inputs_ok(const prob *p)
{
    int ok = gbuf_ok(&p->q) && gbuf_ok(&p->t);
    if (p->kind == KIND_I8)
        ok = ok && gbuf_ok(&p->qscale) && gbuf_ok(&p->rscale) && gbuf_ok(&p->rsum);
    return ok;
}

/* ---- the kernel run, with guard checks --------------------------------- */
typedef struct result {
    uint32_t *ids;
    float *scores;
} result;

static result run(const nu_kernel_table *t, const char *tname, const prob *p, const char *what)
{
    size_t n = p->B * p->K;
    gbuf ib = gbuf_new(n, 4, p->N % 3), sb = gbuf_new(n, 4, (p->N + 1) % 4);
    memset(ib.data, 0x77, n * 4); /* must all be overwritten */
    memset(sb.data, 0x77, n * 4);
    uint32_t *ids = (uint32_t *)(void *)ib.data;
    float *sc = (float *)(void *)sb.data;
    if (p->kind == KIND_I8)
        t->score_topk_i8(p->B, p->N, p->d, q8(p), p->ldq, qs(p), t8(p), p->ldt, rs(p), rsum(p),
                         p->row_base, p->K, p->ex, ids, sc);
    else
        t->score_topk_bf16(p->B, p->N, p->d, qf(p), p->ldq, tb(p), p->ldt, p->row_base, p->K,
                           p->ex, ids, sc);
    NU_CHECK(gbuf_ok(&ib) && gbuf_ok(&sb) && inputs_ok(p), "%s/%s: guard zone overwritten",
             tname, what);
    result r;
    r.ids = malloc(n * 4 + 4);
    r.scores = malloc(n * 4 + 4);
    memcpy(r.ids, ids, n * 4);
    memcpy(r.scores, sc, n * 4);
    gbuf_free(&ib);
    gbuf_free(&sb);
    return r;
}

static void free_result(result *r)
{
    free(r->ids);
    free(r->scores);
}

/* ---- independent brute force ------------------------------------------- */
typedef struct cand {
    double s;
    uint32_t id;
} cand;

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

static int excluded(const prob *p, size_t b, uint32_t id)
{
    if (!p->ex)
        return 0;
    for (size_t j = 0; j < p->ex[b].count; j++)
        if (p->ex[b].ids[j] == id)
            return 1;
    return 0;
}

/* Score of row r for query b (bf16: exact in double; int8: the contract's
 * formula on an exact 64-bit integer dot) and sum |q t| (bf16). */
static double ref_score(const prob *p, size_t b, size_t r, double *absdot)
{
    double s = 0, a = 0;
    if (p->kind == KIND_I8) {
        int64_t dot = 0;
        for (size_t k = 0; k < p->d; k++)
            dot += (int64_t)q8(p)[b * p->ldq + k] * t8(p)[r * p->ldt + k];
        float f = ((float)(int32_t)dot * rs(p)[r]) * qs(p)[b];
        s = f;
    } else {
        for (size_t k = 0; k < p->d; k++) {
            double x = (double)qf(p)[b * p->ldq + k] * bf16_val(tb(p)[r * p->ldt + k]);
            s += x;
            a += fabs(x);
        }
    }
    if (absdot)
        *absdot = a;
    return s;
}

static size_t ref_sorted(const prob *p, size_t b, cand *out)
{
    size_t n = 0;
    for (size_t r = 0; r < p->N; r++) {
        double s = ref_score(p, b, r, NULL);
        uint32_t id = p->row_base + (uint32_t)r;
        if (isnan(s) || excluded(p, b, id))
            continue;
        out[n].s = s;
        out[n].id = id;
        n++;
    }
    qsort(out, n, sizeof *out, cand_cmp);
    return n;
}

/* Exact kinds: the output equals the brute force slot for slot. */
static void check_exact(const char *tname, const prob *p, const result *res, const char *what)
{
    cand *c = malloc((p->N + 1) * sizeof *c);
    size_t bad = 0;
    for (size_t b = 0; b < p->B; b++) {
        size_t n = ref_sorted(p, b, c);
        for (size_t j = 0; j < p->K; j++) {
            uint32_t want_id = j < n ? c[j].id : NU_TOPK_NONE;
            float want_s = j < n ? (float)c[j].s : -INFINITY;
            uint32_t got_id = res->ids[b * p->K + j];
            float got_s = res->scores[b * p->K + j];
            if (got_id != want_id || memcmp(&got_s, &want_s, sizeof got_s) != 0) {
                if (bad < 5)
                    fprintf(stderr, "  %s/%s: q%zu slot %zu: got %u %.9g, want %u %.9g\n",
                            tname, what, b, j, got_id, (double)got_s, want_id, (double)want_s);
                bad++;
            }
        }
    }
    NU_CHECK(bad == 0, "%s/%s (B%zu N%zu d%zu K%zu): %zu slots differ from the brute force",
             tname, what, p->B, p->N, p->d, p->K, bad);
    free(c);
}

static double tol_factor(const prob *p, int rounds_query)
{
    return (double)p->d * FLT_EPSILON + (rounds_query ? 1.0 / 256 : 0.0);
}

/* bf16 real data: a valid top-K within the tolerance (see the header). */
static void check_valid(const char *tname, const prob *p, const result *res, int rounds_query,
                        const char *what)
{
    double *s = malloc((p->N + 1) * sizeof(double)), *tol = malloc((p->N + 1) * sizeof(double));
    char *sel = malloc(p->N + 1);
    size_t bad = 0;
    const double f = tol_factor(p, rounds_query);
    for (size_t b = 0; b < p->B && bad == 0; b++) {
        size_t eligible = 0;
        for (size_t r = 0; r < p->N; r++) {
            double a;
            s[r] = ref_score(p, b, r, &a);
            tol[r] = f * a + 1e-30;
            sel[r] = 0;
            if (!isnan(s[r]) && !excluded(p, b, p->row_base + (uint32_t)r))
                eligible++;
        }
        size_t filled = eligible < p->K ? eligible : p->K;
        double worst_hi = INFINITY;
        const uint32_t *ids = res->ids + b * p->K;
        const float *sc = res->scores + b * p->K;
        for (size_t j = 0; j < p->K; j++) {
            if (j >= filled) {
                if (ids[j] != NU_TOPK_NONE || sc[j] != -INFINITY)
                    bad++;
                continue;
            }
            uint32_t r = ids[j] - p->row_base;
            if (ids[j] == NU_TOPK_NONE || r >= p->N || sel[r] || excluded(p, b, ids[j]) ||
                isnan(s[r])) {
                bad++;
                continue;
            }
            sel[r] = 1;
            if (!(fabs((double)sc[j] - s[r]) <= tol[r]))
                bad++;
            if (j > 0 && (sc[j] > sc[j - 1] || (sc[j] == sc[j - 1] && ids[j] < ids[j - 1])))
                bad++;
            if (s[r] + tol[r] < worst_hi)
                worst_hi = s[r] + tol[r];
        }
        for (size_t r = 0; r < p->N && filled == p->K; r++)
            if (!sel[r] && !isnan(s[r]) && !excluded(p, b, p->row_base + (uint32_t)r) &&
                s[r] - tol[r] > worst_hi)
                bad++;
        if (bad)
            fprintf(stderr, "  %s/%s: query %zu is not a valid top-K\n", tname, what, b);
    }
    NU_CHECK(bad == 0, "%s/%s (B%zu N%zu d%zu K%zu): %zu problems in the top-K", tname, what,
             p->B, p->N, p->d, p->K, bad);
    free(s);
    free(tol);
    free(sel);
}

/* bf16 real data against scalar: scores within 2 tol, same ids where
 * scalar's scores are well separated. */
static void check_vs_scalar(const char *tname, const prob *p, const result *res,
                            const result *ref, int rounds_query, const char *what)
{
    size_t bad = 0;
    cand *c = malloc((p->N + 1) * sizeof *c);
    const double f = tol_factor(p, rounds_query);
    for (size_t b = 0; b < p->B; b++) {
        double amax = 0;
        for (size_t r = 0; r < p->N; r++) {
            double a;
            ref_score(p, b, r, &a);
            amax = a > amax ? a : amax;
        }
        double tol = f * amax + 1e-30;
        size_t n = ref_sorted(p, b, c);
        double next = n > p->K ? c[p->K].s : -INFINITY;
        const uint32_t *gi = res->ids + b * p->K, *wi = ref->ids + b * p->K;
        const float *gs = res->scores + b * p->K, *ws = ref->scores + b * p->K;
        for (size_t j = 0; j < p->K; j++) {
            int sep = (j == 0 || (double)ws[j - 1] - ws[j] > 2 * tol) &&
                      (j + 1 == p->K ? (double)ws[j] - next > 2 * tol
                                     : (double)ws[j] - ws[j + 1] > 2 * tol);
            if (isinf(ws[j]) || isinf(gs[j])) {
                if (gs[j] != ws[j] || (sep && gi[j] != wi[j]))
                    bad++;
                continue;
            }
            if (fabs((double)gs[j] - ws[j]) > 2 * tol || (sep && gi[j] != wi[j])) {
                if (bad < 5)
                    fprintf(stderr, "  %s/%s: q%zu slot %zu: got %u %.9g, scalar %u %.9g\n",
                            tname, what, b, j, gi[j], (double)gs[j], wi[j], (double)ws[j]);
                bad++;
            }
        }
    }
    NU_CHECK(bad == 0, "%s/%s (B%zu N%zu d%zu K%zu): %zu slots differ from scalar", tname,
             what, p->B, p->N, p->d, p->K, bad);
    free(c);
}

static void check_identical(const char *tname, const prob *p, const result *res,
                            const result *ref, const char *what)
{
    size_t n = p->B * p->K;
    int same = memcmp(res->ids, ref->ids, n * 4) == 0 && memcmp(res->scores, ref->scores, n * 4) == 0;
    NU_CHECK(same, "%s/%s (B%zu N%zu d%zu K%zu): not identical to scalar", tname, what, p->B,
             p->N, p->d, p->K);
}

/* Runs one problem on scalar and every variant and applies the checks. */
static void check_all(const prob *p, const char *what)
{
    const nu_kernel_table *sc = nu_kernels_for(NU_ISA_SCALAR);
    result ref = run(sc, "scalar", p, what);
    if (p->kind == KIND_BF16_REAL)
        check_valid("scalar", p, &ref, 0, what);
    else
        check_exact("scalar", p, &ref, what);
    for (size_t i = 0; i < nvariants; i++) {
        const variant *v = &variants[i];
        result got = run(&v->t, v->name, p, what);
        if (p->kind == KIND_BF16_REAL) {
            check_valid(v->name, p, &got, v->rounds_query, what);
            check_vs_scalar(v->name, p, &got, &ref, v->rounds_query, what);
        } else {
            check_identical(v->name, p, &got, &ref, what);
        }
        free_result(&got);
    }
    free_result(&ref);
}

/* ---- the cases ----------------------------------------------------------- */
static const size_t dims[] = {1, 2, 3, 4, 5, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 129};

static size_t pick_k(nu_rng *rng, size_t N)
{
    switch (nu_rng_range(rng, 0, 4)) {
    case 0: return 1;
    case 1: return nu_rng_range(rng, 1, 10);
    case 2: return N + nu_rng_range(rng, 0, 5) + 1; /* K > N: padding */
    default: return nu_rng_range(rng, 1, 120);
    }
}

static void test_random_shapes(nu_rng *rng, int kind, int trials)
{
    /* Single queries, lane blocks (6..16; 2-4 vectors of 16 up to 64) and
     * their remainders. */
    static const size_t bs[] = {1, 2, 3, 5, 6, 7, 8, 16, 17, 21, 22, 33, 40, 48, 49, 64, 70, 130};
    static const char *names[] = {"random_bf16_int", "random_bf16_real", "random_i8"};
    for (int i = 0; i < trials; i++) {
        size_t B = bs[nu_rng_range(rng, 0, sizeof bs / sizeof bs[0] - 1)];
        size_t N = nu_rng_range(rng, 0, 3) == 0 ? nu_rng_range(rng, 1, 20)
                                                : nu_rng_range(rng, 1, 300);
        size_t d = dims[nu_rng_range(rng, 0, sizeof dims / sizeof dims[0] - 1)];
        prob p = make_prob(rng, kind, B, N, d, pick_k(rng, N), 12);
        check_all(&p, names[kind]);
        free_prob(&p);
    }
}

/* Row blocks crossed, K = 1000, long rows (lane passes off past 1024). */
static void test_large(nu_rng *rng)
{
    static const struct { int kind; size_t B, N, d, K; const char *what; } cases[] = {
        {KIND_I8, 1, 20000, 64, 1000, "i8_B1_K1000"},
        {KIND_I8, 19, 5000, 64, 1000, "i8_B19_K1000"},
        {KIND_I8, 3, 600, 4096, 50, "i8_d4096"},
        {KIND_I8, 7, 300, 1500, 20, "i8_d1500"},
        {KIND_I8, 9, 300, 512, 20, "i8_d512"},
        {KIND_BF16_REAL, 9, 300, 513, 20, "bf16_real_d513"},
        {KIND_BF16_INT, 17, 5000, 17, 1000, "bf16_int_K1000"},
        {KIND_BF16_REAL, 1, 20000, 64, 200, "bf16_real_B1"},
        {KIND_BF16_REAL, 21, 4000, 64, 50, "bf16_real_B21"},
        {KIND_BF16_INT, 7, 300, 1500, 20, "bf16_int_d1500"},
        {KIND_BF16_INT, 2, 200, 5000, 20, "bf16_int_d5000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        prob p = make_prob(rng, cases[i].kind, cases[i].B, cases[i].N, cases[i].d, cases[i].K, 50);
        check_all(&p, cases[i].what);
        free_prob(&p);
    }
}

/* Extreme int8 values: every product at its maximum, d = 4096. */
static void test_i8_extremes(nu_rng *rng)
{
    prob p = make_prob(rng, KIND_I8, 7, 40, 4096, 10, 0);
    for (size_t i = 0; i < p.B * p.ldq; i++)
        q8(&p)[i] = (i / p.ldq) % 2 ? 127 : -127;
    for (size_t r = 0; r < p.N; r++)
        for (size_t k = 0; k < p.d; k++)
            t8(&p)[r * p.ldt + k] = r % 3 == 0 ? -128 : r % 3 == 1 ? 127 : (int8_t)(k % 2 ? -128 : 127);
    finish_i8(&p);
    check_all(&p, "i8_extremes");
    free_prob(&p);
}

/* NaN / Inf: bf16 elements (integer data: exact everywhere) and int8 row
 * scales. */
static void test_nan_inf(nu_rng *rng)
{
    for (int trial = 0; trial < 8; trial++) {
        size_t d = dims[nu_rng_range(rng, 0, sizeof dims / sizeof dims[0] - 1)];
        size_t N = nu_rng_range(rng, 20, 200), B = trial % 2 ? 6 : 17;
        prob p = make_prob(rng, KIND_BF16_INT, B, N, d, trial % 2 ? N + 3 : 10, 5);
        for (size_t i = 0; i < p.B * p.ldq; i++) /* positive: +inf rows give +inf */
            qf(&p)[i] = (float)nu_rng_range(rng, 1, 3);
        for (size_t j = 0; j < N / 4; j++) {
            uint16_t *row = tb(&p) + nu_rng_range(rng, 0, N - 1) * p.ldt;
            size_t at = nu_rng_range(rng, 0, d - 1);
            switch (nu_rng_range(rng, 0, 3)) {
            case 0: row[at] = 0x7FC0; break; /* NaN */
            case 1: row[at] = 0x7F80; break; /* +inf */
            case 2: row[at] = 0xFF80; break; /* -inf */
            default: row[at] = 0x7F80; row[(at + 1) % d] = 0xFF80; break;
            }
        }
        qf(&p)[4 * p.ldq] = NAN; /* query 4: every score NaN */
        check_all(&p, "bf16_nan_inf");
        free_prob(&p);

        p = make_prob(rng, KIND_I8, B, N, d, trial % 2 ? N + 3 : 10, 5);
        for (size_t j = 0; j < N / 4; j++) {
            size_t r = nu_rng_range(rng, 0, N - 1);
            static const float odd[] = {NAN, INFINITY, -INFINITY, 0.0f};
            rs(&p)[r] = odd[nu_rng_range(rng, 0, 3)];
        }
        qs(&p)[1] = NAN;
        qs(&p)[2] = INFINITY;
        check_all(&p, "i8_nan_inf");
        free_prob(&p);
    }
}

/* Every row the same: the output is ids row_base .. in order. */
static void test_all_ties(nu_rng *rng)
{
    for (int kind = 0; kind < 3; kind++) {
        if (kind == KIND_BF16_REAL)
            continue;
        prob p = make_prob(rng, kind, 17, 333, 17, 50, 0);
        size_t es = kind == KIND_I8 ? 1 : 2;
        for (size_t r = 1; r < p.N; r++) {
            memcpy(p.t.data + r * p.ldt * es, p.t.data, p.d * es);
            if (kind == KIND_I8)
                rs(&p)[r] = rs(&p)[0];
        }
        if (kind == KIND_I8)
            finish_i8(&p);
        check_all(&p, "all_ties");
        free_prob(&p);
    }
}

/* Row r's first element as v (the other columns stay as made), with a
 * scale of 0.01 for int8 tables. */
static void set_first_column(prob *p, int kind, size_t r, int v)
{
    if (kind == KIND_I8) {
        t8(p)[r * p->ldt] = (int8_t)v;
        rs(p)[r] = 0.01f;
    } else
        tb(p)[r * p->ldt] = to_bf16((float)v);
}

/* Rows in score order (see test_kernel_score.c, test_ordered): the driver's
 * guessed threshold holds (best first, worst first) or fails (all equal);
 * K >= 256, N >> K; single queries and lane blocks. */
static void test_ordered(nu_rng *rng)
{
    static const size_t bs[] = {1, 16, 21};
    for (int kind = 0; kind < 3; kind += 2) /* bf16 (integer data), int8 */
        for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++)
            for (int ties = 0; ties < 2; ties++) {
                prob p = make_prob(rng, kind, bs[i], 6000, 16, 260 + 11 * i, 20);
                for (size_t b = 0; b < p.B; b++) /* +1: best first; -1: worst first */
                    for (size_t k = 0; k < p.d; k++) {
                        int v = k ? 0 : b % 3 ? 1 : -1;
                        if (kind == KIND_I8)
                            q8(&p)[b * p.ldq + k] = (int8_t)v;
                        else
                            qf(&p)[b * p.ldq + k] = (float)v;
                    }
                for (size_t r = 0; r < p.N; r++) /* exact in bf16 */
                    set_first_column(&p, kind, r, ties ? 5 : 100 - (int)(r * 200 / p.N));
                if (kind == KIND_I8)
                    finish_i8(&p);
                check_all(&p, ties ? "ordered_ties" : "ordered");
                free_prob(&p);
            }
    /* Low rows, then high ones from 1/13 to 1/2 of the table: the spread
     * sample sees both, and the guess must hold against the block. */
    for (int kind = 0; kind < 3; kind += 2) {
        prob p = make_prob(rng, kind, 17, 20000, 16, 300, 20);
        for (size_t b = 0; b < p.B; b++)
            for (size_t k = 0; k < p.d; k++) {
                if (kind == KIND_I8)
                    q8(&p)[b * p.ldq + k] = (int8_t)(k == 0);
                else
                    qf(&p)[b * p.ldq + k] = k == 0 ? 1.0f : 0.0f;
            }
        for (size_t r = 0; r < p.N; r++)
            set_first_column(&p, kind, r,
                             r >= p.N / 13 && r < p.N / 2 ? 50 + (int)(r * 7 % 50) : (int)(r % 40) - 20);
        if (kind == KIND_I8)
            finish_i8(&p);
        check_all(&p, "ordered_stages");
        free_prob(&p);
    }
}

/* B = 0 or K = 0 touch nothing (guards); N = 0 pads every slot. */
static void test_empty(nu_rng *rng)
{
    for (int kind = 0; kind < 3; kind++) {
        prob p = make_prob(rng, kind, 0, 50, 16, 5, 0);
        check_all(&p, "B0");
        free_prob(&p);
        p = make_prob(rng, kind, 3, 50, 16, 0, 0);
        check_all(&p, "K0");
        free_prob(&p);
        p = make_prob(rng, kind, 7, 0, 16, 7, 3);
        check_all(&p, "N0");
        result r = run(nu_kernels_for(NU_ISA_SCALAR), "scalar", &p, "N0");
        int ok = 1;
        for (size_t j = 0; j < p.B * p.K; j++)
            ok &= r.ids[j] == NU_TOPK_NONE && r.scores[j] == -INFINITY;
        NU_CHECK(ok, "scalar/N0: slots not padded with NONE / -inf");
        free_result(&r);
        free_prob(&p);
        p = make_prob(rng, kind, 7, 20, 0, 7, 3); /* d = 0: every score 0 */
        check_all(&p, "d0");
        free_prob(&p);
    }
}

int main(void)
{
    nu_rng rng = {20261130};
    make_variants();
    test_empty(&rng);
    test_random_shapes(&rng, KIND_I8, 150);
    test_random_shapes(&rng, KIND_BF16_INT, 100);
    test_random_shapes(&rng, KIND_BF16_REAL, 100);
    test_all_ties(&rng);
    test_nan_inf(&rng);
    test_i8_extremes(&rng);
    test_large(&rng);
    test_ordered(&rng);
    return nu_test_finish("kernel_score_lowp");
}
