/* safetensors reader (mmap, fully validated) and writer (atomic). */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "error.h"
#include "util/json_strict.h"

#define MAX_HEADER_BYTES ((uint64_t)NU_ST_MAX_HEADER_BYTES)

static const char *const dtype_names[4] = {"F32", "BF16", "I8", "I32"};

size_t nu_st_dtype_size(nu_st_dtype t)
{
    static const size_t sizes[4] = {4, 2, 1, 4};
    return sizes[t];
}

static uint64_t read_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

void nu_st_close(nu_st_file *f)
{
    for (size_t i = 0; i < f->count; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    free(f->index);
    for (size_t i = 0; i < f->meta_count; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    if (f->map)
        munmap(f->map, f->map_size);
    memset(f, 0, sizeof *f);
}

/* A JSON number that is a non-negative integer exactly representable. */
static int json_size(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != (double)(uint64_t)v->valuedouble)
        return 0;
    *out = (uint64_t)v->valuedouble;
    return 1;
}

static nu_status parse_metadata(const char *path, const cJSON *meta, nu_st_file *f)
{
    if (!cJSON_IsObject(meta))
        return nu_error(NU_ERR_FORMAT, "%s: __metadata__ is not an object", path);
    /* The arrays are sized for this object alone: a second one must not
     * append to them (the header's key check refuses it first anyway). */
    if (f->meta_keys || f->meta_values)
        return nu_error(NU_ERR_FORMAT, "%s: __metadata__ appears twice", path);
    size_t n = (size_t)cJSON_GetArraySize(meta);
    f->meta_keys = calloc(n ? n : 1, sizeof(char *));
    f->meta_values = calloc(n ? n : 1, sizeof(char *));
    if (!f->meta_keys || !f->meta_values)
        return nu_error(NU_ERR_NOMEM, "%s: out of memory", path);
    /* Bounded by the arrays' size, whatever the list holds. */
    for (const cJSON *kv = meta->child; kv && f->meta_count < n; kv = kv->next) {
        if (!cJSON_IsString(kv))
            return nu_error(NU_ERR_FORMAT, "%s: __metadata__ value of \"%s\" is not a string",
                            path, kv->string);
        f->meta_keys[f->meta_count] = strdup(kv->string);
        f->meta_values[f->meta_count] = strdup(kv->valuestring);
        f->meta_count++;
        if (!f->meta_keys[f->meta_count - 1] || !f->meta_values[f->meta_count - 1])
            return nu_error(NU_ERR_NOMEM, "%s: out of memory", path);
    }
    return NU_OK;
}

static nu_status parse_tensor(const char *path, const cJSON *entry, const unsigned char *data,
                              uint64_t data_size, nu_st_tensor *t, uint64_t range[2])
{
    const char *name = entry->string;
    if (!cJSON_IsObject(entry))
        return nu_error(NU_ERR_FORMAT, "%s: tensor \"%s\": entry is not an object", path, name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!cJSON_IsString(dtype))
        return nu_error(NU_ERR_FORMAT, "%s: tensor \"%s\": missing dtype", path, name);
    int known = 0;
    for (int k = 0; k < 4; k++)
        if (strcmp(dtype->valuestring, dtype_names[k]) == 0) {
            t->dtype = (nu_st_dtype)k;
            known = 1;
        }
    if (!known)
        return nu_error(NU_ERR_FORMAT,
                        "%s: tensor \"%s\": dtype %s is not supported (F32, BF16, I8, I32)", path,
                        name, dtype->valuestring);
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > NU_ST_MAX_DIMS)
        return nu_error(NU_ERR_FORMAT, "%s: tensor \"%s\": shape is not an array of at most %d sizes",
                        path, name, NU_ST_MAX_DIMS);
    uint64_t nelem = 1;
    t->ndim = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, shape)
    {
        uint64_t v;
        if (!json_size(dim, &v))
            return nu_error(NU_ERR_FORMAT, "%s: tensor \"%s\": bad shape entry", path, name);
        if (v && nelem > UINT64_MAX / 8 / v)
            return nu_error(NU_ERR_FORMAT, "%s: tensor \"%s\": shape overflows", path, name);
        nelem *= v;
        t->shape[t->ndim++] = (size_t)v;
    }
    uint64_t b, e;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_size(cJSON_GetArrayItem(offs, 0), &b) || !json_size(cJSON_GetArrayItem(offs, 1), &e))
        return nu_error(NU_ERR_FORMAT, "%s: tensor \"%s\": data_offsets is not [begin, end]",
                        path, name);
    if (b > e || e > data_size)
        return nu_error(NU_ERR_FORMAT,
                        "%s: tensor \"%s\": data_offsets [%llu, %llu] outside the data section "
                        "(%llu bytes; truncated file?)",
                        path, name, (unsigned long long)b, (unsigned long long)e,
                        (unsigned long long)data_size);
    size_t es = nu_st_dtype_size(t->dtype);
    if (e - b != nelem * es)
        return nu_error(NU_ERR_FORMAT,
                        "%s: tensor \"%s\": %llu bytes of data for %llu %s values of its shape",
                        path, name, (unsigned long long)(e - b), (unsigned long long)nelem,
                        dtype_names[t->dtype]);
    t->nelem = (size_t)nelem;
    t->raw = data ? data + b : NULL;
    t->offset = (size_t)b;
    /* A float pointer only where the data is aligned for floats: a file
     * whose header length is not a multiple of 4 leaves tensors unaligned. */
    t->data = t->raw && t->dtype == NU_ST_F32 && ((uintptr_t)t->raw % sizeof(float)) == 0
                  ? (const float *)t->raw
                  : NULL;
    t->name = strdup(name);
    if (!t->name)
        return nu_error(NU_ERR_NOMEM, "%s: out of memory", path);
    range[0] = b;
    range[1] = e;
    return NU_OK;
}

static int cmp_range(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* An open-addressing index of the tensors by name: nu_st_find in O(1). */
static nu_status build_index(const char *path, nu_st_file *f)
{
    size_t n = 16;
    while (n < 2 * f->count + 2)
        n *= 2;
    f->index = malloc(n * sizeof *f->index);
    if (!f->index)
        return nu_error(NU_ERR_NOMEM, "%s: out of memory", path);
    f->index_size = n;
    for (size_t i = 0; i < n; i++)
        f->index[i] = SIZE_MAX;
    for (size_t i = 0; i < f->count; i++) {
        size_t h = hash_name(f->tensors[i].name) & (n - 1);
        while (f->index[h] != SIZE_MAX)
            h = (h + 1) & (n - 1);
        f->index[h] = i;
    }
    return NU_OK;
}

static nu_status parse_header(const char *path, const char *json, size_t json_len,
                              const unsigned char *data, uint64_t data_size, nu_st_file *f)
{
    /* Strict, with the values bounded before cJSON builds its tree (a few
     * per tensor); also what keeps tensor names and __metadata__ unique. */
    cJSON *root = NULL;
    nu_status s = nu_json_parse_strict(json, json_len, path, NU_ST_MAX_HEADER_VALUES, &root, NULL);
    if (s != NU_OK)
        return s;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return nu_error(NU_ERR_FORMAT, "%s: header is not a JSON object", path);
    }
    size_t n = (size_t)cJSON_GetArraySize(root);
    if (n > NU_ST_MAX_TENSORS + 1) {
        cJSON_Delete(root);
        return nu_error(NU_ERR_FORMAT, "%s: %zu tensors in the header (at most %d)", path, n,
                        NU_ST_MAX_TENSORS);
    }
    f->tensors = calloc(n ? n : 1, sizeof(nu_st_tensor));
    uint64_t *ranges = calloc(n ? n : 1, 3 * sizeof(uint64_t));
    if (!f->tensors || !ranges)
        s = nu_error(NU_ERR_NOMEM, "%s: out of memory", path);
    const cJSON *entry;
    cJSON_ArrayForEach(entry, root)
    {
        if (s != NU_OK)
            break;
        if (strcmp(entry->string, "__metadata__") == 0) {
            s = parse_metadata(path, entry, f);
            continue;
        }
        s = parse_tensor(path, entry, data, data_size, &f->tensors[f->count],
                         &ranges[3 * f->count]);
        if (s == NU_OK) {
            ranges[3 * f->count + 2] = f->count;
            f->count++;
        }
    }
    if (s == NU_OK) {
        /* Sorted by start, the tensors must tile the data section exactly:
         * no overlap, no gap, no trailing bytes (as the format requires). */
        qsort(ranges, f->count, 3 * sizeof(uint64_t), cmp_range);
        uint64_t end = 0;
        for (size_t i = 0; i < f->count && s == NU_OK; i++) {
            uint64_t b = ranges[3 * i], e = ranges[3 * i + 1];
            if (b < end)
                s = nu_error(NU_ERR_FORMAT, "%s: tensors \"%s\" and \"%s\" overlap", path,
                             f->tensors[ranges[3 * (i - 1) + 2]].name,
                             f->tensors[ranges[3 * i + 2]].name);
            else if (b > end)
                s = nu_error(NU_ERR_FORMAT, "%s: %llu unused bytes before tensor \"%s\"", path,
                             (unsigned long long)(b - end), f->tensors[ranges[3 * i + 2]].name);
            end = e;
        }
        if (s == NU_OK && end != data_size)
            s = nu_error(NU_ERR_FORMAT, "%s: %llu bytes after the last tensor (corrupt file?)",
                         path, (unsigned long long)(data_size - end));
    }
    if (s == NU_OK && f->count > NU_ST_MAX_TENSORS)
        s = nu_error(NU_ERR_FORMAT, "%s: %zu tensors (at most %d)", path, f->count,
                     NU_ST_MAX_TENSORS);
    if (s == NU_OK)
        s = build_index(path, f);
    free(ranges);
    cJSON_Delete(root);
    return s;
}

nu_status nu_st_open(const char *path, nu_st_file *f)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return nu_error(NU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return nu_error(NU_ERR_IO, "%s: not a regular file", path);
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size < 8) {
        close(fd);
        return nu_error(NU_ERR_FORMAT, "%s: %llu bytes, too short for a safetensors header",
                        path, (unsigned long long)size);
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return nu_error(NU_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    f->map = map;
    f->map_size = (size_t)size;
    const unsigned char *bytes = map;
    uint64_t hlen = read_le64(bytes);
    if (hlen == 0 || hlen > MAX_HEADER_BYTES || hlen > size - 8) {
        nu_st_close(f);
        return nu_error(NU_ERR_FORMAT,
                        "%s: header length %llu does not fit the file (%llu bytes; truncated or "
                        "not a safetensors file; headers of at most %d bytes are read)",
                        path, (unsigned long long)hlen, (unsigned long long)size,
                        NU_ST_MAX_HEADER_BYTES);
    }
    f->data_start = (size_t)(8 + hlen);
    f->file_size = (size_t)size;
    nu_status s = parse_header(path, (const char *)bytes + 8, (size_t)hlen, bytes + 8 + hlen,
                               size - 8 - hlen, f);
    if (s != NU_OK)
        nu_st_close(f);
    return s;
}

nu_status nu_st_open_header(const char *path, nu_st_file *f)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return nu_error(NU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    unsigned char len8[8];
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return nu_error(NU_ERR_IO, "%s: not a regular file", path);
    }
    uint64_t size = (uint64_t)st.st_size, hlen = 0;
    if (size >= 8 && pread(fd, len8, 8, 0) == 8)
        hlen = read_le64(len8);
    if (hlen == 0 || hlen > MAX_HEADER_BYTES || hlen > size - 8) {
        close(fd);
        return nu_error(NU_ERR_FORMAT,
                        "%s: header length %llu does not fit the file (%llu bytes; truncated or "
                        "not a safetensors file)",
                        path, (unsigned long long)hlen, (unsigned long long)size);
    }
    char *json = malloc((size_t)hlen);
    ssize_t got = json ? pread(fd, json, (size_t)hlen, 8) : -1;
    close(fd);
    if (got != (ssize_t)hlen) {
        free(json);
        return json ? nu_error(NU_ERR_IO, "%s: cannot read the header", path)
                    : nu_error(NU_ERR_NOMEM, "%s: out of memory", path);
    }
    f->data_start = (size_t)(8 + hlen);
    f->file_size = (size_t)size;
    nu_status s = parse_header(path, json, (size_t)hlen, NULL, size - 8 - hlen, f);
    free(json);
    if (s != NU_OK)
        nu_st_close(f);
    return s;
}

const nu_st_tensor *nu_st_find(const nu_st_file *f, const char *name)
{
    if (!f->index_size)
        return NULL;
    size_t mask = f->index_size - 1, h = hash_name(name) & mask;
    for (; f->index[h] != SIZE_MAX; h = (h + 1) & mask)
        if (strcmp(f->tensors[f->index[h]].name, name) == 0)
            return &f->tensors[f->index[h]];
    return NULL;
}

const char *nu_st_meta(const nu_st_file *f, const char *key)
{
    for (size_t i = 0; i < f->meta_count; i++)
        if (strcmp(f->meta_keys[i], key) == 0)
            return f->meta_values[i];
    return NULL;
}

static int cmp_out_tensor(const void *a, const void *b)
{
    const nu_st_out_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static size_t tensor_bytes(const nu_st_out_tensor *t)
{
    size_t n = t->data ? 4 : nu_st_dtype_size(t->dtype);
    for (int d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}

nu_status nu_st_write(const char *path, const nu_st_out_tensor *tensors, size_t count,
                      const char *const *meta_keys, const char *const *meta_values,
                      size_t meta_count)
{
    const nu_st_out_tensor **order = malloc((count ? count : 1) * sizeof *order);
    cJSON *root = cJSON_CreateObject();
    if (!order || !root) {
        free(order);
        cJSON_Delete(root);
        return nu_error(NU_ERR_NOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; i < count; i++)
        order[i] = &tensors[i];
    qsort(order, count, sizeof *order, cmp_out_tensor);
    if (meta_count) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        for (size_t i = 0; i < meta_count; i++)
            cJSON_AddStringToObject(meta, meta_keys[i], meta_values[i]);
    }
    size_t offset = 0;
    for (size_t i = 0; i < count; i++) {
        cJSON *e = cJSON_AddObjectToObject(root, order[i]->name);
        cJSON_AddStringToObject(e, "dtype", order[i]->data ? "F32" : dtype_names[order[i]->dtype]);
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < order[i]->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)order[i]->shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        size_t nb = tensor_bytes(order[i]);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(offset + nb)));
        offset += nb;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) {
        free(order);
        return nu_error(NU_ERR_NOMEM, "%s: out of memory", path);
    }
    /* Pad the header with spaces to a multiple of 8 so the data is aligned. */
    size_t jlen = strlen(json), padded = (jlen + 7) / 8 * 8;
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    nu_atomic_file af;
    nu_status s = nu_atomic_open(path, &af);
    if (s == NU_OK) {
        int ok = fwrite(lenbuf, 1, 8, af.fp) == 8 && fwrite(json, 1, jlen, af.fp) == jlen;
        for (size_t i = jlen; ok && i < padded; i++)
            ok = fputc(' ', af.fp) != EOF;
        for (size_t i = 0; ok && i < count; i++) {
            size_t nb = tensor_bytes(order[i]);
            const void *src = order[i]->data ? (const void *)order[i]->data : order[i]->raw;
            ok = nb == 0 || fwrite(src, 1, nb, af.fp) == nb;
        }
        if (!ok) {
            nu_atomic_abort(&af);
            s = nu_error(NU_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        } else {
            s = nu_atomic_commit(&af);
        }
    }
    free(json);
    free(order);
    return s;
}

nu_status nu_write_file_atomic(const char *path, const void *data, size_t size)
{
    nu_atomic_file af;
    nu_status s = nu_atomic_open(path, &af);
    if (s != NU_OK)
        return s;
    if (size && fwrite(data, 1, size, af.fp) != size) {
        nu_atomic_abort(&af);
        return nu_error(NU_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return nu_atomic_commit(&af);
}
