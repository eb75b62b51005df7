/* libFuzzer: safetensors files (models, user tables, optimiser state):
 * nu_st_open, nu_st_open_header, then nu_model_load of a directory holding
 * the input as model.safetensors (users.txt: u0 u1 u2). */
#include "fuzz_util.h"
#include "io/safetensors.h"
#include "nextuser/nextuser.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static int once;
    if (!once) {
        fz_file("users.txt", "u0\nu1\nu2\n", 9);
        once = 1;
    }
    const char *path = fz_file("model.safetensors", d, n);
    nu_st_file f;
    volatile unsigned sink = 0;
    if (fz_said("safetensors", nu_st_open(path, &f) == NU_OK, nu_last_error())) {
        for (size_t i = 0; i < f.count; i++) {
            const nu_st_tensor *t = nu_st_find(&f, f.tensors[i].name);
            size_t bytes = t->nelem * nu_st_dtype_size(t->dtype);
            if (bytes)
                sink += ((const unsigned char *)t->raw)[0] + ((const unsigned char *)t->raw)[bytes - 1];
        }
        for (size_t i = 0; i < f.meta_count; i++)
            sink += nu_st_meta(&f, f.meta_keys[i]) != NULL;
        nu_st_close(&f);
    }
    if (nu_st_open_header(path, &f) == NU_OK)
        nu_st_close(&f);
    nu_model *m = NULL;
    if (fz_said("model", nu_model_load(fz_dir(), &m) == NU_OK, nu_last_error()))
        nu_model_free(m);
    (void)sink;
    return 0;
}
