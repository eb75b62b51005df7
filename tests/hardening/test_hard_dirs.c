/* Issue 17, output directories and checkpoints.  Each check failed before
 * its fix.
 *   a kill in the middle of the directory swap leaves --out present (was:
 *   absent, the old and the new directory beside it)
 *   --out absent with a complete DIR.old.* beside it is recovered
 *   leftovers of killed runs (DIR.tmp.PID.N, DIR.old.XXXXXX) are cleaned by
 *   the next write into DIR, only nextuser's own files (never others')
 *   what a kill during that cleaning or before the marker leaves (an empty
 *   DIR.old.* or DIR.tmp.PID.N) goes too (was: kept forever, as unmarked)
 *   FILE.tmp.PID.N of a killed atomic file write (nextuser table) is removed
 *   by the next write of FILE (was: kept forever)
 *   a second writer into the same DIR is refused while the first holds it
 *   a model or checkpoint with non-finite values is never written */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/atomic_dir.h"
#include "io/atomic_file.h"
#include "kernel_test_util.h"
#include "model/config.h"
#include "model/model.h"
#include "train/checkpoint.h"

static char root[256];

static int has(const char *needle) { return strstr(nu_last_error(), needle) != NULL; }

static nu_model *small_model(uint64_t seed)
{
    nu_model_config c;
    nu_config_defaults(&c);
    c.d = 8;
    c.heads = 2;
    c.ffn = 16;
    c.enc_layers = 1;
    c.dec_layers = 1;
    c.max_users = 6;
    c.num_users = 4;
    nu_model *m = NULL;
    if (nu_model_create(&c, &m) != NU_OK)
        exit(2);
    nu_model_init_random(m, seed);
    return m;
}

static int exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

/* Entries of root whose names start with "NAME." other than the lock. */
static int leftovers(const char *name, char *first, size_t cap)
{
    DIR *d = opendir(root);
    int n = 0;
    struct dirent *e;
    size_t len = strlen(name);
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, name, len) || e->d_name[len] != '.')
            continue;
        if (!strcmp(e->d_name + len, ".nextuser-lock"))
            continue;
        if (!n++ && first)
            snprintf(first, cap, "%s", e->d_name);
    }
    if (d)
        closedir(d);
    return n;
}

static void kill_self(const char *point)
{
    if (!strcmp(point, "swap"))
        raise(SIGKILL);
}

static void test_swap_crash(void)
{
    char out[400];
    snprintf(out, sizeof out, "%s/model", root);
    nu_model *m = small_model(1);
    NU_CHECK(nu_model_save(m, out) == NU_OK, "first save: %s", nu_last_error());
    pid_t pid = fork();
    if (pid == 0) {
        nu_model *m2 = small_model(2);
        nu_atomic_dir_test_hook = kill_self;
        nu_model_save(m2, out);
        _exit(0); /* not reached: killed in the swap */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    NU_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the writer died in the swap");
    nu_model *back = NULL;
    nu_status s = nu_model_load(out, &back);
    NU_CHECK(s == NU_OK, "--out is present and complete after a kill in the swap: %s",
             nu_last_error());
    nu_model_free(back);
    /* The next write cleans what the killed one left. */
    NU_CHECK(nu_model_save(m, out) == NU_OK, "the next save: %s", nu_last_error());
    char first[256] = "";
    int n = leftovers("model", first, sizeof first);
    NU_CHECK(n == 0, "no leftovers after the next save (%d, first %s)", n, first);
    nu_model_free(m);
}

static void mkdir_with(const char *d, const char *const *files, int marked)
{
    mkdir(d, 0777);
    for (size_t i = 0; files[i]; i++)
        nu_test_put(d, files[i], "x");
    if (marked)
        nu_test_put(d, ".nextuser-dir", "marker");
}

static void test_leftovers(void)
{
    char out[400], p[600];
    snprintf(out, sizeof out, "%s/ck", root);
    nu_model *m = small_model(1);
    NU_CHECK(nu_model_save(m, out) == NU_OK, "save: %s", nu_last_error());
    /* A pid that is certainly dead: a reaped child's. */
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    const char *ours[] = {"model.safetensors", "users.txt", "model.safetensors.tmp.5.0", NULL};
    snprintf(p, sizeof p, "%s.tmp.%ld.0", out, (long)dead);
    mkdir_with(p, ours, 1);
    snprintf(p, sizeof p, "%s.old.Ab12Cd", out);
    mkdir_with(p, ours, 1);
    snprintf(p, sizeof p, "%s.old.Zz99Yy", out);
    mkdir_with(p, ours, 1);
    /* Someone else's: a directory named like ours without the marker, and
     * a foreign file inside a marked leftover. */
    const char *theirs[] = {"notes.txt", NULL};
    snprintf(p, sizeof p, "%s.tmp.%ld.1", out, (long)dead);
    mkdir_with(p, theirs, 0);
    snprintf(p, sizeof p, "%s.old.Qq00Rr", out);
    const char *mixed[] = {"model.safetensors", "notes.txt", NULL};
    mkdir_with(p, mixed, 1);
    NU_CHECK(nu_model_save(m, out) == NU_OK, "save into the same --out: %s", nu_last_error());
    snprintf(p, sizeof p, "%s.tmp.%ld.0", out, (long)dead);
    NU_CHECK(!exists(p), "a dead run's temporary directory is removed");
    snprintf(p, sizeof p, "%s.old.Ab12Cd", out);
    NU_CHECK(!exists(p), "an old directory left by a kill is removed");
    snprintf(p, sizeof p, "%s.tmp.%ld.1/notes.txt", out, (long)dead);
    NU_CHECK(exists(p), "a directory without the marker is not touched");
    snprintf(p, sizeof p, "%s.old.Qq00Rr/notes.txt", out);
    NU_CHECK(exists(p), "someone else's file in a leftover stays");
    snprintf(p, sizeof p, "%s.old.Qq00Rr/model.safetensors", out);
    NU_CHECK(!exists(p), "our files in that leftover go");
    nu_model_free(m);
}

static pid_t dead_pid(void)
{
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    return dead;
}

static void test_killed_cleaning(void)
{
    char out[400], p[600];
    snprintf(out, sizeof out, "%s/kc", root);
    nu_model *m = small_model(1);
    NU_CHECK(nu_model_save(m, out) == NU_OK, "save: %s", nu_last_error());
    long dead = (long)dead_pid();
    const char *none[] = {NULL}, *some[] = {"vocab_year.txt", NULL};
    snprintf(p, sizeof p, "%s.old.Ee55Ff", out);
    mkdir_with(p, none, 0); /* killed after the last unlink, before rmdir */
    snprintf(p, sizeof p, "%s.tmp.%ld.2", out, dead);
    mkdir_with(p, none, 0); /* killed between mkdir and the marker */
    snprintf(p, sizeof p, "%s.old.Gg66Hh", out);
    mkdir_with(p, some, 1); /* killed half-way: the marker goes last */
    NU_CHECK(nu_model_save(m, out) == NU_OK, "save again: %s", nu_last_error());
    char first[300] = "";
    NU_CHECK(leftovers("kc", first, sizeof first) == 0, "what killed cleanings left is gone: %s",
             first);
    nu_model_free(m);

    /* Atomic files: the temporary file of a dead writer of this very path
     * goes; a live writer's, another path's and other names stay. */
    char file[400];
    snprintf(file, sizeof file, "%s/result.bin", root);
    static const char *const kept_fmt[] = {"%s.tmp.%ld.3", "%s.tmp.x", "%s2.tmp.%ld.3"};
    snprintf(p, sizeof p, "%s.tmp.%ld.3", file, dead);
    nu_test_put(root, p + strlen(root) + 1, "stale");
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, kept_fmt[k], file, k == 0 ? (long)getppid() : dead);
        nu_test_put(root, p + strlen(root) + 1, "kept");
    }
    nu_atomic_file af;
    nu_status s = nu_atomic_open(file, &af);
    NU_CHECK(s == NU_OK && fputs("new", af.fp) >= 0 && nu_atomic_commit(&af) == NU_OK,
             "atomic write: %s", nu_last_error());
    snprintf(p, sizeof p, "%s.tmp.%ld.3", file, dead);
    NU_CHECK(!exists(p), "a killed writer's temporary file is removed by the next write");
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, kept_fmt[k], file, k == 0 ? (long)getppid() : dead);
        NU_CHECK(exists(p), "%s stays", p);
    }
}

static void test_recover(void)
{
    char out[400], old[500];
    snprintf(out, sizeof out, "%s/rec", root);
    nu_model *m = small_model(1);
    NU_CHECK(nu_model_save(m, out) == NU_OK, "save: %s", nu_last_error());
    /* The state a kill between the two renames of a plain swap leaves. */
    snprintf(old, sizeof old, "%s.old.Mm11Nn", out);
    NU_CHECK(rename(out, old) == 0, "move aside");
    nu_atomic_dir ad;
    nu_status s = nu_atomic_dir_begin(out, &ad);
    NU_CHECK(s == NU_OK, "begin: %s", nu_last_error());
    if (s == NU_OK)
        nu_atomic_dir_abort(&ad);
    nu_model *back = NULL;
    s = nu_model_load(out, &back);
    NU_CHECK(s == NU_OK && !exists(old), "--out is recovered from DIR.old.*: %s", nu_last_error());
    nu_model_free(back);
    nu_model_free(m);
}

static void test_lock(void)
{
    char out[400];
    snprintf(out, sizeof out, "%s/locked", root);
    int go[2], done[2];
    if (pipe(go) || pipe(done))
        exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        nu_atomic_dir ad;
        char c = nu_atomic_dir_begin(out, &ad) == NU_OK ? 'y' : 'n';
        if (write(go[1], &c, 1) != 1)
            _exit(3);
        if (read(done[0], &c, 1) != 1)
            _exit(3);
        nu_atomic_dir_abort(&ad);
        _exit(0);
    }
    char c = 0;
    NU_CHECK(read(go[0], &c, 1) == 1 && c == 'y', "the first writer begins");
    nu_model *m = small_model(1);
    nu_status s = nu_model_save(m, out);
    NU_CHECK(s == NU_ERR_IO && has("another"), "a second writer is refused: %d %s", (int)s,
             nu_last_error());
    if (write(done[1], "x", 1) != 1)
        exit(2);
    waitpid(pid, NULL, 0);
    s = nu_model_save(m, out);
    NU_CHECK(s == NU_OK, "once the first is done the second may write: %s", nu_last_error());
    /* In one process, nested holders of the same directory do not block. */
    nu_atomic_dir a1;
    NU_CHECK(nu_atomic_dir_begin(out, &a1) == NU_OK, "begin");
    NU_CHECK(nu_model_save(m, out) == NU_OK, "same process, nested: %s", nu_last_error());
    nu_atomic_dir_abort(&a1);
    nu_model_free(m);
}

static void test_non_finite(void)
{
    char out[400];
    snprintf(out, sizeof out, "%s/nan", root);
    nu_model *m = small_model(1);
    nu_adam a;
    nu_adam_config ac;
    nu_adam_defaults(&ac);
    nu_adam_init(&a, &m->layout, &ac);
    nu_train_state st = {5, 0, 3, 1, 99, 1, -1, 0, 0};
    m->params[3] = INFINITY;
    nu_status s = nu_checkpoint_save(out, m, &a, &st);
    NU_CHECK(s != NU_OK && has("finite") && !exists(out),
             "a checkpoint with an Inf weight is not written: %d %s", (int)s, nu_last_error());
    s = nu_model_save(m, out);
    NU_CHECK(s != NU_OK && has("finite") && !exists(out), "nor a model: %d %s", (int)s,
             nu_last_error());
    m->params[3] = 0;
    a.v[7] = NAN;
    s = nu_checkpoint_save(out, m, &a, &st);
    NU_CHECK(s != NU_OK && has("finite") && !exists(out),
             "a checkpoint with a NaN moment is not written: %d %s", (int)s, nu_last_error());
    a.v[7] = 0;
    NU_CHECK(nu_checkpoint_save(out, m, &a, &st) == NU_OK, "finite: written: %s", nu_last_error());
    nu_adam_free(&a);
    nu_model_free(m);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/nu_hard_dirs_XXXXXX");
    if (!mkdtemp(root))
        return 2;
    test_swap_crash();
    test_leftovers();
    test_killed_cleaning();
    test_recover();
    test_lock();
    test_non_finite();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (nu_test_failed == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    return nu_test_finish("hardening dirs");
}
