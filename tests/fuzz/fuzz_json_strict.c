/* libFuzzer: strict JSON (nu_json_parse_strict with number positions, the
 * exact integer text of each number, nu_utf8_check). */
#include "fuzz_util.h"
#include "util/json_strict.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    size_t bad;
    nu_utf8_check((const char *)d, n, &bad);
    /* not NUL-terminated: the parser must stay inside len bytes */
    char *s = malloc(n ? n : 1);
    if (!s)
        abort();
    memcpy(s, d, n);
    cJSON *root = NULL;
    nu_json_numbers nums;
    memset(&nums, 0, sizeof nums);
    if (fz_said("json", nu_json_parse_strict(s, n, "fuzz", 4096, &root, &nums) == NU_OK,
                nu_last_error())) {
        char buf[64];
        for (size_t k = 0; k < nums.count; k++)
            nu_json_integer_text(s, &nums, k, buf, sizeof buf);
        if (root && nu_json_count_numbers(root) != nums.count)
            abort();
        nu_json_check_unique_keys(root, "fuzz");
        cJSON_Delete(root);
    }
    nu_json_numbers_free(&nums);
    free(s);
    return 0;
}
