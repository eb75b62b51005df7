/* Atomic file replacement: write to a temporary file in the target's
 * directory, fsync, rename over the target, fsync the directory.  A crash
 * at any point leaves either the old file or the complete new one, and
 * perhaps the temporary file PATH.tmp.PID.N, which the next nu_atomic_open
 * of PATH removes (stale_tmp.h). */
#ifndef NU_ATOMIC_FILE_H
#define NU_ATOMIC_FILE_H

#include <stdio.h>

#include "nextuser/nextuser.h"

typedef struct nu_atomic_file {
    FILE *fp;
    char *path, *tmp_path;
} nu_atomic_file;

/* Refuses (NU_ERR_IO, nothing changed) a path that is a directory, a device
 * or another non-regular file, or a symbolic link to one; a symbolic link to
 * a file, or a dangling one, is replaced itself on commit (its target is
 * never touched). */
nu_status nu_atomic_open(const char *path, nu_atomic_file *af);
/* Flushes, fsyncs and renames; on failure removes the temporary file. */
nu_status nu_atomic_commit(nu_atomic_file *af);
/* The end of a write that may have failed: commits when s is NU_OK (a write
 * error the stream saw fails the commit), else abandons it and returns s. */
nu_status nu_atomic_finish(nu_atomic_file *af, nu_status s);
/* Abandons the write: removes the temporary file, the target is untouched. */
void nu_atomic_abort(nu_atomic_file *af);

#endif
