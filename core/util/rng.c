#include "rng.h"

#include <math.h>

double nu_random_normal(nu_random *r)
{
    double u1 = nu_random_unit(r), u2 = nu_random_unit(r);
    if (u1 < 1e-300)
        u1 = 1e-300; /* log(0) guard */
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
