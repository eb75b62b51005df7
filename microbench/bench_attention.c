/* Attention benchmarks: attention_fwd and attention_bwd per ISA on the
 * model's shapes (see kernels.h for the contract):
 *   enc_T55_h4   encoder self-attention, k = 4 prefix + n = 50 users + CLS,
 *                causal mask, Q/K/V slices of one fused QKV matrix;
 *   enc_T55_h8   the same with 8 heads (d = 128);
 *   dec_Tq51_Tk55_h4   decoder training cross-attention (n + 1 queries);
 *   cross_Tq1_Tk55_h4  inference: one query over every key;
 *   enc_T300_h4  a long item (k = 4, n = 295).
 * FLOPs counted per visible (query, key) pair and head: forward 4 * dh
 * (S and P.V, one FMA = 2 each), backward 10 * dh (S again, dP, dQ, dK, dV).
 * Bytes: each input read once and each output written once (the minimum;
 * everything fits in L1/L2 so these kernels are compute- or latency-bound). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "gbench.h"

typedef struct att_shape {
    const char *name;
    size_t Tq, Tk, heads, dh;
    int kind; /* 0: encoder causal (fused QKV), 1: decoder cross, 2: all keys */
    size_t k, n;
} att_shape;

static const att_shape shapes[] = {
    {"enc_T55_h4_dh16", 55, 55, 4, 16, 0, 4, 50},
    {"enc_T55_h8_dh16", 55, 55, 8, 16, 0, 4, 50},
    {"dec_Tq51_Tk55_h4_dh16", 51, 55, 4, 16, 1, 4, 50},
    {"cross_Tq1_Tk55_h4_dh16", 1, 55, 4, 16, 2, 4, 50},
    {"enc_T300_h4_dh16", 300, 300, 4, 16, 0, 4, 295},
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

typedef struct att_arg {
    const nu_kernel_table *t;
    const att_shape *s;
    int bwd; /* 0: attention_fwd, 1: attention_bwd, 2: attention_fwd16 */
} att_arg;

static att_arg args[NU_ISA_COUNT * NSHAPES * 3];

/* Every buffer of one benchmark, allocated once outside the timing loop. */
typedef struct att_data {
    float *qkv, *o, *lse, *dqkv, *dout, *scratch;
    uint32_t *kb, *ke;
    size_t ld, ldo, visible;
} att_data;

static float *alloc_floats(size_t n)
{
    float *p = aligned_alloc(64, ((n * sizeof(float)) + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "bench_attention: out of memory\n");
        exit(2);
    }
    return p;
}

static void fill(float *x, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) * (2.0f / 16777216.0f) - 1.0f;
    }
}

static void masks(const att_shape *s, uint32_t *kb, uint32_t *ke)
{
    for (size_t i = 0; i < s->Tq; i++) {
        kb[i] = 0;
        if (s->kind == 0) /* prefix sees [0,k), user u sees [0,k+u+1), CLS all */
            ke[i] = (uint32_t)(i < s->k ? s->k : i < s->k + s->n ? i + 1 : s->Tk);
        else if (s->kind == 1) /* decoder query j (1-based) sees [0,k+j-1), last all */
            ke[i] = (uint32_t)(i < s->n ? s->k + i : s->Tk);
        else
            ke[i] = (uint32_t)s->Tk;
    }
}

static att_data data_new(const att_shape *s)
{
    att_data d;
    size_t hd = s->heads * s->dh, rows = s->Tq > s->Tk ? s->Tq : s->Tk;
    /* One fused Q|K|V matrix, as the model's projection writes it. */
    d.ld = 3 * hd;
    d.ldo = hd;
    d.qkv = alloc_floats(rows * d.ld);
    d.dqkv = alloc_floats(rows * d.ld);
    d.o = alloc_floats(s->Tq * hd);
    d.dout = alloc_floats(s->Tq * hd);
    d.lse = alloc_floats(s->Tq * s->heads);
    d.scratch = alloc_floats(2 * s->Tk);
    d.kb = malloc(s->Tq * sizeof *d.kb);
    d.ke = malloc(s->Tq * sizeof *d.ke);
    fill(d.qkv, rows * d.ld, 1);
    fill(d.dout, s->Tq * hd, 2);
    memset(d.dqkv, 0, rows * d.ld * sizeof(float));
    masks(s, d.kb, d.ke);
    d.visible = 0;
    for (size_t i = 0; i < s->Tq; i++)
        d.visible += d.ke[i] - d.kb[i];
    return d;
}

static void data_free(att_data *d)
{
    free(d->qkv);
    free(d->dqkv);
    free(d->o);
    free(d->dout);
    free(d->lse);
    free(d->scratch);
    free(d->kb);
    free(d->ke);
}

static void run_fwd(const nu_kernel_table *t, const att_shape *s, att_data *d, int fwd16)
{
    size_t hd = s->heads * s->dh;
    (fwd16 ? t->attention_fwd16 : t->attention_fwd)(s->Tq, s->Tk, s->heads, s->dh, d->qkv, d->ld, d->qkv + hd, d->ld,
                     d->qkv + 2 * hd, d->ld, d->kb, d->ke, 1.0f / sqrtf((float)s->dh), d->o,
                     d->ldo, d->lse, d->scratch);
}

static void run_bwd(const nu_kernel_table *t, const att_shape *s, att_data *d)
{
    size_t hd = s->heads * s->dh;
    t->attention_bwd(s->Tq, s->Tk, s->heads, s->dh, d->qkv, d->ld, d->qkv + hd, d->ld,
                     d->qkv + 2 * hd, d->ld, d->kb, d->ke, 1.0f / sqrtf((float)s->dh), d->o,
                     d->ldo, d->lse, d->dout, d->ldo, d->dqkv, d->ld, d->dqkv + hd, d->ld,
                     d->dqkv + 2 * hd, d->ld, d->scratch);
}

static void bench_attention(nu_bench_state *st, void *p)
{
    const att_arg *a = p;
    const att_shape *s = a->s;
    att_data d = data_new(s);
    size_t hd = s->heads * s->dh;
    run_fwd(a->t, s, &d, 0); /* the backward needs O and lse */
    while (nu_bench_keep_running(st)) {
        if (a->bwd == 1)
            run_bwd(a->t, s, &d);
        else
            run_fwd(a->t, s, &d, a->bwd == 2);
        nu_bench_do_not_optimize(d.o);
        nu_bench_do_not_optimize(d.dqkv);
    }
    double pairs = (double)d.visible * (double)hd;
    double in = (double)(s->Tq + 2 * s->Tk) * (double)hd * sizeof(float);
    double out = (double)s->Tq * (double)hd * sizeof(float);
    if (a->bwd == 1) /* + O, dO read; dQ, dK, dV read and written */
        nu_bench_report_work(st, 10.0 * pairs, in + 2 * out + 2 * in);
    else
        nu_bench_report_work(st, 4.0 * pairs, in + out);
    data_free(&d);
}

void nu_bench_register_attention(void)
{
    char name[128];
    size_t k = 0;
    static const char *kind[3] = {"fwd", "bwd", "fwd16"};
    for (int bwd = 0; bwd < 3; bwd++)
        for (int i = 0; i < NU_ISA_COUNT; i++) {
            const nu_kernel_table *t = nu_kernels_for((nu_isa)i);
            if (!t || !t->attention_fwd || !t->attention_bwd || !t->attention_fwd16)
                continue;
            for (size_t si = 0; si < NSHAPES; si++) {
                args[k] = (att_arg){t, &shapes[si], bwd};
                snprintf(name, sizeof name, "attention_%s/%s/%s", kind[bwd], t->name,
                         shapes[si].name);
                nu_bench_register(name, bench_attention, &args[k], 0);
                k++;
            }
        }
}
