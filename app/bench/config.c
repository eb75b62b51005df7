/* The defaults of a quick (CI, about a minute on 2 cores) and a full run,
 * and which of the asked generator encodings can run here. */
#include <string.h>

#include "bench/bench.h"

void nu_bench_config_defaults(nu_bench_config *c, int quick)
{
    memset(c, 0, sizeof *c);
    c->run_infer = c->run_retrieve = c->run_train = c->run_serve = 1;
    c->shape = "base";
    c->quick = quick;
    c->threads[0] = 1;
    c->threads[1] = 2;
    c->n_threads = 2;
    c->reps = quick ? 3 : 5;
    c->rep_seconds = quick ? 0.2 : 0.4;
    static const size_t infer_b[] = {1, 64, 1024};
    c->n_infer_batches = quick ? 2 : 3;
    memcpy(c->infer_batches, infer_b, sizeof infer_b);
    c->gen_dtypes[0] = NU_GEN_FP32;
    c->n_gen_dtypes = 1;
    c->users[0] = 100000;
    c->users[1] = 1000000;
    c->n_users = quick ? 1 : 2;
    static const size_t retr_b[] = {1, 16, 256};
    c->n_retrieve_batches = 3;
    memcpy(c->retrieve_batches, retr_b, sizeof retr_b);
    c->dtypes[0] = NU_TABLE_F32;
    c->dtypes[1] = NU_TABLE_BF16;
    c->dtypes[2] = NU_TABLE_I8;
    c->n_dtypes = 3;
    c->k = 100;
    c->train_batch = 256;
    c->train_negatives = 1024;
    c->train_steps = quick ? 3 : 8;
    c->serve_users = quick ? 100000 : 1000000;
    c->serve_dtypes[0] = NU_TABLE_F32;
    c->n_serve_dtypes = 1;
    c->serve_batch = 64;
    c->max_batch = 32;
    c->max_wait_ms = 5;
    c->p99_ms = 50;
    c->rate_seconds = quick ? 0.5 : 2.0;
    c->seed = 1;
    c->read_bytes = (size_t)(quick ? 256 : 512) << 20;
}

int nu_bench_gen_runs(nu_gen_encoding gen, const char *suite)
{
    if (nu_gen_encoding_effective(gen) == gen)
        return 1;
    fprintf(stderr, "nextuser bench: SKIP %s gen:%s: no AVX512_BF16 at this kernel level (it would "
                    "run fp32)\n", suite, nu_gen_encoding_name(gen));
    return 0;
}
