/* The text of each element of one array member of a JSON object, found in
 * the request body itself, so that each item reaches the library's parser
 * as it was sent instead of being printed back from a parsed tree. */
#ifndef NU_SERVE_JSON_SPANS_H
#define NU_SERVE_JSON_SPANS_H

#include <stddef.h>

/* body (len bytes) must be JSON that cJSON accepted.  For the last
 * top-level member named key (written without escapes), stores where each
 * of its array's elements starts and how long it is (up to n) and returns
 * the number of elements; returns 0 when the member is missing, not an
 * array, a top-level name has escapes, or there are more than n elements. */
size_t sv_json_array_spans(const char *body, size_t len, const char *key, size_t n,
                           const char **start, size_t *span);

#endif
