/* Feature detection.  On x86 a feature counts only when cpuid reports it AND
 * the OS saves the register state it needs (xgetbv): otherwise the first
 * AVX instruction would fault. */
#include "cpu.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long read_xcr0(void)
{
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static void detect(nu_cpu_features *f)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    f->f16c = (c >> 29) & 1;
    unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
    int ymm_ok = (xcr0 & 0x6) == 0x6;          /* SSE + AVX state */
    int zmm_ok = ymm_ok && (xcr0 & 0xe0) == 0xe0; /* opmask + ZMM_Hi256 + Hi16_ZMM */
    if (__get_cpuid_max(0, 0) < 7)
        return;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1;
    int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1;
    int avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    int avx512vnni = (c >> 11) & 1;
    f->avx2 = avx && avx2 && fma && ymm_ok;
    f->f16c = f->f16c && ymm_ok;
    f->avx512 = f->avx2 && zmm_ok && avx512f && avx512dq && avx512bw && avx512vl;
    f->avx512_vnni = f->avx512 && avx512vnni;
    __cpuid_count(7, 1, a, b, c, d);
    f->avx512_bf16 = f->avx512 && ((a >> 5) & 1);
}
#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP2_BF16
#define HWCAP2_BF16 (1 << 14)
#endif
static void detect(nu_cpu_features *f)
{
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    f->neon = (hw & HWCAP_ASIMD) != 0;
    f->asimd_dotprod = (hw & HWCAP_ASIMDDP) != 0;
    f->bf16_arm = (hw2 & HWCAP2_BF16) != 0;
}
#else
static void detect(nu_cpu_features *f) { (void)f; }
#endif

static nu_cpu_features features;
static pthread_once_t features_once = PTHREAD_ONCE_INIT;

static void detect_once(void)
{
    memset(&features, 0, sizeof features);
    detect(&features);
}

const nu_cpu_features *nu_cpu_detect(void)
{
    pthread_once(&features_once, detect_once);
    return &features;
}
