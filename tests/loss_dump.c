/* Test-only tool for tests/parity/test_loss_parity.py: runs the training
 * loss (src/train/loss.h) on a batch read from a safetensors file and
 * writes its values and gradients.
 *
 * Input tensors (F32; ids are small integers stored exactly):
 *   uhat [R, d], table [U, d], target [R] (-1: no target), shared [M],
 *   neg_off [R + 1], neg_rows [n] (n >= 1; entries past neg_off[R] unused).
 * Input metadata: similarity ("cosine" | "dot"), tau, lambdas ("l1,l2,l3").
 * Output: tensors dhat [R, d] and dtable [U, d] (from zero); metadata
 * con, ce, aux, total (%.17g), positions, pairs, touched (sorted rows,
 * comma-separated).  The ISA is the one NU_ISA selects.
 *
 * usage: loss_dump IN.safetensors OUT.safetensors */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "train/loss.h"

static int fail(const char *what)
{
    fprintf(stderr, "loss_dump: %s: %s\n", what, nu_last_error());
    return 1;
}

/* A malloc'd copy of tensor `name` (F32, ndim dims); NULL if absent. */
static float *get(const nu_st_file *f, const char *name, int ndim, size_t *shape)
{
    const nu_st_tensor *t = nu_st_find(f, name);
    if (!t || t->dtype != NU_ST_F32 || t->ndim != ndim) {
        fprintf(stderr, "loss_dump: tensor %s missing or not F32 of %d dims\n", name, ndim);
        return NULL;
    }
    for (int k = 0; k < ndim; k++)
        shape[k] = t->shape[k];
    float *x = malloc((t->nelem + 1) * sizeof(float));
    memcpy(x, t->raw, t->nelem * sizeof(float));
    return x;
}

static uint32_t *ids_of(const float *x, size_t n)
{
    uint32_t *r = malloc((n + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++)
        r[i] = x[i] < 0 ? NU_LOSS_NO_TARGET : (uint32_t)x[i];
    return r;
}

/* "3,5,9" (malloc'd). */
static char *rows_text(const nu_row_list *l)
{
    char *s = malloc(l->count * 12 + 1), *p = s;
    *p = 0;
    for (size_t i = 0; i < l->count; i++)
        p += sprintf(p, "%s%u", i ? "," : "", l->rows[i]);
    return s;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: loss_dump IN.safetensors OUT.safetensors\n");
        return 2;
    }
    nu_st_file in;
    if (nu_st_open(argv[1], &in) != NU_OK)
        return fail("input");
    size_t sh_u[2], sh_t[2], sh_g[1], sh_s[1], sh_o[1], sh_n[1];
    float *uhat = get(&in, "uhat", 2, sh_u), *table = get(&in, "table", 2, sh_t);
    float *tg = get(&in, "target", 1, sh_g), *sh = get(&in, "shared", 1, sh_s);
    float *off = get(&in, "neg_off", 1, sh_o), *neg = get(&in, "neg_rows", 1, sh_n);
    const char *sim = nu_st_meta(&in, "similarity"), *tau = nu_st_meta(&in, "tau");
    const char *lam = nu_st_meta(&in, "lambdas");
    if (!uhat || !table || !tg || !sh || !off || !neg || !sim || !tau || !lam)
        return 2;
    const size_t R = sh_u[0], d = sh_u[1], U = sh_t[0], M = sh_s[0];
    if (sh_t[1] != d || sh_g[0] != R || sh_o[0] != R + 1) {
        fprintf(stderr, "loss_dump: inconsistent shapes\n");
        return 2;
    }
    nu_loss_config cfg = {0};
    cfg.similarity_dot = strcmp(sim, "dot") == 0;
    cfg.tau = atof(tau);
    if (sscanf(lam, "%lf,%lf,%lf", &cfg.lambda_con, &cfg.lambda_ce, &cfg.lambda_aux) != 3) {
        fprintf(stderr, "loss_dump: bad lambdas %s\n", lam);
        return 2;
    }
    uint32_t *target = ids_of(tg, R), *shared = ids_of(sh, M), *neg_off = ids_of(off, R + 1);
    uint32_t *neg_rows = ids_of(neg, sh_n[0]);
    nu_loss_batch b = {R, uhat, d, target, neg_off, neg_rows, M, shared};

    nu_arena arena;
    if (!nu_arena_create(&arena, nu_loss_scratch_bytes(d, R, M, neg_off[R])))
        return fail("arena");
    float *dhat = malloc((R * d + 1) * sizeof(float)), *dtable = calloc(U * d + 1, sizeof(float));
    nu_row_list touched;
    nu_loss_value v;
    if (nu_loss_compute(&cfg, &b, table, U, d, &arena, dhat, dtable, &touched, &v) != NU_OK)
        return fail("loss");

    nu_st_out_tensor t[2] = {{"dhat", 2, {R, d, 0, 0}, dhat, NU_ST_F32, NULL},
                             {"dtable", 2, {U, d, 0, 0}, dtable, NU_ST_F32, NULL}};
    char vals[6][64];
    snprintf(vals[0], 64, "%.17g", v.con);
    snprintf(vals[1], 64, "%.17g", v.ce);
    snprintf(vals[2], 64, "%.17g", v.aux);
    snprintf(vals[3], 64, "%.17g", v.total);
    snprintf(vals[4], 64, "%zu", v.positions);
    snprintf(vals[5], 64, "%zu", v.pairs);
    char *rows = rows_text(&touched);
    const char *keys[7] = {"con", "ce", "aux", "total", "positions", "pairs", "touched"};
    const char *mv[7] = {vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], rows};
    if (nu_st_write(argv[2], t, 2, keys, mv, 7) != NU_OK)
        return fail("write");
    free(rows);
    free(dhat);
    free(dtable);
    nu_arena_destroy(&arena);
    free(uhat);
    free(table);
    free(tg);
    free(sh);
    free(off);
    free(neg);
    free(target);
    free(shared);
    free(neg_off);
    free(neg_rows);
    nu_st_close(&in);
    return 0;
}
