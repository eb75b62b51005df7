/* Atomic replacement of a whole directory: files are written into a
 * temporary sibling directory, which is then swapped in by rename, so the
 * target is never a mix of old and new files.  Only a target that is absent,
 * empty or nextuser's own (owned_dir.h) is replaced; every directory made
 * here carries the marker file. */
#ifndef NU_ATOMIC_DIR_H
#define NU_ATOMIC_DIR_H

#include <stddef.h>

#include "nextuser/nextuser.h"

typedef struct nu_atomic_dir {
    char target[4096]; /* the directory to replace (trailing slashes removed) */
    char tmp[4200];    /* where to write the new files */
} nu_atomic_dir;

/* NU_OK when `target` may be replaced (or does not exist): the check of
 * begin and commit, for callers that want it before a long computation. */
nu_status nu_atomic_dir_check(const char *target);
/* Refuses a target nextuser may not replace (a symbolic link, a file, a
 * directory it did not write: NU_ERR_IO, nothing changed); else creates the
 * temporary directory beside it, with the marker in it. */
nu_status nu_atomic_dir_begin(const char *target, nu_atomic_dir *ad);
/* Checks the target again, then swaps the temporary directory in.  The old
 * target's own files are removed; any others stay, in the old directory
 * left beside it as TARGET.old.XXXXXX. */
nu_status nu_atomic_dir_commit(nu_atomic_dir *ad);
/* Removes the temporary directory and its files; the target is untouched. */
void nu_atomic_dir_abort(nu_atomic_dir *ad);

#endif
