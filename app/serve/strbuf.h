/* A growable text buffer for answers and metrics.  An allocation failure
 * sticks (failed = 1) and later appends do nothing. */
#ifndef NU_SERVE_STRBUF_H
#define NU_SERVE_STRBUF_H

#include <stddef.h>

typedef struct sv_strbuf {
    char *data;
    size_t len, cap;
    int failed;
} sv_strbuf;

void sv_sb_append(sv_strbuf *b, const char *s, size_t n);
void sv_sb_puts(sv_strbuf *b, const char *s);
void sv_sb_printf(sv_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string literal, quotes included. */
void sv_sb_json_string(sv_strbuf *b, const char *s);
/* A float as a JSON number with 9 significant digits ("%.9g": round-trips
 * float32); null when not finite. */
void sv_sb_json_float(sv_strbuf *b, float v);
/* The text (NUL-terminated, owned by the caller), or NULL after a failure
 * (the buffer is freed then). */
char *sv_sb_take(sv_strbuf *b, size_t *len);
void sv_sb_free(sv_strbuf *b);

#endif
