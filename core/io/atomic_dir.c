#include "atomic_dir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "io/owned_dir.h"
#include "util/path.h"

/* The target without trailing slashes, so that a symbolic link given as
 * "link/" is seen as the link it is. */
static nu_status target_path(const char *target, char *out, size_t cap)
{
    size_t n = strlen(target);
    while (n > 1 && target[n - 1] == '/')
        n--;
    if (n == 0 || n >= cap)
        return nu_error(NU_ERR_INVALID_ARG, "directory path is empty or too long");
    memcpy(out, target, n);
    out[n] = 0;
    return NU_OK;
}

nu_status nu_atomic_dir_check(const char *target)
{
    char path[NU_PATH_MAX];
    nu_status s = target_path(target, path, sizeof path);
    return s == NU_OK ? nu_owned_dir_check(path) : s;
}

nu_status nu_atomic_dir_begin(const char *target, nu_atomic_dir *ad)
{
    /* Refused before any work: a target that is not ours is never replaced. */
    nu_status s = target_path(target, ad->target, sizeof ad->target);
    if (s == NU_OK)
        s = nu_owned_dir_check(ad->target);
    if (s != NU_OK)
        return s;
    /* mkdir (not mkdtemp) so the directory gets the usual mode under umask. */
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(ad->tmp, sizeof ad->tmp, "%s.tmp.%ld.%d", ad->target, (long)getpid(), attempt);
        if (mkdir(ad->tmp, 0777) == 0) {
            s = nu_owned_dir_mark(ad->tmp);
            if (s != NU_OK)
                nu_atomic_dir_abort(ad);
            return s;
        }
        if (errno != EEXIST)
            break;
    }
    return nu_error(NU_ERR_IO, "%s: cannot create a temporary directory beside it: %s", ad->target,
                    strerror(errno));
}

/* The temporary directory is ours alone (created by mkdir above). */
void nu_atomic_dir_abort(nu_atomic_dir *ad) { nu_owned_dir_remove(ad->tmp, 1); }

nu_status nu_atomic_dir_commit(nu_atomic_dir *ad)
{
    /* Checked again: the target may have changed since begin (training
     * writes its checkpoints long after it started). */
    nu_status s = nu_owned_dir_check(ad->target);
    if (s != NU_OK) {
        nu_atomic_dir_abort(ad);
        return s;
    }
    struct stat st;
    int exists = lstat(ad->target, &st) == 0;
    char old[4200];
    snprintf(old, sizeof old, "%s.old.XXXXXX", ad->target);
    /* Move the old directory aside under a unique name, then swap the new one in. */
    if (exists && (!mkdtemp(old) || rmdir(old) != 0 || rename(ad->target, old) != 0)) {
        s = nu_error(NU_ERR_IO, "%s: cannot move the old directory aside: %s", ad->target,
                     strerror(errno));
        nu_atomic_dir_abort(ad);
        return s;
    }
    if (rename(ad->tmp, ad->target) != 0) {
        s = nu_error(NU_ERR_IO, "%s: cannot rename the new directory into place: %s", ad->target,
                     strerror(errno));
        if (exists)
            rename(old, ad->target); /* put the old one back */
        nu_atomic_dir_abort(ad);
        return s;
    }
    /* Only nextuser's own files go; anything else someone put there stays,
     * and so does the old directory holding it. */
    if (exists)
        nu_owned_dir_remove(old, 0);
    return NU_OK;
}
