/* nextuser-microbench: every kernel x ISA x shape, with the roofline of this
 * machine measured in the same run.  All Google Benchmark flags work. */
#include <stdio.h>

#include "dispatch.h"
#include "gbench.h"
#include "runtime/cpu_identity.h"

int main(int argc, char **argv)
{
    if (nu_init() != NU_OK) {
        fprintf(stderr, "nextuser-microbench: %s\n", nu_last_error());
        return 2;
    }
    nu_roofline_measure();
    char buf[64];
    snprintf(buf, sizeof buf, "%.3f", nu_roofline_fma_flops() * 1e-9);
    nu_bench_add_context("nu_fma_peak_gflops_1core", buf);
    snprintf(buf, sizeof buf, "%.3f", nu_roofline_read_bytes() * 1e-9);
    nu_bench_add_context("nu_read_bw_gbps_1core", buf);
    nu_bench_add_context("nu_isa_best", nu_isa_name(nu_isa_best()));
    /* Same keys as `nextuser bench`: the gate compares like CPUs only. */
    nu_cpu_identity id;
    nu_cpu_identity_read(&id);
    nu_bench_add_context("cpu_model_name", id.model_name);
    nu_bench_add_context("cpu_vendor", id.vendor);
    nu_bench_add_context("cpu_family", id.family);
    nu_bench_add_context("cpu_model", id.model);
    nu_bench_add_context("cpu_stepping", id.stepping);
    nu_bench_add_context("cpu_best_isa", nu_isa_name(nu_isa_best()));
    nu_bench_register_peak();
    nu_bench_register_matmul();
    nu_bench_register_norm();
    nu_bench_register_attention();
    nu_bench_register_score();
    nu_bench_register_score_lowp();
    nu_bench_register_engine();
    nu_bench_register_search_order();
    return nu_bench_main(argc, argv);
}
