#include "checkpoint.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "io/atomic_dir.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "util/json_strict.h"
#include "util/path.h"

#define STATE_FORMAT "nextuser-train-state-1"

/* 64-bit values go to JSON as decimal strings: JSON numbers are doubles. */
static void add_u64(cJSON *o, const char *key, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    cJSON_AddStringToObject(o, key, buf);
}

static int get_u64(const cJSON *o, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v))
        return 0;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v->valuestring, &end, 10);
    if (errno || *end || end == v->valuestring)
        return 0;
    *out = x;
    return 1;
}

static char *state_json(const nu_adam *a, const nu_train_state *st)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", STATE_FORMAT);
    add_u64(o, "step", st->step);
    add_u64(o, "epoch", st->epoch);
    add_u64(o, "position", st->position);
    add_u64(o, "seed", st->seed);
    add_u64(o, "rng_state", st->rng_state);
    add_u64(o, "adam_step", a->step);
    cJSON_AddStringToObject(o, "windows", st->windows_all ? "all" : "disjoint");
    cJSON_AddNumberToObject(o, "best_score", st->best_score);
    add_u64(o, "best_step", st->best_step);
    add_u64(o, "evals_since_best", st->evals_since_best);
    cJSON *c = cJSON_AddObjectToObject(o, "adam");
    cJSON_AddNumberToObject(c, "lr", a->cfg.lr);
    cJSON_AddNumberToObject(c, "beta1", a->cfg.beta1);
    cJSON_AddNumberToObject(c, "beta2", a->cfg.beta2);
    cJSON_AddNumberToObject(c, "eps", a->cfg.eps);
    cJSON_AddNumberToObject(c, "clip_norm", a->cfg.clip_norm);
    add_u64(c, "warmup_steps", a->cfg.warmup_steps);
    add_u64(c, "total_steps", a->cfg.total_steps);
    cJSON_AddNumberToObject(c, "min_lr_ratio", a->cfg.min_lr_ratio);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

nu_status nu_checkpoint_write_state(const char *path, const nu_adam *a, const nu_train_state *st)
{
    char *json = state_json(a, st);
    if (!json)
        return nu_error(NU_ERR_NOMEM, "out of memory writing the training state");
    nu_status s = nu_write_file_atomic(path, json, strlen(json));
    free(json);
    return s;
}

nu_status nu_checkpoint_save(const char *dir, const nu_model *m, const nu_adam *a,
                             const nu_train_state *st)
{
    if (a->total != m->layout.total)
        return nu_error(NU_ERR_INVALID_ARG, "optimiser state does not match the model");
    /* A checkpoint that cannot be resumed is never written (the model's
     * weights are checked by nu_model_write_files). */
    for (size_t i = 0; i < a->total; i++)
        if (!isfinite(a->m[i]) || !isfinite(a->v[i]))
            return nu_error(NU_ERR_INVALID_ARG,
                            "%s: the optimiser moments hold a NaN or Inf at %zu: a checkpoint that "
                            "is not finite is not written (training diverged? lower the learning "
                            "rate)",
                            dir, i);
    nu_atomic_dir ad;
    nu_status s = nu_atomic_dir_begin(dir, &ad);
    if (s != NU_OK)
        return s;
    char path[NU_PATH_MAX];
    s = nu_model_write_files(m, ad.tmp);
    if (s == NU_OK)
        s = nu_path_join(path, sizeof path, ad.tmp, "optimizer.safetensors");
    if (s == NU_OK) {
        nu_st_out_tensor ts[2] = {
            {"m", 1, {a->total, 0, 0, 0}, a->m, NU_ST_F32, NULL},
            {"v", 1, {a->total, 0, 0, 0}, a->v, NU_ST_F32, NULL},
        };
        const char *k[] = {"format"}, *v[] = {"nextuser-adam-1"};
        s = nu_st_write(path, ts, 2, k, v, 1);
    }
    if (s == NU_OK)
        s = nu_path_join(path, sizeof path, ad.tmp, "train_state.json");
    if (s == NU_OK)
        s = nu_checkpoint_write_state(path, a, st);
    if (s != NU_OK) {
        nu_atomic_dir_abort(&ad);
        return s;
    }
    return nu_atomic_dir_commit(&ad);
}

nu_status nu_checkpoint_read_text(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return nu_error(NU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n > (1L << 20)) { /* ours are a few hundred bytes */
        fclose(f);
        return nu_error(NU_ERR_FORMAT, "%s: %ld bytes, more than a training state's 1 MiB", path, n);
    }
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return nu_error(NU_ERR_IO, "%s: read failed", path);
    }
    fclose(f);
    buf[n] = 0;
    *out = buf;
    *len = (size_t)n;
    return NU_OK;
}

/* The ranges a resumed run can train with (nu_train's own checks). */
static const char *adam_range_error(const nu_adam_config *c, uint64_t adam_step,
                                    const nu_train_state *st)
{
    if (!(c->lr > 0 && c->lr < 10))
        return "adam.lr must be in (0, 10)";
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
        return "adam.beta1 and adam.beta2 must be in [0, 1)";
    if (!(c->eps > 0 && c->eps <= 1))
        return "adam.eps must be in (0, 1]";
    if (!(isfinite(c->clip_norm) && c->clip_norm < 1e30))
        return "adam.clip_norm must be finite";
    if (!(c->min_lr_ratio >= 0 && c->min_lr_ratio <= 1))
        return "adam.min_lr_ratio must be in [0, 1]";
    (void)adam_step;
    if (!isfinite(st->best_score))
        return "best_score must be finite";
    return NULL;
}

nu_status nu_checkpoint_parse_state(const char *path, const char *text, size_t len, nu_adam_config *c,
                                    uint64_t *adam_step, nu_train_state *st)
{
    cJSON *o = NULL;
    nu_status strict = nu_json_parse_strict(text, len, path, 4096, &o, NULL);
    if (strict != NU_OK)
        return strict;
    const cJSON *fmt = o ? cJSON_GetObjectItemCaseSensitive(o, "format") : NULL;
    const cJSON *ac = o ? cJSON_GetObjectItemCaseSensitive(o, "adam") : NULL;
    int ok = cJSON_IsString(fmt) && strcmp(fmt->valuestring, STATE_FORMAT) == 0 && cJSON_IsObject(ac) &&
             get_u64(o, "step", &st->step) && get_u64(o, "epoch", &st->epoch) &&
             get_u64(o, "position", &st->position) && get_u64(o, "seed", &st->seed) &&
             get_u64(o, "rng_state", &st->rng_state) && get_u64(o, "adam_step", adam_step) &&
             get_u64(ac, "warmup_steps", &c->warmup_steps) && get_u64(ac, "total_steps", &c->total_steps);
    const char *keys[] = {"lr", "beta1", "beta2", "eps", "clip_norm", "min_lr_ratio"};
    double *vals[] = {&c->lr, &c->beta1, &c->beta2, &c->eps, &c->clip_norm, &c->min_lr_ratio};
    for (size_t i = 0; ok && i < 6; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(ac, keys[i]);
        ok = cJSON_IsNumber(v);
        if (ok)
            *vals[i] = v->valuedouble;
    }
    /* Checkpoints from before these keys: every window, no validation. */
    const cJSON *win = o ? cJSON_GetObjectItemCaseSensitive(o, "windows") : NULL;
    const cJSON *best = o ? cJSON_GetObjectItemCaseSensitive(o, "best_score") : NULL;
    st->windows_all = 1;
    st->best_score = -1;
    st->best_step = st->evals_since_best = 0;
    if (ok && win)
        ok = cJSON_IsString(win) && (strcmp(win->valuestring, "all") == 0 ||
                                     strcmp(win->valuestring, "disjoint") == 0);
    if (ok && win)
        st->windows_all = strcmp(win->valuestring, "all") == 0;
    if (ok && best)
        ok = cJSON_IsNumber(best) && get_u64(o, "best_step", &st->best_step) &&
             get_u64(o, "evals_since_best", &st->evals_since_best);
    if (ok && best)
        st->best_score = best->valuedouble;
    cJSON_Delete(o);
    if (!ok)
        return nu_error(NU_ERR_FORMAT, "%s: not a valid training state", path);
    const char *range = adam_range_error(c, *adam_step, st);
    return range ? nu_error(NU_ERR_FORMAT, "%s: not a valid training state: %s", path, range)
                 : NU_OK;
}

nu_status nu_checkpoint_load(const char *dir, nu_model **mout, nu_adam *a, nu_train_state *st)
{
    nu_model *m;
    nu_status s = nu_model_load(dir, &m);
    if (s != NU_OK)
        return s;
    char path[NU_PATH_MAX], *text = NULL;
    size_t text_len = 0;
    nu_adam_config c;
    uint64_t adam_step = 0;
    memset(st, 0, sizeof *st);
    memset(a, 0, sizeof *a);
    s = nu_path_join(path, sizeof path, dir, "train_state.json");
    if (s == NU_OK)
        s = nu_checkpoint_read_text(path, &text, &text_len);
    if (s == NU_OK)
        s = nu_checkpoint_parse_state(path, text, text_len, &c, &adam_step, st);
    free(text);
    if (s == NU_OK)
        s = nu_adam_init(a, &m->layout, &c);
    nu_st_file f = {0};
    int opened = 0;
    if (s == NU_OK && (s = nu_path_join(path, sizeof path, dir, "optimizer.safetensors")) == NU_OK)
        opened = (s = nu_st_open(path, &f)) == NU_OK;
    if (s == NU_OK) {
        const nu_st_tensor *tm = nu_st_find(&f, "m"), *tv = nu_st_find(&f, "v");
        if (!tm || !tv || tm->dtype != NU_ST_F32 || tv->dtype != NU_ST_F32 || tm->nelem != a->total ||
            tv->nelem != a->total)
            s = nu_error(NU_ERR_FORMAT, "%s: moments m and v of %zu floats expected", path, a->total);
        else {
            memcpy(a->m, tm->raw, a->total * sizeof(float));
            memcpy(a->v, tv->raw, a->total * sizeof(float));
            a->step = adam_step;
        }
    }
    if (opened)
        nu_st_close(&f);
    if (s != NU_OK) {
        nu_adam_free(a);
        nu_model_free(m);
        return s;
    }
    *mout = m;
    return NU_OK;
}
