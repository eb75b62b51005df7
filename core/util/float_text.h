/* A float as text, exactly as printf("%.9g", (double)v) writes it (nine
 * significant digits: enough for a float32 to read back bit for bit), without
 * printf's cost on the hot paths that print thousands of scores per answer. */
#ifndef NU_UTIL_FLOAT_TEXT_H
#define NU_UTIL_FLOAT_TEXT_H

#include <stddef.h>

/* Room for any float's %.9g text and its terminating NUL. */
#define NU_FLOAT_TEXT_MAX 32

/* Writes v's %.9g text and a NUL into out; returns its length. */
size_t nu_float_text9(float v, char out[NU_FLOAT_TEXT_MAX]);

#endif
