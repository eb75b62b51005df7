/* nextuser prepare: real interaction logs (MovieLens or a generic CSV) ->
 * a training data directory (src/data/prepare.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "data/prepare.h"

#define CMD "prepare"

static const char *const prepare_help =
    "usage: nextuser prepare --ratings FILE [--items FILE] [--tags FILE]\n"
    "                        [--format movielens|ml100k|csv] --out DIR [--seed S]\n"
    "                        [--pos-threshold R] [--neg-threshold R] [--skip-bad]\n\n"
    "Writes a training data directory (docs/data-format.md) from interaction logs.\n\n"
    "  movielens (default)  ratings.csv userId,movieId,rating,timestamp; --items\n"
    "                       movies.csv movieId,title,genres (year from the title);\n"
    "                       --tags tags.csv userId,movieId,tag,timestamp\n"
    "  ml100k               u.data (tab: user item rating timestamp); --items u.item\n"
    "  csv                  user,item,timestamp,signal with a header; signal is\n"
    "                       positive, exposed or a numeric rating; --items and\n"
    "                       --tags as for movielens, ids kept as they are\n\n"
    "A rating >= --pos-threshold [4.0] is a positive, <= --neg-threshold [2.0] an\n"
    "exposed negative, anything between is ignored (counted in the summary).\n"
    "Prefix fields: genres, year (decade, <unk> if unknown), tags (with --tags:\n"
    "lower-cased, only tags of >= 2 items).  users.txt is in first-seen order.\n"
    "Items are split by the seed [1]: 70%% train, 10%% val, 20%% test.\n"
    "A malformed row is an error naming file:line; --skip-bad counts it instead.\n"
    "MovieLens ids are written as u<userId> and m<movieId>.\n"
    "The directory is replaced atomically.\n"
    "An existing DIR is replaced only if nextuser wrote it (marker .nextuser-dir)\n"
    "or it is empty; anything else, or a symbolic link, is refused.\n";

/* Returns -1 when the option was handled, else an exit code. */
static int parse_opt(int argc, char **argv, int *i, nu_prepare_params *p, const char **out)
{
    const char *a = argv[*i], *v;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
        fputs(prepare_help, stdout);
        return NU_EXIT_OK;
    }
    if (!strcmp(a, "--skip-bad")) {
        p->skip_bad = 1;
        return -1;
    }
    static const char *const valued[] = {"--ratings", "--items", "--tags", "--format", "--out",
                                         "--seed", "--pos-threshold", "--neg-threshold"};
    int known = 0;
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
        known |= !strcmp(a, valued[k]);
    if (!known)
        return nu_cli_usage_error(CMD, "unknown option '%s'", a);
    if (!(v = nu_arg_value(CMD, argc, argv, i)))
        return NU_EXIT_USAGE;
    int ok = 1;
    if (!strcmp(a, "--ratings"))
        p->ratings = v;
    else if (!strcmp(a, "--items"))
        p->items = v;
    else if (!strcmp(a, "--tags"))
        p->tags = v;
    else if (!strcmp(a, "--out"))
        *out = v;
    else if (!strcmp(a, "--format")) {
        if (!nu_prepare_format_parse(v, &p->format))
            return nu_cli_usage_error(CMD, "--format: \"%s\" is not movielens, ml100k or csv", v);
    } else if (!strcmp(a, "--seed"))
        ok = nu_arg_u64(CMD, a, v, 0, UINT64_MAX, &p->seed);
    else if (!strcmp(a, "--pos-threshold"))
        ok = nu_arg_double(CMD, a, v, -INFINITY, INFINITY, &p->pos_threshold);
    else
        ok = nu_arg_double(CMD, a, v, -INFINITY, INFINITY, &p->neg_threshold);
    return ok ? -1 : NU_EXIT_USAGE;
}

int nu_cmd_prepare(int argc, char **argv)
{
    nu_prepare_params p;
    nu_prepare_defaults(&p);
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        int rc = parse_opt(argc, argv, &i, &p, &out);
        if (rc >= 0)
            return rc;
    }
    if (!p.ratings || !out)
        return nu_cli_usage_error(CMD, "--ratings and --out are required");
    if (!(p.neg_threshold < p.pos_threshold))
        return nu_cli_usage_error(CMD, "--neg-threshold must be below --pos-threshold");
    nu_prepare_summary s;
    if (nu_prepare(&p, out, &s) != NU_OK)
        return nu_cli_fail(CMD);
    printf("wrote %s: %zu users, %zu items (train %zu, val %zu, test %zu), %zu positives, "
           "%zu negatives, %zu ratings between the thresholds ignored, %zu malformed rows "
           "skipped, %zu tag rows of unknown items ignored; vocab genres %zu, year %zu, "
           "tags %zu; seed %llu\n",
           out, s.users, s.items, s.split_items[0], s.split_items[1], s.split_items[2],
           s.positives, s.negatives, s.ignored_ratings, s.skipped_rows, s.unused_tag_rows,
           s.genres_vocab, s.years_vocab, s.tags_vocab, (unsigned long long)p.seed);
    if (s.skipped_rows)
        fprintf(stderr, "nextuser %s: skipped %zu malformed rows, the first: %s\n", CMD,
                s.skipped_rows, s.first_bad);
    return NU_EXIT_OK;
}
