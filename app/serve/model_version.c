/* Loading, validating and swapping model versions (model_version.h). */
#include "model_version.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "util/clock.h"

const char *sv_dtype_name(nu_dtype d)
{
    return d == NU_DTYPE_BF16 ? "bf16" : d == NU_DTYPE_INT8 ? "int8" : "fp32";
}


int sv_models_init(sv_models *ms, const nu_serve_config *cfg)
{
    memset(ms, 0, sizeof *ms);
    ms->cfg = cfg;
    ms->next_gen = 1;
    atomic_init(&ms->cur_gen, 0);
    if (pthread_mutex_init(&ms->mu, NULL) != 0)
        return -1;
    if (pthread_mutex_init(&ms->reload_mu, NULL) != 0) {
        pthread_mutex_destroy(&ms->mu);
        return -1;
    }
    return 0;
}

void sv_models_destroy(sv_models *ms)
{
    pthread_mutex_lock(&ms->mu);
    sv_version *v = ms->cur;
    ms->cur = NULL;
    atomic_store(&ms->cur_gen, 0);
    pthread_mutex_unlock(&ms->mu);
    if (v)
        sv_version_release(v);
    pthread_mutex_destroy(&ms->mu);
    pthread_mutex_destroy(&ms->reload_mu);
}

void sv_version_ref(sv_version *v)
{
    atomic_fetch_add(&v->refs, 1);
}

static void version_free(sv_version *v)
{
    if (v->table_loaded && v->cfg->table_release)
        v->cfg->table_release(v->cfg->search_ctx, v->gen);
    nu_engine_free(v->engine);
    nu_table_free(v->table);
    nu_model_free(v->model);
    free(v);
}

void sv_version_release(sv_version *v)
{
    if (!v)
        return;
    if (atomic_fetch_sub(&v->refs, 1) == 1) {
        sv_log(SV_LOG_INFO, "model version freed", "version=\"%s\" gen=%lu", v->name, v->gen);
        version_free(v);
    }
}

sv_version *sv_models_acquire(sv_models *ms)
{
    pthread_mutex_lock(&ms->mu);
    sv_version *v = ms->cur;
    if (v)
        sv_version_ref(v);
    pthread_mutex_unlock(&ms->mu);
    return v;
}

int sv_models_is_stale(sv_models *ms, const sv_version *v)
{
    return atomic_load(&ms->cur_gen) != v->gen;
}

/* FNV-1a over the bytes of x. */
static uint64_t fnv(uint64_t h, const void *x, size_t n)
{
    const unsigned char *p = x;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* "DIRNAME-xxxxxxxx": the last component of the directory's real path and
 * a fingerprint of the size and modification time of the files that define
 * the model (the same files loaded again give the same name). */
static void version_name(const char *dir, char *out, size_t cap)
{
    static const char *const files[] = {"model.safetensors", "users.txt", "config.json",
                                        "user_table.safetensors"};
    uint64_t h = 1469598103934665603ull;
    char path[4200];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (stat(path, &st) != 0)
            continue;
        h = fnv(h, files[i], strlen(files[i]));
        h = fnv(h, &st.st_size, sizeof st.st_size);
        h = fnv(h, &st.st_mtim.tv_sec, sizeof st.st_mtim.tv_sec);
        h = fnv(h, &st.st_mtim.tv_nsec, sizeof st.st_mtim.tv_nsec);
    }
    /* The real directory's name: a link to a model reads as the model. */
    char real[4096];
    if (realpath(dir, real))
        dir = real;
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t s = n;
    while (s > 0 && dir[s - 1] != '/')
        s--;
    int len = (int)(n - s);
    if (len > 120)
        len = 120;
    snprintf(out, cap, "%.*s-%08llx", len, dir + s, (unsigned long long)(h & 0xffffffffull));
}

/* One recommend and one embed of an item without users or features: every
 * step a request takes, on the new version, before it may serve. */
static nu_status validate(sv_version *v, int *own)
{
    *own = 0;
    nu_session *s = NULL;
    nu_batch *b = NULL;
    uint32_t *rows = malloc(v->k * sizeof *rows);
    float *scores = malloc(v->k * sizeof *scores);
    float *vec = malloc((v->dim ? v->dim : 1) * sizeof *vec);
    static const char item[] = "{\"id\": \"nextuser-serve-validation\"}";
    nu_status st = NU_ERR_NOMEM;
    if (!rows || !scores || !vec) {
        *own = 1;
        goto done;
    }
    if ((st = nu_session_create(v->engine, &s)) != NU_OK ||
        (st = nu_batch_create(v->model, &b)) != NU_OK ||
        (st = nu_batch_add_json(b, item, sizeof item - 1)) != NU_OK ||
        (st = nu_session_recommend(s, b, 0, 1, rows, scores)) != NU_OK ||
        (st = nu_session_embed(s, b, 0, 1, vec)) != NU_OK)
        goto done;
    for (size_t j = 0; j < v->k && rows[j] != UINT32_MAX; j++)
        if (rows[j] >= v->users || !isfinite(scores[j]) || !nu_model_user_id(v->model, rows[j])) {
            st = NU_ERR_FORMAT;
            *own = 1;
            goto done;
        }
    for (size_t j = 0; j < v->dim; j++)
        if (!isfinite(vec[j])) {
            st = NU_ERR_FORMAT;
            *own = 1;
            goto done;
        }
done:
    nu_batch_free(b);
    nu_session_free(s);
    free(rows);
    free(scores);
    free(vec);
    return st;
}

static nu_status version_load(const nu_serve_config *cfg, const char *dir, unsigned long gen,
                              sv_version **out, char *err, size_t errcap)
{
    double t0 = nu_now_seconds();
    sv_version *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(err, errcap, "out of memory");
        return NU_ERR_NOMEM;
    }
    atomic_init(&v->refs, 1);
    v->gen = gen;
    v->cfg = cfg;
    snprintf(v->dir, sizeof v->dir, "%s", dir);
    v->dtype = cfg->dtype;
    v->k = cfg->max_k;
    v->max_batch = cfg->max_batch;
    nu_engine_options o;
    nu_engine_options_init(&o);
    o.threads = cfg->threads;
    o.max_batch = cfg->max_batch;
    o.k = cfg->max_k;
    o.dtype = cfg->dtype;
    o.pool = cfg->pool;
    o.pin = 0;
    o.gen_dtype = cfg->gen_dtype;
    nu_status st;
    const char *what = "model";
    if ((st = nu_model_load(dir, &v->model)) != NU_OK)
        goto fail;
    /* A sharded service's ranks open their rows of this version's table. */
    what = "sharded table";
    if (cfg->table_load) {
        if ((st = cfg->table_load(cfg->search_ctx, gen, dir, v->model)) != NU_OK)
            goto fail;
        v->table_loaded = 1;
    }
    what = "user table";
    /* A sharded service's generator holds its own rows only (docs/mpi.md). */
    if ((st = cfg->table_rows
                  ? nu_table_open_rows(v->model, dir, cfg->dtype, cfg->table_first,
                                       cfg->table_rows, &v->table)
                  : nu_table_open(v->model, dir, cfg->dtype, &v->table)) != NU_OK)
        goto fail;
    /* A long-running service scans its own copy in 2 MiB pages by default
     * (a sharded one's ranks hold theirs: this table only validates). */
    if (!cfg->table_map && !cfg->table_rows && (st = nu_table_make_resident(v->table)) != NU_OK)
        goto fail;
    what = "engine";
    if ((st = nu_engine_create(v->model, v->table, &o, &v->engine)) != NU_OK)
        goto fail;
    v->dim = nu_model_dim(v->model);
    v->users = nu_model_num_users(v->model);
    what = "validation";
    int own = 0;
    if ((st = validate(v, &own)) != NU_OK) {
        if (own) {
            snprintf(err, errcap, "%s: validation: the model gives non-finite values or bad rows",
                     dir);
            version_free(v);
            return st;
        }
        goto fail;
    }
    version_name(dir, v->name, sizeof v->name);
    v->load_seconds = nu_now_seconds() - t0;
    *out = v;
    return NU_OK;
fail:;
    const char *msg = nu_last_error();
    snprintf(err, errcap, "%s (%s): %s", what, nu_status_str(st), msg[0] ? msg : "failed");
    version_free(v);
    return st;
}

nu_status sv_models_reload(sv_models *ms, const char *dir, char *err, size_t errcap, char *name,
                           size_t namecap, char *prev, size_t prevcap)
{
    pthread_mutex_lock(&ms->reload_mu);
    sv_version *v = NULL;
    nu_status st = version_load(ms->cfg, dir, ms->next_gen++, &v, err, errcap);
    if (st == NU_OK) {
        if (name)
            snprintf(name, namecap, "%s", v->name);
        pthread_mutex_lock(&ms->mu);
        sv_version *old = ms->cur;
        ms->cur = v;
        atomic_store(&ms->cur_gen, v->gen);
        pthread_mutex_unlock(&ms->mu);
        if (prev)
            snprintf(prev, prevcap, "%s", old ? old->name : "");
        if (old)
            sv_version_release(old);
    }
    pthread_mutex_unlock(&ms->reload_mu);
    return st;
}
