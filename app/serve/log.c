/* Logging of the service: each line built in memory, then written whole
 * under stderr's lock, so lines of concurrent threads never interleave. */
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

/* One line, built in memory and written with one call: stderr is
 * unbuffered, and character by character a request's line took a hundred
 * system calls.  A line longer than the buffer is cut. */
typedef struct log_line {
    char text[4096];
    size_t len;
} log_line;

static void line_vprintf(log_line *l, const char *fmt, va_list ap)
{
    size_t room = sizeof l->text - l->len;
    int n = vsnprintf(l->text + l->len, room, fmt, ap);
    if (n > 0)
        l->len += (size_t)n < room ? (size_t)n : room - 1;
}

static void line_printf(log_line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line_printf(log_line *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    line_vprintf(l, fmt, ap);
    va_end(ap);
}

static void line_putc(log_line *l, char c)
{
    if (l->len + 1 < sizeof l->text)
        l->text[l->len++] = c;
}

/* ts=2024-05-01T12:00:00.123456Z level=info */
static void prefix(log_line *l, int level)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    line_printf(l, "ts=%s.%06ldZ level=%s", when, ts.tv_nsec / 1000, level_names[level]);
}

/* A quoted logfmt value: quotes and backslashes escaped, control bytes as '?'. */
static void quoted(log_line *l, const char *s)
{
    line_putc(l, '"');
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            line_putc(l, '\\');
        line_putc(l, c < 0x20 ? '?' : (char)c);
    }
    line_putc(l, '"');
}

/* Whole lines under stderr's lock, so lines of threads never interleave. */
static void emit(log_line *l)
{
    l->text[l->len++] = '\n'; /* line_putc leaves room for it */
    flockfile(stderr);
    fwrite(l->text, 1, l->len, stderr);
    fflush(stderr);
    funlockfile(stderr);
}

void sv_log(int level, const char *msg, const char *fmt, ...)
{
    if (!sv_log_enabled(level))
        return;
    log_line l = {.len = 0};
    prefix(&l, level);
    line_printf(&l, " msg=");
    quoted(&l, msg);
    if (fmt) {
        line_putc(&l, ' ');
        va_list ap;
        va_start(ap, fmt);
        line_vprintf(&l, fmt, ap);
        va_end(ap);
    }
    emit(&l);
}

void sv_log_request(const char *method, const char *path, int status, size_t items, double seconds,
                    const char *version, const sv_timing *t)
{
    int level = status >= 500 ? SV_LOG_WARN : SV_LOG_INFO;
    if (!sv_log_enabled(level))
        return;
    log_line l = {.len = 0};
    prefix(&l, level);
    line_printf(&l, " msg=\"request\" method=");
    quoted(&l, method);
    line_printf(&l, " path=");
    quoted(&l, path);
    line_printf(&l, " status=%d items=%zu us=%.0f version=", status, items, seconds * 1e6);
    quoted(&l, version ? version : "");
    if (t)
        line_printf(&l, " parse_us=%.0f queue_us=%.0f engine_us=%.0f answer_us=%.0f send_us=%.0f",
                    t->parse * 1e6, t->queue * 1e6, t->engine * 1e6, t->answer * 1e6,
                    t->send * 1e6);
    emit(&l);
}
