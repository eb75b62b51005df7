#include "mpi_search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "mpi_shard.h"
#include "plan/plan_bytes.h"
#include "retrieval/search_merge.h"
#include "util/clock.h"

/* A rank's message opens with its status and, on failure, the message. */
#define HEAD_BYTES NU_MPI_STATUS_BYTES

/* Arrays per candidate: id, scanned score, and for bf16/int8 the exact one. */
static size_t arrays(const nu_mpi_search *s)
{
    return nu_plan_candidate_arrays(s->dtype == NU_TABLE_F32);
}

static size_t msg_bytes(const nu_mpi_search *s, size_t n)
{
    return (size_t)nu_plan_gather_bytes((double)n, (double)s->pool, (double)arrays(s));
}

nu_status nu_mpi_search_init(nu_mpi_search *s, MPI_Comm comm, const char *cmd,
                             const nu_user_table *t, const nu_search_opts *o, size_t max_b)
{
    memset(s, 0, sizeof *s);
    s->comm = comm;
    s->cmd = cmd;
    MPI_Comm_rank(comm, &s->rank);
    MPI_Comm_size(comm, &s->size);
    s->dtype = o->dtype;
    s->k = o->k;
    s->qd = t->query_d;
    s->max_b = max_b;
    nu_status st = nu_search_plan_make(t, o->threads, o->pin, &s->plan);
    if (st == NU_OK)
        st = nu_search_scratch_make(&s->plan, o, max_b, &s->scratch);
    if (st != NU_OK)
        return st;
    s->pool = s->scratch.pool;
    size_t mb = msg_bytes(s, max_b);
    s->q = malloc(max_b * s->qd * sizeof *s->q + 4);
    s->lists = calloc(max_b, sizeof *s->lists);
    s->send = malloc(mb);
    s->unsent = malloc(max_b * s->pool * sizeof *s->unsent + 4);
    if (s->rank == 0) {
        s->recv = malloc(mb * (size_t)s->size);
        s->merge_scratch = malloc(nu_search_merge_scratch_bytes((size_t)s->size, s->pool));
    }
    if (!s->q || !s->lists || !s->send || !s->unsent || (s->rank == 0 && (!s->recv || !s->merge_scratch)))
        return nu_error(NU_ERR_NOMEM, "out of memory for batches of %zu queries", max_b);
    return NU_OK;
}

void nu_mpi_search_free(nu_mpi_search *s)
{
    nu_search_scratch_free(&s->scratch);
    nu_search_plan_free(&s->plan);
    free(s->q);
    free(s->ex);
    free(s->lists);
    free(s->send);
    free(s->unsent);
    free(s->recv);
    free(s->merge_scratch);
    memset(s, 0, sizeof *s);
}

static int ensure_ex(nu_mpi_search *s, size_t n)
{
    if (n <= s->ex_cap)
        return 1;
    uint32_t *e = realloc(s->ex, n * sizeof *e);
    if (!e)
        return 0;
    s->ex = e;
    s->ex_cap = n;
    return 1;
}

/* Every rank, after the header: the batch's queries and exclusions, this
 * rank's scan, the gather.  Fills s->q and s->ex on ranks > 0. */
static void step(nu_mpi_search *s, size_t n, size_t n_ex)
{
    double t0 = nu_now_seconds();
    MPI_Bcast(s->q, (int)(n * s->qd), MPI_FLOAT, 0, s->comm);
    int excl = n_ex > 0;
    if (excl)
        MPI_Bcast(s->ex, (int)(n + n_ex), MPI_UINT32_T, 0, s->comm);
    double t1 = nu_now_seconds();
    if (excl) {
        const uint32_t *ids = s->ex + n;
        for (size_t i = 0; i < n; i++) {
            s->lists[i].ids = ids;
            s->lists[i].count = s->ex[i];
            ids += s->ex[i];
        }
    }
    uint32_t *ids = (uint32_t *)(void *)(s->send + HEAD_BYTES);
    float *approx = (float *)(void *)(ids + n * s->pool);
    /* fp32 sends no exact scores: its pool lists are exact already. */
    float *exact = s->dtype == NU_TABLE_F32 ? s->unsent : approx + n * s->pool;
    int32_t status = 0;
    memset(s->send, 0, HEAD_BYTES);
    nu_status st = nu_search_run_pool(&s->plan, &s->scratch, s->q, n, s->qd,
                                      excl ? s->lists : NULL, ids, approx, exact);
    if (st != NU_OK) {
        status = (int32_t)st;
        snprintf((char *)s->send + 4, HEAD_BYTES - 4, "%s", nu_last_error());
    }
    memcpy(s->send, &status, 4);
    double t2 = nu_now_seconds();
    size_t mb = msg_bytes(s, n);
    MPI_Gather(s->send, (int)mb, MPI_BYTE, s->recv, (int)mb, MPI_BYTE, 0, s->comm);
    double t3 = nu_now_seconds();
    s->st.comm += (t1 - t0) + (t3 - t2);
    s->st.scan += t2 - t1;
    s->st.batches++;
    s->st.bcast_bytes +=
        (uint64_t)nu_plan_bcast_bytes((double)n, (double)s->qd, excl != 0, (double)n_ex);
    s->st.gather_bytes += mb;
}

int nu_mpi_search_batch(nu_mpi_search *s, const float *q, size_t n, const nu_id_list *exclude,
                        uint32_t *ids, float *scores)
{
    size_t n_ex = 0;
    for (size_t i = 0; exclude && i < n; i++)
        n_ex += exclude[i].count;
    /* An item without history still sends its count: n_ex 0 means no lists. */
    if (exclude && n_ex == 0)
        exclude = NULL;
    if (!ensure_ex(s, n + n_ex)) {
        fprintf(stderr, "nextuser %s: out of memory\n", s->cmd);
        return 1;
    }
    int64_t hdr[NU_MPI_HDR_WORDS] = {NU_MPI_HDR_BATCH, (int64_t)n, (int64_t)n_ex, s->tag};
    nu_mpi_search_header(s->comm, hdr, &s->st.comm);
    for (size_t i = 0; i < n; i++)
        memcpy(s->q + i * s->qd, q + i * s->qd, s->qd * sizeof *q);
    if (exclude) {
        uint32_t *at = s->ex + n;
        for (size_t i = 0; i < n; i++) {
            s->ex[i] = (uint32_t)exclude[i].count;
            memcpy(at, exclude[i].ids, exclude[i].count * sizeof *at);
            at += exclude[i].count;
        }
    }
    step(s, n, n_ex);
    /* Every rank's status first: a failure anywhere ends the job. */
    size_t mb = msg_bytes(s, n);
    int rc = 0;
    const char *prev = NULL;
    for (int r = 0; r < s->size; r++) {
        const unsigned char *m = s->recv + (size_t)r * mb;
        int32_t code;
        memcpy(&code, m, 4);
        if (code) {
            nu_mpi_print_failure(s->cmd, r, (const char *)m + 4, prev);
            prev = (const char *)m + 4;
            rc = 1;
        }
    }
    if (rc)
        return rc;
    double t1 = nu_now_seconds();
    size_t P = s->pool, stride = mb / 4, R = (size_t)s->size;
    const uint32_t *all_ids = (const uint32_t *)(const void *)(s->recv + HEAD_BYTES);
    const float *all_ap = (const float *)(const void *)(all_ids + n * P);
    const float *all_ex = all_ap + n * P;
    for (size_t b = 0; b < n; b++)
        nu_search_merge(s->dtype, R, P, stride, all_ids + b * P, all_ap + b * P,
                        s->dtype == NU_TABLE_F32 ? NULL : all_ex + b * P, s->k, s->merge_scratch,
                        ids + b * s->k, scores + b * s->k);
    s->st.merge += nu_now_seconds() - t1;
    return 0;
}

void nu_mpi_search_header(MPI_Comm comm, int64_t hdr[NU_MPI_HDR_WORDS], double *comm_s)
{
    double t0 = nu_now_seconds();
    MPI_Bcast(hdr, NU_MPI_HDR_WORDS, MPI_INT64_T, 0, comm);
    *comm_s += nu_now_seconds() - t0;
}

void nu_mpi_search_stop(nu_mpi_search *s, int rc)
{
    int64_t hdr[NU_MPI_HDR_WORDS] = {NU_MPI_HDR_STOP, rc, 0, 0};
    MPI_Bcast(hdr, NU_MPI_HDR_WORDS, MPI_INT64_T, 0, s->comm);
}

void nu_mpi_search_follow(nu_mpi_search *s, const int64_t hdr[NU_MPI_HDR_WORDS])
{
    size_t n = (size_t)hdr[1], n_ex = (size_t)hdr[2];
    if (n > s->max_b || !ensure_ex(s, n + n_ex)) {
        /* Cannot happen with the same options on every rank; never hang. */
        fprintf(stderr, "nextuser %s: rank %d: a batch of %zu queries, %zu exclusions does "
                        "not fit\n", s->cmd, s->rank, n, n_ex);
        MPI_Abort(s->comm, 1);
    }
    step(s, n, n_ex);
}

int nu_mpi_search_serve(nu_mpi_search *s)
{
    for (;;) {
        int64_t hdr[NU_MPI_HDR_WORDS];
        nu_mpi_search_header(s->comm, hdr, &s->st.comm);
        if (hdr[0] == NU_MPI_HDR_STOP)
            return (int)hdr[1];
        nu_mpi_search_follow(s, hdr);
    }
}

void nu_mpi_report(MPI_Comm comm, const char *cmd, const nu_mpi_stats *st, size_t first,
                   size_t rows)
{
    enum { NV = 8 };
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    double mine[NV] = {st->scan, st->comm, st->merge, (double)st->bcast_bytes,
                       (double)st->gather_bytes, (double)st->batches, (double)first, (double)rows};
    double *all = rank == 0 ? malloc((size_t)size * sizeof mine) : NULL;
    if (rank == 0 && !all)
        MPI_Abort(comm, 1);
    MPI_Gather(mine, NV, MPI_DOUBLE, all, NV, MPI_DOUBLE, 0, comm);
    if (rank != 0)
        return;
    for (int r = 0; r < size; r++) {
        const double *v = all + NV * r;
        double nb = v[5] > 0 ? v[5] : 1;
        fprintf(stderr,
                "nextuser %s: rank %d of %d: rows [%.0f, %.0f), scan %.3f s, communication %.3f s "
                "(waits included)",
                cmd, r, size, v[6], v[6] + v[7], v[0], v[1]);
        if (r == 0)
            fprintf(stderr, ", merge %.3f s; per batch %.0f bytes broadcast to each rank\n", v[2],
                    v[3] / nb);
        else
            fprintf(stderr, "; per batch %.0f bytes gathered from it\n", v[4] / nb);
    }
    free(all);
}

void nu_mpi_search_report(nu_mpi_search *s)
{
    nu_mpi_report(s->comm, s->cmd, &s->st, s->plan.t->first_row, s->plan.t->rows);
}
