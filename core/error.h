/* Internal: raising errors with a message kept per thread. */
#ifndef NU_ERROR_H
#define NU_ERROR_H

#include "nextuser/nextuser.h"

/* Records a printf-style message for nu_last_error() and returns s. */
nu_status nu_error(nu_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepends a printf-style context ("file:line: ") to the current message
 * and returns s. */
nu_status nu_error_context(nu_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
