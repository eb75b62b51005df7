/* mpirun -np R nextuser serve: rank 0 answers HTTP and runs the generator
 * (app/serve, unchanged but for its hooks); every rank scans its shard of
 * the user table for each batch (mpi_search.h, docs/mpi.md "Sharded
 * serving").  Each model version the service loads has its own shards on
 * every rank, opened when the version loads (before it validates) and
 * dropped when its last request is done, so a hot reload never mixes one
 * version's queries with another's table. */
#ifdef NU_HAVE_SERVE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "error.h"
#include "mpi_cmds.h"
#include "mpi_search.h"
#include "mpi_shard.h"
#include "mpi_table.h"
#include "serve/serve.h"

/* Rank 0's commands besides batches: open a version's shards, drop them. */
enum { HDR_LOAD = NU_MPI_HDR_USER, HDR_RELEASE };

/* One model version's shard of the table on this rank, and its scans. */
typedef struct shard_version {
    unsigned long gen;
    nu_user_table table;
    nu_mpi_search ms;
} shard_version;

typedef struct sharded {
    MPI_Comm comm;
    int rank, size;
    const nu_serve_config *c;
    pthread_mutex_t mu; /* rank 0: one exchange with the ranks at a time */
    nu_id_list *ex;     /* rank 0: max_batch */
    shard_version **v;
    size_t nv, cap;
    nu_mpi_stats done;  /* of the versions dropped, for the final report */
    size_t first, rows; /* this rank's rows of the last version */
} sharded;

static shard_version *find(sharded *x, unsigned long gen)
{
    for (size_t i = 0; i < x->nv; i++)
        if (x->v[i]->gen == gen)
            return x->v[i];
    return NULL;
}

static void drop(sharded *x, unsigned long gen)
{
    for (size_t i = 0; i < x->nv; i++)
        if (x->v[i]->gen == gen) {
            shard_version *v = x->v[i];
            x->done.scan += v->ms.st.scan;
            x->done.comm += v->ms.st.comm;
            x->done.merge += v->ms.st.merge;
            x->done.bcast_bytes += v->ms.st.bcast_bytes;
            x->done.gather_bytes += v->ms.st.gather_bytes;
            x->done.batches += v->ms.st.batches;
            nu_mpi_search_free(&v->ms);
            nu_user_table_free(&v->table);
            free(v);
            x->v[i] = x->v[--x->nv];
            return;
        }
}

/* This rank's rows of version gen's table (dir, users x qd), planned. */
static nu_status open_version(sharded *x, unsigned long gen, const char *dir, size_t users,
                              size_t qd)
{
    if (x->nv == x->cap) {
        size_t cap = x->cap ? 2 * x->cap : 4;
        shard_version **p = realloc(x->v, cap * sizeof *p);
        if (!p)
            return nu_error(NU_ERR_NOMEM, "out of memory");
        x->v = p;
        x->cap = cap;
    }
    shard_version *v = calloc(1, sizeof *v);
    if (!v)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    v->gen = gen;
    const nu_serve_config *c = x->c;
    nu_table_dtype dt = nu_mpi_table_dtype(c->dtype);
    nu_search_opts so = {.k = c->max_k, .dtype = dt, .threads = c->threads, .pool = c->pool};
    nu_status st = nu_mpi_open_shard(x->comm, dir, users, qd, dt, !c->table_map, &v->table);
    if (st == NU_OK && (st = nu_mpi_search_init(&v->ms, x->comm, "serve", &v->table, &so,
                                                c->max_batch)) != NU_OK)
        nu_user_table_free(&v->table);
    if (st != NU_OK) {
        nu_mpi_search_free(&v->ms);
        free(v);
        return st;
    }
    v->ms.tag = (int64_t)gen;
    x->v[x->nv++] = v;
    x->first = v->table.first_row;
    x->rows = v->table.rows;
    return NU_OK;
}

/* Every rank's status of a load; rank 0 gets the first failure's message
 * (named by its rank) as its error.  Returns the worst status. */
static nu_status agree_load(sharded *x, nu_status st)
{
    enum { MSG = 480 };
    char mine[4 + MSG] = {0};
    int32_t code = (int32_t)st;
    memcpy(mine, &code, 4);
    if (st != NU_OK)
        snprintf(mine + 4, MSG, "%s", nu_last_error());
    char *all = x->rank == 0 ? malloc((size_t)x->size * sizeof mine) : NULL;
    if (x->rank == 0 && !all)
        MPI_Abort(x->comm, 1);
    MPI_Gather(mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, 0, x->comm);
    int32_t worst = 0;
    for (int r = 0; x->rank == 0 && r < x->size; r++) {
        int32_t c;
        memcpy(&c, all + (size_t)r * sizeof mine, 4);
        if (c && !worst) {
            worst = c;
            nu_error((nu_status)c, "rank %d: %s", r, all + (size_t)r * sizeof mine + 4);
        }
    }
    free(all);
    MPI_Bcast(&worst, 1, MPI_INT32_T, 0, x->comm);
    return (nu_status)worst;
}

/* Every rank: a LOAD header's directory, then the version's shards. */
static nu_status follow_load(sharded *x, const int64_t hdr[NU_MPI_HDR_WORDS], const char *dir_in)
{
    int64_t len = (int64_t)(dir_in ? strlen(dir_in) + 1 : 0);
    MPI_Bcast(&len, 1, MPI_INT64_T, 0, x->comm);
    /* Rank 0 sends its own string (MPI_Bcast does not write at the root). */
    char *got = x->rank == 0 ? NULL : malloc((size_t)len);
    if (x->rank != 0 && !got)
        MPI_Abort(x->comm, 1);
    MPI_Bcast(x->rank == 0 ? (void *)(uintptr_t)dir_in : got, (int)len, MPI_CHAR, 0, x->comm);
    unsigned long gen = (unsigned long)hdr[1];
    nu_status st = open_version(x, gen, x->rank == 0 ? dir_in : got, (size_t)hdr[2], (size_t)hdr[3]);
    free(got);
    st = agree_load(x, st);
    if (st != NU_OK) /* where it opened, it goes again: the version never serves */
        drop(x, gen);
    return st;
}

static nu_status table_load(void *ctx, unsigned long gen, const char *dir, const nu_model *m)
{
    sharded *x = ctx;
    pthread_mutex_lock(&x->mu);
    int64_t hdr[NU_MPI_HDR_WORDS] = {HDR_LOAD, (int64_t)gen, (int64_t)nu_model_num_users(m),
                                     (int64_t)nu_model_query_dim(m)};
    double unused = 0;
    nu_mpi_search_header(x->comm, hdr, &unused);
    nu_status st = follow_load(x, hdr, dir);
    pthread_mutex_unlock(&x->mu);
    return st;
}

static void table_release(void *ctx, unsigned long gen)
{
    sharded *x = ctx;
    pthread_mutex_lock(&x->mu);
    int64_t hdr[NU_MPI_HDR_WORDS] = {HDR_RELEASE, (int64_t)gen, 0, 0};
    double unused = 0;
    nu_mpi_search_header(x->comm, hdr, &unused);
    drop(x, gen);
    pthread_mutex_unlock(&x->mu);
}

/* Rank 0's side of the scan hook: one batch of the protocol at a time, on
 * the shards of the batch's version. */
static nu_status scan_batch(void *ctx, unsigned long gen, const float *q, size_t n, size_t qd,
                            const uint32_t *const *ex_rows, const size_t *ex_counts,
                            uint32_t *rows, float *scores)
{
    sharded *x = ctx;
    pthread_mutex_lock(&x->mu);
    shard_version *v = find(x, gen);
    nu_status st = NU_OK;
    if (!v || qd != v->ms.qd || n > v->ms.max_b)
        st = nu_error(NU_ERR_INTERNAL, "sharded scan: %zu queries of %zu floats for version %lu "
                      "(%s)", n, qd, gen, v ? "its shards expect others" : "no shards open");
    for (size_t i = 0; st == NU_OK && i < n; i++) {
        x->ex[i].ids = ex_rows[i];
        x->ex[i].count = ex_counts[i];
    }
    /* nu_mpi_search_batch prints the failing ranks' messages. */
    if (st == NU_OK && nu_mpi_search_batch(&v->ms, q, n, x->ex, rows, scores) != 0)
        st = nu_error(NU_ERR_INTERNAL, "the sharded scan failed on a rank (see its message on "
                      "standard error)");
    pthread_mutex_unlock(&x->mu);
    return st;
}

/* Ranks > 0: follow rank 0's commands until it stops; its exit code. */
static int follow(sharded *x)
{
    for (;;) {
        int64_t hdr[NU_MPI_HDR_WORDS];
        double comm_s = 0;
        nu_mpi_search_header(x->comm, hdr, &comm_s);
        if (hdr[0] == NU_MPI_HDR_STOP)
            return (int)hdr[1];
        if (hdr[0] == HDR_LOAD) {
            follow_load(x, hdr, NULL);
        } else if (hdr[0] == HDR_RELEASE) {
            drop(x, (unsigned long)hdr[1]);
        } else {
            shard_version *v = find(x, (unsigned long)hdr[3]);
            if (!v) { /* cannot happen: rank 0 scans only versions all opened */
                fprintf(stderr, "nextuser serve: rank %d: a batch for version %lld, not open\n",
                        x->rank, (long long)hdr[3]);
                MPI_Abort(x->comm, 1);
            }
            v->ms.st.comm += comm_s;
            nu_mpi_search_follow(&v->ms, hdr);
        }
    }
}

int nu_mpi_cmd_serve(MPI_Comm comm, int argc, char **argv)
{
    sharded x;
    memset(&x, 0, sizeof x);
    x.comm = comm;
    MPI_Comm_rank(comm, &x.rank);
    MPI_Comm_size(comm, &x.size);
    nu_serve_config c;
    nu_mpi_quiet q = nu_mpi_quiet_begin(x.rank);
    int parsed = nu_cli_parse_serve(argc, argv, &c);
    nu_mpi_quiet_end(&q);
    if (parsed >= 0)
        return parsed;
    c.threads = nu_mpi_threads(comm, c.threads);
    if (!c.workers)
        c.workers = 1; /* batches run one at a time through the ranks anyway */
    x.c = &c;
    int rc = 0, provided = 0;
    MPI_Query_thread(&provided);
    if (x.rank == 0) {
        if (provided < MPI_THREAD_SERIALIZED)
            rc = (nu_error(NU_ERR_UNSUPPORTED, "the MPI library gives no MPI_THREAD_SERIALIZED "
                           "(the service's workers call MPI)"), NU_EXIT_FAIL);
        else if (nu_init() != NU_OK)
            rc = NU_EXIT_FAIL;
        else if (!(x.ex = calloc(c.max_batch, sizeof *x.ex)) || pthread_mutex_init(&x.mu, NULL) != 0)
            rc = (nu_error(NU_ERR_NOMEM, "out of memory"), NU_EXIT_FAIL);
    }
    if ((rc = nu_mpi_agree(comm, "serve", rc)) != 0) {
        free(x.ex);
        return rc;
    }
    if (x.rank == 0) {
        /* The generator's engine opens one row of each version's table (it
         * scans only to validate the version); the batches' scans go
         * through the ranks, on the shards each version's load opened. */
        c.table_first = 0;
        c.table_rows = 1;
        c.search = scan_batch;
        c.table_load = table_load;
        c.table_release = table_release;
        c.search_ctx = &x;
        c.ranks = x.size;
        rc = nu_serve_main(&c);
        /* Versions still open (a start that failed late) go with the stop. */
        pthread_mutex_lock(&x.mu);
        int64_t hdr[NU_MPI_HDR_WORDS] = {NU_MPI_HDR_STOP, rc, 0, 0};
        double unused = 0;
        nu_mpi_search_header(comm, hdr, &unused);
        pthread_mutex_unlock(&x.mu);
        pthread_mutex_destroy(&x.mu);
    } else
        rc = follow(&x);
    while (x.nv)
        drop(&x, x.v[0]->gen);
    if (rc == 0) /* collective: every rank has rank 0's exit code */
        nu_mpi_report(comm, "serve", &x.done, x.first, x.rows);
    free(x.v);
    free(x.ex);
    return rc;
}
#endif
