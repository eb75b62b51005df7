#include "user_table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "error.h"
#include "model/feature_prior.h"
#include "util/huge_alloc.h"
#include "util/path.h"

#define TABLE_FORMAT "nextuser-table-1"

const char *nu_table_dtype_name(nu_table_dtype t)
{
    static const char *const names[] = {"fp32", "bf16", "int8"};
    return (unsigned)t < 3 ? names[t] : "unknown";
}

int nu_table_dtype_parse(const char *s, nu_table_dtype *out)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, nu_table_dtype_name((nu_table_dtype)i)) == 0) {
            *out = (nu_table_dtype)i;
            return 1;
        }
    return 0;
}

uint16_t nu_bf16_from_float(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40); /* keep NaN a NaN */
    u += 0x7fffu + ((u >> 16) & 1u);         /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

int32_t nu_quantize_i8(const float *x, size_t d, int8_t *q, float *scale)
{
    float amax = 0;
    for (size_t k = 0; k < d; k++)
        amax = fabsf(x[k]) > amax ? fabsf(x[k]) : amax;
    int32_t sum = 0;
    if (amax == 0) {
        memset(q, 0, d);
        *scale = 0;
        return 0;
    }
    float inv = 127.0f / amax;
    for (size_t k = 0; k < d; k++) {
        long v = lrintf(x[k] * inv);
        v = v > 127 ? 127 : v < -127 ? -127 : v;
        q[k] = (int8_t)v;
        sum += (int32_t)v;
    }
    *scale = amax / 127.0f;
    return sum;
}

int nu_user_table_has(const nu_user_table *t, nu_table_dtype dtype)
{
    return dtype == NU_TABLE_F32 ? t->f32 != NULL : dtype == NU_TABLE_BF16 ? t->bf16 != NULL : t->i8 != NULL;
}

/* Drops the mappings (whole file or row range), not an owned block. */
static void drop_mappings(nu_user_table *t)
{
    if (t->mapped)
        nu_st_close(&t->file);
    for (int i = 0; i < 5; i++)
        if (t->range_map[i])
            munmap(t->range_map[i], t->range_len[i]);
    memset(t->range_map, 0, sizeof t->range_map);
    t->mapped = 0;
}

void nu_user_table_free(nu_user_table *t)
{
    drop_mappings(t);
    free(t->owned);
    memset(t, 0, sizeof *t);
}

/* Whether the model's tables carry the prior columns: the global one,
 * then the feature prior's (which need the global one as their marker). */
static int carries_prior(const nu_model *m)
{
    return (m->user_prior && m->cfg.prior_weight > 0) || nu_feature_prior_columns(m) > 0;
}

static double global_weight(const nu_model *m)
{
    return m->user_prior ? m->cfg.prior_weight : 0;
}

nu_status nu_user_table_build(const nu_model *m, int with_bf16, int with_i8, nu_user_table *out)
{
    memset(out, 0, sizeof *out);
    int prior = carries_prior(m);
    size_t U = m->cfg.num_users, ud = m->cfg.d, r = nu_feature_prior_columns(m);
    size_t qd = ud + r, d = qd + (size_t)prior, n = U * d;
    /* One block: f32 | bf16 | i8 | scales | sums, each 64-byte aligned. */
    size_t o_bf = (n * 4 + 63) / 64 * 64;
    size_t o_i8 = o_bf + (with_bf16 ? (n * 2 + 63) / 64 * 64 : 0);
    size_t o_sc = o_i8 + (with_i8 ? (n + 63) / 64 * 64 : 0);
    size_t o_sm = o_sc + (with_i8 ? (U * 4 + 63) / 64 * 64 : 0);
    size_t total = o_sm + (with_i8 ? U * 4 : 0);
    char *base = nu_huge_alloc(total);
    if (!base)
        return nu_error(NU_ERR_NOMEM, "out of memory for a %zu x %zu user table", U, d);
    float *f = (float *)(void *)base;
    uint16_t *bf = with_bf16 ? (uint16_t *)(void *)(base + o_bf) : NULL;
    int8_t *q = with_i8 ? (int8_t *)(base + o_i8) : NULL;
    float *sc = with_i8 ? (float *)(void *)(base + o_sc) : NULL;
    int32_t *sm = with_i8 ? (int32_t *)(void *)(base + o_sm) : NULL;
    const float *src = m->w.user_emb;
    for (size_t u = 0; u < U; u++) {
        double ss = 0;
        for (size_t k = 0; k < ud; k++)
            ss += (double)src[u * ud + k] * src[u * ud + k];
        /* Zero rows stay zero: they score 0 against every query. */
        float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
        float *row = f + u * d;
        for (size_t k = 0; k < ud; k++)
            row[k] = src[u * ud + k] * inv;
        /* cos/tau + w * prior ranks as cos + tau * w * prior. */
        if (prior) /* global_weight is 0 without a user_prior */
            row[ud] = global_weight(m) > 0
                          ? (float)(m->cfg.tau * global_weight(m) * m->user_prior[u])
                          : 0.0f;
        for (size_t c = 0; c < r; c++)
            row[ud + 1 + c] = (float)(m->cfg.tau * m->cfg.feature_prior_weight *
                                      m->user_feature_prior[u * m->n_feature_prior + c]);
        if (bf)
            for (size_t k = 0; k < d; k++)
                bf[u * d + k] = nu_bf16_from_float(row[k]);
        if (q)
            sm[u] = nu_quantize_i8(row, d, q + u * d, &sc[u]);
    }
    out->rows = U;
    out->d = d;
    out->unit_d = ud;
    out->query_d = qd;
    out->prior_weight = prior ? global_weight(m) : 0;
    out->feature_prior_weight = r ? m->cfg.feature_prior_weight : 0;
    out->f32 = f;
    out->bf16 = bf;
    out->i8 = q;
    out->i8_scale = sc;
    out->i8_sum = sm;
    out->owned = base;
    return NU_OK;
}

/* "size:mtime_ns" of the model's weights: a table records the model it came from. */
static nu_status model_stamp(const char *model_dir, char *buf, size_t cap)
{
    char path[NU_PATH_MAX];
    nu_status s = nu_path_join(path, sizeof path, model_dir, "model.safetensors");
    if (s != NU_OK)
        return s;
    struct stat st;
    if (stat(path, &st) != 0)
        return nu_error(NU_ERR_IO, "%s: cannot stat", path);
    snprintf(buf, cap, "%lld:%lld.%09ld", (long long)st.st_size, (long long)st.st_mtim.tv_sec,
             st.st_mtim.tv_nsec);
    return NU_OK;
}

nu_status nu_user_table_save(const nu_user_table *t, const char *path, const char *model_dir)
{
    char stamp[96], rows[32], dim[32], qdim[32], weight[40], udim[32], fweight[40];
    nu_status s = model_stamp(model_dir, stamp, sizeof stamp);
    if (s != NU_OK)
        return s;
    snprintf(rows, sizeof rows, "%zu", t->rows);
    snprintf(dim, sizeof dim, "%zu", t->d);
    snprintf(qdim, sizeof qdim, "%zu", t->query_d);
    snprintf(weight, sizeof weight, "%.17g", t->prior_weight);
    snprintf(udim, sizeof udim, "%zu", t->unit_d);
    snprintf(fweight, sizeof fweight, "%.17g", t->feature_prior_weight);
    nu_st_out_tensor ts[5];
    size_t n = 0;
    ts[n++] = (nu_st_out_tensor){"f32", 2, {t->rows, t->d, 0, 0}, t->f32, NU_ST_F32, NULL};
    if (t->bf16)
        ts[n++] = (nu_st_out_tensor){"bf16", 2, {t->rows, t->d, 0, 0}, NULL, NU_ST_BF16, t->bf16};
    if (t->i8) {
        ts[n++] = (nu_st_out_tensor){"i8", 2, {t->rows, t->d, 0, 0}, NULL, NU_ST_I8, t->i8};
        ts[n++] = (nu_st_out_tensor){"i8_scale", 1, {t->rows, 0, 0, 0}, t->i8_scale, NU_ST_F32, NULL};
        ts[n++] = (nu_st_out_tensor){"i8_sum", 1, {t->rows, 0, 0, 0}, NULL, NU_ST_I32, t->i8_sum};
    }
    const char *keys[] = {"format",       "model_stamp", "rows",  "d", "query_d",
                          "prior_weight", "unit_d",      "feature_prior_weight"};
    const char *vals[] = {TABLE_FORMAT, stamp, rows, dim, qdim, weight, udim, fweight};
    return nu_st_write(path, ts, n, keys, vals, 8);
}

const nu_st_tensor *nu_user_table_tensor(const nu_st_file *f, const char *path, const char *name,
                                nu_st_dtype dt, size_t rows, size_t cols, nu_status *s)
{
    const nu_st_tensor *t = nu_st_find(f, name);
    if (!t || *s != NU_OK)
        return NULL;
    int ok = t->dtype == dt && t->shape[0] == rows &&
             (cols ? t->ndim == 2 && t->shape[1] == cols : t->ndim == 1);
    if (!ok)
        *s = nu_error(NU_ERR_FORMAT, "%s: tensor \"%s\" has the wrong dtype or shape", path, name);
    return ok ? t : NULL;
}

nu_status nu_user_table_read_header(const nu_st_file *file, const char *path,
                                    const char *model_dir, nu_user_table *out)
{
    nu_status s = NU_OK;
    const char *fmt = nu_st_meta(file, "format"), *stamp = nu_st_meta(file, "model_stamp");
    const nu_st_tensor *f = nu_st_find(file, "f32");
    if (!fmt || strcmp(fmt, TABLE_FORMAT) != 0 || !f || f->dtype != NU_ST_F32 || f->ndim != 2)
        return nu_error(NU_ERR_FORMAT, "%s: not a nextuser user table", path);
    if (model_dir) {
        char now[96];
        if ((s = model_stamp(model_dir, now, sizeof now)) != NU_OK)
            return s;
        if (!stamp || strcmp(stamp, now) != 0)
            return nu_error(NU_ERR_FORMAT,
                            "%s: stale: made from another version of %s/model.safetensors (run "
                            "'nextuser table --model %s' again)",
                            path, model_dir, model_dir);
    }
    out->rows = f->shape[0];
    out->d = f->shape[1];
    /* Tables from before the prior column have neither key. */
    const char *qd = nu_st_meta(file, "query_d"), *pw = nu_st_meta(file, "prior_weight");
    char *end = NULL;
    out->query_d = qd ? (size_t)strtoull(qd, &end, 10) : out->d;
    if (qd && (*end || !(out->query_d == out->d || out->query_d + 1 == out->d)))
        s = nu_error(NU_ERR_FORMAT, "%s: query_d \"%s\" does not fit d %zu", path, qd, out->d);
    out->prior_weight = pw ? strtod(pw, &end) : 0;
    if (s == NU_OK && pw && (*end || !(out->prior_weight >= 0)))
        s = nu_error(NU_ERR_FORMAT, "%s: bad prior_weight \"%s\"", path, pw);
    /* Tables from before the feature prior: every query column is a unit one. */
    const char *ud = nu_st_meta(file, "unit_d"), *fw = nu_st_meta(file, "feature_prior_weight");
    out->unit_d = ud ? (size_t)strtoull(ud, &end, 10) : out->query_d;
    if (s == NU_OK && ud &&
        (*end || out->unit_d == 0 || out->unit_d > out->query_d ||
         (out->unit_d < out->query_d && out->query_d == out->d)))
        s = nu_error(NU_ERR_FORMAT, "%s: unit_d \"%s\" does not fit query_d %zu and d %zu", path,
                     ud, out->query_d, out->d);
    out->feature_prior_weight = fw ? strtod(fw, &end) : 0;
    if (s == NU_OK && fw && (*end || !(out->feature_prior_weight >= 0)))
        s = nu_error(NU_ERR_FORMAT, "%s: bad feature_prior_weight \"%s\"", path, fw);
    return s;
}

nu_status nu_user_table_open(const char *path, const char *model_dir, nu_user_table *out)
{
    memset(out, 0, sizeof *out);
    nu_status s = nu_st_open(path, &out->file);
    if (s != NU_OK)
        return s;
    out->mapped = 1;
    if ((s = nu_user_table_read_header(&out->file, path, model_dir, out)) != NU_OK) {
        nu_user_table_free(out);
        return s;
    }
    const nu_st_tensor *f = nu_st_find(&out->file, "f32");
    out->f32 = f->data; /* checked below */
    const nu_st_tensor *b = nu_user_table_tensor(&out->file, path, "bf16", NU_ST_BF16, out->rows, out->d, &s);
    const nu_st_tensor *q = nu_user_table_tensor(&out->file, path, "i8", NU_ST_I8, out->rows, out->d, &s);
    const nu_st_tensor *sc = nu_user_table_tensor(&out->file, path, "i8_scale", NU_ST_F32, out->rows, 0, &s);
    const nu_st_tensor *sm = nu_user_table_tensor(&out->file, path, "i8_sum", NU_ST_I32, out->rows, 0, &s);
    if (s == NU_OK && q && (!sc || !sm))
        s = nu_error(NU_ERR_FORMAT, "%s: int8 table without i8_scale and i8_sum", path);
    /* Scanned in place: every tensor must be aligned for its element type. */
    if (s == NU_OK && (!f->data || (b && (uintptr_t)b->raw % 2) || (sc && !sc->data) ||
                       (sm && (uintptr_t)sm->raw % 4)))
        s = nu_error(NU_ERR_FORMAT, "%s: tensors not aligned for in-place use (rewrite it with "
                     "'nextuser table')", path);
    for (size_t i = 0; s == NU_OK && out->f32 && i < out->rows * out->d; i++)
        if (!isfinite(out->f32[i]))
            s = nu_error(NU_ERR_FORMAT, "%s: row %zu holds a NaN or Inf", path, i / out->d);
    if (s != NU_OK) {
        nu_user_table_free(out);
        return s;
    }
    out->bf16 = b ? (const uint16_t *)b->raw : NULL;
    out->i8 = q ? (const int8_t *)q->raw : NULL;
    out->i8_scale = sc ? sc->data : NULL;
    out->i8_sum = sm ? (const int32_t *)sm->raw : NULL;
    return NU_OK;
}

nu_status nu_user_table_for_model(const nu_model *m, const char *model_dir, nu_table_dtype dtype,
                                  nu_user_table *out, int *from_file)
{
    char path[NU_PATH_MAX];
    *from_file = 0;
    nu_status s = nu_path_join(path, sizeof path, model_dir, "user_table.safetensors");
    if (s != NU_OK)
        return s;
    struct stat st;
    if (stat(path, &st) == 0) {
        s = nu_user_table_open(path, model_dir, out);
        if (s != NU_OK)
            return s; /* a broken or stale table is reported, not silently rebuilt */
        int prior = carries_prior(m);
        size_t r = nu_feature_prior_columns(m);
        if (out->rows == m->cfg.num_users && out->unit_d == m->cfg.d &&
            out->query_d == m->cfg.d + r && out->d == out->query_d + (size_t)prior &&
            out->prior_weight == (prior ? global_weight(m) : 0) &&
            out->feature_prior_weight == (r ? m->cfg.feature_prior_weight : 0) &&
            nu_user_table_has(out, dtype)) {
            *from_file = 1;
            return NU_OK;
        }
        nu_user_table_free(out);
    }
    return nu_user_table_build(m, dtype == NU_TABLE_BF16, dtype == NU_TABLE_I8, out);
}

nu_status nu_user_table_make_resident(nu_user_table *t)
{
    if (!t->mapped && !t->range_map[0])
        return NU_OK;
    size_t n = t->rows * t->d, U = t->rows;
    size_t o_bf = (n * 4 + 63) / 64 * 64;
    size_t o_i8 = o_bf + (t->bf16 ? (n * 2 + 63) / 64 * 64 : 0);
    size_t o_sc = o_i8 + (t->i8 ? (n + 63) / 64 * 64 : 0);
    size_t o_sm = o_sc + (t->i8 ? (U * 4 + 63) / 64 * 64 : 0);
    size_t total = o_sm + (t->i8 ? U * 4 : 0);
    char *base = nu_huge_alloc(total);
    if (!base)
        return nu_error(NU_ERR_NOMEM, "out of memory copying a %zu x %zu user table", U, t->d);
    memcpy(base, t->f32, n * 4);
    if (t->bf16)
        memcpy(base + o_bf, t->bf16, n * 2);
    if (t->i8) {
        memcpy(base + o_i8, t->i8, n);
        memcpy(base + o_sc, t->i8_scale, U * 4);
        memcpy(base + o_sm, t->i8_sum, U * 4);
    }
    int has_bf = t->bf16 != NULL, has_i8 = t->i8 != NULL;
    drop_mappings(t);
    t->owned = base;
    t->f32 = (const float *)(void *)base;
    t->bf16 = has_bf ? (const uint16_t *)(void *)(base + o_bf) : NULL;
    t->i8 = has_i8 ? (const int8_t *)(base + o_i8) : NULL;
    t->i8_scale = has_i8 ? (const float *)(void *)(base + o_sc) : NULL;
    t->i8_sum = has_i8 ? (const int32_t *)(void *)(base + o_sm) : NULL;
    return NU_OK;
}
