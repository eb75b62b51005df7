#include "placement.h"

#include <hwloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Loading a topology reads sysfs (milliseconds): keep the last one, keyed by
 * the HWLOC_SYNTHETIC value it was loaded for.  Loaded topologies are only
 * read afterwards, which hwloc allows from several threads. */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static hwloc_topology_t cached_topology;
static char cached_key[512];
static int cache_valid;

static nu_status cached_load(const char *syn, hwloc_topology_t *out)
{
    const char *key = syn ? syn : "";
    pthread_mutex_lock(&cache_lock);
    if (cache_valid && strcmp(cached_key, key) == 0) {
        *out = cached_topology;
        pthread_mutex_unlock(&cache_lock);
        return NU_OK;
    }
    hwloc_topology_t t;
    nu_status s = NU_OK;
    if (hwloc_topology_init(&t) != 0) {
        pthread_mutex_unlock(&cache_lock);
        return nu_error(NU_ERR_INTERNAL, "hwloc: cannot initialise a topology");
    }
    if (*key && hwloc_topology_set_synthetic(t, key) != 0)
        s = nu_error(NU_ERR_INVALID_ARG, "HWLOC_SYNTHETIC=\"%s\": not a valid synthetic topology", key);
    else if (hwloc_topology_load(t) != 0)
        s = nu_error(NU_ERR_INTERNAL, "hwloc: cannot load the topology");
    if (s != NU_OK) {
        hwloc_topology_destroy(t);
        pthread_mutex_unlock(&cache_lock);
        return s;
    }
    /* The previous topology stays alive (placements made from it may still
     * be in use), kept reachable here; a process changes HWLOC_SYNTHETIC
     * rarely (tests), so a few slots suffice. */
    static hwloc_topology_t retired[32];
    static size_t n_retired;
    if (cache_valid) {
        if (n_retired == sizeof retired / sizeof retired[0])
            hwloc_topology_destroy(retired[--n_retired]);
        retired[n_retired++] = cached_topology;
    }
    cached_topology = t;
    snprintf(cached_key, sizeof cached_key, "%s", key);
    cache_valid = 1;
    *out = t;
    pthread_mutex_unlock(&cache_lock);
    return NU_OK;
}

void nu_placement_free(nu_placement *p)
{
    free(p->thread_node);
    free(p->thread_pu);
    free(p->node_threads);
    free(p->node_os_index);
    memset(p, 0, sizeof *p); /* the topology belongs to the cache */
}

/* The NUMA node whose cpuset contains this core (0 if none found). */
static int node_of_core(hwloc_topology_t t, hwloc_obj_t core, int nodes)
{
    for (int n = 0; n < nodes; n++) {
        hwloc_obj_t node = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)n);
        if (node && node->cpuset && hwloc_bitmap_isincluded(core->cpuset, node->cpuset))
            return n;
    }
    return 0;
}

nu_status nu_placement_plan(int threads, nu_placement *p)
{
    memset(p, 0, sizeof *p);
    hwloc_topology_t t = NULL;
    const char *syn = getenv("HWLOC_SYNTHETIC");
    if (syn && !*syn)
        syn = NULL;
    nu_status st = cached_load(syn, &t);
    if (st != NU_OK)
        return st;
    p->synthetic = syn != NULL;
    p->topology = t;
    int nodes = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
    int cores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
    if (nodes < 1)
        nodes = 1;
    if (cores < 1)
        cores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
    if (cores < 1)
        cores = 1;
    if (threads <= 0) {
        /* The OpenMP convention first, then one thread per core. */
        const char *env = getenv("OMP_NUM_THREADS");
        char *end = NULL;
        long n = env ? strtol(env, &end, 10) : 0;
        threads = env && end != env && (*end == 0 || *end == ',') && n > 0 && n <= 4096 ? (int)n
                                                                                    : cores;
    }
    p->threads = threads;
    p->nodes = nodes;
    p->thread_node = calloc((size_t)threads, sizeof(int));
    p->thread_pu = calloc((size_t)threads, sizeof(int));
    p->node_threads = calloc((size_t)nodes, sizeof(int));
    p->node_os_index = calloc((size_t)nodes, sizeof(int));
    int *core_order = calloc((size_t)cores, sizeof(int));
    int *node_cores = calloc((size_t)nodes, sizeof(int));
    if (!p->thread_node || !p->thread_pu || !p->node_threads || !p->node_os_index || !core_order ||
        !node_cores) {
        free(core_order);
        free(node_cores);
        nu_placement_free(p);
        return nu_error(NU_ERR_NOMEM, "out of memory planning thread placement");
    }
    for (int n = 0; n < nodes; n++) {
        hwloc_obj_t node = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)n);
        p->node_os_index[n] = node ? (int)node->os_index : n;
    }
    /* Order cores round-robin across nodes (node 0 core 0, node 1 core 0,
     * ...), so any thread count spreads evenly over the nodes. */
    int *core_node = calloc((size_t)cores, sizeof(int));
    if (!core_node) {
        free(core_order);
        free(node_cores);
        nu_placement_free(p);
        return nu_error(NU_ERR_NOMEM, "out of memory planning thread placement");
    }
    for (int c = 0; c < cores; c++) {
        hwloc_obj_t core = hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, (unsigned)c);
        core_node[c] = core ? node_of_core(t, core, nodes) : 0;
    }
    int filled = 0;
    for (int round = 0; filled < cores; round++)
        for (int n = 0; n < nodes; n++) {
            int seen = 0;
            for (int c = 0; c < cores; c++)
                if (core_node[c] == n && seen++ == round)
                    core_order[filled++] = c;
        }
    for (int i = 0; i < threads; i++) {
        int c = core_order[i % cores];
        hwloc_obj_t core = hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, (unsigned)c);
        hwloc_obj_t pu = core ? hwloc_get_obj_inside_cpuset_by_type(t, core->cpuset, HWLOC_OBJ_PU, 0)
                              : hwloc_get_obj_by_type(t, HWLOC_OBJ_PU, (unsigned)c);
        p->thread_node[i] = core_node[c];
        p->thread_pu[i] = (!p->synthetic && pu) ? (int)pu->os_index : -1;
        p->node_threads[core_node[c]]++;
    }
    free(core_node);
    free(core_order);
    free(node_cores);
    return NU_OK;
}

void *nu_placement_save_caller(const nu_placement *p)
{
    if (!p->pin || p->synthetic)
        return NULL;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (set && hwloc_get_cpubind((hwloc_topology_t)p->topology, set, HWLOC_CPUBIND_THREAD) != 0) {
        hwloc_bitmap_free(set);
        set = NULL;
    }
    return set;
}

void nu_placement_restore_caller(const nu_placement *p, void *saved)
{
    if (!saved)
        return;
    hwloc_set_cpubind((hwloc_topology_t)p->topology, (hwloc_bitmap_t)saved, HWLOC_CPUBIND_THREAD);
    hwloc_bitmap_free((hwloc_bitmap_t)saved);
}

void nu_placement_bind_thread(const nu_placement *p, int thread)
{
    if (!p->pin || p->synthetic || thread >= p->threads || p->thread_pu[thread] < 0)
        return;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set)
        return;
    hwloc_bitmap_only(set, (unsigned)p->thread_pu[thread]);
    hwloc_set_cpubind((hwloc_topology_t)p->topology, set, HWLOC_CPUBIND_THREAD);
    hwloc_bitmap_free(set);
}

void nu_placement_node_batches(const nu_placement *p, int node, size_t nbatches, size_t *first,
                               size_t *end)
{
    /* Node n gets the share of batches of its threads, as a contiguous range. */
    size_t before = 0;
    for (int n = 0; n < node; n++)
        before += (size_t)p->node_threads[n];
    size_t mine = (size_t)p->node_threads[node], total = (size_t)p->threads;
    *first = nbatches * before / total;
    *end = nbatches * (before + mine) / total;
}

void *nu_placement_alloc_on_node(const nu_placement *p, int node, size_t bytes, int *bound)
{
    hwloc_topology_t t = (hwloc_topology_t)p->topology;
    *bound = 0;
    if (!p->synthetic && p->nodes > 1) {
        hwloc_obj_t obj = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)node);
        if (obj) {
            void *mem = hwloc_alloc_membind(t, bytes, obj->nodeset, HWLOC_MEMBIND_BIND,
                                            HWLOC_MEMBIND_BYNODESET);
            if (mem) {
                *bound = 1;
                return mem;
            }
        }
    }
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

void nu_placement_free_node_memory(const nu_placement *p, void *mem, size_t bytes, int bound)
{
    if (!mem)
        return;
    if (bound)
        hwloc_free((hwloc_topology_t)p->topology, mem, bytes);
    else
        free(mem);
}

int nu_placement_bind_area(const nu_placement *p, int node, const void *addr, size_t bytes)
{
    if (p->synthetic || p->nodes < 2 || bytes == 0)
        return 0;
    hwloc_topology_t t = (hwloc_topology_t)p->topology;
    hwloc_obj_t obj = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)node);
    if (!obj)
        return 0;
    /* Page-align inwards: a page shared with the neighbour shard stays put. */
    uintptr_t page = 4096, lo = ((uintptr_t)addr + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)addr + bytes) & ~(page - 1);
    if (hi <= lo)
        return 0;
    return hwloc_set_area_membind(t, (const void *)lo, hi - lo, obj->nodeset, HWLOC_MEMBIND_BIND,
                                  HWLOC_MEMBIND_MIGRATE | HWLOC_MEMBIND_BYNODESET) == 0;
}
