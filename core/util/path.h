/* Path building that reports overflow instead of silently truncating. */
#ifndef NU_PATH_H
#define NU_PATH_H

#include <stddef.h>

#include "nextuser/nextuser.h"

#define NU_PATH_MAX 4096

/* out = dir + "/" + name; NU_ERR_INVALID_ARG when it does not fit. */
nu_status nu_path_join(char *out, size_t cap, const char *dir, const char *name);

#endif
