/* Which directories nextuser may replace, and which files in them are its
 * own.  Output directories (models, checkpoints, training data) are replaced
 * whole (atomic_dir.h), so nextuser must never take over a directory that
 * holds someone else's files, nor delete a file it did not write.
 *
 * A directory is nextuser's when it holds the marker file NU_DIR_MARKER
 * (written into every directory it creates), or, for directories written
 * before the marker existed, when every entry is a regular file with a name
 * nextuser writes and one of them is model.safetensors or data.json.  An
 * empty directory may be replaced too.  A symbolic link is never followed. */
#ifndef NU_OWNED_DIR_H
#define NU_OWNED_DIR_H

#include "nextuser/nextuser.h"

#define NU_DIR_MARKER ".nextuser-dir"

/* True for NU_DIR_MARKER and the names of files nextuser writes into model,
 * checkpoint and data directories (with the temporary names of those files
 * that an interrupted write can leave). */
int nu_owned_file_name(const char *name);

/* NU_OK when `target` does not exist or may be replaced (see above);
 * otherwise NU_ERR_IO with a message naming the path and saying why: a
 * symbolic link, not a directory, or not written by nextuser. */
nu_status nu_owned_dir_check(const char *target);

/* Writes the marker into `dir` (a directory being built). */
nu_status nu_owned_dir_mark(const char *dir);

/* Removes a directory that was replaced: only the regular files named by
 * nu_owned_file_name (all regular files when `all_files`, for a temporary
 * directory nextuser created itself), never following a symbolic link; the
 * directory goes too when that empties it, else it stays. */
void nu_owned_dir_remove(const char *dir, int all_files);

#endif
