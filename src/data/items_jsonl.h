/* Reading items from JSON Lines (docs/model-format.md, "Items file"). */
#ifndef NU_ITEMS_JSONL_H
#define NU_ITEMS_JSONL_H

#include "data/items.h"

/* Appends every item of the file to `out` (initialised for the model).
 * Unknown user ids are skipped, unknown feature values map to <unk>, and
 * both are counted in `out`; a malformed line, a feature key the model does
 * not have, or a wrongly typed value is an error naming path and line. */
nu_status nu_items_read_jsonl(const char *path, const nu_model *m, nu_items *out);

/* Parses one line (exposed for tests). */
nu_status nu_items_parse_line(const char *line, size_t len, const nu_model *m, nu_items *out);

#endif
