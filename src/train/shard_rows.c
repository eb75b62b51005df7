/* The row traffic of a sharded step (shard.h): the rows each process's
 * chunks read, fetched from their owners into the step's compact model, and
 * their gradients sent back to the owners, which sum them in rank order. */
#include "shard_rows.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "shard_comm.h"
#include "train/loss.h"

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static size_t sort_unique(uint32_t *x, size_t n)
{
    if (n == 0)
        return 0;
    qsort(x, n, sizeof *x, cmp_u32);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (x[i] != x[k - 1])
            x[k++] = x[i];
    return k;
}

/* First index of list[0 .. n) (sorted) not below x. */
static size_t lower_bound(const uint32_t *list, size_t n, uint32_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (list[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static nu_status grow_u32(uint32_t **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return NU_OK;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    uint32_t *q = realloc(*p, n * sizeof *q);
    if (!q)
        return nu_error(NU_ERR_NOMEM, "out of memory for a sharded step's rows");
    *p = q;
    *cap = n;
    return NU_OK;
}

static nu_status need_add(nu_shard *sh, size_t i, const uint32_t *rows, size_t n)
{
    nu_status s = grow_u32(&sh->need[i], &sh->need_cap[i], sh->n_need[i] + n + 1);
    if (s != NU_OK)
        return s;
    uint32_t *dst = sh->need[i] + sh->n_need[i];
    size_t k = 0;
    for (size_t j = 0; j < n; j++)
        if (rows[j] != NU_LOSS_NO_TARGET)
            dst[k++] = rows[j];
    sh->n_need[i] += k;
    return NU_OK;
}

static size_t spec_of_field(const nu_shard *sh, int field)
{
    for (size_t i = 0; i < sh->nspec; i++)
        if (sh->field[i] == field)
            return i;
    return SIZE_MAX;
}

nu_status nu_shard_collect(run *r)
{
    nu_shard *sh = r->shard;
    size_t iu = spec_of_field(sh, -1), nf = r->m->cfg.n_prefix;
    nu_status s = NU_OK;
    for (size_t i = 0; i < sh->nspec; i++)
        sh->n_need[i] = 0;
    for (int t = 0; s == NU_OK && t < r->T; t++) {
        worker *w = &r->w[t];
        const nu_train_batch *b = &w->batch;
        if (b->count == 0)
            continue;
        s = need_add(sh, iu, b->items.users, b->items.user_off[b->items.count]);
        if (s == NU_OK)
            s = need_add(sh, iu, w->target, b->n_pos);
        if (s == NU_OK)
            s = need_add(sh, iu, b->neg, b->neg_off[b->n_pos]);
        for (size_t f = 0; s == NU_OK && f < nf; f++) {
            size_t i = spec_of_field(sh, (int)f);
            /* An item without a value reads row 0 (<unk>) implicitly: it is
             * always fetched, and stays row 0 of the compact table. */
            const uint32_t unk = 0;
            if (i != SIZE_MAX)
                s = need_add(sh, i, &unk, 1);
            for (size_t it = 0; s == NU_OK && i != SIZE_MAX && it < b->count; it++) {
                size_t a = b->items.feat_off[it * nf + f], z = b->items.feat_off[it * nf + f + 1];
                s = need_add(sh, i, b->items.feat_vals + a, z - a);
            }
        }
    }
    if (s == NU_OK)
        s = need_add(sh, iu, r->shared, r->o->negatives);
    for (size_t i = 0; s == NU_OK && i < sh->nspec; i++)
        sh->n_need[i] = sort_unique(sh->need[i], sh->n_need[i]);
    return s;
}

static void remap(uint32_t *x, size_t n, const uint32_t *list, size_t nl)
{
    for (size_t k = 0; k < n; k++)
        if (x[k] != NU_LOSS_NO_TARGET)
            x[k] = (uint32_t)lower_bound(list, nl, x[k]);
}

nu_status nu_shard_remap(run *r)
{
    nu_shard *sh = r->shard;
    size_t iu = spec_of_field(sh, -1), nf = r->m->cfg.n_prefix, M = r->o->negatives;
    const uint32_t *U = sh->need[iu];
    size_t nu = sh->n_need[iu];
    uint32_t *sc = realloc(sh->shared_compact, (M + 1) * sizeof *sc);
    if (!sc)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    sh->shared_compact = sc;
    memcpy(sc, r->shared, M * sizeof *sc);
    remap(sc, M, U, nu);
    for (int t = 0; t < r->T; t++) {
        worker *w = &r->w[t];
        nu_train_batch *b = &w->batch;
        if (b->count == 0)
            continue;
        remap(b->items.users, b->items.user_off[b->items.count], U, nu);
        remap(w->target, b->n_pos, U, nu);
        remap(b->neg, b->neg_off[b->n_pos], U, nu);
        for (size_t f = 0; f < nf; f++) {
            size_t i = spec_of_field(sh, (int)f);
            for (size_t it = 0; i != SIZE_MAX && it < b->count; it++) {
                size_t a = b->items.feat_off[it * nf + f], z = b->items.feat_off[it * nf + f + 1];
                remap(b->items.feat_vals + a, z - a, sh->need[i], sh->n_need[i]);
            }
        }
    }
    return NU_OK;
}

/* Per spec i and process q: where q's rows start in a sorted list of global
 * rows (list positions; pos[i * (R + 1) + R] is the list's length). */
static void split_by_owner(const nu_shard *sh, size_t i, const uint32_t *list, size_t n,
                           size_t *pos)
{
    size_t R = (size_t)sh->R;
    for (size_t q = 0; q <= R; q++)
        pos[i * (R + 1) + q] =
            q == R ? n : lower_bound(list, n, (uint32_t)sh->first[i * (R + 1) + q]);
}

/* Message sizes of an exchange where process p sends cnt[p][q][i] records
 * of spec i to q, each `head` bytes plus `per_float` floats per row of the
 * spec: this process's send and receive sizes and offsets. */
typedef struct plan {
    size_t *sb, *so, *rb, *ro; /* 4 x R */
    uint64_t *all;             /* R x R x E counts */
    size_t send_total, recv_total;
} plan;

static void plan_free(plan *p)
{
    free(p->sb);
    free(p->all);
}

static nu_status plan_make(nu_shard *sh, const uint64_t *mine, size_t head, int with_rows,
                           plan *p)
{
    size_t R = (size_t)sh->R, E = sh->nspec;
    memset(p, 0, sizeof *p);
    p->sb = calloc(4 * R, sizeof *p->sb);
    p->all = calloc(R * R * E, sizeof *p->all);
    if (!p->sb || !p->all) {
        plan_free(p);
        return nu_error(NU_ERR_NOMEM, "out of memory");
    }
    p->so = p->sb + R;
    p->rb = p->sb + 2 * R;
    p->ro = p->sb + 3 * R;
    nu_status s = nu_shard_allgather(sh, mine, p->all, R * E * sizeof *mine, &sh->last.small_bytes);
    if (s != NU_OK) {
        plan_free(p);
        return s;
    }
    size_t me = (size_t)sh->rank;
    for (size_t q = 0; q < R; q++)
        for (size_t i = 0; i < E; i++) {
            size_t rowb = head + (with_rows && sh->field[i] != -2
                                      ? sh->own.layout.specs[i].shape[1] * sizeof(float)
                                      : 0);
            p->sb[q] += (size_t)p->all[(me * R + q) * E + i] * rowb;
            p->rb[q] += (size_t)p->all[(q * R + me) * E + i] * rowb;
        }
    for (size_t q = 0; q < R; q++) {
        p->so[q] = p->send_total;
        p->ro[q] = p->recv_total;
        p->send_total += p->sb[q];
        p->recv_total += p->rb[q];
    }
    return NU_OK;
}

/* plan_make, then the send and receive buffers grown to its sizes; every
 * process agrees before the exchange. */
static nu_status plan_buffers(nu_shard *sh, const uint64_t *mine, size_t head, int with_rows,
                              plan *p)
{
    nu_status s = plan_make(sh, mine, head, with_rows, p);
    if (s == NU_OK && (s = nu_shard_grow(&sh->sbuf, &sh->sbuf_cap, p->send_total + 1)) == NU_OK)
        s = nu_shard_grow(&sh->rbuf, &sh->rbuf_cap, p->recv_total + 1);
    return nu_shard_agree(sh, s);
}

/* Per spec and process: list positions (E x (R + 1)) and this process's
 * counts for each process (R x E), zeroed. */
static nu_status split_alloc(const nu_shard *sh, size_t **pos, uint64_t **mine)
{
    size_t R = (size_t)sh->R, E = sh->nspec;
    *pos = calloc(E * (R + 1), sizeof **pos);
    *mine = calloc(R * E, sizeof **mine);
    if (*pos && *mine)
        return NU_OK;
    free(*pos);
    free(*mine);
    return NU_ERR_NOMEM;
}

nu_status nu_shard_fetch(run *r, const size_t *step_offset)
{
    nu_shard *sh = r->shard;
    size_t R = (size_t)sh->R, E = sh->nspec, me = (size_t)sh->rank;
    size_t *pos;
    uint64_t *mine;
    if (split_alloc(sh, &pos, &mine) != NU_OK)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < E; i++)
        if (sh->field[i] != -2) {
            split_by_owner(sh, i, sh->need[i], sh->n_need[i], pos);
            for (size_t q = 0; q < R; q++)
                mine[q * E + i] = pos[i * (R + 1) + q + 1] - pos[i * (R + 1) + q];
        }
    /* The requests: global row ids, grouped by owner, in spec order. */
    plan ids;
    nu_status s = plan_buffers(sh, mine, sizeof(uint32_t), 0, &ids);
    if (s == NU_OK) {
        char *out = sh->sbuf;
        for (size_t q = 0; q < R; q++)
            for (size_t i = 0; i < E; i++)
                if (sh->field[i] != -2) {
                    size_t a = pos[i * (R + 1) + q], n = pos[i * (R + 1) + q + 1] - a;
                    memcpy(out, sh->need[i] + a, n * sizeof(uint32_t));
                    out += n * sizeof(uint32_t);
                }
        s = nu_shard_alltoallv(sh, sh->sbuf, ids.sb, ids.so, sh->rbuf, ids.rb, ids.ro,
                               &sh->last.fetch_bytes);
    }
    /* The answers: each requested row, in the order asked; what q sends p
     * is what p asked of q. */
    char *reply = NULL, *got = NULL;
    plan rows;
    memset(&rows, 0, sizeof rows);
    if (s == NU_OK) {
        uint64_t *asked = calloc(R * E, sizeof *asked);
        if (!asked)
            s = nu_error(NU_ERR_NOMEM, "out of memory");
        for (size_t p = 0; asked && p < R; p++)
            for (size_t i = 0; i < E; i++)
                asked[p * E + i] = ids.all[(p * R + me) * E + i];
        if (s == NU_OK)
            s = plan_make(sh, asked, 0, 1, &rows);
        free(asked);
        reply = s == NU_OK ? malloc(rows.send_total + 1) : NULL;
        got = s == NU_OK ? malloc(rows.recv_total + 1) : NULL;
        if (s == NU_OK && (!reply || !got))
            s = nu_error(NU_ERR_NOMEM, "out of memory for the fetched rows");
        s = nu_shard_agree(sh, s);
    }
    if (s == NU_OK) {
        const uint32_t *in = (const uint32_t *)(void *)sh->rbuf;
        char *out = reply;
        for (size_t p = 0; p < R; p++)
            for (size_t i = 0; i < E; i++) {
                if (sh->field[i] == -2)
                    continue;
                const nu_param_spec *ps = &sh->own.layout.specs[i];
                size_t w = ps->shape[1], lo = sh->first[i * (R + 1) + me];
                size_t n = (size_t)ids.all[(p * R + me) * E + i];
                for (size_t k = 0; k < n; k++, in++) {
                    memcpy(out, sh->own.params + ps->offset + ((size_t)*in - lo) * w, w * sizeof(float));
                    out += w * sizeof(float);
                }
            }
        s = nu_shard_alltoallv(sh, reply, rows.sb, rows.so, got, rows.rb, rows.ro,
                               &sh->last.fetch_bytes);
    }
    if (s == NU_OK) {
        /* Owner q's answers for spec i are rows pos[i][q] .. of the step's table. */
        const char *in = got;
        for (size_t q = 0; q < R; q++)
            for (size_t i = 0; i < E; i++) {
                if (sh->field[i] == -2)
                    continue;
                size_t w = sh->step.layout.specs[i].shape[1];
                size_t a = pos[i * (R + 1) + q], n = pos[i * (R + 1) + q + 1] - a;
                memcpy(sh->step.params + step_offset[i] + a * w, in, n * w * sizeof(float));
                in += n * w * sizeof(float);
            }
    }
    plan_free(&rows);
    plan_free(&ids);
    free(reply);
    free(got);
    free(pos);
    free(mine);
    return s;
}

nu_status nu_shard_push(run *r, const float *grad, const size_t *step_offset)
{
    nu_shard *sh = r->shard;
    size_t R = (size_t)sh->R, E = sh->nspec, me = (size_t)sh->rank;
    size_t *pos;
    uint64_t *mine;
    if (split_alloc(sh, &pos, &mine) != NU_OK)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    /* r->rows[i] are compact rows (sorted), need[i] maps them to global
     * ones (sorted too): owner q's part starts where its first compact row
     * does. */
    for (size_t i = 0; i < E; i++) {
        if (sh->field[i] == -2)
            continue;
        size_t R1 = R + 1;
        split_by_owner(sh, i, sh->need[i], sh->n_need[i], pos);
        for (size_t q = 0; q <= R; q++)
            pos[i * R1 + q] = lower_bound(r->rows[i].rows, r->rows[i].count, (uint32_t)pos[i * R1 + q]);
        pos[i * R1 + R] = r->rows[i].count;
        for (size_t q = 0; q < R; q++)
            mine[q * E + i] = pos[i * R1 + q + 1] - pos[i * R1 + q];
    }
    plan pl;
    nu_status s = plan_buffers(sh, mine, sizeof(uint32_t), 1, &pl);
    if (s == NU_OK) {
        /* To each owner, per spec: the global ids, then their gradients. */
        char *out = sh->sbuf;
        for (size_t q = 0; q < R; q++)
            for (size_t i = 0; i < E; i++) {
                if (sh->field[i] == -2)
                    continue;
                size_t w = sh->step.layout.specs[i].shape[1];
                size_t a = pos[i * (R + 1) + q], n = pos[i * (R + 1) + q + 1] - a;
                for (size_t k = 0; k < n; k++) {
                    uint32_t g = sh->need[i][r->rows[i].rows[a + k]];
                    memcpy(out, &g, sizeof g);
                    out += sizeof g;
                }
                for (size_t k = 0; k < n; k++) {
                    memcpy(out, grad + step_offset[i] + (size_t)r->rows[i].rows[a + k] * w,
                           w * sizeof(float));
                    out += w * sizeof(float);
                }
            }
        s = nu_shard_alltoallv(sh, sh->sbuf, pl.sb, pl.so, sh->rbuf, pl.rb, pl.ro,
                               &sh->last.push_bytes);
    }
    for (size_t i = 0; s == NU_OK && i < E; i++) {
        sh->own_rows[i].count = 0;
        if (sh->field[i] != -2) {
            size_t total = 0;
            for (size_t p = 0; p < R; p++)
                total += (size_t)pl.all[(p * R + me) * E + i];
            s = grow_u32(&sh->own_buf[i], &sh->own_cap[i], total + 1);
        }
    }
    if (s == NU_OK) {
        /* Summed in sender order: 0 + g0 + g1 + ..., as one process sums its
         * threads' gradients. */
        const char *in = sh->rbuf;
        for (size_t p = 0; p < R; p++)
            for (size_t i = 0; i < E; i++) {
                if (sh->field[i] == -2)
                    continue;
                const nu_param_spec *ps = &sh->own.layout.specs[i];
                size_t w = ps->shape[1], lo = sh->first[i * (R + 1) + me];
                size_t n = (size_t)pl.all[(p * R + me) * E + i];
                const char *g = in + n * sizeof(uint32_t);
                for (size_t k = 0; k < n; k++) {
                    uint32_t id;
                    memcpy(&id, in + k * sizeof id, sizeof id);
                    float *dst = sh->grad + ps->offset + ((size_t)id - lo) * w;
                    const float *src = (const float *)(const void *)(g + k * w * sizeof(float));
                    for (size_t j = 0; j < w; j++)
                        dst[j] += src[j];
                    sh->own_buf[i][sh->own_rows[i].count++] = (uint32_t)((size_t)id - lo);
                }
                in = g + n * w * sizeof(float);
            }
        for (size_t i = 0; i < E; i++) {
            sh->own_rows[i].count = sort_unique(sh->own_buf[i], sh->own_rows[i].count);
            sh->own_rows[i].rows = sh->own_buf[i];
        }
    }
    plan_free(&pl);
    free(pos);
    free(mine);
    return s;
}
