#include "data/random_model.h"

#include <stdio.h>

#include "model/model.h"

void nu_default_item_fields(nu_model_config *c)
{
    static const struct {
        const char *name;
        nu_field_kind kind;
        size_t size;
    } fields[] = {{"genres", NU_FIELD_MULTI, 20},
                  {"year", NU_FIELD_CATEGORICAL, 12},
                  {"tags", NU_FIELD_MULTI, 200},
                  {"content", NU_FIELD_DENSE, 16}};
    c->n_prefix = 4;
    for (size_t f = 0; f < 4; f++) {
        snprintf(c->prefix[f].name, sizeof c->prefix[f].name, "%s", fields[f].name);
        c->prefix[f].kind = fields[f].kind;
        c->prefix[f].size = fields[f].size;
    }
}

nu_status nu_random_model(const nu_model_config *c, uint64_t seed, nu_model **out)
{
    nu_model *m;
    nu_status s = nu_model_create(c, &m);
    if (s != NU_OK)
        return s;
    nu_model_init_random(m, seed);
    *out = m;
    return NU_OK;
}

nu_status nu_random_model_from_config(const char *config_path, uint64_t users, uint64_t seed,
                                      nu_model **out)
{
    nu_model_config cfg;
    nu_status s = nu_config_load_unchecked(config_path, &cfg);
    if (s != NU_OK)
        return s;
    if (users)
        cfg.num_users = (size_t)users;
    if ((s = nu_config_validate(&cfg, config_path)) != NU_OK)
        return s;
    return nu_random_model(&cfg, seed, out);
}

nu_status nu_synthetic_model(const char *config_path, uint64_t users, uint64_t dim, uint64_t seed,
                             nu_model **out)
{
    nu_model_config c;
    if (config_path) {
        nu_status s = nu_config_load_unchecked(config_path, &c);
        if (s != NU_OK)
            return s;
    } else {
        nu_config_defaults(&c);
        nu_default_item_fields(&c);
    }
    c.num_users = (size_t)users;
    c.d = (size_t)dim;
    c.heads = dim % 16 == 0 ? dim / 16 : 1;
    c.ffn = 4 * c.d;
    nu_status s = nu_config_validate(&c, "synth");
    return s == NU_OK ? nu_random_model(&c, seed, out) : s;
}
