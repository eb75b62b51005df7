/* The bounded queue of items and the micro-batching workers.  Each worker
 * owns a session (and a batch) of the version it last ran; it takes up to
 * max_batch items of one version and one kind from the head of the queue
 * once max_batch items wait or the oldest has waited max_wait_us, runs them
 * in one engine call and answers every request whose last item it ran. */
#ifndef NU_SERVE_BATCHER_H
#define NU_SERVE_BATCHER_H

#include <stddef.h>

#include "metrics.h"
#include "model_version.h"
#include "request.h"

typedef struct sv_batcher sv_batcher;

sv_batcher *sv_batcher_start(const nu_serve_config *cfg, sv_models *models, sv_metrics *metrics);
/* Reserves room for n items: 1 when taken, 0 when the queue is full or
 * closed (answer 503). */
int sv_batcher_reserve(sv_batcher *b, size_t n);
/* Enqueues the items of r into room reserved for them (never fails). */
void sv_batcher_submit(sv_batcher *b, sv_request *r);
/* Items queued or reserved. */
size_t sv_batcher_depth(sv_batcher *b);
/* Wakes the workers so that idle ones drop a replaced version's session. */
void sv_batcher_poke(sv_batcher *b);
/* Refuses new items (reserve answers 0), runs every queued and reserved
 * one, joins the workers. */
void sv_batcher_stop(sv_batcher *b);
/* Stops if not stopped, then frees (no other thread may use b then). */
void sv_batcher_free(sv_batcher *b);

#endif
