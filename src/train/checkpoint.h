/* Training checkpoints: a model directory (loadable by every command) plus
 * the optimiser moments and the loop's state, written as one atomic
 * directory swap, so a crash never leaves a half-written checkpoint and a
 * resumed run continues exactly where the saved one stopped. */
#ifndef NU_CHECKPOINT_H
#define NU_CHECKPOINT_H

#include <stdint.h>

#include "model/model.h"
#include "train/adam.h"

typedef struct nu_train_state {
    uint64_t step;        /* optimiser steps taken */
    uint64_t epoch;       /* epochs completed */
    uint64_t position;    /* examples of the current epoch consumed */
    uint64_t seed;        /* the run's seed (epoch orders, negatives) */
    uint64_t rng_state;   /* the negative sampler's generator state */
    int windows_all;      /* examples are every window (NU_WINDOWS_ALL), not disjoint ones */
    /* Selection on validation (nu_train_options.val_every): the best score
     * so far (< 0: none yet), its step, and validations since it. */
    double best_score;
    uint64_t best_step, evals_since_best;
} nu_train_state;

/* Writes DIR: the model files, optimizer.safetensors (moments m and v and
 * the Adam config) and train_state.json. */
nu_status nu_checkpoint_save(const char *dir, const nu_model *m, const nu_adam *a,
                             const nu_train_state *st);
/* Writes train_state.json (the loop's state and the Adam config and step)
 * at path, atomically. */
nu_status nu_checkpoint_write_state(const char *path, const nu_adam *a, const nu_train_state *st);
/* Reads a small file whole (at most 1 MiB, NUL-terminated). */
nu_status nu_checkpoint_read_text(const char *path, char **out, size_t *len);
/* Loads a checkpoint written by nu_checkpoint_save. */
nu_status nu_checkpoint_load(const char *dir, nu_model **m, nu_adam *a, nu_train_state *st);
/* Parses and validates the text of train_state.json (`path` names it in
 * errors); what nu_checkpoint_load does with the file (exposed for the fuzz
 * target, tests/fuzz). */
nu_status nu_checkpoint_parse_state(const char *path, const char *text, size_t len, nu_adam_config *c,
                                    uint64_t *adam_step, nu_train_state *st);

#endif
