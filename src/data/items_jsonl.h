/* Reading items from JSON Lines (docs/model-format.md, "Items file"). */
#ifndef NU_ITEMS_JSONL_H
#define NU_ITEMS_JSONL_H

#include "data/items.h"

/* An items line: at most this many bytes and JSON values (refused before
 * the JSON is parsed into a tree). */
#define NU_ITEMS_MAX_LINE_BYTES (64 << 20)
#define NU_ITEMS_MAX_LINE_VALUES (4 << 20)
/* Ids given as JSON numbers: integer literals of at most 40 digits (+ sign). */
#define NU_ID_NUMBER_MAX 42

/* Appends every item of the file to `out` (initialised for the model).
 * Unknown user ids are skipped, unknown feature values map to <unk>, and
 * both are counted in `out`; a malformed line (strict JSON:
 * util/json_strict.h), a feature key the model does not have, a wrongly
 * typed value, an id that is a number but not an integer literal, or an
 * item id the file already had is an error naming path and line. */
nu_status nu_items_read_jsonl(const char *path, const nu_model *m, nu_items *out);

/* Parses one line (exposed for tests). */
nu_status nu_items_parse_line(const char *line, size_t len, const nu_model *m, nu_items *out);

#endif
