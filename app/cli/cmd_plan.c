/* nextuser plan: a capacity plan (cores, shards, servers, memory per node,
 * batch size and wait limit) from the measured figures of `nextuser bench`,
 * printing every assumption and every step of the arithmetic. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "plan/plan.h"
#include "plan/plan_served.h"

static const char *CMD = "plan";

static void help(void)
{
    printf(
        "usage: nextuser plan (--results FILE | --served FILE | both) --items-per-sec X --users U\n"
        "                     --k K --p99-ms L [--cores-per-server C] [--nodes-per-server N]\n"
        "                     [--dtype fp32|bf16|int8] [--shape base|large] [--headroom F]\n\n"
        "Turns measured figures into a serving plan for X new items per second, each scored\n"
        "against U users for its top K, within a p99 latency bound of L ms.  Every figure used,\n"
        "every assumption and every step of the arithmetic is printed (docs/plan.md).\n\n"
        "--results: a result file of `nextuser bench` (the engine, per core): per-core\n"
        "throughput at the bound, cores, table shards per replica, servers, memory per NUMA\n"
        "node, batch size and wait limit.  It must hold, for the shape and dtype (bench writes\n"
        "them with `--suite all`):\n"
        "  serve/SHAPE/DTYPE/U<u>/server_max/threads:1 and .../offline/threads:1 (and :2 for scaling)\n"
        "  infer/SHAPE/B<b>/threads:1      retrieve/DTYPE/U<u>/B<b>/threads:1\n\n"
        "--served: the figures of `nextuser serve` measured through HTTP: OUTDIR/results.json of\n"
        "tools/load/run_serve_bench.sh (its sweeps \"sweep-nextuser-<users>\"), or one\n"
        "`tools/load/open_loop.py --sweep --service S.json` document.  From the open-loop sweep\n"
        "of the dtype asked (the fewest users >= U, else the most below U, down to U / %g):\n"
        "items/s per nextuser serve process at the p99 bound (scaled by U / measured users when\n"
        "U is larger), then processes, cores and servers with headroom, and memory.\n"
        "With both, both plans are printed and the larger bounds the answer.\n\n"
        "options:\n"
        "  --results FILE          result JSON of `nextuser bench`\n"
        "  --served FILE           served figures (results.json of run_serve_bench.sh, or a sweep)\n"
        "  --items-per-sec X       new items to serve per second (required, > 0)\n"
        "  --users U               users in the table (required, >= 1)\n"
        "  --k K                   users recommended per item (required, 1..100000)\n"
        "  --p99-ms L              p99 latency bound per item from its arrival, ms (required)\n"
        "  --cores-per-server C    cores of one server (default 64)\n"
        "  --nodes-per-server N    NUMA nodes of one server (default 1; C must divide by N)\n"
        "  --dtype D               user table encoding scanned: fp32, bf16 or int8 (default fp32)\n"
        "  --shape S               model shape measured by bench: base or large (default base;\n"
        "                          --results only: the served model's width is in its file)\n"
        "  --headroom F            spare share of capacity, in [0, 0.95] (default 0.3: at most\n"
        "                          70%% busy at the planned rate)\n"
        "  --help                  this text\n\n"
        "exit status: 0 a plan, 1 no plan meets the bound, 2 bad usage, an unreadable file or one\n"
        "lacking what the plan needs (the message names it and the command that writes it),\n"
        "or a bound or user count the measured figures do not cover (the message says what to\n"
        "measure).\n",
        NU_PLAN_SERVED_MAX_SCALE);
}

static void print_bytes(const char *label, double bytes, const char *how)
{
    printf("  %-28s %9.3f GiB   %s\n", label, bytes / (1024.0 * 1024.0 * 1024.0), how);
}

/* One line of arithmetic: what, the expression, and its value. */
static void step(const char *what, const char *expr, double value, const char *unit)
{
    printf("  %-11s %-44s = %.6g%s%s\n", what, expr, value, unit[0] ? " " : "", unit);
}

static void print_plan(const nu_plan_request *q, const nu_plan_measured *m, const nu_plan *p,
                       const nu_plan_results *r, const char *path)
{
    const char *cmd = nu_plan_results_context(r, "command");
    const char *machine = nu_plan_results_context(r, "machine");
    const char *date = nu_plan_results_context(r, "date");
    const char *isa = nu_plan_results_context(r, "isa");
    const double B = (double)m->batch, X = q->items_per_sec;

    printf("nextuser plan: %g new items/s, %.0f users, K %zu, p99 <= %g ms; shape %s, %s table;\n"
           "servers of %d cores in %d NUMA node(s); headroom %.0f%%\n",
           X, q->users, q->k, q->p99_ms, q->shape, q->dtype, q->cores_per_server,
           q->nodes_per_server, q->headroom * 100);
    printf("results: %s (%s, isa %s, %s)\n  measured with: %s\n\n", path,
           machine ? machine : "machine not recorded", isa ? isa : "?", date ? date : "no date",
           cmd ? cmd : "(no command recorded)");

    printf("Measured (one core = threads:1):\n");
    printf("  [m1] %s: max_batch %zu, max_wait %g ms, bound %g ms (p99 %g ms at %g items/s)\n",
           m->server_max, m->batch, m->wait_ms, m->bound_ms, m->p99_at_max_ms, m->max_rate);
    printf("  [m2] %s: %g items/s\n", m->infer, m->infer_ips);
    printf("  [m3] %s: %g queries/s over %.0f users\n", m->retrieve, m->retrieve_qps,
           m->retrieve_users);
    printf("  [m4] %s: %g items/s (generator + scoring over %.0f users)\n", m->offline1,
           m->offline_ips1, m->serve_users);
    if (m->threads_T > 1)
        printf("  [m5] %s: %g items/s\n", m->offlineT, m->offline_ipsT);
    else
        printf("  [m5] no serve offline run above 1 thread: scaling taken as perfect (see A4)\n");

    printf("\nAssumptions:\n"
           "  A1 Batches of %zu items with a wait limit of %g ms, as the server scenario chose\n"
           "     under its bound of %g ms [m1]%s.\n"
           "  A2 Scoring costs the same per user at %.0f users as at the %.0f measured [m3]\n"
           "     (a scan of the table: linear in U)%s; the generator does not depend on U.\n"
           "  A3 Glue between the generator and the scan (normalising, merging, re-rank) costs the\n"
           "     share measured end to end in [m4] over [m2] + [m3], never less than nothing.\n"
           "  A4 Each of the C cores of a server is as efficient as one of the %d threads of [m5].\n"
           "  A5 The share of offline throughput kept under the bound in [m1] vs [m4] holds at\n"
           "     scale when the measured batches fit the plan's batch budget (below); when one\n"
           "     measured batch took longer, that share reflects the small run, not the plan\n"
           "     (whose shards keep each batch in budget): r = 1, the headroom absorbs queueing.\n"
           "  A6 An item waits at most the wait limit for its batch, then at worst for the batch in\n"
           "     service and its own: wait + 2 x batch time <= p99 bound.\n"
           "  A7 Each replica holds the whole table, split in k shards on k servers; a batch is\n"
           "     generated on one of them and scored on all k; every server keeps all user\n"
           "     embeddings for the generator's lookups; weights are copied per NUMA node.\n"
           "  A8 K = %zu changes only the top-K lists (bench measures K 100).\n",
           m->batch, m->wait_ms, m->bound_ms,
           m->bound_ms < q->p99_ms ? " (stricter than asked: the plan is conservative)" : "",
           q->users, m->retrieve_users,
           p->dim_scale != 1 ? ", and with the model width d (bench tables are d 64)" : "",
           m->threads_T, q->k);

    char e[160];
    printf("\nArithmetic (per item on one core):\n");
    snprintf(e, sizeof e, "g = 1 / %g", m->infer_ips);
    step("generator", e, p->gen_s * 1e3, "ms");
    snprintf(e, sizeof e, "s = %s1 / (%g x %.0f)", p->dim_scale != 1 ? "(d / 64) x " : "",
             m->retrieve_qps, m->retrieve_users);
    step("scoring", e, p->score_s_per_user * 1e9, "ns per user");
    snprintf(e, sizeof e, "f = max(1, (1 / %g) / (g + s x %.0f))", m->offline_ips1,
             m->serve_users);
    step("glue", e, p->overhead, "");
    snprintf(e, sizeof e, "   = max(1, %.4f ms / %.4f ms)", p->offline_item_s * 1e3,
             p->predicted_measured * 1e3);
    printf("  %-11s %s\n", "", e);
    snprintf(e, sizeof e, "t = f x (g + s x %.0f)", q->users);
    step("at U users", e, p->item_s * 1e3, "ms of core time");
    snprintf(e, sizeof e, "e = min(1, %g / (%d x %g))", m->offline_ipsT, m->threads_T,
             m->offline_ips1);
    step("scaling", e, p->scaling, "");
    snprintf(e, sizeof e, "min(1, %g / %g)", m->max_rate, m->offline_ips1);
    step("measured", e, p->latency_share_measured, "of offline kept under the bound [m1]");
    snprintf(e, sizeof e, "%g / %g x 1000", B, m->offline_ips1);
    step("its batch", e, p->measured_batch_ms,
         p->latency_share_applies ? "ms <= budget: same regime (A5)"
                                  : "ms > budget: not the plan's regime (A5)");
    snprintf(e, sizeof e, "r = %s", p->latency_share_applies ? "the measured share" : "1");
    step("latency", e, p->latency_share, "");
    step("per core", "P = e x r / t", p->per_core_ips, "items/s at the bound");

    printf("\nShards (A6, A7):\n");
    snprintf(e, sizeof e, "(%g - %g) / 2", q->p99_ms, m->wait_ms);
    step("budget", e, p->budget_ms, "ms per batch");
    snprintf(e, sizeof e, "%g x f x g / (C x e)", B);
    step("generator", e, p->batch_gen_ms, "ms per batch on one server");
    snprintf(e, sizeof e, "%g x f x s x U / (C x e)", B);
    step("scoring", e, p->batch_score1_ms, "ms per batch on one server");
    snprintf(e, sizeof e, "k = ceil(%.3f / (%.3f - %.3f))", p->batch_score1_ms, p->budget_ms,
             p->batch_gen_ms);
    step("shards", e, (double)p->shards_min, "at least, per replica");

    printf("\nThroughput:\n");
    snprintf(e, sizeof e, "X / P = %g / %.4f", X, p->per_core_ips);
    step("cores busy", e, p->cores_busy, "");
    snprintf(e, sizeof e, "ceil(X / ((1 - %.2f) x P))", q->headroom);
    step("cores", e, (double)p->cores_provisioned, "provisioned");
    snprintf(e, sizeof e, "ceil(%zu / %d)", p->cores_provisioned, q->cores_per_server);
    step("servers", e, (double)p->servers_for_throughput, "for throughput");
    snprintf(e, sizeof e, "max(1, floor(%zu / %zu))", p->servers_for_throughput, p->shards_min);
    step("replicas", e, (double)p->replicas, "(each holds the whole table)");
    snprintf(e, sizeof e, "max(%zu, ceil(%zu / %zu))", p->shards_min, p->servers_for_throughput,
             p->replicas);
    step("shards", e, (double)p->shards, "per replica");
    snprintf(e, sizeof e, "%zu x %zu", p->replicas, p->shards);
    step("servers", e, (double)p->servers, "");
    snprintf(e, sizeof e, "generator + scoring / %zu", p->shards);
    step("batch time", e, p->batch_ms, "ms");
    snprintf(e, sizeof e, "%g + 2 x %.3f (<= %g)", m->wait_ms, p->batch_ms, q->p99_ms);
    step("worst wait", e, m->wait_ms + 2 * p->batch_ms, "ms");
    snprintf(e, sizeof e, "X / (servers x C x P)");
    step("busy", e, p->utilisation * 100, "% of the cores at the planned rate");

    printf("\nMemory per NUMA node (%d per server, %.0f threads each):\n", q->nodes_per_server,
           p->threads_per_node);
    char how[160];
    snprintf(how, sizeof how, "%.0f rows (U / shards) x %.0f B (%s%s) / %d", p->rows_per_server,
             p->table_row_bytes, q->dtype,
             strcmp(q->dtype, "fp32") ? " + fp32 rows for the re-rank" : "", q->nodes_per_server);
    print_bytes("user table shard", p->table_node_bytes, how);
    snprintf(how, sizeof how, "%.0f users x d %zu x 4 B / %d (A7)", q->users,
             nu_plan_shape_dim(q->shape), q->nodes_per_server);
    print_bytes("user embeddings", p->user_emb_node_bytes, how);
    snprintf(how, sizeof how, "%.0f floats x 4 B, one copy per node", p->weights_node_bytes / 4);
    print_bytes("model weights", p->weights_node_bytes, how);
    snprintf(how, sizeof how, "%.0f threads x %.0f B (generator batch + top-K lists)",
             p->threads_per_node, p->scratch_thread_bytes);
    print_bytes("thread scratch", p->threads_per_node * p->scratch_thread_bytes, how);
    print_bytes("total", p->total_node_bytes, "per node, before the OS and page cache");

    /* Figures that say more about a busy machine or a small run than about
     * the code: the plan stands, but the reader should know. */
    int warned = 0;
    if (m->threads_T > 1 && p->scaling < 0.6) {
        printf("%s  W1 %d threads kept only %.0f%% of one thread's throughput per thread [m5]: the\n"
               "     machine was probably busy when measured; the plan pays for it in cores (rerun\n"
               "     bench on a quiet machine)\n", warned++ ? "" : "\nWarnings:\n", m->threads_T,
               p->scaling * 100);
    }
    if (m->retrieve_users < 1e6 || m->serve_users < 1e6) {
        printf("%s  W2 scoring measured over %.0f users (serve: %.0f): a table that small may sit in\n"
               "     the last-level cache, while %.0f users stream from memory; for a plan at scale\n"
               "     run bench with --users 1M --serve-users 1M (the full run does)\n",
               warned++ ? "" : "\nWarnings:\n", m->retrieve_users, m->serve_users, q->users);
    }
    if (m->infer_batch != m->batch || m->retrieve_batch != m->batch) {
        printf("%s  W3 no infer/retrieve run at the serving batch of %zu: used B %zu and B %zu, the\n"
               "     largest measured below it (larger batches run faster per item: conservative)\n",
               warned++ ? "" : "\nWarnings:\n", m->batch, m->infer_batch, m->retrieve_batch);
    }

    printf("\nPlan: %zu server(s) = %zu replica(s) x %zu shard(s), %d cores each (%zu cores; %.1f busy"
           " at %g items/s, %zu with %.0f%% headroom); batch %zu items, wait limit %g ms, batch time"
           " %.3f ms; %.3f GiB per NUMA node\n",
           p->servers, p->replicas, p->shards, q->cores_per_server,
           p->servers * (size_t)q->cores_per_server, p->cores_busy, X, p->cores_provisioned,
           q->headroom * 100, m->batch, m->wait_ms, p->batch_ms,
           p->total_node_bytes / (1024.0 * 1024.0 * 1024.0));
}

static double gib(double bytes)
{
    return bytes / (1024.0 * 1024.0 * 1024.0);
}

static void print_served(const nu_plan_request *q, const nu_plan_served_measured *m,
                         const nu_plan_served *p, const char *path)
{
    const nu_plan_served_sweep *w = &m->all[m->chosen];
    const double X = q->items_per_sec;
    char e[200];

    printf("nextuser plan (served): %g new items/s, %.0f users, K %zu, p99 <= %g ms; %s table;\n"
           "servers of %d cores in %d NUMA node(s); headroom %.0f%%\n",
           X, q->users, q->k, q->p99_ms, q->dtype, q->cores_per_server, q->nodes_per_server,
           q->headroom * 100);
    printf("served: %s (%s; %s, %d cores; %s)\n", path, w->key, w->cpu ? w->cpu : "cpu not recorded",
           w->machine_cores, m->date ? m->date : "no date");
    printf("  service: %s\n  sweep:   %s\n\n",
           w->service_command ? w->service_command : "(no command recorded)",
           w->command ? w->command : "(no command recorded)");

    printf("Measured through HTTP (open loop: Poisson arrivals, %d item(s) per request, k %.0f):\n",
           w->items_per_request, w->k);
    char machine[48] = "(the machine's cores not recorded)";
    if (w->machine_cores > 0)
        snprintf(machine, sizeof machine, "of a %d-core machine", w->machine_cores);
    printf("  [s1] %s: nextuser serve over %.0f users, d %.0f, %s table (%s), --threads %d "
           "--workers %d = %d core(s) %s; max batch %d, wait %g us\n",
           w->key, w->users, w->d, w->dtype, w->table ? w->table : "?", w->threads, w->workers,
           m->cores, machine, w->max_batch, w->max_wait_us);
    if (w->max_rate > 0)
        printf("  [s2] the sweep's answer: %g requests/s with p99 <= %g ms (%zu runs)\n",
               w->max_rate, w->bound_ms, w->runs);
    else
        printf("  [s2] the sweep's answer: no rate with p99 <= %g ms (%zu runs)\n", w->bound_ms,
               w->runs);
    printf("  [s3] its run %zu, used: offered %g/s (%g arrivals/s drawn), achieved %g/s; p50 %g, "
           "p99 %g, p99.9 %g ms; no errors\n",
           m->run + 1, m->offered, m->offered_actual, m->achieved, m->p50_ms, m->p99_ms,
           m->p999_ms);
    if (m->light_rate > 0 || m->wrk1_rps > 0 || m->wrk16_ips > 0 || m->engine_ips > 0 ||
        m->capacity_rps > 0) {
        printf("  Also measured in the same run (printed, not used):\n");
        if (m->light_rate > 0)
            printf("       light load, %g requests/s offered: p50 %g ms, p99 %g ms\n", m->light_rate,
                   m->light_p50, m->light_p99);
        if (m->wrk1_rps > 0)
            printf("       wrk closed loop, 1 item/request: %g requests/s (p99 %g ms)\n", m->wrk1_rps,
                   m->wrk1_p99);
        if (m->wrk16_ips > 0)
            printf("       wrk closed loop, 16 items/request: %g items/s (p99 %g ms)\n",
                   m->wrk16_ips, m->wrk16_p99);
        if (m->engine_ips > 0)
            printf("       the engine in-process (nextuser retrieve --batch %.0f): %g items/s\n",
                   m->engine_batch, m->engine_ips);
        if (m->capacity_rps > 0)
            printf("       the load generator's own capacity (GET /healthz): %g requests/s\n",
                   m->capacity_rps);
    }
    for (size_t i = 0; i < m->count; i++)
        if (i != m->chosen)
            printf("  (not used: %s, %.0f users, %s, p99 <= %g ms: %g requests/s)\n",
                   m->all[i].key, m->all[i].users, m->all[i].dtype, m->all[i].bound_ms,
                   m->all[i].max_rate);

    printf("\nAssumptions:\n"
           "  A9  New items come in requests of %d item(s) arriving as a Poisson process, as in\n"
           "      the sweep; the rate a process answers with p99 <= the bound is its capacity.\n"
           "  A10 The run used is the highest achieved rate of the sweep with no errors, >= 0.9 of\n"
           "      its arrivals answered and p99 x sigma <= %g ms (A12)%s.\n"
           "  A11 A server of C cores runs floor(C / c) processes like [s1], each on its own c =\n"
           "      threads x workers cores (at most the machine's) and as fast as [s1] was%s;\n"
           "      they share the server's memory bandwidth (not measured).\n"
           "  A12 %s\n"
           "  A13 The served figures are scaled to at most %gx the users measured (beyond that,\n"
           "      measure instead: the scan leaves the caches, the queue changes).\n"
           "  A14 Each process holds the whole table and its own copy of the model (nextuser\n"
           "      serve does not shard): a process is a replica.\n"
           "  A15 K = %zu; the sweep asked k %.0f per request%s.\n",
           w->items_per_request, q->p99_ms,
           q->p99_ms < w->bound_ms ? " (tighter than the sweep's bound: a run below its answer)"
                                   : "",
           w->machine_cores > 0 && m->cores >= w->machine_cores
               ? "\n      (whose cores also ran its HTTP thread and the load generator: conservative)"
               : "",
           m->rho > 1 ? "The table scan grows with the users: every item's work is taken to grow by\n"
                        "      sigma = U / U_measured (HTTP, JSON and the generator, which do not grow,\n"
                        "      too: conservative), so the same queue runs sigma x slower: the rate / sigma\n"
                        "      at the latencies x sigma."
                      : "No more users than measured: the measured rate and latencies stand\n"
                        "      (a smaller table scans faster: conservative), sigma = 1.",
           NU_PLAN_SERVED_MAX_SCALE, q->k, w->k,
           (double)q->k > w->k ? " (a larger K writes larger answers: not measured, optimistic)"
           : (double)q->k < w->k ? " (a smaller K writes smaller answers: conservative)"
                                 : "");

    printf("\nArithmetic:\n");
    snprintf(e, sizeof e, "rho = %.0f / %.0f", q->users, w->users);
    step("users", e, m->rho, "");
    snprintf(e, sizeof e, "sigma = max(1, %.6g)", m->rho);
    step("time scale", e, m->sigma, "");
    snprintf(e, sizeof e, "p99 x sigma = %g x %.6g (<= %g)", m->p99_ms, m->sigma, q->p99_ms);
    step("latency", e, p->p99_ms, "ms: the p99 at R (A12)");
    snprintf(e, sizeof e, "R = %g x %d / %.6g", m->achieved, w->items_per_request, m->sigma);
    step("per process", e, p->process_ips, "items/s at the bound");
    snprintf(e, sizeof e, "R / c = %.6g / %d", p->process_ips, m->cores);
    step("per core", e, p->per_core_ips, "items/s at the bound");
    snprintf(e, sizeof e, "X / R = %g / %.6g", X, p->process_ips);
    step("busy", e, p->processes_busy, "processes");
    snprintf(e, sizeof e, "ceil(X / ((1 - %.2f) x R))", q->headroom);
    step("processes", e, (double)p->processes, "provisioned (each a replica, A14)");
    snprintf(e, sizeof e, "%zu x %d", p->processes, m->cores);
    step("cores", e, (double)p->cores, "");
    snprintf(e, sizeof e, "floor(%d / %d)", q->cores_per_server, m->cores);
    step("per server", e, (double)p->per_server, "processes (A11)");
    snprintf(e, sizeof e, "ceil(%zu / %zu)", p->processes, p->per_server);
    step("servers", e, (double)p->servers, "");
    snprintf(e, sizeof e, "X / (processes x R)");
    step("busy", e, p->utilisation * 100, "% of the processes at the planned rate");

    if (p->process_bytes > 0) {
        size_t on_one = p->processes < p->per_server ? p->processes : p->per_server;
        char how[160];
        printf("\nMemory (A14; %s table):\n", w->table ? w->table : "?");
        snprintf(how, sizeof how, "%.0f users x %.0f B (%s, d %.0f)%s", q->users,
                 nu_plan_row_bytes(q->dtype, w->d), q->dtype, w->d,
                 w->table && strcmp(w->table, "map") == 0 ? ", the file's mapping, once per server"
                                                          : ", a private copy");
        print_bytes("user table", p->table_bytes, how);
        snprintf(how, sizeof how, "%.0f users x %.0f B + %.0f B of weights", q->users,
                 w->model_bytes_per_user, w->weights_bytes);
        print_bytes("model", p->model_bytes, how);
        print_bytes("per process", p->process_bytes, "before scratch, sockets and the OS");
        snprintf(how, sizeof how, "%zu process(es); %.3f GiB per NUMA node of %d", on_one,
                 gib(p->server_bytes) / q->nodes_per_server, q->nodes_per_server);
        print_bytes("per server", p->server_bytes, how);
    }

    int warned = 0;
    if (m->capacity_rps > 0 && m->achieved * 2 > m->capacity_rps)
        printf("%s  W4 the load generator's own capacity check gave %g requests/s, less than twice\n"
               "     the run's %g/s: the generator (or a busy machine) may have limited the run;\n"
               "     the plan is conservative\n",
               warned++ ? "" : "\nWarnings:\n", m->capacity_rps, m->achieved);
    if (m->rho < 1.0 / NU_PLAN_SERVED_MAX_SCALE)
        printf("%s  W5 measured at %.0f users, %.3gx the %.0f planned: the measured rate is a low\n"
               "     bound (a smaller table scans faster); measure nearer %.0f users\n",
               warned++ ? "" : "\nWarnings:\n", w->users, 1 / m->rho, q->users, q->users);
    if (!m->run_is_sweeps_max)
        printf("%s  W6 the run used is not the sweep's answer (%g/s at p99 <= %g ms): the sweep\n"
               "     bisected for its own bound, so the rate found for %g ms is coarse (low); for\n"
               "     the exact one rerun open_loop.py --sweep --p99-ms %g\n",
               warned++ ? "" : "\nWarnings:\n", w->max_rate, w->bound_ms,
               q->p99_ms / m->sigma, q->p99_ms / m->sigma);
    if (m->cores < w->machine_cores)
        printf("%s  W7 the service used %d of the machine's %d cores; its HTTP thread and the load\n"
               "     generator ran on the others: per core it may look better than it is\n",
               warned++ ? "" : "\nWarnings:\n", m->cores, w->machine_cores);

    printf("\nPlan (served): %zu server(s) of %d cores running %zu nextuser serve process(es) "
           "(--threads %d --workers %d, %d cores each; %zu cores; %.2f busy at %g items/s, %zu with "
           "%.0f%% headroom); %.6g items/s per process at p99 <= %.4g ms",
           p->servers, q->cores_per_server, p->processes, w->threads, w->workers, m->cores,
           p->cores, p->processes_busy, X, p->processes, q->headroom * 100, p->process_ips,
           p->p99_ms);
    if (p->server_bytes > 0)
        printf("; %.3f GiB per server", gib(p->server_bytes));
    printf("\n");
}

/* With --results and --served: the two answers and which one bounds it. */
static void print_both(const nu_plan_request *q, const nu_plan *b, const nu_plan_served *s,
                       const nu_plan_results *r, const nu_plan_served_measured *sm)
{
    const char *machine = nu_plan_results_context(r, "machine");
    const char *date = nu_plan_results_context(r, "date");
    const nu_plan_served_sweep *w = &sm->all[sm->chosen];
    size_t bench_cores = b->servers * (size_t)q->cores_per_server;
    size_t served_cores = s->servers * (size_t)q->cores_per_server;
    int served_bounds = s->servers > b->servers ||
                        (s->servers == b->servers && s->cores >= b->cores_provisioned);
    printf("\nBoth plans (%g items/s, %.0f users, p99 <= %g ms, %d-core servers):\n",
           q->items_per_sec, q->users, q->p99_ms, q->cores_per_server);
    printf("  measured on: bench %s (%s); served %s (%s) (a plan is for one machine type)\n",
           machine ? machine : "?", date ? date : "no date", w->cpu ? w->cpu : "?",
           sm->date ? sm->date : "no date");
    printf("  %-34s %6zu server(s), %7zu cores provisioned (%zu in the servers), %.6g items/s "
           "per core\n", "bench (the engine, per core):", b->servers, b->cores_provisioned,
           bench_cores, b->per_core_ips);
    printf("  %-34s %6zu server(s), %7zu cores provisioned (%zu in the servers), %.6g items/s "
           "per core\n", "served (nextuser serve, HTTP):", s->servers, s->cores, served_cores,
           s->per_core_ips);
    printf("  ratio                              served / bench per-core throughput = %.3g\n",
           s->per_core_ips / b->per_core_ips);
    if (served_bounds)
        printf("Bounded by the served plan: it needs more. It measures what bench leaves out (HTTP,\n"
               "JSON, the hand-off to the batching worker, one whole table per process) on the path\n"
               "that ships; bench's plan is what the engine alone would need.\n");
    else
        printf("Bounded by the bench plan: it needs more. Bench plans from one core up (its thread\n"
               "efficiency, the glue, the linear scan and, past the latency budget, shards that\n"
               "nextuser serve does not have); the served figures measured the whole service on a\n"
               "few cores. The larger is the safe answer; the served one stands where its run's\n"
               "machine is the one planned for.\n");
    printf("Answer: %zu server(s) of %d cores.\n", served_bounds ? s->servers : b->servers,
           q->cores_per_server);
}

int nu_cmd_plan(int argc, char **argv)
{
    nu_plan_request q = {.cores_per_server = 64, .nodes_per_server = 1, .headroom = 0.3};
    strcpy(q.shape, "base");
    strcpy(q.dtype, "fp32");
    const char *results = NULL, *served = NULL;
    int have_x = 0, have_u = 0, have_k = 0, have_l = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        uint64_t u64;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            return NU_EXIT_OK;
        }
        if (!(v = nu_arg_value(CMD, argc, argv, &i)))
            return NU_EXIT_USAGE;
        if (strcmp(a, "--results") == 0) {
            results = v;
        } else if (strcmp(a, "--served") == 0) {
            served = v;
        } else if (strcmp(a, "--items-per-sec") == 0) {
            if (!nu_arg_double(CMD, a, v, 1e-9, 1e12, &q.items_per_sec))
                return NU_EXIT_USAGE;
            have_x = 1;
        } else if (strcmp(a, "--users") == 0) {
            if (!nu_arg_u64(CMD, a, v, 1, UINT64_C(1) << 40, &u64))
                return NU_EXIT_USAGE;
            q.users = (double)u64;
            have_u = 1;
        } else if (strcmp(a, "--k") == 0) {
            if (!nu_arg_u64(CMD, a, v, 1, 100000, &u64))
                return NU_EXIT_USAGE;
            q.k = (size_t)u64;
            have_k = 1;
        } else if (strcmp(a, "--p99-ms") == 0) {
            if (!nu_arg_double(CMD, a, v, 1e-6, 1e9, &q.p99_ms))
                return NU_EXIT_USAGE;
            have_l = 1;
        } else if (strcmp(a, "--cores-per-server") == 0) {
            if (!nu_arg_int(CMD, a, v, 1, 1 << 20, &q.cores_per_server))
                return NU_EXIT_USAGE;
        } else if (strcmp(a, "--nodes-per-server") == 0) {
            if (!nu_arg_int(CMD, a, v, 1, 1024, &q.nodes_per_server))
                return NU_EXIT_USAGE;
        } else if (strcmp(a, "--headroom") == 0) {
            if (!nu_arg_double(CMD, a, v, 0, 0.95, &q.headroom))
                return NU_EXIT_USAGE;
        } else if (strcmp(a, "--dtype") == 0) {
            if (strcmp(v, "fp32") && strcmp(v, "bf16") && strcmp(v, "int8"))
                return nu_cli_usage_error(CMD, "--dtype: \"%s\" is not fp32, bf16 or int8", v);
            snprintf(q.dtype, sizeof q.dtype, "%s", v);
        } else if (strcmp(a, "--shape") == 0) {
            if (!nu_plan_shape_dim(v))
                return nu_cli_usage_error(CMD, "--shape: \"%s\" is not base or large", v);
            snprintf(q.shape, sizeof q.shape, "%s", v);
        } else {
            return nu_cli_usage_error(CMD, "unknown option '%s'", a);
        }
    }
    if ((!results && !served) || !have_x || !have_u || !have_k || !have_l)
        return nu_cli_usage_error(CMD, "--results or --served (or both), --items-per-sec, --users, "
                                       "--k and --p99-ms are required");
    if (q.cores_per_server % q.nodes_per_server)
        return nu_cli_usage_error(CMD, "--cores-per-server %d does not divide into %d nodes",
                                  q.cores_per_server, q.nodes_per_server);

    /* Everything is read and checked before anything is printed: with both
     * files, an error in either is the answer. */
    int rc = NU_EXIT_OK;
    nu_plan_results r = {0};
    nu_plan_measured m = {0};
    nu_plan p = {0};
    nu_plan_served_file sf = {0};
    nu_plan_served_measured sm = {0};
    nu_plan_served sp = {0};
    if (results) {
        if (nu_plan_results_load(results, &r) != NU_OK) {
            fprintf(stderr, "nextuser plan: %s\n", nu_last_error());
            rc = NU_EXIT_USAGE;
            goto done;
        }
        if (nu_plan_measure(&r, q.shape, q.dtype, &m) != NU_OK) {
            fprintf(stderr, "nextuser plan: %s: %s\n", results, nu_last_error());
            rc = NU_EXIT_USAGE;
            goto done;
        }
        if (m.bound_ms > q.p99_ms) {
            fprintf(stderr,
                    "nextuser plan: %s: the server scenario was measured for p99 <= %g ms, looser "
                    "than the %g ms asked; rerun `nextuser bench --suite serve --p99-ms %g --json "
                    "FILE`\n", results, m.bound_ms, q.p99_ms, q.p99_ms);
            rc = NU_EXIT_USAGE;
            goto done;
        }
        if (nu_plan_compute(&q, &m, &p) != NU_OK) {
            fprintf(stderr, "nextuser plan: no plan: %s\n", nu_last_error());
            rc = NU_EXIT_FAIL;
            goto done;
        }
    }
    if (served) {
        if (nu_plan_served_load(served, &sf) != NU_OK) {
            fprintf(stderr, "nextuser plan: %s\n", nu_last_error());
            rc = NU_EXIT_USAGE;
            goto done;
        }
        if (nu_plan_served_measure(&sf, &q, &sm) != NU_OK) {
            fprintf(stderr, "nextuser plan: %s: %s\n", served, nu_last_error());
            rc = NU_EXIT_USAGE;
            goto done;
        }
        if (nu_plan_served_compute(&q, &sm, &sp) != NU_OK) {
            fprintf(stderr, "nextuser plan: no served plan: %s\n", nu_last_error());
            rc = NU_EXIT_FAIL;
            goto done;
        }
    }
    if (results)
        print_plan(&q, &m, &p, &r, results);
    if (results && served)
        printf("\n");
    if (served)
        print_served(&q, &sm, &sp, served);
    if (results && served)
        print_both(&q, &p, &sp, &r, &sm);
done:
    if (results)
        nu_plan_results_free(&r);
    nu_plan_served_free(&sf);
    return rc;
}
