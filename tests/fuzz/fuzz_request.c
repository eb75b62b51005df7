/* libFuzzer: the service's request bodies (sv_request_parse) for
 * /v1/recommend (byte 0 even) and /v1/embed (odd) on a version holding a
 * small random model. */
#include "fuzz_model.h"
#include "fuzz_util.h"
#include "serve/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static sv_version v;
    if (!v.model) {
        atomic_init(&v.refs, 1); /* the target's own: never freed */
        v.gen = 1;
        snprintf(v.name, sizeof v.name, "fuzz-00000000");
        v.model = fz_model();
        v.dtype = NU_DTYPE_FP32;
        v.k = 20;
        v.max_batch = 64;
        v.dim = 32;
        v.users = 50;
    }
    if (n < 1)
        return 0;
    sv_kind kind = d[0] & 1 ? SV_EMBED : SV_RECOMMEND;
    char *body = malloc(n);
    if (!body)
        abort();
    memcpy(body, d + 1, n - 1);
    sv_request *r = NULL;
    char err[512];
    err[0] = 0;
    if (fz_said("request", sv_request_parse(kind, body, n - 1, &v, 16, 10, 20, &r, err, sizeof err) == 0,
                err) &&
        r)
        sv_request_free(r);
    free(body);
    if (atomic_load(&v.refs) != 1)
        abort(); /* a reference leaked or dropped */
    return 0;
}
