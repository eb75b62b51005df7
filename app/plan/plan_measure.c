/* nu_plan_measure: picks, from a result file, the workloads the plan uses. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "plan/plan.h"

/* "100k" -> 1e5, "1M" -> 1e6, "50M", "2G", "123456"; *end past the label.
 * Returns 0 when TEXT does not start with such a label. */
static int parse_users(const char *text, double *users, const char **end)
{
    char *e;
    double v = strtod(text, &e);
    if (e == text || v <= 0)
        return 0;
    if (*e == 'k')
        v *= 1e3, e++;
    else if (*e == 'M')
        v *= 1e6, e++;
    else if (*e == 'G')
        v *= 1e9, e++;
    *users = v;
    *end = e;
    return 1;
}

/* NAME is PREFIX followed by a whole number and then exactly SUFFIX. */
static int match_number(const char *name, const char *prefix, const char *suffix, size_t *n)
{
    size_t lp = strlen(prefix);
    if (strncmp(name, prefix, lp) != 0)
        return 0;
    char *e;
    unsigned long v = strtoul(name + lp, &e, 10);
    if (e == name + lp || strcmp(e, suffix) != 0)
        return 0;
    *n = v;
    return 1;
}

/* NAME is PREFIX, a users label, then exactly SUFFIX. */
static int match_users(const char *name, const char *prefix, const char *suffix, double *users)
{
    size_t lp = strlen(prefix);
    const char *e;
    return strncmp(name, prefix, lp) == 0 && parse_users(name + lp, users, &e) &&
           strcmp(e, suffix) == 0;
}

static double field(const nu_plan_results *r, const char *name, const char *key)
{
    double v = 0;
    long i = nu_plan_results_find(r, name);
    if (i >= 0 && nu_plan_results_field(r, (size_t)i, key, &v) && v > 0)
        return v;
    return 0;
}

/* Of the batches B in entries "PREFIX<B>SUFFIX": the largest <= want, else the smallest. */
static size_t pick_batch(const nu_plan_results *r, const char *prefix, const char *suffix,
                         const char *key, size_t want)
{
    size_t below = 0, above = 0, b;
    for (size_t i = 0; i < r->count; i++) {
        double v;
        if (!match_number(r->names[i], prefix, suffix, &b) ||
            !nu_plan_results_field(r, i, key, &v) || v <= 0)
            continue;
        if (b <= want && b > below)
            below = b;
        if (b > want && (above == 0 || b < above))
            above = b;
    }
    return below ? below : above;
}

/* True when snprintf's result N says the whole text fit in CAP bytes. */
static int fits(int n, size_t cap)
{
    return n >= 0 && (size_t)n < cap;
}

/* The error for a workload name that does not fit the planner's buffers. */
static nu_status too_long(const char *what)
{
    return nu_error(NU_ERR_INVALID_ARG,
                    "workload name too long (over %d characters) near \"%.60s\"; bench writes "
                    "shorter ones", NU_PLAN_NAME_MAX - 1, what);
}

/* Appends "\n  <what> (written by: COMMAND)" to the message MSG of CAP
 * bytes, WHAT formatted from FMT; a message cut short ends in "...". */
static void missing(char *msg, size_t cap, const char *command, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void missing(char *msg, size_t cap, const char *command, const char *fmt, ...)
{
    size_t len = strlen(msg);
    int n = snprintf(msg + len, cap - len, "\n  ");
    if (fits(n, cap - len)) {
        len += (size_t)n;
        va_list ap;
        va_start(ap, fmt);
        n = vsnprintf(msg + len, cap - len, fmt, ap);
        va_end(ap);
        if (fits(n, cap - len)) {
            len += (size_t)n;
            n = snprintf(msg + len, cap - len, " (written by: %s)", command);
            if (fits(n, cap - len))
                return;
        }
    }
    if (cap >= 4)
        memcpy(msg + cap - 4, "...", 4); /* cut short: say so */
}

/* snprintf into the array BUF; true when the whole text fit. */
#define FORMAT(buf, ...) fits(snprintf((buf), sizeof(buf), __VA_ARGS__), sizeof(buf))

nu_status nu_plan_measure(const nu_plan_results *r, const char *shape, const char *dtype,
                          const char *gen, nu_plan_measured *m)
{
    memset(m, 0, sizeof *m);
    /* The request's own limits (nu_plan_request): every name below is built
     * from these and the workload names of the file, each checked to fit. */
    if (strlen(shape) >= 16 || strlen(dtype) >= 8 || strlen(gen) >= 8)
        return nu_error(NU_ERR_INVALID_ARG, "shape \"%.20s\", dtype \"%.20s\" or generator "
                        "\"%.20s\" too long", shape, dtype, gen);
    /* The generator encoding's part of the infer and serve names: fp32 rows
     * have none (bench --gen-dtypes). */
    char gen_part[16] = "", gen_opt[40] = "";
    if (strcmp(gen, "fp32") != 0) {
        snprintf(gen_part, sizeof gen_part, "/gen:%s", gen);
        snprintf(gen_opt, sizeof gen_opt, " --gen-dtypes %s", gen);
    }
    char suffix[64];
    char msg[2048] = "", prefix[NU_PLAN_NAME_MAX + 32], name[NU_PLAN_NAME_MAX];
    /* The bench option that makes the shape's runs: a user model is its own. */
    char which[32], serve_cmd[160];
    int user = strcmp(shape, "model") == 0;
    if (!FORMAT(which, user ? "--model DIR" : "--shape %s", shape))
        return too_long(shape);
    if (!FORMAT(serve_cmd, "nextuser bench --suite serve %s%s --threads 1,2 --json FILE", which,
                gen_opt))
        return too_long(shape);

    /* The serve runs: the largest U with a server_max at threads:1 and an
     * offline run at threads:1 (closest to the production scale). */
    if (!FORMAT(prefix, "serve/%s/%s/U", shape, dtype) ||
        !FORMAT(suffix, "%s/server_max/threads:1", gen_part))
        return too_long(prefix);
    for (size_t i = 0; i < r->count; i++) {
        double u;
        if (!match_users(r->names[i], prefix, suffix, &u) || u <= m->serve_users)
            continue;
        const char *label = r->names[i] + strlen(prefix);
        int len = (int)(strchr(label, '/') - label);
        if (!FORMAT(name, "%s%.*s%s/offline/threads:1", prefix, len, label, gen_part))
            return too_long(r->names[i]);
        if (field(r, name, "items_per_second") > 0 && field(r, r->names[i], "max_rate_per_second") > 0) {
            if (!FORMAT(m->server_max, "%s", r->names[i]) || !FORMAT(m->offline1, "%s", name))
                return too_long(r->names[i]);
            m->serve_users = u;
        }
    }
    if (m->serve_users == 0) {
        missing(msg, sizeof msg, serve_cmd,
                "%s<users>%s/server_max/threads:1 and .../offline/threads:1", prefix, gen_part);
    } else {
        double v;
        long i = nu_plan_results_find(r, m->server_max);
        m->max_rate = field(r, m->server_max, "max_rate_per_second");
        m->offline_ips1 = field(r, m->offline1, "items_per_second");
        if (nu_plan_results_field(r, (size_t)i, "max_batch", &v) && v >= 1)
            m->batch = (size_t)v;
        int has_wait = nu_plan_results_field(r, (size_t)i, "max_wait_ms", &m->wait_ms) &&
                       m->wait_ms >= 0;
        m->bound_ms = field(r, m->server_max, "p99_bound_ms");
        m->p99_at_max_ms = field(r, m->server_max, "p99_ms");
        if (m->batch == 0 || m->bound_ms <= 0 || !has_wait) {
            size_t len = strlen(msg);
            if (!fits(snprintf(msg + len, sizeof msg - len,
                               "\n  %s lacks max_batch, max_wait_ms or p99_bound_ms",
                               m->server_max),
                      sizeof msg - len))
                memcpy(msg + sizeof msg - 4, "...", 4);
        }
        /* Thread scaling: the largest thread count with an offline run. */
        m->threads_T = 1;
        m->offline_ipsT = m->offline_ips1;
        const char *slash = strstr(m->offline1, "/offline/threads:");
        if (!FORMAT(prefix, "%.*s/offline/threads:", (int)(slash - m->offline1), m->offline1))
            return too_long(m->offline1);
        for (size_t j = 0; j < r->count; j++) {
            size_t t;
            double ips;
            if (match_number(r->names[j], prefix, "", &t) && (int)t > m->threads_T &&
                (ips = field(r, r->names[j], "items_per_second")) > 0) {
                if (!FORMAT(m->offlineT, "%s", r->names[j]))
                    return too_long(r->names[j]);
                m->threads_T = (int)t;
                m->offline_ipsT = ips;
            }
        }
    }
    size_t want = m->batch ? m->batch : 64;

    /* The generator alone: infer at the batch closest to the serving batch. */
    if (!FORMAT(prefix, "infer/%s/B", shape) || !FORMAT(suffix, "%s/threads:1", gen_part))
        return too_long(prefix);
    m->infer_batch = pick_batch(r, prefix, suffix, "items_per_second", want);
    if (m->infer_batch) {
        if (!FORMAT(m->infer, "%s%zu%s", prefix, m->infer_batch, suffix))
            return too_long(prefix);
        m->infer_ips = field(r, m->infer, "items_per_second");
    } else {
        char cmd[160];
        if (!FORMAT(cmd, "nextuser bench --suite infer %s%s --json FILE", which, gen_opt))
            return too_long(shape);
        missing(msg, sizeof msg, cmd, "%s<b>%s", prefix, suffix);
    }

    /* Scoring alone: retrieve in the dtype, the largest U measured. */
    if (!FORMAT(prefix, "retrieve/%s/U", dtype))
        return too_long(prefix);
    char users_label[32] = "";
    for (size_t i = 0; i < r->count; i++) {
        const char *label, *end;
        double u, v;
        size_t b;
        if (strncmp(r->names[i], prefix, strlen(prefix)) != 0)
            continue;
        label = r->names[i] + strlen(prefix);
        if (!parse_users(label, &u, &end) || strncmp(end, "/B", 2) != 0 ||
            !match_number(end, "/B", "/threads:1", &b) ||
            !nu_plan_results_field(r, i, "queries_per_second", &v) || v <= 0 ||
            u <= m->retrieve_users)
            continue;
        if (!FORMAT(users_label, "%.*s", (int)(end - label), label))
            return too_long(r->names[i]);
        m->retrieve_users = u;
    }
    if (m->retrieve_users > 0) {
        if (!FORMAT(prefix, "retrieve/%s/U%s/B", dtype, users_label))
            return too_long(prefix);
        m->retrieve_batch = pick_batch(r, prefix, "/threads:1", "queries_per_second", want);
        if (!FORMAT(m->retrieve, "%s%zu/threads:1", prefix, m->retrieve_batch))
            return too_long(prefix);
        m->retrieve_qps = field(r, m->retrieve, "queries_per_second");
    } else {
        missing(msg, sizeof msg, user ? "nextuser bench --suite retrieve --model DIR --json FILE"
                                      : "nextuser bench --suite retrieve --json FILE",
                "%s<users>/B<b>/threads:1", prefix);
    }
    if (msg[0])
        return nu_error(NU_ERR_INVALID_ARG,
                        "the results lack workloads the plan needs (shape %s, dtype %s, "
                        "generator %s):%s", shape, dtype, gen, msg);
    return NU_OK;
}
