#include "idmap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "io/atomic_file.h"
#include "util/json_strict.h"
#include "util/line_reader.h"
#include "util/path.h"

void nu_idmap_init(nu_idmap *m) { memset(m, 0, sizeof *m); }

void nu_idmap_free(nu_idmap *m)
{
    for (size_t i = 0; i < m->count; i++)
        free(m->names[i]);
    free(m->names);
    free(m->lens);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int grow_slots(nu_idmap *m)
{
    size_t n = m->nslots ? 2 * m->nslots : 64;
    uint32_t *slots = malloc(n * sizeof *slots);
    if (!slots)
        return 0;
    for (size_t i = 0; i < n; i++)
        slots[i] = NU_ID_NONE;
    for (size_t i = 0; i < m->count; i++) {
        size_t h = hash_bytes(m->names[i], m->lens[i]) & (n - 1);
        while (slots[h] != NU_ID_NONE)
            h = (h + 1) & (n - 1);
        slots[h] = (uint32_t)i;
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
    return 1;
}

uint32_t nu_idmap_find(const nu_idmap *m, const char *name, size_t len)
{
    if (!m->nslots)
        return NU_ID_NONE;
    size_t h = hash_bytes(name, len) & (m->nslots - 1);
    while (m->slots[h] != NU_ID_NONE) {
        uint32_t i = m->slots[h];
        /* Lengths first: a stored id is never read past its end. */
        if (m->lens[i] == len && memcmp(m->names[i], name, len) == 0)
            return i;
        h = (h + 1) & (m->nslots - 1);
    }
    return NU_ID_NONE;
}

nu_status nu_idmap_add(nu_idmap *m, const char *name, size_t len, uint32_t *index,
                       int allow_existing)
{
    if (memchr(name, 0, len))
        return nu_error(NU_ERR_FORMAT, "id \"%.*s...\" contains a NUL byte",
                        (int)strnlen(name, len), name);
    if (len > NU_ID_MAX_BYTES)
        return nu_error(NU_ERR_FORMAT, "id of %zu bytes (at most %d)", len, NU_ID_MAX_BYTES);
    uint32_t have = nu_idmap_find(m, name, len);
    if (have != NU_ID_NONE) {
        if (index)
            *index = have;
        return allow_existing ? NU_OK
                              : nu_error(NU_ERR_FORMAT, "id \"%.*s\" appears twice", (int)len, name);
    }
    if (m->count + 1 >= NU_ID_NONE)
        return nu_error(NU_ERR_INVALID_ARG, "more than 2^32 - 2 ids");
    if ((m->count + 1) * 2 > m->nslots && !grow_slots(m))
        return nu_error(NU_ERR_NOMEM, "out of memory adding ids");
    if (m->count == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        char **names = realloc(m->names, cap * sizeof *names);
        if (!names)
            return nu_error(NU_ERR_NOMEM, "out of memory adding ids");
        m->names = names;
        uint32_t *lens = realloc(m->lens, cap * sizeof *lens);
        if (!lens)
            return nu_error(NU_ERR_NOMEM, "out of memory adding ids");
        m->lens = lens;
        m->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return nu_error(NU_ERR_NOMEM, "out of memory adding ids");
    memcpy(copy, name, len);
    copy[len] = 0;
    uint32_t idx = (uint32_t)m->count;
    m->lens[m->count] = (uint32_t)len;
    m->names[m->count++] = copy;
    size_t h = hash_bytes(name, len) & (m->nslots - 1);
    while (m->slots[h] != NU_ID_NONE)
        h = (h + 1) & (m->nslots - 1);
    m->slots[h] = idx;
    if (index)
        *index = idx;
    return NU_OK;
}

nu_status nu_idmap_load(nu_idmap *m, const char *path)
{
    nu_idmap_init(m);
    FILE *f = fopen(path, "r");
    if (!f)
        return nu_error(NU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    nu_line_reader lr;
    nu_line_reader_init(&lr, f, NU_ID_LINE_MAX);
    nu_status s = NU_OK;
    int got = 0;
    while (s == NU_OK && (got = nu_line_reader_next(&lr)) == 1) {
        size_t lineno = lr.lineno, len = lr.len;
        const char *line = lr.line;
        while (len > 0 && line[len - 1] == '\r')
            len--;
        size_t bad = 0;
        if (lr.too_long)
            s = nu_error(NU_ERR_FORMAT, "%s:%zu: the line is longer than %zu bytes (the limit of "
                         "an id or a value)", path, lineno, lr.max);
        else if (len == 0 || memchr(line, '\t', len))
            s = nu_error(NU_ERR_FORMAT, "%s:%zu: %s", path, lineno,
                         len == 0 ? "empty id" : "id contains a tab");
        else if (memchr(line, 0, len))
            s = nu_error(NU_ERR_FORMAT, "%s:%zu: id contains a NUL byte", path, lineno);
        else if (nu_utf8_check(line, len, &bad) != NU_OK)
            s = nu_error(NU_ERR_FORMAT, "%s:%zu: id is not valid UTF-8 (byte %zu)", path, lineno,
                         bad + 1);
        else if ((s = nu_idmap_add(m, line, len, NULL, 0)) != NU_OK)
            s = nu_error_context(s, "%s:%zu: ", path, lineno);
    }
    if (s == NU_OK && got < 0)
        s = nu_error(NU_ERR_IO, "%s: read failed: %s", path, strerror(errno));
    nu_line_reader_free(&lr);
    fclose(f);
    if (s != NU_OK)
        nu_idmap_free(m);
    return s;
}

nu_status nu_idmap_save(const nu_idmap *m, const char *path)
{
    nu_atomic_file af;
    nu_status s = nu_atomic_open(path, &af);
    if (s != NU_OK)
        return s;
    for (size_t i = 0; i < m->count; i++)
        if (fputs(m->names[i], af.fp) == EOF || fputc('\n', af.fp) == EOF) {
            nu_atomic_abort(&af);
            return nu_error(NU_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        }
    return nu_atomic_commit(&af);
}

nu_status nu_idmap_load_count(nu_idmap *m, const char *dir, const char *file, size_t want,
                              int unk_first, const char *who)
{
    char path[NU_PATH_MAX];
    nu_status s = nu_path_join(path, sizeof path, dir, file);
    if (s == NU_OK)
        s = nu_idmap_load(m, path);
    if (s != NU_OK)
        return s;
    if (m->count != want)
        return nu_error(NU_ERR_FORMAT, "%s: %zu lines, %s needs %zu", path, m->count, who, want);
    if (unk_first && strcmp(m->names[0], "<unk>") != 0)
        return nu_error(NU_ERR_FORMAT, "%s:1: must be <unk>", path);
    return NU_OK;
}
