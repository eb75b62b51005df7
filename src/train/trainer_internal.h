/* The trainer's state shared by its single-process loop (trainer.c) and
 * the row-sharded step over several processes (shard_step.c). */
#ifndef NU_TRAINER_INTERNAL_H
#define NU_TRAINER_INTERNAL_H

#include "model/backward.h"
#include "model/forward.h"
#include "train/trainer.h"
#include "util/arena.h"
#include "util/rng.h"

typedef struct nu_shard nu_shard;

/* One thread's share of a step: its examples, scratch and gradient. */
typedef struct worker {
    nu_train_batch batch;
    nu_arena arena;
    float *grad;        /* the parameter layout */
    nu_model_view gview;
    float *uhat, *dhat; /* R_max x d */
    uint32_t *target, *neg_off;
    size_t positions, pairs; /* of this step's chunk */
    nu_loss_value loss;
    nu_row_list loss_rows;   /* user rows the loss touched (in the arena) */
    nu_touched_rows touched; /* rows the backward touched (in the arena) */
    nu_status status;
    char message[512];
} worker;

typedef struct run {
    const nu_train_options *o;
    nu_dataset ds;
    nu_examples ex;
    nu_model *m;
    nu_adam adam;
    nu_train_state st;
    nu_random rng;
    double best_prior_weight; /* cfg.prior_weight of the best validation */
    double best_feature_prior_weight; /* and its cfg.feature_prior_weight */
    int T;
    size_t chunk_max, R_max;
    worker *w;
    uint32_t *shared;   /* M negatives of the step */
    uint32_t *rowbuf;   /* union scratch */
    nu_rows *rows;      /* per layout spec */
    uint32_t **spec_rows;
    size_t *spec_cap;
    nu_shard *shard;     /* several processes: this one's rows and traffic (else NULL) */
} run;


/* A new model's ids (users, vocabularies) and serving priors from the
 * run's data set (r->m created with its config). */
nu_status nu_trainer_attach_data(run *r);
/* Phase 1 of a step on one thread: build its chunk of windows and count its
 * loss terms (global row ids). */
void nu_trainer_build_chunk(run *r, worker *w, const size_t *windows, size_t n);
/* Phase 2: forward, loss and backward of the chunk on model m (the run's
 * model, or a step's compact model), its terms weighted by the chunk's
 * share of the P positions and Q pairs of the whole batch. */
void nu_trainer_compute_chunk(run *r, const nu_model *m, worker *w, size_t P, size_t Q);
/* Sums every thread's gradient (model m's layout) into thread 0's in thread
 * order and sets r->rows to each embedding table's touched rows. */
nu_status nu_trainer_reduce(run *r, const nu_model *m);
/* The batch means of the loss terms from per-thread values. */
void nu_trainer_loss_means(const run *r, size_t P, size_t Q, nu_train_progress *pr);

#endif
