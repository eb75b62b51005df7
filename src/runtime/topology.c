#include "topology.h"

#include <hwloc.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

nu_status nu_topology_summarize(nu_topology_summary *out)
{
    hwloc_topology_t topo;
    memset(out, 0, sizeof *out);
    if (hwloc_topology_init(&topo) != 0)
        return nu_error(NU_ERR_INTERNAL, "hwloc: cannot initialise a topology");
    const char *syn = getenv("HWLOC_SYNTHETIC");
    if (syn && *syn) {
        if (hwloc_topology_set_synthetic(topo, syn) != 0) {
            hwloc_topology_destroy(topo);
            return nu_error(NU_ERR_INVALID_ARG, "HWLOC_SYNTHETIC=\"%s\": not a valid synthetic topology", syn);
        }
        strncpy(out->synthetic, syn, sizeof out->synthetic - 1);
    }
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        return nu_error(NU_ERR_INTERNAL, "hwloc: cannot load the topology");
    }
    out->packages = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
    out->numa_nodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    out->cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    out->pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    if (out->packages < 1) out->packages = 1;
    if (out->numa_nodes < 1) out->numa_nodes = 1;
    if (out->cores < 1) out->cores = out->pus;
    hwloc_topology_destroy(topo);
    return NU_OK;
}
