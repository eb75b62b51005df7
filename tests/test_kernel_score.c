/* Tests of the fused scoring + top-K kernel (group "score").
 *
 * 1. The scalar reference against an independent double-precision brute
 *    force (score every row in double, sort by score desc / id asc).
 * 2. Every ISA the host runs against that brute force and the scalar table.
 *
 * Two kinds of data:
 *  - integer-valued floats in [-3, 3]: every dot product (|sum| <= 9 d, far
 *    below 2^24) is exact in any summation order, so ids AND scores must be
 *    bit-identical across ISAs and to the double reference, and ties (equal
 *    scores, duplicated rows) are frequent, which exercises the lower-id rule.
 *  - real-valued data in [-1, 1): summation order changes the rounding.  A
 *    row's float score may differ from the exact one by at most
 *    gamma_d * sum_i |q_i t_i| with gamma_d ~= d * 2^-24 for any order (FMA
 *    only helps); we allow tol_r = d * FLT_EPSILON * sum|q_i t_i| (twice
 *    that) plus a tiny absolute term.  The output must then be a valid
 *    top-K within tol: scores within tol_r of the exact ones, sorted, and no
 *    unselected row clearly better than a selected one.  Against scalar,
 *    scores must agree within 2 tol (per query, from its largest
 *    sum|q_i t_i|) and ids must match at slots whose scalar score is more
 *    than 2 tol from its neighbours (for the last slot: from the best row
 *    left out): with tol twice the worst-case error, such an order cannot
 *    flip under any summation order.
 *
 * NaN / Inf: a NaN score is never selected; +inf scores come first; -inf
 * scores are eligible (after every finite one, before the padding).  The
 * double reference follows the same IEEE rules, so integer data with
 * injected NaN/Inf is still compared exactly. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_test_util.h"

/* ---- uint32 output buffer with guard zones ---------------------------- */
#define ID_GUARD 16
#define ID_GUARD_VALUE 0xA5A5A5A5u
typedef struct idbuf {
    uint32_t *raw, *data;
    size_t n;
} idbuf;

static idbuf idbuf_new(size_t n)
{
    idbuf b;
    b.n = n;
    b.raw = malloc((n + 2 * ID_GUARD) * sizeof(uint32_t));
    if (!b.raw) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < n + 2 * ID_GUARD; i++)
        b.raw[i] = ID_GUARD_VALUE;
    b.data = b.raw + ID_GUARD;
    return b;
}

static int idbuf_guard_ok(const idbuf *b)
{
    for (size_t i = 0; i < ID_GUARD; i++)
        if (b->raw[i] != ID_GUARD_VALUE || b->data[b->n + i] != ID_GUARD_VALUE)
            return 0;
    return 1;
}

/* ---- one problem instance ---------------------------------------------- */
enum { DATA_INT, DATA_REAL };

typedef struct prob {
    size_t B, N, d, ldq, ldt, K;
    uint32_t row_base;
    int kind;
    nu_buf q, t;
    nu_id_list *ex; /* NULL or B lists */
    uint32_t *ex_ids;
} prob;

static float rand_val(nu_rng *rng, int kind)
{
    if (kind == DATA_INT)
        return (float)((int)nu_rng_range(rng, 0, 6) - 3);
    return nu_rng_uniform(rng, -1.0f, 1.0f);
}

/* Random exclusion lists: ids inside the block, outside it, duplicates,
 * and some empty lists with a NULL pointer. */
static void make_excludes(prob *p, nu_rng *rng, size_t max_count)
{
    p->ex = NULL;
    p->ex_ids = NULL;
    if (p->B == 0 || nu_rng_range(rng, 0, 3) == 0)
        return;
    p->ex = calloc(p->B, sizeof *p->ex);
    p->ex_ids = malloc((p->B * max_count + 1) * sizeof(uint32_t));
    size_t used = 0;
    for (size_t b = 0; b < p->B; b++) {
        size_t n = nu_rng_range(rng, 0, max_count);
        p->ex[b].ids = n ? p->ex_ids + used : NULL;
        p->ex[b].count = n;
        for (size_t j = 0; j < n; j++) {
            uint32_t id;
            size_t how = nu_rng_range(rng, 0, 9);
            if (how == 0 && j > 0)
                id = p->ex_ids[used + j - 1]; /* duplicate */
            else if (how == 1)
                id = p->row_base + (uint32_t)p->N + (uint32_t)nu_rng_range(rng, 0, 50);
            else if (how == 2 && p->row_base > 0)
                id = p->row_base - 1 -
                     (uint32_t)nu_rng_range(rng, 0, p->row_base - 1 < 50 ? p->row_base - 1 : 50);
            else
                id = p->row_base + (uint32_t)nu_rng_range(rng, 0, p->N ? p->N - 1 : 0);
            p->ex_ids[used + j] = id;
        }
        used += n;
    }
}

static prob make_prob(nu_rng *rng, size_t B, size_t N, size_t d, size_t K, int kind,
                      size_t max_excl)
{
    prob p;
    memset(&p, 0, sizeof p);
    p.B = B;
    p.N = N;
    p.d = d;
    p.K = K;
    p.kind = kind;
    p.ldq = d + nu_rng_range(rng, 0, 1) * nu_rng_range(rng, 1, 7);
    p.ldt = d + nu_rng_range(rng, 0, 1) * nu_rng_range(rng, 1, 9);
    p.row_base = nu_rng_range(rng, 0, 1) ? (uint32_t)nu_rng_range(rng, 1, 1000000) : 0;
    p.q = nu_buf_new(B * p.ldq, nu_rng_range(rng, 0, 3));
    p.t = nu_buf_new(N * p.ldt, nu_rng_range(rng, 0, 3));
    for (size_t i = 0; i < B * p.ldq; i++)
        p.q.data[i] = rand_val(rng, kind);
    for (size_t i = 0; i < N * p.ldt; i++)
        p.t.data[i] = rand_val(rng, kind);
    /* Duplicate some rows so exact ties occur in any data kind. */
    for (size_t j = 0; N > 1 && j < N / 8; j++) {
        size_t src = nu_rng_range(rng, 0, N - 1), dst = nu_rng_range(rng, 0, N - 1);
        memcpy(p.t.data + dst * p.ldt, p.t.data + src * p.ldt, d * sizeof(float));
    }
    make_excludes(&p, rng, max_excl);
    return p;
}

static void free_prob(prob *p)
{
    nu_buf_free(&p->q);
    nu_buf_free(&p->t);
    free(p->ex);
    free(p->ex_ids);
}

/* ---- the kernel run, with guard checks --------------------------------- */
typedef struct result {
    uint32_t *ids;
    float *scores;
} result;

static result run(const nu_kernel_table *t, const prob *p, const char *what)
{
    size_t n = p->B * p->K;
    idbuf ib = idbuf_new(n);
    nu_buf sb = nu_buf_new(n, (size_t)(p->N % 4));
    for (size_t i = 0; i < n; i++)
        sb.data[i] = 777.0f; /* must all be overwritten */
    t->score_topk(p->B, p->N, p->d, p->q.data, p->ldq, p->t.data, p->ldt, p->row_base, p->K,
                  p->ex, ib.data, sb.data);
    NU_CHECK(idbuf_guard_ok(&ib) && nu_buf_guard_ok(&sb) && nu_buf_guard_ok(&p->q) &&
                 nu_buf_guard_ok(&p->t),
             "%s/%s: guard zone overwritten", t->name, what);
    result r;
    r.ids = malloc((n + 1) * sizeof(uint32_t));
    r.scores = malloc((n + 1) * sizeof(float));
    memcpy(r.ids, ib.data, n * sizeof(uint32_t));
    memcpy(r.scores, sb.data, n * sizeof(float));
    free(ib.raw);
    nu_buf_free(&sb);
    return r;
}

static void free_result(result *r)
{
    free(r->ids);
    free(r->scores);
}

/* ---- double-precision brute force -------------------------------------- */
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

/* Exact score (double) and |q|.|t| sum of row r for query b. */
static double ref_score(const prob *p, size_t b, size_t r, double *absdot)
{
    double s = 0, a = 0;
    const float *q = p->q.data + b * p->ldq, *t = p->t.data + r * p->ldt;
    for (size_t k = 0; k < p->d; k++) {
        s += (double)q[k] * (double)t[k];
        a += fabs((double)q[k] * (double)t[k]);
    }
    if (absdot)
        *absdot = a;
    return s;
}

/* Eligible rows of query b sorted best first; returns their count. */
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

/* Integer data: the output must equal the brute force exactly. */
static void check_exact(const nu_kernel_table *t, const prob *p, const result *res,
                        const char *what)
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
            if (got_id != want_id || !(got_s == want_s)) {
                if (bad < 5)
                    fprintf(stderr,
                            "  %s/%s: q%zu slot %zu: got id %u score %g, want id %u score %g\n",
                            t->name, what, b, j, got_id, (double)got_s, want_id, (double)want_s);
                bad++;
            }
        }
    }
    NU_CHECK(bad == 0, "%s/%s (B%zu N%zu d%zu K%zu): %zu slots differ from the brute force",
             t->name, what, p->B, p->N, p->d, p->K, bad);
    free(c);
}

/* Real data: a valid top-K within the rounding tolerance (see the header). */
static void check_valid(const nu_kernel_table *t, const prob *p, const result *res,
                        const char *what)
{
    double *s = malloc((p->N + 1) * sizeof(double)), *tol = malloc((p->N + 1) * sizeof(double));
    char *sel = malloc(p->N + 1);
    size_t bad = 0;
    for (size_t b = 0; b < p->B && bad == 0; b++) {
        size_t eligible = 0;
        for (size_t r = 0; r < p->N; r++) {
            double a;
            s[r] = ref_score(p, b, r, &a);
            tol[r] = (double)p->d * FLT_EPSILON * a + 1e-30;
            sel[r] = 0;
            if (!isnan(s[r]) && !excluded(p, b, p->row_base + (uint32_t)r))
                eligible++;
        }
        size_t filled = eligible < p->K ? eligible : p->K;
        double worst_hi = INFINITY; /* min over selected of s + tol */
        const uint32_t *ids = res->ids + b * p->K;
        const float *sc = res->scores + b * p->K;
        for (size_t j = 0; j < p->K; j++) {
            if (j >= filled) {
                if (ids[j] != NU_TOPK_NONE || sc[j] != -INFINITY)
                    bad++;
                continue;
            }
            uint32_t r = ids[j] - p->row_base;
            if (ids[j] == NU_TOPK_NONE || r >= p->N || sel[r] ||
                excluded(p, b, ids[j]) || isnan(s[r])) {
                bad++;
                continue;
            }
            sel[r] = 1;
            if (!(fabs((double)sc[j] - s[r]) <= tol[r]) && !((double)sc[j] == s[r]))
                bad++;
            if (j > 0 && (sc[j] > sc[j - 1] || (sc[j] == sc[j - 1] && ids[j] < ids[j - 1])))
                bad++;
            if (s[r] + tol[r] < worst_hi)
                worst_hi = s[r] + tol[r];
        }
        for (size_t r = 0; r < p->N && filled == p->K; r++) {
            uint32_t id = p->row_base + (uint32_t)r;
            if (!sel[r] && !isnan(s[r]) && !excluded(p, b, id) && s[r] - tol[r] > worst_hi)
                bad++;
        }
        if (bad)
            fprintf(stderr, "  %s/%s: query %zu is not a valid top-K\n", t->name, what, b);
    }
    NU_CHECK(bad == 0, "%s/%s (B%zu N%zu d%zu K%zu): %zu problems in the top-K", t->name,
             what, p->B, p->N, p->d, p->K, bad);
    free(s);
    free(tol);
    free(sel);
}

/* Real data against the scalar output: same ids where scalar's scores are
 * well separated, scores within tolerance. */
static void check_vs_scalar(const nu_kernel_table *t, const prob *p, const result *res,
                            const result *ref, const char *what)
{
    size_t bad = 0;
    cand *c = malloc((p->N + 1) * sizeof *c);
    for (size_t b = 0; b < p->B; b++) {
        double amax = 0;
        for (size_t r = 0; r < p->N; r++) {
            double a;
            ref_score(p, b, r, &a);
            if (a > amax)
                amax = a;
        }
        double tol = (double)p->d * FLT_EPSILON * amax + 1e-30;
        /* The best row left out of the list bounds the last slot's margin. */
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
                    fprintf(stderr,
                            "  %s/%s: q%zu slot %zu: got %u %.9g, scalar %u %.9g (tol %g)\n",
                            t->name, what, b, j, gi[j], (double)gs[j], wi[j], (double)ws[j], tol);
                bad++;
            }
        }
    }
    NU_CHECK(bad == 0, "%s/%s (B%zu N%zu d%zu K%zu): %zu slots differ from scalar", t->name,
             what, p->B, p->N, p->d, p->K, bad);
    free(c);
}

static void check_identical(const nu_kernel_table *t, const prob *p, const result *res,
                            const result *ref, const char *what)
{
    size_t n = p->B * p->K;
    int same = memcmp(res->ids, ref->ids, n * sizeof(uint32_t)) == 0 &&
               memcmp(res->scores, ref->scores, n * sizeof(float)) == 0;
    NU_CHECK(same, "%s/%s (B%zu N%zu d%zu K%zu): differs from scalar on exact data",
             t->name, what, p->B, p->N, p->d, p->K);
}

/* Runs one problem on scalar and every ISA and applies the checks. */
static void check_all(const prob *p, const char *what)
{
    const nu_kernel_table *sc = nu_kernels_for(NU_ISA_SCALAR);
    result ref = run(sc, p, what);
    if (p->kind == DATA_INT)
        check_exact(sc, p, &ref, what);
    else
        check_valid(sc, p, &ref, what);
    const nu_kernel_table *t;
    NU_FOR_EACH_ISA(t)
    {
        if (t->isa == NU_ISA_SCALAR)
            continue;
        result got = run(t, p, what);
        if (p->kind == DATA_INT) {
            check_exact(t, p, &got, what);
            check_identical(t, p, &got, &ref, what);
        } else {
            check_valid(t, p, &got, what);
            check_vs_scalar(t, p, &got, &ref, what);
        }
        free_result(&got);
    }
    free_result(&ref);
}

/* ---- the cases ----------------------------------------------------------- */
static const size_t dims[] = {0, 1, 3, 7, 15, 16, 17, 31, 33, 63, 64, 65, 100, 300};

static void test_random_shapes(nu_rng *rng, int kind, int trials)
{
    /* Query counts that hit every path: single queries, 4-query tiles, the
     * 6..16-query lane blocks, the 2-, 3- and 4-vector lane blocks (17..64)
     * with their remainders. */
    static const size_t bs[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 23, 24, 33, 40, 48, 49, 64, 70, 130};
    for (int i = 0; i < trials; i++) {
        size_t B = bs[nu_rng_range(rng, 0, sizeof bs / sizeof bs[0] - 1)];
        size_t N = nu_rng_range(rng, 0, 3) == 0 ? nu_rng_range(rng, 0, 20)
                                                : nu_rng_range(rng, 0, 400);
        size_t d = dims[nu_rng_range(rng, 0, sizeof dims / sizeof dims[0] - 1)];
        size_t K;
        switch (nu_rng_range(rng, 0, 4)) {
        case 0: K = 1; break;
        case 1: K = nu_rng_range(rng, 1, 10); break;
        case 2: K = N + nu_rng_range(rng, 0, 5); break; /* K >= N: padding */
        default: K = nu_rng_range(rng, 1, 120); break;
        }
        if (K == 0)
            K = 1;
        prob p = make_prob(rng, B, N, d, K, kind, 12);
        check_all(&p, kind == DATA_INT ? "random_int" : "random_real");
        free_prob(&p);
    }
}

/* Sizes that cross the L2 row blocks and the 4-query tiles. */
static void test_large(nu_rng *rng)
{
    prob p = make_prob(rng, 9, 3000, 100, 37, DATA_INT, 50);
    check_all(&p, "large_int");
    free_prob(&p);
    p = make_prob(rng, 6, 20000, 64, 100, DATA_REAL, 50);
    check_all(&p, "large_real");
    free_prob(&p);
    p = make_prob(rng, 21, 5000, 64, 50, DATA_REAL, 50);
    check_all(&p, "large_real_B21");
    free_prob(&p);
    p = make_prob(rng, 1, 20000, 64, 100, DATA_REAL, 50);
    check_all(&p, "large_real_B1");
    free_prob(&p);
    p = make_prob(rng, 17, 5000, 17, 1000, DATA_INT, 50); /* K = 1000 */
    check_all(&p, "K1000");
    free_prob(&p);
}

/* Every row the same: the output is ids row_base .. row_base + K-1. */
static void test_all_ties(nu_rng *rng)
{
    prob p = make_prob(rng, 5, 333, 17, 50, DATA_INT, 0);
    for (size_t r = 1; r < p.N; r++)
        memcpy(p.t.data + r * p.ldt, p.t.data, p.d * sizeof(float));
    check_all(&p, "all_ties");
    const nu_kernel_table *t;
    NU_FOR_EACH_ISA(t)
    {
        result res = run(t, &p, "all_ties");
        int ok = 1;
        for (size_t b = 0; b < p.B; b++) {
            uint32_t skip = 0;
            for (size_t j = 0; j < p.K; j++) {
                uint32_t id;
                do /* excluded ids are skipped in order */
                    id = p.row_base + (uint32_t)(j + skip++);
                while (excluded(&p, b, id));
                skip--;
                ok &= res.ids[b * p.K + j] == id;
            }
        }
        NU_CHECK(ok, "%s/all_ties: ties not broken by the lower id", t->name);
        free_result(&res);
    }
    free_prob(&p);
}

/* NaN / Inf: NaN scores are never selected, +inf rows come first, -inf
 * rows are eligible (they beat the padding). */
static void test_nan_inf(nu_rng *rng)
{
    for (int trial = 0; trial < 8; trial++) {
        size_t d = dims[nu_rng_range(rng, 1, sizeof dims / sizeof dims[0] - 1)];
        size_t N = nu_rng_range(rng, 20, 200);
        prob p = make_prob(rng, 6, N, d, trial % 2 ? N + 3 : 10, DATA_INT, 5);
        for (size_t i = 0; i < p.B * p.ldq; i++) /* positive: +inf rows give +inf */
            p.q.data[i] = (float)nu_rng_range(rng, 1, 3);
        for (size_t j = 0; j < N / 4; j++) {
            float *row = p.t.data + nu_rng_range(rng, 0, N - 1) * p.ldt;
            size_t at = nu_rng_range(rng, 0, d - 1);
            switch (nu_rng_range(rng, 0, 3)) {
            case 0: row[at] = NAN; break;
            case 1: row[at] = INFINITY; break;
            case 2: row[at] = -INFINITY; break;
            default: row[at] = INFINITY; row[(at + 1) % d] = -INFINITY; break;
            }
        }
        p.q.data[4 * p.ldq] = NAN;      /* query 4: every score NaN */
        p.q.data[5 * p.ldq] = INFINITY; /* query 5: NaN where the row has 0 */
        check_all(&p, "nan_inf");
        if (trial == 0) {
            result r = run(nu_kernels_for(NU_ISA_SCALAR), &p, "nan_inf");
            int ok = 1;
            for (size_t j = 0; j < p.K; j++)
                ok &= r.ids[4 * p.K + j] == NU_TOPK_NONE && r.scores[4 * p.K + j] == -INFINITY;
            NU_CHECK(ok, "scalar/nan_inf: a NaN score was selected");
            free_result(&r);
        }
        free_prob(&p);
    }
}

/* Excluding a query's own top 5 must shift its list up by exactly 5. */
static void test_exclusion_shift(nu_rng *rng)
{
    const nu_kernel_table *t;
    NU_FOR_EACH_ISA(t)
    {
        prob p = make_prob(rng, 18, 700, 33, 40, DATA_INT, 0);
        free(p.ex);
        free(p.ex_ids);
        p.ex = NULL;
        result before = run(t, &p, "exclusion_shift");
        p.ex = calloc(p.B, sizeof *p.ex);
        p.ex_ids = malloc(p.B * 7 * sizeof(uint32_t));
        for (size_t b = 0; b < p.B; b++) {
            uint32_t *ids = p.ex_ids + 7 * b;
            for (size_t j = 0; j < 5; j++)
                ids[j] = before.ids[b * p.K + 4 - j]; /* unsorted */
            ids[5] = ids[0];                          /* duplicate */
            ids[6] = p.row_base + (uint32_t)p.N + 3;  /* outside the block */
            p.ex[b].ids = ids;
            p.ex[b].count = 7;
        }
        result after = run(t, &p, "exclusion_shift");
        int ok = 1;
        for (size_t b = 0; b < p.B; b++)
            for (size_t j = 0; j + 5 < p.K; j++)
                ok &= after.ids[b * p.K + j] == before.ids[b * p.K + j + 5] &&
                      after.scores[b * p.K + j] == before.scores[b * p.K + j + 5];
        NU_CHECK(ok, "%s/exclusion_shift: excluding the top 5 did not shift the list", t->name);
        free_result(&before);
        free_result(&after);
        free_prob(&p);
    }
}

/* Rows in score order: the driver's sample pre-pass (topk.c) guesses its
 * threshold from rows spread over the table, so rows best first and worst
 * first both let the guess hold; equal rows make the K-th best tie the
 * guess (it fails: the query is scanned again).  K >= 256 and N >> K,
 * where the pre-pass runs; 1, 20 and 40 queries: single, lanes, wide. */
static void test_ordered(nu_rng *rng)
{
    static const size_t bs[] = {1, 20, 40};
    for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++)
        for (int ties = 0; ties < 2; ties++) {
            prob p = make_prob(rng, bs[i], 6000, 16, 260 + 11 * i, DATA_INT, 20);
            for (size_t b = 0; b < p.B; b++) { /* +1: best first; -1: worst first */
                float *q = p.q.data + b * p.ldq;
                memset(q, 0, p.d * sizeof *q);
                q[0] = b % 3 ? 1.0f : -1.0f;
            }
            for (size_t r = 0; r < p.N; r++)
                p.t.data[r * p.ldt] = ties ? 5.0f : (float)(p.N - r);
            check_all(&p, ties ? "ordered_ties" : "ordered");
            free_prob(&p);
        }
    /* Low rows, then high ones from 1/13 to 1/2 of the table: the spread
     * sample sees both, and the guess must hold against the block. */
    prob p = make_prob(rng, 20, 20000, 16, 300, DATA_INT, 20);
    for (size_t b = 0; b < p.B; b++) {
        float *q = p.q.data + b * p.ldq;
        memset(q, 0, p.d * sizeof *q);
        q[0] = 1.0f;
    }
    for (size_t r = 0; r < p.N; r++)
        p.t.data[r * p.ldt] = (float)(r >= p.N / 13 && r < p.N / 2 ? 50 + (int)(r * 7 % 50)
                                                                   : (int)(r % 40) - 20);
    check_all(&p, "ordered_stages");
    free_prob(&p);
}

/* B = 0 or K = 0 touch nothing; N = 0 pads every slot. */
static void test_empty(nu_rng *rng)
{
    const nu_kernel_table *t;
    NU_FOR_EACH_ISA(t)
    {
        prob p = make_prob(rng, 0, 50, 16, 5, DATA_INT, 0);
        result r = run(t, &p, "B0"); /* the guard check covers "untouched" */
        free_result(&r);
        free_prob(&p);
        p = make_prob(rng, 3, 50, 16, 0, DATA_INT, 0);
        r = run(t, &p, "K0");
        free_result(&r);
        free_prob(&p);
        p = make_prob(rng, 3, 0, 16, 7, DATA_INT, 3);
        r = run(t, &p, "N0");
        int ok = 1;
        for (size_t j = 0; j < 3 * 7; j++)
            ok &= r.ids[j] == NU_TOPK_NONE && r.scores[j] == -INFINITY;
        NU_CHECK(ok, "%s/N0: slots not padded with NONE / -inf", t->name);
        free_result(&r);
        free_prob(&p);
    }
}

int main(void)
{
    nu_rng rng = {20261129};
    test_empty(&rng);
    test_random_shapes(&rng, DATA_INT, 150);
    test_random_shapes(&rng, DATA_REAL, 100);
    test_all_ties(&rng);
    test_exclusion_shift(&rng);
    test_nan_inf(&rng);
    test_large(&rng);
    test_ordered(&rng);
    return nu_test_finish("kernel_score");
}
