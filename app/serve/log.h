/* One structured line per event on stderr (logfmt: key=value), at a level
 * chosen once at start-up. */
#ifndef NU_SERVE_LOG_H
#define NU_SERVE_LOG_H

#include <stddef.h>

enum { SV_LOG_ERROR = 0, SV_LOG_WARN = 1, SV_LOG_INFO = 2, SV_LOG_DEBUG = 3 };

/* Parses error|warn|info|debug; returns -1 for anything else. */
int sv_log_level_parse(const char *name);
/* Sets the level (before any thread starts). */
void sv_log_set_level(int level);
int sv_log_enabled(int level);
/* level=... msg="..." then the caller's key=value text (may be NULL). */
void sv_log(int level, const char *msg, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Where an answered request's time went, in seconds (0: not reached). */
typedef struct sv_timing {
    double parse;  /* from its headers to its items parsed and checked */
    double queue;  /* then until a worker took its first item */
    double engine; /* then until its last item's batch ran */
    double answer; /* then until its JSON answer was written */
    double send;   /* then until the answer left (resume, write) */
} sv_timing;

/* The line of one answered request; t (may be NULL) adds its stages. */
void sv_log_request(const char *method, const char *path, int status, size_t items, double seconds,
                    const char *version, const sv_timing *t);

#endif
