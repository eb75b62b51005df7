/* nextuser: Next-User Retrieval cold-start recommender on CPUs.
 * Public C API (docs/api.md).  Errors are values (nu_status) with a
 * thread-local message (nu_last_error); the library never exits and never
 * prints.  Handles are opaque; every create has its free; outputs go into
 * the caller's buffers. */
#ifndef NEXTUSER_H
#define NEXTUSER_H

#include <stddef.h>
#include <stdint.h>

/* What the shared library exports: exactly the functions declared with it. */
#if defined(__GNUC__)
#define NU_API __attribute__((visibility("default")))
#else
#define NU_API
#endif

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
NU_API const char *nu_status_str(nu_status s);

/* The message of the last error raised on this thread (names the file, line
 * or field at fault), or "" when there is none. */
NU_API const char *nu_last_error(void);

/* "0.1.0" */
NU_API const char *nu_version(void);

/* Chooses the kernel table once: the best ISA the CPU runs, lowered by the
 * environment variable NU_ISA (scalar|avx2|avx512|neon).  Asking for a level
 * the CPU lacks, or an unknown name, returns NU_ERR_UNSUPPORTED or
 * NU_ERR_INVALID_ARG with a message; it never raises the level.  Called
 * implicitly by every entry point that runs kernels; safe to call again. */
NU_API nu_status nu_init(void);

/* Name of the active ISA ("scalar", "avx2", "avx512", "neon"), after nu_init. */
NU_API const char *nu_isa_active(void);

/* Name reported by the code of the active table itself (see nextuser info). */
NU_API const char *nu_isa_active_whoami(void);

/* ISAs this build and CPU can run, best last: writes the first cap names
 * and returns how many there are (call with cap 0 to size the array). */
NU_API size_t nu_isas_available(const char **names, size_t cap);

/* CPU features the kernels use, as names ("avx2", "avx512_bf16", ...):
 * writes the first cap and returns how many there are. */
NU_API size_t nu_cpu_feature_names(const char **names, size_t cap);

/* SLEEF version this library was built against, "major.minor.patch". */
NU_API const char *nu_sleef_version(void);


/* ---- models, user tables, items, engines ------------------------------- */

typedef struct nu_model nu_model;     /* a trained model (docs/model-format.md) */
typedef struct nu_table nu_table;     /* a model's user table, ready to scan */
typedef struct nu_batch nu_batch;     /* new items to embed or recommend for */
typedef struct nu_engine nu_engine;   /* serving set up once: share it */
typedef struct nu_session nu_session; /* one caller thread's scratch */

/* Loads a model directory (model.safetensors, users.txt, vocabularies). */
NU_API nu_status nu_model_load(const char *dir, nu_model **out);
NU_API void nu_model_free(nu_model *m);
/* The generator's width d, the number of users, and a user's id by row. */
NU_API size_t nu_model_dim(const nu_model *m);
NU_API size_t nu_model_num_users(const nu_model *m);
NU_API const char *nu_model_user_id(const nu_model *m, uint32_t row); /* NULL if out of range */
/* How many of an item's most recent users the generator reads. */
NU_API size_t nu_model_max_users(const nu_model *m);
/* Width of a search query: d, plus the feature-prior indicators when the
 * model weighs a feature prior (docs/model-format.md, step 7). */
NU_API size_t nu_model_query_dim(const nu_model *m);

/* Table encodings: fp32 is exact; bf16 and int8 scan a candidate pool and
 * re-rank it in fp32. */
typedef enum nu_dtype { NU_DTYPE_FP32 = 0, NU_DTYPE_BF16 = 1, NU_DTYPE_INT8 = 2 } nu_dtype;

/* The user table of model m (loaded from model_dir): model_dir's
 * user_table.safetensors when it fits the model and holds `dtype`
 * (memory-mapped), else built in memory.  m must outlive the table. */
NU_API nu_status nu_table_open(const nu_model *m, const char *model_dir, nu_dtype dtype,
                               nu_table **out);
NU_API void nu_table_free(nu_table *t);
/* Copies a memory-mapped table into private memory in 2 MiB pages (a
 * no-op for a table built in memory): faster scans for a long-running
 * process, at the cost of its own copy.  Call before nu_engine_create. */
NU_API nu_status nu_table_make_resident(nu_table *t);

/* Items for one model.  An item is an id, its known users (oldest first;
 * the most recent max_users are read, all are left out of its
 * recommendations; unknown ids are skipped and counted) and its feature
 * values (unknown values read as <unk> and are counted). */
NU_API nu_status nu_batch_create(const nu_model *m, nu_batch **out);
NU_API void nu_batch_free(nu_batch *b);
NU_API void nu_batch_clear(nu_batch *b);
NU_API size_t nu_batch_count(const nu_batch *b);
NU_API const char *nu_batch_item_id(const nu_batch *b, size_t i); /* NULL if out of range */
/* One JSON line of the items format: {"id": ..., "features": {...}, "users": [...]}
 * (a blank line adds nothing).  Errors name no position: the caller knows
 * the file and line. */
NU_API nu_status nu_batch_add_json(nu_batch *b, const char *line, size_t len);
/* One item from strings: values[i] is a value of field fields[i] (a
 * categorical field takes one, a multi field any number; dense fields are
 * given through nu_batch_add_json).  users and fields/values may be NULL
 * when their count is 0. */
NU_API nu_status nu_batch_add(nu_batch *b, const char *id, const char *const *users,
                              size_t n_users, const char *const *fields,
                              const char *const *values, size_t n_values);
/* Inputs skipped or mapped to <unk> since the batch was created or last
 * cleared: unknown users, unknown values, items with more than max_users
 * users.  nu_batch_clear empties the batch and these counts. */
NU_API void nu_batch_input_counts(const nu_batch *b, size_t *unknown_users,
                                  size_t *unknown_values, size_t *truncated_items);

/* Options carry their size so that later versions can grow them: call
 * nu_engine_options_init, then set what you need. */
typedef struct nu_engine_options {
    size_t size;      /* sizeof(nu_engine_options), set by init */
    int threads;      /* threads per call (<= 0: one per core) [0] */
    size_t max_batch; /* most items or queries per call [64] */
    size_t k;         /* users per item [100] */
    nu_dtype dtype;   /* the table encoding to scan (the table must hold it) [fp32] */
    size_t pool;      /* bf16/int8 candidates re-ranked in fp32 (0: max(4k, 256)) [0] */
    int pin;          /* 1: pin each call's threads to cores; the caller's own
                         thread always gets its binding back [0: never pin] */
} nu_engine_options;

/* Sets the defaults in the caller's struct, of the caller's size (the macro
 * passes it): a newer library never writes past an older caller's struct. */
NU_API void nu_engine_options_init_sized(nu_engine_options *o, size_t size);
#define nu_engine_options_init(o) nu_engine_options_init_sized((o), sizeof *(o))
/* Plans thread placement, places the weights and shards the table once.
 * m and t must outlive the engine.  The engine is read-only afterwards:
 * any number of threads may share it, each with its own session. */
NU_API nu_status nu_engine_create(const nu_model *m, const nu_table *t,
                                  const nu_engine_options *o, nu_engine **out);
NU_API void nu_engine_free(nu_engine *e);
/* A session runs one call at a time; sessions of one engine run
 * concurrently. */
NU_API nu_status nu_session_create(const nu_engine *e, nu_session **out);
NU_API void nu_session_free(nu_session *s);

/* Top k users (rows, best first; UINT32_MAX past the eligible users) and
 * their scores for items [first, first + n) of b, n <= max_batch, leaving
 * out every known user of each item.  rows and scores hold n x k.  The
 * result of a call does not depend on the thread count or the session; with
 * a different grouping of items into calls a score may differ in its last
 * bit (the scan blocks queries), and so two users at a near-tie may swap. */
NU_API nu_status nu_session_recommend(nu_session *s, const nu_batch *b, size_t first, size_t n,
                                      uint32_t *rows, float *scores);
/* û_next of items [first, first + n) into out (n x nu_model_dim). */
NU_API nu_status nu_session_embed(nu_session *s, const nu_batch *b, size_t first, size_t n,
                                  float *out);
/* The search queries of items [first, first + n) into out (n x
 * nu_model_query_dim): û_next, then the item's feature-prior indicators. */
NU_API nu_status nu_session_query(nu_session *s, const nu_batch *b, size_t first, size_t n,
                                  float *out);
/* Top k users of n query vectors (n x nu_model_query_dim, rows ldq floats
 * apart; nu_session_query makes them), nothing left out. */
NU_API nu_status nu_session_search(nu_session *s, const float *queries, size_t n, size_t ldq,
                                   uint32_t *rows, float *scores);

/* ---- a row range of a user table (sharded retrieval, docs/mpi.md) ------ */

/* Rows [first, first + count) of model_dir/user_table.safetensors (from
 * `nextuser table`, current and holding `dtype`; count >= 1): only those
 * rows of the file are mapped.  An engine over it searches those rows and
 * reports rows of the whole table, so several processes can each serve one
 * shard.  m must outlive the table. */
NU_API nu_status nu_table_open_rows(const nu_model *m, const char *model_dir, nu_dtype dtype,
                                    size_t first, size_t count, nu_table **out);
/* The rows a table holds: [*first, *first + *count) of the model's users. */
NU_API void nu_table_row_range(const nu_table *t, size_t *first, size_t *count);

#ifdef __cplusplus
}
#endif
#endif
