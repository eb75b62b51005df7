#include "bench/shapes.h"

#include <stdio.h>
#include <string.h>

#include "data/random_model.h"
#include "error.h"
#include "model/model.h"
#include "util/rng.h"

int nu_bench_shape_known(const char *shape)
{
    return !strcmp(shape, "base") || !strcmp(shape, "large");
}

nu_status nu_bench_shape_config(const char *shape, size_t num_users, nu_model_config *c)
{
    if (!nu_bench_shape_known(shape))
        return nu_error(NU_ERR_INVALID_ARG, "unknown shape '%s' (base or large)", shape);
    nu_config_defaults(c);
    if (!strcmp(shape, "large")) {
        c->d = 128;
        c->heads = 8;
        c->enc_layers = 4;
        c->dec_layers = 2;
        c->ffn = 4 * c->d;
    }
    nu_default_item_fields(c);
    c->num_users = num_users;
    return nu_config_validate(c, shape);
}

nu_status nu_bench_model(const nu_model_config *c, uint64_t seed, nu_model **out)
{
    return nu_random_model(c, seed, out);
}

nu_status nu_bench_items(const nu_model_config *c, size_t count, uint64_t seed, nu_items *out)
{
    nu_items_init(out, c);
    nu_random r = {seed};
    size_t nu = c->max_users;
    uint32_t users[4096], vals[64];
    size_t counts[NU_MAX_FIELDS];
    float dense[256];
    if (nu > 4096)
        nu = 4096;
    for (size_t i = 0; i < count; i++) {
        for (size_t u = 0; u < nu; u++)
            users[u] = (uint32_t)nu_random_below(&r, c->num_users);
        size_t nv = 0, nd = 0;
        for (size_t f = 0; f < c->n_prefix; f++) {
            const nu_field_config *fc = &c->prefix[f];
            size_t want = fc->kind == NU_FIELD_DENSE ? 0 : fc->kind == NU_FIELD_CATEGORICAL ? 1
                          : !strcmp(fc->name, "genres")                                      ? 2
                                                                                             : 3;
            counts[f] = 0;
            for (size_t v = 0; v < want && nv < 64; v++, counts[f]++)
                vals[nv++] = 1 + (uint32_t)nu_random_below(&r, fc->size - 1);
            if (fc->kind == NU_FIELD_DENSE)
                for (size_t j = 0; j < fc->size && nd < 256; j++)
                    dense[nd++] = (float)(2 * nu_random_unit(&r) - 1);
        }
        nu_status s = nu_items_push(out, c, NULL, users, nu, vals, counts, nd ? dense : NULL);
        if (s != NU_OK) {
            nu_items_free(out);
            return s;
        }
    }
    return NU_OK;
}
