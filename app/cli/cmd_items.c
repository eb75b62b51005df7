/* nextuser items: new-item requests from a data directory, the held-out
 * items of a split with their first s users as context, for embed and
 * retrieve (the same items `nextuser eval` scores at stage s). */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "data/stage_items.h"

static const char *const items_help =
    "usage: nextuser items --data DIR --out ITEMS.jsonl [--split train|val|test] [--stage S]\n"
    "                      [--no-features]\n\n"
    "Writes the items of a data directory's split as new-item requests, one JSON\n"
    "object a line: {\"id\", \"features\", \"users\"}, the users being the item's\n"
    "first S positive users in time order.  Only items with at least S+1\n"
    "positives are written, so every request has a later user to find: the items\n"
    "`nextuser eval --stages S` scores.  The file is what `nextuser embed` and\n"
    "`nextuser retrieve` read (docs/model-format.md, \"Items file\").\n\n"
    "  --data DIR      a training data directory (docs/data-format.md)\n"
    "  --out FILE      the items file, written atomically\n"
    "  --split S       which items [test]\n"
    "  --stage S       context users per item [5]\n"
    "  --no-features   leave \"features\" out (for a model with other prefix fields:\n"
    "                  each field then reads as <unk>)\n";

int nu_cmd_items(int argc, char **argv)
{
    const char *data = NULL, *out = NULL, *v;
    nu_split split = NU_SPLIT_TEST;
    uint64_t stage = 5;
    int with_features = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(items_help, stdout);
            return NU_EXIT_OK;
        }
        if (!strcmp(a, "--data") || !strcmp(a, "--out")) {
            if (!(v = nu_arg_value("items", argc, argv, &i)))
                return NU_EXIT_USAGE;
            *(!strcmp(a, "--data") ? &data : &out) = v;
        } else if (!strcmp(a, "--stage")) {
            if (!(v = nu_arg_value("items", argc, argv, &i)) ||
                !nu_arg_u64("items", a, v, 0, 1000000, &stage))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--split")) {
            if (!(v = nu_arg_value("items", argc, argv, &i)))
                return NU_EXIT_USAGE;
            if (!strcmp(v, "train"))
                split = NU_SPLIT_TRAIN;
            else if (!strcmp(v, "val"))
                split = NU_SPLIT_VAL;
            else if (!strcmp(v, "test"))
                split = NU_SPLIT_TEST;
            else
                return nu_cli_usage_error("items", "--split: \"%s\" is not train, val or test", v);
        } else if (!strcmp(a, "--no-features")) {
            with_features = 0;
        } else
            return nu_cli_usage_error("items", "unknown option '%s'", a);
    }
    if (!data || !out)
        return nu_cli_usage_error("items", "--data and --out are required");
    size_t written;
    if (nu_write_stage_items_from_dir(data, split, (size_t)stage, with_features, out, &written) !=
        NU_OK)
        return nu_cli_fail("items");
    fprintf(stderr, "nextuser items: wrote %zu items (%s split, %llu users of context) to %s\n",
            written, split == NU_SPLIT_TRAIN ? "train" : split == NU_SPLIT_VAL ? "val" : "test",
            (unsigned long long)stage, out);
    return NU_EXIT_OK;
}
