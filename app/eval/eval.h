/* Item cold-start evaluation (docs/evaluation.md): for each item of a split
 * with at least s+1 positives, at stage s the context is its first s
 * positives (time order) and the targets are all its later positives; every
 * user is scored, the context is left out, and Recall@K of the top K is
 * averaged over items.  The model and the baselines run through the same
 * stage construction and the same recall. */
#ifndef NU_EVAL_H
#define NU_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "kernels.h"
#include "model/model.h"
#include "model/packed_weights.h"

#define NU_EVAL_MAX_STAGES 16
#define NU_EVAL_MAX_K 8

typedef enum nu_eval_method {
    NU_EVAL_MODEL = 0,
    NU_EVAL_RANDOM = 1,
    NU_EVAL_POPULAR = 2,
    NU_EVAL_LOOKALIKE_EMB = 3,
    NU_EVAL_LOOKALIKE_CF = 4, /* co-engagement cosine; stage 0: users of genre-similar train items */
    /* cosine to the mean of the context's ALS user factors (lookalike_mf.h); stage 0: popular */
    NU_EVAL_LOOKALIKE_MF = 5,
    /* positives on train items weighted by shared feature values (feature_popular.h) */
    NU_EVAL_FEATURE_POPULAR = 6,
    NU_EVAL_METHOD_COUNT = 7
} nu_eval_method;

const char *nu_eval_method_name(nu_eval_method m); /* "model", "random", ..., "feature-popular" */
/* Parses a baseline or "model"; returns 0 on an unknown name. */
int nu_eval_method_parse(const char *s, nu_eval_method *out);

typedef struct nu_eval_opts {
    nu_eval_method method;
    const nu_model *model; /* MODEL and LOOKALIKE_EMB; must match the data */
    nu_split split;
    uint64_t seed;         /* RANDOM; LOOKALIKE_MF (the ALS initialisation) */
    size_t stages[NU_EVAL_MAX_STAGES], n_stages;
    size_t ks[NU_EVAL_MAX_K], n_k;
    int threads;           /* <= 0: one per core */
    nu_gen_encoding gen;   /* MODEL: the generator's encoding (bf16 falls back to fp32) */
} nu_eval_opts;

typedef struct nu_eval_result {
    size_t n_stages, n_k;
    size_t stages[NU_EVAL_MAX_STAGES], ks[NU_EVAL_MAX_K];
    size_t items[NU_EVAL_MAX_STAGES];                 /* items evaluated per stage */
    double recall[NU_EVAL_MAX_STAGES][NU_EVAL_MAX_K]; /* mean over items (0 when none) */
} nu_eval_result;

/* |ranked[0..min(k, n_ranked)) ∩ targets| / |targets|, counting each distinct
 * target once and skipping NU_TOPK_NONE entries; 0 when targets is empty. */
double nu_recall_at_k(const uint32_t *ranked, size_t n_ranked, size_t k, const uint32_t *targets,
                      size_t n_targets);

/* The items of `split` with at least s + 1 positives, in file order, written
 * to items (when not NULL); returns how many. */
size_t nu_eval_stage_items(const nu_dataset *ds, nu_split split, size_t s, size_t *items);

/* Item `item` at stage s (it must have > s positives): its context (first s
 * positives) and its targets (the later ones). */
void nu_eval_case(const nu_dataset *ds, size_t item, size_t s, const uint32_t **ctx,
                  const uint32_t **targets, size_t *n_targets);

/* All user rows ranked by their number of TRAIN-split positives, most
 * first, ties by lower row (order: num_users entries). */
void nu_eval_popular_order(const nu_dataset *ds, uint32_t *order);

/* The first k entries of order[0..n) not in excl (excl may be NULL);
 * pads out with NU_TOPK_NONE. */
void nu_eval_take(const uint32_t *order, size_t n, const nu_id_list *excl, size_t k, uint32_t *out);

nu_status nu_eval_run(const nu_dataset *ds, const nu_eval_opts *o, nu_eval_result *r);

/* Per-item recall, for paired comparisons of methods: at each stage the
 * items in evaluation order (nu_eval_stage_items: file order, the same for
 * every method) and their Recall@K, whose mean is the stage's recall. */
typedef struct nu_eval_per_item {
    size_t n_stages, n_k;
    size_t count[NU_EVAL_MAX_STAGES];    /* = nu_eval_result.items */
    size_t *item[NU_EVAL_MAX_STAGES];    /* dataset item indices, count of them */
    double *recall[NU_EVAL_MAX_STAGES];  /* count x n_k: item q's Recall@ks[j] at [q * n_k + j] */
} nu_eval_per_item;

/* nu_eval_run that also fills *pi (when not NULL; free it with
 * nu_eval_per_item_free, also after a failure). */
nu_status nu_eval_run_per_item(const nu_dataset *ds, const nu_eval_opts *o, nu_eval_result *r,
                               nu_eval_per_item *pi);
void nu_eval_per_item_free(nu_eval_per_item *pi);

#endif
