/* Test-only tool for tests/parity/test_grad_parity.py: loads a model
 * directory and an items file, reads R (float32 little-endian, one row of
 * d per decoder position in training output order), runs the training
 * forward + backward of L = sum(R * û) in batches, and writes the
 * accumulated gradient as a safetensors file with the parameter names.
 * The metadata key "touched_users" lists the user rows that received
 * gradient (comma-separated, sorted), "touched.<field>" likewise.
 *
 * usage: grad_dump MODEL_DIR ITEMS.jsonl R.f32 OUT.safetensors [BATCH] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/items_jsonl.h"
#include "io/safetensors.h"
#include "model/backward.h"
#include "model/forward.h"

static int fail(const char *what)
{
    fprintf(stderr, "grad_dump: %s: %s\n", what, nu_last_error());
    return 1;
}

/* Adds a batch's touched rows to a per-table flag array. */
static void flag_rows(const nu_row_list *l, unsigned char *flags)
{
    for (size_t i = 0; i < l->count; i++)
        flags[l->rows[i]] = 1;
}

/* "3,5,9": the flagged rows as text (malloc'd). */
static char *flags_text(const unsigned char *flags, size_t n)
{
    char *s = malloc(n * 12 + 1), *p = s;
    *p = 0;
    for (size_t r = 0; r < n; r++)
        if (flags[r])
            p += sprintf(p, "%s%zu", p == s ? "" : ",", r);
    return s;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: grad_dump MODEL_DIR ITEMS.jsonl R.f32 OUT.safetensors [BATCH]\n");
        return 2;
    }
    nu_model *m = NULL;
    if (nu_model_load(argv[1], &m) != NU_OK)
        return fail("model");
    const nu_model_config *c = &m->cfg;
    nu_items items;
    nu_items_init(&items, c);
    if (nu_items_read_jsonl(argv[2], m, &items) != NU_OK)
        return fail("items");
    size_t batch = argc > 5 ? (size_t)atol(argv[5]) : items.count;
    if (batch == 0)
        batch = 1;
    size_t rows = items.users_len + items.count, d = c->d;
    float *R = malloc((rows * d + 1) * sizeof(float)), *out = malloc((rows * d + 1) * sizeof(float));
    FILE *f = fopen(argv[3], "rb");
    if (!f || fread(R, sizeof(float), rows * d, f) != rows * d) {
        fprintf(stderr, "grad_dump: %s: need %zu floats\n", argv[3], rows * d);
        return 1;
    }
    fclose(f);

    float *grad = calloc(m->layout.total, sizeof(float));
    nu_model_view gv;
    nu_model_view_bind(c, &m->layout, grad, &gv);
    unsigned char *flags[NU_MAX_FIELDS + 1];
    flags[0] = calloc(c->num_users + 1, 1);
    for (size_t k = 0; k < c->n_prefix; k++)
        flags[k + 1] = calloc(c->prefix[k].size + 1, 1);
    nu_arena arena;
    if (!nu_arena_create(&arena, nu_forward_train_bytes(c, batch) + nu_backward_scratch_bytes(c, batch)))
        return fail("arena");
    static nu_train_cache tc;
    size_t r0 = 0;
    for (size_t first = 0; first < items.count; first += batch) {
        size_t count = items.count - first < batch ? items.count - first : batch;
        nu_touched_rows touched;
        arena.used = 0;
        if (nu_forward_train(c, &m->w, &items, first, count, &arena, out, &tc) != NU_OK)
            return fail("forward");
        if (nu_backward_batch(c, &m->w, &items, &tc, R + r0 * d, &gv, &arena, &touched) != NU_OK)
            return fail("backward");
        flag_rows(&touched.users, flags[0]);
        for (size_t k = 0; k < c->n_prefix; k++)
            flag_rows(&touched.prefix[k], flags[k + 1]);
        r0 += tc.queries;
    }

    nu_st_out_tensor *t = calloc(m->layout.count, sizeof *t);
    for (size_t i = 0; i < m->layout.count; i++) {
        const nu_param_spec *p = &m->layout.specs[i];
        t[i].name = p->name;
        t[i].ndim = p->ndim;
        t[i].shape[0] = p->shape[0];
        t[i].shape[1] = p->shape[1];
        t[i].data = grad + p->offset;
    }
    char *keys[NU_MAX_FIELDS + 1], *vals[NU_MAX_FIELDS + 1];
    size_t nmeta = 0;
    keys[nmeta] = malloc(NU_FIELD_NAME_MAX + 16);
    snprintf(keys[nmeta], NU_FIELD_NAME_MAX + 16, "touched_users");
    vals[nmeta++] = flags_text(flags[0], c->num_users);
    for (size_t k = 0; k < c->n_prefix; k++) {
        if (c->prefix[k].kind == NU_FIELD_DENSE)
            continue;
        keys[nmeta] = malloc(NU_FIELD_NAME_MAX + 16);
        snprintf(keys[nmeta], NU_FIELD_NAME_MAX + 16, "touched.%s", c->prefix[k].name);
        vals[nmeta++] = flags_text(flags[k + 1], c->prefix[k].size);
    }
    if (nu_st_write(argv[4], t, m->layout.count, (const char *const *)keys,
                    (const char *const *)vals, nmeta) != NU_OK)
        return fail("write");
    for (size_t k = 0; k < nmeta; k++) {
        free(keys[k]);
        free(vals[k]);
    }
    for (size_t k = 0; k <= c->n_prefix; k++)
        free(flags[k]);
    free(t);
    free(grad);
    free(R);
    free(out);
    nu_arena_destroy(&arena);
    nu_items_free(&items);
    nu_model_free(m);
    return 0;
}
