/* Error values with a per-thread message. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_message[512];

nu_status nu_error(nu_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    return s;
}

nu_status nu_error_context(nu_status s, const char *fmt, ...)
{
    char previous[sizeof last_message], prefix[256];
    memcpy(previous, last_message, sizeof previous);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Concatenate by hand: prefix first, then as much of the old message as fits. */
    size_t a = strlen(prefix), b = strlen(previous), cap = sizeof last_message - 1;
    if (a > cap)
        a = cap;
    if (a + b > cap)
        b = cap - a;
    memcpy(last_message, prefix, a);
    memcpy(last_message + a, previous, b);
    last_message[a + b] = 0;
    return s;
}

const char *nu_last_error(void) { return last_message; }

const char *nu_status_str(nu_status s)
{
    switch (s) {
    case NU_OK: return "ok";
    case NU_ERR_INVALID_ARG: return "invalid argument";
    case NU_ERR_UNSUPPORTED: return "unsupported";
    case NU_ERR_IO: return "I/O error";
    case NU_ERR_FORMAT: return "malformed input";
    case NU_ERR_NOMEM: return "out of memory";
    case NU_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}
