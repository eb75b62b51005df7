/* The training loss (src/train/loss.c) against an independent double
 * precision statement of docs/model.md "Training loss", written here.
 *
 * Small random batches (d = 8, R = 7, M = 5, 12 users): exposed negatives
 * (one of them equal to its position's target), an accidental hit among the
 * shared negatives, a duplicated shared negative, a position without a
 * target (whose exposed negative must stay untouched), rows nobody uses.
 * For λ = (1,0,0), (0,1,0), (0,0,1), (1,0.5,0.1) and both similarities:
 *  - the three terms and the total equal the double forward (1e-5 rel.);
 *  - dL/dû and dL/d(every table element) equal central differences of the
 *    double forward (the stop-gradient of L_aux: the differences perturb
 *    the table of the con/CE terms only, L_aux reads a frozen copy);
 *  - the touched rows are exactly the rows of the terms with λ != 0, every
 *    other row gets exactly zero, L_aux alone gives an all-zero table
 *    gradient, dhat of a position without target is zero, dtable
 *    accumulates.
 * Masking: copies of the targets among the exposed negatives, and (when
 * every position has the same target) among the shared ones, change
 * nothing.  A larger batch (R = 300: several chunks, one partial) is
 * checked the same way on a random sample of elements.
 *
 * Tolerances.  The differences are taken in double with h = 1e-6: the
 * truncation error (h² |L'''| ~ 1e-12 x 1/τ³ = 1e-9) and the rounding
 * (1e-16 |L| / h ~ 1e-10) are far below what is tested, so the error is the
 * C float computation's: logits up to 1/τ = 10 and float softmaxes give a
 * relative error ~1e-6 of the largest gradient.  Check:
 * |g - fd| <= 1e-4 |fd| + 1e-5 max|fd|.  A wrong factor, sign or missed
 * path is off by O(|g|). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_test_util.h"
#include "train/loss.h"

#define FD_H 1e-6

static double worst_rel; /* largest |g - fd| / tolerance seen */

typedef struct tcase {
    size_t R, M, U, d;
    float *uhat, *table;
    uint32_t *target, *neg_off, *neg_rows, *shared;
} tcase;

/* ---- the double precision statement of the spec ---- */

static double sim(const tcase *t, const nu_loss_config *c, const double *u, const double *h)
{
    double uh = 0, uu = 0, hh = 0;
    for (size_t k = 0; k < t->d; k++) {
        uh += u[k] * h[k];
        uu += u[k] * u[k];
        hh += h[k] * h[k];
    }
    if (c->similarity_dot)
        return uh;
    return uh / (fmax(sqrt(uu), 1e-12) * fmax(sqrt(hh), 1e-12)) / c->tau;
}

/* terms[0..2] = con, ce, aux means; returns the total.  tab feeds con/CE,
 * tab_aux (a frozen copy) the aux term: sg(u). */
static double ref_loss(const tcase *t, const nu_loss_config *c, const double *uh,
                       const double *tab, const double *tab_aux, double terms[3])
{
    const size_t d = t->d;
    double con = 0, ce = 0, aux = 0;
    size_t P = 0, Q = 0;
    for (size_t i = 0; i < t->R; i++) {
        const uint32_t tg = t->target[i];
        if (tg == NU_LOSS_NO_TARGET)
            continue;
        P++;
        const double *h = uh + i * d;
        const double zp = sim(t, c, tab + tg * d, h);
        double mx = zp, z[64];
        size_t n = 0;
        for (size_t j = 0; j < t->M; j++)
            if (t->shared[j] != tg) {
                z[n] = sim(t, c, tab + t->shared[j] * d, h);
                mx = fmax(mx, z[n++]);
            }
        double se = exp(zp - mx);
        for (size_t j = 0; j < n; j++)
            se += exp(z[j] - mx);
        con += mx + log(se) - zp;
        ce += log1p(exp(-zp)); /* label 1: -log sigmoid(z) */
        Q++;
        if (t->neg_off)
            for (size_t e = t->neg_off[i]; e < t->neg_off[i + 1]; e++)
                if (t->neg_rows[e] != tg) {
                    ce += log1p(exp(sim(t, c, tab + t->neg_rows[e] * d, h))); /* label 0 */
                    Q++;
                }
        for (size_t k = 0; k < d; k++)
            aux += (tab_aux[tg * d + k] - h[k]) * (tab_aux[tg * d + k] - h[k]);
    }
    terms[0] = P ? con / P : 0;
    terms[1] = Q ? ce / Q : 0;
    terms[2] = P ? aux / P : 0;
    return c->lambda_con * terms[0] + c->lambda_ce * terms[1] + c->lambda_aux * terms[2];
}

/* ---- the C loss ---- */

typedef struct cresult {
    nu_loss_value v;
    float *dhat, *dtable;
    uint32_t rows[512];
    size_t nrows;
    nu_status st;
} cresult;

static nu_loss_batch batch_of(const tcase *t)
{
    nu_loss_batch b = {t->R, t->uhat, t->d, t->target, t->neg_off, t->neg_rows, t->M, t->shared};
    return b;
}

static size_t n_exposed(const tcase *t)
{
    return t->neg_off ? t->neg_off[t->R] : 0;
}

/* Runs the C loss; dtable starts from `init` (NULL: zeros). */
static void run_c(const tcase *t, const nu_loss_config *c, const float *init, cresult *r)
{
    nu_arena a;
    size_t bytes = nu_loss_scratch_bytes(t->d, t->R, t->M, n_exposed(t));
    if (!nu_arena_create(&a, bytes))
        exit(2);
    r->dhat = malloc((t->R * t->d + 1) * sizeof(float));
    r->dtable = calloc(t->U * t->d + 1, sizeof(float));
    for (size_t i = 0; i < t->R * t->d; i++)
        r->dhat[i] = NAN; /* written, not accumulated: garbage must vanish */
    if (init)
        memcpy(r->dtable, init, t->U * t->d * sizeof(float));
    nu_loss_batch b = batch_of(t);
    nu_row_list touched = {NULL, 0};
    r->st = nu_loss_compute(c, &b, t->table, t->U, t->d, &a, r->dhat, r->dtable, &touched, &r->v);
    NU_CHECK(r->st == NU_OK, "loss: %s", nu_last_error());
    r->nrows = touched.count < 512 ? touched.count : 512;
    if (touched.count)
        memcpy(r->rows, touched.rows, r->nrows * sizeof(uint32_t));
    /* Only the touched list (room for every candidate row) stays in the arena. */
    size_t list_bytes = ((t->R + t->M + n_exposed(t)) * 4 + 4 + 63) & ~(size_t)63;
    NU_CHECK(a.used == list_bytes, "arena used %zu after the call (list: %zu)", a.used, list_bytes);
    nu_arena_destroy(&a);
}

static void free_c(cresult *r)
{
    free(r->dhat);
    free(r->dtable);
}

/* ---- checks ---- */

static double *to_double(const float *x, size_t n)
{
    double *y = malloc((n + 1) * sizeof(double));
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
    return y;
}

/* Central difference of the total w.r.t. x[k] (x is uh or tab). */
static double fd_at(const tcase *t, const nu_loss_config *c, double *uh, double *tab,
                    const double *tab_aux, double *x, size_t k)
{
    double terms[3], keep = x[k];
    x[k] = keep + FD_H;
    double lp = ref_loss(t, c, uh, tab, tab_aux, terms);
    x[k] = keep - FD_H;
    double lm = ref_loss(t, c, uh, tab, tab_aux, terms);
    x[k] = keep;
    return (lp - lm) / (2 * FD_H);
}

/* Compares got[k] for the sampled k (every k when stride 1) with fd. */
static void check_grad(const char *what, const tcase *t, const nu_loss_config *c, double *uh,
                       double *tab, const double *tab_aux, double *x, const float *got, size_t n,
                       size_t stride)
{
    double *fd = calloc(n + 1, sizeof(double)), gmax = 0, worst = 0;
    for (size_t k = 0; k < n; k += stride) {
        fd[k] = fd_at(t, c, uh, tab, tab_aux, x, k);
        gmax = fmax(gmax, fabs(fd[k]));
    }
    int ok = 1;
    for (size_t k = 0; k < n; k += stride) {
        double err = fabs(got[k] - fd[k]), tol = 1e-4 * fabs(fd[k]) + 1e-5 * gmax;
        worst = fmax(worst, err / (tol + 1e-300));
        if (!(err <= tol) && ok) {
            nu_test_fail(__FILE__, __LINE__, "%s[%zu]: C %.9g vs fd %.9g (max %.3g)", what, k,
                         got[k], fd[k], gmax);
            ok = 0;
        }
    }
    if (ok)
        nu_test_passed++;
    worst_rel = fmax(worst_rel, worst);
    free(fd);
}

static int row_used(const tcase *t, const nu_loss_config *c, uint32_t row)
{
    for (size_t i = 0; i < t->R; i++) {
        const uint32_t tg = t->target[i];
        if (tg == NU_LOSS_NO_TARGET)
            continue;
        if ((c->lambda_con != 0 || c->lambda_ce != 0) && tg == row)
            return 1;
        if (c->lambda_con != 0)
            for (size_t j = 0; j < t->M; j++)
                if (t->shared[j] == row)
                    return 1;
        if (c->lambda_ce != 0 && t->neg_off)
            for (size_t e = t->neg_off[i]; e < t->neg_off[i + 1]; e++)
                if (t->neg_rows[e] == row && row != tg)
                    return 1;
    }
    return 0;
}

static void check_case(const char *name, const tcase *t, const nu_loss_config *c, size_t stride)
{
    const size_t d = t->d;
    cresult r;
    run_c(t, c, NULL, &r);
    if (r.st != NU_OK)
        return;
    double *uh = to_double(t->uhat, t->R * d), *tab = to_double(t->table, t->U * d);
    double *tab_aux = to_double(t->table, t->U * d), terms[3];
    double total = ref_loss(t, c, uh, tab, tab_aux, terms);
    const double got[4] = {r.v.con, r.v.ce, r.v.aux, r.v.total}, want[4] = {terms[0], terms[1],
                                                                            terms[2], total};
    for (int k = 0; k < 4; k++)
        NU_CHECK(fabs(got[k] - want[k]) <= 1e-5 * fabs(want[k]) + 1e-7, "%s: term %d: C %.12g vs %.12g",
                 name, k, got[k], want[k]);

    char what[128];
    snprintf(what, sizeof what, "%s dL/duhat", name);
    check_grad(what, t, c, uh, tab, tab_aux, uh, r.dhat, t->R * d, stride);
    snprintf(what, sizeof what, "%s dL/dtable", name);
    check_grad(what, t, c, uh, tab, tab_aux, tab, r.dtable, t->U * d, stride);

    /* touched rows: exactly the used ones, sorted; the rest exactly zero */
    size_t want_n = 0;
    int sorted = 1;
    for (uint32_t row = 0; row < t->U; row++) {
        int used = row_used(t, c, row);
        want_n += (size_t)used;
        int listed = 0;
        for (size_t i = 0; i < r.nrows; i++)
            listed |= r.rows[i] == row;
        NU_CHECK(listed == used, "%s: row %u listed %d, used %d", name, row, listed, used);
        if (!used)
            for (size_t k = 0; k < d; k++)
                NU_CHECK(r.dtable[row * d + k] == 0.0f, "%s: unused row %u has gradient", name, row);
    }
    for (size_t i = 1; i < r.nrows; i++)
        sorted &= r.rows[i - 1] < r.rows[i];
    NU_CHECK(sorted && r.nrows == want_n, "%s: %zu touched rows (want %zu), sorted %d", name, r.nrows,
             want_n, sorted);
    for (size_t i = 0; i < t->R; i++)
        if (t->target[i] == NU_LOSS_NO_TARGET)
            for (size_t k = 0; k < d; k++)
                NU_CHECK(r.dhat[i * d + k] == 0.0f, "%s: dhat of untargeted position %zu", name, i);
    if (c->lambda_con == 0 && c->lambda_ce == 0) {
        int zero = 1;
        for (size_t k = 0; k < t->U * d; k++)
            zero &= r.dtable[k] == 0.0f;
        NU_CHECK(zero && r.nrows == 0, "%s: L_aux alone reaches the table", name);
    }

    /* dtable accumulates: starting from the first result gives twice it */
    cresult r2;
    run_c(t, c, r.dtable, &r2);
    if (r2.st == NU_OK) {
        float *twice = malloc((t->U * d + 1) * sizeof(float));
        for (size_t k = 0; k < t->U * d; k++)
            twice[k] = 2 * r.dtable[k];
        snprintf(what, sizeof what, "%s dtable accumulates", name);
        nu_check_close(what, r2.dtable, twice, t->U * d, 1e-7f, 1e-6f);
        free(twice);
    }
    free_c(&r2);
    free(uh);
    free(tab);
    free(tab_aux);
    free_c(&r);
}

/* ---- cases ---- */

static void fill_case(tcase *t, nu_rng *g, size_t R, size_t M, size_t U, size_t d, size_t max_neg)
{
    t->R = R;
    t->M = M;
    t->U = U;
    t->d = d;
    t->uhat = malloc(R * d * sizeof(float));
    t->table = malloc(U * d * sizeof(float));
    t->target = malloc(R * sizeof(uint32_t));
    t->neg_off = malloc((R + 1) * sizeof(uint32_t));
    t->neg_rows = malloc((R * max_neg + 1) * sizeof(uint32_t));
    t->shared = malloc((M + 1) * sizeof(uint32_t));
    nu_rng_fill(g, t->uhat, R * d, -1, 1);
    nu_rng_fill(g, t->table, U * d, -1, 1);
    /* rows U-2, U-1 are never used; U-3 only by an untargeted position */
    t->neg_off[0] = 0;
    for (size_t i = 0; i < R; i++) {
        t->target[i] = (uint32_t)nu_rng_range(g, 0, U - 4);
        size_t n = nu_rng_range(g, i < 2 ? 1 : 0, max_neg); /* rows 0, 1: see below */
        t->neg_off[i + 1] = t->neg_off[i] + (uint32_t)n;
        for (size_t e = t->neg_off[i]; e < t->neg_off[i + 1]; e++)
            t->neg_rows[e] = (uint32_t)nu_rng_range(g, 0, U - 4);
    }
    for (size_t j = 0; j < M; j++)
        t->shared[j] = (uint32_t)nu_rng_range(g, 0, U - 4);
    /* an untargeted position whose exposed negative is otherwise unused */
    t->target[1] = NU_LOSS_NO_TARGET;
    t->neg_rows[t->neg_off[1]] = (uint32_t)(U - 3);
    /* an accidental hit, a duplicate, an exposed negative equal to its target */
    t->shared[0] = t->target[0];
    if (M > 2)
        t->shared[2] = t->shared[1];
    t->neg_rows[t->neg_off[0]] = t->target[0];
}

static void free_case(tcase *t)
{
    free(t->uhat);
    free(t->table);
    free(t->target);
    free(t->neg_off);
    free(t->neg_rows);
    free(t->shared);
}

static const double lambdas[4][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 0.5, 0.1}};

static void small_cases(void)
{
    nu_rng g = {11};
    for (int dot = 0; dot < 2; dot++)
        for (int rep = 0; rep < 3; rep++) {
            tcase t;
            fill_case(&t, &g, 7, 5, 12, 8, 3);
            for (int l = 0; l < 4; l++) {
                nu_loss_config c = {lambdas[l][0], lambdas[l][1], lambdas[l][2], dot, 0.1};
                char name[96];
                snprintf(name, sizeof name, "%s rep %d lambda (%g,%g,%g)", dot ? "dot" : "cosine", rep,
                         c.lambda_con, c.lambda_ce, c.lambda_aux);
                check_case(name, &t, &c, 1);
            }
            free_case(&t);
        }
}

/* Several chunks (R > 2 x 128, the last partial), sampled elements. */
static void large_case(void)
{
    nu_rng g = {23};
    for (int dot = 0; dot < 2; dot++) {
        tcase t;
        fill_case(&t, &g, 300, 40, 60, 16, 5);
        nu_loss_config c = {1, 0.5, 0.1, dot, 0.1};
        check_case(dot ? "large dot" : "large cosine", &t, &c, 37);
        free_case(&t);
    }
}

/* Results of two batches are the same (values 1e-6, gradients 1e-6 of max). */
static void check_same(const char *name, const tcase *a, const tcase *b, const nu_loss_config *c)
{
    cresult ra, rb;
    run_c(a, c, NULL, &ra);
    run_c(b, c, NULL, &rb);
    if (ra.st == NU_OK && rb.st == NU_OK) {
        NU_CHECK(fabs(ra.v.total - rb.v.total) <= 1e-6 * fabs(ra.v.total) && ra.v.pairs == rb.v.pairs,
                 "%s: total %.9g vs %.9g, pairs %zu vs %zu", name, ra.v.total, rb.v.total, ra.v.pairs,
                 rb.v.pairs);
        char what[96];
        snprintf(what, sizeof what, "%s dhat", name);
        nu_check_close(what, rb.dhat, ra.dhat, a->R * a->d, 1e-6f, 1e-5f);
        snprintf(what, sizeof what, "%s dtable", name);
        nu_check_close(what, rb.dtable, ra.dtable, a->U * a->d, 1e-6f, 1e-5f);
        NU_CHECK(ra.nrows == rb.nrows && !memcmp(ra.rows, rb.rows, ra.nrows * sizeof(uint32_t)),
                 "%s: touched rows differ", name);
    }
    free_c(&ra);
    free_c(&rb);
}

/* A negative equal to the target changes nothing. */
static void masking(void)
{
    nu_rng g = {31};
    for (int dot = 0; dot < 2; dot++) {
        nu_loss_config c = {1, 0.5, 0.1, dot, 0.1};
        tcase a;
        fill_case(&a, &g, 7, 5, 12, 8, 3);
        /* exposed: every position gets its target appended */
        tcase b = a;
        b.neg_off = malloc((a.R + 1) * sizeof(uint32_t));
        b.neg_rows = malloc((a.neg_off[a.R] + a.R) * sizeof(uint32_t));
        b.neg_off[0] = 0;
        for (size_t i = 0; i < a.R; i++) {
            size_t n = b.neg_off[i];
            for (size_t e = a.neg_off[i]; e < a.neg_off[i + 1]; e++)
                b.neg_rows[n++] = a.neg_rows[e];
            if (a.target[i] != NU_LOSS_NO_TARGET)
                b.neg_rows[n++] = a.target[i];
            b.neg_off[i + 1] = (uint32_t)n;
        }
        check_same(dot ? "dot: exposed copies of the target" : "cosine: exposed copies of the target",
                   &a, &b, &c);
        free(b.neg_off);
        free(b.neg_rows);

        /* shared: one target for every position, copies of it among the negatives */
        for (size_t i = 0; i < a.R; i++)
            if (a.target[i] != NU_LOSS_NO_TARGET)
                a.target[i] = 4;
        for (size_t j = 0; j < a.M; j++)
            if (a.shared[j] == 4)
                a.shared[j] = 5;
        b = a;
        b.M = a.M + 3;
        b.shared = malloc(b.M * sizeof(uint32_t));
        b.shared[0] = 4;
        memcpy(b.shared + 1, a.shared, 2 * sizeof(uint32_t));
        b.shared[3] = 4;
        memcpy(b.shared + 4, a.shared + 2, (a.M - 2) * sizeof(uint32_t));
        b.shared[b.M - 1] = 4;
        check_same(dot ? "dot: shared copies of the target" : "cosine: shared copies of the target",
                   &a, &b, &c);
        free(b.shared);
        free_case(&a);
    }
}

/* A batch split in two parts (the other part's positions untargeted), each
 * part's λ weighted by its share of nu_loss_count_terms' counts, sums to
 * the whole batch: totals, dhat and dtable (how a trainer splits a batch
 * across threads). */
static void split_batch(void)
{
    nu_rng g = {53};
    for (int dot = 0; dot < 2; dot++) {
        tcase t;
        fill_case(&t, &g, 7, 5, 12, 8, 3);
        nu_loss_config c = {1, 0.5, 0.1, dot, 0.1};
        nu_loss_batch whole = batch_of(&t);
        size_t P, Q;
        nu_loss_count_terms(&whole, &P, &Q);
        size_t want_q = 0;
        for (size_t i = 0; i < t.R; i++)
            if (t.target[i] != NU_LOSS_NO_TARGET)
                for (size_t e = t.neg_off[i]; e <= t.neg_off[i + 1]; e++)
                    want_q += e == t.neg_off[i + 1] || t.neg_rows[e] != t.target[i];
        NU_CHECK(P == 6 && Q == want_q, "count_terms: %zu positions, %zu pairs (want 6, %zu)", P, Q,
                 want_q);
        cresult all;
        run_c(&t, &c, NULL, &all);
        float *dhat = calloc(t.R * t.d, sizeof(float)), *dtable = calloc(t.U * t.d, sizeof(float));
        double total = 0;
        uint32_t *keep = malloc(t.R * sizeof(uint32_t));
        memcpy(keep, t.target, t.R * sizeof(uint32_t));
        for (int part = 0; part < 2; part++) {
            for (size_t i = 0; i < t.R; i++)
                t.target[i] = ((i < 4) == (part == 0)) ? keep[i] : NU_LOSS_NO_TARGET;
            nu_loss_batch pb = batch_of(&t);
            size_t p, q;
            nu_loss_count_terms(&pb, &p, &q);
            nu_loss_config pc = c;
            pc.lambda_con = c.lambda_con * (double)p / (double)P;
            pc.lambda_aux = c.lambda_aux * (double)p / (double)P;
            pc.lambda_ce = c.lambda_ce * (double)q / (double)Q;
            cresult r;
            run_c(&t, &pc, dtable, &r);
            memcpy(dtable, r.dtable, t.U * t.d * sizeof(float));
            for (size_t k = 0; k < t.R * t.d; k++)
                dhat[k] += r.dhat[k];
            total += r.v.total;
            free_c(&r);
        }
        memcpy(t.target, keep, t.R * sizeof(uint32_t));
        NU_CHECK(fabs(total - all.v.total) <= 1e-9 * fabs(all.v.total), "split total %.12g vs %.12g",
                 total, all.v.total);
        nu_check_close(dot ? "dot split dhat" : "cosine split dhat", dhat, all.dhat, t.R * t.d, 1e-6f,
                       1e-5f);
        nu_check_close(dot ? "dot split dtable" : "cosine split dtable", dtable, all.dtable, t.U * t.d,
                       1e-6f, 1e-5f);
        free(keep);
        free(dhat);
        free(dtable);
        free_c(&all);
        free_case(&t);
    }
}

/* Empty batch, no exposed negatives at all, bad rows, small arena. */
static void edges(void)
{
    nu_rng g = {41};
    tcase t;
    fill_case(&t, &g, 7, 5, 12, 8, 3);
    nu_loss_config c = {1, 0.5, 0.1, 0, 0.1};

    tcase none = t;
    none.neg_off = NULL;
    check_case("no exposed negatives", &none, &c, 1);
    tcase nom = t;
    nom.M = 0;
    check_case("no shared negatives", &nom, &c, 1);

    nu_arena a;
    nu_arena_create(&a, nu_loss_scratch_bytes(t.d, t.R, t.M, n_exposed(&t)));
    nu_loss_value v;
    nu_row_list tr;
    nu_loss_batch b = batch_of(&t);
    b.R = 0;
    NU_CHECK(nu_loss_compute(&c, &b, t.table, t.U, t.d, &a, NULL, NULL, &tr, &v) == NU_OK &&
                 v.total == 0 && v.positions == 0 && tr.count == 0,
             "empty batch");
    a.used = 0;
    b = batch_of(&t);
    t.shared[3] = (uint32_t)t.U;
    NU_CHECK(nu_loss_compute(&c, &b, t.table, t.U, t.d, &a, NULL, NULL, NULL, &v) ==
                 NU_ERR_INVALID_ARG,
             "shared row out of range");
    t.shared[3] = 0;
    t.target[4] = (uint32_t)t.U + 5;
    NU_CHECK(nu_loss_compute(&c, &b, t.table, t.U, t.d, &a, NULL, NULL, NULL, &v) ==
                 NU_ERR_INVALID_ARG,
             "target row out of range");
    t.target[4] = 0;
    a.used = 0;
    a.cap = 4096;
    NU_CHECK(nu_loss_compute(&c, &b, t.table, t.U, t.d, &a, NULL, NULL, NULL, &v) == NU_ERR_NOMEM,
             "small arena");
    nu_arena_destroy(&a);
    free_case(&t);
}

int main(void)
{
    if (nu_init() != NU_OK) {
        fprintf(stderr, "nu_init: %s\n", nu_last_error());
        return 2;
    }
    printf("loss on ISA %s\n", nu_isa_active());
    small_cases();
    large_case();
    masking();
    split_batch();
    edges();
    printf("worst gradient error: %.3f of the tolerance\n", worst_rel);
    return nu_test_finish("unit_loss");
}
