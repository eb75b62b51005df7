#include "atomic_dir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "util/path.h"

/* Removes the (flat) directory and the files in it. */
static void remove_dir_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[NU_PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (nu_path_join(path, sizeof path, dir, e->d_name) == NU_OK)
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

nu_status nu_atomic_dir_begin(const char *target, nu_atomic_dir *ad)
{
    size_t n = strlen(target);
    while (n > 1 && target[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof ad->target)
        return nu_error(NU_ERR_INVALID_ARG, "directory path is empty or too long");
    memcpy(ad->target, target, n);
    ad->target[n] = 0;
    /* mkdir (not mkdtemp) so the directory gets the usual mode under umask. */
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(ad->tmp, sizeof ad->tmp, "%s.tmp.%ld.%d", ad->target, (long)getpid(), attempt);
        if (mkdir(ad->tmp, 0777) == 0)
            return NU_OK;
        if (errno != EEXIST)
            break;
    }
    return nu_error(NU_ERR_IO, "%s: cannot create a temporary directory beside it: %s", ad->target,
                    strerror(errno));
}

void nu_atomic_dir_abort(nu_atomic_dir *ad) { remove_dir_files(ad->tmp); }

nu_status nu_atomic_dir_commit(nu_atomic_dir *ad)
{
    struct stat st;
    int exists = stat(ad->target, &st) == 0;
    if (exists && !S_ISDIR(st.st_mode)) {
        nu_atomic_dir_abort(ad);
        return nu_error(NU_ERR_IO, "%s: exists and is not a directory", ad->target);
    }
    char old[4200];
    snprintf(old, sizeof old, "%s.old.XXXXXX", ad->target);
    /* Move the old directory aside under a unique name, then swap the new one in. */
    if (exists && (!mkdtemp(old) || rmdir(old) != 0 || rename(ad->target, old) != 0)) {
        nu_atomic_dir_abort(ad);
        return nu_error(NU_ERR_IO, "%s: cannot move the old directory aside: %s", ad->target,
                        strerror(errno));
    }
    if (rename(ad->tmp, ad->target) != 0) {
        nu_status s = nu_error(NU_ERR_IO, "%s: cannot rename the new directory into place: %s",
                               ad->target, strerror(errno));
        if (exists)
            rename(old, ad->target); /* put the old one back */
        nu_atomic_dir_abort(ad);
        return s;
    }
    if (exists)
        remove_dir_files(old);
    return NU_OK;
}
