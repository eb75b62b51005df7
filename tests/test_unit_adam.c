/* Adam: dense updates equal a double-precision reference, lazy updates move
 * only the touched rows (parameters and moments of other rows keep their
 * bits), clipping by global norm, the learning-rate schedule, row unions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_test_util.h"
#include "train/adam.h"

static nu_param_layout layout(void)
{
    nu_model_config c;
    nu_config_parse("{\"num_users\": 6, \"d\": 4, \"heads\": 1, \"ffn\": 4, \"max_users\": 2, "
                    "\"enc_layers\": 1, \"dec_layers\": 1}", "t", &c);
    nu_param_layout l;
    nu_param_layout_build(&c, &l);
    return l;
}

int main(void)
{
    nu_param_layout l = layout();
    const nu_param_spec *users = nu_param_find(&l, "user_emb");
    size_t users_i = (size_t)(users - l.specs), n = l.total;
    float *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g), *p0 = malloc(n * sizeof *p0);
    nu_rng r = {5};
    nu_rng_fill(&r, p, n, -1, 1);
    memcpy(p0, p, n * sizeof *p);
    nu_adam_config c;
    nu_adam_defaults(&c);
    c.warmup_steps = 0;
    c.clip_norm = 0;
    nu_adam a;
    NU_CHECK(nu_adam_init(&a, &l, &c) == NU_OK, "init");
    nu_rows *rows = calloc(l.count, sizeof *rows);
    uint32_t touched[2] = {1, 4};
    rows[users_i].rows = touched;
    rows[users_i].count = 2;
    /* Double reference of 3 steps on every updated entry. */
    double *rp = malloc(n * sizeof *rp), *rm = calloc(n, sizeof *rm), *rv = calloc(n, sizeof *rv);
    for (size_t i = 0; i < n; i++)
        rp[i] = p[i];
    float *mask = calloc(n, sizeof *mask); /* 1 where a gradient may be nonzero */
    for (size_t i = 0; i < l.count; i++) {
        const nu_param_spec *s = &l.specs[i];
        if (s->kind == NU_PARAM_DENSE)
            for (size_t k = 0; k < s->count; k++)
                mask[s->offset + k] = 1;
    }
    for (int t = 0; t < 2; t++)
        for (size_t k = 0; k < 4; k++)
            mask[users->offset + touched[t] * 4 + k] = 1;
    int ok_ref = 1;
    for (int step = 1; step <= 3; step++) {
        for (size_t i = 0; i < n; i++)
            g[i] = mask[i] != 0 ? nu_rng_uniform(&r, -0.5f, 0.5f) : 0.0f;
        for (size_t i = 0; i < n; i++) {
            if (mask[i] == 0)
                continue;
            rm[i] = 0.9 * rm[i] + 0.1 * g[i];
            rv[i] = 0.999 * rv[i] + 0.001 * (double)g[i] * g[i];
            double mh = rm[i] / (1 - pow(0.9, step)), vh = rv[i] / (1 - pow(0.999, step));
            rp[i] -= 1e-3 * mh / (sqrt(vh) + 1e-8);
        }
        nu_adam_stats st;
        NU_CHECK(nu_adam_step(&a, &l, p, g, rows, &st) == NU_OK, "step %d: %s", step, nu_last_error());
        int zeroed = 1;
        for (size_t i = 0; i < n; i++)
            zeroed &= g[i] == 0.0f;
        NU_CHECK(zeroed, "step %d: gradients zeroed after the update", step);
    }
    for (size_t i = 0; i < n; i++)
        if (fabs(p[i] - rp[i]) > 1e-6 + 1e-5 * fabs(rp[i]))
            ok_ref = 0;
    NU_CHECK(ok_ref, "3 Adam steps equal the double reference");
    int lazy = 1;
    for (size_t row = 0; row < 6; row++) {
        if (row == 1 || row == 4)
            continue;
        size_t o = users->offset + row * 4;
        lazy &= memcmp(p + o, p0 + o, 16) == 0 && a.m[o] == 0 && a.v[o] == 0;
    }
    NU_CHECK(lazy, "untouched user rows keep their bits and zero moments");
    NU_CHECK(memcmp(p + users->offset + 4, p0 + users->offset + 4, 16) != 0, "touched rows move");

    /* Clipping: a gradient of norm 10 is scaled to norm 1. */
    nu_adam_config cc = c;
    cc.clip_norm = 1.0;
    nu_adam b;
    nu_adam_init(&b, &l, &cc);
    memset(g, 0, n * sizeof *g);
    g[l.specs[1].offset] = 6;
    g[l.specs[1].offset + 1] = 8;
    nu_adam_stats st;
    nu_adam_step(&b, &l, p, g, rows, &st);
    NU_CHECK(st.clipped && fabs(st.grad_norm - 10) < 1e-9, "norm 10 reported and clipped");
    NU_CHECK(fabsf(b.m[l.specs[1].offset] - 0.1f * 0.6f) < 1e-7f, "the clipped gradient (0.6) entered m");
    /* A NaN gradient and a row outside the table are errors. */
    g[l.specs[1].offset] = NAN;
    NU_CHECK(nu_adam_step(&b, &l, p, g, rows, &st) == NU_ERR_INVALID_ARG, "NaN gradient refused");
    g[l.specs[1].offset] = 0;
    uint32_t bad[1] = {6};
    rows[users_i].rows = bad;
    rows[users_i].count = 1;
    NU_CHECK(nu_adam_step(&b, &l, p, g, rows, &st) == NU_ERR_INVALID_ARG, "row outside the table refused");
    nu_adam_free(&b);

    /* Schedule: linear warm-up, cosine decay to min_lr_ratio. */
    nu_adam_config s;
    nu_adam_defaults(&s);
    s.warmup_steps = 10;
    s.total_steps = 110;
    NU_CHECK(fabs(nu_adam_lr(&s, 0) - 1e-4) < 1e-12 && fabs(nu_adam_lr(&s, 9) - 1e-3) < 1e-12,
             "warm-up from lr/10 to lr");
    NU_CHECK(fabs(nu_adam_lr(&s, 60) - 1e-3 * (0.1 + 0.9 * 0.5)) < 1e-12 &&
                 fabs(nu_adam_lr(&s, 110) - 1e-4) < 1e-12 && fabs(nu_adam_lr(&s, 500) - 1e-4) < 1e-12,
             "cosine decay: half-way and the floor");

    uint32_t x[] = {1, 3, 5}, y[] = {2, 3, 9}, u[6];
    size_t nu = nu_rows_union(x, 3, y, 3, u);
    NU_CHECK(nu == 5 && u[0] == 1 && u[1] == 2 && u[2] == 3 && u[3] == 5 && u[4] == 9, "row union");
    NU_CHECK(nu_rows_union(x, 0, y, 0, u) == 0, "empty union");

    nu_adam_free(&a);
    nu_param_layout_free(&l);
    free(p);
    free(g);
    free(p0);
    free(rows);
    free(rp);
    free(rm);
    free(rv);
    free(mask);
    return nu_test_finish("unit_adam");
}
