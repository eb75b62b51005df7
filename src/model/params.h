/* Every parameter of the model, named as in docs/model-format.md, laid out
 * in one flat buffer.  The same layout serves weights, gradients and the
 * optimiser's moments: bind a view to any buffer of nu_params_total floats. */
#ifndef NU_PARAMS_H
#define NU_PARAMS_H

#include <stddef.h>

#include "model/config.h"

#define NU_PARAM_NAME_MAX 96
#define NU_MAX_LAYERS 64

typedef enum nu_param_kind {
    NU_PARAM_DENSE,    /* updated every step */
    NU_PARAM_EMBEDDING /* a table whose rows are updated only when used */
} nu_param_kind;

typedef struct nu_param_spec {
    char name[NU_PARAM_NAME_MAX];
    int ndim;
    size_t shape[2];
    size_t offset, count; /* in floats, offsets 16-float aligned */
    nu_param_kind kind;
} nu_param_spec;

typedef struct nu_param_layout {
    nu_param_spec *specs;
    size_t count;
    size_t total; /* floats */
} nu_param_layout;

nu_status nu_param_layout_build(const nu_model_config *c, nu_param_layout *out);
void nu_param_layout_free(nu_param_layout *l);
const nu_param_spec *nu_param_find(const nu_param_layout *l, const char *name);

/* Views of one buffer in the layout: pointers into it. */
/* A linear layer y = x w + b (w: in x out).  `packed` is NULL except in the
 * views an inference plan or a training step made: then it is w packed once
 * for a faster kernel (model/packed_weights.h), which the forward reads
 * instead of w.  `packed_t` (training's views only) is w^T packed the same
 * way, for the backward's dx = dy w^T. */
typedef struct nu_packed_linear nu_packed_linear;
typedef struct nu_linear_view {
    float *w, *b;
    const nu_packed_linear *packed, *packed_t;
} nu_linear_view;
typedef struct nu_ln_view { float *g, *b; } nu_ln_view;
typedef struct nu_enc_view {
    nu_ln_view ln1, ln2;
    nu_linear_view qkv, o, ffn1, ffn2;
} nu_enc_view;
typedef struct nu_dec_view {
    nu_ln_view ln1, ln2;
    nu_linear_view q, kv, o, ffn1, ffn2;
} nu_dec_view;

typedef struct nu_model_view {
    float *user_emb;
    float *prefix_emb[NU_MAX_FIELDS];       /* categorical / multi */
    nu_linear_view prefix_proj[NU_MAX_FIELDS]; /* dense */
    float *pos_prefix, *pos_user, *cls, *pos_cls;
    nu_enc_view enc[NU_MAX_LAYERS];
    nu_ln_view enc_ln;
    float *query_pos;
    nu_dec_view dec[NU_MAX_LAYERS];
    nu_ln_view dec_ln;
} nu_model_view;

void nu_model_view_bind(const nu_model_config *c, const nu_param_layout *l, float *base,
                        nu_model_view *v);
/* Binds a buffer holding the layout from float `skip` on (a copy without
 * the leading user table); tensors before `skip` are left NULL. */
void nu_model_view_bind_from(const nu_model_config *c, const nu_param_layout *l, float *base,
                             size_t skip, nu_model_view *v);

#endif
