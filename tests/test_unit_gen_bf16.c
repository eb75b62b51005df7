/* The bf16 generator encoding through the engine and the public API (label
 * model): an invalid gen_dtype is refused with NU_ERR_INVALID_ARG; an older
 * caller's options (sized before gen_dtype) run fp32; what runs is reported
 * (bf16 where the kernels have bf16 dot products, else fp32, whose output is
 * then bit-identical to an fp32 engine's); bf16 û stays within 1% of fp32's
 * norm (docs/encodings.md) yet differs from it; a batch gives each item the
 * bits it gets alone (row invariance); the one-shot nu_embed gives the
 * engine's bits and reports the encoding; the model's own view never gets
 * packed weights (training reads fp32). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/handles.h"
#include "kernel_test_util.h"

enum { ITEMS = 40, D = 64 };

static nu_model *make_model(void)
{
    nu_model_config c;
    const char *json = "{\"num_users\": 500, \"d\": 64, \"heads\": 4, \"ffn\": 256, \"max_users\": 50,"
                       " \"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\", \"vocab\": 6}]}";
    nu_model *m = NULL;
    if (nu_config_parse(json, "t", &c) != NU_OK || nu_model_create(&c, &m) != NU_OK)
        exit(2);
    nu_model_init_random(m, 11);
    return m;
}

static nu_batch *make_items(const nu_model *m)
{
    nu_batch *b = NULL;
    if (nu_batch_create(m, &b) != NU_OK)
        exit(2);
    nu_rng r = {5};
    for (size_t i = 0; i < ITEMS; i++) {
        char id[16], users[60][12];
        const char *u[60], *fields[1] = {"g"}, *values[1] = {"v2"};
        size_t n = (i * 7) % 55;
        for (size_t j = 0; j < n; j++) {
            snprintf(users[j], sizeof users[j], "u%u", (unsigned)(nu_rng_next(&r) % 500));
            u[j] = users[j];
        }
        snprintf(id, sizeof id, "i%zu", i);
        if (nu_batch_add(b, id, u, n, fields, values, 1) != NU_OK)
            exit(2);
    }
    return b;
}

static nu_status embed_with(const nu_model *m, const nu_table *t, const nu_engine_options *o,
                            const nu_batch *b, size_t per_call, float *out, nu_dtype *ran)
{
    nu_engine *e = NULL;
    nu_session *s = NULL;
    nu_status st = nu_engine_create(m, t, o, &e);
    if (st == NU_OK)
        st = nu_session_create(e, &s);
    for (size_t i = 0; st == NU_OK && i < ITEMS; i += per_call) {
        size_t n = ITEMS - i < per_call ? ITEMS - i : per_call;
        st = nu_session_embed(s, b, i, n, out + i * D);
    }
    if (ran)
        *ran = nu_engine_gen_dtype(e);
    nu_session_free(s);
    nu_engine_free(e);
    return st;
}

int main(void)
{
    nu_model *m = make_model();
    nu_batch *b = make_items(m);
    nu_table *t = NULL;
    NU_CHECK(nu_table_build(m, NU_DTYPE_BIT(NU_DTYPE_FP32), &t) == NU_OK, "table: %s",
             nu_last_error());
    const nu_dtype can = nu_gen_dtype_effective(NU_DTYPE_BF16);
    printf("bf16 generator on this CPU: %s\n", can == NU_DTYPE_BF16 ? "runs" : "falls back to fp32");
    NU_CHECK(nu_gen_dtype_effective(NU_DTYPE_FP32) == NU_DTYPE_FP32 &&
                 nu_gen_dtype_effective(NU_DTYPE_INT8) == NU_DTYPE_INT8,
             "fp32 runs fp32; int8 is no generator encoding");

    /* Invalid values. */
    nu_engine_options o;
    nu_engine_options_init(&o);
    NU_CHECK(o.gen_dtype == NU_DTYPE_FP32, "fp32 by default");
    nu_engine *bad = NULL;
    o.gen_dtype = NU_DTYPE_INT8;
    NU_CHECK(nu_engine_create(m, t, &o, &bad) == NU_ERR_INVALID_ARG &&
                 strstr(nu_last_error(), "gen_dtype") && !bad,
             "gen_dtype int8 refused: %s", nu_last_error());
    o.gen_dtype = (nu_dtype)42;
    NU_CHECK(nu_engine_create(m, t, &o, &bad) == NU_ERR_INVALID_ARG && !bad,
             "gen_dtype 42 refused: %s", nu_last_error());

    /* fp32, bf16 in batches of 16, bf16 one item per call. */
    static float u32[ITEMS * D], u16[ITEMS * D], u16_one[ITEMS * D], u_old[ITEMS * D];
    nu_dtype ran32, ran16;
    o.gen_dtype = NU_DTYPE_FP32;
    o.max_batch = 16;
    o.threads = 1;
    NU_CHECK(embed_with(m, t, &o, b, 16, u32, &ran32) == NU_OK, "fp32 engine: %s", nu_last_error());
    o.gen_dtype = NU_DTYPE_BF16;
    NU_CHECK(embed_with(m, t, &o, b, 16, u16, &ran16) == NU_OK, "bf16 engine: %s", nu_last_error());
    NU_CHECK(embed_with(m, t, &o, b, 1, u16_one, NULL) == NU_OK, "bf16 engine, one item per call");
    NU_CHECK(ran32 == NU_DTYPE_FP32 && ran16 == can, "the engine reports what runs (%s, %s)",
             nu_dtype_name(ran32), nu_dtype_name(ran16));
    NU_CHECK(!memcmp(u16, u16_one, sizeof u16),
             "bf16: an item's bits do not depend on the batch it shares");
    double worst = 0;
    for (size_t i = 0; i < ITEMS; i++) {
        double dn = 0, n = 0;
        for (size_t j = 0; j < D; j++) {
            double x = u32[i * D + j], y = u16[i * D + j];
            dn += (x - y) * (x - y);
            n += x * x;
        }
        worst = fmax(worst, sqrt(dn / n));
    }
    if (can == NU_DTYPE_BF16) {
        printf("bf16 vs fp32: max ||du|| / ||u|| = %.5f\n", worst);
        NU_CHECK(worst <= 0.01 && worst > 0, "bf16 within 1%% of fp32's norm and not fp32 (%.5f)",
                 worst);
    } else {
        printf("SKIP bf16 accuracy: no AVX512_BF16 here\n");
        NU_CHECK(!memcmp(u32, u16, sizeof u32), "the fallback gives fp32's bits");
    }

    /* An older caller: its struct ends before gen_dtype, so fp32 runs. */
    nu_engine_options old;
    memset(&old, 0, sizeof old);
    nu_engine_options_init_sized(&old, offsetof(nu_engine_options, gen_dtype));
    old.gen_dtype = (nu_dtype)42; /* past its size: never read */
    old.max_batch = 16;
    old.threads = 1;
    NU_CHECK(embed_with(m, t, &old, b, 16, u_old, &ran32) == NU_OK && ran32 == NU_DTYPE_FP32 &&
                 !memcmp(u_old, u32, sizeof u32),
             "options sized before gen_dtype run fp32: %s", nu_last_error());

    /* The one-shot embedding: the engine's bits, and the report. */
    static float one[ITEMS * D];
    nu_embed_options eo;
    nu_embed_options_init(&eo);
    eo.threads = 1;
    eo.gen_dtype = NU_DTYPE_BF16;
    nu_run_report rep = {.size = sizeof rep};
    NU_CHECK(nu_embed(m, b, &eo, one, &rep) == NU_OK && rep.gen_dtype == can &&
                 !memcmp(one, u16, sizeof one),
             "nu_embed bf16 = the engine's bits, reported %s: %s", nu_dtype_name(rep.gen_dtype),
             nu_last_error());
    eo.gen_dtype = NU_DTYPE_INT8;
    NU_CHECK(nu_embed(m, b, &eo, one, &rep) == NU_ERR_INVALID_ARG, "nu_embed refuses int8");

    /* Training reads the model's own view: never packed. */
    int packed = 0;
    for (size_t l = 0; l < m->cfg.enc_layers; l++)
        packed += m->w.enc[l].qkv.packed != NULL || m->w.enc[l].ffn2.packed != NULL;
    for (size_t l = 0; l < m->cfg.dec_layers; l++)
        packed += m->w.dec[l].kv.packed != NULL || m->w.dec[l].o.packed != NULL;
    NU_CHECK(packed == 0, "the model's own view has no packed weights");

    nu_table_free(t);
    nu_batch_free(b);
    nu_model_free(m);
    return nu_test_finish("unit_gen_bf16");
}
