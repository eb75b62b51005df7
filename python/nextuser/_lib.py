"""The C API as cffi sees it (ABI mode: nothing is compiled) and the lookup
of libnextuser.so.0.

The cdef below is written by hand from include/nextuser/nextuser.h; in ABI
mode cffi lays out nu_engine_options itself, so the struct must match the
header field for field."""
import ctypes.util
import os
import sysconfig

from cffi import FFI

ffi = FFI()
ffi.cdef(
    """
typedef enum nu_status {
    NU_OK = 0,
    NU_ERR_INVALID_ARG = 1,
    NU_ERR_UNSUPPORTED = 2,
    NU_ERR_IO = 3,
    NU_ERR_FORMAT = 4,
    NU_ERR_NOMEM = 5,
    NU_ERR_INTERNAL = 6
} nu_status;

const char *nu_status_str(nu_status s);
const char *nu_last_error(void);
const char *nu_version(void);
nu_status nu_init(void);
const char *nu_isa_active(void);
size_t nu_isas_available(const char **names, size_t cap);
size_t nu_cpu_feature_names(const char **names, size_t cap);
const char *nu_sleef_version(void);

typedef struct nu_model nu_model;
typedef struct nu_table nu_table;
typedef struct nu_batch nu_batch;
typedef struct nu_engine nu_engine;
typedef struct nu_session nu_session;

nu_status nu_model_load(const char *dir, nu_model **out);
void nu_model_free(nu_model *m);
size_t nu_model_dim(const nu_model *m);
size_t nu_model_num_users(const nu_model *m);
const char *nu_model_user_id(const nu_model *m, uint32_t row);
size_t nu_model_query_dim(const nu_model *m);
size_t nu_model_max_users(const nu_model *m);

typedef enum nu_dtype { NU_DTYPE_FP32 = 0, NU_DTYPE_BF16 = 1, NU_DTYPE_INT8 = 2 } nu_dtype;

nu_status nu_table_open(const nu_model *m, const char *model_dir, nu_dtype dtype,
                        nu_table **out);
void nu_table_free(nu_table *t);

nu_status nu_batch_create(const nu_model *m, nu_batch **out);
void nu_batch_free(nu_batch *b);
void nu_batch_clear(nu_batch *b);
size_t nu_batch_count(const nu_batch *b);
const char *nu_batch_item_id(const nu_batch *b, size_t i);
nu_status nu_batch_add_json(nu_batch *b, const char *line, size_t len);
nu_status nu_batch_add(nu_batch *b, const char *id, const char *const *users,
                       size_t n_users, const char *const *fields,
                       const char *const *values, size_t n_values);
void nu_batch_input_counts(const nu_batch *b, size_t *unknown_users,
                           size_t *unknown_values, size_t *truncated_items);

typedef struct nu_engine_options {
    size_t size;
    int threads;
    size_t max_batch;
    size_t k;
    nu_dtype dtype;
    size_t pool;
    int pin;
    nu_dtype gen_dtype;
} nu_engine_options;

void nu_engine_options_init_sized(nu_engine_options *o, size_t size);
nu_status nu_engine_create(const nu_model *m, const nu_table *t,
                           const nu_engine_options *o, nu_engine **out);
void nu_engine_free(nu_engine *e);
nu_dtype nu_engine_gen_dtype(const nu_engine *e);
nu_dtype nu_gen_dtype_effective(nu_dtype want);
nu_status nu_session_create(const nu_engine *e, nu_session **out);
void nu_session_free(nu_session *s);

nu_status nu_session_recommend(nu_session *s, const nu_batch *b, size_t first, size_t n,
                               uint32_t *rows, float *scores);
nu_status nu_session_embed(nu_session *s, const nu_batch *b, size_t first, size_t n,
                           float *out);
nu_status nu_session_query(nu_session *s, const nu_batch *b, size_t first, size_t n,
                           float *out);
nu_status nu_session_search(nu_session *s, const float *queries, size_t n, size_t ldq,
                            uint32_t *rows, float *scores);
nu_status nu_session_set_threads(nu_session *s, int threads);
"""
)

LIBNAME = "libnextuser.so.0"


def _candidates():
    """The paths next to the installed package where the library may be."""
    here = os.path.dirname(os.path.abspath(__file__))
    # Installed as PREFIX/lib/python3*/dist-packages/nextuser: the library
    # is in PREFIX/lib, or PREFIX/lib/<multiarch> (GNUInstallDirs' libdir
    # for a /usr install on Debian), or PREFIX/lib64 elsewhere.
    libdir = os.path.normpath(os.path.join(here, "..", "..", ".."))
    multiarch = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
    return [os.path.join(libdir, LIBNAME), os.path.join(libdir, multiarch, LIBNAME),
            os.path.join(libdir + "64", LIBNAME)]


def load():
    """Opens the library: NEXTUSER_LIBRARY, else next to the installed
    package, else the linker's search (ctypes.util.find_library).
    Returns (the library, the path or name it was opened by)."""
    tried = []
    env = os.environ.get("NEXTUSER_LIBRARY")
    if env:
        # An explicit choice: never fall back to some other copy silently.
        try:
            return ffi.dlopen(env), env
        except OSError as e:
            raise ImportError("nextuser: cannot load NEXTUSER_LIBRARY=%s: %s" % (env, e)) from None
    tried.append("NEXTUSER_LIBRARY (not set)")
    for path in _candidates():
        if os.path.exists(path):
            try:
                return ffi.dlopen(path), path
            except OSError as e:
                tried.append("%s (%s)" % (path, e))
        else:
            tried.append("%s (not found)" % path)
    name = ctypes.util.find_library("nextuser")
    if name and os.path.basename(name) != LIBNAME:
        # Another soname is another ABI than this cdef's.
        tried.append('find_library("nextuser") -> %s (not %s)' % (name, LIBNAME))
    elif name:
        try:
            return ffi.dlopen(name), name
        except OSError as e:
            tried.append('find_library("nextuser") -> %s (%s)' % (name, e))
    else:
        tried.append('ctypes.util.find_library("nextuser") (nothing)')
    raise ImportError("nextuser: cannot find %s; tried: %s. Set NEXTUSER_LIBRARY to its path."
                      % (LIBNAME, "; ".join(tried)))


lib, path = load()
