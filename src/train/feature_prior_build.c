/* The feature prior of a new model (feature_prior_build.h). */
#include "train/feature_prior_build.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

typedef struct value_mass {
    uint32_t field, value;
    size_t mass; /* positives on training items holding it */
} value_mass;

static int by_mass(const void *a, const void *b)
{
    const value_mass *x = a, *y = b;
    if (x->mass != y->mass)
        return x->mass > y->mass ? -1 : 1;
    if (x->field != y->field)
        return x->field < y->field ? -1 : 1;
    return x->value < y->value ? -1 : x->value > y->value;
}

static int counts_as_value(const nu_model *m, size_t f, uint32_t v)
{
    return m->cfg.prefix[f].kind != NU_FIELD_DENSE && v != 0 && v < m->cfg.prefix[f].size;
}

/* Every value's mass; returns how many values there are (all kept, even at 0). */
static size_t value_masses(const nu_model *m, const nu_dataset *ds, value_mass **out)
{
    size_t n = 0, k = ds->cfg.n_prefix;
    for (size_t f = 0; f < m->cfg.n_prefix; f++)
        if (m->cfg.prefix[f].kind != NU_FIELD_DENSE)
            n += m->cfg.prefix[f].size;
    value_mass *vm = calloc(n + 1, sizeof *vm);
    size_t *base = calloc(m->cfg.n_prefix + 1, sizeof *base);
    if (!vm || !base) {
        free(vm);
        free(base);
        return (size_t)-1;
    }
    size_t at = 0;
    for (size_t f = 0; f < m->cfg.n_prefix; f++) {
        base[f] = at;
        if (m->cfg.prefix[f].kind == NU_FIELD_DENSE)
            continue;
        for (size_t v = 0; v < m->cfg.prefix[f].size; v++)
            vm[at + v] = (value_mass){(uint32_t)f, (uint32_t)v, 0};
        at += m->cfg.prefix[f].size;
    }
    for (size_t i = 0; i < ds->num_items; i++) {
        if (ds->split[i] != NU_SPLIT_TRAIN)
            continue;
        size_t np = nu_dataset_n_pos(ds, i);
        for (size_t f = 0; f < m->cfg.n_prefix; f++)
            for (size_t j = ds->feats.feat_off[i * k + f]; j < ds->feats.feat_off[i * k + f + 1]; j++)
                if (counts_as_value(m, f, ds->feats.feat_vals[j]))
                    vm[base[f] + ds->feats.feat_vals[j]].mass += np;
    }
    free(base);
    *out = vm;
    return n;
}

/* 1 when train item i holds value v of field f. */
static int item_holds(const nu_dataset *ds, size_t i, uint32_t f, uint32_t v)
{
    size_t k = ds->cfg.n_prefix;
    for (size_t j = ds->feats.feat_off[i * k + f]; j < ds->feats.feat_off[i * k + f + 1]; j++)
        if (ds->feats.feat_vals[j] == v)
            return 1;
    return 0;
}

nu_status nu_feature_prior_build(nu_model *m, const nu_dataset *ds)
{
    m->n_feature_prior = 0;
    free(m->user_feature_prior);
    m->user_feature_prior = NULL;
    value_mass *vm = NULL;
    size_t nv = value_masses(m, ds, &vm);
    if (nv == (size_t)-1)
        return nu_error(NU_ERR_NOMEM, "out of memory for the feature prior");
    qsort(vm, nv, sizeof *vm, by_mass);
    size_t r = 0;
    while (r < nv && r < NU_FEATURE_PRIOR_MAX && vm[r].mass > 0)
        r++;
    size_t U = m->cfg.num_users;
    float *fp = r ? calloc(U * r + 1, sizeof *fp) : NULL;
    if (r && !fp) {
        free(vm);
        return nu_error(NU_ERR_NOMEM, "out of memory for the feature prior");
    }
    for (size_t i = 0; r && i < ds->num_items; i++) {
        if (ds->split[i] != NU_SPLIT_TRAIN || nu_dataset_n_pos(ds, i) == 0)
            continue;
        for (size_t c = 0; c < r; c++)
            if (item_holds(ds, i, vm[c].field, vm[c].value))
                for (size_t p = ds->pos.off[i]; p < ds->pos.off[i + 1]; p++)
                    fp[(size_t)ds->pos.user[p] * r + c] += 1.0f;
    }
    for (size_t e = 0; e < U * r; e++)
        fp[e] = log1pf(fp[e]);
    for (size_t c = 0; c < r; c++) {
        m->fp_values[c][0] = (int32_t)vm[c].field;
        m->fp_values[c][1] = (int32_t)vm[c].value;
    }
    free(vm);
    m->n_feature_prior = r;
    m->user_feature_prior = fp;
    return NU_OK;
}
