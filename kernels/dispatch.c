/* Picks one kernel table at start-up.  NU_ISA may lower the level, never
 * raise it: a level the CPU lacks is an error, not a SIGILL later. */
#include "dispatch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "error.h"

static const char *const isa_names[NU_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon"};

const char *nu_isa_name(nu_isa isa)
{
    return (unsigned)isa < NU_ISA_COUNT ? isa_names[isa] : "unknown";
}

nu_isa nu_isa_from_name(const char *name)
{
    for (int i = 0; i < NU_ISA_COUNT; i++)
        if (strcmp(name, isa_names[i]) == 0)
            return (nu_isa)i;
    return NU_ISA_COUNT;
}

/* Whether this build contains the ISA's kernels. */
static int isa_compiled(nu_isa isa)
{
    switch (isa) {
    case NU_ISA_SCALAR: return 1;
#if defined(__x86_64__)
    case NU_ISA_AVX2: return 1;
    case NU_ISA_AVX512: return 1;
#endif
#if defined(__aarch64__)
    case NU_ISA_NEON: return 1;
#endif
    default: return 0;
    }
}

static int isa_runs(nu_isa isa)
{
    const nu_cpu_features *f = nu_cpu_detect();
    if (!isa_compiled(isa))
        return 0;
    switch (isa) {
    case NU_ISA_SCALAR: return 1;
    case NU_ISA_AVX2: return f->avx2;
    case NU_ISA_AVX512: return f->avx512;
    case NU_ISA_NEON: return f->neon;
    default: return 0;
    }
}

static nu_kernel_table tables[NU_ISA_COUNT];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
    nu_build_table_scalar(&tables[NU_ISA_SCALAR]);
#if defined(__x86_64__)
    if (isa_runs(NU_ISA_AVX2))
        nu_build_table_avx2(&tables[NU_ISA_AVX2]);
    if (isa_runs(NU_ISA_AVX512))
        nu_build_table_avx512(&tables[NU_ISA_AVX512]);
#endif
#if defined(__aarch64__)
    if (isa_runs(NU_ISA_NEON))
        nu_build_table_neon(&tables[NU_ISA_NEON]);
#endif
}

const nu_kernel_table *nu_kernels_for(nu_isa isa)
{
    if (!isa_runs(isa))
        return NULL;
    pthread_once(&tables_once, build_tables);
    return &tables[isa];
}

nu_isa nu_isa_best(void)
{
    for (int i = NU_ISA_COUNT - 1; i > 0; i--)
        if (isa_runs((nu_isa)i))
            return (nu_isa)i;
    return NU_ISA_SCALAR;
}

/* The choice, made once; later calls return the same status and message. */
static const nu_kernel_table *active;
static nu_status init_status;
static char init_message[256];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    nu_isa isa = nu_isa_best();
    const char *req = getenv("NU_ISA");
    init_status = NU_OK;
    if (req && *req) {
        nu_isa want = nu_isa_from_name(req);
        if (want == NU_ISA_COUNT) {
            init_status = NU_ERR_INVALID_ARG;
            snprintf(init_message, sizeof init_message,
                     "NU_ISA=%s: unknown ISA (use scalar, avx2, avx512 or neon)", req);
        } else if (!isa_runs(want)) {
            init_status = NU_ERR_UNSUPPORTED;
            snprintf(init_message, sizeof init_message,
                     "NU_ISA=%s: this %s cannot run it (best available: %s)", req,
                     isa_compiled(want) ? "CPU" : "build", nu_isa_name(isa));
        } else {
            isa = want; /* never above the best: isa_runs checked it */
        }
    }
    active = init_status == NU_OK ? nu_kernels_for(isa) : nu_kernels_for(NU_ISA_SCALAR);
}

nu_status nu_init(void)
{
    pthread_once(&init_once, choose);
    if (init_status != NU_OK)
        return nu_error(init_status, "%s", init_message);
    return NU_OK;
}

const nu_kernel_table *nu_kernels(void)
{
    pthread_once(&init_once, choose);
    return active;
}

const char *nu_isa_active(void) { return nu_kernels()->name; }

const char *nu_isa_active_whoami(void) { return nu_kernels()->whoami(); }

size_t nu_isas_available(const char **names, size_t cap)
{
    size_t n = 0;
    for (int i = 0; i < NU_ISA_COUNT; i++)
        if (isa_runs((nu_isa)i)) {
            if (n < cap)
                names[n] = isa_names[i];
            n++;
        }
    return n;
}

size_t nu_cpu_feature_names(const char **names, size_t cap)
{
    const nu_cpu_features *f = nu_cpu_detect();
    struct { int on; const char *name; } all[] = {
        {f->avx2, "avx2"},           {f->avx2, "fma"},
        {f->f16c, "f16c"},           {f->avx512, "avx512"},
        {f->avx512_bf16, "avx512_bf16"}, {f->avx512_vnni, "avx512_vnni"},
        {f->neon, "neon"},           {f->asimd_dotprod, "asimd_dotprod"},
        {f->bf16_arm, "bf16"},
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i].on) {
            if (n < cap)
                names[n] = all[i].name;
            n++;
        }
    return n;
}
