/* nextuser synth-data: a synthetic training data directory with planted
 * structure (app/data/synthetic.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "data/synthetic.h"

#define CMD "synth-data"

static const char *const synth_data_help =
    "usage: nextuser synth-data --users N --items I --out DIR [--groups G] [--seed S]\n"
    "                           [--pos-mean P] [--negatives K] [--max-users M]\n"
    "                           [--train F] [--val F]\n\n"
    "Writes a training data directory (docs/data-format.md: data.json, users.txt,\n"
    "vocab_<field>.txt, items.jsonl) plus truth.json, the latent group of every\n"
    "user and item, deterministically from the seed (default 1).\n\n"
    "Users and items fall into G latent groups (default 8).  An item's features\n"
    "(genres, year, tags, an 8-wide dense content vector) come mostly from its\n"
    "group; its positives are distinct users, mostly of its group, in time order,\n"
    "drifting toward the neighbouring group (g + 1) over the item's lifetime; its\n"
    "exposed negatives are users of other groups at nearby times.\n\n"
    "  --pos-mean P   mean positives of an item (heavy-tailed: 5%% of items have\n"
    "                 none, some 1 or a few, some more than M)   [20]\n"
    "  --negatives K  mean exposed negatives per item            [10]\n"
    "  --max-users M  the model's context length the tail exceeds [50]\n"
    "  --train F, --val F  item split fractions (test: the rest) [0.7, 0.1]\n"
    "  --activity-skew A   user activity skew: a positive's user is the\n"
    "                 floor(n x^(1+A))-th of its candidates (x uniform), so with\n"
    "                 A > 0 a few users take most positives; 0 is uniform [0]\n\n"
    "The directory is replaced atomically (written beside it, then renamed).\n"
    "An existing DIR is replaced only if nextuser wrote it (marker .nextuser-dir)\n"
    "or it is empty; anything else, or a symbolic link, is refused.\n";

static int size_opt(const char *a, const char *v, uint64_t lo, uint64_t hi, size_t *out)
{
    uint64_t x;
    if (!nu_arg_u64(CMD, a, v, lo, hi, &x))
        return 0;
    *out = (size_t)x;
    return 1;
}

/* Returns -1 when the option was handled, else an exit code. */
static int parse_opt(int argc, char **argv, int *i, nu_synth_params *p, const char **out)
{
    const char *a = argv[*i], *v;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
        fputs(synth_data_help, stdout);
        return NU_EXIT_OK;
    }
    static const char *const valued[] = {"--users", "--items", "--groups", "--seed",
                                         "--pos-mean", "--negatives", "--max-users",
                                         "--train", "--val", "--out", "--activity-skew"};
    int known = 0;
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
        known |= !strcmp(a, valued[k]);
    if (!known)
        return nu_cli_usage_error(CMD, "unknown option '%s'", a);
    if (!(v = nu_arg_value(CMD, argc, argv, i)))
        return NU_EXIT_USAGE;
    int ok;
    if (!strcmp(a, "--out"))
        ok = (*out = v) != NULL;
    else if (!strcmp(a, "--users"))
        ok = size_opt(a, v, 1, 0xfffffffeu, &p->users);
    else if (!strcmp(a, "--items"))
        ok = size_opt(a, v, 1, 0xfffffffeu, &p->items);
    else if (!strcmp(a, "--groups"))
        ok = size_opt(a, v, 1, 100000, &p->groups);
    else if (!strcmp(a, "--negatives"))
        ok = size_opt(a, v, 0, 1000000, &p->neg_mean);
    else if (!strcmp(a, "--max-users"))
        ok = size_opt(a, v, 1, 100000, &p->max_users);
    else if (!strcmp(a, "--seed"))
        ok = nu_arg_u64(CMD, a, v, 0, UINT64_MAX, &p->seed);
    else if (!strcmp(a, "--pos-mean"))
        ok = nu_arg_double(CMD, a, v, 1, 1e6, &p->pos_mean);
    else if (!strcmp(a, "--train"))
        ok = nu_arg_double(CMD, a, v, 0, 1, &p->train_frac);
    else if (!strcmp(a, "--activity-skew"))
        ok = nu_arg_double(CMD, a, v, 0, 10, &p->activity_skew);
    else
        ok = nu_arg_double(CMD, a, v, 0, 1, &p->val_frac);
    return ok ? -1 : NU_EXIT_USAGE;
}

int nu_cmd_synth_data(int argc, char **argv)
{
    nu_synth_params p;
    nu_synth_defaults(&p);
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        int rc = parse_opt(argc, argv, &i, &p, &out);
        if (rc >= 0)
            return rc;
    }
    if (!p.users || !p.items || !out)
        return nu_cli_usage_error(CMD, "--users, --items and --out are required");
    if (p.groups > p.users)
        return nu_cli_usage_error(CMD, "--groups (%zu) must not exceed --users (%zu)", p.groups,
                                  p.users);
    if (p.train_frac + p.val_frac > 1)
        return nu_cli_usage_error(CMD, "--train + --val must be <= 1");
    if (nu_synth_check(&p) != NU_OK)
        return nu_cli_usage_error(CMD, "%s", nu_last_error());
    nu_synth_summary s;
    if (nu_synth_write(&p, out, &s) != NU_OK)
        return nu_cli_fail(CMD);
    printf("wrote %s: %zu users, %zu items (train %zu, val %zu, test %zu; %zu without "
           "positives, %zu with more than %zu), %zu positives, %zu negatives, %zu groups, "
           "seed %llu\n",
           out, p.users, p.items, s.split_items[0], s.split_items[1], s.split_items[2],
           s.empty_items, s.long_items, p.max_users, s.positives, s.negatives, p.groups,
           (unsigned long long)p.seed);
    return NU_EXIT_OK;
}
