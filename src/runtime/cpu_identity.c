#include "runtime/cpu_identity.h"

#include <stdio.h>
#include <string.h>

/* Copies the value of "key<blanks>: value" into out (if still empty) when
 * line has exactly that key ("model" must not take "model name"). */
static int take(const char *line, const char *key, char *out, size_t cap)
{
    size_t n = strlen(key);
    if (strncmp(line, key, n) != 0)
        return 0;
    const char *p = line + n;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != ':')
        return 0;
    if (!out[0]) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        snprintf(out, cap, "%s", p);
        out[strcspn(out, "\n")] = 0;
    }
    return 1;
}

void nu_cpu_identity_read(nu_cpu_identity *id)
{
    memset(id, 0, sizeof *id);
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[1024];
        /* Only the first processor's block: a blank line ends it. */
        while (fgets(line, sizeof line, f) && line[0] != '\n') {
            /* x86 names first, then the aarch64 ones; the first key that
             * matches a line takes it. */
            (void)(take(line, "model name", id->model_name, sizeof id->model_name) ||
                   take(line, "vendor_id", id->vendor, sizeof id->vendor) ||
                   take(line, "CPU implementer", id->vendor, sizeof id->vendor) ||
                   take(line, "cpu family", id->family, sizeof id->family) ||
                   take(line, "CPU architecture", id->family, sizeof id->family) ||
                   take(line, "model", id->model, sizeof id->model) ||
                   take(line, "CPU part", id->model, sizeof id->model) ||
                   take(line, "stepping", id->stepping, sizeof id->stepping) ||
                   take(line, "CPU variant", id->stepping, sizeof id->stepping));
        }
        fclose(f);
    }
    if (!id->model_name[0])
        snprintf(id->model_name, sizeof id->model_name, "unknown");
}
