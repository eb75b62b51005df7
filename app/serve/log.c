/* Logging of the service: whole lines written under stderr's lock, so lines
 * of concurrent threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static atomic_int log_level = SV_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int sv_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, level_names[i]))
            return i;
    return -1;
}

void sv_log_set_level(int level)
{
    atomic_store(&log_level, level);
}

int sv_log_enabled(int level)
{
    return level <= atomic_load(&log_level);
}

/* ts=2024-05-01T12:00:00.123456Z level=info */
static void prefix(int level)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "ts=%s.%06ldZ level=%s", when, ts.tv_nsec / 1000, level_names[level]);
}

/* A quoted logfmt value: quotes and backslashes escaped, control bytes as '?'. */
static void quoted(const char *s)
{
    fputc('"', stderr);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fputc('\\', stderr);
        fputc(c < 0x20 ? '?' : c, stderr);
    }
    fputc('"', stderr);
}

void sv_log(int level, const char *msg, const char *fmt, ...)
{
    if (!sv_log_enabled(level))
        return;
    flockfile(stderr);
    prefix(level);
    fputs(" msg=", stderr);
    quoted(msg);
    if (fmt) {
        fputc(' ', stderr);
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    fflush(stderr);
    funlockfile(stderr);
}

void sv_log_request(const char *method, const char *path, int status, size_t items, double seconds,
                    const char *version, const sv_timing *t)
{
    int level = status >= 500 ? SV_LOG_WARN : SV_LOG_INFO;
    if (!sv_log_enabled(level))
        return;
    flockfile(stderr);
    prefix(level);
    fputs(" msg=\"request\" method=", stderr);
    quoted(method);
    fputs(" path=", stderr);
    quoted(path);
    fprintf(stderr, " status=%d items=%zu us=%.0f version=", status, items, seconds * 1e6);
    quoted(version ? version : "");
    if (t)
        fprintf(stderr, " parse_us=%.0f queue_us=%.0f engine_us=%.0f answer_us=%.0f send_us=%.0f",
                t->parse * 1e6, t->queue * 1e6, t->engine * 1e6, t->answer * 1e6, t->send * 1e6);
    fputc('\n', stderr);
    fflush(stderr);
    funlockfile(stderr);
}
