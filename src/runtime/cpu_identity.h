/* Which CPU this is, as /proc/cpuinfo names it: result files record it so
 * that figures measured on one CPU are never judged against another's. */
#ifndef NU_CPU_IDENTITY_H
#define NU_CPU_IDENTITY_H

typedef struct nu_cpu_identity {
    char model_name[128]; /* "AMD EPYC 9B45 ..." ("unknown" when not readable) */
    char vendor[32];      /* vendor_id, or "CPU implementer" on aarch64 */
    char family[16];      /* "cpu family" (x86) or "CPU architecture" (aarch64) */
    char model[16];       /* "model" (x86) or "CPU part" (aarch64) */
    char stepping[16];    /* "stepping" (x86) or "CPU variant" (aarch64) */
} nu_cpu_identity;

/* Fills id from /proc/cpuinfo (first processor); missing fields are "". */
void nu_cpu_identity_read(nu_cpu_identity *id);

#endif
