#include "adam.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

void nu_adam_defaults(nu_adam_config *c)
{
    c->lr = 1e-3;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->clip_norm = 1.0;
    c->warmup_steps = 100;
    c->total_steps = 0;
    c->min_lr_ratio = 0.1;
}

nu_status nu_adam_init(nu_adam *a, const nu_param_layout *l, const nu_adam_config *c)
{
    memset(a, 0, sizeof *a);
    a->cfg = *c;
    a->total = l->total;
    a->m = calloc(l->total ? l->total : 1, sizeof(float));
    a->v = calloc(l->total ? l->total : 1, sizeof(float));
    if (!a->m || !a->v) {
        nu_adam_free(a);
        return nu_error(NU_ERR_NOMEM, "out of memory for Adam moments (%zu parameters)", l->total);
    }
    return NU_OK;
}

void nu_adam_free(nu_adam *a)
{
    free(a->m);
    free(a->v);
    memset(a, 0, sizeof *a);
}

double nu_adam_lr(const nu_adam_config *c, uint64_t t)
{
    double lr = c->lr;
    if (c->warmup_steps && t < c->warmup_steps)
        return lr * (double)(t + 1) / (double)c->warmup_steps;
    if (c->total_steps > c->warmup_steps) {
        double span = (double)(c->total_steps - c->warmup_steps);
        double p = (double)(t - c->warmup_steps) / span;
        if (p > 1)
            p = 1;
        return lr * (c->min_lr_ratio + (1 - c->min_lr_ratio) * 0.5 * (1 + cos(M_PI * p)));
    }
    return lr;
}

size_t nu_rows_union(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, uint32_t *out)
{
    size_t i = 0, j = 0, n = 0;
    while (i < na || j < nb) {
        uint32_t x = i < na && (j >= nb || a[i] <= b[j]) ? a[i] : b[j];
        if (i < na && a[i] == x)
            i++;
        if (j < nb && b[j] == x)
            j++;
        out[n++] = x;
    }
    return n;
}

/* The Adam update of n consecutive parameters (one tensor, or one row). */
static void update(float *p, float *g, float *m, float *v, size_t n, float scale, double lr,
                   const nu_adam_config *c, double bc1, double bc2)
{
    const float b1 = (float)c->beta1, b2 = (float)c->beta2;
    const float step = (float)(lr / bc1), eps = (float)c->eps, rbc2 = (float)(1.0 / sqrt(bc2));
    for (size_t k = 0; k < n; k++) {
        float gk = g[k] * scale;
        m[k] = b1 * m[k] + (1 - b1) * gk;
        v[k] = b2 * v[k] + (1 - b2) * gk * gk;
        p[k] -= step * m[k] / (sqrtf(v[k]) * rbc2 + eps);
        g[k] = 0; /* ready for the next step */
    }
}

static double sq_sum(const float *g, size_t n)
{
    double s = 0;
    for (size_t k = 0; k < n; k++)
        s += (double)g[k] * g[k];
    return s;
}

nu_status nu_adam_grad_sq(const nu_param_layout *l, const float *grads, const nu_rows *rows,
                          double *sq)
{
    /* Over everything that has gradient, in a fixed order. */
    double ss = 0;
    for (size_t i = 0; i < l->count; i++) {
        const nu_param_spec *p = &l->specs[i];
        if (p->kind == NU_PARAM_DENSE) {
            ss += sq_sum(grads + p->offset, p->count);
            continue;
        }
        size_t w = p->shape[1];
        for (size_t r = 0; r < rows[i].count; r++) {
            if (rows[i].rows[r] >= p->shape[0])
                return nu_error(NU_ERR_INVALID_ARG, "row %u outside %s", rows[i].rows[r], p->name);
            ss += sq_sum(grads + p->offset + (size_t)rows[i].rows[r] * w, w);
        }
    }
    *sq = ss;
    return NU_OK;
}

nu_status nu_adam_apply(nu_adam *a, const nu_param_layout *l, float *params, float *grads,
                        const nu_rows *rows, double norm, nu_adam_stats *stats)
{
    if (l->total != a->total)
        return nu_error(NU_ERR_INVALID_ARG, "Adam state made for another parameter layout");
    if (!isfinite(norm))
        return nu_error(NU_ERR_INVALID_ARG, "gradient norm is not finite (step %llu)",
                        (unsigned long long)a->step);
    float scale = 1.0f;
    int clipped = a->cfg.clip_norm > 0 && norm > a->cfg.clip_norm;
    if (clipped)
        scale = (float)(a->cfg.clip_norm / norm);
    double lr = nu_adam_lr(&a->cfg, a->step);
    a->step++;
    double bc1 = 1 - pow(a->cfg.beta1, (double)a->step), bc2 = 1 - pow(a->cfg.beta2, (double)a->step);
    /* Element by element, so the threads split the tensors and rows
     * without changing a bit. */
    const int T = a->threads > 1 ? a->threads : 1;
#pragma omp parallel num_threads(T) if (T > 1)
    for (size_t i = 0; i < l->count; i++) {
        const nu_param_spec *p = &l->specs[i];
        size_t o = p->offset;
        if (p->kind == NU_PARAM_DENSE) {
            const size_t chunk = 4096, parts = (p->count + chunk - 1) / chunk;
#pragma omp for schedule(static) nowait
            for (size_t q = 0; q < parts; q++) {
                size_t k = o + q * chunk, left = p->count - q * chunk;
                size_t n = left < chunk ? left : chunk;
                update(params + k, grads + k, a->m + k, a->v + k, n, scale, lr, &a->cfg, bc1, bc2);
            }
            continue;
        }
        size_t w = p->shape[1];
#pragma omp for schedule(static) nowait
        for (size_t r = 0; r < rows[i].count; r++) {
            size_t ro = o + (size_t)rows[i].rows[r] * w;
            update(params + ro, grads + ro, a->m + ro, a->v + ro, w, scale, lr, &a->cfg, bc1, bc2);
        }
    }
    if (stats) {
        stats->grad_norm = norm;
        stats->lr = lr;
        stats->clipped = clipped;
    }
    return NU_OK;
}

nu_status nu_adam_step(nu_adam *a, const nu_param_layout *l, float *params, float *grads,
                       const nu_rows *rows, nu_adam_stats *stats)
{
    if (l->total != a->total)
        return nu_error(NU_ERR_INVALID_ARG, "Adam state made for another parameter layout");
    double ss;
    nu_status s = nu_adam_grad_sq(l, grads, rows, &ss);
    return s == NU_OK ? nu_adam_apply(a, l, params, grads, rows, sqrt(ss), stats) : s;
}
