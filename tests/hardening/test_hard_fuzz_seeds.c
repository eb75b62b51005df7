/* The fuzz seeds that stand for complete valid models
 * (tests/fuzz/safetensors/corpus/model_complete_*, tests/fuzz/make_seeds.py)
 * load with nu_model_load as fuzz_safetensors loads its input (beside a
 * users.txt of u0 u1 u2), so the fuzzer starts from models that get past
 * every shape check; a change of the model format that makes them stale
 * fails here (regenerate them with make_seeds.py NEXTUSER). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_test_util.h"
#include "nextuser/nextuser.h"

#ifndef NU_FUZZ_SEEDS
#error "NU_FUZZ_SEEDS: the tests/fuzz directory"
#endif

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[4096];
    size_t n;
    int ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ok = 0;
    return ok;
}

int main(void)
{
    char dir[] = "/tmp/nu_fuzz_seeds_XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    nu_test_put(dir, "users.txt", "u0\nu1\nu2\n");
    static const char *const seeds[] = {"model_complete_dense", "model_complete_no_prefix"};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char from[1024], to[512];
        snprintf(from, sizeof from, "%s/safetensors/corpus/%s", NU_FUZZ_SEEDS, seeds[i]);
        snprintf(to, sizeof to, "%s/model.safetensors", dir);
        NU_CHECK(copy_file(from, to), "copy %s", from);
        nu_model *m = NULL;
        nu_status s = nu_model_load(dir, &m);
        NU_CHECK(s == NU_OK, "seed %s loads as a model: %s", seeds[i], nu_last_error());
        nu_model_free(m);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return nu_test_finish("fuzz seeds");
}
