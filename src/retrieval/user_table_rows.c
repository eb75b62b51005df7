/* A row range of a user table file: the header is read, then only the
 * pages that hold rows [first, first + count) of each tensor are mapped,
 * so a process holding one shard of a table never maps (nor reads) the
 * others' rows. */
#include "user_table.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "error.h"

/* Maps bytes [off, off + len) of fd (len > 0) read-only; *base and *blen
 * are what to unmap (the mapping starts at the page below off). */
static nu_status map_bytes(int fd, const char *path, size_t off, size_t len, void **base,
                           size_t *blen, const void **at)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), start = off / page * page;
    void *m = mmap(NULL, len + (off - start), PROT_READ, MAP_PRIVATE, fd, (off_t)start);
    if (m == MAP_FAILED)
        return nu_error(NU_ERR_IO, "%s: mmap of %zu bytes at %zu failed: %s", path, len, off,
                        strerror(errno));
    *base = m;
    *blen = len + (off - start);
    *at = (const char *)m + (off - start);
    return NU_OK;
}

nu_status nu_user_table_open_rows(const char *path, const char *model_dir, size_t first,
                                  size_t count, nu_user_table *out)
{
    memset(out, 0, sizeof *out);
    nu_status s = nu_st_open_header(path, &out->file);
    if (s != NU_OK)
        return s;
    out->mapped = 1; /* the header's allocations; file.map stays NULL */
    if ((s = nu_user_table_read_header(&out->file, path, model_dir, out)) != NU_OK) {
        nu_user_table_free(out);
        return s;
    }
    size_t total = out->rows, d = out->d;
    if (count == 0 || first > total || count > total - first) {
        nu_user_table_free(out);
        return nu_error(NU_ERR_INVALID_ARG, "%s: rows [%zu, %zu) are not a non-empty range of its %zu rows",
                        path, first, first + count, total);
    }
    const char *names[5] = {"f32", "bf16", "i8", "i8_scale", "i8_sum"};
    const nu_st_dtype dts[5] = {NU_ST_F32, NU_ST_BF16, NU_ST_I8, NU_ST_F32, NU_ST_I32};
    const size_t cols[5] = {d, d, d, 0, 0};
    const nu_st_tensor *ts[5];
    for (int i = 0; i < 5; i++)
        ts[i] = nu_user_table_tensor(&out->file, path, names[i], dts[i], total, cols[i], &s);
    if (s == NU_OK && ts[2] && (!ts[3] || !ts[4]))
        s = nu_error(NU_ERR_FORMAT, "%s: int8 table without i8_scale and i8_sum", path);
    int fd = s == NU_OK ? open(path, O_RDONLY) : -1;
    if (s == NU_OK && fd < 0)
        s = nu_error(NU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    const void *at[5] = {0};
    for (int i = 0; s == NU_OK && i < 5; i++) {
        if (!ts[i])
            continue;
        size_t row_bytes = (cols[i] ? cols[i] : 1) * nu_st_dtype_size(dts[i]);
        size_t off = out->file.data_start + ts[i]->offset + first * row_bytes;
        s = map_bytes(fd, path, off, count * row_bytes, &out->range_map[i], &out->range_len[i],
                      &at[i]);
        /* Scanned in place: the file offset fixes the alignment (pages keep it). */
        if (s == NU_OK && (uintptr_t)at[i] % nu_st_dtype_size(dts[i]))
            s = nu_error(NU_ERR_FORMAT, "%s: tensors not aligned for in-place use (rewrite it "
                         "with 'nextuser table')", path);
    }
    if (fd >= 0)
        close(fd);
    out->rows = count;
    out->first_row = first;
    out->total_rows = total;
    out->f32 = at[0];
    for (size_t i = 0; s == NU_OK && i < count * d; i++)
        if (!isfinite(out->f32[i]))
            s = nu_error(NU_ERR_FORMAT, "%s: row %zu holds a NaN or Inf", path, first + i / d);
    if (s != NU_OK) {
        nu_user_table_free(out);
        return s;
    }
    out->bf16 = at[1];
    out->i8 = at[2];
    out->i8_scale = at[3];
    out->i8_sum = at[4];
    return NU_OK;
}
