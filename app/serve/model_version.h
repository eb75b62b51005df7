/* Model versions: a model, its user table and an engine, loaded and
 * validated together, shared by reference count.  The current version is
 * swapped atomically; a version is freed when its last holder (the service,
 * a request, a worker's session) lets go. */
#ifndef NU_SERVE_MODEL_VERSION_H
#define NU_SERVE_MODEL_VERSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "nextuser/nextuser.h"
#include "serve.h"

typedef struct sv_version {
    atomic_size_t refs;
    unsigned long gen; /* 1, 2, ...: the order of loading */
    char name[160];    /* "DIRNAME-xxxxxxxx" (docs/serve.md) */
    char dir[4096];
    nu_model *model;
    nu_table *table;
    nu_engine *engine;
    nu_dtype dtype;
    size_t k; /* users per item the engine returns (--max-k) */
    size_t max_batch;
    size_t dim, users;
    double load_seconds;
    const nu_serve_config *cfg;
    int table_loaded; /* cfg->table_load succeeded: release it with the version */
} sv_version;

typedef struct sv_models {
    pthread_mutex_t mu;        /* guards cur */
    pthread_mutex_t reload_mu; /* one load at a time */
    sv_version *cur;
    atomic_ulong cur_gen;   /* gen of cur, read without the lock */
    unsigned long next_gen; /* under reload_mu */
    const nu_serve_config *cfg;
} sv_models;

const char *sv_dtype_name(nu_dtype d);

int sv_models_init(sv_models *ms, const nu_serve_config *cfg);
/* Drops the current version (others' references stay valid). */
void sv_models_destroy(sv_models *ms);

/* Loads DIR, validates it completely (an engine, a session, one recommend
 * and one embed of an item without users or features) and, when it passes,
 * makes it the current version.  On failure returns the status with the
 * library's message in err and leaves the current version serving.  Loads
 * are serialised.  name/prev receive the new and the replaced version. */
nu_status sv_models_reload(sv_models *ms, const char *dir, char *err, size_t errcap, char *name,
                           size_t namecap, char *prev, size_t prevcap);

/* A reference to the current version, or NULL when none is loaded. */
sv_version *sv_models_acquire(sv_models *ms);
/* 1 when v is no longer the current version. */
int sv_models_is_stale(sv_models *ms, const sv_version *v);

void sv_version_ref(sv_version *v);
/* Drops a reference; the last frees the engine, table and model. */
void sv_version_release(sv_version *v);

#endif
