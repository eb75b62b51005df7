/* The training loop: data-parallel over examples with OpenMP, per-thread
 * gradient buffers reduced in a fixed order (so a run is bit-for-bit
 * reproducible for a seed and a thread count), lazy Adam on the embedding
 * rows a step touched, checkpoints written atomically every N steps, at the
 * end and when asked to stop, and an exact resume. */
#ifndef NU_TRAINER_H
#define NU_TRAINER_H

#include <signal.h>
#include <stdint.h>

#include "nextuser/nextuser.h" /* nu_collectives */
#include "data/dataset.h"
#include "train/adam.h"
#include "train/checkpoint.h"
#include "train/loss.h"

typedef struct nu_train_progress {
    uint64_t step, total_steps, epoch;
    double con, ce, aux, total; /* loss terms of the last step */
    double examples_per_s;      /* since the run (or resume) started */
    /* Set on the call right after a validation: its score, the best so far
     * and its step. */
    int validated;
    double val_score, best_score;
    uint64_t best_step;
} nu_train_progress;

/* Scores the model on held-out data, higher is better (the CLI's: mean
 * validation Recall@50 over the stages).  It may set the model's
 * serving-only settings (cfg.prior_weight, cfg.feature_prior_weight) to the values it scored best
 * with; training never reads them. */
typedef nu_status (*nu_train_validate_fn)(nu_model *m, double *score, void *ctx);

typedef struct nu_train_options {
    const char *data_dir;
    const char *out_dir;     /* final model + checkpoint (a checkpoint directory) */
    const char *resume_dir;  /* continue from this checkpoint (or NULL) */
    const nu_model_config *model_cfg; /* new model's config (NULL: defaults + the data's fields) */
    int no_prefix;           /* new model reads no item features (the "no prefix" ablation) */
    uint64_t epochs;         /* [1] */
    uint64_t batch;          /* examples per step [256] */
    uint64_t seed;           /* [1] */
    uint64_t negatives;      /* M shared random negatives per step [1024] */
    uint64_t neg_per_pos;    /* exposed negatives per position [4] */
    uint64_t checkpoint_every; /* steps; 0: only at the end */
    uint64_t max_steps;      /* stop (with a checkpoint) after this many steps in total; 0: no limit */
    int threads;             /* <= 0: one per core */
    nu_windows windows;      /* which windows are examples [disjoint] (data/dataset.h) */
    /* Selection on validation: with `validate` set, the model is scored every
     * val_every steps (0: at the end of every epoch) and at the end; the
     * checkpoint in out_dir is always the best-scoring one (no periodic
     * checkpoints), and training stops early after `patience` validations
     * [3] without improvement. */
    nu_train_validate_fn validate;
    void *validate_ctx;
    uint64_t val_every;
    uint64_t patience;
    nu_adam_config adam;
    double lambda_con, lambda_ce, lambda_aux;
    void (*progress)(const nu_train_progress *p, void *ctx);
    void *progress_ctx;
    volatile sig_atomic_t *stop; /* set asynchronously (Ctrl-C): checkpoint and return */
    /* Several processes training one model, each with its rows (shard.h);
     * NULL or one rank: this process alone. */
    const nu_collectives *comm;
} nu_train_options;

void nu_train_defaults(nu_train_options *o);

typedef struct nu_train_summary {
    uint64_t steps, epochs;
    int stopped;       /* 1 if the stop flag or max_steps ended the run early */
    int early_stopped; /* 1 if validation stopped improving (`patience`) */
    double best_score; /* with validation: the kept model's score (else < 0) */
    double best_prior_weight; /* and its cfg.prior_weight */
    double best_feature_prior_weight; /* and its cfg.feature_prior_weight */
    uint64_t best_step;
    double last_total; /* loss of the last step */
    double first_total;
    double seconds;
    /* Sharded: this process's bytes sent and times over the steps. */
    uint64_t fetch_bytes, push_bytes, dense_bytes, small_bytes;
    double comm_seconds, compute_seconds;
} nu_train_summary;

nu_status nu_train_run(const nu_train_options *o, nu_train_summary *sum);

#endif
