/* Calls of the caller's collectives with the sharded run's accounting:
 * the time spent in them and the bytes sent to other processes. */
#ifndef NU_SHARD_COMM_H
#define NU_SHARD_COMM_H

#include "train/shard.h"

/* The worst status over the processes with the first failing one's
 * message, for callers without a shard yet (nu_shard_agree otherwise). */
nu_status nu_collectives_agree(const nu_collectives *c, nu_status s);
/* Grows a message buffer to at least `need` bytes. */
nu_status nu_shard_grow(char **buf, size_t *cap, size_t need);
/* counter (may be NULL) gets the bytes sent to the other processes. */
nu_status nu_shard_allgather(nu_shard *sh, const void *send, void *recv, size_t bytes,
                             uint64_t *counter);
nu_status nu_shard_alltoallv(nu_shard *sh, const void *send, const size_t *sb, const size_t *so,
                             void *recv, const size_t *rb, const size_t *ro, uint64_t *counter);

#endif
