#include "train_validation.h"

#include "error.h"
#include "eval/eval.h"

static const double prior_grid[] = {0, 0.25, 0.5, 1, 2, 4};

static nu_status recall_at(const nu_cli_validation *v, const nu_model *m, double *score)
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

nu_status nu_cli_validate(nu_model *m, double *score, void *ctx)
{
    const nu_cli_validation *v = ctx;
    size_t grid = m->user_prior && !v->no_prior ? sizeof prior_grid / sizeof prior_grid[0] : 1;
    double best = -1, best_weight = 0;
    for (size_t g = 0; g < grid; g++) {
        double sc;
        m->cfg.prior_weight = prior_grid[g];
        nu_status s = recall_at(v, m, &sc);
        if (s != NU_OK)
            return s;
        if (sc > best) {
            best = sc;
            best_weight = prior_grid[g];
        }
    }
    m->cfg.prior_weight = best_weight;
    *score = best;
    return NU_OK;
}
