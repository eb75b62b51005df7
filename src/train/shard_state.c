/* A sharded run's parameters: which rows each process owns, this process's
 * own copy (dense parameters and its rows, with their moments), and the
 * gather of every process's rows into process 0's full model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "shard_comm.h"
#include "train/shard.h"

static int field_of(const nu_model_config *c, const nu_param_spec *p)
{
    if (p->kind == NU_PARAM_DENSE)
        return -2;
    if (strcmp(p->name, "user_emb") == 0)
        return -1;
    for (size_t f = 0; f < c->n_prefix; f++) {
        char name[NU_PARAM_NAME_MAX];
        snprintf(name, sizeof name, "prefix.%s.emb", c->prefix[f].name);
        if (strcmp(name, p->name) == 0)
            return (int)f;
    }
    return -2;
}

/* The config of a model holding `rows[i]` rows of each embedding spec i
 * (the same dense parameters): a process's own part, or a step's. */
nu_model_config nu_shard_config(const nu_shard *sh, const nu_model_config *full, const size_t *rows)
{
    nu_model_config c = *full;
    for (size_t i = 0; i < sh->nspec; i++) {
        if (sh->field[i] == -1)
            c.num_users = rows[i];
        else if (sh->field[i] >= 0)
            c.prefix[sh->field[i]].size = rows[i];
    }
    return c;
}

/* Copies rows [lo, lo + n) of every embedding spec and every dense
 * parameter between two buffers of the same specs (different row counts). */
static void copy_part(const nu_shard *sh, const nu_param_layout *from, const float *src,
                      const nu_param_layout *to, float *dst, const size_t *lo_from, int dense)
{
    for (size_t i = 0; i < sh->nspec; i++) {
        const nu_param_spec *a = &from->specs[i], *b = &to->specs[i];
        if (sh->field[i] == -2) {
            if (dense)
                memcpy(dst + b->offset, src + a->offset, b->count * sizeof(float));
            continue;
        }
        size_t w = b->shape[1];
        memcpy(dst + b->offset, src + a->offset + lo_from[i] * w, b->shape[0] * w * sizeof(float));
    }
}

nu_status nu_shard_create(run *r, const nu_collectives *c)
{
    nu_shard *sh = calloc(1, sizeof *sh);
    if (!sh)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    r->shard = sh;
    sh->c = c;
    sh->R = c->ranks;
    sh->rank = c->rank;
    const nu_param_layout *l = &r->m->layout;
    size_t E = l->count, R = (size_t)sh->R;
    sh->nspec = E;
    sh->field = calloc(E, sizeof *sh->field);
    sh->first = calloc(E * (R + 1), sizeof *sh->first);
    sh->own_rows = calloc(E, sizeof *sh->own_rows);
    sh->own_buf = calloc(E, sizeof *sh->own_buf);
    sh->own_cap = calloc(E, sizeof *sh->own_cap);
    sh->need = calloc(E, sizeof *sh->need);
    sh->n_need = calloc(E, sizeof *sh->n_need);
    sh->need_cap = calloc(E, sizeof *sh->need_cap);
    size_t *own_n = calloc(E, sizeof *own_n), *own_lo = calloc(E, sizeof *own_lo);
    if (!sh->field || !sh->first || !sh->own_rows || !sh->own_buf || !sh->own_cap || !sh->need ||
        !sh->n_need || !sh->need_cap || !own_n || !own_lo) {
        free(own_n);
        free(own_lo);
        return nu_error(NU_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < E; i++) {
        const nu_param_spec *p = &l->specs[i];
        sh->field[i] = field_of(&r->m->cfg, p);
        if (sh->field[i] == -2) {
            sh->dense_floats += p->count;
            continue;
        }
        for (size_t q = 0; q <= R; q++)
            sh->first[i * (R + 1) + q] = p->shape[0] * q / R;
        own_lo[i] = sh->first[i * (R + 1) + (size_t)sh->rank];
        own_n[i] = sh->first[i * (R + 1) + (size_t)sh->rank + 1] - own_lo[i];
    }
    sh->own.cfg = nu_shard_config(sh, &r->m->cfg, own_n);
    nu_status s = nu_param_layout_build(&sh->own.cfg, &sh->own.layout);
    size_t total = sh->own.layout.total;
    if (s == NU_OK) {
        sh->own.params = aligned_alloc(64, (total * sizeof(float) + 63) / 64 * 64 + 64);
        sh->grad = calloc(total + 1, sizeof(float));
        sh->dense = malloc((sh->dense_floats + 1) * sizeof(float));
        if (!sh->own.params || !sh->grad || !sh->dense)
            s = nu_error(NU_ERR_NOMEM, "out of memory for this process's %zu parameters", total);
    }
    if (s == NU_OK)
        s = nu_adam_init(&sh->adam, &sh->own.layout, &r->adam.cfg);
    if (s == NU_OK) {
        nu_model_view_bind(&sh->own.cfg, &sh->own.layout, sh->own.params, &sh->own.w);
        copy_part(sh, l, r->m->params, &sh->own.layout, sh->own.params, own_lo, 1);
        copy_part(sh, l, r->adam.m, &sh->own.layout, sh->adam.m, own_lo, 1);
        copy_part(sh, l, r->adam.v, &sh->own.layout, sh->adam.v, own_lo, 1);
        sh->adam.step = r->adam.step;
        /* Only process 0 keeps the full copies (validation, out_dir). */
        if (sh->rank != 0) {
            free(r->m->params);
            r->m->params = NULL;
            memset(&r->m->w, 0, sizeof r->m->w);
            nu_adam_free(&r->adam);
        }
    }
    free(own_n);
    free(own_lo);
    return s;
}

void nu_shard_free(nu_shard *sh)
{
    if (!sh)
        return;
    for (size_t i = 0; i < sh->nspec; i++) {
        free(sh->own_buf ? sh->own_buf[i] : NULL);
        free(sh->need ? sh->need[i] : NULL);
    }
    free(sh->own_buf);
    free(sh->need);
    free(sh->own_cap);
    free(sh->n_need);
    free(sh->need_cap);
    free(sh->own_rows);
    free(sh->field);
    free(sh->first);
    nu_param_layout_free(&sh->own.layout);
    free(sh->own.params);
    nu_adam_free(&sh->adam);
    free(sh->grad);
    nu_param_layout_free(&sh->step.layout);
    free(sh->step.params);
    free(sh->shared_compact);
    free(sh->dense);
    free(sh->sbuf);
    free(sh->rbuf);
    free(sh);
}

/* One array (parameters, or a moment) of every embedding spec into process
 * 0's full array, each process's rows straight into their place. */
static nu_status gather_array(run *r, const float *own, float *full)
{
    nu_shard *sh = r->shard;
    size_t R = (size_t)sh->R;
    size_t *v = calloc(4 * R, sizeof *v);
    if (!v)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    size_t *sb = v, *so = v + R, *rb = v + 2 * R, *ro = v + 3 * R;
    nu_status s = NU_OK;
    char none = 0;
    for (size_t i = 0; s == NU_OK && i < sh->nspec; i++) {
        if (sh->field[i] == -2)
            continue;
        const nu_param_spec *ps = &sh->own.layout.specs[i];
        size_t w = ps->shape[1];
        memset(v, 0, 4 * R * sizeof *v);
        sb[0] = ps->shape[0] * w * sizeof(float);
        const nu_param_spec *pf = sh->rank == 0 ? &r->m->layout.specs[i] : NULL;
        for (size_t q = 0; pf && q < R; q++) {
            size_t lo = sh->first[i * (R + 1) + q], hi = sh->first[i * (R + 1) + q + 1];
            rb[q] = (hi - lo) * w * sizeof(float);
            ro[q] = (pf->offset + lo * w) * sizeof(float);
        }
        s = nu_shard_alltoallv(sh, own + ps->offset, sb, so, full ? (void *)full : &none, rb, ro,
                               &sh->last.small_bytes);
    }
    free(v);
    if (s == NU_OK && sh->rank == 0) /* dense parameters: the same on every process */
        for (size_t i = 0; i < sh->nspec; i++)
            if (sh->field[i] == -2)
                memcpy(full + r->m->layout.specs[i].offset, own + sh->own.layout.specs[i].offset,
                       sh->own.layout.specs[i].count * sizeof(float));
    return s;
}

nu_status nu_shard_gather(run *r, int moments)
{
    nu_shard *sh = r->shard;
    int zero = sh->rank == 0;
    nu_status s = gather_array(r, sh->own.params, zero ? r->m->params : NULL);
    if (s == NU_OK && moments)
        s = gather_array(r, sh->adam.m, zero ? r->adam.m : NULL);
    if (s == NU_OK && moments)
        s = gather_array(r, sh->adam.v, zero ? r->adam.v : NULL);
    if (zero)
        r->adam.step = sh->adam.step;
    return s;
}
