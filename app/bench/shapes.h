/* The model shapes and the synthetic items of the benchmark workloads:
 * base (d 64, h 4, Le 2, Ld 1) and large (d 128, h 8, Le 4, Ld 2), both
 * with 50 context users and the four prefix fields of the synthetic data
 * (genres multi 20, year categorical 12, tags multi 200, content dense 16). */
#ifndef NU_BENCH_SHAPES_H
#define NU_BENCH_SHAPES_H

#include <stddef.h>
#include <stdint.h>

#include "data/items.h"
#include "model/config.h"

/* 1 when `shape` names a known shape. */
int nu_bench_shape_known(const char *shape);
/* The config of `shape` with `num_users` users (validated). */
nu_status nu_bench_shape_config(const char *shape, size_t num_users, nu_model_config *out);
/* A deterministic random model of the config. */
nu_status nu_bench_model(const nu_model_config *c, uint64_t seed, nu_model **out);
/* `count` items with max_users random users each and random feature
 * values (2 genres, 1 year, 3 tags, a dense content vector), as the peers'
 * items are made. */
nu_status nu_bench_items(const nu_model_config *c, size_t count, uint64_t seed, nu_items *out);

#endif
