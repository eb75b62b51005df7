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
/* When the service has been idle for cfg->idle_us (no item queued or
 * reserved but r's, no batch running) and batches do not wait to fill
 * (max_wait_us 0), runs r's items at once on the
 * calling thread, through an idle worker's session, with cfg->idle_threads
 * engine threads, and returns 1: r is answered (r->done was called).  At
 * light load this spares the hand-off to a worker and back and the wake-up
 * of sleeping threads.  Else returns 0: submit r.  r's room is reserved. */
int sv_batcher_run_if_idle(sv_batcher *b, sv_request *r);
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
