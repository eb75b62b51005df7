/* libFuzzer: the files of a training data directory (nu_dataset_load):
 * the input split at FZ_SEP into data.json, users.txt, items.jsonl and the
 * vocabularies vocab_g.txt, vocab_y.txt (the seeds' fields); a part that
 * is missing is a missing file. */
#include "data/dataset.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static const char *const names[] = {"data.json", "users.txt", "items.jsonl", "vocab_g.txt",
                                        "vocab_y.txt"};
    const uint8_t *part[5];
    size_t len[5];
    size_t k = fz_split(d, n, part, len, 5);
    for (size_t i = 0; i < 5; i++)
        fz_file(names[i], i < k ? part[i] : NULL, i < k ? len[i] : 0);
    nu_dataset ds;
    if (fz_said("dataset", nu_dataset_load(fz_dir(), &ds) == NU_OK, nu_last_error()))
        nu_dataset_free(&ds);
    return 0;
}
