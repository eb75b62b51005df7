/* Atomic replacement of a whole directory: files are written into a
 * temporary sibling directory, which is then swapped in by rename, so the
 * target is never a mix of old and new files. */
#ifndef NU_ATOMIC_DIR_H
#define NU_ATOMIC_DIR_H

#include <stddef.h>

#include "nextuser/nextuser.h"

typedef struct nu_atomic_dir {
    char target[4096]; /* the directory to replace (trailing slashes removed) */
    char tmp[4200];    /* where to write the new files */
} nu_atomic_dir;

/* Creates the temporary directory beside `target`. */
nu_status nu_atomic_dir_begin(const char *target, nu_atomic_dir *ad);
/* Swaps the temporary directory in (the old target, if any, is removed). */
nu_status nu_atomic_dir_commit(nu_atomic_dir *ad);
/* Removes the temporary directory and its files; the target is untouched. */
void nu_atomic_dir_abort(nu_atomic_dir *ad);

#endif
