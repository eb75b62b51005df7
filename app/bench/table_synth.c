#include "bench/table_synth.h"

#include <stdio.h>
#include <stdlib.h>

#include "bench/shapes.h"
#include "error.h"
#include "model/model.h"
#include "util/rng.h"

nu_status nu_bench_user_table(size_t users, size_t d, uint64_t seed, nu_user_table *out)
{
    nu_model_config c;
    nu_config_defaults(&c);
    c.d = d;
    c.heads = d % 16 == 0 ? d / 16 : 1;
    c.ffn = 4 * d;
    c.num_users = users;
    nu_status s = nu_config_validate(&c, "bench table");
    nu_model *m = NULL;
    if (s == NU_OK)
        s = nu_bench_model(&c, seed, &m);
    if (s == NU_OK)
        s = nu_user_table_build(m, 1, 1, out);
    nu_model_free(m);
    return s;
}

float *nu_bench_queries(size_t n, size_t d, uint64_t seed)
{
    float *q = malloc(n * d * sizeof *q);
    nu_random r = {seed};
    for (size_t i = 0; q && i < n * d; i++)
        q[i] = (float)nu_random_normal(&r);
    return q;
}

double nu_bench_table_scan_bytes(const nu_user_table *t, nu_table_dtype dtype)
{
    double rows = (double)t->rows, d = (double)t->d;
    switch (dtype) {
    case NU_TABLE_BF16: return rows * d * 2;
    /* Codes and scale: the one-query pass never reads the row sums (only
     * the VNNI lanes of 6+ queries do, and those are bound by the FMAs). */
    case NU_TABLE_I8: return rows * (d + sizeof(float));
    default: return rows * d * 4;
    }
}

void nu_bench_users_name(size_t U, char *out, size_t cap)
{
    if (U >= 1000000 && U % 1000000 == 0)
        snprintf(out, cap, "%zuM", U / 1000000);
    else if (U >= 1000 && U % 1000 == 0)
        snprintf(out, cap, "%zuk", U / 1000);
    else
        snprintf(out, cap, "%zu", U);
}
