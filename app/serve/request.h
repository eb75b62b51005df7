/* Requests of /v1/recommend and /v1/embed: parsed and validated against a
 * model version in the HTTP thread, answered by the batching workers. */
#ifndef NU_SERVE_REQUEST_H
#define NU_SERVE_REQUEST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "model_version.h"

typedef enum sv_kind { SV_RECOMMEND = 0, SV_EMBED = 1 } sv_kind;

typedef struct sv_request sv_request;
typedef void (*sv_done_fn)(sv_request *r, void *arg);

struct sv_request {
    sv_kind kind;
    sv_version *ver;  /* the version every item runs on (one reference) */
    size_t n, k;      /* items; users per item answered */
    nu_batch *batch;  /* the items, parsed and checked (the version's model) */
    char **id_json;   /* each item's id as it was sent (JSON text) */
    size_t *unknown_users, *unknown_values;
    unsigned char *truncated;
    uint32_t *rows;          /* n x k (recommend) */
    float *scores;           /* n x k (recommend) */
    const char **names;      /* k: one item's user names while answering */
    float *vectors;          /* n x dim (embed) */
    atomic_size_t remaining; /* items not yet run */
    atomic_int failed;       /* a worker's call failed: answer 500 */
    char error[512];         /* its message (written by the failing worker) */
    /* Set by the worker that runs the last item, before done is called. */
    int status;
    char *answer;
    size_t answer_len;
    /* Monotonic times (nu_now_seconds) of its stages, for the log line:
     * parsed (HTTP thread), taken (the worker whose batch holds item 0),
     * ran and answered (the worker that ran its last item). */
    double t_parsed, t_taken, t_ran, t_answered;
    sv_done_fn done;
    void *done_arg;
};

/* Parses body (len bytes) into a request on version v (the request takes
 * its own reference).  Returns 0, or an HTTP status (400) with a message
 * naming the field at fault in err. */
int sv_request_parse(sv_kind kind, const char *body, size_t len, sv_version *v, size_t max_items,
                     size_t default_k, size_t max_k, sv_request **out, char *err, size_t errcap);
void sv_request_free(sv_request *r);

/* Called by the worker that ran the request's last item: builds the answer
 * (status and JSON body), drops the version reference, calls done. */
void sv_request_finish(sv_request *r);

/* {"error": msg} (malloc'd, NULL when out of memory). */
char *sv_error_json(const char *msg, size_t *len);

#endif
