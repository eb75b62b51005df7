/* nextuser: Next-User Retrieval cold-start recommender on CPUs.
 * Public C API.  Errors are values (nu_status); the library never exits. */
#ifndef NEXTUSER_H
#define NEXTUSER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NU_VERSION_MAJOR 0
#define NU_VERSION_MINOR 1
#define NU_VERSION_PATCH 0

typedef enum nu_status {
    NU_OK = 0,
    NU_ERR_INVALID_ARG = 1, /* a bad argument or configuration value */
    NU_ERR_UNSUPPORTED = 2, /* the CPU or build lacks what was asked for */
    NU_ERR_IO = 3,          /* a file could not be read or written */
    NU_ERR_FORMAT = 4,      /* a file is malformed or corrupt */
    NU_ERR_NOMEM = 5,       /* out of memory */
    NU_ERR_INTERNAL = 6
} nu_status;

/* Short fixed text for a status code. */
const char *nu_status_str(nu_status s);

/* The message of the last error raised on this thread (names the file, line
 * or field at fault), or "" when there is none. */
const char *nu_last_error(void);

/* "0.1.0" */
const char *nu_version(void);

/* Chooses the kernel table once: the best ISA the CPU runs, lowered by the
 * environment variable NU_ISA (scalar|avx2|avx512|neon).  Asking for a level
 * the CPU lacks, or an unknown name, returns NU_ERR_UNSUPPORTED or
 * NU_ERR_INVALID_ARG with a message; it never raises the level.  Called
 * implicitly by every entry point that runs kernels; safe to call again. */
nu_status nu_init(void);

/* Name of the active ISA ("scalar", "avx2", "avx512", "neon"), after nu_init. */
const char *nu_isa_active(void);

/* Name reported by the code of the active table itself (see nextuser info). */
const char *nu_isa_active_whoami(void);

/* ISAs this build and CPU can run, best last; returns how many were written. */
size_t nu_isas_available(const char **names, size_t cap);

/* CPU features the kernels use, as names ("avx2", "avx512_bf16", ...). */
size_t nu_cpu_feature_names(const char **names, size_t cap);

/* SLEEF version this library was built against, "major.minor.patch". */
const char *nu_sleef_version(void);

#ifdef __cplusplus
}
#endif
#endif
