/* Sharded checkpoint sets (docs/mpi.md, "Checkpoints"): OUT.shards/ holds
 * step-S/rank-Q-of-R.safetensors, one per process (its rows of each table
 * with their moments; process 0's also every dense parameter), step-S's
 * train_state.json and config.json, and manifest.json, written last and
 * atomically: the set it names is complete, and a set being written when a
 * process died is not named, so the one before stays the checkpoint. */
#include "shard_checkpoint.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "io/owned_dir.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"
#include "train/shard.h"
#include "util/json_strict.h"
#include "util/path.h"

#define SET_FORMAT "nextuser-shard-set-1"
#define SHARD_FORMAT "nextuser-shard-1"

static nu_status join(char *buf, size_t n, const char *fmt, const char *a, const char *b)
{
    int k = snprintf(buf, n, fmt, a, b);
    return k >= 0 && (size_t)k < n ? NU_OK
                                   : nu_error(NU_ERR_INVALID_ARG, "%s: path too long", a);
}

int nu_shard_set_exists(const char *dir)
{
    char path[NU_PATH_MAX];
    struct stat st;
    return join(path, sizeof path, "%s/%s", dir, "manifest.json") == NU_OK && stat(path, &st) == 0;
}

/* Removes step-* directories of the set other than `keep` (older sets, or
 * one a killed run left half written). */
static void remove_other_sets(const char *set, const char *keep)
{
    DIR *d = opendir(set);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "step-", 5) == 0 && strcmp(e->d_name, keep) != 0) {
            char path[NU_PATH_MAX];
            if (join(path, sizeof path, "%s/%s", set, e->d_name) == NU_OK)
                nu_owned_dir_remove(path, 1); /* ours: the set is marked (below) */
        }
    closedir(d);
}

static int finite_all(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* This process's file: its rows of each table (and process 0's dense
 * parameters), each with its two moments. */
static nu_status write_shard(const run *r, const char *path)
{
    const nu_shard *sh = r->shard;
    const nu_param_layout *l = &sh->own.layout;
    size_t n = 0, cap = 3 * sh->nspec;
    nu_st_out_tensor *t = calloc(cap, sizeof *t);
    char(*names)[NU_PARAM_NAME_MAX + 8] = calloc(cap, sizeof *names);
    char(*firsts)[24] = calloc(sh->nspec, sizeof *firsts);
    const char **mk = calloc(sh->nspec + 5, sizeof *mk), **mv = calloc(sh->nspec + 5, sizeof *mv);
    char(*first_keys)[NU_PARAM_NAME_MAX + 8] = calloc(sh->nspec, sizeof *first_keys);
    char rank[16], ranks[16], step[24];
    if (!t || !names || !firsts || !mk || !mv || !first_keys) {
        free(t), free(names), free(firsts), free(mk), free(mv), free(first_keys);
        return nu_error(NU_ERR_NOMEM, "out of memory");
    }
    size_t m = 0;
    snprintf(rank, sizeof rank, "%d", sh->rank);
    snprintf(ranks, sizeof ranks, "%d", sh->R);
    snprintf(step, sizeof step, "%" PRIu64, r->st.step);
    mk[m] = "format", mv[m++] = SHARD_FORMAT;
    mk[m] = "rank", mv[m++] = rank;
    mk[m] = "ranks", mv[m++] = ranks;
    mk[m] = "step", mv[m++] = step;
    nu_status s = NU_OK;
    const float *arrays[3] = {sh->own.params, sh->adam.m, sh->adam.v};
    const char *suffix[3] = {"", ".adam_m", ".adam_v"};
    for (size_t i = 0; i < sh->nspec && s == NU_OK; i++) {
        const nu_param_spec *p = &l->specs[i];
        if (sh->field[i] == -2 && sh->rank != 0)
            continue;
        if (sh->field[i] != -2) {
            snprintf(first_keys[i], sizeof first_keys[i], "first.%s", p->name);
            snprintf(firsts[i], sizeof firsts[i], "%zu", sh->first[i * ((size_t)sh->R + 1) + (size_t)sh->rank]);
            mk[m] = first_keys[i], mv[m++] = firsts[i];
        }
        for (int a = 0; a < 3; a++) {
            if (!finite_all(arrays[a] + p->offset, p->count))
                s = nu_error(NU_ERR_INVALID_ARG, "%s: %s%s holds a NaN or Inf: not written", path,
                             p->name, suffix[a]);
            snprintf(names[n], sizeof names[n], "%s%s", p->name, suffix[a]);
            t[n] = (nu_st_out_tensor){names[n], p->ndim, {p->shape[0], p->shape[1], 0, 0},
                                      arrays[a] + p->offset, NU_ST_F32, NULL};
            if (p->ndim == 2 && p->shape[0] == 0)
                t[n].ndim = 2; /* a process may own no row of a small table */
            n++;
        }
    }
    if (s == NU_OK)
        s = nu_st_write(path, t, n, mk, mv, m);
    free(t), free(names), free(firsts), free(mk), free(mv), free(first_keys);
    return s;
}

static nu_status write_text(const char *dir, const char *name, const char *text)
{
    char path[NU_PATH_MAX];
    nu_status s = join(path, sizeof path, "%s/%s", dir, name);
    return s == NU_OK ? nu_write_file_atomic(path, text, strlen(text)) : s;
}

nu_status nu_shard_save_set(run *r)
{
    nu_shard *sh = r->shard;
    char set[NU_PATH_MAX], step_name[48], step_dir[NU_PATH_MAX], path[NU_PATH_MAX];
    snprintf(step_name, sizeof step_name, "step-%" PRIu64, r->st.step);
    nu_status s = join(set, sizeof set, "%s%s", r->o->out_dir, ".shards");
    if (s == NU_OK)
        s = join(step_dir, sizeof step_dir, "%s/%s", set, step_name);
    if (s == NU_OK && sh->rank == 0) {
        /* OUT.shards must be a set nextuser made (its marker) or new: old
         * sets are removed from it. */
        struct stat st;
        int fresh = stat(set, &st) != 0;
        if (fresh && mkdir(set, 0755) != 0)
            s = nu_error(NU_ERR_IO, "%s: cannot create: %s", set, strerror(errno));
        else if (!fresh)
            s = nu_owned_dir_check(set);
        if (s == NU_OK && fresh)
            s = nu_owned_dir_mark(set);
        if (s == NU_OK && mkdir(step_dir, 0755) != 0 && errno != EEXIST)
            s = nu_error(NU_ERR_IO, "%s: cannot create: %s", step_dir, strerror(errno));
    }
    s = nu_shard_agree(sh, s);
    if (s != NU_OK)
        return s;
    char file[64];
    snprintf(file, sizeof file, "rank-%d-of-%d.safetensors", sh->rank, sh->R);
    s = join(path, sizeof path, "%s/%s", step_dir, file);
    if (s == NU_OK)
        s = write_shard(r, path);
    s = nu_shard_agree(sh, s);
    if (s == NU_OK && sh->rank == 0) {
        /* Every file is in place: the state, the config, then the manifest
         * that makes the set the checkpoint. */
        char *cfg = nu_config_to_json(&r->m->cfg);
        s = cfg ? write_text(step_dir, "config.json", cfg) : nu_error(NU_ERR_NOMEM, "out of memory");
        free(cfg);
        nu_adam a = sh->adam; /* its config and step: the moments are in the files */
        if (s == NU_OK && (s = join(path, sizeof path, "%s/%s", step_dir, "train_state.json")) == NU_OK)
            s = nu_checkpoint_write_state(path, &a, &r->st);
        cJSON *o = cJSON_CreateObject();
        char stepv[24];
        snprintf(stepv, sizeof stepv, "%" PRIu64, r->st.step);
        cJSON_AddStringToObject(o, "format", SET_FORMAT);
        cJSON_AddStringToObject(o, "step", stepv);
        cJSON_AddNumberToObject(o, "ranks", sh->R);
        cJSON_AddStringToObject(o, "set", step_name);
        char *text = cJSON_Print(o);
        cJSON_Delete(o);
        if (s == NU_OK)
            s = text ? write_text(set, "manifest.json", text) : nu_error(NU_ERR_NOMEM, "out of memory");
        free(text);
        if (s == NU_OK)
            remove_other_sets(set, step_name);
    }
    return nu_shard_agree(sh, s);
}

/* The manifest: the set's directory name and its process count. */
static nu_status read_manifest(const char *dir, char *set_name, size_t n, int *ranks)
{
    char path[NU_PATH_MAX], *text = NULL;
    size_t len = 0;
    nu_status s = join(path, sizeof path, "%s/%s", dir, "manifest.json");
    if (s == NU_OK)
        s = nu_checkpoint_read_text(path, &text, &len);
    cJSON *o = NULL;
    if (s == NU_OK)
        s = nu_json_parse_strict(text, len, path, 64, &o, NULL);
    free(text);
    if (s != NU_OK)
        return s;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "format");
    const cJSON *set = cJSON_GetObjectItemCaseSensitive(o, "set");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "ranks");
    int ok = cJSON_IsString(f) && strcmp(f->valuestring, SET_FORMAT) == 0 && cJSON_IsString(set) &&
             strncmp(set->valuestring, "step-", 5) == 0 && !strchr(set->valuestring, '/') &&
             strlen(set->valuestring) < n && cJSON_IsNumber(r) && r->valuedouble >= 1 &&
             r->valuedouble <= 65536 && r->valuedouble == (double)(int)r->valuedouble;
    if (ok) {
        snprintf(set_name, n, "%s", set->valuestring);
        *ranks = (int)r->valuedouble;
    }
    cJSON_Delete(o);
    return ok ? NU_OK : nu_error(NU_ERR_FORMAT, "%s: not a manifest of a sharded checkpoint", path);
}

/* One process's file into the full model and moments: rows of each table
 * where the file says they start (checked against the sharding rule), and
 * the dense parameters from process 0's. */
static nu_status read_shard(const char *path, int q, int R, nu_model *m, nu_adam *a)
{
    nu_st_file f;
    nu_status s = nu_st_open(path, &f);
    if (s != NU_OK)
        return s;
    const char *fmt = nu_st_meta(&f, "format"), *rk = nu_st_meta(&f, "rank"), *rs = nu_st_meta(&f, "ranks");
    if (!fmt || strcmp(fmt, SHARD_FORMAT) != 0 || !rk || atoi(rk) != q || !rs || atoi(rs) != R)
        s = nu_error(NU_ERR_FORMAT, "%s: not rank %d of %d of a sharded checkpoint", path, q, R);
    float *arrays[3] = {m->params, a->m, a->v};
    const char *suffix[3] = {"", ".adam_m", ".adam_v"};
    for (size_t i = 0; s == NU_OK && i < m->layout.count; i++) {
        const nu_param_spec *p = &m->layout.specs[i];
        int dense = p->kind == NU_PARAM_DENSE;
        if (dense && q != 0)
            continue;
        size_t w = dense ? 0 : p->shape[1];
        size_t lo = dense ? 0 : p->shape[0] * (size_t)q / (size_t)R;
        size_t rows = dense ? 0 : p->shape[0] * (size_t)(q + 1) / (size_t)R - lo;
        size_t count = dense ? p->count : rows * w;
        if (!dense) {
            char key[NU_PARAM_NAME_MAX + 8];
            snprintf(key, sizeof key, "first.%s", p->name);
            const char *first = nu_st_meta(&f, key);
            if (!first || strtoull(first, NULL, 10) != lo)
                s = nu_error(NU_ERR_FORMAT, "%s: %s does not start at row %zu", path, p->name, lo);
        }
        for (int k = 0; s == NU_OK && k < 3; k++) {
            char name[NU_PARAM_NAME_MAX + 8];
            snprintf(name, sizeof name, "%s%s", p->name, suffix[k]);
            const nu_st_tensor *t = nu_st_find(&f, name);
            if (!t || t->dtype != NU_ST_F32 || t->nelem != count)
                s = nu_error(NU_ERR_FORMAT, "%s: %s missing or not %zu floats", path, name, count);
            else
                memcpy(arrays[k] + p->offset + lo * w, t->raw, count * sizeof(float));
        }
    }
    nu_st_close(&f);
    return s;
}

nu_status nu_shard_load_set(run *r, const char *dir)
{
    char set_name[64], step_dir[NU_PATH_MAX], path[NU_PATH_MAX], *text = NULL;
    int R = 0;
    size_t len = 0;
    nu_status s = read_manifest(dir, set_name, sizeof set_name, &R);
    if (s == NU_OK)
        s = join(step_dir, sizeof step_dir, "%s/%s", dir, set_name);
    nu_model_config cfg;
    if (s == NU_OK && (s = join(path, sizeof path, "%s/%s", step_dir, "config.json")) == NU_OK)
        s = nu_config_load(path, &cfg);
    if (s == NU_OK)
        s = nu_model_create(&cfg, &r->m);
    if (s == NU_OK)
        s = nu_trainer_attach_data(r);
    nu_adam_config ac;
    uint64_t adam_step = 0;
    if (s == NU_OK && (s = join(path, sizeof path, "%s/%s", step_dir, "train_state.json")) == NU_OK)
        s = nu_checkpoint_read_text(path, &text, &len);
    if (s == NU_OK)
        s = nu_checkpoint_parse_state(path, text, len, &ac, &adam_step, &r->st);
    free(text);
    if (s == NU_OK)
        s = nu_adam_init(&r->adam, &r->m->layout, &ac);
    for (int q = 0; s == NU_OK && q < R; q++) {
        char file[64];
        snprintf(file, sizeof file, "rank-%d-of-%d.safetensors", q, R);
        if ((s = join(path, sizeof path, "%s/%s", step_dir, file)) == NU_OK)
            s = read_shard(path, q, R, r->m, &r->adam);
    }
    if (s == NU_OK)
        r->adam.step = adam_step;
    return s;
}
