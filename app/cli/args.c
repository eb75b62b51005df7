#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int nu_arg_u64(const char *cmd, const char *opt, const char *text, uint64_t lo, uint64_t hi,
               uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v < lo || v > hi) {
        fprintf(stderr, "nextuser %s: %s: \"%s\" is not a whole number in [%llu, %llu]\n", cmd,
                opt, text, (unsigned long long)lo, (unsigned long long)hi);
        return 0;
    }
    *out = v;
    return 1;
}

int nu_arg_int(const char *cmd, const char *opt, const char *text, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi) {
        fprintf(stderr, "nextuser %s: %s: \"%s\" is not a whole number in [%ld, %ld]\n", cmd, opt,
                text, lo, hi);
        return 0;
    }
    *out = (int)v;
    return 1;
}

int nu_arg_double(const char *cmd, const char *opt, const char *text, double lo, double hi,
                  double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || !(v >= lo && v <= hi)) {
        if (isinf(lo) && isinf(hi))
            fprintf(stderr, "nextuser %s: %s: \"%s\" is not a number\n", cmd, opt, text);
        else
            fprintf(stderr, "nextuser %s: %s: \"%s\" is not a number in [%g, %g]\n", cmd, opt, text,
                    lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

const char *nu_arg_value(const char *cmd, int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "nextuser %s: %s needs a value (see 'nextuser %s --help')\n", cmd,
                argv[*i], cmd);
        return NULL;
    }
    return argv[++*i];
}

int nu_arg_gen_dtype(const char *cmd, const char *opt, const char *text, nu_dtype *out)
{
    if (!strcmp(text, "fp32") || !strcmp(text, "bf16")) {
        *out = !strcmp(text, "bf16") ? NU_DTYPE_BF16 : NU_DTYPE_FP32;
        return 1;
    }
    fprintf(stderr, "nextuser %s: %s: \"%s\" is not fp32 or bf16\n", cmd, opt, text);
    return 0;
}

const char *nu_arg_gen_summary(nu_dtype asked, nu_dtype ran, char *buf, size_t cap)
{
    if (asked == ran)
        snprintf(buf, cap, "%s", nu_dtype_name(ran));
    else
        snprintf(buf, cap, "%s (%s asked: no AVX512_BF16 at this kernel level)",
                 nu_dtype_name(ran), nu_dtype_name(asked));
    return buf;
}
