/* Element spans of a top-level JSON array (json_spans.h).  The body was
 * already accepted by cJSON, so this only walks it: strings with their
 * escapes, nesting by brackets, scalars up to the next delimiter. */
#include "json_spans.h"

#include <string.h>

typedef struct {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* Past a string starting at c->p ('"'); sets *escaped when it had a '\'. */
static int skip_string(cursor *c, int *escaped)
{
    c->p++;
    while (c->p < c->end && *c->p != '"') {
        if (*c->p == '\\') {
            *escaped = 1;
            c->p++;
        }
        c->p++;
    }
    if (c->p >= c->end)
        return 0;
    c->p++;
    return 1;
}

/* Past one value of any kind. */
static int skip_value(cursor *c)
{
    int esc = 0;
    if (c->p >= c->end)
        return 0;
    if (*c->p == '"')
        return skip_string(c, &esc);
    if (*c->p == '{' || *c->p == '[') {
        size_t depth = 0;
        while (c->p < c->end) {
            char ch = *c->p;
            if (ch == '"') {
                if (!skip_string(c, &esc))
                    return 0;
                continue;
            }
            if (ch == '{' || ch == '[')
                depth++;
            else if ((ch == '}' || ch == ']') && --depth == 0) {
                c->p++;
                return 1;
            }
            c->p++;
        }
        return 0;
    }
    while (c->p < c->end && !strchr(",}] \t\r\n", *c->p))
        c->p++;
    return 1;
}

size_t sv_json_array_spans(const char *body, size_t len, const char *key, size_t n,
                           const char **start, size_t *span)
{
    cursor c = {body, body + len};
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{')
        return 0;
    c.p++;
    const char *arr = NULL, *arr_end = NULL;
    size_t klen = strlen(key);
    for (;;) {
        skip_ws(&c);
        if (c.p < c.end && *c.p == '}')
            break;
        if (c.p >= c.end || *c.p != '"')
            return 0;
        const char *k0 = c.p + 1;
        int esc = 0;
        if (!skip_string(&c, &esc) || esc)
            return 0;
        size_t kl = (size_t)(c.p - 1 - k0);
        skip_ws(&c);
        if (c.p >= c.end || *c.p != ':')
            return 0;
        c.p++;
        skip_ws(&c);
        const char *v0 = c.p;
        if (!skip_value(&c))
            return 0;
        if (kl == klen && !memcmp(k0, key, klen)) { /* the last one wins, as in cJSON's walk */
            arr = v0;
            arr_end = c.p;
        }
        skip_ws(&c);
        if (c.p < c.end && *c.p == ',')
            c.p++;
    }
    if (!arr || *arr != '[')
        return 0;
    cursor a = {arr + 1, arr_end - 1};
    size_t count = 0;
    for (;;) {
        skip_ws(&a);
        if (a.p >= a.end)
            break;
        if (count == n)
            return 0;
        const char *e0 = a.p;
        if (!skip_value(&a))
            return 0;
        start[count] = e0;
        span[count] = (size_t)(a.p - e0);
        count++;
        skip_ws(&a);
        if (a.p < a.end && *a.p == ',')
            a.p++;
    }
    return count;
}
