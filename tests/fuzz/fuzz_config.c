/* libFuzzer: the model config JSON (nu_config_parse; a valid config is
 * written back and parsed again, which must give the same config). */
#include "fuzz_util.h"
#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    char *s = fz_cstr(d, n);
    nu_model_config c;
    if (fz_said("config", nu_config_parse(s, "fuzz", &c) == NU_OK, nu_last_error())) {
        char *j = nu_config_to_json(&c);
        nu_model_config c2;
        if (j && nu_config_parse(j, "fuzz: written back", &c2) != NU_OK)
            abort();
        free(j);
    }
    free(s);
    return 0;
}
