#include <sleef.h>
#include <stdio.h>

#include "nextuser/nextuser.h"

#define NU_STR2(x) #x
#define NU_STR(x) NU_STR2(x)

const char *nu_version(void)
{
    return NU_STR(NU_VERSION_MAJOR) "." NU_STR(NU_VERSION_MINOR) "." NU_STR(NU_VERSION_PATCH);
}

const char *nu_sleef_version(void)
{
    return NU_STR(SLEEF_VERSION_MAJOR) "." NU_STR(SLEEF_VERSION_MINOR) "." NU_STR(SLEEF_VERSION_PATCHLEVEL);
}
