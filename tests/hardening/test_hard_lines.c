/* Issue 17, line lengths bounded before memory is spent on them: each check
 * failed before the fix, when every reader used getline, which allocates
 * for a line of any length (a file without a newline of N bytes took N
 * bytes of memory before any check).
 *   the line reader: lines up to the bound, one byte over it, skipping the
 *   rest of a long line and reading on, a last line without '\n'
 *   items.jsonl (64 MiB), users.txt / vocab files (64 KiB + 1), prepare's
 *   CSV inputs (1 MiB), items files of embed and retrieve (64 MiB, checked
 *   only after getline had read the line): a 256 MiB line is refused naming
 *   file:line, with a
 *   memory peak below the bound (plus slack), not the line's size
 *   prepare --skip-bad counts a long row and reads the rows after it */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/idmap.h"
#include "data/items_jsonl.h"
#include "data/prepare.h"
#include "kernel_test_util.h"
#include "model/model.h"
#include "util/line_reader.h"

#define HUGE_LINE ((off_t)256 << 20)

static char dir[256];

static int has(const char *needle) { return strstr(nu_last_error(), needle) != NULL; }

static const char *in_dir(const char *name)
{
    static char path[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
    return path[k];
}

/* `head`, then `bytes` bytes of one line (a sparse run of NULs: no disk
 * space), then `tail`. */
static void put_long(const char *name, const char *head, off_t bytes, const char *tail)
{
    const char *path = in_dir(name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    size_t hl = strlen(head), tl = strlen(tail);
    if (fd < 0 || write(fd, head, hl) != (ssize_t)hl || ftruncate(fd, (off_t)hl + bytes) != 0 ||
        lseek(fd, 0, SEEK_END) < 0 || write(fd, tail, tl) != (ssize_t)tl) {
        perror(path);
        exit(2);
    }
    close(fd);
}

static void test_reader(void)
{
    const char *path = in_dir("lines.txt");
    FILE *f = fopen(path, "wb");
    fputs("abcd\nabcde\nabcdefghij\nab\n\nxyz", f);
    fclose(f);
    f = fopen(path, "rb");
    nu_line_reader r;
    nu_line_reader_init(&r, f, 5);
    static const char *const want[] = {"abcd", "abcde", "abcde", "ab", "", "xyz"};
    static const int long_one[] = {0, 0, 1, 0, 0, 0};
    for (int i = 0; i < 6; i++) {
        int got = nu_line_reader_next(&r);
        NU_CHECK(got == 1 && r.lineno == (size_t)i + 1 && r.len == strlen(want[i]) &&
                     !strcmp(r.line, want[i]) && r.too_long == long_one[i],
                 "line %d: \"%s\" (too long %d)", i + 1, got == 1 ? r.line : "?", r.too_long);
    }
    NU_CHECK(nu_line_reader_next(&r) == 0, "then the end of the file");
    NU_CHECK(r.cap <= 256, "no more memory than the bound (or the first 256 bytes)");
    nu_line_reader_free(&r);
    fclose(f);
}

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

typedef nu_status (*load_fn)(void);

/* Runs `load` in a child: 1 when it failed naming `where` with a memory
 * peak below `limit_kb` above the child's start. */
static int refused_within(load_fn load, const char *where, long limit_kb, long *grew)
{
    int fds[2];
    if (pipe(fds) != 0)
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        long before = max_rss_kb();
        nu_status s = load();
        long g = max_rss_kb() - before;
        if (s == NU_OK || !has(where) || !has("longer than"))
            fprintf(stderr, "  child: status %d: %s\n", (int)s, nu_last_error());
        if (write(fds[1], &g, sizeof g) != (ssize_t)sizeof g)
            _exit(3);
        _exit(s != NU_OK && has(where) && has("longer than") && g < limit_kb ? 0 : 1);
    }
    close(fds[1]);
    *grew = -1;
    if (read(fds[0], grew, sizeof *grew) != (ssize_t)sizeof *grew)
        *grew = -1;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static nu_status load_data(void)
{
    nu_dataset ds;
    nu_status s = nu_dataset_load(in_dir("data"), &ds);
    if (s == NU_OK)
        nu_dataset_free(&ds);
    return s;
}

static nu_status load_users(void)
{
    nu_idmap m;
    nu_status s = nu_idmap_load(&m, in_dir("users.txt"));
    if (s == NU_OK)
        nu_idmap_free(&m);
    return s;
}

static nu_status prepare_ratings(int skip_bad, nu_prepare_summary *sum)
{
    nu_prepare_params p;
    nu_prepare_defaults(&p);
    p.format = NU_PREP_MOVIELENS;
    p.ratings = in_dir("ratings.csv");
    p.skip_bad = skip_bad;
    return nu_prepare(&p, in_dir("prepared"), sum);
}

static nu_status load_ratings(void) { return prepare_ratings(0, NULL); }

static nu_status load_items(void)
{
    nu_model_config c;
    nu_config_defaults(&c);
    c.d = 8;
    c.heads = 2;
    c.ffn = 16;
    c.enc_layers = c.dec_layers = 1;
    c.num_users = 4;
    nu_model *m = NULL;
    nu_status s = nu_model_create(&c, &m);
    if (s != NU_OK)
        return s;
    nu_items it;
    nu_items_init(&it, &m->cfg);
    s = nu_items_read_jsonl(in_dir("items.jsonl"), m, &it);
    nu_items_free(&it);
    nu_model_free(m);
    return s;
}

static void test_files(void)
{
    long grew;
    /* items.jsonl: 64 MiB allowed, so the peak may reach that. */
    const char *d = in_dir("data");
    mkdir(d, 0777);
    nu_test_put(d, "users.txt", "u0\n");
    nu_test_put(d, "data.json", "{\"format\":\"nextuser-data-1\",\"num_users\":1,\"num_items\":1}");
    put_long("data/items.jsonl", "{\"id\":\"a\",\"split\":\"train\"}\n", HUGE_LINE, "\n");
    NU_CHECK(refused_within(load_data, "items.jsonl:2:", 96 * 1024, &grew),
             "items.jsonl: a 256 MiB line refused naming the line within 96 MB (grew %ld KB)",
             grew);

    put_long("users.txt", "u0\nu1\n", HUGE_LINE, "\n");
    NU_CHECK(refused_within(load_users, "users.txt:3:", 8 * 1024, &grew),
             "users.txt: a 256 MiB line refused naming the line within 8 MB (grew %ld KB)", grew);

    put_long("ratings.csv", "userId,movieId,rating,timestamp\n1,1,5,10\n", HUGE_LINE, "\n");
    NU_CHECK(refused_within(load_ratings, "ratings.csv:3:", 8 * 1024, &grew),
             "ratings.csv: a 256 MiB line refused naming the line within 8 MB (grew %ld KB)",
             grew);

    put_long("items.jsonl", "{\"id\":\"a\"}\n", HUGE_LINE, "\n");
    NU_CHECK(refused_within(load_items, "items.jsonl:2:", 96 * 1024, &grew),
             "an items file: a 256 MiB line refused naming the line within 96 MB (grew %ld KB)",
             grew);

    /* --skip-bad: a 2 MiB row is counted and the rows after it are read. */
    put_long("ratings.csv", "userId,movieId,rating,timestamp\n1,1,5,10\n", (off_t)2 << 20,
             "\n2,1,5,11\n3,1,5,12\n");
    nu_prepare_summary sum;
    nu_status s = prepare_ratings(1, &sum);
    NU_CHECK(s == NU_OK && sum.skipped_rows == 1 && sum.positives == 3 &&
                 strstr(sum.first_bad, "ratings.csv:3:") && strstr(sum.first_bad, "longer than"),
             "--skip-bad: the long row counted, the rest read: %s (%s)", nu_last_error(),
             s == NU_OK ? sum.first_bad : "");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/nu_hard_lines_XXXXXX");
    if (!mkdtemp(dir))
        return 2;
    test_reader();
    test_files();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (nu_test_failed == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return nu_test_finish("hardening lines");
}
