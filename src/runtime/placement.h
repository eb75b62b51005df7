/* Where threads run and which batches they take: threads are spread over
 * the NUMA nodes (in proportion to each node's cores) and pinned one per
 * core; the batches of a run are split into one contiguous range per node,
 * in proportion to its threads, so each batch is processed by the threads
 * of one node, next to that node's copy of the weights.
 * HWLOC_SYNTHETIC fakes a topology for tests (threads are then not pinned). */
#ifndef NU_PLACEMENT_H
#define NU_PLACEMENT_H

#include <stddef.h>

#include "nextuser/nextuser.h"

typedef struct nu_placement {
    int threads, nodes;
    int synthetic;       /* 1: HWLOC_SYNTHETIC topology, no pinning */
    int pin;             /* 1: nu_placement_bind_thread pins (0 after planning) */
    int *thread_node;    /* [threads] node of each thread */
    int *thread_pu;      /* [threads] OS index of the PU to pin to, -1 for none */
    int *node_threads;   /* [nodes] threads per node */
    int *node_os_index;  /* [nodes] hwloc OS index of the node (memory binding) */
    void *topology;      /* hwloc_topology_t */
} nu_placement;

/* threads <= 0: OMP_NUM_THREADS when set (its first number), else one per core. */
nu_status nu_placement_plan(int threads, nu_placement *p);
void nu_placement_free(nu_placement *p);

/* Pins the calling thread to the PU planned for `thread` when p->pin is
 * set (no-op otherwise, when synthetic or when pinning fails: placement is a
 * performance matter). */
void nu_placement_bind_thread(const nu_placement *p, int thread);

/* Around a parallel region that may pin: the caller's thread (the region's
 * thread 0) gets its own binding back afterwards, so a library call never
 * leaves the caller pinned.  save returns NULL when p->pin is 0. */
void *nu_placement_save_caller(const nu_placement *p);
void nu_placement_restore_caller(const nu_placement *p, void *saved);

/* Batches [*first, *end) of `nbatches` that node `node` processes. */
void nu_placement_node_batches(const nu_placement *p, int node, size_t nbatches, size_t *first,
                               size_t *end);

/* Memory for a node's copy of the weights: bound to that node on a real
 * multi-node machine, plain aligned memory otherwise.  Free with
 * nu_placement_free_node_memory. */
void *nu_placement_alloc_on_node(const nu_placement *p, int node, size_t bytes, int *bound);
void nu_placement_free_node_memory(const nu_placement *p, void *mem, size_t bytes, int bound);

/* Moves the pages of [addr, addr + bytes) to node `node` (real multi-node
 * machines only; a no-op elsewhere).  Returns 1 when it bound them. */
int nu_placement_bind_area(const nu_placement *p, int node, const void *addr, size_t bytes);

#endif
