/* libFuzzer: the rows nextuser prepare reads (nu_prepare_read: everything
 * but writing the directory).  Byte 0 picks the format (bits 0-1: 0 or 3
 * movielens, 1 ml100k, 2 csv), whether malformed rows are skipped, and which optional files are
 * given; the rest is split at FZ_SEP into ratings, items, tags and (csv)
 * item features. */
#include "data/prepare.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n < 1)
        return 0;
    unsigned sel = d[0];
    const uint8_t *part[4];
    size_t len[4];
    size_t k = fz_split(d + 1, n - 1, part, len, 4);
    nu_prepare_params p;
    nu_prepare_defaults(&p);
    p.format = (nu_prep_format)((sel & 3) % 3);
    p.skip_bad = (sel >> 2) & 1;
    p.ratings = fz_file("ratings", part[0], len[0]);
    p.ratings = strdup(p.ratings);
    char *items = NULL, *tags = NULL, *feats = NULL;
    if (k > 1 && p.format == NU_PREP_CSV && (sel & 8)) {
        feats = strdup(fz_file("features", part[1], len[1]));
    } else {
        if (k > 1)
            items = strdup(fz_file("items", part[1], len[1]));
        if (k > 2 && p.format != NU_PREP_ML100K)
            tags = strdup(fz_file("tags", part[2], len[2]));
    }
    p.items = items;
    p.tags = tags;
    p.item_features = feats;
    nu_prepare_summary sum;
    fz_said("prepare", nu_prepare_read(&p, &sum) == NU_OK, nu_last_error());
    free((char *)p.ratings);
    free(items);
    free(tags);
    free(feats);
    return 0;
}
