#include "dir_open.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

DIR *nu_dir_open(const char *path, int extra_flags)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | extra_flags);
    if (fd < 0)
        return NULL;
    DIR *d = fdopendir(fd);
    if (!d) {
        int err = errno; /* close must not hide why */
        close(fd);
        errno = err;
    }
    return d;
}
