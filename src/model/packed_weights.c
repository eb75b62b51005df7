/* Packing the generator's linear layers once (packed_weights.h). */
#include "model/packed_weights.h"

#include <stdint.h>

#include "bf16_pack.h"
#include "f32_pack.h"
#include "dispatch.h"

const char *nu_gen_encoding_name(nu_gen_encoding e)
{
    return e == NU_GEN_BF16 ? "bf16" : "fp32";
}

nu_gen_encoding nu_gen_encoding_effective(nu_gen_encoding want)
{
    if (want == NU_GEN_BF16 && nu_kernels()->matmul_bf16_native)
        return NU_GEN_BF16;
    return NU_GEN_FP32;
}

static size_t round64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

/* Packs one layer (in x out) at mem + *off, or only counts its bytes when
 * mem is NULL; its descriptor is desc[*i]. */
typedef struct packer {
    char *mem;
    nu_packed_linear *desc;
    size_t i, off;
    int transposed_too; /* training: w^T as well, into packed_t */
} packer;

static void pack_layer(packer *p, nu_packed_format f, nu_linear_view *l, size_t in, size_t out)
{
    const size_t bytes = f == NU_PACKED_BF16 ? nu_bf16_packed_elems(in, out) * sizeof(uint16_t)
                                             : nu_f32_packed_elems(in, out) * sizeof(float);
    if (p->mem) {
        void *data = p->mem + p->off;
        if (f == NU_PACKED_BF16)
            nu_bf16_pack_b(in, out, l->w, out, data);
        else
            nu_f32_pack_b(in, out, l->w, out, data);
        p->desc[p->i] = (nu_packed_linear){f, in, out, data};
        l->packed = &p->desc[p->i];
    }
    p->i++;
    p->off += round64(bytes);
    if (!p->transposed_too)
        return;
    /* w^T (out x in): its "in" is the layer's out */
    const size_t bytes_t = nu_f32_packed_elems(out, in) * sizeof(float);
    if (p->mem) {
        void *data = p->mem + p->off;
        nu_f32_pack_bt(out, in, l->w, out, data);
        p->desc[p->i] = (nu_packed_linear){NU_PACKED_F32, out, in, data};
        l->packed_t = &p->desc[p->i];
    }
    p->i++;
    p->off += round64(bytes_t);
}

/* The layout encoding e packs into, or 0 when it reads the weights in place. */
static int format_of(nu_gen_encoding e, nu_packed_format *f)
{
    if (e == NU_GEN_BF16)
        *f = NU_PACKED_BF16;
    else if (nu_kernels()->matmul_f32p_native)
        *f = NU_PACKED_F32; /* the same bits as matmul_nn, no B packing per call */
    else
        return 0;
    return 1;
}

/* Every linear the forward runs through matmul, in a fixed order: the
 * descriptors first, then each layer's packed weight.  v NULL: counts. */
static size_t walk(const nu_model_config *c, nu_gen_encoding e, int train, void *mem,
                   nu_model_view *v)
{
    nu_packed_format f;
    if (!format_of(e, &f) || (train && f != NU_PACKED_F32))
        return 0;
    const size_t d = c->d, F = c->ffn, n = (4 * c->enc_layers + 5 * c->dec_layers) * (train ? 2 : 1);
    packer p = {v ? mem : NULL, mem, 0, round64(n * sizeof(nu_packed_linear)), train};
    nu_linear_view none = {NULL, NULL, NULL, NULL};
    for (size_t i = 0; i < c->enc_layers; i++) {
        nu_enc_view *x = v ? &v->enc[i] : NULL;
        pack_layer(&p, f, x ? &x->qkv : &none, d, 3 * d);
        pack_layer(&p, f, x ? &x->o : &none, d, d);
        pack_layer(&p, f, x ? &x->ffn1 : &none, d, F);
        pack_layer(&p, f, x ? &x->ffn2 : &none, F, d);
    }
    for (size_t i = 0; i < c->dec_layers; i++) {
        nu_dec_view *x = v ? &v->dec[i] : NULL;
        pack_layer(&p, f, x ? &x->q : &none, d, d);
        pack_layer(&p, f, x ? &x->kv : &none, d, 2 * d);
        pack_layer(&p, f, x ? &x->o : &none, d, d);
        pack_layer(&p, f, x ? &x->ffn1 : &none, d, F);
        pack_layer(&p, f, x ? &x->ffn2 : &none, F, d);
    }
    return p.off;
}

size_t nu_packed_weights_bytes(const nu_model_config *c, nu_gen_encoding e)
{
    return walk(c, e, 0, NULL, NULL);
}

void nu_packed_weights_fill(const nu_model_config *c, nu_gen_encoding e, void *mem,
                            nu_model_view *v)
{
    walk(c, e, 0, mem, v);
}

size_t nu_packed_weights_train_bytes(const nu_model_config *c)
{
    return walk(c, NU_GEN_FP32, 1, NULL, NULL);
}

void nu_packed_weights_fill_train(const nu_model_config *c, void *mem, nu_model_view *v)
{
    walk(c, NU_GEN_FP32, 1, mem, v);
}
