/* What the public API's opaque handles hold (include/nextuser/nextuser.h).
 * nu_model, nu_engine and nu_session are the library's own structs. */
#ifndef NU_API_HANDLES_H
#define NU_API_HANDLES_H

#include "data/items.h"
#include "engine/engine.h"
#include "model/model.h"
#include "retrieval/user_table.h"
#include "model/packed_weights.h"

struct nu_table {
    const nu_model *model;
    nu_user_table table;
    int from_file; /* read from user_table.safetensors (else built in memory) */
};

struct nu_batch {
    const nu_model *model;
    nu_items items;
};

/* A public gen_dtype as the library's encoding: fp32 or bf16, else
 * NU_ERR_INVALID_ARG naming `field` (gen_dtype_api.c). */
nu_status nu_api_gen_encoding(nu_dtype d, const char *field, nu_gen_encoding *out);
nu_dtype nu_api_dtype_of(nu_gen_encoding e);

#endif
