/* Duplicate keys in JSON objects.  cJSON keeps every member of an object,
 * duplicates included, and its lookups return the first one, so a file with
 * a key twice means one thing to nextuser and maybe another to the tool that
 * wrote it (and code counting members can overrun).  Every JSON object
 * nextuser reads is checked with this right after parsing. */
#ifndef NU_JSON_STRICT_H
#define NU_JSON_STRICT_H

#include <cjson/cJSON.h>

#include "nextuser/nextuser.h"

/* NU_OK when no object anywhere in `root` (objects and arrays are searched
 * recursively) holds the same key twice (compared exactly, as
 * cJSON_GetObjectItemCaseSensitive does).  Otherwise NU_ERR_FORMAT with the
 * message "ORIGIN: key "K" appears twice (in "PARENT")"; a NULL `origin`
 * leaves the prefix out, for callers that add "file:line: " themselves.
 * O(n log n) in the number of members of each object. */
nu_status nu_json_check_unique_keys(const cJSON *root, const char *origin);

#endif
