/* --table auto (the default of retrieve and search): a private copy of the
 * user table in 2 MiB pages when it fits comfortably in the memory
 * available now, else the file's mapping (docs/cli.md in cmd_retrieve's
 * help).  A copy scans faster (no 4 KiB page-cache pages, no faults); the
 * mapping costs no memory and shares the page cache between processes. */
#ifndef NU_CLI_TABLE_RESIDENCY_H
#define NU_CLI_TABLE_RESIDENCY_H

#include <stdint.h>

#include "nextuser/nextuser.h"

/* --table values in nu_cli_retrieval_opts.resident. */
enum { NU_TABLE_AUTO = -1, NU_TABLE_MAP = 0, NU_TABLE_COPY = 1 };

/* Bytes a copy of t takes (every encoding it holds). */
uint64_t nu_cli_table_bytes(const nu_table *t);
/* 1 when `bytes` are at most half of MemAvailable shared by `sharers`
 * processes of this host (0 when /proc/meminfo cannot say). */
int nu_cli_table_copy_fits(uint64_t bytes, int sharers);
/* The option resolved for a table of `bytes`: copy (1) or map (0). */
int nu_cli_table_resolve(int option, uint64_t bytes, int sharers);

#endif
