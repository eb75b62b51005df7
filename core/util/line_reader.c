#include "util/line_reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_BYTES (64 * 1024)

void nu_line_reader_init(nu_line_reader *r, FILE *f, size_t max)
{
    memset(r, 0, sizeof *r);
    r->f = f;
    r->max = max;
}

void nu_line_reader_free(nu_line_reader *r)
{
    free(r->line);
    free(r->block);
    r->line = r->block = NULL;
    r->cap = 0;
}

/* Room for `need` bytes of line plus its NUL: at most max + 1 bytes (or the
 * first 256). */
static int reserve(nu_line_reader *r, size_t need)
{
    if (need + 1 <= r->cap)
        return 1;
    size_t cap = r->cap ? r->cap : 256;
    while (cap < need + 1)
        cap = cap > (r->max + 1) / 2 ? r->max + 1 : 2 * cap;
    char *p = realloc(r->line, cap);
    if (!p)
        return 0;
    r->line = p;
    r->cap = cap;
    return 1;
}

/* Makes bytes available in the block: 1, or 0 at the end of the file, -1
 * on a read error. */
static int fill(nu_line_reader *r)
{
    if (r->block_pos < r->block_len)
        return 1;
    r->block_pos = 0;
    r->block_len = fread(r->block, 1, BLOCK_BYTES, r->f);
    if (r->block_len)
        return 1;
    if (ferror(r->f)) {
        errno = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

int nu_line_reader_next(nu_line_reader *r)
{
    if (!r->block && !(r->block = malloc(BLOCK_BYTES)))
        return -1;
    int got = 0;
    /* The rest of the last line, when it was too long: read, never stored. */
    while (r->skip_rest && (got = fill(r)) == 1) {
        const char *start = r->block + r->block_pos;
        const char *nl = memchr(start, '\n', r->block_len - r->block_pos);
        r->block_pos = nl ? (size_t)(nl + 1 - r->block) : r->block_len;
        r->skip_rest = !nl;
    }
    if (r->skip_rest)
        return got; /* the file ended inside that line, or failed */
    size_t len = 0;
    int any = 0, too_long = 0;
    while (!too_long) {
        if ((got = fill(r)) < 0)
            return -1;
        if (got == 0) {
            if (!any)
                return 0;
            break; /* the last line, without a '\n' */
        }
        any = 1;
        const char *start = r->block + r->block_pos;
        size_t avail = r->block_len - r->block_pos;
        const char *nl = memchr(start, '\n', avail);
        size_t take = nl ? (size_t)(nl - start) : avail;
        size_t keep = take < r->max - len ? take : r->max - len;
        if (keep < take) {
            /* Over the bound: report it now, skip the rest on the next call. */
            too_long = r->skip_rest = 1;
            r->block_pos += keep;
        } else {
            r->block_pos += take + (nl != NULL);
        }
        if (keep) {
            if (!reserve(r, len + keep)) {
                errno = ENOMEM;
                return -1;
            }
            memcpy(r->line + len, start, keep);
            len += keep;
        }
        if (nl && !too_long)
            break;
    }
    if (!reserve(r, len)) {
        errno = ENOMEM;
        return -1;
    }
    r->line[len] = 0;
    r->len = len;
    r->too_long = too_long;
    r->lineno++;
    return 1;
}
