/* nu_plan_compute: the arithmetic of the capacity plan (docs/plan.md). */
#include <math.h>
#include <string.h>

#include "error.h"
#include "plan/plan.h"

/* Bytes one user row takes in memory: the scanned encoding plus, for bf16
 * and int8, the fp32 row the exact re-rank reads (int8 also keeps a scale
 * and a sum per row). */
double nu_plan_row_bytes(const char *dtype, double d)
{
    if (strcmp(dtype, "bf16") == 0)
        return 2 * d + 4 * d;
    if (strcmp(dtype, "int8") == 0)
        return d + 8 + 4 * d;
    return 4 * d;
}

nu_status nu_plan_compute(const nu_plan_request *q, const nu_plan_measured *m, nu_plan *p)
{
    memset(p, 0, sizeof *p);
    double d = nu_plan_row_width(q);
    if (d == 0)
        return nu_error(NU_ERR_INVALID_ARG, "unknown shape \"%s\" (base or large)", q->shape);
    const double C = q->cores_per_server, B = (double)m->batch, X = q->items_per_sec;

    /* Per item on one core. */
    /* The bench scores d-64 tables, cost grows with d; a user model's run
     * scored its own table. */
    p->dim_scale = q->model_d > 0 ? 1.0 : d / 64.0;
    p->gen_s = 1.0 / m->infer_ips;
    p->score_s_per_user = p->dim_scale / (m->retrieve_qps * m->retrieve_users);
    p->predicted_measured = p->gen_s + p->score_s_per_user * m->serve_users;
    p->offline_item_s = 1.0 / m->offline_ips1;
    p->overhead = fmax(1.0, p->offline_item_s / p->predicted_measured);
    p->item_s = p->overhead * (p->gen_s + p->score_s_per_user * q->users);
    p->scaling = m->threads_T > 1
                     ? fmin(1.0, m->offline_ipsT / (m->threads_T * m->offline_ips1))
                     : 1.0;
    /* Latency: an item waits at most the wait limit for its batch, then at
     * worst for the batch in service ahead of it and its own:
     * wait + 2 x batch time <= bound. */
    p->budget_ms = (q->p99_ms - m->wait_ms) / 2.0;
    if (p->budget_ms <= 0)
        return nu_error(NU_ERR_INVALID_ARG,
                        "the measured wait limit (%.3g ms) leaves nothing of the %.3g ms bound",
                        m->wait_ms, q->p99_ms);

    /* The share of offline throughput the server scenario kept under the
     * bound says how much batching and queueing cost -- but only where its
     * batches took about as long as the plan's will (within the budget).
     * Where one batch already took longer on the measured core, the share is
     * an artefact of the small run: the plan shards the table to keep each
     * batch within budget, and the headroom absorbs the queueing (r = 1). */
    p->latency_share_measured = fmin(1.0, m->max_rate / m->offline_ips1);
    p->measured_batch_ms = B / m->offline_ips1 * 1e3;
    p->latency_share_applies = p->measured_batch_ms <= p->budget_ms;
    p->latency_share = p->latency_share_applies ? p->latency_share_measured : 1.0;
    p->per_core_ips = p->scaling * p->latency_share / p->item_s;
    double per_batch = B * p->overhead / (C * p->scaling) * 1e3; /* ms per second of work */
    p->batch_gen_ms = per_batch * p->gen_s;
    p->batch_score1_ms = per_batch * p->score_s_per_user * q->users;
    if (p->batch_gen_ms >= p->budget_ms)
        return nu_error(NU_ERR_INVALID_ARG,
                        "a batch of %zu items needs %.3g ms of generator time on %d cores, more "
                        "than the %.3g ms budget: no number of shards meets p99 <= %.3g ms",
                        m->batch, p->batch_gen_ms, q->cores_per_server, p->budget_ms, q->p99_ms);
    p->shards_min = (size_t)ceil(p->batch_score1_ms / (p->budget_ms - p->batch_gen_ms) - 1e-9);
    if (p->shards_min < 1)
        p->shards_min = 1;

    /* Throughput, with headroom: run at most (1 - h) of capacity. */
    p->cores_busy = X / p->per_core_ips;
    p->cores_provisioned = (size_t)ceil(X / ((1.0 - q->headroom) * p->per_core_ips) - 1e-9);
    p->servers_for_throughput = (p->cores_provisioned + (size_t)C - 1) / (size_t)C;
    /* Whole replicas of at least k shards: as many replicas of k as fit in
     * the servers throughput needs, the spare servers spread as extra shards
     * (more shards only shorten a batch). */
    p->replicas = p->servers_for_throughput / p->shards_min;
    if (p->replicas < 1)
        p->replicas = 1;
    p->shards = (p->servers_for_throughput + p->replicas - 1) / p->replicas;
    if (p->shards < p->shards_min)
        p->shards = p->shards_min;
    p->servers = p->replicas * p->shards;
    p->batch_ms = p->batch_gen_ms + p->batch_score1_ms / (double)p->shards;
    p->utilisation = X / ((double)p->servers * C * p->per_core_ips);

    /* Memory per NUMA node. */
    double weights, user_emb, scratch;
    nu_status s = nu_plan_model_bytes(q, m->batch, &weights, &user_emb, &scratch);
    if (s != NU_OK)
        return s;
    const double N = q->nodes_per_server;
    p->rows_per_server = ceil(q->users / (double)p->shards);
    p->table_row_bytes = nu_plan_row_bytes(q->dtype, d);
    p->table_node_bytes = p->rows_per_server * p->table_row_bytes / N;
    p->user_emb_node_bytes = user_emb / N;
    p->weights_node_bytes = weights;
    p->scratch_thread_bytes = scratch;
    p->threads_per_node = C / N;
    p->total_node_bytes = p->table_node_bytes + p->user_emb_node_bytes + p->weights_node_bytes +
                          p->threads_per_node * p->scratch_thread_bytes;
    return NU_OK;
}
