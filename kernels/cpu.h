/* CPU feature detection: what the hardware and the OS together allow. */
#ifndef NU_SIMD_CPU_H
#define NU_SIMD_CPU_H

typedef struct nu_cpu_features {
    int avx2;        /* AVX2 + FMA, YMM state enabled by the OS */
    int avx512;      /* AVX-512 F, BW, DQ, VL, ZMM/opmask state enabled */
    int avx512_bf16; /* AVX512_BF16 (with avx512) */
    int avx512_vnni; /* AVX512_VNNI (with avx512) */
    int f16c;
    int neon;        /* AdvSIMD on aarch64 */
    int asimd_dotprod; /* SDOT/UDOT on aarch64 */
    int bf16_arm;    /* BF16 on aarch64 */
} nu_cpu_features;

/* Detected once; cheap to call again. */
const nu_cpu_features *nu_cpu_detect(void);

#endif
