/* The result file: Google Benchmark's JSON schema (context + benchmarks,
 * one "median" aggregate row per workload, figures as extra numeric keys),
 * so one compare tool reads these and the microbenchmarks alike. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/user_model.h"
#include "dispatch.h"
#include "error.h"
#include "io/atomic_file.h"
#include "model/forward.h"
#include "model/model.h"
#include "model/packed_weights.h"
#include "runtime/cpu_identity.h"

static cJSON *per_thread(const nu_bench_peaks *p, const double *v)
{
    cJSON *o = cJSON_CreateObject();
    char key[16];
    for (int i = 0; o && i < p->n; i++) {
        snprintf(key, sizeof key, "%d", p->threads[i]);
        cJSON_AddNumberToObject(o, key, v[i]);
    }
    return o;
}

/* What a reader needs to know that the figures are of the user's own model,
 * and what `nextuser plan` needs to plan from it (docs/bench.md). */
static void user_context(cJSON *x, const nu_bench_config *c)
{
    const nu_bench_user_model *u = c->user;
    const nu_model *m = u->model;
    const nu_user_table *t = nu_bench_user_table_of(u);
    cJSON_AddStringToObject(x, "model_dir", u->dir);
    cJSON_AddNumberToObject(x, "model_users", (double)m->cfg.num_users);
    cJSON_AddNumberToObject(x, "model_d", (double)m->cfg.d);
    cJSON_AddNumberToObject(x, "model_query_dim", (double)u->query_dim);
    cJSON_AddNumberToObject(x, "model_table_width", (double)t->d);
    cJSON_AddNumberToObject(x, "model_max_users", (double)m->cfg.max_users);
    cJSON_AddNumberToObject(x, "model_parameters", (double)nu_model_num_parameters(m));
    /* Memory the plan counts: the dense weights (all but the user
     * embeddings) and the generator's scratch for a server batch. */
    const nu_param_spec *ue = nu_param_find(&m->layout, "user_emb");
    cJSON_AddNumberToObject(x, "model_weights_bytes",
                            4.0 * (double)(m->layout.total - (ue ? ue->count : 0)));
    /* The copy of the weights each encoding packs per node (plan --gen-dtype). */
    cJSON_AddNumberToObject(x, "model_packed_weights_bytes_fp32",
                            (double)nu_packed_weights_bytes(&m->cfg, NU_GEN_FP32));
    cJSON_AddNumberToObject(x, "model_packed_weights_bytes_bf16",
                            (double)nu_packed_weights_bytes(&m->cfg, NU_GEN_BF16));
    cJSON_AddNumberToObject(x, "model_scratch_bytes",
                            (double)nu_forward_scratch_bytes(&m->cfg, c->max_batch, NU_FORWARD_INFER));
    cJSON_AddStringToObject(x, "model_table",
                            u->table_copied ? "copied" : u->table_from_file ? "mapped" : "built");
    cJSON_AddStringToObject(x, "items_file", u->items_path ? u->items_path : "synthetic");
    cJSON_AddNumberToObject(x, "items", (double)u->items);
    cJSON_AddNumberToObject(x, "items_users_mean", u->users_mean);
    cJSON_AddNumberToObject(x, "items_users_min", (double)u->users_min);
    cJSON_AddNumberToObject(x, "items_users_p50", (double)u->users_p50);
    cJSON_AddNumberToObject(x, "items_users_max", (double)u->users_max);
    cJSON_AddNumberToObject(x, "items_unknown_users", (double)u->unknown_users);
    cJSON_AddNumberToObject(x, "items_unknown_values", (double)u->unknown_values);
}

static cJSON *context(const nu_bench_config *c, const nu_bench_peaks *p, const char *command)
{
    cJSON *x = cJSON_CreateObject();
    char buf[512];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", &tm);
    cJSON_AddStringToObject(x, "date", buf);
    if (gethostname(buf, sizeof buf) != 0)
        snprintf(buf, sizeof buf, "unknown");
    buf[sizeof buf - 1] = 0;
    cJSON_AddStringToObject(x, "host_name", buf);
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    cJSON_AddStringToObject(x, "executable", n > 0 ? buf : "nextuser");
    cJSON_AddNumberToObject(x, "num_cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddNumberToObject(x, "mhz_per_cpu", 0);
    cJSON_AddBoolToObject(x, "cpu_scaling_enabled", 0);
    cJSON_AddItemToObject(x, "caches", cJSON_CreateArray());
    cJSON_AddStringToObject(x, "library_build_type", "release");
    cJSON_AddStringToObject(x, "tool", "nextuser");
    cJSON_AddStringToObject(x, "tool_version", nu_version());
    cJSON_AddStringToObject(x, "isa", nu_isa_active());
    cJSON_AddStringToObject(x, "command", command);
    /* The CPU the figures belong to: the gate compares fractions of peak only
     * between files of the same CPU (tools/bench-compare). */
    nu_cpu_identity id;
    nu_cpu_identity_read(&id);
    cJSON_AddStringToObject(x, "machine", id.model_name);
    cJSON_AddStringToObject(x, "cpu_model_name", id.model_name);
    cJSON_AddStringToObject(x, "cpu_vendor", id.vendor);
    cJSON_AddStringToObject(x, "cpu_family", id.family);
    cJSON_AddStringToObject(x, "cpu_model", id.model);
    cJSON_AddStringToObject(x, "cpu_stepping", id.stepping);
    cJSON_AddStringToObject(x, "cpu_best_isa", nu_isa_name(nu_isa_best()));
    cJSON_AddItemToObject(x, "peak_fma_gflops", per_thread(p, p->fma_gflops));
    cJSON_AddItemToObject(x, "read_gbps", per_thread(p, p->read_gbps));
    cJSON_AddStringToObject(x, "peak_isa", p->fma_isa ? p->fma_isa : "");
    cJSON_AddStringToObject(x, "shape", c->shape);
    cJSON_AddBoolToObject(x, "quick", c->quick);
    cJSON_AddNumberToObject(x, "pool", (double)c->pool);
    if (c->user)
        user_context(x, c);
    return x;
}

nu_status nu_bench_write_json(const char *path, const nu_bench_config *c, const nu_bench_peaks *p,
                              const nu_bench_results *r, const char *command)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateArray();
    if (!root || !arr) {
        cJSON_Delete(root);
        cJSON_Delete(arr);
        return nu_error(NU_ERR_NOMEM, "out of memory writing %s", path);
    }
    cJSON_AddItemToObject(root, "context", context(c, p, command));
    for (size_t i = 0; i < r->n; i++) {
        const nu_bench_result *e = &r->v[i];
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "name", e->name);
        cJSON_AddStringToObject(b, "run_name", e->name);
        cJSON_AddStringToObject(b, "run_type", "aggregate");
        cJSON_AddStringToObject(b, "aggregate_name", "median");
        cJSON_AddStringToObject(b, "aggregate_unit", "time");
        cJSON_AddNumberToObject(b, "repetitions", e->repetitions);
        cJSON_AddNumberToObject(b, "repetition_index", 0);
        cJSON_AddNumberToObject(b, "threads", e->threads);
        cJSON_AddNumberToObject(b, "iterations", (double)e->iterations);
        cJSON_AddNumberToObject(b, "real_time", e->real_time_ms);
        cJSON_AddNumberToObject(b, "cpu_time", e->real_time_ms);
        cJSON_AddStringToObject(b, "time_unit", "ms");
        for (size_t k = 0; k < e->n_counters; k++)
            cJSON_AddNumberToObject(b, e->counters[k].name, e->counters[k].value);
        cJSON_AddItemToArray(arr, b);
    }
    cJSON_AddItemToObject(root, "benchmarks", arr);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return nu_error(NU_ERR_NOMEM, "out of memory writing %s", path);
    nu_atomic_file af;
    nu_status s = nu_atomic_open(path, &af);
    if (s == NU_OK) {
        if (fputs(text, af.fp) < 0 || fputc('\n', af.fp) == EOF) {
            nu_atomic_abort(&af);
            s = nu_error(NU_ERR_IO, "%s: write failed", path);
        } else {
            s = nu_atomic_commit(&af);
        }
    }
    cJSON_free(text);
    return s;
}
