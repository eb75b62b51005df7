#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "io/stale_tmp.h"

/* Only a regular file is replaced.  A symbolic link is replaced itself
 * (rename never follows it), so its target is never written or deleted;
 * a link to a directory or device is refused, as that is surely not meant
 * as an output file. */
static nu_status check_target(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? NU_OK
                               : nu_error(NU_ERR_IO, "%s: cannot inspect: %s", path,
                                          strerror(errno));
    if (S_ISDIR(st.st_mode))
        return nu_error(NU_ERR_IO, "%s: is a directory; give a file path (nothing was changed)",
                        path);
    if (S_ISLNK(st.st_mode)) {
        if (stat(path, &st) != 0 || S_ISREG(st.st_mode))
            return NU_OK; /* dangling, or to a file: the link is replaced */
        return nu_error(NU_ERR_IO,
                        "%s: is a symbolic link to %s; give a file path (nothing was changed)",
                        path, S_ISDIR(st.st_mode) ? "a directory" : "something not a regular file");
    }
    if (!S_ISREG(st.st_mode))
        return nu_error(NU_ERR_IO, "%s: is not a regular file; give a file path (nothing was "
                        "changed)", path);
    return NU_OK;
}

nu_status nu_atomic_open(const char *path, nu_atomic_file *af)
{
    memset(af, 0, sizeof af[0]);
    nu_status checked = check_target(path);
    if (checked != NU_OK)
        return checked;
    /* What a killed writer of this path left (never cleaned otherwise: a
     * table or a result file is rewritten in place, not as a directory). */
    nu_stale_tmp_files_remove(path);
    size_t n = strlen(path);
    af->path = strdup(path);
    af->tmp_path = malloc(n + 40);
    if (!af->path || !af->tmp_path) {
        nu_atomic_abort(af);
        return nu_error(NU_ERR_NOMEM, "out of memory opening %s", path);
    }
    /* A unique sibling name, created with the usual mode (umask applies,
     * unlike mkstemp's 0600). */
    static _Atomic unsigned counter;
    int fd = -1;
    for (int attempt = 0; fd < 0 && attempt < 100; attempt++) {
        snprintf(af->tmp_path, n + 40, "%s.tmp.%ld.%u", path, (long)getpid(), counter++);
        fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        nu_status s = nu_error(NU_ERR_IO, "%s: cannot create a temporary file: %s", path,
                               strerror(errno));
        free(af->tmp_path);
        af->tmp_path = NULL;
        nu_atomic_abort(af);
        return s;
    }
    af->fp = fdopen(fd, "wb");
    if (!af->fp) {
        close(fd);
        nu_atomic_abort(af);
        return nu_error(NU_ERR_IO, "%s: fdopen failed", path);
    }
    return NU_OK;
}

static void fsync_parent_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd); /* best effort: some filesystems refuse directory fsync */
        close(dfd);
    }
    free(copy);
}

nu_status nu_atomic_commit(nu_atomic_file *af)
{
    nu_status s = NU_OK;
    if (fflush(af->fp) != 0 || ferror(af->fp) || fsync(fileno(af->fp)) != 0)
        s = nu_error(NU_ERR_IO, "%s: write failed: %s", af->path, strerror(errno));
    if (fclose(af->fp) != 0 && s == NU_OK)
        s = nu_error(NU_ERR_IO, "%s: close failed: %s", af->path, strerror(errno));
    af->fp = NULL;
    if (s == NU_OK && rename(af->tmp_path, af->path) != 0)
        s = nu_error(NU_ERR_IO, "%s: rename failed: %s", af->path, strerror(errno));
    if (s == NU_OK) {
        fsync_parent_dir(af->path);
        free(af->tmp_path);
        af->tmp_path = NULL; /* renamed: nothing to remove */
    }
    nu_atomic_abort(af);
    return s;
}

nu_status nu_atomic_finish(nu_atomic_file *af, nu_status s)
{
    if (s == NU_OK)
        return nu_atomic_commit(af);
    nu_atomic_abort(af);
    return s;
}

void nu_atomic_abort(nu_atomic_file *af)
{
    if (af->fp)
        fclose(af->fp);
    if (af->tmp_path)
        unlink(af->tmp_path);
    free(af->tmp_path);
    free(af->path);
    memset(af, 0, sizeof af[0]);
}
