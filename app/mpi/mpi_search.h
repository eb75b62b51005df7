/* Sharded search: every rank scans its rows of the user table for each
 * batch that rank 0 broadcasts, and rank 0 merges the candidates into the
 * global top-K (docs/mpi.md).  Per batch:
 *   rank 0 -> all: a header (3 x int64), the B query vectors, and for
 *                  retrieve each item's excluded rows (B counts, then ids);
 *   all -> rank 0: a status + message (256 bytes), then B x pool row ids,
 *                  scanned scores and (bf16, int8) exact fp32 scores.
 * The result equals a single process's search bit for bit
 * (retrieval/search_merge.h). */
#ifndef NU_MPI_SEARCH_H
#define NU_MPI_SEARCH_H

#include <mpi.h>
#include <stdint.h>

#include "retrieval/search.h"

/* What rank 0 broadcasts before each step: {kind, n, n_ex, tag} for a
 * batch (tag: the caller's, e.g. the served model version), {STOP, exit
 * code}, or a command of the caller's own (kinds from NU_MPI_HDR_USER). */
enum { NU_MPI_HDR_BATCH = 0, NU_MPI_HDR_STOP = 1, NU_MPI_HDR_USER = 16 };
#define NU_MPI_HDR_WORDS 4

/* Time and bytes of one rank over the run. */
typedef struct nu_mpi_stats {
    double scan, comm, merge; /* seconds: the shard's scan, MPI calls (waits
                                 included), rank 0's merge */
    uint64_t bcast_bytes;     /* received by this rank (rank 0: sent to each) */
    uint64_t gather_bytes;    /* sent by this rank */
    uint64_t batches;
} nu_mpi_stats;

typedef struct nu_mpi_search {
    MPI_Comm comm;
    int rank, size;
    const char *cmd;
    nu_table_dtype dtype;
    size_t k, pool, qd, max_b;
    nu_search_plan plan;
    nu_search_scratch scratch;
    float *q;              /* max_b x qd: the batch's queries */
    uint32_t *ex;          /* counts then ids of the batch's exclusions */
    size_t ex_cap;
    nu_id_list *lists;     /* max_b */
    unsigned char *send;   /* this rank's message */
    float *unsent;         /* fp32: the exact scores, equal to the scanned ones */
    unsigned char *recv;   /* rank 0: every rank's */
    void *merge_scratch;   /* rank 0 */
    nu_mpi_stats st;
    int64_t tag;           /* rank 0: sent with each batch */
} nu_mpi_search;

/* Plans the scan of table t (this rank's rows) with the options; collective
 * only in that it must be called on every rank before the batches. */
nu_status nu_mpi_search_init(nu_mpi_search *s, MPI_Comm comm, const char *cmd,
                             const nu_user_table *t, const nu_search_opts *o, size_t max_b);
void nu_mpi_search_free(nu_mpi_search *s);

/* Rank 0: one batch of n <= max_b queries (n x qd, rows qd apart), each
 * with its excluded rows (exclude may be NULL); writes n x k ids and
 * scores.  Returns 0, or the exit code after printing the failure of any
 * rank (then call nu_mpi_search_stop with it). */
int nu_mpi_search_batch(nu_mpi_search *s, const float *q, size_t n, const nu_id_list *exclude,
                        uint32_t *ids, float *scores);
/* Every rank: the next header (rank 0's hdr sent, the others' received);
 * the time goes to *comm_s. */
void nu_mpi_search_header(MPI_Comm comm, int64_t hdr[NU_MPI_HDR_WORDS], double *comm_s);
/* Ranks > 0: the batch a BATCH header announced (queries, exclusions, this
 * rank's scan, the gather). */
void nu_mpi_search_follow(nu_mpi_search *s, const int64_t hdr[NU_MPI_HDR_WORDS]);
/* Rank 0: ends the other ranks' nu_mpi_search_serve with exit code rc. */
void nu_mpi_search_stop(nu_mpi_search *s, int rc);
/* Ranks > 0: scans every batch rank 0 sends until it stops; returns rank
 * 0's exit code. */
int nu_mpi_search_serve(nu_mpi_search *s);

/* Rank 0 prints one line per rank (scan, communication and merge time,
 * bytes per batch); collective. */
void nu_mpi_search_report(nu_mpi_search *s);
/* The same from stats and a row range (a service's, summed over the model
 * versions it served). */
void nu_mpi_report(MPI_Comm comm, const char *cmd, const nu_mpi_stats *st, size_t first,
                   size_t rows);

#endif
