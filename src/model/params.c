#include "params.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

typedef struct builder {
    nu_param_layout *l;
    size_t cap;
    int failed;
} builder;

static void add(builder *b, nu_param_kind kind, size_t rows, size_t cols, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* cols == 0 means a vector of `rows` floats. */
static void add(builder *b, nu_param_kind kind, size_t rows, size_t cols, const char *fmt, ...)
{
    if (b->failed)
        return;
    if (b->l->count == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        nu_param_spec *s = realloc(b->l->specs, cap * sizeof *s);
        if (!s) {
            b->failed = 1;
            return;
        }
        b->l->specs = s;
        b->cap = cap;
    }
    nu_param_spec *p = &b->l->specs[b->l->count++];
    memset(p, 0, sizeof *p);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    p->kind = kind;
    p->ndim = cols ? 2 : 1;
    p->shape[0] = rows;
    p->shape[1] = cols;
    p->count = cols ? rows * cols : rows;
    p->offset = b->l->total;
    b->l->total += (p->count + 15) / 16 * 16; /* keep every tensor 64-byte aligned */
}

static void add_linear(builder *b, size_t in, size_t out, const char *prefix, const char *w,
                       const char *bias)
{
    add(b, NU_PARAM_DENSE, in, out, "%s.%s", prefix, w);
    add(b, NU_PARAM_DENSE, out, 0, "%s.%s", prefix, bias);
}

static void add_ln(builder *b, size_t d, const char *prefix)
{
    add(b, NU_PARAM_DENSE, d, 0, "%s.g", prefix);
    add(b, NU_PARAM_DENSE, d, 0, "%s.b", prefix);
}

static void add_ffn(builder *b, const nu_model_config *c, const char *block)
{
    char p[NU_PARAM_NAME_MAX];
    snprintf(p, sizeof p, "%.80s.ffn", block);
    add_linear(b, c->d, c->ffn, p, "w1", "b1");
    add_linear(b, c->ffn, c->d, p, "w2", "b2");
}

nu_status nu_param_layout_build(const nu_model_config *c, nu_param_layout *out)
{
    memset(out, 0, sizeof *out);
    if (c->enc_layers > NU_MAX_LAYERS || c->dec_layers > NU_MAX_LAYERS)
        return nu_error(NU_ERR_INVALID_ARG, "at most %d layers", NU_MAX_LAYERS);
    builder b = {out, 0, 0};
    size_t d = c->d;
    char p[64];
    add(&b, NU_PARAM_EMBEDDING, c->num_users, d, "user_emb");
    for (size_t f = 0; f < c->n_prefix; f++) {
        const nu_field_config *fc = &c->prefix[f];
        if (fc->kind == NU_FIELD_DENSE) {
            add(&b, NU_PARAM_DENSE, fc->size, d, "prefix.%s.w", fc->name);
            add(&b, NU_PARAM_DENSE, d, 0, "prefix.%s.b", fc->name);
        } else {
            add(&b, NU_PARAM_EMBEDDING, fc->size, d, "prefix.%s.emb", fc->name);
        }
    }
    if (c->n_prefix)
        add(&b, NU_PARAM_DENSE, c->n_prefix, d, "pos.prefix");
    add(&b, NU_PARAM_DENSE, c->max_users, d, "pos.user");
    add(&b, NU_PARAM_DENSE, d, 0, "cls");
    add(&b, NU_PARAM_DENSE, d, 0, "pos.cls");
    for (size_t l = 0; l < c->enc_layers; l++) {
        snprintf(p, sizeof p, "enc.%zu.ln1", l);
        add_ln(&b, d, p);
        snprintf(p, sizeof p, "enc.%zu.attn", l);
        add_linear(&b, d, 3 * d, p, "wqkv", "bqkv");
        add_linear(&b, d, d, p, "wo", "bo");
        snprintf(p, sizeof p, "enc.%zu.ln2", l);
        add_ln(&b, d, p);
        snprintf(p, sizeof p, "enc.%zu", l);
        add_ffn(&b, c, p);
    }
    add_ln(&b, d, "enc.ln");
    add(&b, NU_PARAM_DENSE, c->max_users + 1, d, "dec.query_pos");
    for (size_t l = 0; l < c->dec_layers; l++) {
        snprintf(p, sizeof p, "dec.%zu.ln1", l);
        add_ln(&b, d, p);
        snprintf(p, sizeof p, "dec.%zu.attn", l);
        add_linear(&b, d, d, p, "wq", "bq");
        add_linear(&b, d, 2 * d, p, "wkv", "bkv");
        add_linear(&b, d, d, p, "wo", "bo");
        snprintf(p, sizeof p, "dec.%zu.ln2", l);
        add_ln(&b, d, p);
        snprintf(p, sizeof p, "dec.%zu", l);
        add_ffn(&b, c, p);
    }
    add_ln(&b, d, "dec.ln");
    if (b.failed) {
        nu_param_layout_free(out);
        return nu_error(NU_ERR_NOMEM, "out of memory building the parameter layout");
    }
    return NU_OK;
}

void nu_param_layout_free(nu_param_layout *l)
{
    free(l->specs);
    memset(l, 0, sizeof *l);
}

const nu_param_spec *nu_param_find(const nu_param_layout *l, const char *name)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->specs[i].name, name) == 0)
            return &l->specs[i];
    return NULL;
}

typedef struct binder {
    const nu_param_layout *l;
    float *base;
    size_t skip; /* floats of the layout before base[0]; earlier tensors bind to NULL */
} binder;

static float *at(const binder *bd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Every name asked for here is one the layout builder added. */
static float *at(const binder *bd, const char *fmt, ...)
{
    char name[NU_PARAM_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const nu_param_spec *p = nu_param_find(bd->l, name);
    return p && p->offset >= bd->skip ? bd->base + (p->offset - bd->skip) : NULL;
}

void nu_model_view_bind(const nu_model_config *c, const nu_param_layout *l, float *base,
                        nu_model_view *v)
{
    nu_model_view_bind_from(c, l, base, 0, v);
}

void nu_model_view_bind_from(const nu_model_config *c, const nu_param_layout *l, float *base,
                             size_t skip, nu_model_view *v)
{
    binder bdv = {l, base, skip}, *bd = &bdv;
    memset(v, 0, sizeof *v);
    v->user_emb = at(bd, "user_emb");
    for (size_t f = 0; f < c->n_prefix; f++) {
        const char *n = c->prefix[f].name;
        if (c->prefix[f].kind == NU_FIELD_DENSE) {
            v->prefix_proj[f].w = at(bd, "prefix.%s.w", n);
            v->prefix_proj[f].b = at(bd, "prefix.%s.b", n);
        } else {
            v->prefix_emb[f] = at(bd, "prefix.%s.emb", n);
        }
    }
    v->pos_prefix = c->n_prefix ? at(bd, "pos.prefix") : NULL;
    v->pos_user = at(bd, "pos.user");
    v->cls = at(bd, "cls");
    v->pos_cls = at(bd, "pos.cls");
    for (size_t i = 0; i < c->enc_layers; i++) {
        nu_enc_view *e = &v->enc[i];
        e->ln1.g = at(bd, "enc.%zu.ln1.g", i);
        e->ln1.b = at(bd, "enc.%zu.ln1.b", i);
        e->qkv.w = at(bd, "enc.%zu.attn.wqkv", i);
        e->qkv.b = at(bd, "enc.%zu.attn.bqkv", i);
        e->o.w = at(bd, "enc.%zu.attn.wo", i);
        e->o.b = at(bd, "enc.%zu.attn.bo", i);
        e->ln2.g = at(bd, "enc.%zu.ln2.g", i);
        e->ln2.b = at(bd, "enc.%zu.ln2.b", i);
        e->ffn1.w = at(bd, "enc.%zu.ffn.w1", i);
        e->ffn1.b = at(bd, "enc.%zu.ffn.b1", i);
        e->ffn2.w = at(bd, "enc.%zu.ffn.w2", i);
        e->ffn2.b = at(bd, "enc.%zu.ffn.b2", i);
    }
    v->enc_ln.g = at(bd, "enc.ln.g");
    v->enc_ln.b = at(bd, "enc.ln.b");
    v->query_pos = at(bd, "dec.query_pos");
    for (size_t i = 0; i < c->dec_layers; i++) {
        nu_dec_view *e = &v->dec[i];
        e->ln1.g = at(bd, "dec.%zu.ln1.g", i);
        e->ln1.b = at(bd, "dec.%zu.ln1.b", i);
        e->q.w = at(bd, "dec.%zu.attn.wq", i);
        e->q.b = at(bd, "dec.%zu.attn.bq", i);
        e->kv.w = at(bd, "dec.%zu.attn.wkv", i);
        e->kv.b = at(bd, "dec.%zu.attn.bkv", i);
        e->o.w = at(bd, "dec.%zu.attn.wo", i);
        e->o.b = at(bd, "dec.%zu.attn.bo", i);
        e->ln2.g = at(bd, "dec.%zu.ln2.g", i);
        e->ln2.b = at(bd, "dec.%zu.ln2.b", i);
        e->ffn1.w = at(bd, "dec.%zu.ffn.w1", i);
        e->ffn1.b = at(bd, "dec.%zu.ffn.b1", i);
        e->ffn2.w = at(bd, "dec.%zu.ffn.w2", i);
        e->ffn2.b = at(bd, "dec.%zu.ffn.b2", i);
    }
    v->dec_ln.g = at(bd, "dec.ln.g");
    v->dec_ln.b = at(bd, "dec.ln.b");
}
