/* Small helpers for parsing command-line values with clear errors. */
#ifndef NU_ARGS_H
#define NU_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "nextuser/nextuser.h"

/* Each returns 1 on success; on failure prints "nextuser CMD: --opt: ..." and returns 0. */
int nu_arg_u64(const char *cmd, const char *opt, const char *text, uint64_t lo, uint64_t hi,
               uint64_t *out);
int nu_arg_int(const char *cmd, const char *opt, const char *text, long lo, long hi, int *out);
/* A finite number in [lo, hi] (pass -INFINITY/INFINITY for no bound). */
int nu_arg_double(const char *cmd, const char *opt, const char *text, double lo, double hi,
                  double *out);
/* The value after option argv[*i]; advances *i.  Prints an error when missing. */
const char *nu_arg_value(const char *cmd, int argc, char **argv, int *i);
/* --gen-dtype fp32|bf16: how the generator's weights are encoded. */
int nu_arg_gen_dtype(const char *cmd, const char *opt, const char *text, nu_dtype *out);
/* The generator encoding for a summary line: "bf16", "fp32", or "fp32 (bf16
 * asked: no AVX512_BF16 at this kernel level)" when bf16 fell back. */
const char *nu_arg_gen_summary(nu_dtype asked, nu_dtype ran, char *buf, size_t cap);

/* The --help lines of --gen-dtype, shared by every command that runs the generator. */
#define NU_ARG_GEN_DTYPE_HELP                                                              \
    "  --gen-dtype D   generator weights: fp32 (default) or bf16 (weights packed once\n"    \
    "                in bf16, activations rounded to bf16 at each matmul, fp32 sums;\n"   \
    "                needs AVX512_BF16, runs fp32 elsewhere; the summary says which\n"    \
    "                ran).  bf16 moves the next-user embedding by at most 1% of\n"       \
    "                its norm (measured <= 0.4%; docs/encodings.md)\n"

#endif
