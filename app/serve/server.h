/* The state of one running service, shared by the HTTP handlers, the
 * workers and the main thread (signals). */
#ifndef NU_SERVE_SERVER_H
#define NU_SERVE_SERVER_H

#include <stdatomic.h>
#include <stddef.h>

#include "batcher.h"
#include "metrics.h"
#include "model_version.h"
#include "serve.h"

typedef struct sv_server {
    const nu_serve_config *cfg;
    sv_models models;
    sv_metrics *metrics;
    sv_batcher *batcher;
    atomic_size_t active; /* requests begun and not yet completed */
    atomic_int draining;  /* shutting down: readyz 503, Connection: close */
} sv_server;

/* Loads DIR (NULL: the configured model) as the new version (model_version.h),
 * counts and logs the result.  On failure err holds the library's message. */
nu_status sv_server_reload(sv_server *s, const char *dir, const char *origin, char *err,
                           size_t errcap, char *name, size_t namecap, char *prev, size_t prevcap,
                           double *load_seconds);

#endif
