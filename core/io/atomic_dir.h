/* Atomic replacement of a whole directory: files are written into a
 * temporary sibling directory, which is then swapped in by one
 * renameat2(RENAME_EXCHANGE) (two renames on filesystems without it, a crash
 * between them recovered by the next write), so the target is never a mix
 * of old and new files and never absent.  Only a target that is absent,
 * empty or nextuser's own (owned_dir.h) is replaced; every directory made
 * here carries the marker file.  A writer holds TARGET.nextuser-lock (an
 * flock, released when the process ends however it ends), so a second
 * process writing the same target is refused; and it removes, before it
 * writes, what killed writers left beside the target (TARGET.tmp.PID.N of
 * dead processes, TARGET.old.XXXXXX), only those with the marker and only
 * nextuser's own files in them, or empty ones. */
#ifndef NU_ATOMIC_DIR_H
#define NU_ATOMIC_DIR_H

#include <stddef.h>

#include "nextuser/nextuser.h"

#define NU_DIR_LOCK_SUFFIX ".nextuser-lock"

typedef struct nu_atomic_dir {
    char target[4096]; /* the directory to replace (trailing slashes removed) */
    char tmp[4200];    /* where to write the new files */
    int locked;        /* holds the target's lock (begin to commit or abort) */
} nu_atomic_dir;

/* Takes the writer's lock of `target` for this process (again, when it holds
 * it already: each call needs its nu_atomic_dir_unlock).  NU_ERR_IO when
 * another process holds it.  begin takes it too; a long run that writes the
 * same target many times (training) holds it from start to end. */
nu_status nu_atomic_dir_lock(const char *target);
void nu_atomic_dir_unlock(const char *target);

/* NU_OK when `target` may be replaced (or does not exist): the check of
 * begin and commit, for callers that want it before a long computation. */
nu_status nu_atomic_dir_check(const char *target);
/* Takes the lock, recovers and cleans what killed writers left, refuses a
 * target nextuser may not replace (a symbolic link, a file, a directory it
 * did not write: NU_ERR_IO, nothing changed); else creates the temporary
 * directory beside it, with the marker in it. */
nu_status nu_atomic_dir_begin(const char *target, nu_atomic_dir *ad);
/* Checks the target again, then swaps the temporary directory in and
 * fsyncs the parent.  The old target's own files are removed; any others
 * stay, in the old directory left beside it as TARGET.old.XXXXXX.  Commit
 * and abort release the lock. */
nu_status nu_atomic_dir_commit(nu_atomic_dir *ad);
/* Removes the temporary directory and its files; the target is untouched. */
void nu_atomic_dir_abort(nu_atomic_dir *ad);

/* Tests only: called, when set, at the named points of a commit ("swap":
 * in the middle of the swap), so a test can kill the process there. */
extern void (*nu_atomic_dir_test_hook)(const char *point);

#endif
