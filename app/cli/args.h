/* Small helpers for parsing command-line values with clear errors. */
#ifndef NU_ARGS_H
#define NU_ARGS_H

#include <stddef.h>
#include <stdint.h>

/* Each returns 1 on success; on failure prints "nextuser CMD: --opt: ..." and returns 0. */
int nu_arg_u64(const char *cmd, const char *opt, const char *text, uint64_t lo, uint64_t hi,
               uint64_t *out);
int nu_arg_int(const char *cmd, const char *opt, const char *text, long lo, long hi, int *out);
/* A finite number in [lo, hi] (pass -INFINITY/INFINITY for no bound). */
int nu_arg_double(const char *cmd, const char *opt, const char *text, double lo, double hi,
                  double *out);
/* The value after option argv[*i]; advances *i.  Prints an error when missing. */
const char *nu_arg_value(const char *cmd, int argc, char **argv, int *i);

#endif
