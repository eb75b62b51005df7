/* A directory opened for walking its entries through its own descriptor
 * (dirfd), so that fstatat/unlinkat act on the directory that was opened
 * even if its path is swapped meanwhile. */
#ifndef NU_DIR_OPEN_H
#define NU_DIR_OPEN_H

#include <dirent.h>

/* open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | extra_flags) (e.g.
 * O_NOFOLLOW), then fdopendir.  NULL with errno set on failure, and no
 * descriptor left open. */
DIR *nu_dir_open(const char *path, int extra_flags);

#endif
