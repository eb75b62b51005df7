/* Synthetic user tables for the retrieval workloads: the user embeddings of
 * a deterministic random model (what `nextuser synth --users U --dim 64`
 * makes), L2-normalised and encoded in fp32, bf16 and int8, in private
 * memory (as `--table copy`), and random query vectors. */
#ifndef NU_BENCH_TABLE_SYNTH_H
#define NU_BENCH_TABLE_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "retrieval/user_table.h"

nu_status nu_bench_user_table(size_t users, size_t d, uint64_t seed, nu_user_table *out);
/* n x d standard normal vectors (malloc'd); NULL when out of memory. */
float *nu_bench_queries(size_t n, size_t d, uint64_t seed);
/* Bytes one scan of the table in `dtype` reads. */
double nu_bench_table_scan_bytes(const nu_user_table *t, nu_table_dtype dtype);

/* U as workload names write it: 100k, 1M, or the plain number. */
void nu_bench_users_name(size_t users, char *out, size_t cap);

#endif
