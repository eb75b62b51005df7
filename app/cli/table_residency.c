/* The --table auto rule (table_residency.h). */
#include "table_residency.h"

#include <stdio.h>
#include <string.h>

uint64_t nu_cli_table_bytes(const nu_table *t)
{
    uint64_t cells = (uint64_t)nu_table_rows(t) * nu_table_width(t);
    uint64_t per = 4 + (nu_table_has(t, NU_DTYPE_BF16) ? 2 : 0) + (nu_table_has(t, NU_DTYPE_INT8) ? 1 : 0);
    uint64_t scales = nu_table_has(t, NU_DTYPE_INT8) ? (uint64_t)nu_table_rows(t) * 8 : 0;
    return cells * per + scales;
}

int nu_cli_table_copy_fits(uint64_t bytes, int sharers)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            break;
    fclose(f);
    uint64_t avail = (uint64_t)kb * 1024 / (uint64_t)(sharers > 0 ? sharers : 1);
    return kb > 0 && bytes <= avail / 2;
}

int nu_cli_table_resolve(int option, uint64_t bytes, int sharers)
{
    return option == NU_TABLE_AUTO ? nu_cli_table_copy_fits(bytes, sharers) : option == NU_TABLE_COPY;
}
