/* nextuser prepare: real interaction logs (MovieLens or a generic CSV) ->
 * a training data directory (app/data/prepare.h). */
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
    "                        [--item-features FILE (csv only)]\n"
    "                        [--pos-threshold R] [--neg-threshold R] [--skip-bad]\n\n"
    "Writes a training data directory (docs/data-format.md) from interaction logs.\n\n"
    "  movielens (default)  ratings.csv userId,movieId,rating,timestamp; --items\n"
    "                       movies.csv movieId,title,genres (year from the title);\n"
    "                       --tags tags.csv userId,movieId,tag,timestamp\n"
    "  ml100k               u.data (tab: user item rating timestamp); --items u.item\n"
    "  csv                  user,item,timestamp,signal with a header; signal is\n"
    "                       positive, exposed or a numeric rating; --items and\n"
    "                       --tags as for movielens, ids kept as they are; or\n"
    "                       --item-features FILE instead of --items/--tags\n\n"
    "--item-features: a header (item,features), then item,field=value|field=value...\n"
    "per item (a CSV field: quote it if it has commas).  Each field is a prefix\n"
    "field, in the order the file first names it: multi if some item has two\n"
    "values of it, else categorical; at most 16 fields, names 1..63 of\n"
    "[A-Za-z0-9_-].  A value is any non-empty text without tab or line break\n"
    "(<unk> means none); an empty features column means no values.  The ratings\n"
    "decide the items: one without a row has no values (<unk>), rows of items\n"
    "not in the ratings are counted and ignored.  An item listed twice, a pair\n"
    "without '=', a bad name or value is an error naming file:line.\n\n"
    "A rating >= --pos-threshold [4.0] is a positive, <= --neg-threshold [2.0] an\n"
    "exposed negative, anything between is ignored (counted in the summary).\n"
    "Prefix fields without --item-features: genres, year (decade, <unk> if\n"
    "unknown), tags (with --tags: lower-cased, only tags of >= 2 items).\n"
    "Vocabularies: <unk>, then the values in byte order.  users.txt is in\n"
    "first-seen order; items keep the --items order, else first-seen order.\n"
    "Items are split by the seed [1]: 70% train, 10% val, 20% test.\n"
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
    static const char *const valued[] = {"--ratings",       "--items", "--tags",
                                         "--item-features", "--format", "--out",
                                         "--seed",          "--pos-threshold",
                                         "--neg-threshold"};
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
    else if (!strcmp(a, "--item-features"))
        p->item_features = v;
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
    /* One source of item features: --item-features holds what --items and --tags would. */
    if (p.item_features && (p.items || p.tags))
        return nu_cli_usage_error(CMD, "--item-features replaces --items and --tags: give "
                                       "one or the other (put tags in it as tag=VALUE)");
    if (p.item_features && p.format != NU_PREP_CSV)
        return nu_cli_usage_error(CMD, "--item-features needs --format csv");
    nu_prepare_summary s;
    if (nu_prepare(&p, out, &s) != NU_OK)
        return nu_cli_fail(CMD);
    printf("wrote %s: %zu users, %zu items (train %zu, val %zu, test %zu), %zu positives, "
           "%zu negatives, %zu ratings between the thresholds ignored, %zu malformed rows "
           "skipped, ",
           out, s.users, s.items, s.split_items[0], s.split_items[1], s.split_items[2],
           s.positives, s.negatives, s.ignored_ratings, s.skipped_rows);
    if (p.item_features)
        printf("%zu item-features rows of unknown items ignored", s.unused_feature_rows);
    else
        printf("%zu tag rows of unknown items ignored", s.unused_tag_rows);
    printf("; prefix fields");
    for (size_t f = 0; f < s.n_fields; f++)
        printf("%s %s (%s, vocab %zu)", f ? "," : "", s.fields[f].name,
               s.fields[f].multi ? "multi" : "categorical", s.fields[f].vocab);
    printf("%s; seed %llu\n", s.n_fields ? "" : " none", (unsigned long long)p.seed);
    if (s.skipped_rows)
        fprintf(stderr, "nextuser %s: skipped %zu malformed rows, the first: %s\n", CMD,
                s.skipped_rows, s.first_bad);
    return NU_EXIT_OK;
}
