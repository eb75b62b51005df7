#include "model.h"
#include "model/feature_prior.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "io/atomic_dir.h"
#include "io/safetensors.h"
#include "util/path.h"
#include "util/rng.h"

#define FORMAT_TAG "nextuser-1"
#define USER_PRIOR "user_prior" /* optional tensor: the serving prior */

static int has_vocab(const nu_field_config *f) { return f->kind != NU_FIELD_DENSE; }

static nu_status alloc_model(const nu_model_config *c, nu_model **out)
{
    nu_model *m = calloc(1, sizeof *m);
    if (!m)
        return nu_error(NU_ERR_NOMEM, "out of memory for the model");
    m->cfg = *c;
    nu_status s = nu_param_layout_build(c, &m->layout);
    if (s == NU_OK && (double)m->layout.total > NU_CONFIG_MAX_PARAMS)
        s = nu_error(NU_ERR_INVALID_ARG, "%zu parameters: more than the limit of 2^32 (16 GiB)",
                     m->layout.total);
    if (s == NU_OK) {
        size_t bytes = (m->layout.total * sizeof(float) + 63) / 64 * 64;
        m->params = aligned_alloc(64, bytes ? bytes : 64);
        if (!m->params)
            s = nu_error(NU_ERR_NOMEM, "out of memory for %zu model parameters", m->layout.total);
        else
            memset(m->params, 0, bytes);
    }
    if (s != NU_OK) {
        nu_model_free(m);
        return s;
    }
    nu_model_view_bind(&m->cfg, &m->layout, m->params, &m->w);
    *out = m;
    return NU_OK;
}

static nu_status synth_ids(nu_idmap *map, size_t n, const char *prefix, int unk_first)
{
    char name[32];
    for (size_t i = 0; i < n; i++) {
        if (unk_first && i == 0)
            snprintf(name, sizeof name, "<unk>");
        else
            snprintf(name, sizeof name, "%s%zu", prefix, i);
        nu_status s = nu_idmap_add(map, name, strlen(name), NULL, 0);
        if (s != NU_OK)
            return s;
    }
    return NU_OK;
}

nu_status nu_model_create(const nu_model_config *c, nu_model **out)
{
    nu_status s = nu_config_validate(c, "config");
    if (s != NU_OK)
        return s;
    nu_model *m;
    if ((s = alloc_model(c, &m)) != NU_OK)
        return s;
    s = synth_ids(&m->users, c->num_users, "u", 0);
    for (size_t f = 0; s == NU_OK && f < c->n_prefix; f++)
        if (has_vocab(&c->prefix[f]))
            s = synth_ids(&m->vocab[f], c->prefix[f].size, "v", 1);
    if (s != NU_OK) {
        nu_model_free(m);
        return s;
    }
    *out = m;
    return NU_OK;
}

void nu_model_init_random(nu_model *m, uint64_t seed)
{
    nu_random r = {seed ^ 0x6e65787475736572ull};
    for (size_t i = 0; i < m->layout.count; i++) {
        const nu_param_spec *p = &m->layout.specs[i];
        float *x = m->params + p->offset;
        size_t len = strlen(p->name);
        int is_ln_gain = len > 2 && strcmp(p->name + len - 2, ".g") == 0;
        int is_bias = !is_ln_gain && p->ndim == 1 && strcmp(p->name, "cls") != 0 &&
                      strcmp(p->name, "pos.cls") != 0;
        /* Linear weights: 2-D tensors other than embeddings and position tables. */
        int is_linear = p->ndim == 2 && p->kind == NU_PARAM_DENSE &&
                        strncmp(p->name, "pos.", 4) != 0 && strcmp(p->name, "dec.query_pos") != 0;
        for (size_t k = 0; k < p->count; k++) {
            if (is_ln_gain)
                x[k] = 1.0f;
            else if (is_bias)
                x[k] = 0.0f;
            else if (is_linear) {
                double bound = 1.0 / sqrt((double)p->shape[0]);
                x[k] = (float)((2.0 * nu_random_unit(&r) - 1.0) * bound);
            } else
                x[k] = (float)(0.02 * nu_random_normal(&r));
        }
    }
}

void nu_model_free(nu_model *m)
{
    if (!m)
        return;
    free(m->params);
    free(m->user_prior);
    free(m->user_feature_prior);
    nu_param_layout_free(&m->layout);
    nu_idmap_free(&m->users);
    for (size_t f = 0; f < NU_MAX_FIELDS; f++)
        nu_idmap_free(&m->vocab[f]);
    free(m);
}

/* ---- loading ---- */

/* The optional serving prior: [num_users] F32, finite; required when the
 * config weighs it. */
static nu_status load_prior(nu_model *m, const nu_st_file *st, const char *path)
{
    const nu_st_tensor *t = nu_st_find(st, USER_PRIOR);
    size_t U = m->cfg.num_users;
    if (!t)
        return m->cfg.prior_weight > 0
                   ? nu_error(NU_ERR_FORMAT, "%s: prior_weight is %g but tensor \"%s\" is missing",
                              path, m->cfg.prior_weight, USER_PRIOR)
                   : NU_OK;
    if (t->dtype != NU_ST_F32 || t->ndim != 1 || t->shape[0] != U)
        return nu_error(NU_ERR_FORMAT, "%s: tensor \"%s\" must be F32 [%zu]", path, USER_PRIOR, U);
    m->user_prior = malloc((U ? U : 1) * sizeof(float));
    if (!m->user_prior)
        return nu_error(NU_ERR_NOMEM, "out of memory for the user prior");
    memcpy(m->user_prior, t->raw, U * sizeof(float));
    for (size_t u = 0; u < U; u++)
        if (!isfinite(m->user_prior[u]))
            return nu_error(NU_ERR_FORMAT, "%s: tensor \"%s\" holds a NaN or Inf at %zu", path,
                            USER_PRIOR, u);
    return NU_OK;
}

/* Every tensor of the layout is in the file with its dtype and shape, and
 * the file has no other: checked before the weights are allocated, so the
 * memory a model takes is at most what its file holds (a tiny file that
 * declares a huge model is refused without allocating it). */
static nu_status check_tensors(const nu_param_layout *l, const nu_st_file *st, const char *path)
{
    for (size_t i = 0; i < l->count; i++) {
        const nu_param_spec *p = &l->specs[i];
        const nu_st_tensor *t = nu_st_find(st, p->name);
        if (!t)
            return nu_error(NU_ERR_FORMAT, "%s: tensor \"%s\" is missing", path, p->name);
        if (t->dtype != NU_ST_F32)
            return nu_error(NU_ERR_FORMAT, "%s: tensor \"%s\" must be F32", path, p->name);
        int same = t->ndim == p->ndim && t->shape[0] == p->shape[0] &&
                   (p->ndim == 1 || t->shape[1] == p->shape[1]);
        if (!same) {
            char want[64], got[64] = "";
            if (p->ndim == 1)
                snprintf(want, sizeof want, "[%zu]", p->shape[0]);
            else
                snprintf(want, sizeof want, "[%zu, %zu]", p->shape[0], p->shape[1]);
            for (int d = 0; d < t->ndim; d++) {
                size_t used = strlen(got);
                snprintf(got + used, sizeof got - used, "%s%zu", d ? ", " : "", t->shape[d]);
            }
            return nu_error(NU_ERR_FORMAT, "%s: tensor \"%s\" has shape [%s], the config needs %s",
                            path, p->name, got, want);
        }
    }
    /* Stray tensors: counted in linear time, named (slowly) only when some. */
    size_t known = l->count;
    for (size_t i = 0; i < st->count; i++)
        known += strcmp(st->tensors[i].name, USER_PRIOR) == 0 ||
                 nu_feature_prior_owns_tensor(st->tensors[i].name);
    for (size_t i = 0; known != st->count && i < st->count; i++)
        if (!nu_param_find(l, st->tensors[i].name) &&
            strcmp(st->tensors[i].name, USER_PRIOR) != 0 &&
            !nu_feature_prior_owns_tensor(st->tensors[i].name))
            return nu_error(NU_ERR_FORMAT, "%s: tensor \"%s\" is not part of this model's config",
                            path, st->tensors[i].name);
    return NU_OK;
}

static nu_status load_weights(nu_model *m, const nu_st_file *st, const char *path)
{
    for (size_t i = 0; i < m->layout.count; i++) {
        const nu_param_spec *p = &m->layout.specs[i];
        const nu_st_tensor *t = nu_st_find(st, p->name);
        memcpy(m->params + p->offset, t->raw, p->count * sizeof(float));
        for (size_t k = 0; k < p->count; k++)
            if (!isfinite(m->params[p->offset + k]))
                return nu_error(NU_ERR_FORMAT, "%s: tensor \"%s\" holds a NaN or Inf at %zu", path,
                                p->name, k);
    }
    nu_status s = load_prior(m, st, path);
    return s == NU_OK ? nu_feature_prior_load(m, st, path) : s;
}

nu_status nu_model_load(const char *dir, nu_model **out)
{
    char path[NU_PATH_MAX];
    nu_st_file st;
    nu_status s = nu_path_join(path, sizeof path, dir, "model.safetensors");
    if (s == NU_OK)
        s = nu_st_open(path, &st);
    if (s != NU_OK)
        return s;
    const char *fmt = nu_st_meta(&st, "format"), *json = nu_st_meta(&st, "nextuser_config");
    nu_model_config c;
    if (!fmt || strcmp(fmt, FORMAT_TAG) != 0 || !json) {
        nu_st_close(&st);
        return nu_error(NU_ERR_FORMAT,
                        "%s: not a nextuser model (__metadata__ needs format=\"%s\" and "
                        "nextuser_config)",
                        path, FORMAT_TAG);
    }
    char origin[4200];
    snprintf(origin, sizeof origin, "%s: __metadata__.nextuser_config", path);
    s = nu_config_parse(json, origin, &c);
    nu_model *m = NULL;
    if (s == NU_OK) {
        nu_param_layout layout;
        s = nu_param_layout_build(&c, &layout);
        if (s == NU_OK) {
            s = check_tensors(&layout, &st, path);
            nu_param_layout_free(&layout);
        }
    }
    if (s == NU_OK)
        s = alloc_model(&c, &m);
    if (s == NU_OK)
        s = load_weights(m, &st, path);
    nu_st_close(&st);
    if (s == NU_OK)
        s = nu_idmap_load_count(&m->users, dir, "users.txt", c.num_users, 0, "the model's config");
    for (size_t f = 0; s == NU_OK && f < c.n_prefix; f++) {
        if (!has_vocab(&c.prefix[f]))
            continue;
        char file[128];
        snprintf(file, sizeof file, "vocab_%s.txt", c.prefix[f].name);
        s = nu_idmap_load_count(&m->vocab[f], dir, file, c.prefix[f].size, 1, "the model's config");
    }
    if (s != NU_OK) {
        nu_model_free(m);
        return s;
    }
    *out = m;
    return NU_OK;
}

/* ---- saving ---- */

/* A NaN or Inf weight makes a model no reader accepts (nu_model_load
 * refuses it): refused before anything is written. */
static nu_status check_finite(const nu_model *m)
{
    for (size_t i = 0; i < m->layout.count; i++) {
        const nu_param_spec *p = &m->layout.specs[i];
        for (size_t k = 0; k < p->count; k++)
            if (!isfinite(m->params[p->offset + k]))
                return nu_error(NU_ERR_INVALID_ARG,
                                "tensor \"%s\" holds a NaN or Inf at %zu: a model that is not "
                                "finite is not written (training diverged? lower the learning "
                                "rate)",
                                p->name, k);
    }
    for (size_t u = 0; m->user_prior && u < m->cfg.num_users; u++)
        if (!isfinite(m->user_prior[u]))
            return nu_error(NU_ERR_INVALID_ARG, "the user prior holds a NaN or Inf at %zu: not "
                            "finite, not written", u);
    return NU_OK;
}

nu_status nu_model_write_files(const nu_model *m, const char *dir)
{
    char path[NU_PATH_MAX], file[128];
    nu_status s = check_finite(m);
    if (s == NU_OK)
        s = nu_path_join(path, sizeof path, dir, "users.txt");
    if (s == NU_OK)
        s = nu_idmap_save(&m->users, path);
    for (size_t f = 0; s == NU_OK && f < m->cfg.n_prefix; f++) {
        if (!has_vocab(&m->cfg.prefix[f]))
            continue;
        snprintf(file, sizeof file, "vocab_%s.txt", m->cfg.prefix[f].name);
        s = nu_path_join(path, sizeof path, dir, file);
        if (s == NU_OK)
            s = nu_idmap_save(&m->vocab[f], path);
    }
    if (s != NU_OK)
        return s;
    nu_st_out_tensor *ts = calloc(m->layout.count + 3, sizeof *ts);
    char *json = nu_config_to_json(&m->cfg);
    if (!ts || !json) {
        free(ts);
        free(json);
        return nu_error(NU_ERR_NOMEM, "out of memory saving the model");
    }
    for (size_t i = 0; i < m->layout.count; i++) {
        const nu_param_spec *p = &m->layout.specs[i];
        ts[i].name = p->name;
        ts[i].ndim = p->ndim;
        ts[i].shape[0] = p->shape[0];
        ts[i].shape[1] = p->shape[1];
        ts[i].data = m->params + p->offset;
    }
    size_t n = m->layout.count;
    if (m->user_prior)
        ts[n++] = (nu_st_out_tensor){USER_PRIOR, 1, {m->cfg.num_users, 0, 0, 0}, m->user_prior,
                                     NU_ST_F32, NULL};
    float fp_values[2 * NU_FEATURE_PRIOR_MAX];
    n += nu_feature_prior_tensors(m, ts + n, fp_values);
    const char *keys[] = {"format", "nextuser_config"};
    const char *values[] = {FORMAT_TAG, json};
    s = nu_path_join(path, sizeof path, dir, "model.safetensors");
    if (s == NU_OK)
        s = nu_st_write(path, ts, n, keys, values, 2);
    free(ts);
    free(json);
    return s;
}

nu_status nu_model_save(const nu_model *m, const char *dir)
{
    nu_atomic_dir ad;
    nu_status s = nu_atomic_dir_begin(dir, &ad);
    if (s != NU_OK)
        return s;
    s = nu_model_write_files(m, ad.tmp);
    if (s != NU_OK) {
        nu_atomic_dir_abort(&ad);
        return s;
    }
    return nu_atomic_dir_commit(&ad);
}
