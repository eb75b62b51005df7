/* Output directories and files never take over what nextuser did not
 * write: a foreign directory, or a symbolic link, given as a model, data or
 * checkpoint directory is refused with nothing changed; an empty directory,
 * a directory nextuser wrote (marker ".nextuser-dir", or only file names it
 * writes, from versions before the marker) is replaced; replacing deletes
 * only nextuser's own files.  An output file that is a directory is refused;
 * one that is a symbolic link has the link replaced, never its target. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/synthetic.h"
#include "io/atomic_file.h"
#include "kernel_test_util.h"
#include "model/model.h"
#include "train/checkpoint.h"

static char root[256];

static void path_in(char *out, size_t cap, const char *a, const char *b)
{
    snprintf(out, cap, "%s/%s", a, b);
}

static void put(const char *d, const char *name, const char *text)
{
    char p[600];
    path_in(p, sizeof p, d, name);
    FILE *f = fopen(p, "w");
    if (!f || fputs(text, f) == EOF) {
        perror(p);
        exit(2);
    }
    fclose(f);
}

/* 1 when d/name exists as a regular file holding exactly `text`. */
static int holds(const char *d, const char *name, const char *text)
{
    char p[600], buf[256] = {0};
    path_in(p, sizeof p, d, name);
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return n == strlen(text) && memcmp(buf, text, n) == 0;
}

static int exists(const char *d, const char *name)
{
    char p[600];
    struct stat st;
    path_in(p, sizeof p, d, name);
    return lstat(p, &st) == 0;
}

/* Entries of `root` whose names start with `prefix` and contain `part`. */
static int count_siblings(const char *prefix, const char *part)
{
    DIR *d = opendir(root);
    int n = 0;
    struct dirent *e;
    size_t pl = strlen(prefix);
    while (d && (e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, pl) == 0 && strstr(e->d_name + pl, part) != NULL;
    if (d)
        closedir(d);
    return n;
}

/* root/name with a.txt and sub/b.txt: someone else's directory. */
static void make_foreign(const char *name, char *out, size_t cap)
{
    char sub[600];
    path_in(out, cap, root, name);
    mkdir(out, 0777);
    put(out, "a.txt", "mine\n");
    path_in(sub, sizeof sub, out, "sub");
    mkdir(sub, 0777);
    put(sub, "b.txt", "also mine\n");
}

static int foreign_intact(const char *d)
{
    char sub[600];
    path_in(sub, sizeof sub, d, "sub");
    return holds(d, "a.txt", "mine\n") && holds(sub, "b.txt", "also mine\n") &&
           !exists(d, "model.safetensors") && !exists(d, "data.json");
}

static nu_model *small_model(void)
{
    nu_model_config c;
    nu_model *m;
    if (nu_config_parse("{\"num_users\": 6, \"d\": 8, \"heads\": 2, \"max_users\": 3, "
                        "\"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\", "
                        "\"vocab\": 3}]}",
                        "t", &c) != NU_OK ||
        nu_model_create(&c, &m) != NU_OK)
        exit(2);
    nu_model_init_random(m, 1);
    return m;
}

static int refused(nu_status s, const char *path, const char *why)
{
    return s == NU_ERR_IO && strstr(nu_last_error(), path) && strstr(nu_last_error(), why) &&
           strstr(nu_last_error(), "nothing was changed");
}

static void test_foreign_and_symlink(nu_model *m)
{
    char foreign[300], link[300];
    make_foreign("foreign", foreign, sizeof foreign);
    nu_status s = nu_model_save(m, foreign);
    NU_CHECK(refused(s, foreign, "not written by nextuser"), "model over a foreign dir: %d \"%s\"",
             (int)s, nu_last_error());
    NU_CHECK(foreign_intact(foreign), "the foreign directory is untouched");

    nu_adam_config ac;
    nu_adam_defaults(&ac);
    nu_adam a;
    nu_adam_init(&a, &m->layout, &ac);
    nu_train_state st = {1, 0, 0, 1, 1, 0, -1, 0, 0};
    s = nu_checkpoint_save(foreign, m, &a, &st);
    NU_CHECK(refused(s, foreign, "not written by nextuser"),
             "checkpoint over a foreign dir: \"%s\"", nu_last_error());
    nu_adam_free(&a);

    nu_synth_params p;
    nu_synth_defaults(&p);
    p.users = 20;
    p.items = 10;
    p.groups = 2;
    s = nu_synth_write(&p, foreign, NULL);
    NU_CHECK(refused(s, foreign, "not written by nextuser"), "data over a foreign dir: \"%s\"",
             nu_last_error());
    NU_CHECK(foreign_intact(foreign), "still untouched");

    path_in(link, sizeof link, root, "link");
    if (symlink("foreign", link) != 0)
        perror("symlink");
    s = nu_model_save(m, link);
    NU_CHECK(refused(s, link, "symbolic link"), "model over a symlink: %d \"%s\"", (int)s,
             nu_last_error());
    s = nu_synth_write(&p, link, NULL);
    NU_CHECK(refused(s, link, "symbolic link"), "data over a symlink: \"%s\"", nu_last_error());
    char target[64] = {0};
    NU_CHECK(readlink(link, target, sizeof target - 1) > 0 && !strcmp(target, "foreign"),
             "the link still points where it did");
    NU_CHECK(foreign_intact(foreign), "the link's target is untouched");
    NU_CHECK(count_siblings("foreign.", "") == 0 && count_siblings("link.", "") == 0,
             "no temporary or old directories beside them");
}

static void test_replaceable(nu_model *m)
{
    char d[300];
    path_in(d, sizeof d, root, "empty");
    mkdir(d, 0777);
    NU_CHECK(nu_model_save(m, d) == NU_OK, "an empty directory is replaced: %s", nu_last_error());
    NU_CHECK(exists(d, ".nextuser-dir") && exists(d, "model.safetensors"),
             "marker and model written");
    NU_CHECK(nu_model_save(m, d) == NU_OK, "nextuser's own directory is replaced: %s",
             nu_last_error());
    NU_CHECK(count_siblings("empty.", "") == 0, "nothing left beside it");

    /* A model directory from before the marker: only names nextuser writes. */
    char p[600];
    path_in(p, sizeof p, d, ".nextuser-dir");
    unlink(p);
    put(d, "user_table.safetensors", "x");
    put(d, "train_state.json", "{}");
    NU_CHECK(nu_model_save(m, d) == NU_OK, "a marker-less model directory is replaced: %s",
             nu_last_error());
    NU_CHECK(exists(d, ".nextuser-dir") && !exists(d, "train_state.json"), "replaced whole");
    NU_CHECK(count_siblings("empty.", "") == 0, "nothing left beside it");

    /* Known names alone are not enough without a model or data file. */
    char lone[300];
    path_in(lone, sizeof lone, root, "lone");
    mkdir(lone, 0777);
    put(lone, "users.txt", "alice\n");
    nu_status s = nu_model_save(m, lone);
    NU_CHECK(refused(s, lone, "not written by nextuser") && holds(lone, "users.txt", "alice\n"),
             "a directory with just a users.txt is refused: \"%s\"", nu_last_error());

    /* The marker makes a directory nextuser's, but a file someone added to
     * it is never deleted: it stays in the old directory beside it. */
    put(d, "notes.txt", "keep me\n");
    NU_CHECK(nu_model_save(m, d) == NU_OK, "a marked directory with an added file is replaced: %s",
             nu_last_error());
    NU_CHECK(!exists(d, "notes.txt") && count_siblings("empty.old.", "") == 1,
             "the old directory is kept beside it");
    DIR *dir = opendir(root);
    struct dirent *e;
    int kept = 0;
    while (dir && (e = readdir(dir)) != NULL)
        if (!strncmp(e->d_name, "empty.old.", 10)) {
            char old[600];
            path_in(old, sizeof old, root, e->d_name);
            kept = holds(old, "notes.txt", "keep me\n") && !exists(old, "model.safetensors");
        }
    if (dir)
        closedir(dir);
    NU_CHECK(kept, "notes.txt kept there, nextuser's own files removed");
}

static void test_files(void)
{
    char d[300], f[300], link[300];
    make_foreign("outdir", d, sizeof d);
    nu_atomic_file af;
    nu_status s = nu_atomic_open(d, &af);
    NU_CHECK(s == NU_ERR_IO && strstr(nu_last_error(), "is a directory"),
             "an output file that is a directory is refused: %d \"%s\"", (int)s, nu_last_error());
    if (s == NU_OK)
        nu_atomic_abort(&af);
    NU_CHECK(foreign_intact(d), "the directory is untouched");

    path_in(f, sizeof f, root, "target.txt");
    path_in(link, sizeof link, root, "out.lnk");
    put(root, "target.txt", "target\n");
    if (symlink("target.txt", link) != 0)
        perror("symlink");
    s = nu_atomic_open(link, &af);
    if (s == NU_OK) {
        fputs("new\n", af.fp);
        s = nu_atomic_commit(&af);
    }
    struct stat st;
    NU_CHECK(s == NU_OK && lstat(link, &st) == 0 && S_ISREG(st.st_mode) &&
                 holds(root, "out.lnk", "new\n") && holds(root, "target.txt", "target\n"),
             "an output file that is a symlink: the link is replaced, its target kept (%s)",
             nu_last_error());
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/nu_out_dir_%ld", (long)getpid());
    mkdir(root, 0777);
    nu_model *m = small_model();
    test_foreign_and_symlink(m);
    test_replaceable(m);
    test_files();
    nu_model_free(m);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    return nu_test_finish("unit_out_dir");
}
