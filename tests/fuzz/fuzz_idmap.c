/* libFuzzer: id maps (users.txt, vocab_*.txt: nu_idmap_load); every id
 * loaded must be found again at its index. */
#include "data/idmap.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    const char *path = fz_file("users.txt", d, n);
    nu_idmap m;
    if (fz_said("idmap", nu_idmap_load(&m, path) == NU_OK, nu_last_error())) {
        for (size_t i = 0; i < m.count; i++)
            if (nu_idmap_find(&m, m.names[i], strlen(m.names[i])) != i)
                abort();
        nu_idmap_free(&m);
    }
    return 0;
}
