/* nextuser info: what this machine and build will run. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void print_list_json(const char **names, size_t n)
{
    putchar('[');
    for (size_t i = 0; i < n; i++)
        printf("%s\"%s\"", i ? ", " : "", names[i]);
    putchar(']');
}

int nu_cmd_info(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: nextuser info [--json]\n\n"
                   "Prints the detected CPU features, the ISAs this build can run and the\n"
                   "active one (lowered with NU_ISA=scalar|avx2|avx512|neon), the SLEEF\n"
                   "version, the hwloc topology (honours HWLOC_SYNTHETIC) and the OpenMP\n"
                   "thread count (OMP_NUM_THREADS).\n");
            return 0;
        } else
            return nu_cli_usage_error("info", "unknown option '%s'", argv[i]);
    }
    if (nu_init() != NU_OK)
        return nu_cli_fail("info");
    nu_topology_info topo = {.size = sizeof topo};
    if (nu_topology_read(&topo) != NU_OK)
        return nu_cli_fail("info");
    const char *isas[8], *feats[16];
    size_t n_isas = nu_isas_available(isas, 8), n_feats = nu_cpu_feature_names(feats, 16);
    int threads = omp_get_max_threads();
    if (json) {
        printf("{\"version\": \"%s\", \"isa_active\": \"%s\", \"isa_whoami\": \"%s\", ",
               nu_version(), nu_isa_active(), nu_isa_active_whoami());
        printf("\"isas_available\": ");
        print_list_json(isas, n_isas);
        printf(", \"features\": ");
        print_list_json(feats, n_feats);
        printf(", \"sleef_version\": \"%s\", \"packages\": %d, \"numa_nodes\": %d, "
               "\"cores\": %d, \"pus\": %d, \"threads\": %d, \"hwloc_synthetic\": \"%s\"}\n",
               nu_sleef_version(), topo.packages, topo.numa_nodes, topo.cores, topo.pus,
               threads, topo.synthetic);
        return 0;
    }
    printf("nextuser %s\n", nu_version());
    printf("features:        ");
    for (size_t i = 0; i < n_feats; i++)
        printf("%s%s", i ? " " : "", feats[i]);
    printf("%s\nisas available:  ", n_feats ? "" : "(none beyond scalar)");
    for (size_t i = 0; i < n_isas; i++)
        printf("%s%s", i ? " " : "", isas[i]);
    printf("\nisa active:      %s (code reports %s)\n", nu_isa_active(), nu_isa_active_whoami());
    printf("sleef:           %s\n", nu_sleef_version());
    printf("topology:        %d package(s), %d NUMA node(s), %d core(s), %d PU(s)%s%s\n",
           topo.packages, topo.numa_nodes, topo.cores, topo.pus,
           topo.synthetic[0] ? " [synthetic: " : "", topo.synthetic[0] ? topo.synthetic : "");
    if (topo.synthetic[0])
        printf("]\n");
    printf("openmp threads:  %d\n", threads);
    return 0;
}
