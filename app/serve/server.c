/* nextuser serve: start-up, signals (SIGHUP reloads; SIGTERM and SIGINT
 * drain and stop) and shutdown (serve.h, docs/serve.md). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "log.h"
#include "server.h"
#include "util/clock.h"

nu_status sv_server_reload(sv_server *s, const char *dir, const char *origin, char *err,
                           size_t errcap, char *name, size_t namecap, char *prev, size_t prevcap,
                           double *load_seconds)
{
    if (!dir)
        dir = s->cfg->model_dir;
    char nm[160] = "", pv[160] = "";
    sv_log(SV_LOG_INFO, "loading model", "origin=%s dir=\"%s\"", origin, dir);
    nu_status st = sv_models_reload(&s->models, dir, err, errcap, nm, sizeof nm, pv, sizeof pv);
    sv_metrics_reload(s->metrics, st == NU_OK);
    if (st != NU_OK) {
        for (char *p = err; *p; p++)
            if (*p == '"' || *p == '\n')
                *p = '\'';
        sv_log(SV_LOG_ERROR, "model refused; the previous version keeps serving",
               "origin=%s dir=\"%s\" error=\"%s\"", origin, dir, err);
        return st;
    }
    sv_version *v = sv_models_acquire(&s->models);
    double secs = v && !strcmp(v->name, nm) ? v->load_seconds : 0;
    if (v)
        sv_version_release(v);
    if (load_seconds)
        *load_seconds = secs;
    if (name)
        snprintf(name, namecap, "%s", nm);
    if (prev)
        snprintf(prev, prevcap, "%s", pv);
    sv_log(SV_LOG_INFO, "model loaded",
           "origin=%s dir=\"%s\" version=\"%s\" previous=\"%s\" seconds=%.3f", origin, dir, nm, pv,
           secs);
    if (s->batcher)
        sv_batcher_poke(s->batcher); /* idle workers let the old version go */
    return NU_OK;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}


int nu_serve_main(const nu_serve_config *cfg)
{
    /* Signals go to the main thread's sigwait only: block them before any
     * thread (the library's OpenMP threads included) exists. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    sv_log_set_level(cfg->log_level);
    char err[2048];
    if (!sv_http_check_addr(cfg->listen, err, sizeof err)) {
        fprintf(stderr, "nextuser serve: --listen: %s\n", err);
        return 2;
    }
    if (cfg->admin_listen && !sv_http_check_addr(cfg->admin_listen, err, sizeof err)) {
        fprintf(stderr, "nextuser serve: --admin-listen: %s\n", err);
        return 2;
    }
    if (nu_init() != NU_OK) {
        fprintf(stderr, "nextuser serve: %s\n", nu_last_error());
        return 2;
    }
    sv_server s;
    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    atomic_init(&s.active, 0);
    atomic_init(&s.draining, 0);
    if (sv_models_init(&s.models, cfg) != 0 || !(s.metrics = sv_metrics_create())) {
        fprintf(stderr, "nextuser serve: out of memory\n");
        return 1;
    }
    int rc = 1;
    sv_http *api = NULL, *admin = NULL;
    if (sv_server_reload(&s, cfg->model_dir, "start", err, sizeof err, NULL, 0, NULL, 0, NULL) !=
        NU_OK) {
        fprintf(stderr, "nextuser serve: %s\n", err);
        goto done;
    }
    if (!(s.batcher = sv_batcher_start(cfg, &s.models, s.metrics))) {
        fprintf(stderr, "nextuser serve: cannot start the workers\n");
        goto done;
    }
    char bound[300], abound[300] = "";
    if (!(api = sv_http_start(&s, cfg->listen, 0, bound, sizeof bound)))
        goto done;
    if (cfg->admin_listen &&
        !(admin = sv_http_start(&s, cfg->admin_listen, 1, abound, sizeof abound)))
        goto done;
    if (admin)
        printf("nextuser serve: listening on %s (admin %s)\n", bound, abound);
    else
        printf("nextuser serve: listening on %s\n", bound);
    fflush(stdout);
    sv_log(SV_LOG_INFO, "serving",
           "listen=%s admin=%s workers=%d threads=%d max_batch=%zu "
           "max_wait_us=%u idle_us=%u idle_threads=%d queue_items=%zu isa=%s ranks=%d "
           "gen_dtype=%s gen_dtype_asked=%s",
           bound, abound[0] ? abound : "none", cfg->workers, cfg->threads, cfg->max_batch,
           cfg->max_wait_us, cfg->search ? 0 : cfg->idle_us, cfg->idle_threads, cfg->queue_items,
           nu_isa_active(), cfg->ranks > 1 ? cfg->ranks : 1,
           nu_dtype_name(nu_gen_dtype_effective(cfg->gen_dtype)), nu_dtype_name(cfg->gen_dtype));
    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            sv_server_reload(&s, NULL, "SIGHUP", err, sizeof err, NULL, 0, NULL, 0, NULL);
            continue;
        }
        sv_log(SV_LOG_INFO, "shutting down", "signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
    /* Drain: refuse new connections, let the requests already read finish
     * (and those arriving on open connections, while the workers run),
     * then stop the workers and the daemons. */
    atomic_store(&s.draining, 1);
    sv_http_quiesce(api);
    sv_http_quiesce(admin);
    double deadline = nu_now_seconds() + (cfg->timeout_s > 5 ? cfg->timeout_s : 5), quiet_since = -1;
    while (nu_now_seconds() < deadline) {
        int idle = atomic_load(&s.active) == 0 && sv_batcher_depth(s.batcher) == 0;
        if (!idle)
            quiet_since = -1;
        else if (quiet_since < 0)
            quiet_since = nu_now_seconds();
        else if (nu_now_seconds() - quiet_since >= 0.1)
            break;
        sleep_ms(5);
    }
    sv_batcher_stop(s.batcher); /* runs what is still queued; refuses the rest */
    deadline = nu_now_seconds() + 2;
    while (atomic_load(&s.active) > 0 && nu_now_seconds() < deadline)
        sleep_ms(5);
    sv_log(SV_LOG_INFO, "stopped", "open_requests=%zu", atomic_load(&s.active));
    rc = 0;
done:
    sv_http_stop(api);
    sv_http_stop(admin);
    sv_batcher_free(s.batcher);
    sv_models_destroy(&s.models);
    sv_metrics_free(s.metrics);
    return rc;
}
