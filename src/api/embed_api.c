/* The public API's one-shot embedding (nu_embed) over the runner, and the
 * machine's topology. */
#include <string.h>

#include "api/handles.h"
#include "error.h"
#include "model/feature_prior.h"
#include "runtime/runner.h"
#include "runtime/topology.h"

nu_status nu_topology_read(nu_topology_info *out)
{
    if (!out || out->size < sizeof(size_t))
        return nu_error(NU_ERR_INVALID_ARG, "nu_topology_read: set out->size to "
                        "sizeof(nu_topology_info) first");
    nu_topology_summary t;
    nu_status s = nu_topology_summarize(&t);
    if (s != NU_OK)
        return s;
    nu_topology_info full;
    memset(&full, 0, sizeof full);
    full.size = out->size < sizeof full ? out->size : sizeof full;
    full.packages = t.packages;
    full.numa_nodes = t.numa_nodes;
    full.cores = t.cores;
    full.pus = t.pus;
    _Static_assert(sizeof full.synthetic >= sizeof t.synthetic, "synthetic fits");
    memcpy(full.synthetic, t.synthetic, sizeof t.synthetic);
    memcpy(out, &full, full.size);
    return NU_OK;
}

void nu_embed_options_init_sized(nu_embed_options *o, size_t size)
{
    if (!o || size < sizeof(size_t))
        return;
    nu_embed_options d;
    memset(&d, 0, sizeof d);
    d.size = size < sizeof d ? size : sizeof d;
    d.kind = NU_EMBED_NEXT;
    d.batch = 64;
    d.gen_dtype = NU_DTYPE_FP32;
    memcpy(o, &d, d.size);
}

/* A caller's options, however old its struct: fields past its size keep
 * their defaults. */
static nu_status read_options(const nu_embed_options *given, nu_embed_options *full)
{
    nu_embed_options_init_sized(full, sizeof *full);
    if (given) {
        if (given->size < sizeof(size_t) || given->size > sizeof *full)
            return nu_error(NU_ERR_INVALID_ARG, "nu_embed_options.size is %zu: call "
                            "nu_embed_options_init first", given->size);
        memcpy(full, given, given->size);
    }
    if (full->kind != NU_EMBED_NEXT && full->kind != NU_EMBED_QUERY &&
        full->kind != NU_EMBED_ALL_POSITIONS)
        return nu_error(NU_ERR_INVALID_ARG, "unknown embedding kind %d", (int)full->kind);
    if (full->batch == 0 || full->batch > (1u << 20))
        return nu_error(NU_ERR_INVALID_ARG, "batch must be in 1..1048576, got %zu", full->batch);
    nu_gen_encoding gen;
    return nu_api_gen_encoding(full->gen_dtype, "nu_embed_options.gen_dtype", &gen);
}

static nu_forward_mode mode_of(nu_embed_kind kind)
{
    return kind == NU_EMBED_ALL_POSITIONS ? NU_FORWARD_TRAIN : NU_FORWARD_INFER;
}

size_t nu_embed_rows(const nu_batch *b, nu_embed_kind kind)
{
    return b ? nu_run_output_rows(&b->items, mode_of(kind)) : 0;
}

size_t nu_embed_width(const nu_model *m, nu_embed_kind kind)
{
    if (!m)
        return 0;
    return kind == NU_EMBED_QUERY ? nu_model_query_width(m) : m->cfg.d;
}

nu_status nu_embed(const nu_model *m, const nu_batch *b, const nu_embed_options *o, float *out,
                   nu_run_report *report)
{
    if (!m || !b)
        return nu_error(NU_ERR_INVALID_ARG, "nu_embed: model and batch are required");
    if (b->model != m)
        return nu_error(NU_ERR_INVALID_ARG, "nu_embed: the batch was made for another model");
    if (report && report->size < sizeof(size_t))
        return nu_error(NU_ERR_INVALID_ARG, "nu_embed: set report->size to sizeof(nu_run_report)");
    nu_embed_options eo;
    nu_status s = read_options(o, &eo);
    if (s != NU_OK)
        return s;
    size_t rows = nu_run_output_rows(&b->items, mode_of(eo.kind));
    if (rows && !out)
        return nu_error(NU_ERR_INVALID_ARG, "nu_embed: out is required");
    nu_run_options ro = {.threads = eo.threads, .pin = eo.pin != 0, .batch_items = eo.batch,
                         .mode = mode_of(eo.kind), .progress = eo.progress,
                         .progress_ctx = eo.progress_ctx,
                         .gen = eo.gen_dtype == NU_DTYPE_BF16 ? NU_GEN_BF16 : NU_GEN_FP32};
    nu_run_stats st;
    memset(&st, 0, sizeof st);
    s = nu_run_forward(m, &b->items, &ro, out, &st);
    if (s == NU_OK && eo.kind == NU_EMBED_QUERY)
        nu_model_query_tails(m, &b->items, 0, out, rows);
    if (s == NU_OK && report) {
        nu_run_report full = {.threads = st.threads, .nodes = st.nodes, .seconds = st.seconds,
                              .gen_dtype = nu_api_dtype_of(st.gen)};
        full.size = report->size < sizeof full ? report->size : sizeof full;
        memcpy(report, &full, full.size);
    }
    nu_run_stats_free(&st);
    return s;
}
