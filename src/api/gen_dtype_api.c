/* The public API's generator encodings (nu_dtype) over the library's
 * nu_gen_encoding: which ones exist, and what runs on this CPU. */
#include "api/handles.h"
#include "error.h"
#include "model/packed_weights.h"

nu_status nu_api_gen_encoding(nu_dtype d, const char *field, nu_gen_encoding *out)
{
    if (d == NU_DTYPE_FP32 || d == NU_DTYPE_BF16) {
        *out = d == NU_DTYPE_BF16 ? NU_GEN_BF16 : NU_GEN_FP32;
        return NU_OK;
    }
    return nu_error(NU_ERR_INVALID_ARG, "%s is %s (%d): the generator runs fp32 or bf16", field,
                    nu_dtype_name(d), (int)d);
}

nu_dtype nu_api_dtype_of(nu_gen_encoding e)
{
    return e == NU_GEN_BF16 ? NU_DTYPE_BF16 : NU_DTYPE_FP32;
}

nu_dtype nu_gen_dtype_effective(nu_dtype want)
{
    if (want != NU_DTYPE_FP32 && want != NU_DTYPE_BF16)
        return NU_DTYPE_INT8;
    if (want == NU_DTYPE_FP32 || nu_init() != NU_OK)
        return NU_DTYPE_FP32;
    return nu_api_dtype_of(nu_gen_encoding_effective(NU_GEN_BF16));
}

nu_dtype nu_engine_gen_dtype(const nu_engine *e)
{
    return e ? nu_api_dtype_of(e->fwd.gen) : NU_DTYPE_FP32;
}
