/* What the public API's opaque handles hold (include/nextuser/nextuser.h).
 * nu_model, nu_engine and nu_session are the library's own structs. */
#ifndef NU_API_HANDLES_H
#define NU_API_HANDLES_H

#include "data/items.h"
#include "engine/engine.h"
#include "model/model.h"
#include "retrieval/user_table.h"

struct nu_table {
    const nu_model *model;
    nu_user_table table;
    int from_file; /* read from user_table.safetensors (else built in memory) */
};

struct nu_batch {
    const nu_model *model;
    nu_items items;
};

#endif
