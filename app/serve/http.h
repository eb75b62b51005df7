/* libmicrohttpd glue: the API and admin daemons, routing, request bodies,
 * suspending a connection while its items wait for a batch and resuming it
 * when they are done. */
#ifndef NU_SERVE_HTTP_H
#define NU_SERVE_HTTP_H

#include <stddef.h>

#include "server.h"

typedef struct sv_http sv_http;

/* Listens on addr ("HOST:PORT", "[V6]:PORT"; port 0 picks one).  admin: the
 * admin routes (/admin/reload) instead of the /v1 routes.  bound receives
 * "HOST:PORT" as bound.  NULL with a message on stderr on failure. */
sv_http *sv_http_start(sv_server *s, const char *addr, int admin, char *bound, size_t boundcap);
/* 1 when addr parses and resolves as a listening address; else 0 with
 * the reason in err. */
int sv_http_check_addr(const char *addr, char *err, size_t errcap);
/* Stops accepting connections (those open go on). */
void sv_http_quiesce(sv_http *h);
/* Closes every connection and frees (no connection may be suspended). */
void sv_http_stop(sv_http *h);

#endif
