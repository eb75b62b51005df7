/* nu_plan_served_*: the plan from the served figures of `nextuser serve`
 * (docs/plan.md, "From the served figures"). */
#include "plan/plan_served.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static const char SWEEP_PREFIX[] = "sweep-nextuser-";
static const char WRITTEN_BY[] =
    "tools/load/run_serve_bench.sh OUTDIR (writes OUTDIR/results.json), or "
    "tools/load/open_loop.py --sweep --service S.json --json FILE";

static const cJSON *item(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

/* The number at KEY of O, or DFLT when it is absent or not a number. */
static double num(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = item(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = item(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

nu_status nu_plan_served_load(const char *path, nu_plan_served_file *f)
{
    memset(f, 0, sizeof *f);
    nu_status s = nu_plan_read_json(path, &f->root);
    if (s != NU_OK) {
        nu_plan_served_free(f);
        return s;
    }
    if (!cJSON_IsObject(f->root)) {
        nu_plan_served_free(f);
        return nu_error(NU_ERR_FORMAT,
                        "%s: not a JSON object (--served reads the results.json of "
                        "tools/load/run_serve_bench.sh or one open_loop.py --sweep document)",
                        path);
    }
    const char *tool = str(f->root, "tool");
    if (tool && strcmp(tool, "open_loop.py") == 0) {
        const char *mode = str(f->root, "mode");
        if (!mode || strcmp(mode, "sweep") != 0) {
            nu_status e = nu_error(NU_ERR_INVALID_ARG,
                                   "%s: an open_loop.py run in mode \"%s\", not a sweep: the plan "
                                   "needs the highest rate under a p99 bound (written by: "
                                   "tools/load/open_loop.py --sweep --p99-ms L --service S.json "
                                   "--json FILE)", path, mode ? mode : "?");
            nu_plan_served_free(f);
            return e;
        }
        f->single = 1;
        f->count = 1;
        f->sweeps[0] = f->root;
        f->keys[0] = "sweep";
        return NU_OK;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, f->root) {
        if (strncmp(e->string, SWEEP_PREFIX, sizeof SWEEP_PREFIX - 1) != 0 || !cJSON_IsObject(e))
            continue;
        if (f->count == NU_PLAN_SERVED_MAX_SWEEPS)
            break;
        f->sweeps[f->count] = e;
        f->keys[f->count++] = e->string;
    }
    if (f->count == 0) {
        nu_plan_served_free(f);
        return nu_error(NU_ERR_INVALID_ARG,
                        "%s: no open-loop sweep of nextuser serve (\"%s<users>\" in results.json) "
                        "(written by: %s)", path, SWEEP_PREFIX, WRITTEN_BY);
    }
    return NU_OK;
}

void nu_plan_served_free(nu_plan_served_file *f)
{
    cJSON_Delete(f->root);
    memset(f, 0, sizeof *f);
}

/* Reads sweep I of F into *w; NU_ERR_INVALID_ARG naming what it lacks. */
static nu_status read_sweep(const nu_plan_served_file *f, size_t i, nu_plan_served_sweep *w)
{
    const cJSON *sw = f->sweeps[i], *sv = item(sw, "service"), *runs = item(sw, "runs");
    memset(w, 0, sizeof *w);
    w->key = f->keys[i];
    w->label = str(sw, "label");
    w->command = str(sw, "command");
    w->bound_ms = num(sw, "bound_p99_ms", 0);
    w->max_rate = num(sw, "max_rate_passing", 0);
    w->items_per_request = (int)num(sw, "items_per_request", 0);
    w->k = num(sw, "k", 0);
    if (!cJSON_IsObject(sv))
        return nu_error(NU_ERR_INVALID_ARG,
                        "%s has no \"service\" record (the table's users and dtype, the service's "
                        "--threads and --workers): rerun the load test (written by: %s)",
                        w->key, WRITTEN_BY);
    w->service_command = str(sv, "command");
    w->dtype = str(sv, "dtype");
    w->table = str(sv, "table");
    w->cpu = str(sv, "cpu");
    w->users = num(sv, "users", 0);
    w->d = num(sv, "d", 0);
    w->model_bytes_per_user = num(sv, "model_bytes_per_user", 0);
    w->weights_bytes = num(sv, "weights_bytes", 0);
    w->threads = (int)num(sv, "threads", 0);
    w->workers = (int)num(sv, "workers", 0);
    w->machine_cores = (int)num(sv, "machine_cores", 0);
    w->max_batch = (int)num(sv, "max_batch", 0);
    w->max_wait_us = num(sv, "max_wait_us", -1);
    if (w->users < 1 || !w->dtype || w->threads < 1 || w->workers < 1)
        return nu_error(NU_ERR_INVALID_ARG,
                        "%s: its \"service\" lacks users, dtype, threads or workers (written by: %s)",
                        w->key, WRITTEN_BY);
    if (!cJSON_IsArray(runs) || w->bound_ms <= 0 || w->items_per_request < 1)
        return nu_error(NU_ERR_INVALID_ARG,
                        "%s lacks \"runs\", \"bound_p99_ms\" or \"items_per_request\": not an "
                        "open_loop.py --sweep document (written by: %s)", w->key, WRITTEN_BY);
    w->runs = (size_t)cJSON_GetArraySize(runs);
    return NU_OK;
}

/* The label of sweep KEY ("sweep-nextuser-100k" -> "100k"), "" for a single sweep. */
static const char *users_label(const char *key)
{
    size_t n = sizeof SWEEP_PREFIX - 1;
    return strncmp(key, SWEEP_PREFIX, n) == 0 ? key + n : "";
}

/* Figures of the same run that the plan prints but does not use. */
static void read_context(const nu_plan_served_file *f, const char *label,
                         nu_plan_served_measured *m)
{
    char key[96];
    const cJSON *o;
    if (f->single || !label[0])
        return;
    m->date = str(f->root, "date");
    m->capacity_rps = num(item(f->root, "capacity"), "max_rate_passing", 0);
    if (snprintf(key, sizeof key, "light-nextuser-%s", label) < (int)sizeof key &&
        (o = cJSON_GetArrayItem(item(item(f->root, key), "runs"), 0))) {
        m->light_rate = num(o, "offered_per_s", 0);
        m->light_p50 = num(item(o, "latency_ms"), "p50", 0);
        m->light_p99 = num(item(o, "latency_ms"), "p99", 0);
    }
    if (snprintf(key, sizeof key, "wrk-nextuser-%s-n1", label) < (int)sizeof key &&
        (o = item(f->root, key))) {
        m->wrk1_rps = num(o, "requests_per_s", 0);
        m->wrk1_p99 = num(item(o, "latency_ms"), "p99", 0);
    }
    if (snprintf(key, sizeof key, "wrk-nextuser-%s-n16", label) < (int)sizeof key &&
        (o = item(f->root, key))) {
        m->wrk16_ips = num(o, "items_per_s", 0);
        m->wrk16_p99 = num(item(o, "latency_ms"), "p99", 0);
    }
    if (snprintf(key, sizeof key, "engine-%s-B32", label) < (int)sizeof key &&
        (o = item(f->root, key))) {
        m->engine_ips = num(o, "items_per_s", 0);
        m->engine_batch = num(o, "batch", 0);
    }
}

nu_status nu_plan_served_measure(const nu_plan_served_file *f, const nu_plan_request *q,
                                 nu_plan_served_measured *m)
{
    memset(m, 0, sizeof *m);
    m->count = f->count;
    for (size_t i = 0; i < f->count; i++) {
        nu_status s = read_sweep(f, i, &m->all[i]);
        if (s != NU_OK)
            return s;
    }
    /* The sweep: of the dtype asked, the fewest users at or above U (no
     * extrapolation, conservative); else the most users below U. */
    long above = -1, below = -1;
    char measured[256] = "";
    for (size_t i = 0; i < m->count; i++) {
        const nu_plan_served_sweep *w = &m->all[i];
        size_t len = strlen(measured);
        if (len + 40 < sizeof measured)
            snprintf(measured + len, sizeof measured - len, "%s%.0f users %s", len ? ", " : "",
                     w->users, w->dtype);
        if (strcmp(w->dtype, q->dtype) != 0)
            continue;
        if (w->users >= q->users && (above < 0 || w->users < m->all[above].users))
            above = (long)i;
        if (w->users < q->users && (below < 0 || w->users > m->all[below].users))
            below = (long)i;
    }
    if (above < 0 && below < 0)
        return nu_error(NU_ERR_INVALID_ARG,
                        "no served sweep with dtype %s (measured: %s): run the load test with "
                        "nextuser serve --dtype %s over a table with %s rows (written by: %s)",
                        q->dtype, measured, q->dtype, q->dtype, WRITTEN_BY);
    m->chosen = (size_t)(above >= 0 ? above : below);
    const nu_plan_served_sweep *w = &m->all[m->chosen];
    m->rho = q->users / w->users;
    m->sigma = fmax(1.0, m->rho);
    if (m->rho > NU_PLAN_SERVED_MAX_SCALE)
        return nu_error(NU_ERR_INVALID_ARG,
                        "the served sweeps go up to %.0f users (%s); %.0f users is %.3gx that, "
                        "more than the %gx the served figures are scaled to (A13): measure at "
                        ">= %.0f users (USERS=%.0f tools/load/run_serve_bench.sh OUTDIR), or plan "
                        "from bench's figures (--results)",
                        w->users, w->key, q->users, m->rho, NU_PLAN_SERVED_MAX_SCALE,
                        ceil(q->users / NU_PLAN_SERVED_MAX_SCALE), q->users);
    m->cores = w->threads * w->workers;
    if (w->machine_cores > 0 && w->machine_cores < m->cores)
        m->cores = w->machine_cores;

    /* The run: the highest rate answered whose p99, scaled by sigma, is
     * within the bound, with no errors and >= 0.9 of its arrivals answered
     * (open_loop.py's own pass test, at the asked bound). */
    const cJSON *runs = item(f->sweeps[m->chosen], "runs"), *r;
    long best = -1, lowest = -1, idx = -1;
    double best_ach = 0, lowest_p99 = 0;
    cJSON_ArrayForEach(r, runs) {
        idx++;
        const cJSON *lat = item(r, "latency_ms");
        double ach = num(r, "achieved_per_s", -1), arrivals = num(r, "offered_actual_per_s", -1);
        double p99 = num(lat, "p99", -1);
        if (num(r, "errors", 1) != 0 || ach <= 0 || arrivals <= 0 || ach < 0.9 * arrivals ||
            p99 <= 0)
            continue;
        if (lowest < 0 || p99 < lowest_p99)
            lowest = idx, lowest_p99 = p99;
        if (m->sigma * p99 > q->p99_ms || ach <= best_ach)
            continue;
        best = idx;
        best_ach = ach;
    }
    if (best < 0 && lowest < 0)
        return nu_error(NU_ERR_INVALID_ARG,
                        "%s: no run of the sweep passed (each had errors or answered under 0.9 "
                        "of its arrivals): rerun it from a lower --start (written by: %s)",
                        w->key, WRITTEN_BY);
    if (best < 0 && m->sigma == 1.0)
        return nu_error(NU_ERR_INVALID_ARG,
                        "the p99 bound of %g ms is tighter than any the sweep (%s) measured (its "
                        "lowest p99 %g ms, at %g requests/s; it searched for p99 <= %g ms): rerun "
                        "the sweep with --p99-ms %g (tools/load/open_loop.py --url URL --items I "
                        "--sweep --p99-ms %g --service S.json --json FILE)",
                        q->p99_ms, w->key,
                        lowest_p99, num(cJSON_GetArrayItem(runs, (int)lowest), "offered_per_s", 0),
                        w->bound_ms, q->p99_ms, q->p99_ms);
    if (best < 0)
        return nu_error(NU_ERR_INVALID_ARG,
                        "at %.0f users, %.3gx the %.0f of %s, every run's p99 scaled by %.3g (A12) "
                        "exceeds %g ms (the lowest: %g ms x %.3g = %g ms): measure at %.0f users "
                        "(USERS=%.0f tools/load/run_serve_bench.sh OUTDIR)",
                        q->users, m->rho, w->users, w->key, m->sigma, q->p99_ms, lowest_p99,
                        m->sigma, lowest_p99 * m->sigma, q->users, q->users);
    r = cJSON_GetArrayItem(runs, (int)best);
    m->run = (size_t)best;
    m->offered = num(r, "offered_per_s", 0);
    m->offered_actual = num(r, "offered_actual_per_s", 0);
    m->achieved = num(r, "achieved_per_s", 0);
    m->p50_ms = num(item(r, "latency_ms"), "p50", 0);
    m->p99_ms = num(item(r, "latency_ms"), "p99", 0);
    m->p999_ms = num(item(r, "latency_ms"), "p999", 0);
    m->run_is_sweeps_max = w->max_rate > 0 && m->offered == w->max_rate;
    read_context(f, users_label(w->key), m);
    return NU_OK;
}

nu_status nu_plan_served_compute(const nu_plan_request *q, const nu_plan_served_measured *m,
                                 nu_plan_served *p)
{
    memset(p, 0, sizeof *p);
    const nu_plan_served_sweep *w = &m->all[m->chosen];
    const double X = q->items_per_sec;
    /* A12: at sigma x the users every item's work is sigma x longer, so the
     * same queue runs sigma x slower: 1/sigma the rate at sigma x the latency. */
    p->process_ips = m->achieved * w->items_per_request / m->sigma;
    p->per_core_ips = p->process_ips / m->cores;
    p->p99_ms = m->p99_ms * m->sigma;
    p->processes_busy = X / p->process_ips;
    p->processes = (size_t)ceil(X / ((1.0 - q->headroom) * p->process_ips) - 1e-9);
    if (p->processes < 1)
        p->processes = 1;
    p->cores = p->processes * (size_t)m->cores;
    p->per_server = (size_t)(q->cores_per_server / m->cores);
    if (p->per_server == 0)
        return nu_error(NU_ERR_INVALID_ARG,
                        "one nextuser serve process was measured on %d cores, more than a server "
                        "of %d: measure it with --threads x --workers <= %d",
                        m->cores, q->cores_per_server, q->cores_per_server);
    p->servers = (p->processes + p->per_server - 1) / p->per_server;
    p->utilisation = X / ((double)p->processes * p->process_ips);
    if (w->d > 0 && w->model_bytes_per_user > 0) {
        /* --table copy: a private copy of the table; the model (per-user rows
         * and weights) is loaded into each process's memory too. */
        p->table_bytes = q->users * nu_plan_row_bytes(q->dtype, w->d);
        p->model_bytes = q->users * w->model_bytes_per_user + w->weights_bytes;
        p->process_bytes = p->table_bytes + p->model_bytes;
        size_t on_one = p->processes < p->per_server ? p->processes : p->per_server;
        /* --table map scans the file's mapping: one page-cache copy per server. */
        int shared = w->table && strcmp(w->table, "map") == 0;
        p->server_bytes = (double)on_one * p->model_bytes + (shared ? 1.0 : (double)on_one) *
                                                                p->table_bytes;
    }
    return NU_OK;
}
