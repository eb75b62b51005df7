/* nu_prepare's output: users.txt, vocab_<field>.txt, items.jsonl and
 * data.json in a directory written atomically (docs/data-format.md). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "io/atomic_dir.h"
#include "io/atomic_file.h"
#include "prepare_state.h"
#include "util/path.h"
#include "util/rng.h"

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_inter(const void *a, const void *b)
{
    const inter *x = a, *y = b;
    if (x->item != y->item)
        return x->item < y->item ? -1 : 1;
    if (x->neg != y->neg)
        return x->neg < y->neg ? -1 : 1;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->user < y->user ? -1 : x->user > y->user;
}

static int kept_value(const prep_field *fd, const char *v)
{
    uint32_t k = nu_idmap_find(&fd->values, v, strlen(v));
    return k != NU_ID_NONE && fd->value_items[k] >= fd->min_items;
}

/* Writes <unk> then the kept values sorted; returns the line count or 0. */
static size_t write_vocab(FILE *f, const prep_field *fd)
{
    const nu_idmap *m = &fd->values;
    char **v = malloc((m->count + 1) * sizeof *v);
    size_t n = 0;
    if (!v)
        return 0;
    for (size_t i = 0; i < m->count; i++)
        if (fd->value_items[i] >= fd->min_items)
            v[n++] = m->names[i];
    qsort(v, n, sizeof *v, cmp_str);
    fputs("<unk>\n", f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s\n", v[i]);
    free(v);
    return n + 1;
}

/* multi: the item's kept values sorted; categorical: its value or <unk>. */
static void write_feature(FILE *f, const prep_field *fd, size_t item)
{
    strlist *l = &fd->item_values[item];
    if (!fd->multi) {
        json_str(f, l->n && kept_value(fd, l->v[0]) ? l->v[0] : "<unk>");
        return;
    }
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, cmp_str);
    fputc('[', f);
    int first = 1;
    for (size_t j = 0; j < l->n; j++)
        if (kept_value(fd, l->v[j])) {
            fputs(first ? "" : ", ", f);
            json_str(f, l->v[j]);
            first = 0;
        }
    fputc(']', f);
}

static void write_pairs(FILE *f, const prep *g, const char *key, const inter *r, size_t n)
{
    fprintf(f, ", \"%s\": [", key);
    for (size_t k = 0; k < n; k++) {
        fputs(k ? ", [" : "[", f);
        json_str(f, g->users.names[r[k].user]);
        fprintf(f, ", %lld]", (long long)r[k].t);
    }
    fputc(']', f);
}

static const char *const split_names[3] = {"train", "val", "test"};

static void write_items(FILE *f, prep *g, const uint8_t *split)
{
    size_t k = 0;
    for (size_t i = 0; i < g->items.count; i++) {
        fputs("{\"id\": ", f);
        json_str(f, g->items.names[i]);
        fprintf(f, ", \"split\": \"%s\", \"features\": {", split_names[split[i]]);
        for (size_t fi = 0; fi < g->n_fields; fi++) {
            fputs(fi ? ", " : "", f);
            json_str(f, g->fields[fi].name);
            fputs(": ", f);
            write_feature(f, &g->fields[fi], i);
        }
        fputc('}', f);
        size_t a = k;
        while (k < g->n_rows && g->rows[k].item == i && !g->rows[k].neg)
            k++;
        size_t b = k;
        while (k < g->n_rows && g->rows[k].item == i)
            k++;
        write_pairs(f, g, "positives", g->rows + a, b - a);
        write_pairs(f, g, "negatives", g->rows + b, k - b);
        fputs("}\n", f);
        g->sum->positives += b - a;
        g->sum->negatives += k - b;
        g->sum->split_items[split[i]]++;
    }
}

static void write_data_json(FILE *f, const prep *g)
{
    static const char *const fmt_names[] = {"movielens", "ml100k", "csv"};
    const nu_prepare_summary *s = g->sum;
    fprintf(f,
            "{\"format\": \"nextuser-data-1\", \"num_users\": %zu, \"num_items\": %zu,\n"
            " \"prefix_fields\": [",
            g->users.count, g->items.count);
    for (size_t fi = 0; fi < s->n_fields; fi++) {
        fputs(fi ? ",\n  {\"name\": " : "{\"name\": ", f);
        json_str(f, s->fields[fi].name);
        fprintf(f, ", \"kind\": \"%s\", \"vocab\": %zu}",
                s->fields[fi].multi ? "multi" : "categorical", s->fields[fi].vocab);
    }
    fprintf(f, "],\n \"seed\": %llu,\n \"source\": ", (unsigned long long)g->p->seed);
    char src[512];
    snprintf(src, sizeof src, "prepare %s: pos >= %g, neg <= %g, split 0.7/0.1/0.2",
             fmt_names[g->p->format], g->p->pos_threshold, g->p->neg_threshold);
    json_str(f, src);
    fputs("}\n", f);
}

/* What one output file holds: users, a field's vocabulary, items or data.json. */
typedef enum { OUT_USERS, OUT_VOCAB, OUT_ITEMS, OUT_DATA } out_kind;

static nu_status write_one(prep *g, const char *dir, out_kind kind, size_t field,
                           const uint8_t *split)
{
    static const char *const names[] = {"users.txt", NULL, "items.jsonl", "data.json"};
    char name[NU_FIELD_NAME_MAX + 16], path[NU_PATH_MAX];
    if (kind == OUT_VOCAB)
        snprintf(name, sizeof name, "vocab_%s.txt", g->fields[field].name);
    else
        snprintf(name, sizeof name, "%s", names[kind]);
    nu_status s = nu_path_join(path, sizeof path, dir, name);
    nu_atomic_file af;
    if (s == NU_OK)
        s = nu_atomic_open(path, &af);
    if (s != NU_OK)
        return s;
    FILE *f = af.fp;
    nu_prepare_summary *sum = g->sum;
    switch (kind) {
    case OUT_USERS:
        for (size_t u = 0; u < g->users.count; u++)
            fprintf(f, "%s\n", g->users.names[u]);
        break;
    case OUT_VOCAB:
        if (!(sum->fields[field].vocab = write_vocab(f, &g->fields[field])))
            s = nu_error(NU_ERR_NOMEM, "out of memory");
        break;
    case OUT_ITEMS: write_items(f, g, split); break;
    case OUT_DATA: write_data_json(f, g); break;
    }
    return nu_atomic_finish(&af, s); /* the commit reports a write error the stream saw */
}

/* The seeded split: a permutation's first round(0.7 I) train, then val. */
static uint8_t *make_split(size_t I, uint64_t seed)
{
    uint8_t *split = malloc(I ? I : 1);
    uint32_t *perm = malloc((I ? I : 1) * sizeof *perm);
    if (!split || !perm) {
        free(split);
        free(perm);
        return NULL;
    }
    nu_random r = {seed ^ 0x5eed5b117ull};
    nu_random_next(&r);
    for (size_t i = 0; i < I; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = I; i > 1; i--) {
        size_t j = (size_t)nu_random_below(&r, i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    size_t n_train = (size_t)llround(0.7 * (double)I), n_val = (size_t)llround(0.1 * (double)I);
    if (n_train + n_val > I)
        n_val = I - n_train;
    for (size_t i = 0; i < I; i++)
        split[perm[i]] = i < n_train ? 0 : i < n_train + n_val ? 1 : 2;
    free(perm);
    return split;
}

static nu_status write_files(prep *g, const char *dir, const uint8_t *split)
{
    nu_prepare_summary *sum = g->sum;
    sum->n_fields = g->n_fields;
    for (size_t fi = 0; fi < g->n_fields; fi++) {
        snprintf(sum->fields[fi].name, sizeof sum->fields[fi].name, "%s", g->fields[fi].name);
        sum->fields[fi].multi = g->fields[fi].multi;
    }
    nu_status s = write_one(g, dir, OUT_USERS, 0, split);
    for (size_t fi = 0; s == NU_OK && fi < g->n_fields; fi++)
        s = write_one(g, dir, OUT_VOCAB, fi, split);
    if (s == NU_OK)
        s = write_one(g, dir, OUT_ITEMS, 0, split);
    if (s == NU_OK) /* last: it needs the vocabulary sizes */
        s = write_one(g, dir, OUT_DATA, 0, split);
    return s;
}

nu_status prep_write_dir(prep *g, const char *dir)
{
    qsort(g->rows, g->n_rows, sizeof *g->rows, cmp_inter);
    uint8_t *split = make_split(g->items.count, g->p->seed);
    if (!split)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    nu_atomic_dir ad;
    nu_status s = nu_atomic_dir_begin(dir, &ad);
    if (s == NU_OK) {
        s = write_files(g, ad.tmp, split);
        if (s == NU_OK)
            s = nu_atomic_dir_commit(&ad);
        else
            nu_atomic_dir_abort(&ad);
    }
    free(split);
    return s;
}
