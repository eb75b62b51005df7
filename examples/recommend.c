/* recommend: the top K users for each new item of an items file, through
 * nextuser's public C API.  Prints the CSV `nextuser retrieve` writes.
 *
 *   usage: recommend MODEL_DIR ITEMS.jsonl [K]
 *
 * Build against an installed nextuser:
 *   cc -std=c11 recommend.c $(pkg-config --cflags --libs nextuser) -o recommend
 *
 * The shape of a serving program: load the model and its user table once,
 * create one engine (shared, read-only) and one session per calling thread,
 * then feed items in batches of at most max_batch.  Every nextuser call
 * returns a nu_status; on failure nu_last_error() says what went wrong. */
#include <nextuser/nextuser.h>

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_BATCH = 64, DEFAULT_K = 100 };

/* Reports a failed nextuser call: the library never prints, so we do. */
static void report(const char *what)
{
    fprintf(stderr, "recommend: %s: %s\n", what, nu_last_error());
}

/* Reads one line of any length into *buf (grown as needed) with plain C11
 * (getline is POSIX).  Returns 1 and sets *len for a line, 0 at the end of
 * the file, -1 on a read error or when out of memory. */
static int read_line(FILE *f, char **buf, size_t *cap, size_t *len)
{
    *len = 0;
    for (;;) {
        if (*cap - *len < 2) { /* room for one more character and the NUL */
            size_t ncap = *cap ? 2 * *cap : 4096;
            char *nb = realloc(*buf, ncap);
            if (!nb)
                return -1;
            *buf = nb;
            *cap = ncap;
        }
        size_t room = *cap - *len;
        if (!fgets(*buf + *len, room > INT_MAX ? INT_MAX : (int)room, f))
            return ferror(f) ? -1 : *len > 0; /* a last line without '\n' still counts */
        *len += strlen(*buf + *len);
        if ((*buf)[*len - 1] == '\n')
            return 1;
    }
}

/* A line of only whitespace carries no item (nextuser retrieve skips it
 * too); nu_batch_add_json would reject it as invalid JSON. */
static int is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* Recommends for every item of the batch, max_batch at a time, and prints
 * the rows.  rows and scores hold max_batch x k.  Returns 0 or -1. */
static int recommend_batch(nu_session *s, const nu_model *m, const nu_batch *b, size_t max_batch,
                           size_t k, uint32_t *rows, float *scores)
{
    size_t count = nu_batch_count(b);
    for (size_t first = 0; first < count; first += max_batch) {
        size_t n = count - first < max_batch ? count - first : max_batch;
        if (nu_session_recommend(s, b, first, n, rows, scores) != NU_OK) {
            report("nu_session_recommend");
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            const char *item = nu_batch_item_id(b, first + i);
            const uint32_t *r = rows + i * k;
            const float *sc = scores + i * k;
            /* Best first; UINT32_MAX marks the end when fewer than k users
             * are eligible (the item's known users are left out). */
            for (size_t j = 0; j < k && r[j] != UINT32_MAX; j++) {
                const char *user = nu_model_user_id(m, r[j]);
                if (!user) {
                    fprintf(stderr, "recommend: row %lu is not a user of the model\n",
                            (unsigned long)r[j]);
                    return -1;
                }
                printf("%s,%zu,%s,%.7g\n", item, j + 1, user, (double)sc[j]);
            }
        }
    }
    return 0;
}

/* Inputs the library skipped or mapped to <unk>: not errors, but worth a
 * line on stderr.  A batch counts them until it is cleared. */
typedef struct input_counts {
    size_t unknown_users, unknown_values, truncated_items;
} input_counts;

/* Recommends for the batch, adds its input counts to *total and clears it
 * for the next items.  Returns 0 or -1. */
static int flush_batch(nu_session *s, const nu_model *m, nu_batch *b, size_t max_batch, size_t k,
                       uint32_t *rows, float *scores, input_counts *total)
{
    if (recommend_batch(s, m, b, max_batch, k, rows, scores) != 0)
        return -1;
    size_t u, v, t;
    nu_batch_input_counts(b, &u, &v, &t);
    total->unknown_users += u;
    total->unknown_values += v;
    total->truncated_items += t;
    nu_batch_clear(b);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: recommend MODEL_DIR ITEMS.jsonl [K]\n");
        return 1;
    }
    const char *model_dir = argv[1], *items_path = argv[2];
    size_t k = DEFAULT_K;
    if (argc == 4) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(argv[3], &end, 10);
        if (errno || end == argv[3] || *end || argv[3][0] == '-' || v == 0 || v > 100000) {
            fprintf(stderr, "recommend: K must be a whole number in 1..100000, got \"%s\"\n",
                    argv[3]);
            return 1;
        }
        k = (size_t)v;
    }

    int rc = 1;
    nu_model *model = NULL;
    nu_table *table = NULL;
    nu_engine *engine = NULL;
    nu_session *session = NULL;
    nu_batch *batch = NULL;
    FILE *items = NULL;
    char *line = NULL;
    size_t line_cap = 0;
    uint32_t *rows = NULL;
    float *scores = NULL;
    nu_engine_options opts;
    size_t lineno = 0, len = 0;
    input_counts counts = {0, 0, 0};
    int got;

    /* Picks the kernels for this CPU (NU_ISA may lower them); the other
     * entry points would do it implicitly, but this reports a bad NU_ISA
     * up front. */
    if (nu_init() != NU_OK) {
        report("nu_init");
        goto done;
    }
    if (nu_model_load(model_dir, &model) != NU_OK) {
        report("nu_model_load");
        goto done;
    }
    /* fp32 is exact; the table is memory-mapped from the model directory
     * when `nextuser table` wrote one, else built in memory. */
    if (nu_table_open(model, model_dir, NU_DTYPE_FP32, &table) != NU_OK) {
        report("nu_table_open");
        goto done;
    }

    /* Options carry their size: always start from nu_engine_options_init so
     * that fields added by later versions keep their defaults. */
    nu_engine_options_init(&opts);
    opts.k = k;
    opts.max_batch = MAX_BATCH;
    opts.dtype = NU_DTYPE_FP32; /* must be an encoding the table holds */
    if (nu_engine_create(model, table, &opts, &engine) != NU_OK) {
        report("nu_engine_create");
        goto done;
    }
    /* One session per thread that calls recommend; we have one thread. */
    if (nu_session_create(engine, &session) != NU_OK) {
        report("nu_session_create");
        goto done;
    }
    if (nu_batch_create(model, &batch) != NU_OK) {
        report("nu_batch_create");
        goto done;
    }

    /* The output buffers: k results for each item of one call. */
    rows = malloc(opts.max_batch * k * sizeof *rows);
    scores = malloc(opts.max_batch * k * sizeof *scores);
    if (!rows || !scores) {
        fprintf(stderr, "recommend: out of memory for %zu x %zu results\n", opts.max_batch, k);
        goto done;
    }

    items = fopen(items_path, "r");
    if (!items) {
        fprintf(stderr, "recommend: %s: cannot open: %s\n", items_path, strerror(errno));
        goto done;
    }

    if (printf("item,rank,user,score\n") < 0)
        goto write_failed;
    /* Streams the file: a batch of max_batch items is recommended for and
     * cleared, so memory stays flat however long the file is. */
    while ((got = read_line(items, &line, &line_cap, &len)) > 0) {
        lineno++;
        if (is_blank(line, len))
            continue;
        if (nu_batch_add_json(batch, line, len) != NU_OK) {
            /* The message names the field at fault; we add where it is. */
            fprintf(stderr, "recommend: %s:%zu: %s\n", items_path, lineno, nu_last_error());
            goto done;
        }
        if (nu_batch_count(batch) == opts.max_batch &&
            flush_batch(session, model, batch, opts.max_batch, k, rows, scores, &counts) != 0)
            goto done;
    }
    if (got < 0) {
        fprintf(stderr, "recommend: %s: read failed (or out of memory) after line %zu\n",
                items_path, lineno);
        goto done;
    }
    if (flush_batch(session, model, batch, opts.max_batch, k, rows, scores, &counts) != 0)
        goto done;
    if (counts.unknown_users || counts.unknown_values || counts.truncated_items)
        fprintf(stderr, "recommend: %zu unknown user ids skipped, %zu items cut to their most "
                        "recent users, %zu unknown feature values read as <unk>\n",
                counts.unknown_users, counts.truncated_items, counts.unknown_values);

    if (fflush(stdout) != 0 || ferror(stdout))
        goto write_failed;
    rc = 0;
    goto done;

write_failed:
    fprintf(stderr, "recommend: writing the output failed: %s\n", strerror(errno));
done:
    /* Every free accepts NULL; free in the reverse order of creation (the
     * engine needs the model and table, the session its engine). */
    if (items)
        fclose(items);
    free(line);
    free(rows);
    free(scores);
    nu_batch_free(batch);
    nu_session_free(session);
    nu_engine_free(engine);
    nu_table_free(table);
    nu_model_free(model);
    return rc;
}
