#include "select/validation.h"

#include "error.h"
#include "eval/eval.h"

static const double prior_grid[] = {0, 0.25, 0.5, 1, 2, 4};

static nu_status recall_at(const nu_validation *v, const nu_model *m, double *score)
{
    nu_eval_opts o = {.method = NU_EVAL_MODEL, .model = m, .split = NU_SPLIT_VAL, .n_stages = 5,
                      .stages = {0, 1, 5, 10, 20}, .n_k = 1, .ks = {50}, .threads = v->threads};
    nu_eval_result r;
    nu_status s = nu_eval_run(&v->ds, &o, &r);
    if (s != NU_OK)
        return s;
    double sum = 0;
    size_t n = 0;
    for (size_t i = 0; i < r.n_stages; i++)
        if (r.items[i]) {
            sum += r.recall[i][0];
            n++;
        }
    if (n == 0)
        return nu_error(NU_ERR_INVALID_ARG, "no validation item has a positive: selection on "
                                            "validation needs validation items");
    *score = sum / (double)n;
    return NU_OK;
}

/* Scores the model at weights (w, fw); keeps them in *best when better. */
static nu_status try_weights(const nu_validation *v, nu_model *m, double w, double fw,
                             double best[3])
{
    double sc;
    m->cfg.prior_weight = w;
    m->cfg.feature_prior_weight = fw;
    nu_status s = recall_at(v, m, &sc);
    if (s == NU_OK && sc > best[0]) {
        best[0] = sc;
        best[1] = w;
        best[2] = fw;
    }
    return s;
}

/* The prior weights, one coordinate at a time over the grid: the feature
 * prior's weight with no global prior, then the global prior's weight with
 * the best feature weight (11 scorings rather than 36; results/quality.md). */
nu_status nu_validate(nu_model *m, double *score, void *ctx)
{
    const nu_validation *v = ctx;
    size_t n = sizeof prior_grid / sizeof prior_grid[0];
    int global = m->user_prior && !v->no_prior;
    int feature = m->user_feature_prior && m->n_feature_prior && !v->no_prior;
    double best[3] = {-1, 0, 0};
    nu_status s = try_weights(v, m, 0, 0, best);
    for (size_t g = 1; s == NU_OK && feature && g < n; g++)
        s = try_weights(v, m, 0, prior_grid[g], best);
    double fw = best[2];
    for (size_t g = 1; s == NU_OK && global && g < n; g++)
        s = try_weights(v, m, prior_grid[g], fw, best);
    if (s != NU_OK)
        return s;
    m->cfg.prior_weight = best[1];
    m->cfg.feature_prior_weight = best[2];
    *score = best[0];
    return NU_OK;
}
