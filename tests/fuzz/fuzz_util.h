/* Shared by the libFuzzer targets (tests/fuzz, issue 17): a private
 * temporary directory per process for the parsers that read files by path,
 * and the split of one input into several files at a separator line. */
#ifndef NU_FUZZ_UTIL_H
#define NU_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The separator between the files of one input (also in each dictionary). */
#define FZ_SEP "\n#--#\n"

static char fz_dir_[64];
static char fz_names_[16][64];
static int fz_nnames_;

static inline void fz_cleanup_(void)
{
    char p[192];
    for (int i = 0; i < fz_nnames_; i++) {
        snprintf(p, sizeof p, "%s/%s", fz_dir_, fz_names_[i]);
        unlink(p);
    }
    if (fz_dir_[0])
        rmdir(fz_dir_);
}

/* The process's own directory (created on first use, removed at exit). */
static inline const char *fz_dir(void)
{
    if (!fz_dir_[0]) {
        /* $TMPDIR, else /dev/shm (memory: several times the executions of
         * a disk's /tmp), else /tmp */
        const char *t = getenv("TMPDIR");
        if (!t || !*t || strlen(t) >= 40)
            t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fz_dir_, sizeof fz_dir_, "%s/nu-fuzz-XXXXXX", t);
        if (!mkdtemp(fz_dir_)) {
            perror("mkdtemp");
            abort();
        }
        atexit(fz_cleanup_);
    }
    return fz_dir_;
}

/* DIR/name: written with n bytes of d, or removed when d is NULL. */
static inline const char *fz_file(const char *name, const void *d, size_t n)
{
    static char path[192];
    snprintf(path, sizeof path, "%s/%s", fz_dir(), name);
    int known = 0;
    for (int i = 0; i < fz_nnames_; i++)
        known |= !strcmp(fz_names_[i], name);
    if (!known && fz_nnames_ < 16)
        snprintf(fz_names_[fz_nnames_++], sizeof fz_names_[0], "%s", name);
    if (!d) {
        unlink(path);
        return path;
    }
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(d, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
    return path;
}

/* Splits d at FZ_SEP into at most `most` parts (the last keeps the rest);
 * returns how many. */
static inline size_t fz_split(const uint8_t *d, size_t n, const uint8_t **part, size_t *len, size_t most)
{
    size_t k = 0, sl = strlen(FZ_SEP);
    while (k + 1 < most) {
        const uint8_t *at = n >= sl ? memmem(d, n, FZ_SEP, sl) : NULL;
        if (!at)
            break;
        part[k] = d;
        len[k++] = (size_t)(at - d);
        n -= (size_t)(at - d) + sl;
        d = at + sl;
    }
    part[k] = d;
    len[k++] = n;
    return k;
}

/* A NUL-terminated copy (free it). */
static inline char *fz_cstr(const uint8_t *d, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, d, n);
    s[n] = 0;
    return s;
}

/* With NU_FUZZ_VERBOSE set (checking the seeds by hand): what a parser
 * said.  Returns ok. */
static inline int fz_said(const char *what, int ok, const char *msg)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("NU_FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "%s: %s%s\n", what, ok ? "ok" : "refused: ", ok ? "" : msg);
    return ok;
}

#endif
