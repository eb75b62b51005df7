/* The row traffic of a sharded step: which rows the step reads, fetching
 * them from their owners, and sending their gradients back. */
#ifndef NU_SHARD_ROWS_H
#define NU_SHARD_ROWS_H

#include "train/shard.h"

/* The global rows each embedding table's part of this process's chunks
 * reads (their users, targets, negatives, the shared negatives and feature
 * values), sorted and unique, into sh->need. */
nu_status nu_shard_collect(run *r);
/* Rewrites the chunks' rows as positions in sh->need (the step's compact
 * model), and the shared negatives into sh->shared_compact. */
nu_status nu_shard_remap(run *r);
/* Fetches the needed rows from their owners into the step model's
 * embedding specs (step_offset[i]: spec i's offset in it). */
nu_status nu_shard_fetch(run *r, const size_t *step_offset);
/* Sends the gradient rows of r->rows (compact, in `grad`, the step model's
 * layout) to their owners; sets sh->grad's rows and sh->own_rows. */
nu_status nu_shard_push(run *r, const float *grad, const size_t *step_offset);

#endif
