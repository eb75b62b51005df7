#include "owned_dir.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dir_open.h"
#include "error.h"
#include "util/path.h"

/* Every file name nextuser writes into its directories.  A writer that adds
 * a file to a model, checkpoint or data directory adds its name here, or a
 * later replacement would leave that file behind. */
static const char *const own_names[] = {
    NU_DIR_MARKER,
    "model.safetensors",      /* model (model.c) */
    "users.txt",              /* model and data */
    "user_table.safetensors", /* nextuser table (user_table.c) */
    "optimizer.safetensors",  /* checkpoint (checkpoint.c) */
    "train_state.json",       /* checkpoint */
    "data.json",              /* data (prepare.c, synthetic.c) */
    "items.jsonl",            /* data */
    "truth.json",             /* synthetic data */
};

/* Files that only nextuser's directories have: a directory from before the
 * marker holds one of them. */
static int is_anchor(const char *name)
{
    return strcmp(name, "model.safetensors") == 0 || strcmp(name, "data.json") == 0;
}

static int all_of(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(set, s[i]))
            return 0;
    return 1;
}

/* Length of `name` without the ".tmp.PID.N" suffix of an interrupted
 * atomic_file write (atomic_file.c), or its whole length. */
static size_t without_tmp_suffix(const char *name)
{
    size_t n = strlen(name), end = n;
    for (int part = 0; part < 2; part++) {
        size_t start = end;
        while (start > 0 && isdigit((unsigned char)name[start - 1]))
            start--;
        if (start == end || start == 0 || name[start - 1] != '.')
            return n;
        end = start - 1;
    }
    return end > 4 && strncmp(name + end - 4, ".tmp", 4) == 0 ? end - 4 : n;
}

int nu_owned_file_name(const char *name)
{
    size_t n = without_tmp_suffix(name);
    for (size_t i = 0; i < sizeof own_names / sizeof own_names[0]; i++)
        if (strlen(own_names[i]) == n && strncmp(name, own_names[i], n) == 0)
            return 1;
    /* vocab_<field>.txt, field names as docs/model-format.md allows them. */
    static const char field_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789_-";
    return n > 10 && n - 10 <= 63 && strncmp(name, "vocab_", 6) == 0 &&
           strncmp(name + n - 4, ".txt", 4) == 0 && all_of(name + 6, n - 10, field_chars);
}

nu_status nu_owned_dir_check(const char *target)
{
    struct stat st;
    if (lstat(target, &st) != 0)
        return errno == ENOENT ? NU_OK
                               : nu_error(NU_ERR_IO, "%s: cannot inspect: %s", target,
                                          strerror(errno));
    if (S_ISLNK(st.st_mode))
        return nu_error(NU_ERR_IO,
                        "%s: is a symbolic link; give the real directory path (nothing was "
                        "changed)",
                        target);
    if (!S_ISDIR(st.st_mode))
        return nu_error(NU_ERR_IO, "%s: exists and is not a directory (nothing was changed)",
                        target);
    DIR *d = nu_dir_open(target, O_NOFOLLOW);
    if (!d)
        return nu_error(NU_ERR_IO, "%s: cannot read the directory: %s", target, strerror(errno));
    int fd = dirfd(d);
    int marked = 0, anchored = 0, entries = 0;
    char foreign[256] = "";
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        entries++;
        struct stat es;
        int regular = fstatat(fd, e->d_name, &es, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(es.st_mode);
        if (regular && strcmp(e->d_name, NU_DIR_MARKER) == 0)
            marked = 1;
        else if (regular && nu_owned_file_name(e->d_name))
            anchored |= is_anchor(e->d_name);
        else if (!foreign[0])
            snprintf(foreign, sizeof foreign, "%s", e->d_name);
    }
    closedir(d);
    if (marked || entries == 0 || (anchored && !foreign[0]))
        return NU_OK;
    if (foreign[0])
        return nu_error(NU_ERR_IO,
                        "%s: exists and was not written by nextuser (it holds \"%s\" and no %s "
                        "marker); nothing was changed: give a new or empty directory",
                        target, foreign, NU_DIR_MARKER);
    return nu_error(NU_ERR_IO,
                    "%s: exists and was not written by nextuser (no %s marker, model.safetensors "
                    "or data.json); nothing was changed: give a new or empty directory",
                    target, NU_DIR_MARKER);
}

nu_status nu_owned_dir_mark(const char *dir)
{
    char path[NU_PATH_MAX], text[256];
    nu_status s = nu_path_join(path, sizeof path, dir, NU_DIR_MARKER);
    if (s != NU_OK)
        return s;
    int len = snprintf(text, sizeof text,
                       "Written by nextuser %s. nextuser commands replace this directory whole;\n"
                       "they never delete files they did not write.\n",
                       nu_version());
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0)
        return nu_error(NU_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    int ok = write(fd, text, (size_t)len) == len;
    int err = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        err = errno;
    }
    return ok ? NU_OK : nu_error(NU_ERR_IO, "%s: write failed: %s", path, strerror(err));
}

void nu_owned_dir_remove(const char *dir, int all_files)
{
    /* Through a directory descriptor opened without following a link, so a
     * path swapped for a symbolic link meanwhile cannot redirect the
     * deletions; unlinkat never follows one either. */
    DIR *d = nu_dir_open(dir, O_NOFOLLOW);
    if (!d)
        return;
    int fd = dirfd(d);
    /* The marker goes last: a removal killed half-way leaves a directory
     * that still says it is ours, so the next writer finishes the job. */
    struct dirent *e;
    int marked = 0;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (!all_files && !nu_owned_file_name(e->d_name))
            continue;
        if (strcmp(e->d_name, NU_DIR_MARKER) == 0)
            marked = 1;
        else if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            unlinkat(fd, e->d_name, 0);
    }
    struct stat st;
    if (marked && fstatat(fd, NU_DIR_MARKER, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
        unlinkat(fd, NU_DIR_MARKER, 0);
    closedir(d);
    rmdir(dir); /* fails, harmlessly, when files that are not ours remain */
}
