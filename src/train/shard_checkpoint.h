/* Sharded checkpoint sets: each process writes its own rows, a manifest
 * written last makes the set one atomic checkpoint (docs/mpi.md). */
#ifndef NU_SHARD_CHECKPOINT_H
#define NU_SHARD_CHECKPOINT_H

#include "train/trainer_internal.h"

/* 1 if dir holds a set's manifest.json. */
int nu_shard_set_exists(const char *dir);
/* Every process writes its file into out_dir.shards/step-S/; process 0
 * then the state, the config and the manifest, and removes older sets.
 * Collective. */
nu_status nu_shard_save_set(run *r);
/* A set (written by any number of processes) into r's full model, Adam
 * state and loop state, the model's ids and priors from r's data set:
 * resuming it on another number of processes re-shards it. */
nu_status nu_shard_load_set(run *r, const char *dir);

#endif
