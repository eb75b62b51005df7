/* External string ids <-> dense row indices (user ids, feature vocabularies),
 * kept as plain text files: one id per line, line r is index r. */
#ifndef NU_IDMAP_H
#define NU_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "nextuser/nextuser.h"

#define NU_ID_NONE UINT32_MAX
#define NU_ID_MAX_BYTES 65536 /* the longest id (users, items, feature values) */
#define NU_ID_LINE_MAX (NU_ID_MAX_BYTES + 1) /* the longest line of an id file: an id and a '\r' */

typedef struct nu_idmap {
    char **names;    /* index -> id */
    uint32_t *lens;  /* index -> the id's length in bytes */
    size_t count, cap;
    uint32_t *slots; /* open addressing: index or NU_ID_NONE */
    size_t nslots;
} nu_idmap;

void nu_idmap_init(nu_idmap *m);
void nu_idmap_free(nu_idmap *m);
/* Adds `name` (copied) as the next index; an id seen before is an error
 * unless allow_existing, in which case its index is returned.  An id with a
 * NUL byte, or longer than NU_ID_MAX_BYTES, is an error. */
nu_status nu_idmap_add(nu_idmap *m, const char *name, size_t len, uint32_t *index,
                       int allow_existing);
uint32_t nu_idmap_find(const nu_idmap *m, const char *name, size_t len); /* NU_ID_NONE if absent */
/* Loads one id per line; empty lines, duplicates, ids with tabs, NUL bytes
 * or bytes that are not UTF-8 are errors naming the line, and so is a line
 * longer than NU_ID_LINE_MAX, refused before memory goes to it. */
nu_status nu_idmap_load(nu_idmap *m, const char *path);
/* Loads DIR/FILE and checks it holds `want` ids (the count `who` asks
 * for) and, when unk_first, that line 1 is <unk>: the check every model
 * and data directory makes of its id files. */
nu_status nu_idmap_load_count(nu_idmap *m, const char *dir, const char *file, size_t want,
                              int unk_first, const char *who);
/* Writes one id per line, atomically. */
nu_status nu_idmap_save(const nu_idmap *m, const char *path);

#endif
