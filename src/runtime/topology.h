/* Machine topology from hwloc: what the thread and NUMA placement sees. */
#ifndef NU_TOPOLOGY_H
#define NU_TOPOLOGY_H

#include "nextuser/nextuser.h"

typedef struct nu_topology_summary {
    int packages, numa_nodes, cores, pus;
    char synthetic[128]; /* HWLOC_SYNTHETIC in force, or "" */
} nu_topology_summary;

/* Loads the topology (honouring HWLOC_SYNTHETIC) and counts its objects. */
nu_status nu_topology_summarize(nu_topology_summary *out);

#endif
