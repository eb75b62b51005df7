/* nextuser: Next-User Retrieval cold-start recommender on CPUs.
 * Public C API (docs/api.md).  Errors are values (nu_status) with a
 * thread-local message (nu_last_error); the library never exits and never
 * prints.  Handles are opaque; every create has its free; outputs go into
 * the caller's buffers. */
#ifndef NEXTUSER_H
#define NEXTUSER_H

#include <signal.h>
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

/* The machine as thread placement sees it (hwloc; HWLOC_SYNTHETIC fakes
 * one).  Set size = sizeof(nu_topology_info) before the call: the library
 * writes no more than that. */
typedef struct nu_topology_info {
    size_t size;
    int packages, numa_nodes, cores, pus;
    char synthetic[128]; /* the HWLOC_SYNTHETIC description in force, or "" */
} nu_topology_info;
NU_API nu_status nu_topology_read(nu_topology_info *out);


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
/* The number of trained parameters (floats of model.safetensors). */
NU_API size_t nu_model_num_parameters(const nu_model *m);
/* Writes m as a model directory, replaced atomically; an existing dir is
 * replaced only if nextuser wrote it (marker .nextuser-dir) or it is empty. */
NU_API nu_status nu_model_save(const nu_model *m, const char *dir);

/* Table encodings: fp32 is exact; bf16 and int8 scan a candidate pool and
 * re-rank it in fp32. */
typedef enum nu_dtype { NU_DTYPE_FP32 = 0, NU_DTYPE_BF16 = 1, NU_DTYPE_INT8 = 2 } nu_dtype;
/* "fp32", "bf16", "int8" ("unknown" for another value). */
NU_API const char *nu_dtype_name(nu_dtype t);
/* Parses "fp32", "bf16" or "int8"; NU_ERR_INVALID_ARG for anything else. */
NU_API nu_status nu_dtype_parse(const char *name, nu_dtype *out);

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
/* Model m's user table built in memory: fp32, plus each encoding whose bit
 * (NU_DTYPE_BIT) is set in `dtypes`.  m must outlive the table. */
#define NU_DTYPE_BIT(t) (1u << (unsigned)(t))
NU_API nu_status nu_table_build(const nu_model *m, unsigned dtypes, nu_table **out);
/* Writes t as model_dir/user_table.safetensors (atomically), stamped with
 * the size and time of model_dir's model file, so that nu_table_open takes
 * it while that model is current and refuses it as stale after.  model_dir
 * is the directory t's model was loaded from (or saved to). */
NU_API nu_status nu_table_save(const nu_table *t, const char *model_dir);
/* Rows (the model's users), floats per fp32 row (d, plus the prior columns
 * the table carries), and whether it holds an encoding. */
NU_API size_t nu_table_rows(const nu_table *t);
NU_API size_t nu_table_width(const nu_table *t);
NU_API int nu_table_has(const nu_table *t, nu_dtype dtype);
/* Where a table's memory came from. */
typedef enum nu_table_origin {
    NU_TABLE_BUILT = 0,  /* built in memory */
    NU_TABLE_MAPPED = 1, /* memory-mapped from its file */
    NU_TABLE_COPIED = 2  /* read from its file, then made resident */
} nu_table_origin;
NU_API nu_table_origin nu_table_source(const nu_table *t);
/* On a machine of several NUMA nodes, moves the shard of t that each of an
 * engine's `threads` threads scans (<= 0: one per core) to that thread's
 * node, so scans read local memory; call once, before nu_engine_create.
 * Returns the number of shard ranges bound (0 on one node). */
NU_API size_t nu_table_place(const nu_table *t, int threads);

/* Items for one model.  An item is an id, its known users (oldest first;
 * the most recent max_users are read, all are left out of its
 * recommendations; unknown ids are skipped and counted) and its feature
 * values (unknown values read as <unk> and are counted). */
NU_API nu_status nu_batch_create(const nu_model *m, nu_batch **out);
NU_API void nu_batch_free(nu_batch *b);
NU_API void nu_batch_clear(nu_batch *b); /* keeps its memory for reuse */
NU_API size_t nu_batch_count(const nu_batch *b);
NU_API const char *nu_batch_item_id(const nu_batch *b, size_t i); /* NULL if out of range */
/* One JSON line of the items format: {"id": ..., "features": {...}, "users": [...]}
 * (a blank line adds nothing).  Errors name no position: the caller knows
 * the file and line. */
NU_API nu_status nu_batch_add_json(nu_batch *b, const char *line, size_t len);
/* Every line of an items file ("-": standard input), as nu_batch_add_json;
 * an error names the file and line (the batch then holds the items before
 * that line: clear it to reuse it). */
NU_API nu_status nu_batch_read_jsonl(nu_batch *b, const char *path);
/* How many of item i's users the generator reads (its most recent, at most
 * nu_model_max_users); 0 if out of range. */
NU_API size_t nu_batch_item_users(const nu_batch *b, size_t i);
/* Item i's whole known history: every known user it was given, oldest
 * first, as rows of the model's users (not only the max_users the
 * generator reads).  These are the rows nu_session_recommend leaves out of
 * its answer; a caller that runs the scan itself (nu_session_query, then a
 * search of its own, as a sharded service does) leaves out the same.
 * *rows stays valid until b changes.  NU_ERR_INVALID_ARG if i is out of
 * range (then *rows = NULL, *n = 0). */
NU_API nu_status nu_batch_item_history(const nu_batch *b, size_t i, const uint32_t **rows,
                                       size_t *n);
/* One item from strings: values[i] is a value of field fields[i] (a
 * categorical field takes one, a multi field any number; dense fields are
 * given through nu_batch_add_json).  users and fields/values may be NULL
 * when their count is 0. */
NU_API nu_status nu_batch_add(nu_batch *b, const char *id, const char *const *users,
                              size_t n_users, const char *const *fields,
                              const char *const *values, size_t n_values);
/* Appends items [first, first + n) of src, a batch of the same model, to
 * dst as they were read (users, history, features): a service can check
 * each request's items in a batch of their own, then gather several
 * requests into one call without parsing again.  dst's input counts do
 * not change. */
NU_API nu_status nu_batch_append(nu_batch *dst, const nu_batch *src, size_t first, size_t n);
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
    /* How the generator's weights are encoded: NU_DTYPE_FP32, or NU_DTYPE_BF16
     * (weights packed once in bf16 at creation, activations rounded to bf16 at
     * each matmul, fp32 sums: faster, û_next within the bound of
     * docs/encodings.md).  bf16 needs AVX512_BF16 and runs fp32 elsewhere:
     * nu_engine_gen_dtype says what runs.  int8 is refused. [fp32] */
    nu_dtype gen_dtype;
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
/* The generator encoding an engine runs: its gen_dtype, or NU_DTYPE_FP32 where
 * this CPU (or NU_ISA) has no bf16 dot products. */
NU_API nu_dtype nu_engine_gen_dtype(const nu_engine *e);
/* The generator encoding that `want` (fp32 or bf16) runs as on this CPU and
 * kernel level; NU_DTYPE_INT8 for an encoding the generator does not have. */
NU_API nu_dtype nu_gen_dtype_effective(nu_dtype want);
/* A session runs one call at a time; sessions of one engine run
 * concurrently. */
NU_API nu_status nu_session_create(const nu_engine *e, nu_session **out);
NU_API void nu_session_free(nu_session *s);

/* Threads of this session's next calls, from 1 to the engine's (<= 0 or
 * more: the engine's, the default).  Results do not change: fewer threads
 * run the same batches and table shards in turn.  A caller that knows a
 * call is small and comes after a pause (a service at light load) can
 * spare a sleeping thread's wake-up, which on some machines costs more
 * than the thread saves. */
NU_API nu_status nu_session_set_threads(nu_session *s, int threads);

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


/* ---- one-shot embedding ----------------------------------------------- */

/* What nu_embed writes per row. */
typedef enum nu_embed_kind {
    NU_EMBED_NEXT = 0,         /* û_next: one row of nu_model_dim per item */
    NU_EMBED_QUERY = 1,        /* the search query: one row of nu_model_query_dim per item */
    NU_EMBED_ALL_POSITIONS = 2 /* every decoder position j = 1..n+1 (training mode):
                                  n + 1 rows of nu_model_dim per item, n its users */
} nu_embed_kind;

typedef struct nu_embed_options {
    size_t size;        /* sizeof(nu_embed_options), set by init */
    nu_embed_kind kind; /* [NU_EMBED_NEXT] */
    int threads;        /* <= 0: one per core [0] */
    size_t batch;       /* items per batch a thread takes [64] */
    int pin;            /* 1: pin the run's threads to cores [0] */
    /* Called now and then with the items done (may be NULL). */
    void (*progress)(size_t done, size_t total, void *ctx);
    void *progress_ctx;
    nu_dtype gen_dtype; /* generator weights: fp32 or bf16, as nu_engine_options [fp32] */
} nu_embed_options;

NU_API void nu_embed_options_init_sized(nu_embed_options *o, size_t size);
#define nu_embed_options_init(o) nu_embed_options_init_sized((o), sizeof *(o))

/* What a run did.  Set size = sizeof(nu_run_report) before the call. */
typedef struct nu_run_report {
    size_t size;
    int threads, nodes; /* threads used, NUMA nodes they ran on */
    double seconds;     /* the run itself, planning included */
    nu_dtype gen_dtype; /* the generator encoding that ran (bf16 may fall back to fp32) */
} nu_run_report;

/* Rows and floats per row that nu_embed writes for b. */
NU_API size_t nu_embed_rows(const nu_batch *b, nu_embed_kind kind);
NU_API size_t nu_embed_width(const nu_model *m, nu_embed_kind kind);
/* Runs the generator over every item of b in one call: plans threads and
 * weights, runs, frees (an engine serves repeated calls).  out holds
 * nu_embed_rows x nu_embed_width floats, items in order.  report may be
 * NULL.  b must be a batch of m. */
NU_API nu_status nu_embed(const nu_model *m, const nu_batch *b, const nu_embed_options *o,
                          float *out, nu_run_report *report);


/* ---- training -------------------------------------------------------- */

/* The state of a run, given to the progress callback after every step.
 * size is sizeof(nu_training_progress) of the library. */
typedef struct nu_training_progress {
    size_t size;
    uint64_t step, total_steps, epoch; /* epoch counts from 0 */
    double con, ce, aux, total;        /* loss terms of the last step */
    double examples_per_s;             /* since the run (or resume) started */
    /* Set on the call right after a validation: its score, the best so far
     * and its step. */
    int validated;
    double val_score, best_score;
    uint64_t best_step;
} nu_training_progress;

/* Scores a model on held-out data, higher is better.  It may set the
 * model's serving-only prior weights to the values it scored best with
 * (training never reads them). */
typedef nu_status (*nu_validate_fn)(nu_model *m, double *score, void *ctx);

/* Collective operations over the processes of one training job, for
 * data-parallel training with row-sharded tables (docs/mpi.md).  The
 * library never links MPI: a caller that runs under MPI fills these with
 * MPI's calls (the nextuser executable does, app/mpi).  Every process calls
 * the same operations in the same order; each returns 0 on success.
 * Byte counts above INT_MAX are the caller's to refuse. */
typedef struct nu_collectives {
    size_t size;   /* sizeof(nu_collectives) */
    int rank;      /* this process, 0 .. ranks - 1 */
    int ranks;     /* processes in the job */
    void *ctx;
    /* Each process contributes `bytes` bytes; recv gets ranks x bytes in
     * rank order. */
    int (*allgather)(void *ctx, const void *send, void *recv, size_t bytes);
    /* Each process sends send_bytes[q] bytes from send + send_off[q] to
     * process q and receives recv_bytes[q] bytes from q at recv + recv_off[q]
     * (the counts agree pairwise: learn them with allgather first). */
    int (*alltoallv)(void *ctx, const void *send, const size_t *send_bytes,
                     const size_t *send_off, void *recv, const size_t *recv_bytes,
                     const size_t *recv_off);
} nu_collectives;

typedef struct nu_training_options {
    size_t size;             /* sizeof(nu_training_options), set by init */
    const char *resume_dir;  /* continue this checkpoint exactly [NULL: a new model] */
    /* The new model: a config file (docs/model-format.md; users and prefix
     * fields come from the data) [NULL: the base shape], and overrides. */
    const char *config_path;
    size_t max_users;        /* > 0: context users the encoder reads [0: the config's] */
    int no_cls;              /* 1: no [CLS] token [0] */
    int bidirectional;       /* 1: bidirectional encoder instead of causal [0] */
    int no_prefix;           /* 1: no item-feature prefix tokens [0] */
    uint64_t epochs;         /* [1] */
    uint64_t batch;          /* examples per step [256] */
    uint64_t seed;           /* [1] */
    uint64_t negatives;      /* shared random negatives per step [1024] */
    uint64_t checkpoint_every; /* steps between checkpoints [0: at the end only] */
    uint64_t max_steps;      /* stop (with a checkpoint) after this many steps in all [0: none] */
    int threads;             /* <= 0: one per core [0] */
    int all_windows;         /* 1: every window start is an example; 0: disjoint windows [0] */
    double lr;               /* Adam's learning rate [1e-3] */
    double lambda_con, lambda_ce, lambda_aux; /* the loss terms' weights [1, 0.5, 0.1] */
    /* Selection on validation: with `validate` set, the model is scored
     * every val_every steps (0: at the end of every epoch) and at the end;
     * out_dir then always holds the best-scoring model and its checkpoint
     * (checkpoint_every must be 0), and training stops after `patience`
     * validations without improvement. */
    nu_validate_fn validate;
    void *validate_ctx;
    uint64_t val_every;      /* [0] */
    uint64_t patience;       /* [3] */
    void (*progress)(const nu_training_progress *p, void *ctx); /* may be NULL */
    void *progress_ctx;
    /* When set (by a signal handler, say), the run checkpoints after its
     * current step and returns NU_OK with `stopped` [NULL]. */
    volatile sig_atomic_t *stop;
    /* Data-parallel training over several processes [NULL: this process
     * alone]: each takes its slice of every batch; the user and feature
     * tables and their Adam moments are split by rows over the processes
     * (docs/mpi.md).  Every process calls nu_train with the same options;
     * only process 0 validates, reports progress and writes out_dir. */
    const nu_collectives *collectives;
} nu_training_options;

NU_API void nu_training_options_init_sized(nu_training_options *o, size_t size);
#define nu_training_options_init(o) nu_training_options_init_sized((o), sizeof *(o))

/* How a run ended.  Set size = sizeof(nu_training_result) before the call. */
typedef struct nu_training_result {
    size_t size;
    uint64_t steps, epochs;
    int stopped;             /* 1: the stop flag or max_steps ended the run early */
    int early_stopped;       /* 1: validation stopped improving (patience) */
    double first_loss, last_loss; /* total loss of the first and the last step */
    double seconds;
    /* With validation: the kept model's score (else < 0), step and prior
     * weights. */
    double best_score;
    uint64_t best_step;
    double best_prior_weight, best_feature_prior_weight;
    /* With collectives: this process's traffic over the run's steps, the
     * bytes it sent to the others (row requests and rows; row gradients;
     * the dense gradient; counts and agreement) and its time in the
     * collectives and outside them (else zero). */
    uint64_t fetch_bytes, push_bytes, dense_bytes, small_bytes;
    double comm_seconds, compute_seconds;
} nu_training_result;

/* Trains the generator on a data directory (docs/data-format.md) into
 * out_dir: the model and its checkpoint, written atomically every
 * checkpoint_every steps, at the end and when stopped.  An existing out_dir
 * is replaced only if nextuser wrote it or it is empty (checked before
 * training starts).  A run is bit-for-bit reproducible for a seed and a
 * thread count, a resumed one included.  o may be NULL (the defaults);
 * result may be NULL. */
NU_API nu_status nu_train(const char *data_dir, const char *out_dir,
                          const nu_training_options *o, nu_training_result *result);

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
