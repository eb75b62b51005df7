/* libmicrohttpd glue (http.h).  One access handler serves both daemons:
 * the first call of a request routes it (and answers 404, 405 or 413 at
 * once), the next ones gather the body, the last one answers or parses the
 * items, enqueues them and suspends the connection; the worker that runs a
 * request's last item resumes it, and the handler is called once more to
 * queue the answer the worker wrote. */
#include "http.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "util/json_strict.h"
#include "request.h"
#include "strbuf.h"
#include "util/clock.h"

struct sv_http {
    sv_server *srv;
    int admin;
    struct MHD_Daemon *d;
    MHD_socket quiesced; /* the listening socket after quiesce, closed at stop */
};

typedef enum conn_state {
    ST_BODY,     /* receiving the body */
    ST_WAITING,  /* suspended: items queued */
    ST_RESUMED,  /* the worker wrote the answer */
    ST_ANSWERED, /* a response is queued */
} conn_state;

typedef struct sv_conn {
    sv_http *h;
    struct MHD_Connection *c;
    sv_endpoint ep;
    int post; /* the route takes POST (else GET/HEAD) */
    char method[16], path[256], version[160];
    double t0;
    char *body;
    size_t len, cap;
    int too_large;    /* the body passed --max-body: discarded, answered 413 */
    size_t discarded; /* bytes of it discarded */
    _Atomic conn_state state;
    int code;
    size_t items;
    sv_request *req;
} sv_conn;


/* Queues a response; body (malloc'd or NULL) passes to MHD. */
static enum MHD_Result respond(sv_conn *cx, int code, char *body, size_t len, const char *ctype,
                               const char *allow)
{
    struct MHD_Response *r;
    if (body)
        r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    else
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (code == 503)
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (atomic_load(&cx->h->srv->draining))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(cx->c, (unsigned)code, r);
    MHD_destroy_response(r);
    cx->code = code;
    atomic_store(&cx->state, ST_ANSWERED);
    return rc;
}

static enum MHD_Result respond_json(sv_conn *cx, int code, char *body, size_t len)
{
    return respond(cx, code, body, len, "application/json", NULL);
}

static enum MHD_Result respond_error(sv_conn *cx, int code, const char *msg)
{
    size_t len = 0;
    char *body = sv_error_json(msg, &len);
    return respond(cx, code, body, len, "application/json",
                   code == 405 ? (cx->post ? "POST" : "GET, HEAD") : NULL);
}

static enum MHD_Result respond_text(sv_conn *cx, int code, const char *text)
{
    char *body = strdup(text);
    return respond(cx, code, body, body ? strlen(body) : 0, "text/plain; charset=utf-8", NULL);
}

static enum MHD_Result respond_too_large(sv_conn *cx)
{
    char msg[96];
    snprintf(msg, sizeof msg, "body: larger than the limit of %zu bytes (--max-body)",
             cx->h->srv->cfg->max_body);
    return respond_error(cx, 413, msg);
}

/* Bytes of an oversized body read and dropped before answering 413
 * mid-upload (the connection is closed then). */
static size_t discard_limit(const sv_server *s)
{
    return 4 * s->cfg->max_body + (1u << 20);
}

/* The endpoint of a path on this daemon; -1 when there is none. */
static int route(const sv_http *h, const char *url, int *post)
{
    static const struct {
        const char *path;
        sv_endpoint ep;
        int post, api, admin;
    } routes[] = {
        {"/v1/recommend", SV_EP_RECOMMEND, 1, 1, 0}, {"/v1/embed", SV_EP_EMBED, 1, 1, 0},
        {"/admin/reload", SV_EP_RELOAD, 1, 0, 1},    {"/healthz", SV_EP_HEALTHZ, 0, 1, 1},
        {"/readyz", SV_EP_READYZ, 0, 1, 1},          {"/metrics", SV_EP_METRICS, 0, 1, 1},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(url, routes[i].path) && (h->admin ? routes[i].admin : routes[i].api)) {
            *post = routes[i].post;
            return (int)routes[i].ep;
        }
    return -1;
}

static void on_done(sv_request *r, void *arg)
{
    (void)r;
    sv_conn *cx = arg;
    struct MHD_Connection *c = cx->c;
    atomic_store(&cx->state, ST_RESUMED);
    MHD_resume_connection(c); /* cx belongs to the HTTP thread again */
}

/* Run on the HTTP thread itself (sv_batcher_run_if_idle): nothing to resume. */
static void on_done_here(sv_request *r, void *arg)
{
    (void)r;
    (void)arg;
}

/* Queues the answer a worker (or this thread) wrote into cx's request. */
static enum MHD_Result answer_request(sv_conn *cx)
{
    sv_request *r = cx->req;
    char *body = r->answer;
    r->answer = NULL;
    if (r->status != 200 && r->error[0])
        sv_log(SV_LOG_ERROR, "request failed", "path=\"%s\" error=\"%s\"", cx->path, r->error);
    return respond_json(cx, r->status ? r->status : 500, body, r->answer_len);
}

static enum MHD_Result serve_items(sv_conn *cx, sv_kind kind)
{
    sv_server *s = cx->h->srv;
    const nu_serve_config *cfg = s->cfg;
    sv_version *v = sv_models_acquire(&s->models);
    if (!v)
        return respond_error(cx, 503, "no model loaded");
    snprintf(cx->version, sizeof cx->version, "%s", v->name);
    char err[1024];
    sv_request *r = NULL;
    int st = sv_request_parse(kind, cx->body ? cx->body : "", cx->len, v, cfg->max_items, cfg->k,
                              cfg->max_k, &r, err, sizeof err);
    sv_version_release(v); /* r holds its own reference */
    if (st)
        return respond_error(cx, st, err);
    cx->items = r->n;
    r->t_parsed = nu_now_seconds();
    if (!sv_batcher_reserve(s->batcher, r->n)) {
        sv_request_free(r);
        if (atomic_load(&s->draining))
            return respond_error(cx, 503, "shutting down");
        snprintf(err, sizeof err, "overloaded: the queue holds at most %zu items; retry later",
                 cfg->queue_items);
        return respond_error(cx, 503, err);
    }
    cx->req = r;
    r->done = on_done_here;
    r->done_arg = cx;
    if (sv_batcher_run_if_idle(s->batcher, r))
        return answer_request(cx);
    r->done = on_done;
    atomic_store(&cx->state, ST_WAITING);
    /* Suspend before the items can run: the worker resumes a suspended
     * connection only. */
    MHD_suspend_connection(cx->c);
    sv_batcher_submit(s->batcher, r);
    return MHD_YES;
}

static enum MHD_Result serve_reload(sv_conn *cx)
{
    sv_server *s = cx->h->srv;
    const char *dir = NULL;
    char dirbuf[4096];
    if (cx->len) {
        cJSON *doc = NULL;
        if (nu_json_parse_strict(cx->body, cx->len, "body", 64, &doc, NULL) != NU_OK ||
            !cJSON_IsObject(doc)) {
            cJSON_Delete(doc);
            return respond_error(cx, 400,
                                 "body: must be empty or a JSON object {\"model\": \"DIR\"}");
        }
        for (const cJSON *kv = doc->child; kv; kv = kv->next) {
            if (strcmp(kv->string, "model") != 0) {
                char err[160];
                snprintf(err, sizeof err, "body: unknown key \"%.64s\" (expected model)",
                         kv->string);
                cJSON_Delete(doc);
                return respond_error(cx, 400, err);
            }
            if (!cJSON_IsString(kv) || !kv->valuestring[0] ||
                strlen(kv->valuestring) >= sizeof dirbuf) {
                cJSON_Delete(doc);
                return respond_error(cx, 400,
                                     "model: must be a model directory (a non-empty string)");
            }
            snprintf(dirbuf, sizeof dirbuf, "%s", kv->valuestring);
            dir = dirbuf;
        }
        cJSON_Delete(doc);
    }
    char err[2048], name[160], prev[160];
    double secs = 0;
    nu_status st = sv_server_reload(s, dir, "admin", err, sizeof err, name, sizeof name, prev,
                                    sizeof prev, &secs);
    if (st != NU_OK)
        return respond_error(cx, st == NU_ERR_NOMEM || st == NU_ERR_INTERNAL ? 500 : 422, err);
    snprintf(cx->version, sizeof cx->version, "%s", name);
    sv_strbuf b = {0};
    sv_sb_puts(&b, "{\"model_version\": ");
    sv_sb_json_string(&b, name);
    sv_sb_puts(&b, ", \"previous\": ");
    sv_sb_json_string(&b, prev);
    sv_sb_printf(&b, ", \"load_seconds\": %.6f}\n", secs);
    size_t len = 0;
    char *body = sv_sb_take(&b, &len);
    return respond_json(cx, body ? 200 : 500, body, len);
}

static enum MHD_Result serve_metrics(sv_conn *cx)
{
    sv_server *s = cx->h->srv;
    sv_metrics_state st = {.queue_items = sv_batcher_depth(s->batcher),
                           .draining = atomic_load(&s->draining),
                           .ranks = s->cfg->ranks};
    sv_version *v = sv_models_acquire(&s->models);
    if (v) {
        st.model_loaded = 1;
        st.version = v->name;
        st.dtype = sv_dtype_name(v->dtype);
        st.load_seconds = v->load_seconds;
        st.table_rows = v->users;
    }
    size_t len = 0;
    char *body = sv_metrics_render(s->metrics, &st, &len);
    if (v)
        sv_version_release(v);
    if (!body)
        return respond_error(cx, 500, "out of memory");
    return respond(cx, 200, body, len, "text/plain; version=0.0.4; charset=utf-8", NULL);
}

static enum MHD_Result dispatch(sv_conn *cx)
{
    sv_server *s = cx->h->srv;
    switch (cx->ep) {
    case SV_EP_RECOMMEND:
        return serve_items(cx, SV_RECOMMEND);
    case SV_EP_EMBED:
        return serve_items(cx, SV_EMBED);
    case SV_EP_RELOAD:
        return serve_reload(cx);
    case SV_EP_HEALTHZ:
        return respond_text(cx, 200, "ok\n");
    case SV_EP_READYZ: {
        if (atomic_load(&s->draining))
            return respond_text(cx, 503, "shutting down\n");
        sv_version *v = sv_models_acquire(&s->models);
        if (!v)
            return respond_text(cx, 503, "no model loaded\n");
        char text[200];
        snprintf(text, sizeof text, "ready %s\n", v->name);
        snprintf(cx->version, sizeof cx->version, "%s", v->name);
        sv_version_release(v);
        return respond_text(cx, 200, text);
    }
    case SV_EP_METRICS:
        return serve_metrics(cx);
    default:
        return respond_error(cx, 404, "no such endpoint");
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    sv_http *h = cls;
    sv_server *s = h->srv;
    sv_conn *cx = *con_cls;
    if (!cx) {
        cx = calloc(1, sizeof *cx);
        if (!cx)
            return MHD_NO;
        cx->h = h;
        cx->c = c;
        cx->t0 = nu_now_seconds();
        atomic_init(&cx->state, ST_BODY);
        snprintf(cx->method, sizeof cx->method, "%s", method);
        snprintf(cx->path, sizeof cx->path, "%s", url);
        *con_cls = cx;
        atomic_fetch_add(&s->active, 1);
        int ep = route(h, url, &cx->post);
        cx->ep = ep < 0 ? SV_EP_OTHER : (sv_endpoint)ep;
        if (ep < 0)
            return respond_error(cx, 404, "no such endpoint");
        int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        if (cx->post ? strcmp(method, "POST") != 0 : !is_get) {
            char msg[96];
            snprintf(msg, sizeof msg, "method %.16s not allowed (use %s)", method,
                     cx->post ? "POST" : "GET");
            return respond_error(cx, 405, msg);
        }
        /* A body over the limit is answered 413.  A client that waits for
         * "100 Continue" gets it at once; one that sends anyway is read to
         * its end first (up to discard_limit), or it might see the reset of
         * a closed connection instead of the answer. */
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->cfg->max_body) {
            const char *ex =
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
            if ((ex && !strcasecmp(ex, "100-continue")) ||
                strtoull(cl, NULL, 10) > discard_limit(s))
                return respond_too_large(cx);
            cx->too_large = 1;
        }
        return MHD_YES;
    }
    conn_state st = atomic_load(&cx->state);
    if (st == ST_ANSWERED) { /* answered early: discard what still comes */
        *upload_size = 0;
        return MHD_YES;
    }
    if (st == ST_WAITING) /* not expected: resumed only once answered */
        return MHD_YES;
    if (st == ST_RESUMED)
        return answer_request(cx);
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (!cx->too_large && cx->len + n > s->cfg->max_body) {
            cx->too_large = 1;
            cx->discarded = cx->len;
            free(cx->body);
            cx->body = NULL;
            cx->len = cx->cap = 0;
        }
        if (cx->too_large) {
            cx->discarded += n;
            return cx->discarded > discard_limit(s) ? respond_too_large(cx) : MHD_YES;
        }
        if (cx->len + n + 1 > cx->cap) {
            size_t cap = cx->cap ? cx->cap : 4096;
            while (cap < cx->len + n + 1)
                cap *= 2;
            char *b = realloc(cx->body, cap);
            if (!b)
                return respond_error(cx, 500, "out of memory for the body");
            cx->body = b;
            cx->cap = cap;
        }
        memcpy(cx->body + cx->len, upload, n);
        cx->len += n;
        cx->body[cx->len] = 0;
        return MHD_YES;
    }
    if (cx->too_large)
        return respond_too_large(cx);
    return dispatch(cx);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    sv_http *h = cls;
    sv_conn *cx = *con_cls;
    if (!cx)
        return;
    *con_cls = NULL;
    double now = nu_now_seconds(), secs = now - cx->t0;
    if (cx->code) {
        sv_metrics_request(h->srv->metrics, cx->ep, cx->code, secs);
        const sv_request *r = cx->req;
        sv_timing t;
        int timed = r && r->t_parsed > 0 && r->t_taken > 0 && r->t_ran > 0 && r->t_answered > 0;
        if (timed)
            t = (sv_timing){r->t_parsed - cx->t0, r->t_taken - r->t_parsed, r->t_ran - r->t_taken,
                            r->t_answered - r->t_ran, now - r->t_answered};
        sv_log_request(cx->method, cx->path, cx->code, cx->items, secs, cx->version,
                       timed ? &t : NULL);
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            sv_log(SV_LOG_DEBUG, "answer not delivered", "path=\"%s\" code=%d toe=%d", cx->path,
                   cx->code, (int)toe);
    } else
        sv_log(SV_LOG_DEBUG, "request abandoned", "path=\"%s\" toe=%d", cx->path, (int)toe);
    sv_request_free(cx->req);
    free(cx->body);
    free(cx);
    atomic_fetch_sub(&h->srv->active, 1);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    for (char *p = msg; *p; p++)
        if (*p == '"')
            *p = '\'';
    sv_log(SV_LOG_DEBUG, "libmicrohttpd", "detail=\"%s\"", msg);
}

/* HOST:PORT or [V6]:PORT into a socket address. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, char *err, size_t errcap)
{
    char host[256];
    const char *port;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':' || (size_t)(close - addr - 1) >= sizeof host) {
            snprintf(err, errcap, "\"%s\" is not [IPV6]:PORT", addr);
            return 0;
        }
        memcpy(host, addr + 1, (size_t)(close - addr - 1));
        host[close - addr - 1] = 0;
        port = close + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host) {
            snprintf(err, errcap, "\"%s\" is not HOST:PORT", addr);
            return 0;
        }
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = 0;
        port = colon + 1;
    }
    char *end;
    unsigned long p = strtoul(port, &end, 10);
    if (!*port || *end || p > 65535) {
        snprintf(err, errcap, "\"%s\": the port must be a number in [0, 65535]", addr);
        return 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errcap, "\"%s\": %s", addr, gai_strerror(rc));
        return 0;
    }
    memset(ss, 0, sizeof *ss);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 1;
}

int sv_http_check_addr(const char *addr, char *err, size_t errcap)
{
    struct sockaddr_storage ss;
    return parse_addr(addr, &ss, err, errcap);
}

sv_http *sv_http_start(sv_server *s, const char *addr, int admin, char *bound, size_t boundcap)
{
    const nu_serve_config *cfg = s->cfg;
    char err[512];
    struct sockaddr_storage ss;
    if (!parse_addr(addr, &ss, err, sizeof err)) {
        fprintf(stderr, "nextuser serve: --%slisten: %s\n", admin ? "admin-" : "", err);
        return NULL;
    }
    sv_http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->srv = s;
    h->admin = admin;
    h->quiesced = MHD_INVALID_SOCKET;
    /* TURBO: optimistic reads and writes without waiting for epoll. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    unsigned pool = admin ? 1 : (unsigned)cfg->http_threads;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &ss},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)cfg->max_connections, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)cfg->timeout_s, NULL},
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
        {pool > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)pool, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
    if (!h->d) {
        fprintf(stderr, "nextuser serve: cannot listen on %s (address in use or not local?)\n",
                addr);
        free(h);
        return NULL;
    }
    /* The port as bound (port 0 picks one). */
    const union MHD_DaemonInfo *fdi = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    char hostbuf[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (fdi && getsockname(fdi->listen_fd, (struct sockaddr *)&got, &gl) == 0) {
        if (got.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&got;
            inet_ntop(AF_INET6, &a->sin6_addr, hostbuf, sizeof hostbuf);
            port = ntohs(a->sin6_port);
            snprintf(bound, boundcap, "[%s]:%u", hostbuf, port);
        } else {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&got;
            inet_ntop(AF_INET, &a->sin_addr, hostbuf, sizeof hostbuf);
            port = ntohs(a->sin_port);
            snprintf(bound, boundcap, "%s:%u", hostbuf, port);
        }
    } else
        snprintf(bound, boundcap, "%s", addr);
    return h;
}

void sv_http_quiesce(sv_http *h)
{
    if (!h || !h->d)
        return;
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    /* MHD's threads may still hold the socket until the daemon stops; shut
     * it down now so that new connections are refused, not left waiting. */
    if (fd != MHD_INVALID_SOCKET) {
        shutdown(fd, SHUT_RDWR);
        h->quiesced = fd;
    }
}

void sv_http_stop(sv_http *h)
{
    if (!h)
        return;
    if (h->d)
        MHD_stop_daemon(h->d);
    if (h->quiesced != MHD_INVALID_SOCKET)
        close(h->quiesced);
    free(h);
}
