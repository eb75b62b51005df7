/* nextuser serve: the HTTP/1.1 JSON service (app/serve, docs/serve.md). */
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "serve/log.h"
#include "serve/serve.h"

static const char *const serve_help =
    "usage: nextuser serve --model DIR [--listen HOST:PORT] [--admin-listen HOST:PORT]\n"
    "                      [--workers W] [--threads T] [--max-batch B] [--max-wait-us US]\n"
    "                      [--idle-us US] [--idle-threads N] [--queue-items Q]\n"
    "                      [--max-items N] [--k K] [--max-k K] [--dtype fp32|bf16|int8]\n"
    "                      [--table copy|map] [--pool P] [--max-body BYTES]\n"
    "                      [--gen-dtype fp32|bf16]\n"
    "                      [--timeout-s S] [--max-connections N] [--http-threads N]\n"
    "                      [--log-level error|warn|info|debug]\n\n"
    "Serves the model of DIR over HTTP/1.1 with JSON (docs/serve.md):\n"
    "  POST /v1/recommend  {\"items\": [{\"id\", \"features\", \"users\"}, ...], \"k\": K}\n"
    "                      -> each item's top-K users and scores, the model version\n"
    "  POST /v1/embed      {\"items\": [...]} -> each item's next-user vector\n"
    "  GET  /healthz, /readyz, /metrics (Prometheus text format)\n"
    "  POST /admin/reload  {\"model\": \"DIR\"} (optional body), on --admin-listen only\n"
    "Items of concurrent requests are gathered into batches of up to B items: a\n"
    "batch runs once B items wait or the oldest has waited US microseconds.\n"
    "Once listening it prints 'nextuser serve: listening on HOST:PORT (admin\n"
    "HOST:PORT)' on stdout.  SIGHUP reloads DIR (validated first; a model that\n"
    "fails is refused and the old one keeps serving); SIGTERM or SIGINT stop\n"
    "accepting, finish the requests already read and exit 0.\n"
    "Under 'mpirun -np R' it runs sharded: rank 0 serves, every rank scans its\n"
    "rows of DIR/user_table.safetensors; reloads are refused (docs/mpi.md).\n\n"
    "  --model DIR           model directory (from 'nextuser train'); its\n"
    "                        user_table.safetensors is read when it holds --dtype\n"
    "  --table copy|map      scan a private copy of the table in 2 MiB pages\n"
    "                        (faster; the default) or the file's mapping\n"
    "                        (shared page cache, no copy) [copy]\n"
    "  --listen HOST:PORT    API address [127.0.0.1:8080]; port 0 picks a free one\n"
    "  --admin-listen H:P    admin address (/admin/reload) [none: SIGHUP only]\n"
    "  --workers W           batching workers, one engine session each\n"
    "                        [max(1, cores/4)]\n"
    "  --threads T           threads of each batch's engine call [cores/W]\n"
    "  --max-batch B         items per engine call at most [32]\n"
    "  --max-wait-us US      longest the oldest queued item waits for a fuller\n"
    "                        batch, microseconds (0: an idle worker runs what is\n"
    "                        there; batches still form while workers are busy) [0]\n"
    "  --idle-us US          a request that finds the service idle this long\n"
    "                        (nothing queued or running) runs at once on its HTTP\n"
    "                        thread, without the hand-off to a worker and back\n"
    "                        (with --max-wait-us 0 only); 0: always hand off [1000]\n"
    "  --idle-threads N      engine threads of such a request (0: --threads); 1\n"
    "                        spares waking a sleeping thread, which pays where that\n"
    "                        is slow and the table small (results/serve.md) [0]\n"
    "  --queue-items Q       items queued at most; a request that does not fit is\n"
    "                        answered 503 with Retry-After at once [4096]\n"
    "  --max-items N         items per request at most (<= Q) [256]\n"
    "  --k K                 users per item when a request gives no k [100]\n"
    "  --max-k K             largest k a request may ask; the engine ranks this\n"
    "                        many and answers keep the first k [--k]\n"
    "  --dtype D             table encoding: fp32 (exact) [fp32], bf16 or int8\n"
    NU_ARG_GEN_DTYPE_HELP
    "  --pool P              bf16/int8 candidates re-ranked in fp32 [max(4K, 256)]\n"
    "  --max-body BYTES      request body limit; larger: 413 [4194304]\n"
    "  --timeout-s S         idle connection timeout, seconds [30]\n"
    "  --max-connections N   open connections at most [1024]\n"
    "  --http-threads N      HTTP threads (parsing, answers) [1]\n"
    "  --log-level L         error, warn, info (one line per request) or debug [info]\n"
    "Scores are printed with 9 significant digits (\"%.9g\": a float32 read back\n"
    "is the same float; 'nextuser retrieve' prints \"%.7g\").\n";

static int cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int nu_cli_parse_serve(int argc, char **argv, nu_serve_config *out)
{
    static const char *cmd = "serve";
    nu_serve_config c = {.listen = "127.0.0.1:8080",
                         .max_batch = 32,
                         .max_wait_us = 0,
                         .queue_items = 4096,
                         .max_items = 256,
                         .k = 100,
                         .dtype = NU_DTYPE_FP32,
                         .max_body = 4u << 20,
                         .timeout_s = 30,
                         .max_connections = 1024,
                         .http_threads = 1,
                         .idle_us = 1000,
                         .idle_threads = 0,
                         .log_level = SV_LOG_INFO};
    int max_k_set = 0, max_items_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        uint64_t u;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(serve_help, stdout);
            return NU_EXIT_OK;
        }
        if (!(v = nu_arg_value(cmd, argc, argv, &i)))
            return NU_EXIT_USAGE;
        if (!strcmp(a, "--model"))
            c.model_dir = v;
        else if (!strcmp(a, "--listen"))
            c.listen = v;
        else if (!strcmp(a, "--admin-listen"))
            c.admin_listen = v;
        else if (!strcmp(a, "--workers")) {
            if (!nu_arg_int(cmd, a, v, 1, 256, &c.workers))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--threads")) {
            if (!nu_arg_int(cmd, a, v, 1, 4096, &c.threads))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--http-threads")) {
            if (!nu_arg_int(cmd, a, v, 1, 256, &c.http_threads))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--max-batch")) {
            if (!nu_arg_u64(cmd, a, v, 1, 4096, &u))
                return NU_EXIT_USAGE;
            c.max_batch = u;
        } else if (!strcmp(a, "--max-wait-us")) {
            if (!nu_arg_u64(cmd, a, v, 0, 10000000, &u))
                return NU_EXIT_USAGE;
            c.max_wait_us = (unsigned)u;
        } else if (!strcmp(a, "--idle-us")) {
            if (!nu_arg_u64(cmd, a, v, 0, 10000000, &u))
                return NU_EXIT_USAGE;
            c.idle_us = (unsigned)u;
        } else if (!strcmp(a, "--idle-threads")) {
            if (!nu_arg_int(cmd, a, v, 0, 4096, &c.idle_threads))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--queue-items")) {
            if (!nu_arg_u64(cmd, a, v, 1, 1u << 24, &u))
                return NU_EXIT_USAGE;
            c.queue_items = u;
        } else if (!strcmp(a, "--max-items")) {
            if (!nu_arg_u64(cmd, a, v, 1, 1u << 20, &u))
                return NU_EXIT_USAGE;
            c.max_items = u;
            max_items_set = 1;
        } else if (!strcmp(a, "--k")) {
            if (!nu_arg_u64(cmd, a, v, 1, 100000, &u))
                return NU_EXIT_USAGE;
            c.k = u;
        } else if (!strcmp(a, "--max-k")) {
            if (!nu_arg_u64(cmd, a, v, 1, 100000, &u))
                return NU_EXIT_USAGE;
            c.max_k = u;
            max_k_set = 1;
        } else if (!strcmp(a, "--pool")) {
            if (!nu_arg_u64(cmd, a, v, 1, 1000000, &u))
                return NU_EXIT_USAGE;
            c.pool = u;
        } else if (!strcmp(a, "--max-body")) {
            if (!nu_arg_u64(cmd, a, v, 64, 1ull << 32, &u))
                return NU_EXIT_USAGE;
            c.max_body = u;
        } else if (!strcmp(a, "--timeout-s")) {
            if (!nu_arg_u64(cmd, a, v, 1, 86400, &u))
                return NU_EXIT_USAGE;
            c.timeout_s = (unsigned)u;
        } else if (!strcmp(a, "--max-connections")) {
            if (!nu_arg_u64(cmd, a, v, 1, 1000000, &u))
                return NU_EXIT_USAGE;
            c.max_connections = (unsigned)u;
        } else if (!strcmp(a, "--table")) {
            if (strcmp(v, "copy") && strcmp(v, "map"))
                return nu_cli_usage_error(cmd, "--table: \"%s\" is not copy or map", v);
            c.table_map = !strcmp(v, "map");
        } else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "fp32"))
                c.dtype = NU_DTYPE_FP32;
            else if (!strcmp(v, "bf16"))
                c.dtype = NU_DTYPE_BF16;
            else if (!strcmp(v, "int8"))
                c.dtype = NU_DTYPE_INT8;
            else
                return nu_cli_usage_error(cmd, "--dtype: \"%s\" is not fp32, bf16 or int8", v);
        } else if (!strcmp(a, "--gen-dtype")) {
            if (!nu_arg_gen_dtype(cmd, a, v, &c.gen_dtype))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--log-level")) {
            if ((c.log_level = sv_log_level_parse(v)) < 0)
                return nu_cli_usage_error(
                    cmd, "--log-level: \"%s\" is not error, warn, info or debug", v);
        } else
            return nu_cli_usage_error(cmd, "unknown option '%s'", a);
    }
    if (!c.model_dir)
        return nu_cli_usage_error(cmd, "--model is required");
    if (!max_k_set)
        c.max_k = c.k;
    if (c.k > c.max_k)
        return nu_cli_usage_error(cmd, "--k %zu exceeds --max-k %zu", c.k, c.max_k);
    if (!max_items_set && c.max_items > c.queue_items)
        c.max_items = c.queue_items;
    if (c.max_items > c.queue_items)
        return nu_cli_usage_error(cmd,
                                  "--max-items %zu exceeds --queue-items %zu: such a request "
                                  "could never be queued",
                                  c.max_items, c.queue_items);
    *out = c;
    return -1;
}

int nu_cmd_serve(int argc, char **argv)
{
    nu_serve_config c;
    int r = nu_cli_parse_serve(argc, argv, &c);
    if (r >= 0)
        return r;
    int n = cores();
    if (!c.workers)
        c.workers = n / 4 > 1 ? n / 4 : 1;
    if (!c.threads)
        c.threads = n / c.workers > 1 ? n / c.workers : 1;
    return nu_serve_main(&c);
}
