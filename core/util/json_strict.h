/* Strict JSON: every JSON text nextuser reads goes through
 * nu_json_parse_strict, which refuses what cJSON alone would accept
 * silently: text after the value (`{"id":"a"}{"id":"b"}` would be read as
 * one item), NUL bytes (C strings would stop there), bytes that are not
 * UTF-8, the escape \u0000 (it cuts a string short), more values than the
 * caller allows (before cJSON builds a tree of them), and duplicate keys
 * (cJSON keeps every member of an object and its lookups return the first
 * one, so a file with a key twice means one thing to nextuser and maybe
 * another to the tool that wrote it). */
#ifndef NU_JSON_STRICT_H
#define NU_JSON_STRICT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "nextuser/nextuser.h"

/* Where each number of a JSON text is, in document order (the order in
 * which a depth-first walk of the parsed tree meets the number nodes), so a
 * caller can read a number exactly as it was written. */
typedef struct nu_json_numbers {
    size_t *off, *len;
    size_t count, cap;
} nu_json_numbers;

void nu_json_numbers_free(nu_json_numbers *n);

/* Parses `len` bytes of `text` (which need not be NUL-terminated) as one
 * JSON value followed only by whitespace.  Refused, NU_ERR_FORMAT with a
 * message "ORIGIN: what (at byte N)" (no prefix when `origin` is NULL): a NUL
 * byte, invalid UTF-8 (overlong forms, surrogates and code points above
 * U+10FFFF included), a \u0000 escape, more than `max_values` values (arrays,
 * objects and scalars; 0: no limit), invalid JSON, text after the value, a key
 * twice in one object.  `numbers`, when not NULL, receives the numbers'
 * places (reset first; free it with nu_json_numbers_free). */
nu_status nu_json_parse_strict(const char *text, size_t len, const char *origin,
                               size_t max_values, cJSON **out, nu_json_numbers *numbers);

/* NU_OK when `len` bytes at `s` are valid UTF-8 without NUL bytes; else
 * NU_ERR_FORMAT and, in *bad, the offset of the first bad byte. */
nu_status nu_utf8_check(const char *s, size_t len, size_t *bad);

/* Number k of `text` (as placed by nu_json_parse_strict) exactly as written,
 * when it is an integer literal, -?(0|[1-9][0-9]*), shorter than `cap`:
 * copied to buf, which is returned; else NULL (a fraction, an exponent, or
 * too long).  This is how ids given as JSON numbers are read: a double
 * would turn 9007199254740993 into ...992 and 1e300 into 301 digits. */
const char *nu_json_integer_text(const char *text, const nu_json_numbers *nums, size_t k,
                                 char *buf, size_t cap);

/* Number k of `text` read exactly as an int64 into *out: 1 when it is an
 * integer literal (as above) within INT64_MIN..INT64_MAX, else 0 (a
 * fraction, an exponent, or out of range).  Timestamps are read this way:
 * through a double, 9007199254740993 would become ...992. */
int nu_json_int64_at(const char *text, const nu_json_numbers *nums, size_t k, int64_t *out);

/* How many number nodes `v` and its descendants hold. */
size_t nu_json_count_numbers(const cJSON *v);
/* The numbers inside the members of object `root` that come before
 * `member` (the index of member's first number in the document order). */
size_t nu_json_numbers_before(const cJSON *root, const cJSON *member);

/* NU_OK when no object anywhere in `root` (objects and arrays are searched
 * recursively) holds the same key twice (compared exactly, as
 * cJSON_GetObjectItemCaseSensitive does).  Otherwise NU_ERR_FORMAT with the
 * message "ORIGIN: key "K" appears twice (in "PARENT")"; a NULL `origin`
 * leaves the prefix out, for callers that add "file:line: " themselves.
 * O(n log n) in the number of members of each object. */
nu_status nu_json_check_unique_keys(const cJSON *root, const char *origin);

#endif
