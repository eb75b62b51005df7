/* libFuzzer: a checkpoint's train_state.json (nu_checkpoint_parse_state,
 * what nu_checkpoint_load does with that file). */
#include "fuzz_util.h"
#include "train/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    char *s = fz_cstr(d, n); /* read_text gives the parser a terminated copy too */
    nu_adam_config c;
    uint64_t step = 0;
    nu_train_state st;
    memset(&c, 0, sizeof c);
    memset(&st, 0, sizeof st);
    fz_said("state", nu_checkpoint_parse_state("train_state.json", s, n, &c, &step, &st) == NU_OK,
            nu_last_error());
    free(s);
    return 0;
}
