#include "stale_tmp.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dir_open.h"
#include "util/path.h"

long nu_tmp_name_pid(const char *name, const char *base)
{
    size_t n = strlen(base);
    if (strncmp(name, base, n) || strncmp(name + n, ".tmp.", 5))
        return 0;
    const char *p = name + n + 5;
    if (*p < '1' || *p > '9')
        return 0;
    char *end;
    errno = 0;
    long pid = strtol(p, &end, 10);
    if (errno || *end != '.' || pid <= 0)
        return 0;
    const char *q = end + 1;
    if (!*q || strspn(q, "0123456789") != strlen(q))
        return 0;
    return pid;
}

int nu_tmp_name_stale(const char *name, const char *base)
{
    long pid = nu_tmp_name_pid(name, base);
    return pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

void nu_stale_tmp_files_remove(const char *path)
{
    char parent[NU_PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base)
        return;
    if (!slash)
        snprintf(parent, sizeof parent, ".");
    else if (slash == path)
        snprintf(parent, sizeof parent, "/");
    else if ((size_t)(slash - path) < sizeof parent)
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
    else
        return;
    /* Through the directory's descriptor: unlinkat never follows a link. */
    DIR *d = nu_dir_open(parent, 0);
    if (!d)
        return;
    int fd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (nu_tmp_name_stale(e->d_name, base) &&
            fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            unlinkat(fd, e->d_name, 0);
    }
    closedir(d);
}
