/* nextuser plan: a capacity plan (cores, shards, servers, memory per node,
 * batch size and wait limit) from the measured figures of `nextuser bench`,
 * printing every assumption and every step of the arithmetic. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "plan/plan.h"
#include "plan/plan_bytes.h"
#include "plan/plan_hosts.h"
#include "plan/plan_served.h"

static const char *CMD = "plan";

static void help(void)
{
    printf(
        "usage: nextuser plan (--results FILE | --served FILE | both) --items-per-sec X --users U\n"
        "                     --k K --p99-ms L [--cores-per-server C] [--nodes-per-server N]\n"
        "                     [--dtype fp32|bf16|int8] [--gen-dtype fp32|bf16]\n"
        "                     [--shape base|large|model] [--headroom F]\n"
        "                     [--hosts [--network-gbps G] [--network-latency-us L] [--memory-gib M]\n"
        "                      [--history N] [--merge-ns T] [--max-hosts N] [--mpi-results FILE]]\n\n"
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
        "--hosts (with --results): the plan over several servers running the sharded retrieval of\n"
        "docs/mpi.md (rank 0 generates and merges, every host scans its rows): per batch the bytes\n"
        "broadcast and gathered, the network time at the assumed figure, scan, merge, p99; the\n"
        "hosts per replica set (the table split H ways) and the replica sets, with headroom.\n"
        "--mpi-results (implies --hosts): compares the model with measured sharded runs (the\n"
        "mpi_results.json of tools/mpi-bench.sh): bytes per batch and communication time.\n\n"
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
        "  --gen-dtype G           generator weight encoding, fp32 or bf16 (default fp32;\n"
        "                          --results only): bf16 plans from the infer and serve rows\n"
        "                          named .../gen:bf16/... (`nextuser bench --gen-dtypes\n"
        "                          fp32,bf16`) and counts the weights' bf16 copy per node\n"
        "  --shape S               model shape measured by bench: base, large, or model (your\n"
        "                          own, `nextuser bench --model`: the default when the results\n"
        "                          are of one; its width and weights are in their context)\n"
        "                          (default base; --results only: the served model's width is\n"
        "                          in its file)\n"
        "  --headroom F            spare share of capacity, in [0, 0.95] (default 0.3: at most\n"
        "                          70%% busy at the planned rate)\n"
        "  --hosts                 plan over several servers (sharded retrieval, docs/mpi.md)\n"
        "  --network-gbps G        link bandwidth assumed, Gbit/s (default 10)\n"
        "  --network-latency-us L  latency of one message assumed, us (default 50)\n"
        "  --memory-gib M          memory of one server, GiB (default 512)\n"
        "  --history N             excluded rows sent per item (retrieve; default 0)\n"
        "  --merge-ns T            rank 0's merge per candidate, ns (default 50, results/mpi.md;\n"
        "                          with --mpi-results: the largest its runs of the dtype measured)\n"
        "  --max-hosts N           hosts per replica set tried (default 1024)\n"
        "  --mpi-results FILE      measured sharded runs to check the model against\n"
        "  --help                  this text\n\n"
        "exit status: 0 a plan, 1 no plan meets the bound, 2 bad usage, an unreadable file or one\n"
        "lacking what the plan needs (the message names it and the command that writes it),\n"
        "or a bound or user count the measured figures do not cover (the message says what to\n"
        "measure); with --mpi-results, 1 also when a predicted byte count differs from the measured.\n",
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

    printf("nextuser plan: %g new items/s, %.0f users, K %zu, p99 <= %g ms; shape %s, %s table,\n"
           "%s generator; servers of %d cores in %d NUMA node(s); headroom %.0f%%\n",
           X, q->users, q->k, q->p99_ms, q->shape, q->dtype, q->gen_dtype, q->cores_per_server,
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
    snprintf(how, sizeof how, "%.0f users x d %.0f x 4 B / %d (A7)", q->users, nu_plan_dim(q),
             q->nodes_per_server);
    print_bytes("user embeddings", p->user_emb_node_bytes, how);
    double packed = nu_plan_packed_bytes(q);
    if (packed > 0)
        snprintf(how, sizeof how, "%.0f floats x 4 B + %.0f B packed for the %s generator, one "
                 "copy per node", (p->weights_node_bytes - packed) / 4, packed, q->gen_dtype);
    else
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
               "     %s\n",
               warned++ ? "" : "\nWarnings:\n", m->retrieve_users, m->serve_users, q->users,
               q->model_d > 0 ? "bench a model of that many users (its own table is what was scanned)"
                              : "run bench with --users 1M --serve-users 1M (the full run does)");
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

/* --hosts: the plan over several servers, every figure and step printed. */
static void print_hosts(const nu_plan_request *q, const nu_plan_measured *m, const nu_plan *p,
                        const nu_plan_hosts_request *hq, const char *merge_from,
                        const nu_plan_hosts *h)
{
    const nu_plan_hosts_eval *c = &h->all[h->chosen];
    char e[200];
    printf("\nOver several servers (--hosts: the sharded retrieval of docs/mpi.md):\n");
    printf("Assumptions:\n"
           "  H1 The network: %g Gbit/s per link and %g us per message (--network-gbps,\n"
           "     --network-latency-us: ASSUMED, not measured; check with --mpi-results).\n"
           "  H2 Binomial trees, as OpenMPI's for few ranks: ceil(log2 H) levels; the broadcast\n"
           "     sends the whole message at each level; the gather brings the H - 1 other ranks'\n"
           "     candidates through rank 0's link (its bandwidth bounds it), one latency per level.\n"
           "  H3 A replica set of H hosts runs one batch at a time, as `mpirun nextuser search`\n"
           "     does: generator (rank 0), broadcast, scan (every host), gather, merge (rank 0) in\n"
           "     turn, nothing overlapped: its items/s = B / batch time.\n"
           "  H4 The scan splits evenly: each host scans U / H rows on its C cores, at the\n"
           "     one-server scoring time of the plan above / H; the generator is the plan's.\n"
           "  H5 Rank 0 merges on one core: %g ns per candidate (%s), B x H x P candidates.\n"
           "  H6 Each host holds its rows (U / H x %.0f B) and C threads' scratch; rank 0 also the\n"
           "     model (weights and every user's embedding, %.3f GiB); a server has %g GiB.\n"
           "  H7 Queries are %.0f wide (%s); %g excluded rows\n"
           "     per item are sent%s.\n",
           hq->gbps, hq->latency_us, hq->merge_ns, merge_from, h->row_bytes,
           h->model_bytes / (1024.0 * 1024.0 * 1024.0), hq->memory_gib, h->qd,
           q->model_d > 0 ? "the model's query width" : "d: bench shapes have no prior columns",
           hq->history,
           hq->history > 0 ? " (retrieve)" : " (none: search-like batches)");

    printf("\nBytes per batch (plan/plan_bytes.h, the formulas of docs/mpi.md and the MPI code):\n");
    snprintf(e, sizeof e, "P = %s", strcmp(q->dtype, "fp32") ? "max(4K, 256)" : "K");
    step("pool", e, h->pool, "candidates per query and rank");
    if (hq->history > 0)
        snprintf(e, sizeof e, "%d + 4 x %g x %g + 4 x (%g + %g x %g)", NU_MPI_HEADER_BYTES, h->B,
                 h->qd, h->B, h->B, hq->history);
    else
        snprintf(e, sizeof e, "%d + 4 x B x q = %d + 4 x %g x %g", NU_MPI_HEADER_BYTES,
                 NU_MPI_HEADER_BYTES, h->B, h->qd);
    step("broadcast", e, h->bcast_bytes, "bytes to each rank");
    snprintf(e, sizeof e, "%d + 4 x B x P x a = %d + 4 x %g x %g x %g", NU_MPI_STATUS_BYTES,
             NU_MPI_STATUS_BYTES, h->B, h->pool, h->arrays);
    step("gathered", e, h->gather_bytes, "bytes from each rank");
    printf("  (a = %g: id and score%s; across the network a batch moves (H - 1) x their sum)\n",
           h->arrays, h->arrays == 3 ? ", plus the exact fp32 score" : "");

    printf("\nPer batch of %g items at H hosts (ms; levels = ceil(log2 H)):\n", h->B);
    printf("  bcast  = levels x (L + bytes x 8 / G)    gather = levels x L + (H - 1) x bytes x 8 / G\n"
           "  scan   = %.4f / H (H4)    merge = B x H x P x %g ns    batch = gen + bcast + scan +"
           " gather + merge\n"
           "  p99    = wait + 2 x batch (A6)    set    = B / batch    sets = ceil(X / ((1 - h) x"
           " set))\n",
           p->batch_score1_ms, hq->merge_ns);
    printf("  %5s %6s %9s %9s %9s %9s %9s %9s %9s %10s %6s %8s %9s\n", "H", "levels", "gen",
           "bcast", "scan", "gather", "merge", "batch", "p99", "set it/s", "sets", "servers",
           "rank0 GiB");
    size_t start = h->chosen >= 8 ? h->chosen - 6 : 0;
    size_t end = start + NU_PLAN_HOSTS_SHOWN < h->n ? start + NU_PLAN_HOSTS_SHOWN : h->n;
    for (size_t i = start; i < end; i++) {
        const nu_plan_hosts_eval *v = &h->all[i];
        printf("  %5zu %6.0f %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f %9.3f %10.1f %6zu %8zu %9.2f%s%s%s\n",
               v->H, v->steps, v->gen_ms, v->bcast_ms, v->scan_ms, v->gather_ms, v->merge_ms,
               v->batch_ms, v->p99_ms, v->set_ips, v->sets, v->servers,
               v->host0_bytes / (1024.0 * 1024.0 * 1024.0), v->fits ? "" : " no room",
               v->meets ? "" : " > bound", i == h->chosen ? "  <- chosen" : "");
    }

    printf("\nHosts per replica set:\n");
    snprintf(e, sizeof e, "ceil(U x %.0f B / (%g GiB - model - scratch))", h->row_bytes,
             hq->memory_gib);
    step("memory", e, (double)h->h_mem, "hosts at least");
    snprintf(e, sizeof e, "fewest H with p99 <= %g ms", q->p99_ms);
    step("latency", e, (double)h->h_lat, "hosts at least");
    printf("  rule        among the H that fit and meet the bound (up to %zu), the fewest servers\n"
           "              (sets x H), ties to fewer hosts: more hosts shorten the scan only, not\n"
           "              the generator, the network or the merge (a bigger set needs fewer sets\n"
           "              only while the scan dominates); H = %zu\n",
           h->n, c->H);
    snprintf(e, sizeof e, "%g / %.4f x 1000", h->B, c->batch_ms);
    step("set", e, c->set_ips, "items/s per replica set");
    snprintf(e, sizeof e, "ceil(%g / ((1 - %.2f) x %.1f))", q->items_per_sec, q->headroom,
             c->set_ips);
    step("sets", e, (double)c->sets, "replica sets");
    snprintf(e, sizeof e, "%zu x %zu", c->sets, c->H);
    step("servers", e, (double)c->servers, "");
    snprintf(e, sizeof e, "%g + 2 x %.4f", m->wait_ms, c->batch_ms);
    step("p99", e, c->p99_ms, "ms (estimate)");
    snprintf(e, sizeof e, "%.0f rows x %.0f B + scratch + model", c->rows, h->row_bytes);
    step("rank 0", e, c->host0_bytes / (1024.0 * 1024.0 * 1024.0), "GiB (other hosts: less the model)");
    printf("\nPlan (hosts): %zu server(s) = %zu replica set(s) x %zu host(s), %d cores each; batch %g "
           "items, %.4f ms per batch (network %.4f ms at %g Gbit/s, %g us), p99 about %.3f ms; "
           "%.1f items/s per set; %g + %g bytes per batch and rank\n",
           c->servers, c->sets, c->H, q->cores_per_server, h->B, c->batch_ms, c->comm_ms, hq->gbps,
           hq->latency_us, c->p99_ms, c->set_ips, h->bcast_bytes, h->gather_bytes);
}

/* --mpi-results: the model's bytes and network time against measured runs.
 * Returns the number of runs whose bytes differ. */
static int print_mpi_check(const nu_plan_mpi_results *r, const nu_plan_hosts_request *hq,
                           const char *path)
{
    double G = r->loop_gbps > 0 ? r->loop_gbps : hq->gbps;
    double L = r->loop_gbps > 0 ? r->loop_latency_us : hq->latency_us;
    int bad = 0;
    printf("\nChecked against measured sharded runs (%s):\n", path);
    if (r->loop_gbps > 0)
        printf("  network: the loopback as measured, %g Gbit/s and %g us per message (%s)\n", G, L,
               r->how[0] ? r->how : "no method recorded");
    else
        printf("  network: no loopback figure in the file: the --network figures, %g Gbit/s and\n"
               "  %g us (ASSUMED)\n", G, L);
    printf("  bytes per batch: predicted with n = queries / batches (a short last batch averaged),\n"
           "  the exclusions as recorded; they must equal the measured exactly.\n"
           "  comm: predicted batches x (bcast + gather) at R ranks; measured = seconds inside MPI\n"
           "  calls, min..max over ranks (waits for the slowest rank included: >= the transfer).\n");
    printf("  %-8s %-5s %2s %5s %4s %5s %4s | %10s %10s | %10s %10s | %5s | %9s %17s | %8s\n",
           "command", "dtype", "R", "B", "k", "P", "q", "bcast pred", "measured", "gather pred",
           "measured", "bytes", "comm pred", "measured (s)", "merge ns");
    for (size_t i = 0; i < r->count; i++) {
        const nu_plan_mpi_run *u = &r->runs[i];
        double n = u->queries / u->batches;
        double arrays = (double)nu_plan_candidate_arrays(strcmp(u->dtype, "fp32") == 0);
        double pb = nu_plan_bcast_bytes(n, u->qd, u->history_rows > 0,
                                        u->history_rows / u->batches);
        double pg = nu_plan_gather_bytes(n, u->pool, arrays);
        int same = llround(pb) == llround(u->bcast_bytes) && llround(pg) == llround(u->gather_bytes);
        bad += !same;
        double bms, gms;
        nu_plan_hosts_comm(u->ranks, pb, pg, G, L, &bms, &gms);
        double merge_ns = u->ranks > 1 ? u->merge_s / (u->queries * u->ranks * u->pool) * 1e9 : 0;
        char meas[40];
        snprintf(meas, sizeof meas, "%.4f..%.4f", u->comm_min_s, u->comm_max_s);
        printf("  %-8s %-5s %2d %5.0f %4.0f %5.0f %4.0f | %10.0f %10.0f | %10.0f %10.0f | %5s | "
               "%9.5f %17s | %8.1f\n",
               u->command, u->dtype, u->ranks, u->batch, u->k, u->pool, u->qd, pb, u->bcast_bytes,
               pg, u->gather_bytes, same ? "same" : "DIFF", u->batches * (bms + gms) * 1e-3, meas,
               merge_ns);
    }
    if (bad)
        printf("  %d run(s) moved other bytes than the formulas say: the model or the code is wrong\n",
               bad);
    return bad;
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
    strcpy(q.gen_dtype, "fp32");
    const char *results = NULL, *served = NULL, *mpi_results = NULL;
    int hosts = 0, have_merge = 0, have_shape = 0;
    nu_plan_hosts_request hq = {.gbps = 10, .latency_us = 50, .memory_gib = 512, .merge_ns = 50,
                                .max_hosts = 1024};
    int have_x = 0, have_u = 0, have_k = 0, have_l = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        uint64_t u64;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            return NU_EXIT_OK;
        }
        if (strcmp(a, "--hosts") == 0) {
            hosts = 1;
            continue;
        }
        if (!(v = nu_arg_value(CMD, argc, argv, &i)))
            return NU_EXIT_USAGE;
        if (strcmp(a, "--results") == 0) {
            results = v;
        } else if (strcmp(a, "--served") == 0) {
            served = v;
        } else if (strcmp(a, "--mpi-results") == 0) {
            mpi_results = v;
            hosts = 1;
        } else if (strcmp(a, "--network-gbps") == 0) {
            if (!nu_arg_double(CMD, a, v, 1e-6, 1e6, &hq.gbps))
                return NU_EXIT_USAGE;
        } else if (strcmp(a, "--network-latency-us") == 0) {
            if (!nu_arg_double(CMD, a, v, 0, 1e9, &hq.latency_us))
                return NU_EXIT_USAGE;
        } else if (strcmp(a, "--memory-gib") == 0) {
            if (!nu_arg_double(CMD, a, v, 1e-3, 1e9, &hq.memory_gib))
                return NU_EXIT_USAGE;
        } else if (strcmp(a, "--history") == 0) {
            if (!nu_arg_double(CMD, a, v, 0, 1e9, &hq.history))
                return NU_EXIT_USAGE;
        } else if (strcmp(a, "--merge-ns") == 0) {
            if (!nu_arg_double(CMD, a, v, 0, 1e9, &hq.merge_ns))
                return NU_EXIT_USAGE;
            have_merge = 1;
        } else if (strcmp(a, "--max-hosts") == 0) {
            if (!nu_arg_u64(CMD, a, v, 1, 1 << 20, &u64))
                return NU_EXIT_USAGE;
            hq.max_hosts = (size_t)u64;
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
        } else if (strcmp(a, "--gen-dtype") == 0) {
            if (strcmp(v, "fp32") && strcmp(v, "bf16"))
                return nu_cli_usage_error(CMD, "--gen-dtype: \"%s\" is not fp32 or bf16", v);
            snprintf(q.gen_dtype, sizeof q.gen_dtype, "%s", v);
        } else if (strcmp(a, "--shape") == 0) {
            if (!nu_plan_shape_dim(v) && strcmp(v, "model"))
                return nu_cli_usage_error(CMD, "--shape: \"%s\" is not base, large or model", v);
            snprintf(q.shape, sizeof q.shape, "%s", v);
            have_shape = 1;
        } else {
            return nu_cli_usage_error(CMD, "unknown option '%s'", a);
        }
    }
    if ((!results && !served) || !have_x || !have_u || !have_k || !have_l)
        return nu_cli_usage_error(CMD, "--results or --served (or both), --items-per-sec, --users, "
                                       "--k and --p99-ms are required");
    if (strcmp(q.gen_dtype, "fp32") && !results)
        return nu_cli_usage_error(CMD, "--gen-dtype needs --results (the served figures are of "
                                       "whatever generator the service ran)");
    if (hosts && !results)
        return nu_cli_usage_error(CMD, "--hosts and --mpi-results need --results (the per-core "
                                       "figures of `nextuser bench`)");
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
    nu_plan_hosts h = {0};
    nu_plan_mpi_results mr = {0};
    char merge_from[300] = "assumed: 68-94 ns measured in results/mpi.md, rounded up";
    if (results) {
        if (nu_plan_results_load(results, &r) != NU_OK) {
            fprintf(stderr, "nextuser plan: %s\n", nu_last_error());
            rc = NU_EXIT_USAGE;
            goto done;
        }
        /* Results of the user's own model plan for it unless told otherwise. */
        const char *rshape = nu_plan_results_context(&r, "shape");
        if (!have_shape && rshape && strcmp(rshape, "model") == 0)
            strcpy(q.shape, "model");
        if (strcmp(q.shape, "model") == 0 && nu_plan_user_model(&r, &q) != NU_OK) {
            fprintf(stderr, "nextuser plan: %s: %s\n", results, nu_last_error());
            rc = NU_EXIT_USAGE;
            goto done;
        }
        if (nu_plan_measure(&r, q.shape, q.dtype, q.gen_dtype, &m) != NU_OK) {
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
    if (mpi_results) {
        if (nu_plan_mpi_results_load(mpi_results, &mr) != NU_OK) {
            fprintf(stderr, "nextuser plan: %s\n", nu_last_error());
            rc = NU_EXIT_USAGE;
            goto done;
        }
        if (!have_merge) {
            double worst = 0;
            for (size_t i = 0; i < mr.count; i++) {
                const nu_plan_mpi_run *u = &mr.runs[i];
                if (u->ranks > 1 && strcmp(u->dtype, q.dtype) == 0)
                    worst = fmax(worst, u->merge_s / (u->queries * u->ranks * u->pool) * 1e9);
            }
            if (worst > 0) {
                hq.merge_ns = worst;
                snprintf(merge_from, sizeof merge_from, "the largest of the %s runs in %.200s", q.dtype,
                         mpi_results);
            }
        }
    }
    if (results && hosts) {
        if (have_merge)
            snprintf(merge_from, sizeof merge_from, "--merge-ns");
        if (nu_plan_hosts_compute(&q, &m, &p, &hq, &h) != NU_OK) {
            fprintf(stderr, "nextuser plan: no plan over hosts: %s\n", nu_last_error());
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
    if (results && hosts)
        print_hosts(&q, &m, &p, &hq, merge_from, &h);
    if (mpi_results && print_mpi_check(&mr, &hq, mpi_results))
        rc = NU_EXIT_FAIL;
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
    nu_plan_hosts_free(&h);
    nu_plan_mpi_results_free(&mr);
    return rc;
}
