#include "atomic_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "io/owned_dir.h"
#include "io/stale_tmp.h"
#include "util/path.h"

void (*nu_atomic_dir_test_hook)(const char *point);

static void hook(const char *point)
{
    if (nu_atomic_dir_test_hook)
        nu_atomic_dir_test_hook(point);
}

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

/* The directory holding `path` and the last component's name. */
static void split_path(const char *path, char *parent, size_t cap, const char **base)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(parent, cap, ".");
        *base = path;
    } else if (slash == path) {
        snprintf(parent, cap, "/");
        *base = slash + 1;
    } else {
        snprintf(parent, cap, "%.*s", (int)(slash - path), path);
        *base = slash + 1;
    }
}

static void fsync_parent(const char *path)
{
    char parent[NU_PATH_MAX];
    const char *base;
    split_path(path, parent, sizeof parent, &base);
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd); /* best effort: some filesystems refuse directory fsync */
        close(fd);
    }
}

/* ---- the writer's lock: TARGET.nextuser-lock beside the target ---- */

/* flock locks belong to open files, so a process takes each lock once and
 * counts its holders (a training run holds its --out while each checkpoint
 * takes it again). */
typedef struct held {
    char target[4096];
    int fd, refs;
} held;

#define MAX_HELD 32
static held held_locks[MAX_HELD];
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;

nu_status nu_atomic_dir_lock(const char *target_in)
{
    char target[4096];
    nu_status s = target_path(target_in, target, sizeof target);
    if (s != NU_OK)
        return s;
    pthread_mutex_lock(&held_mu);
    held *free_slot = NULL;
    for (int i = 0; i < MAX_HELD; i++) {
        if (held_locks[i].refs && !strcmp(held_locks[i].target, target)) {
            held_locks[i].refs++;
            pthread_mutex_unlock(&held_mu);
            return NU_OK;
        }
        if (!held_locks[i].refs && !free_slot)
            free_slot = &held_locks[i];
    }
    char path[4200];
    snprintf(path, sizeof path, "%s%s", target, NU_DIR_LOCK_SUFFIX);
    if (!free_slot)
        s = nu_error(NU_ERR_IO, "%s: more than %d output directories held at once", target,
                     MAX_HELD);
    /* The holder removes the file when it is done, so a lock is only good
     * while the path still names the file locked: else take it again. */
    for (int attempt = 0; s == NU_OK; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd < 0) {
            s = nu_error(NU_ERR_IO, "%s: cannot create the lock file %s: %s", target, path,
                         strerror(errno));
            break;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            s = errno == EWOULDBLOCK
                    ? nu_error(NU_ERR_IO,
                               "%s: another nextuser process is writing this directory (it "
                               "holds %s); wait for it to finish or give another output "
                               "directory",
                               target, path)
                    : nu_error(NU_ERR_IO, "%s: cannot lock %s: %s", target, path,
                               strerror(errno));
            close(fd);
            break;
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            snprintf(free_slot->target, sizeof free_slot->target, "%s", target);
            free_slot->fd = fd;
            free_slot->refs = 1;
            break;
        }
        close(fd);
        if (attempt == 100)
            s = nu_error(NU_ERR_IO, "%s: cannot take the lock %s (it keeps changing)", target,
                         path);
    }
    pthread_mutex_unlock(&held_mu);
    return s;
}

void nu_atomic_dir_unlock(const char *target_in)
{
    char target[4096];
    if (target_path(target_in, target, sizeof target) != NU_OK)
        return;
    pthread_mutex_lock(&held_mu);
    for (int i = 0; i < MAX_HELD; i++)
        if (held_locks[i].refs && !strcmp(held_locks[i].target, target)) {
            if (--held_locks[i].refs == 0) {
                /* Removed while still locked: a process that opened it
                 * meanwhile sees the path changed and takes it again. */
                char path[4200];
                snprintf(path, sizeof path, "%s%s", target, NU_DIR_LOCK_SUFFIX);
                unlink(path);
                close(held_locks[i].fd);
            }
            break;
        }
    pthread_mutex_unlock(&held_mu);
}

/* ---- what a killed writer leaves: recovered, then cleaned ---- */

/* "BASE.old.XXXXXX" (mkdtemp's six characters). */
static int is_old(const char *name, const char *base)
{
    size_t n = strlen(base);
    return !strncmp(name, base, n) && !strncmp(name + n, ".old.", 5) && strlen(name + n + 5) == 6;
}

/* A directory nextuser wrote, with its marker (never a link, never one
 * without the marker: a directory named like ours is not enough). */
static int ours(const char *path)
{
    struct stat st;
    char marker[NU_PATH_MAX];
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode) || nu_owned_dir_check(path) != NU_OK ||
        nu_path_join(marker, sizeof marker, path, NU_DIR_MARKER) != NU_OK)
        return 0;
    return lstat(marker, &st) == 0 && S_ISREG(st.st_mode);
}

/* Called with the lock held, so no other writer of this target is at work:
 * a target absent beside a complete DIR.old.* (a kill between the two
 * renames of a swap without RENAME_EXCHANGE) gets it back, the newest; then
 * temporary directories of dead processes and old directories are cleaned,
 * their own files only. */
static void recover_and_clean(const char *target)
{
    char parent[NU_PATH_MAX], path[NU_PATH_MAX], newest[NU_PATH_MAX] = "";
    const char *base;
    split_path(target, parent, sizeof parent, &base);
    struct stat st;
    int absent = lstat(target, &st) != 0 && errno == ENOENT;
    DIR *d = opendir(parent);
    if (!d)
        return;
    struct dirent *e;
    time_t newest_t = 0;
    if (absent) {
        while ((e = readdir(d)) != NULL) {
            if (!is_old(e->d_name, base) ||
                nu_path_join(path, sizeof path, parent, e->d_name) != NU_OK || !ours(path) ||
                lstat(path, &st) != 0)
                continue;
            if (!newest[0] || st.st_mtime > newest_t) {
                snprintf(newest, sizeof newest, "%s", path);
                newest_t = st.st_mtime;
            }
        }
        if (newest[0] && rename(newest, target) == 0)
            fsync_parent(target);
        rewinddir(d);
    }
    while ((e = readdir(d)) != NULL) {
        if ((!nu_tmp_name_stale(e->d_name, base) && !is_old(e->d_name, base)) ||
            nu_path_join(path, sizeof path, parent, e->d_name) != NU_OK)
            continue;
        if (ours(path))
            nu_owned_dir_remove(path, 0);
        else
            rmdir(path); /* an empty one (killed before its marker was written or after it
                          * was removed); rmdir never takes a directory with files */
    }
    closedir(d);
}

/* ---- the swap ---- */

nu_status nu_atomic_dir_check(const char *target)
{
    char path[NU_PATH_MAX];
    nu_status s = target_path(target, path, sizeof path);
    return s == NU_OK ? nu_owned_dir_check(path) : s;
}

static void release(nu_atomic_dir *ad)
{
    if (ad->locked)
        nu_atomic_dir_unlock(ad->target);
    ad->locked = 0;
}

nu_status nu_atomic_dir_begin(const char *target, nu_atomic_dir *ad)
{
    ad->locked = 0;
    ad->tmp[0] = 0;
    /* Refused before any work: a target that is not ours is never replaced. */
    nu_status s = target_path(target, ad->target, sizeof ad->target);
    if (s == NU_OK)
        s = nu_atomic_dir_lock(ad->target);
    if (s != NU_OK)
        return s;
    ad->locked = 1;
    recover_and_clean(ad->target);
    s = nu_owned_dir_check(ad->target);
    if (s != NU_OK) {
        release(ad);
        return s;
    }
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
    s = nu_error(NU_ERR_IO, "%s: cannot create a temporary directory beside it: %s", ad->target,
                 strerror(errno));
    release(ad);
    return s;
}

/* The temporary directory is ours alone (created by mkdir above). */
void nu_atomic_dir_abort(nu_atomic_dir *ad)
{
    if (ad->tmp[0])
        nu_owned_dir_remove(ad->tmp, 1);
    release(ad);
}

/* A fresh, unused name DIR.old.XXXXXX. */
static int old_name(const char *target, char *old, size_t cap)
{
    snprintf(old, cap, "%s.old.XXXXXX", target);
    return mkdtemp(old) && rmdir(old) == 0;
}

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
    if (!exists) {
        if (rename(ad->tmp, ad->target) != 0) {
            s = nu_error(NU_ERR_IO, "%s: cannot rename the new directory into place: %s",
                         ad->target, strerror(errno));
            nu_atomic_dir_abort(ad);
            return s;
        }
        fsync_parent(ad->target);
        release(ad);
        return NU_OK;
    }
    /* One atomic exchange: the target is the old or the new directory at
     * every instant, and a crash leaves the old one under the temporary
     * name (cleaned by the next write). */
    if (renameat2(AT_FDCWD, ad->tmp, AT_FDCWD, ad->target, RENAME_EXCHANGE) == 0) {
        hook("swap");
        fsync_parent(ad->target);
        /* Anything but our files stays, in DIR.old.XXXXXX as documented. */
        const char *gone = ad->tmp;
        if (old_name(ad->target, old, sizeof old) && rename(ad->tmp, old) == 0)
            gone = old;
        nu_owned_dir_remove(gone, 0);
        release(ad);
        return NU_OK;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
        s = nu_error(NU_ERR_IO, "%s: cannot swap the new directory in: %s", ad->target,
                     strerror(errno));
        nu_atomic_dir_abort(ad);
        return s;
    }
    /* A filesystem without the exchange: two renames, and a crash between
     * them is recovered by the next write (recover_and_clean). */
    if (!old_name(ad->target, old, sizeof old) || rename(ad->target, old) != 0) {
        s = nu_error(NU_ERR_IO, "%s: cannot move the old directory aside: %s", ad->target,
                     strerror(errno));
        nu_atomic_dir_abort(ad);
        return s;
    }
    hook("swap");
    if (rename(ad->tmp, ad->target) != 0) {
        s = nu_error(NU_ERR_IO, "%s: cannot rename the new directory into place: %s", ad->target,
                     strerror(errno));
        rename(old, ad->target); /* put the old one back */
        nu_atomic_dir_abort(ad);
        return s;
    }
    fsync_parent(ad->target);
    /* Only nextuser's own files go; anything else someone put there stays,
     * and so does the old directory holding it. */
    nu_owned_dir_remove(old, 0);
    release(ad);
    return NU_OK;
}
