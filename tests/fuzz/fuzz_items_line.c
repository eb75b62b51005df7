/* libFuzzer: one line of an items JSONL file (nu_items_parse_line, with the
 * features object through features_json.c) against a small random model;
 * the input may hold several lines, parsed one after another into one set
 * (duplicate ids, growth). */
#include "data/items.h"
#include "data/items_jsonl.h"
#include "fuzz_model.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    nu_model *m = fz_model();
    nu_items it;
    nu_items_init(&it, &m->cfg);
    const char *s = (const char *)d, *end = s + n;
    while (s <= end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
        if (!fz_said("line", nu_items_parse_line(s, len, m, &it) == NU_OK, nu_last_error()))
            break;
        if (!nl)
            break;
        s = nl + 1;
    }
    nu_items_free(&it);
    return 0;
}
