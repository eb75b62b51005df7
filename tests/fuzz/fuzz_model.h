/* The small model the items-line and request targets parse against: made
 * once per process (users u0..u49; fields g multi, y categorical, c dense 3). */
#ifndef NU_FUZZ_MODEL_H
#define NU_FUZZ_MODEL_H

#include <stdlib.h>

#include "model/config.h"
#include "model/model.h"

static inline nu_model *fz_model(void)
{
    static nu_model *m;
    if (!m) {
        const char *json =
            "{\"num_users\": 50, \"d\": 32, \"heads\": 2, \"ffn\": 64, \"max_users\": 6,"
            " \"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\", \"vocab\": 6},"
            " {\"name\": \"y\", \"kind\": \"categorical\", \"vocab\": 4},"
            " {\"name\": \"c\", \"kind\": \"dense\", \"dim\": 3}]}";
        nu_model_config c;
        if (nu_config_parse(json, "fuzz", &c) != NU_OK || nu_model_create(&c, &m) != NU_OK)
            abort();
        nu_model_init_random(m, 7);
    }
    return m;
}

#endif
