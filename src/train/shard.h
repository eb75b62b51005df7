/* Data-parallel training with row-sharded embedding tables over several
 * processes (docs/mpi.md, "Training").  Each process takes its slice of
 * every batch; the user and feature tables and their Adam moments are split
 * by rows (process q owns rows [rows*q/R, rows*(q+1)/R) of each table); the
 * rows a step needs are fetched from their owners and their gradients sent
 * back, and the owners apply lazy Adam; dense gradients are summed in rank
 * order, so a run is reproducible for a given R and seed.  The processes
 * talk only through the caller's nu_collectives (the library never links
 * MPI). */
#ifndef NU_SHARD_H
#define NU_SHARD_H

#include <stdint.h>

#include "nextuser/nextuser.h"
#include "train/trainer_internal.h"

/* Bytes this process sent to the others and where its time went, in the
 * last step and in all steps of this run. */
typedef struct nu_shard_traffic {
    uint64_t fetch_bytes; /* row requests and the rows sent back to requesters */
    uint64_t push_bytes;  /* row gradients sent to their owners */
    uint64_t dense_bytes; /* the dense gradient's reduce-scatter and all-gather */
    uint64_t small_bytes; /* counts, loss sums, norms, agreement */
    double comm_s, compute_s;
} nu_shard_traffic;

struct nu_shard {
    const nu_collectives *c;
    int R, rank;
    size_t nspec;
    int *field;        /* per spec of the layout: -1 users, f a feature table, -2 dense */
    size_t *first;     /* nspec x (R + 1): first row of each process, for embedding specs */
    nu_model own;      /* this process's parameters: every dense one, its rows of each table */
    nu_adam adam;      /* their moments */
    float *grad;       /* own.layout */
    nu_rows *own_rows; /* per spec: own rows (local) a step updates */
    uint32_t **own_buf;
    size_t *own_cap;
    nu_model step;     /* the compact model of one step: dense + the rows it needs */
    size_t step_cap;   /* floats allocated at step.params */
    uint32_t **need;   /* per spec: the global rows this step needs, sorted */
    size_t *n_need, *need_cap;
    uint32_t *shared_compact;
    size_t grad_cap;   /* floats of each worker's gradient buffer */
    size_t dense_floats;
    float *dense;      /* dense_floats: the dense gradient, then its sum */
    char *sbuf, *rbuf;
    size_t sbuf_cap, rbuf_cap;
    nu_shard_traffic last, total;
};

/* Takes r's full model and moments (identical on every process: created
 * from the same seed or loaded from the same checkpoint) and keeps this
 * process's rows of them.  Process 0 keeps the full copies too: it
 * validates and writes out_dir (nu_shard_gather); the others drop them. */
nu_status nu_shard_create(run *r, const nu_collectives *c);
void nu_shard_free(nu_shard *sh);

/* The config of a model with rows[i] rows of each embedding spec i and the
 * same dense parameters (a process's own part, or a step's rows). */
nu_model_config nu_shard_config(const nu_shard *sh, const nu_model_config *full, const size_t *rows);

/* One optimiser step on the global batch windows[0 .. n). */
nu_status nu_shard_step(run *r, const size_t *windows, size_t n, nu_train_progress *pr);

/* Every process's rows into process 0's full model (and, with moments,
 * its full Adam state), so that it can validate or write a checkpoint. */
nu_status nu_shard_gather(run *r, int moments);

/* The worst status over the processes, with the message of the first that
 * failed (named by its rank): every process returns it. */
nu_status nu_shard_agree(nu_shard *sh, nu_status s);
/* 1 if `flag` is set on any process. */
int nu_shard_any(nu_shard *sh, int flag);
/* Process 0's `bytes` bytes at buf to every process. */
nu_status nu_shard_bcast(nu_shard *sh, void *buf, size_t bytes);

#endif
