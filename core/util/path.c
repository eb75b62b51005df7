#include "path.h"

#include <string.h>

#include "error.h"

nu_status nu_path_join(char *out, size_t cap, const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    if (a + 1 + b + 1 > cap)
        return nu_error(NU_ERR_INVALID_ARG, "path too long: %s/%s", dir, name);
    memcpy(out, dir, a);
    out[a] = '/';
    memcpy(out + a + 1, name, b + 1);
    return NU_OK;
}
