/* nextuser retrieve: generator + scoring end to end for a file of items;
 * nextuser search: top-K users for query vectors (embed's output). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "error.h"
#include "io/atomic_file.h"
#include "progress.h"
#include "retrieve_common.h"
#include "table_residency.h"

/* The engine of retrieve and search.  The CLI owns its process: it pins its
 * threads (a library caller's are never pinned unless it asks). */
static nu_status open_engine(const nu_model *m, nu_table *t, const nu_cli_retrieval_opts *o, size_t B,
                             nu_engine **e, nu_session **ses)
{
    nu_engine_options eo;
    nu_engine_options_init(&eo);
    eo.threads = o->threads;
    eo.max_batch = B;
    eo.k = (size_t)o->k;
    eo.dtype = o->dtype;
    eo.pool = (size_t)o->pool;
    eo.pin = 1;
    eo.gen_dtype = o->gen_dtype;
    nu_status s = nu_engine_create(m, t, &eo, e);
    return s == NU_OK ? nu_session_create(*e, ses) : s;
}

const char *const nu_cli_retrieve_help =
    "usage: nextuser retrieve --model DIR --items ITEMS.jsonl --out TOPK.csv [--k K]\n"
    "                         [--dtype fp32|bf16|int8] [--threads T] [--batch B] [--pool P]\n"
    "                         [--gen-dtype fp32|bf16]\n\n"
    "For each new item of ITEMS.jsonl (the format of 'nextuser embed'), generates\n"
    "the next-user embedding and scores every user of the model by cosine\n"
    "similarity, leaving out the users already in the item's history, and writes\n"
    "the top K (default 100) as CSV lines item,rank,user,score (with a header).\n\n"
    "  --dtype   user table encoding scanned: fp32 (exact, default), bf16 or int8;\n"
    "            bf16/int8 scan a pool of candidates (--pool, default max(4K, 256))\n"
    "            and re-rank it in exact fp32.  DIR/user_table.safetensors (from\n"
    "            'nextuser table') is memory-mapped when present, else the table\n"
    "            is built in memory.\n"
    "  --table   auto (default: a private copy in 2 MiB pages, which scans faster,\n"
    "            when it takes at most half of the memory available; else mapped),\n"
    "            map (share the page cache, nothing copied) or copy; the summary\n"
    "            says which\n"
    "  --batch   items per batch (default 256): the unit of the latency figures\n"
    "  --threads threads (default: one per core)\n"
    NU_ARG_GEN_DTYPE_HELP
    "A progress bar goes to stderr on a terminal; a summary (items/s, p50 and p99\n"
    "batch latency) at the end.  The output is written atomically.\n";

int nu_cmd_retrieve(int argc, char **argv)
{
    nu_cli_retrieval_opts o = {.k = 100, .batch = 256, .resident = NU_TABLE_AUTO};
    const char *items_path = NULL;
    int parsed = nu_cli_parse_retrieval("retrieve", nu_cli_retrieve_help, "--items", &items_path, argc, argv, &o);
    if (parsed >= 0)
        return parsed;
    if (nu_init() != NU_OK)
        return nu_cli_fail("retrieve");
    nu_model *m;
    if (nu_model_load(o.model_dir, &m) != NU_OK)
        return nu_cli_fail("retrieve");
    int rc = NU_EXIT_OK;
    nu_batch *items = NULL;
    nu_table *table = NULL;
    nu_engine *eng = NULL;
    nu_session *ses = NULL;
    float *scores = NULL;
    uint32_t *ids = NULL;
    double *lat = NULL;
    nu_atomic_file af = {0};
    if (nu_batch_create(m, &items) != NU_OK || nu_batch_read_jsonl(items, items_path) != NU_OK ||
        nu_table_open(m, o.model_dir, o.dtype, &table) != NU_OK) {
        rc = nu_cli_fail("retrieve");
        goto done;
    }
    nu_cli_report_items("retrieve", items, nu_model_max_users(m));
    if (nu_cli_table_resolve(o.resident, nu_cli_table_bytes(table), 1) &&
        nu_table_make_resident(table) != NU_OK) {
        rc = nu_cli_fail("retrieve");
        goto done;
    }
    nu_cli_warn_k("retrieve", o.k, nu_table_rows(table));
    nu_table_place(table, o.threads);
    size_t count = nu_batch_count(items), B = o.batch, nb = (count + B - 1) / B;
    if (open_engine(m, table, &o, B, &eng, &ses) != NU_OK) {
        rc = nu_cli_fail("retrieve");
        goto done;
    }
    ids = malloc(B * o.k * sizeof *ids);
    scores = malloc(B * o.k * sizeof *scores);
    lat = malloc((nb + 1) * sizeof *lat);
    if (!ids || !scores || !lat) {
        fprintf(stderr, "nextuser retrieve: out of memory\n");
        rc = NU_EXIT_FAIL;
        goto done;
    }
    if (nu_atomic_open(o.out, &af) != NU_OK) {
        rc = nu_cli_fail("retrieve");
        goto done;
    }
    fputs("item,rank,user,score\n", af.fp);
    nu_progress prog;
    nu_progress_start(&prog, "retrieve", "items");
    double t_start = nu_now_seconds();
    for (size_t b = 0; b < nb; b++) {
        size_t first = b * B, cnt = first + B <= count ? B : count - first;
        double t0 = nu_now_seconds();
        nu_status s = nu_session_recommend(ses, items, first, cnt, ids, scores);
        lat[b] = nu_now_seconds() - t0;
        if (s != NU_OK) {
            nu_progress_finish(&prog);
            rc = nu_cli_fail("retrieve");
            goto done;
        }
        for (size_t i = 0; i < cnt; i++)
            if (!nu_cli_write_topk(af.fp, nu_batch_item_id(items, first + i), ids + i * o.k,
                            scores + i * o.k, o.k, m)) {
                rc = NU_EXIT_FAIL;
                fprintf(stderr, "nextuser retrieve: %s: write failed: %s\n", o.out, strerror(errno));
                goto done;
            }
        nu_progress_update(first + cnt, count, &prog);
    }
    nu_progress_finish(&prog);
    double total = nu_now_seconds() - t_start;
    if (nu_atomic_commit(&af) != NU_OK) {
        rc = nu_cli_fail("retrieve");
        goto done;
    }
    qsort(lat, nb, sizeof *lat, nu_cli_cmp_double);
    char gen_text[96];
    fprintf(stderr,
            "nextuser retrieve: %zu items in %.3f s (%.0f items/s); batch of %zu: p50 %.2f ms, "
            "p99 %.2f ms; %zu users, %s table (%s), k %llu, isa %s, generator %s\n",
            count, total, total > 0 ? (double)count / total : 0.0, (size_t)B,
            1e3 * nu_cli_percentile(lat, nb, 50), 1e3 * nu_cli_percentile(lat, nb, 99), nu_table_rows(table),
            nu_dtype_name(o.dtype), nu_cli_table_origin(table), (unsigned long long)o.k, nu_isa_active(),
            nu_arg_gen_summary(o.gen_dtype, nu_engine_gen_dtype(eng), gen_text, sizeof gen_text));
done:
    if (af.fp)
        nu_atomic_abort(&af);
    free(ids);
    free(scores);
    free(lat);
    nu_session_free(ses);
    nu_engine_free(eng);
    nu_table_free(table);
    nu_batch_free(items);
    nu_model_free(m);
    return rc;
}

/* ---- search ---- */

const char *const nu_cli_search_help =
    "usage: nextuser search --model DIR --queries Q.tsv --out TOPK.csv [--k K]\n"
    "                       [--dtype fp32|bf16|int8] [--threads T] [--batch B] [--pool P]\n\n"
    "Scores query vectors (lines \"ID<TAB>v1 ... vd\" of at most 1 MiB, the output of\n"
    "'nextuser embed'; 'nextuser embed --query' when the model weighs a feature\n"
    "prior, whose indicators follow the d values) against the model's user table by cosine\n"
    "similarity, plus the model's priors, and writes the top K\n"
    "(default 100) as CSV item,rank,user,score.  Nothing is excluded.  Batches of\n"
    "B queries (default 1) are searched together; the summary gives queries/s and\n"
    "the p50/p99 batch latency of the search alone (loading excluded).\n"
    "--table auto|map|copy as for 'nextuser retrieve'.\n";

int nu_cmd_search(int argc, char **argv)
{
    nu_cli_retrieval_opts o = {.k = 100, .batch = 1, .resident = NU_TABLE_AUTO};
    const char *qpath = NULL;
    int parsed = nu_cli_parse_retrieval("search", nu_cli_search_help, "--queries", &qpath, argc, argv, &o);
    if (parsed >= 0)
        return parsed;
    if (nu_init() != NU_OK)
        return nu_cli_fail("search");
    nu_model *m;
    if (nu_model_load(o.model_dir, &m) != NU_OK)
        return nu_cli_fail("search");
    int rc = NU_EXIT_OK;
    nu_table *table = NULL;
    nu_engine *eng = NULL;
    nu_session *ses = NULL;
    char **qids = NULL;
    float *q = NULL, *scores = NULL;
    uint32_t *ids = NULL;
    double *lat = NULL;
    size_t nq = 0, d = nu_model_query_dim(m);
    nu_atomic_file af = {0};
    if (nu_cli_read_queries(qpath, d, d - nu_model_dim(m), &qids, &q, &nq) != NU_OK ||
        nu_table_open(m, o.model_dir, o.dtype, &table) != NU_OK) {
        rc = nu_cli_fail("search");
        goto done;
    }
    if (nu_cli_table_resolve(o.resident, nu_cli_table_bytes(table), 1) &&
        nu_table_make_resident(table) != NU_OK) {
        rc = nu_cli_fail("search");
        goto done;
    }
    nu_cli_warn_k("search", o.k, nu_table_rows(table));
    nu_table_place(table, o.threads);
    size_t B = o.batch, nb = (nq + B - 1) / B;
    ids = malloc((B * o.k + 1) * sizeof *ids);
    scores = malloc((B * o.k + 1) * sizeof *scores);
    lat = malloc((nb + 1) * sizeof *lat);
    if (!ids || !scores || !lat || open_engine(m, table, &o, B, &eng, &ses) != NU_OK ||
        nu_atomic_open(o.out, &af) != NU_OK) {
        rc = nu_cli_fail("search");
        goto done;
    }
    fputs("item,rank,user,score\n", af.fp);
    double busy = 0;
    for (size_t b = 0; b < nb; b++) {
        size_t first = b * B, cnt = first + B <= nq ? B : nq - first;
        double t0 = nu_now_seconds();
        nu_status s = nu_session_search(ses, q + first * d, cnt, d, ids, scores);
        lat[b] = nu_now_seconds() - t0;
        busy += lat[b];
        if (s != NU_OK) {
            nu_error_context(s, "%s: queries %zu..%zu: ", qpath, first + 1, first + cnt);
            rc = nu_cli_fail("search");
            goto done;
        }
        for (size_t i = 0; i < cnt; i++)
            nu_cli_write_topk(af.fp, qids[first + i], ids + i * o.k, scores + i * o.k, o.k, m);
    }
    if (nu_atomic_commit(&af) != NU_OK) {
        rc = nu_cli_fail("search");
        goto done;
    }
    qsort(lat, nb, sizeof *lat, nu_cli_cmp_double);
    fprintf(stderr,
            "nextuser search: %zu queries in %.3f s (%.1f queries/s); batch of %zu: p50 %.3f ms, "
            "p99 %.3f ms; %zu users, %s table (%s), k %llu, isa %s\n",
            nq, busy, busy > 0 ? (double)nq / busy : 0.0, (size_t)B, 1e3 * nu_cli_percentile(lat, nb, 50),
            1e3 * nu_cli_percentile(lat, nb, 99), nu_table_rows(table), nu_dtype_name(o.dtype),
            nu_cli_table_origin(table), (unsigned long long)o.k, nu_isa_active());
done:
    if (af.fp)
        nu_atomic_abort(&af);
    for (size_t i = 0; qids && i < nq; i++)
        free(qids[i]);
    free(qids);
    free(q);
    free(ids);
    free(scores);
    free(lat);
    nu_session_free(ses);
    nu_engine_free(eng);
    nu_table_free(table);
    nu_model_free(m);
    return rc;
}
