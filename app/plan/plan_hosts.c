/* nu_plan_hosts_compute: the plan over several servers (docs/plan.md,
 * "Over several servers: --hosts"), and the reading of measured sharded runs. */
#include "plan/plan_hosts.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "plan/plan_bytes.h"
#include "plan/plan_results.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

void nu_plan_hosts_comm(double H, double bcast_bytes, double gather_bytes, double gbps,
                        double latency_us, double *bcast_ms, double *gather_ms)
{
    double steps = H > 1 ? ceil(log2(H) - 1e-12) : 0;
    double lat_ms = latency_us * 1e-3, ms_per_byte = 8.0 / (gbps * 1e9) * 1e3;
    *bcast_ms = steps * (lat_ms + bcast_bytes * ms_per_byte);
    *gather_ms = steps * lat_ms + (H - 1) * gather_bytes * ms_per_byte;
}

nu_status nu_plan_hosts_compute(const nu_plan_request *q, const nu_plan_measured *m,
                                const nu_plan *p, const nu_plan_hosts_request *hq,
                                nu_plan_hosts *h)
{
    memset(h, 0, sizeof *h);
    const double d = nu_plan_row_width(q), C = q->cores_per_server;
    h->B = (double)m->batch;
    h->qd = nu_plan_query_width(q); /* bench shapes have no feature-prior columns: d */
    h->pool = (double)nu_plan_pool(q->dtype, q->k, 0);
    h->arrays = (double)nu_plan_candidate_arrays(strcmp(q->dtype, "fp32") == 0);
    h->bcast_bytes = nu_plan_bcast_bytes(h->B, h->qd, hq->history > 0, h->B * hq->history);
    h->gather_bytes = nu_plan_gather_bytes(h->B, h->pool, h->arrays);
    h->row_bytes = nu_plan_row_bytes(q->dtype, d);
    double weights, user_emb, scratch;
    nu_status s = nu_plan_model_bytes(q, m->batch, &weights, &user_emb, &scratch);
    if (s != NU_OK)
        return s;
    h->model_bytes = weights + user_emb;
    h->scratch_bytes = C * scratch;
    const double M = hq->memory_gib * GIB;
    if (h->model_bytes + h->scratch_bytes >= M)
        return nu_error(NU_ERR_INVALID_ARG,
                        "rank 0 holds the model (%.3f GiB: weights and every user's embedding for "
                        "the generator) and %.3f GiB of thread scratch: more than the %g GiB of "
                        "one server, at any number of hosts",
                        h->model_bytes / GIB, h->scratch_bytes / GIB, hq->memory_gib);
    /* Rank 0 is the fullest host: its rows, the model, the scratch. */
    h->h_mem = (size_t)ceil(q->users * h->row_bytes / (M - h->model_bytes - h->scratch_bytes) -
                            1e-9);
    if (h->h_mem < 1)
        h->h_mem = 1;
    h->n = hq->max_hosts;
    h->all = calloc(h->n, sizeof *h->all);
    if (!h->all)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    size_t best = (size_t)-1;
    for (size_t i = 0; i < h->n; i++) {
        nu_plan_hosts_eval *e = &h->all[i];
        double H = (double)(i + 1);
        e->H = i + 1;
        e->steps = H > 1 ? ceil(log2(H) - 1e-12) : 0;
        nu_plan_hosts_comm(H, h->bcast_bytes, h->gather_bytes, hq->gbps, hq->latency_us,
                           &e->bcast_ms, &e->gather_ms);
        e->comm_ms = e->bcast_ms + e->gather_ms;
        e->gen_ms = p->batch_gen_ms;
        e->scan_ms = p->batch_score1_ms / H;
        e->merge_ms = h->B * H * h->pool * hq->merge_ns * 1e-6;
        e->batch_ms = e->gen_ms + e->comm_ms + e->scan_ms + e->merge_ms;
        e->p99_ms = m->wait_ms + 2 * e->batch_ms;
        e->set_ips = h->B / e->batch_ms * 1e3;
        e->sets = (size_t)ceil(q->items_per_sec / ((1 - q->headroom) * e->set_ips) - 1e-9);
        if (e->sets < 1)
            e->sets = 1;
        e->servers = e->sets * e->H;
        e->rows = ceil(q->users / H);
        e->host_bytes = e->rows * h->row_bytes + h->scratch_bytes;
        e->host0_bytes = e->host_bytes + h->model_bytes;
        e->fits = e->host0_bytes <= M;
        e->meets = e->p99_ms <= q->p99_ms;
        if (e->meets && !h->h_lat)
            h->h_lat = e->H;
        if (e->fits && e->meets && (best == (size_t)-1 || e->servers < h->all[best].servers))
            best = i;
    }
    if (best == (size_t)-1) {
        /* The closest: the lowest p99 among the H that fit. */
        size_t lo = h->h_mem - 1 < h->n ? h->h_mem - 1 : h->n - 1;
        for (size_t i = lo; i < h->n; i++)
            if (h->all[i].p99_ms < h->all[lo].p99_ms)
                lo = i;
        const nu_plan_hosts_eval *e = &h->all[lo];
        nu_status st = nu_error(
            NU_ERR_INVALID_ARG,
            "no number of hosts up to %zu meets p99 <= %g ms%s: the best, %zu host(s), gives "
            "%.3f ms (wait %g + 2 x (generator %.3f + network %.3f + scan %.3f + merge %.3f ms)); "
            "the generator and the network do not shrink with more hosts, the merge grows",
            h->n, q->p99_ms, h->h_mem > h->n ? " within the memory" : "", e->H, e->p99_ms,
            m->wait_ms, e->gen_ms, e->comm_ms, e->scan_ms, e->merge_ms);
        nu_plan_hosts_free(h);
        return st;
    }
    h->chosen = best;
    return NU_OK;
}

void nu_plan_hosts_free(nu_plan_hosts *h)
{
    free(h->all);
    h->all = NULL;
}

static int num(const cJSON *o, const char *key, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return 0;
    *out = v->valuedouble;
    return 1;
}

static int str(const cJSON *o, const char *key, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v))
        return 0;
    snprintf(out, cap, "%s", v->valuestring);
    return 1;
}

/* Min and max of a list of numbers. */
static int range(const cJSON *o, const char *key, double *lo, double *hi)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key), *e;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1)
        return 0;
    *lo = INFINITY, *hi = -INFINITY;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsNumber(e))
            return 0;
        *lo = fmin(*lo, e->valuedouble), *hi = fmax(*hi, e->valuedouble);
    }
    return 1;
}

nu_status nu_plan_mpi_results_load(const char *path, nu_plan_mpi_results *r)
{
    memset(r, 0, sizeof *r);
    cJSON *root = NULL;
    nu_status s = nu_plan_read_json(path, &root);
    if (s != NU_OK)
        return s;
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(root, "runs"), *e;
    if (!cJSON_IsArray(runs) || cJSON_GetArraySize(runs) < 1) {
        cJSON_Delete(root);
        return nu_error(NU_ERR_FORMAT,
                        "%s: no \"runs\" list of sharded runs; it is written by "
                        "`tools/mpi-bench.sh BUILD WORK` (WORK/mpi_results.json) or "
                        "`tools/mpi_results.py`", path);
    }
    const cJSON *loop = cJSON_GetObjectItemCaseSensitive(root, "loopback");
    if (loop) {
        num(loop, "gbps", &r->loop_gbps);
        num(loop, "latency_us", &r->loop_latency_us);
        str(loop, "how", r->how, sizeof r->how);
    }
    r->runs = calloc((size_t)cJSON_GetArraySize(runs), sizeof *r->runs);
    if (!r->runs) {
        cJSON_Delete(root);
        return nu_error(NU_ERR_NOMEM, "out of memory");
    }
    int i = 0;
    cJSON_ArrayForEach(e, runs) {
        nu_plan_mpi_run *u = &r->runs[r->count];
        double ranks = 0, lo;
        if (!str(e, "command", u->command, sizeof u->command) ||
            !str(e, "dtype", u->dtype, sizeof u->dtype) || !num(e, "ranks", &ranks) ||
            !num(e, "batch", &u->batch) || !num(e, "k", &u->k) || !num(e, "pool", &u->pool) ||
            !num(e, "query_width", &u->qd) || !num(e, "queries", &u->queries) ||
            !num(e, "batches", &u->batches) ||
            !num(e, "bcast_bytes_per_batch", &u->bcast_bytes) ||
            !num(e, "gather_bytes_per_batch", &u->gather_bytes) ||
            !range(e, "comm_s", &u->comm_min_s, &u->comm_max_s) ||
            !range(e, "scan_s", &lo, &u->scan_max_s) || !num(e, "merge_s", &u->merge_s) ||
            ranks < 1 || u->batches < 1) {
            nu_plan_mpi_results_free(r);
            cJSON_Delete(root);
            return nu_error(NU_ERR_FORMAT,
                            "%s: run %d lacks command, dtype, ranks, batch, k, pool, query_width, "
                            "queries, batches, bcast_bytes_per_batch, gather_bytes_per_batch, "
                            "comm_s, scan_s or merge_s (tools/mpi_results.py writes them)",
                            path, i);
        }
        num(e, "history_rows", &u->history_rows);
        u->ranks = (int)ranks;
        r->count++, i++;
    }
    cJSON_Delete(root);
    return NU_OK;
}

void nu_plan_mpi_results_free(nu_plan_mpi_results *r)
{
    free(r->runs);
    r->runs = NULL;
    r->count = 0;
}
