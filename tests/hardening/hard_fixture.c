/* The hardening tests' fixture (hard_fixture.h). */
#include "hard_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel_test_util.h"
#include "nextuser/nextuser.h"

static char dir[256];

const char *nu_hard_dir_make(const char *prefix)
{
    snprintf(dir, sizeof dir, "/tmp/%s_XXXXXX", prefix);
    if (!mkdtemp(dir)) {
        perror(dir);
        exit(2);
    }
    return dir;
}

const char *nu_hard_dir(void)
{
    return dir;
}

const char *nu_hard_in(const char *name)
{
    static char path[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
    return path[k];
}

void nu_hard_put_bytes(const char *name, const void *data, size_t len)
{
    char path[512]; /* not nu_hard_in's buffers: callers may hold those */
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

void nu_hard_put(const char *name, const char *text)
{
    nu_hard_put_bytes(name, text, strlen(text));
}

int nu_hard_says(const char *needle)
{
    return strstr(nu_last_error(), needle) != NULL;
}

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

int nu_hard_refused_within(nu_status (*load)(void *arg), int (*refused)(nu_status s, void *arg),
                           void *arg, long limit_kb, long *grew_kb)
{
    int fds[2];
    *grew_kb = -1;
    if (pipe(fds) != 0)
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        long before = max_rss_kb();
        nu_status s = load(arg);
        long g = max_rss_kb() - before;
        int ok = refused(s, arg);
        if (!ok)
            fprintf(stderr, "  child: status %d: %s\n", (int)s, nu_last_error());
        if (write(fds[1], &g, sizeof g) != (ssize_t)sizeof g)
            _exit(3);
        _exit(ok && g < limit_kb ? 0 : 1);
    }
    close(fds[1]);
    if (read(fds[0], grew_kb, sizeof *grew_kb) != (ssize_t)sizeof *grew_kb)
        *grew_kb = -1;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int nu_hard_finish(const char *name)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (nu_test_failed == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return nu_test_finish(name);
}
