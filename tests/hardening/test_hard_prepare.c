/* Issue 17, nextuser prepare: rows are never lost silently and what prepare
 * writes, train can read.  Each check failed before its fix.
 *   a CSV line starting with a NUL, a NUL mid-line: an error naming file:line
 *   (was: the row dropped or cut, exit 0); invalid UTF-8 likewise
 *   a genre "<unk>", a genre with a tab: refused naming file:line (was:
 *   prepare succeeded and the data directory could not be loaded)
 *   40k distinct tags on one item: linear time (was: quadratic, 2 s)
 *   MovieLens ids written two ways ("7", "07") are not merged silently */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "data/dataset.h"
#include "data/prepare.h"
#include "hard_fixture.h"
#include "kernel_test_util.h"

#define RATINGS_HEAD "userId,movieId,rating,timestamp\n"
#define RATINGS RATINGS_HEAD "1,1,5,10\n2,1,5,11\n1,2,5,12\n2,2,1,13\n3,1,4,14\n"

/* nu_prepare of ratings.csv (+ movies.csv, tags.csv when given) into out;
 * when it succeeds, the output must load. */
static nu_status prepare(const char *movies, const char *tags, nu_prepare_summary *sum)
{
    nu_prepare_params p;
    nu_prepare_defaults(&p);
    p.format = NU_PREP_MOVIELENS;
    p.ratings = nu_hard_in("ratings.csv");
    if (movies) {
        nu_hard_put("movies.csv", movies);
        p.items = nu_hard_in("movies.csv");
    }
    if (tags) {
        nu_hard_put("tags.csv", tags);
        p.tags = nu_hard_in("tags.csv");
    }
    nu_status s = nu_prepare(&p, nu_hard_in("out"), sum);
    if (s == NU_OK) {
        nu_dataset ds;
        nu_status l = nu_dataset_load(nu_hard_in("out"), &ds);
        NU_CHECK(l == NU_OK, "what prepare wrote loads: %s", nu_last_error());
        if (l == NU_OK)
            nu_dataset_free(&ds);
    }
    return s;
}

static void test_nul_rows(void)
{
    nu_prepare_summary sum;
    nu_hard_put("ratings.csv", RATINGS);
    NU_CHECK(prepare(NULL, NULL, &sum) == NU_OK && sum.positives == 4, "the plain log: %s",
             nu_last_error());
    /* Line 3 starts with a NUL: before, it read as an empty line. */
    const char lead[] = RATINGS_HEAD "1,1,5,10\n\0" "2,1,5,11\n1,2,5,12\n";
    nu_hard_put_bytes("ratings.csv", lead, sizeof lead - 1);
    nu_status s = prepare(NULL, NULL, &sum);
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("ratings.csv:3:") && nu_hard_says("NUL"),
             "a line starting with a NUL is an error naming file:line: %d %s", (int)s,
             nu_last_error());
    /* A NUL mid-line: before, the line was cut there. */
    const char mid[] = RATINGS_HEAD "1,1,5,10\n2,1,5,11\0junk\n1,2,5,12\n";
    nu_hard_put_bytes("ratings.csv", mid, sizeof mid - 1);
    s = prepare(NULL, NULL, &sum);
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("ratings.csv:3:") && nu_hard_says("NUL"),
             "a NUL mid-line is an error naming file:line: %d %s", (int)s, nu_last_error());
    /* With --skip-bad the row is counted, not lost silently. */
    nu_prepare_params p;
    nu_prepare_defaults(&p);
    p.ratings = nu_hard_in("ratings.csv");
    p.skip_bad = 1;
    s = nu_prepare(&p, nu_hard_in("out"), &sum);
    NU_CHECK(s == NU_OK && sum.skipped_rows == 1 && strstr(sum.first_bad, "ratings.csv:3:"),
             "--skip-bad counts the row: %d %zu %s", (int)s, sum.skipped_rows, sum.first_bad);
    /* Invalid UTF-8 in a CSV ids file. */
    nu_hard_put("ratings.csv", "user,item,timestamp,signal\nu1,a,1,positive\nu\xe9,a,2,positive\n");
    p.format = NU_PREP_CSV;
    p.skip_bad = 0;
    s = nu_prepare(&p, nu_hard_in("out"), &sum);
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("ratings.csv:3:") && nu_hard_says("UTF-8"),
             "invalid UTF-8 is an error naming file:line: %d %s", (int)s, nu_last_error());
}

static void test_unloadable_values(void)
{
    nu_prepare_summary sum;
    nu_hard_put("ratings.csv", RATINGS);
    NU_CHECK(prepare("movieId,title,genres\n1,A (1995),Action\n2,B (1996),Drama\n", NULL, &sum) ==
                 NU_OK,
             "plain movies: %s", nu_last_error());
    nu_status s = prepare("movieId,title,genres\n1,A (1995),Action|<unk>\n2,B (1996),Drama\n",
                          NULL, &sum);
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("movies.csv:2:") && nu_hard_says("<unk>"),
             "a genre named <unk> is refused naming file:line: %d %s", (int)s, nu_last_error());
    s = prepare("movieId,title,genres\n1,A (1995),\"Act\tion\"\n2,B (1996),Drama\n", NULL, &sum);
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("movies.csv:2:") && nu_hard_says("tab"),
             "a genre with a tab is refused naming file:line: %d %s", (int)s, nu_last_error());
    s = prepare("movieId,title,genres\n1,A (1995),Action\n2,B (1996),Drama\n",
                "userId,movieId,tag,timestamp\n1,1,<UNK>,5\n2,2,<unk>,6\n", &sum);
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("tags.csv:2:") && nu_hard_says("<unk>"),
             "a tag <unk> is refused naming file:line: %d %s", (int)s, nu_last_error());
}

static void test_ids(void)
{
    nu_prepare_summary sum;
    /* "7" and "07" would both be user u7. */
    nu_hard_put("ratings.csv", RATINGS_HEAD "7,1,5,10\n07,2,5,11\n");
    nu_status s = prepare(NULL, NULL, &sum);
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("ratings.csv:3:"),
             "a MovieLens id with a leading zero is refused: %d %s", (int)s, nu_last_error());
}

static void test_many_tags(void)
{
    size_t n = 80000, cap = n * 32 + 64, len = 0;
    char *t = malloc(cap);
    len += (size_t)snprintf(t, cap, "userId,movieId,tag,timestamp\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(t + len, cap - len, "1,1,tag%zu,%zu\n", i, i);
    nu_hard_put("ratings.csv", RATINGS);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    nu_prepare_summary sum;
    nu_status s = prepare("movieId,title,genres\n1,A (1995),Action\n2,B (1996),Drama\n", t, &sum);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    NU_CHECK(s == NU_OK, "80k tags: %s", nu_last_error());
    NU_CHECK(secs < 3.0, "80k distinct tags on one item in %.2f s (< 3 s)", secs);
    free(t);
}

int main(void)
{
    nu_hard_dir_make("nu_hard_prepare");
    test_nul_rows();
    test_unloadable_values();
    test_ids();
    test_many_tags();
    return nu_hard_finish("hardening prepare");
}
