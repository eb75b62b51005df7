/* The backward pass against central finite differences of the C forward.
 *
 * Tiny model (d = 8, 2 heads, ffn 12, 2 encoder + 2 decoder layers,
 * max_users 4, one prefix field of each kind), both attention variants,
 * with and without [CLS].  A batch of items with n = 0, 1, 2, 4 users (a
 * repeated user, a multi field with a repeated value, missing values).
 * L = sum(R * û) over every decoder position for a fixed random R, so
 * dL/dû = R.  For a random sample of elements of EVERY tensor, the analytic
 * gradient must match (L(p + h) - L(p - h)) / 2h computed by the float
 * forward itself.  Also: untouched embedding rows get exactly zero, the
 * touched-row lists are exactly the rows used, the backward accumulates,
 * the training forward's output equals nu_forward_batch's, and a batch's
 * gradient is the sum of its items' gradients.
 *
 * Step and tolerance: h = 5e-3 * max(1, |p|).  Weights are drawn in
 * [-0.5, 0.5] (LN gains 1 +- 0.5) so the network is far from linear and
 * every path carries gradient.  Two errors pull h opposite ways: the
 * truncation error of the central difference, h^2/6 |L'''|, reaches ~3%
 * of |g| at h = 1e-2 for some embedding entries here (it shrinks 4x per
 * halving of h: truncation, not a wrong gradient); the float forward's
 * rounding (|L| ~ 10, relative ~1e-6 through 4 blocks) divided by 2h adds
 * ~1e-3 absolute at h = 5e-3.  So the check is
 * |fd - analytic| <= 2e-2 |analytic| + 2e-3: 2e-2 relative for gradients
 * of meaningful size (|g| ~ 0.1-1 typically), an absolute floor for the
 * ones the rounding noise swamps.  Measured: every sample within 0.33 of
 * that tolerance, on every ISA.  A wrong gradient (a missed path, a
 * factor, a transposition) is off by O(|g|): each mutation of backward.c
 * tried (mean weight, dropped K/V path of a decoder layer, dropped pos.cls)
 * made this test fail. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_test_util.h"
#include "model/backward.h"
#include "model/forward.h"

#define N_USERS 10
#define N_ITEMS 5

static nu_model *make_model(int bidirectional, int use_cls, uint64_t seed)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"num_users\": %d, \"d\": 8, \"heads\": 2, \"ffn\": 12, \"enc_layers\": 2, "
             "\"dec_layers\": 2, \"max_users\": 4, \"attention\": \"%s\", \"use_cls\": %s, "
             "\"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\", \"vocab\": 6}, "
             "{\"name\": \"y\", \"kind\": \"categorical\", \"vocab\": 5}, "
             "{\"name\": \"x\", \"kind\": \"dense\", \"dim\": 3}]}",
             N_USERS, bidirectional ? "bidirectional" : "causal", use_cls ? "true" : "false");
    nu_model_config c;
    nu_model *m = NULL;
    if (nu_config_parse(json, "test", &c) != NU_OK || nu_model_create(&c, &m) != NU_OK) {
        fprintf(stderr, "model: %s\n", nu_last_error());
        exit(2);
    }
    /* Large random weights (see the header): every tensor matters. */
    nu_rng r = {seed};
    for (size_t t = 0; t < m->layout.count; t++) {
        const nu_param_spec *p = &m->layout.specs[t];
        float *x = m->params + p->offset;
        nu_rng_fill(&r, x, p->count, -0.5f, 0.5f);
        size_t len = strlen(p->name);
        if (len > 2 && strcmp(p->name + len - 2, ".g") == 0)
            for (size_t i = 0; i < p->count; i++)
                x[i] += 1.0f;
    }
    return m;
}

/* Users only from rows 0..5 and multi values from 0..3, so rows 6..9 of
 * user_emb and row 4, 5 of prefix.g.emb stay unused. */
static void make_items(const nu_model *m, nu_items *items)
{
    static const uint32_t users[N_ITEMS][4] = {{0}, {3}, {1, 5}, {2, 4, 2, 0}, {5, 1, 3, 3}};
    static const size_t ns[N_ITEMS] = {0, 1, 2, 4, 4};
    /* per item: multi values, then the categorical one */
    static const uint32_t vals[N_ITEMS][4] = {{0}, {2, 3}, {1, 1, 3, 2}, {2}, {3, 2}};
    static const size_t counts[N_ITEMS][3] = {{0, 0, 0}, {1, 1, 0}, {3, 1, 0}, {0, 1, 0}, {1, 1, 0}};
    static const float dense[N_ITEMS][3] = {
        {0.5f, -1.0f, 0.25f}, {0, 0, 0}, {1.5f, 0.3f, -0.7f}, {-0.2f, 0.9f, 1.1f}, {0.4f, 0.4f, -2}};
    nu_items_init(items, &m->cfg);
    for (size_t i = 0; i < N_ITEMS; i++) {
        char id[16];
        snprintf(id, sizeof id, "i%zu", i);
        nu_status s = nu_items_push(items, &m->cfg, id, users[i], ns[i], vals[i], counts[i], dense[i]);
        NU_CHECK(s == NU_OK, "push item: %s", nu_last_error());
    }
}

typedef struct harness {
    nu_model *m;
    nu_items items;
    nu_arena arena;
    size_t rows;
    float *R, *out;
} harness;

/* L = sum R * û over items [first, first + count) (R rows from row r0). */
static double loss(harness *h, size_t first, size_t count, size_t r0)
{
    h->arena.used = 0;
    nu_status s = nu_forward_batch(&h->m->cfg, &h->m->w, &h->items, first, count, NU_FORWARD_TRAIN,
                                   &h->arena, h->out);
    if (s != NU_OK) {
        fprintf(stderr, "forward: %s\n", nu_last_error());
        exit(2);
    }
    size_t n = 0;
    for (size_t i = first; i < first + count; i++)
        n += nu_items_n_users(&h->items, i) + 1;
    double L = 0;
    for (size_t k = 0; k < n * h->m->cfg.d; k++)
        L += (double)h->R[r0 * h->m->cfg.d + k] * (double)h->out[k];
    return L;
}

/* Analytic gradient of the loss over items [first, first + count) added to grad. */
static void gradient(harness *h, size_t first, size_t count, size_t r0, float *grad,
                     nu_touched_rows *touched, float *out)
{
    nu_model_view gv;
    nu_model_view_bind(&h->m->cfg, &h->m->layout, grad, &gv);
    static nu_train_cache tc;
    h->arena.used = 0;
    nu_status s = nu_forward_train(&h->m->cfg, &h->m->w, &h->items, first, count, &h->arena, out, &tc);
    NU_CHECK(s == NU_OK, "forward_train: %s", nu_last_error());
    s = nu_backward_batch(&h->m->cfg, &h->m->w, &h->items, &tc, h->R + r0 * h->m->cfg.d, &gv,
                          &h->arena, touched);
    NU_CHECK(s == NU_OK, "backward: %s", nu_last_error());
}

static int in_list(const nu_row_list *l, uint32_t r)
{
    for (size_t i = 0; i < l->count; i++)
        if (l->rows[i] == r)
            return 1;
    return 0;
}

static int list_is(const nu_row_list *l, const uint32_t *want, size_t n)
{
    if (l->count != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (l->rows[i] != want[i])
            return 0;
    return 1;
}

/* Rows of an embedding table outside the touched list are exactly zero. */
static void check_untouched_zero(const float *g, size_t rows, size_t d, const nu_row_list *l,
                                 const char *what)
{
    int ok = 1;
    for (size_t r = 0; r < rows; r++)
        if (!in_list(l, (uint32_t)r))
            for (size_t j = 0; j < d; j++)
                ok &= g[r * d + j] == 0.0f;
    NU_CHECK(ok, "%s: untouched rows have exactly zero gradient", what);
}

static void test_config(int bidirectional, int use_cls)
{
    harness h;
    h.m = make_model(bidirectional, use_cls, 100 + (uint64_t)(2 * bidirectional + use_cls));
    const nu_model_config *c = &h.m->cfg;
    const nu_param_layout *lay = &h.m->layout;
    size_t d = c->d, total = lay->total;
    make_items(h.m, &h.items);
    h.rows = h.items.users_len + h.items.count;
    size_t bytes = nu_forward_train_bytes(c, N_ITEMS) + nu_backward_scratch_bytes(c, N_ITEMS);
    if (!nu_arena_create(&h.arena, bytes)) {
        fprintf(stderr, "arena\n");
        exit(2);
    }
    nu_rng r = {7 + (uint64_t)bidirectional};
    h.R = malloc(h.rows * d * sizeof(float));
    h.out = malloc(h.rows * d * sizeof(float));
    float *out2 = malloc(h.rows * d * sizeof(float));
    nu_rng_fill(&r, h.R, h.rows * d, -1, 1);
    float *grad = calloc(total, sizeof(float)), *grad2 = calloc(total, sizeof(float));
    nu_touched_rows touched;
    gradient(&h, 0, N_ITEMS, 0, grad, &touched, out2);

    /* The training forward computes what nu_forward_batch computes. */
    loss(&h, 0, N_ITEMS, 0);
    NU_CHECK(memcmp(out2, h.out, h.rows * d * sizeof(float)) == 0,
             "nu_forward_train output == nu_forward_batch TRAIN output (bidir %d cls %d)",
             bidirectional, use_cls);

    /* Touched rows: exactly the rows the items use. */
    static const uint32_t want_users[] = {0, 1, 2, 3, 4, 5}, want_g[] = {0, 1, 2, 3},
                          want_y[] = {0, 2, 3};
    NU_CHECK(list_is(&touched.users, want_users, 6), "touched users are 0..5 (got %zu rows)",
             touched.users.count);
    NU_CHECK(list_is(&touched.prefix[0], want_g, 4), "touched multi rows are 0..3 (got %zu)",
             touched.prefix[0].count);
    NU_CHECK(list_is(&touched.prefix[1], want_y, 3), "touched categorical rows are 0, 2, 3 (got %zu)",
             touched.prefix[1].count);
    NU_CHECK(touched.prefix[2].count == 0, "a dense field touches no rows");
    nu_model_view gv;
    nu_model_view_bind(c, lay, grad, &gv);
    check_untouched_zero(gv.user_emb, c->num_users, d, &touched.users, "user_emb");
    check_untouched_zero(gv.prefix_emb[0], c->prefix[0].size, d, &touched.prefix[0], "prefix.g.emb");
    check_untouched_zero(gv.prefix_emb[1], c->prefix[1].size, d, &touched.prefix[1], "prefix.y.emb");

    /* Finite differences on a sample of every tensor. */
    size_t checked = 0, bad = 0;
    double worst = 0, worst_big = 0, worst_ratio = 0;
    for (size_t t = 0; t < lay->count; t++) {
        const nu_param_spec *p = &lay->specs[t];
        int unused = !use_cls && (strcmp(p->name, "cls") == 0 || strcmp(p->name, "pos.cls") == 0);
        size_t nonzero = 0;
        /* embedding tables: mostly elements of the rows the items use */
        const nu_row_list *used = NULL;
        if (strcmp(p->name, "user_emb") == 0)
            used = &touched.users;
        else if (strcmp(p->name, "prefix.g.emb") == 0)
            used = &touched.prefix[0];
        else if (strcmp(p->name, "prefix.y.emb") == 0)
            used = &touched.prefix[1];
        for (int k = 0; k < (used ? 12 : 6); k++) {
            size_t e = nu_rng_range(&r, 0, p->count - 1);
            if (used && k >= 2)
                e = (size_t)used->rows[nu_rng_range(&r, 0, used->count - 1)] * d +
                    nu_rng_range(&r, 0, d - 1);
            float *x = h.m->params + p->offset + e, x0 = *x;
            float step = 5e-3f * (fabsf(x0) > 1 ? fabsf(x0) : 1);
            *x = x0 + step;
            double lp = loss(&h, 0, N_ITEMS, 0);
            *x = x0 - step;
            double lm = loss(&h, 0, N_ITEMS, 0);
            *x = x0;
            double fd = (lp - lm) / (2.0 * (double)step), an = grad[p->offset + e];
            double err = fabs(fd - an), lim = 2e-2 * fabs(an) + 2e-3;
            checked++;
            nonzero += fabs(an) > 1e-2;
            if (err / lim > worst_ratio)
                worst_ratio = err / lim;
            if (err > lim) {
                bad++;
                printf("  %s[%zu]: analytic %.6g, finite difference %.6g\n", p->name, e, an, fd);
            }
            if (fabs(an) > 1e-2 && err / fabs(an) > worst)
                worst = err / fabs(an);
            if (fabs(an) > 1e-1 && err / fabs(an) > worst_big)
                worst_big = err / fabs(an);
        }
        /* Each tensor carries gradient (else the check would be vacuous),
         * except cls/pos.cls without CLS and unused embedding rows. */
        if (!unused && p->kind == NU_PARAM_DENSE)
            NU_CHECK(nonzero > 0, "%s has a nonzero gradient in the sample", p->name);
    }
    NU_CHECK(bad == 0, "finite differences: %zu of %zu samples off (bidir %d cls %d)", bad, checked,
             bidirectional, use_cls);
    printf("bidirectional %d cls %d: %zu samples, worst relative error %.2e (|g| > 1e-2), "
           "%.2e (|g| > 0.1); worst error / tolerance %.2f\n", bidirectional, use_cls, checked, worst,
           worst_big, worst_ratio);
    if (!use_cls) {
        NU_CHECK(gv.cls[0] == 0 && gv.pos_cls[0] == 0, "no CLS: cls gets no gradient");
    }

    /* Accumulation: a second backward adds the same gradient again. */
    memcpy(grad2, grad, total * sizeof(float));
    gradient(&h, 0, N_ITEMS, 0, grad2, NULL, out2);
    float gmax = 0;
    for (size_t k = 0; k < total; k++) {
        gmax = fabsf(grad[k]) > gmax ? fabsf(grad[k]) : gmax;
    }
    float *twice = malloc(total * sizeof(float));
    for (size_t k = 0; k < total; k++)
        twice[k] = 2 * grad[k];
    /* not bit-exact: a tensor summing several contributions rounds
     * (g + a1) + a2 instead of g + (a1 + a2) */
    nu_check_close("the backward accumulates (+=) into the gradient", grad2, twice, total,
                   1e-6f * gmax, 1e-5f);
    free(twice);

    /* Per-item batches sum to the whole batch's gradient. */
    memset(grad2, 0, total * sizeof(float));
    size_t r0 = 0;
    for (size_t i = 0; i < N_ITEMS; i++) {
        gradient(&h, i, 1, r0, grad2, NULL, out2);
        r0 += nu_items_n_users(&h.items, i) + 1;
    }
    nu_check_close("sum of per-item gradients", grad2, grad, total, 1e-5f * gmax, 1e-4f);

    free(grad);
    free(grad2);
    free(out2);
    free(h.R);
    free(h.out);
    nu_arena_destroy(&h.arena);
    nu_items_free(&h.items);
    nu_model_free(h.m);
}

/* An empty batch and the n = 0, no-prefix, no-CLS item (no encoder tokens). */
static void test_empty(void)
{
    const char *json = "{\"num_users\": 3, \"d\": 8, \"heads\": 2, \"ffn\": 12, \"enc_layers\": 1, "
                       "\"dec_layers\": 1, \"max_users\": 2, \"use_cls\": false}";
    nu_model_config c;
    nu_model *m = NULL;
    if (nu_config_parse(json, "test", &c) != NU_OK || nu_model_create(&c, &m) != NU_OK)
        exit(2);
    nu_model_init_random(m, 3);
    nu_items items;
    nu_items_init(&items, &m->cfg);
    nu_items_push(&items, &m->cfg, "empty", NULL, 0, NULL, NULL, NULL);
    nu_arena a;
    if (!nu_arena_create(&a, nu_forward_train_bytes(&c, 1) + nu_backward_scratch_bytes(&c, 1)))
        exit(2);
    float *grad = calloc(m->layout.total, sizeof(float)), out[8], R[8] = {1, -1, 2, 0, 0, 3, 1, 1};
    nu_model_view gv;
    nu_model_view_bind(&m->cfg, &m->layout, grad, &gv);
    static nu_train_cache tc;
    nu_touched_rows touched;
    nu_status s = nu_forward_train(&m->cfg, &m->w, &items, 0, 1, &a, out, &tc);
    NU_CHECK(s == NU_OK, "forward, T = 0: %s", nu_last_error());
    s = nu_backward_batch(&m->cfg, &m->w, &items, &tc, R, &gv, &a, &touched);
    NU_CHECK(s == NU_OK, "backward, T = 0: %s", nu_last_error());
    NU_CHECK(touched.users.count == 0, "no users touched");
    float s1 = 0;
    for (size_t j = 0; j < 8; j++)
        s1 += fabsf(gv.query_pos[j]) + fabsf(gv.dec[0].o.b[j]);
    NU_CHECK(s1 > 0, "the lone query still gets gradient (query_pos, bo)");
    a.used = 0;
    s = nu_forward_train(&m->cfg, &m->w, &items, 0, 0, &a, out, &tc);
    NU_CHECK(s == NU_OK && nu_backward_batch(&m->cfg, &m->w, &items, &tc, R, &gv, &a, NULL) == NU_OK,
             "empty batch is a no-op");
    free(grad);
    nu_arena_destroy(&a);
    nu_items_free(&items);
    nu_model_free(m);
}

/* The byte functions cover a full batch of max_users items; a short arena
 * is an error, not an overrun. */
static void test_sizing(void)
{
    nu_model *m = make_model(0, 1, 9);
    const nu_model_config *c = &m->cfg;
    nu_items items;
    nu_items_init(&items, c);
    uint32_t users[4] = {1, 2, 3, 1}, vals[6] = {1, 2, 3, 1, 2, 4};
    size_t counts[3] = {5, 1, 0};
    for (int i = 0; i < 3; i++)
        nu_items_push(&items, c, "full", users, 4, vals, counts, NULL);
    size_t need = nu_forward_train_bytes(c, 3) + nu_backward_scratch_bytes(c, 3);
    nu_arena a;
    if (!nu_arena_create(&a, need))
        exit(2);
    size_t rows = 3 * 5 * c->d;
    float *grad = calloc(m->layout.total, sizeof(float)), *out = malloc(rows * sizeof(float));
    float *R = calloc(rows, sizeof(float));
    nu_model_view gv;
    nu_model_view_bind(c, &m->layout, grad, &gv);
    static nu_train_cache tc;
    nu_status s = nu_forward_train(c, &m->w, &items, 0, 3, &a, out, &tc);
    NU_CHECK(s == NU_OK, "full batch forward fits: %s", nu_last_error());
    s = nu_backward_batch(c, &m->w, &items, &tc, R, &gv, &a, NULL);
    NU_CHECK(s == NU_OK, "full batch backward fits: %s", nu_last_error());
    NU_CHECK(a.used <= need, "arena use %zu <= %zu", a.used, need);
    a.used = a.cap - nu_backward_scratch_bytes(c, 3) / 2; /* leave too little for the backward */
    s = nu_backward_batch(c, &m->w, &items, &tc, R, &gv, &a, NULL);
    NU_CHECK(s == NU_ERR_INTERNAL, "a short arena is reported");
    free(grad);
    free(out);
    free(R);
    nu_arena_destroy(&a);
    nu_items_free(&items);
    nu_model_free(m);
}

int main(void)
{
    test_sizing();
    for (int bidir = 0; bidir < 2; bidir++)
        for (int cls = 0; cls < 2; cls++)
            test_config(bidir, cls);
    test_empty();
    return nu_test_finish("unit_backward");
}
