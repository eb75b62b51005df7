/* The collectives of a sharded run: agreement on errors and stops, a
 * broadcast from process 0, and the byte and time accounting of each call. */
#include "shard_comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "util/clock.h"

nu_status nu_shard_grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return NU_OK;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    char *p = realloc(*buf, n);
    if (!p)
        return nu_error(NU_ERR_NOMEM, "out of memory for a sharded step's messages (%zu bytes)", n);
    *buf = p;
    *cap = n;
    return NU_OK;
}

nu_status nu_shard_allgather(nu_shard *sh, const void *send, void *recv, size_t bytes,
                             uint64_t *counter)
{
    double t0 = nu_now_seconds();
    int rc = sh->c->allgather(sh->c->ctx, send, recv, bytes);
    sh->last.comm_s += nu_now_seconds() - t0;
    if (counter)
        *counter += (uint64_t)bytes * (uint64_t)(sh->R - 1);
    return rc ? nu_error(NU_ERR_IO, "process %d: an all-gather of %zu bytes failed", sh->rank, bytes)
              : NU_OK;
}

nu_status nu_shard_alltoallv(nu_shard *sh, const void *send, const size_t *sb, const size_t *so,
                             void *recv, const size_t *rb, const size_t *ro, uint64_t *counter)
{
    double t0 = nu_now_seconds();
    int rc = sh->c->alltoallv(sh->c->ctx, send, sb, so, recv, rb, ro);
    sh->last.comm_s += nu_now_seconds() - t0;
    for (int q = 0; counter && q < sh->R; q++)
        if (q != sh->rank)
            *counter += sb[q];
    return rc ? nu_error(NU_ERR_IO, "process %d: an all-to-all exchange failed", sh->rank) : NU_OK;
}

/* What each process says at an agreement: its status and message. */
typedef struct agreement {
    int32_t status;
    char message[252];
} agreement;

/* Agreement with the bytes sent counted (counter may be NULL). */
static nu_status agree(const nu_collectives *c, nu_status s, uint64_t *counter)
{
    agreement mine = {(int32_t)s, {0}};
    if (s != NU_OK)
        snprintf(mine.message, sizeof mine.message, "%s", nu_last_error());
    agreement *all = calloc((size_t)c->ranks, sizeof *all);
    if (!all)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    nu_status g = c->allgather(c->ctx, &mine, all, sizeof mine)
                      ? nu_error(NU_ERR_IO, "process %d: an all-gather failed", c->rank)
                      : NU_OK;
    if (counter)
        *counter += sizeof mine * (uint64_t)(c->ranks - 1);
    for (int q = 0; g == NU_OK && q < c->ranks; q++)
        if (all[q].status != NU_OK) {
            /* The first failing process's error, named by its rank. */
            g = nu_error((nu_status)all[q].status, "rank %d: %.*s", q,
                         (int)sizeof all[q].message, all[q].message);
            break;
        }
    free(all);
    return g;
}

nu_status nu_collectives_agree(const nu_collectives *c, nu_status s)
{
    return agree(c, s, NULL);
}

nu_status nu_shard_agree(nu_shard *sh, nu_status s)
{
    double t0 = nu_now_seconds();
    nu_status g = agree(sh->c, s, &sh->last.small_bytes);
    sh->last.comm_s += nu_now_seconds() - t0;
    return g;
}

int nu_shard_any(nu_shard *sh, int flag)
{
    int32_t mine = flag != 0, *all = calloc((size_t)sh->R, sizeof *all);
    int any = flag != 0;
    /* A failed exchange counts as a stop: no process goes on alone. */
    if (!all || nu_shard_allgather(sh, &mine, all, sizeof mine, &sh->last.small_bytes) != NU_OK)
        any = 1;
    for (int q = 0; all && q < sh->R; q++)
        any |= all[q] != 0;
    free(all);
    return any;
}

nu_status nu_shard_bcast(nu_shard *sh, void *buf, size_t bytes)
{
    size_t R = (size_t)sh->R;
    size_t *v = calloc(4 * R, sizeof *v);
    if (!v)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    size_t *sb = v, *so = v + R, *rb = v + 2 * R, *ro = v + 3 * R;
    if (sh->rank == 0)
        for (size_t q = 1; q < R; q++)
            sb[q] = bytes;
    else
        rb[0] = bytes;
    /* Separate buffers: MPI forbids a send and a receive buffer that alias. */
    char *in = sh->rank == 0 ? NULL : malloc(bytes ? bytes : 1);
    if (sh->rank != 0 && !in) {
        free(v);
        return nu_error(NU_ERR_NOMEM, "out of memory");
    }
    char none = 0;
    nu_status s = nu_shard_alltoallv(sh, sh->rank == 0 ? buf : &none, sb, so, in ? in : &none, rb,
                                     ro, &sh->last.small_bytes);
    if (s == NU_OK && in)
        memcpy(buf, in, bytes);
    free(in);
    free(v);
    return s;
}
