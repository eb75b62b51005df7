/* The whole training objective: generator + three-term loss, gradients
 * against central finite differences of the loss computed by the C forward
 * itself, on a tiny configuration, for each term alone and summed, both
 * attention variants.  The user table takes gradient along two paths (the
 * context users through the generator, and the targets / negatives through
 * the loss): the composition is what this test adds to the backward and
 * loss tests. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_test_util.h"
#include "model/backward.h"
#include "model/forward.h"
#include "train/loss.h"

#define N_ITEMS 3
#define U 8

static nu_model *make_model(int bidirectional)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"num_users\": %d, \"d\": 8, \"heads\": 2, \"ffn\": 12, \"enc_layers\": 1, "
             "\"dec_layers\": 1, \"max_users\": 4, \"attention\": \"%s\", "
             "\"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\", \"vocab\": 4}]}",
             U, bidirectional ? "bidirectional" : "causal");
    nu_model_config c;
    nu_model *m;
    if (nu_config_parse(json, "t", &c) != NU_OK || nu_model_create(&c, &m) != NU_OK)
        exit(2);
    nu_model_init_random(m, 5);
    /* Larger user rows than the 0.02 init so every path carries signal. */
    nu_rng r = {8};
    nu_rng_fill(&r, m->w.user_emb, U * 8, -1, 1);
    return m;
}

typedef struct problem {
    nu_items items;
    uint32_t target[32], neg_off[33], neg[64], shared[5];
    size_t R;
    nu_loss_config lc;
} problem;

static void make_problem(const nu_model *m, problem *p)
{
    static const uint32_t users[N_ITEMS][3] = {{1, 2, 3}, {4, 0, 0}, {0, 0, 0}};
    static const size_t ns[N_ITEMS] = {3, 1, 0};
    static const uint32_t vals[2] = {1, 3};
    size_t counts[1];
    nu_items_init(&p->items, &m->cfg);
    for (size_t i = 0; i < N_ITEMS; i++) {
        counts[0] = i == 0 ? 2 : 0;
        nu_items_push(&p->items, &m->cfg, "i", users[i], ns[i], vals, counts, NULL);
    }
    /* Targets: the context users then the next one (as training windows do). */
    static const uint32_t next[N_ITEMS] = {5, 6, 7};
    p->R = 0;
    p->neg_off[0] = 0;
    size_t nn = 0;
    for (size_t i = 0; i < N_ITEMS; i++)
        for (size_t j = 0; j <= ns[i]; j++) {
            p->target[p->R] = j < ns[i] ? users[i][j] : next[i];
            p->neg[nn++] = (uint32_t)((p->target[p->R] + 3) % U);
            p->neg_off[++p->R] = (uint32_t)nn;
        }
    static const uint32_t shared[5] = {0, 2, 6, 7, 5}; /* includes targets: accidental hits */
    memcpy(p->shared, shared, sizeof shared);
}

/* The user table before perturbation: L_aux's target is sg(u), so finite
 * differences must hold it fixed while the generator and the other terms
 * see the perturbed table. */
static float frozen[U * 8];

/* L for the current weights (the forward in training mode + the loss). */
static double loss_value(const nu_model *m, problem *p, nu_arena *a)
{
    float out[32 * 8];
    a->used = 0;
    nu_train_cache cache;
    if (nu_forward_train(&m->cfg, &m->w, &p->items, 0, N_ITEMS, a, out, &cache) != NU_OK)
        exit(2);
    nu_loss_batch lb = {.R = p->R, .uhat = out, .ld_uhat = 8, .target = p->target,
                        .neg_off = p->neg_off, .neg_rows = p->neg, .M = 5, .shared = p->shared};
    nu_loss_config rest = p->lc, aux = p->lc;
    rest.lambda_aux = 0;
    aux.lambda_con = aux.lambda_ce = 0;
    nu_loss_value v, va;
    if (nu_loss_compute(&rest, &lb, m->w.user_emb, U, 8, a, NULL, NULL, NULL, &v) != NU_OK ||
        nu_loss_compute(&aux, &lb, frozen, U, 8, a, NULL, NULL, NULL, &va) != NU_OK)
        exit(2);
    return v.total + va.total;
}

static void check(int bidirectional, double l1, double l2, double l3)
{
    nu_model *m = make_model(bidirectional);
    problem p;
    make_problem(m, &p);
    nu_loss_config_defaults(&m->cfg, &p.lc);
    p.lc.lambda_con = l1;
    p.lc.lambda_ce = l2;
    p.lc.lambda_aux = l3;
    nu_arena a;
    nu_arena_create(&a, nu_forward_train_bytes(&m->cfg, N_ITEMS) + nu_backward_scratch_bytes(&m->cfg, N_ITEMS) +
                            nu_loss_scratch_bytes(8, 32, 5, 64) + (1 << 16));
    float *grad = calloc(m->layout.total, sizeof *grad);
    nu_model_view gv;
    nu_model_view_bind(&m->cfg, &m->layout, grad, &gv);
    float out[32 * 8], dhat[32 * 8];
    nu_train_cache cache;
    nu_forward_train(&m->cfg, &m->w, &p.items, 0, N_ITEMS, &a, out, &cache);
    nu_loss_batch lb = {.R = p.R, .uhat = out, .ld_uhat = 8, .target = p.target,
                        .neg_off = p.neg_off, .neg_rows = p.neg, .M = 5, .shared = p.shared};
    nu_loss_value v;
    nu_row_list rows;
    nu_touched_rows touched;
    NU_CHECK(nu_loss_compute(&p.lc, &lb, m->w.user_emb, U, 8, &a, dhat, gv.user_emb, &rows, &v) == NU_OK,
             "loss: %s", nu_last_error());
    NU_CHECK(nu_backward_batch(&m->cfg, &m->w, &p.items, &cache, dhat, &gv, &a, &touched) == NU_OK,
             "backward: %s", nu_last_error());
    memcpy(frozen, m->w.user_emb, sizeof frozen);
    /* Central differences on every parameter of the tiny model. */
    size_t bad = 0, checked = 0;
    double worst = 0;
    for (size_t i = 0; i < m->layout.total; i++) {
        float keep = m->params[i];
        /* Richardson extrapolation of two central differences cancels the
         * h^2 term: cos / tau with tau = 0.1 is sharp enough for it to
         * matter at steps large enough to stay above fp32 noise. */
        double dh[2];
        for (int k = 0; k < 2; k++) {
            float h = (k ? 2.5e-3f : 5e-3f) * (fabsf(keep) > 1 ? fabsf(keep) : 1);
            m->params[i] = keep + h;
            double lp = loss_value(m, &p, &a);
            m->params[i] = keep - h;
            double lm = loss_value(m, &p, &a);
            m->params[i] = keep;
            dh[k] = (lp - lm) / (2.0 * (double)h);
        }
        double fd = (4 * dh[1] - dh[0]) / 3, g = grad[i];
        double err = fabs(fd - g);
        /* fp32 forward + O(h^2) truncation: 2% relative plus an absolute floor. */
        if (err > 2e-2 * fabs(g) + 2e-3) {
            if (bad < 4) {
                const char *name = "?";
                for (size_t k = 0; k < m->layout.count; k++)
                    if (i >= m->layout.specs[k].offset && i < m->layout.specs[k].offset + m->layout.specs[k].count)
                        name = m->layout.specs[k].name;
                fprintf(stderr, "  %s [%zu]: finite difference %.5g, gradient %.5g\n", name, i, fd, g);
            }
            bad++;
        }
        worst = err > worst ? err : worst;
        checked++;
    }
    NU_CHECK(bad == 0, "%s, lambda (%g, %g, %g): %zu of %zu gradients differ from finite differences "
             "(worst %g)", bidirectional ? "bidirectional" : "causal", l1, l2, l3, bad, checked, worst);
    printf("%s lambda (%g, %g, %g): %zu gradients, worst |fd - g| %.2e, loss %.4f\n",
           bidirectional ? "bidirectional" : "causal", l1, l2, l3, checked, worst, v.total);
    free(grad);
    nu_arena_destroy(&a);
    nu_items_free(&p.items);
    nu_model_free(m);
}

int main(void)
{
    if (nu_init() != NU_OK)
        return 2;
    for (int bi = 0; bi < 2; bi++) {
        check(bi, 1, 0, 0);
        check(bi, 0, 1, 0);
        check(bi, 0, 0, 1);
        check(bi, 1, 0.5, 0.1);
    }
    return nu_test_finish("unit_train_grad");
}
