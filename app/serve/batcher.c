/* Bounded queue and micro-batching workers (batcher.h). */
#include "batcher.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util/clock.h"

typedef struct sv_slot {
    sv_request *req;
    size_t idx;
    struct timespec t; /* enqueued (CLOCK_MONOTONIC) */
} sv_slot;

typedef struct sv_worker {
    sv_batcher *b;
    pthread_t th;
    int started;
    size_t id;
    /* The session and batch of the version this worker last ran. */
    sv_version *ver;
    nu_session *ses;
    nu_batch *batch;
    uint32_t *rows;
    float *scores, *vec;
    size_t vec_cap;
    int lent;      /* running a request on an HTTP thread (sv_batcher_run_if_idle) */
    int lent_wait; /* the worker waits for its session to come back */
    /* With cfg->search: the batch's queries and each item's exclusions. */
    float *q;
    size_t q_cap;
    const uint32_t **ex_rows;
    size_t *ex_counts;
    sv_slot *take;
} sv_worker;

struct sv_batcher {
    const nu_serve_config *cfg;
    sv_models *models;
    sv_metrics *metrics;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* items arrived, stop, or a reload */
    sv_slot *ring;
    size_t cap, head, count, reserved;
    int closed; /* no new items */
    int stop;   /* workers exit once the queue is empty */
    size_t running;  /* batches running, on workers or lent */
    double idle_since; /* when the last batch ended (0: none ran yet) */
    sv_worker *workers;
    size_t n_workers;
};

static void deadline_after(struct timespec *t, unsigned us)
{
    t->tv_nsec += (long)(us % 1000000u) * 1000;
    t->tv_sec += us / 1000000u;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_nsec -= 1000000000L;
        t->tv_sec++;
    }
}

static int before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

int sv_batcher_reserve(sv_batcher *b, size_t n)
{
    pthread_mutex_lock(&b->mu);
    int ok = !b->closed && b->count + b->reserved + n <= b->cap;
    if (ok)
        b->reserved += n;
    pthread_mutex_unlock(&b->mu);
    return ok;
}

void sv_batcher_submit(sv_batcher *b, sv_request *r)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&b->mu);
    b->reserved -= r->n;
    for (size_t i = 0; i < r->n; i++) {
        sv_slot *s = &b->ring[(b->head + b->count) % b->cap];
        s->req = r;
        s->idx = i;
        s->t = now;
        b->count++;
    }
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

size_t sv_batcher_depth(sv_batcher *b)
{
    pthread_mutex_lock(&b->mu);
    size_t n = b->count + b->reserved;
    pthread_mutex_unlock(&b->mu);
    return n;
}

void sv_batcher_poke(sv_batcher *b)
{
    pthread_mutex_lock(&b->mu);
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* Lets go of the session of a version (called without the queue lock). */
static void drop_version(sv_worker *w)
{
    nu_batch_free(w->batch);
    nu_session_free(w->ses);
    w->batch = NULL;
    w->ses = NULL;
    if (w->ver) {
        sv_version_release(w->ver);
        w->ver = NULL;
    }
}

/* Room for `rows` vectors of `width` floats in *buf (its width now *cap). */
static int grow_floats(float **buf, size_t *cap, size_t width, size_t rows)
{
    if (width <= *cap)
        return 1;
    float *x = realloc(*buf, rows * width * sizeof *x);
    if (!x)
        return 0;
    *buf = x;
    *cap = width;
    return 1;
}

static nu_status use_version(sv_worker *w, sv_version *v)
{
    if (w->ver == v)
        return NU_OK;
    drop_version(w);
    nu_status st = nu_session_create(v->engine, &w->ses);
    if (st == NU_OK)
        st = nu_batch_create(v->model, &w->batch);
    if (st != NU_OK) {
        nu_session_free(w->ses);
        w->ses = NULL;
        return st;
    }
    size_t qd = nu_model_query_dim(v->model), B = w->b->cfg->max_batch;
    if (!grow_floats(&w->vec, &w->vec_cap, v->dim, B) ||
        (w->b->cfg->search && !grow_floats(&w->q, &w->q_cap, qd, B))) {
        nu_batch_free(w->batch);
        nu_session_free(w->ses);
        w->batch = NULL;
        w->ses = NULL;
        return NU_ERR_NOMEM;
    }
    sv_version_ref(v);
    w->ver = v;
    return NU_OK;
}

/* A recommend whose scan runs elsewhere (cfg->search): the queries and
 * exclusions here, the scan there; the same answer as nu_session_recommend. */
static nu_status recommend_via_hook(sv_worker *w, size_t n)
{
    const nu_serve_config *cfg = w->b->cfg;
    size_t qd = nu_model_query_dim(w->ver->model);
    nu_status st = nu_session_query(w->ses, w->batch, 0, n, w->q);
    for (size_t i = 0; i < n && st == NU_OK; i++)
        st = nu_batch_item_history(w->batch, i, &w->ex_rows[i], &w->ex_counts[i]);
    if (st == NU_OK)
        st = cfg->search(cfg->search_ctx, w->ver->gen, w->q, n, qd, w->ex_rows, w->ex_counts,
                         w->rows, w->scores);
    return st;
}

static void fail_item(sv_request *r, const char *what, const char *msg)
{
    int expected = 0;
    if (atomic_compare_exchange_strong(&r->failed, &expected, 1))
        snprintf(r->error, sizeof r->error, "%s: %s", what, msg && msg[0] ? msg : "failed");
}

/* Runs n taken items (one version, one kind) on `threads` engine threads
 * (0: the engine's) and answers finished requests; idle: on an HTTP thread
 * (sv_batcher_run_if_idle). */
static void run_batch(sv_worker *w, size_t n, int threads, int idle)
{
    sv_slot *t = w->take;
    double started = nu_now_seconds();
    for (size_t i = 0; i < n; i++)
        if (t[i].idx == 0) /* only this batch holds the request's item 0 */
            t[i].req->t_taken = started;
    sv_request *r0 = t[0].req;
    sv_version *v = r0->ver;
    sv_kind kind = r0->kind;
    size_t K = v->k;
    nu_status st = use_version(w, v);
    const char *what = "session";
    if (st == NU_OK)
        st = nu_session_set_threads(w->ses, threads);
    if (st == NU_OK) {
        nu_batch_clear(w->batch);
        what = "items";
        /* The items were parsed with their request: copy them, a run of
         * one request's consecutive items at a time. */
        for (size_t i = 0, j; i < n && st == NU_OK; i = j) {
            for (j = i + 1; j < n && t[j].req == t[i].req && t[j].idx == t[j - 1].idx + 1; j++)
                ;
            st = nu_batch_append(w->batch, t[i].req->batch, t[i].idx, j - i);
        }
    }
    if (st == NU_OK) {
        what = kind == SV_RECOMMEND ? "recommend" : "embed";
        if (kind == SV_RECOMMEND)
            st = w->b->cfg->search ? recommend_via_hook(w, n)
                                   : nu_session_recommend(w->ses, w->batch, 0, n, w->rows, w->scores);
        else
            st = nu_session_embed(w->ses, w->batch, 0, n, w->vec);
    }
    double ran = nu_now_seconds();
    const char *msg = st == NU_OK ? NULL : nu_last_error();
    if (st != NU_OK)
        sv_log(SV_LOG_ERROR, "batch failed", "what=%s items=%zu error=\"%s\"", what, n, msg);
    else
        sv_metrics_batch(w->b->metrics, n, idle);
    for (size_t i = 0; i < n; i++) {
        sv_request *r = t[i].req;
        size_t j = t[i].idx;
        if (st != NU_OK)
            fail_item(r, what, msg);
        else if (kind == SV_RECOMMEND) {
            memcpy(r->rows + j * r->k, w->rows + i * K, r->k * sizeof *r->rows);
            memcpy(r->scores + j * r->k, w->scores + i * K, r->k * sizeof *r->scores);
        } else
            memcpy(r->vectors + j * v->dim, w->vec + i * v->dim, v->dim * sizeof *w->vec);
        if (atomic_fetch_sub(&r->remaining, 1) == 1) {
            r->t_ran = ran;
            sv_request_finish(r); /* r may be gone after this */
        }
    }
}

int sv_batcher_run_if_idle(sv_batcher *b, sv_request *r)
{
    const nu_serve_config *cfg = b->cfg;
    /* Only where the policy would run a lone item at once anyway (no wait
     * for a fuller batch); a sharded scan runs on the workers' threads. */
    if (!cfg->idle_us || cfg->max_wait_us || cfg->search || r->n > cfg->max_batch)
        return 0;
    sv_worker *w = NULL;
    pthread_mutex_lock(&b->mu);
    double now = nu_now_seconds();
    /* Nothing running: no worker is busy or lent, so the first one serves. */
    if (!b->closed && b->count == 0 && b->reserved == r->n && b->running == 0 &&
        (b->idle_since == 0 || now - b->idle_since >= cfg->idle_us * 1e-6))
        w = &b->workers[0];
    if (w) {
        w->lent = 1;
        b->running++;
        b->reserved -= r->n;
    }
    pthread_mutex_unlock(&b->mu);
    if (!w)
        return 0;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    for (size_t i = 0; i < r->n; i++)
        w->take[i] = (sv_slot){.req = r, .idx = i, .t = t};
    run_batch(w, r->n, cfg->idle_threads, 1);
    pthread_mutex_lock(&b->mu);
    w->lent = 0;
    b->running--;
    b->idle_since = nu_now_seconds();
    /* Wake only a worker that waited for its session (items came, a stop, a
     * reload): a needless wake-up would delay this answer. */
    if (w->lent_wait || b->count)
        pthread_cond_broadcast(&b->cv);
    w->lent_wait = 0;
    pthread_mutex_unlock(&b->mu);
    return 1;
}

static void *worker_main(void *arg)
{
    sv_worker *w = arg;
    sv_batcher *b = w->b;
    size_t B = b->cfg->max_batch;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        if (w->lent) { /* an HTTP thread runs a request on this session */
            w->lent_wait = 1;
            pthread_cond_wait(&b->cv, &b->mu);
            continue;
        }
        if (w->ver && sv_models_is_stale(b->models, w->ver)) {
            pthread_mutex_unlock(&b->mu);
            drop_version(w);
            pthread_mutex_lock(&b->mu);
            continue;
        }
        if (b->count == 0) {
            if (b->stop && b->reserved == 0)
                break;
            pthread_cond_wait(&b->cv, &b->mu);
            continue;
        }
        /* Wait for a full batch until the oldest item's deadline. */
        if (b->count < B && !b->stop) {
            struct timespec dl = b->ring[b->head].t, now;
            deadline_after(&dl, b->cfg->max_wait_us);
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (before(&now, &dl)) {
                int rc = pthread_cond_timedwait(&b->cv, &b->mu, &dl);
                if (rc != 0 && rc != ETIMEDOUT)
                    sv_log(SV_LOG_ERROR, "pthread_cond_timedwait failed", "rc=%d", rc);
                continue; /* re-check: another worker may have taken them */
            }
        }
        /* Take up to B items of the head's version and kind. */
        sv_version *v = b->ring[b->head].req->ver;
        sv_kind kind = b->ring[b->head].req->kind;
        size_t n = 0;
        while (n < B && b->count > 0) {
            sv_slot *s = &b->ring[b->head];
            if (s->req->ver != v || s->req->kind != kind)
                break;
            w->take[n++] = *s;
            b->head = (b->head + 1) % b->cap;
            b->count--;
        }
        if (b->count > 0)
            pthread_cond_broadcast(&b->cv);
        b->running++;
        pthread_mutex_unlock(&b->mu);
        run_batch(w, n, 0, 0);
        pthread_mutex_lock(&b->mu);
        b->running--;
        b->idle_since = nu_now_seconds();
    }
    pthread_mutex_unlock(&b->mu);
    drop_version(w);
    return NULL;
}

static void free_workers(sv_batcher *b)
{
    for (size_t i = 0; i < b->n_workers; i++) {
        free(b->workers[i].rows);
        free(b->workers[i].scores);
        free(b->workers[i].vec);
        free(b->workers[i].take);
        free(b->workers[i].q);
        free(b->workers[i].ex_rows);
        free(b->workers[i].ex_counts);
    }
    free(b->workers);
}

sv_batcher *sv_batcher_start(const nu_serve_config *cfg, sv_models *models, sv_metrics *metrics)
{
    sv_batcher *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->cfg = cfg;
    b->models = models;
    b->metrics = metrics;
    b->cap = cfg->queue_items;
    b->ring = calloc(b->cap, sizeof *b->ring);
    b->n_workers = (size_t)cfg->workers;
    b->workers = calloc(b->n_workers, sizeof *b->workers);
    if (!b->ring || !b->workers || pthread_mutex_init(&b->mu, NULL) != 0) {
        free(b->ring);
        free(b->workers);
        free(b);
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        pthread_mutex_destroy(&b->mu);
        free(b->ring);
        free(b->workers);
        free(b);
        return NULL;
    }
    size_t B = cfg->max_batch, K = cfg->max_k;
    int ok = 1;
    for (size_t i = 0; i < b->n_workers && ok; i++) {
        sv_worker *w = &b->workers[i];
        w->b = b;
        w->id = i;
        w->rows = malloc(B * K * sizeof *w->rows);
        w->scores = malloc(B * K * sizeof *w->scores);
        w->take = malloc(B * sizeof *w->take);
        w->ex_rows = malloc(B * sizeof *w->ex_rows);
        w->ex_counts = malloc(B * sizeof *w->ex_counts);
        ok = w->rows && w->scores && w->take && w->ex_rows && w->ex_counts;
        if (ok)
            ok = (w->started = pthread_create(&w->th, NULL, worker_main, w) == 0);
    }
    if (!ok) {
        sv_batcher_free(b);
        return NULL;
    }
    return b;
}

void sv_batcher_stop(sv_batcher *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->closed = 1;
    b->stop = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    for (size_t i = 0; i < b->n_workers; i++)
        if (b->workers[i].started) {
            pthread_join(b->workers[i].th, NULL);
            b->workers[i].started = 0;
        }
}

void sv_batcher_free(sv_batcher *b)
{
    if (!b)
        return;
    sv_batcher_stop(b);
    free_workers(b);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b->ring);
    free(b);
}
