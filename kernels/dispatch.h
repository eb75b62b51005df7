/* Internal: the active kernel table and the per-ISA tables. */
#ifndef NU_SIMD_DISPATCH_H
#define NU_SIMD_DISPATCH_H

#include "kernels.h"
#include "nextuser/nextuser.h"

/* The active table.  Call nu_init() (or nu_dispatch_init) first and check
 * its status; before a successful init this returns the scalar table. */
const nu_kernel_table *nu_kernels(void);

/* The table of one ISA, or NULL when this build or this CPU cannot run it.
 * Ignores NU_ISA: for tests that loop over every ISA the host runs. */
const nu_kernel_table *nu_kernels_for(nu_isa isa);

/* Parses an ISA name; returns NU_ISA_COUNT for an unknown name. */
nu_isa nu_isa_from_name(const char *name);
const char *nu_isa_name(nu_isa isa);

/* Best ISA this build and CPU can run. */
nu_isa nu_isa_best(void);

#endif
