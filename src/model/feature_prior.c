/* The feature prior's tensors and query indicators (feature_prior.h). */
#include "model/feature_prior.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define USER_FEATURE_PRIOR "user_feature_prior"
#define FEATURE_PRIOR_VALUES "feature_prior_values"

int nu_feature_prior_owns_tensor(const char *name)
{
    return strcmp(name, USER_FEATURE_PRIOR) == 0 || strcmp(name, FEATURE_PRIOR_VALUES) == 0;
}

static nu_status check_values(nu_model *m, const nu_st_tensor *v, const char *path)
{
    size_t n = v->shape[0];
    float raw[NU_FEATURE_PRIOR_MAX][2];
    memcpy(raw, v->raw, n * 2 * sizeof(float)); /* raw may be unaligned */
    for (size_t c = 0; c < n; c++) {
        /* Whole numbers in float: exact far beyond any vocabulary size. */
        int whole = raw[c][0] == floorf(raw[c][0]) && raw[c][1] == floorf(raw[c][1]) &&
                    fabsf(raw[c][0]) < 1e7f && fabsf(raw[c][1]) < 1e7f;
        int32_t f = whole ? (int32_t)raw[c][0] : -1, val = whole ? (int32_t)raw[c][1] : -1;
        int field_ok = f >= 0 && (size_t)f < m->cfg.n_prefix &&
                       m->cfg.prefix[f].kind != NU_FIELD_DENSE;
        if (!field_ok || val <= 0 || (size_t)val >= m->cfg.prefix[f].size)
            return nu_error(NU_ERR_FORMAT,
                            "%s: tensor \"%s\" row %zu names field %d value %d, not a known "
                            "value of a categorical or multi prefix field",
                            path, FEATURE_PRIOR_VALUES, c, (int)f, (int)val);
        m->fp_values[c][0] = f;
        m->fp_values[c][1] = val;
    }
    return NU_OK;
}

nu_status nu_feature_prior_load(nu_model *m, const nu_st_file *st, const char *path)
{
    const nu_st_tensor *t = nu_st_find(st, USER_FEATURE_PRIOR);
    const nu_st_tensor *v = nu_st_find(st, FEATURE_PRIOR_VALUES);
    size_t U = m->cfg.num_users;
    if (!t && !v)
        return m->cfg.feature_prior_weight > 0
                   ? nu_error(NU_ERR_FORMAT,
                              "%s: feature_prior_weight is %g but tensor \"%s\" is missing", path,
                              m->cfg.feature_prior_weight, USER_FEATURE_PRIOR)
                   : NU_OK;
    if (!t || !v || v->dtype != NU_ST_F32 || v->ndim != 2 || v->shape[1] != 2 ||
        v->shape[0] == 0 || v->shape[0] > NU_FEATURE_PRIOR_MAX)
        return nu_error(NU_ERR_FORMAT, "%s: tensor \"%s\" must be F32 [n, 2] with 1 <= n <= %d, "
                        "beside \"%s\"", path, FEATURE_PRIOR_VALUES, NU_FEATURE_PRIOR_MAX,
                        USER_FEATURE_PRIOR);
    size_t n = v->shape[0];
    if (t->dtype != NU_ST_F32 || t->ndim != 2 || t->shape[0] != U || t->shape[1] != n)
        return nu_error(NU_ERR_FORMAT, "%s: tensor \"%s\" must be F32 [%zu, %zu]", path,
                        USER_FEATURE_PRIOR, U, n);
    nu_status s = check_values(m, v, path);
    if (s != NU_OK)
        return s;
    m->user_feature_prior = malloc((U * n + 1) * sizeof(float));
    if (!m->user_feature_prior)
        return nu_error(NU_ERR_NOMEM, "out of memory for the feature prior");
    memcpy(m->user_feature_prior, t->raw, U * n * sizeof(float));
    for (size_t i = 0; i < U * n; i++)
        if (!isfinite(m->user_feature_prior[i]))
            return nu_error(NU_ERR_FORMAT, "%s: tensor \"%s\" holds a NaN or Inf at %zu", path,
                            USER_FEATURE_PRIOR, i);
    m->n_feature_prior = n;
    return NU_OK;
}

size_t nu_feature_prior_tensors(const nu_model *m, nu_st_out_tensor *out, float *values_buf)
{
    if (!m->n_feature_prior || !m->user_feature_prior)
        return 0;
    for (size_t c = 0; c < m->n_feature_prior; c++) {
        values_buf[2 * c] = (float)m->fp_values[c][0];
        values_buf[2 * c + 1] = (float)m->fp_values[c][1];
    }
    out[0] = (nu_st_out_tensor){USER_FEATURE_PRIOR, 2, {m->cfg.num_users, m->n_feature_prior, 0, 0},
                                m->user_feature_prior, NU_ST_F32, NULL};
    out[1] = (nu_st_out_tensor){FEATURE_PRIOR_VALUES, 2, {m->n_feature_prior, 2, 0, 0}, values_buf,
                                NU_ST_F32, NULL};
    return 2;
}

size_t nu_feature_prior_columns(const nu_model *m)
{
    return m->user_feature_prior && m->cfg.feature_prior_weight > 0 ? m->n_feature_prior : 0;
}

size_t nu_model_query_width(const nu_model *m)
{
    return m->cfg.d + nu_feature_prior_columns(m);
}

/* 1 when item i of `items` holds column c's value. */
static float holds(const nu_model *m, const nu_items *items, size_t i, size_t c)
{
    size_t f = (size_t)m->fp_values[c][0];
    if (f >= items->n_fields)
        return 0.0f;
    size_t at = i * items->n_fields + f;
    for (size_t j = items->feat_off[at]; j < items->feat_off[at + 1]; j++)
        if (items->feat_vals[j] == (uint32_t)m->fp_values[c][1])
            return 1.0f;
    return 0.0f;
}

void nu_model_query_tails(const nu_model *m, const nu_items *items, size_t first, float *Q,
                          size_t n)
{
    size_t d = m->cfg.d, r = nu_feature_prior_columns(m), w = d + r;
    if (r == 0)
        return;
    /* Backwards, so no row is overwritten before it has moved. */
    for (size_t q = n; q-- > 0;) {
        memmove(Q + q * w, Q + q * d, d * sizeof *Q);
        for (size_t c = 0; c < r; c++)
            Q[q * w + d + c] = holds(m, items, first + q, c);
    }
}
