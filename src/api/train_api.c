/* The public API's training entry point (nu_train) over the trainer. */
#include <string.h>

#include "error.h"
#include "model/model.h"
#include "train/trainer.h"

void nu_training_options_init_sized(nu_training_options *o, size_t size)
{
    if (!o || size < sizeof(size_t))
        return;
    nu_train_options t;
    nu_train_defaults(&t);
    nu_training_options d;
    memset(&d, 0, sizeof d);
    d.size = size < sizeof d ? size : sizeof d;
    d.epochs = t.epochs;
    d.batch = t.batch;
    d.seed = t.seed;
    d.negatives = t.negatives;
    d.checkpoint_every = t.checkpoint_every;
    d.max_steps = t.max_steps;
    d.threads = t.threads;
    d.all_windows = t.windows == NU_WINDOWS_ALL;
    d.lr = t.adam.lr;
    d.lambda_con = t.lambda_con;
    d.lambda_ce = t.lambda_ce;
    d.lambda_aux = t.lambda_aux;
    d.val_every = t.val_every;
    d.patience = t.patience;
    memcpy(o, &d, d.size);
}

/* The caller's progress callback, fed the trainer's progress. */
typedef struct progress_relay {
    void (*fn)(const nu_training_progress *p, void *ctx);
    void *ctx;
} progress_relay;

static void relay(const nu_train_progress *p, void *ctx)
{
    const progress_relay *r = ctx;
    nu_training_progress q = {.size = sizeof q,
                              .step = p->step,
                              .total_steps = p->total_steps,
                              .epoch = p->epoch,
                              .con = p->con,
                              .ce = p->ce,
                              .aux = p->aux,
                              .total = p->total,
                              .examples_per_s = p->examples_per_s,
                              .validated = p->validated,
                              .val_score = p->val_score,
                              .best_score = p->best_score,
                              .best_step = p->best_step};
    r->fn(&q, r->ctx);
}

nu_status nu_train(const char *data_dir, const char *out_dir, const nu_training_options *given,
                   nu_training_result *result)
{
    if (!data_dir || !out_dir)
        return nu_error(NU_ERR_INVALID_ARG, "nu_train: a data and an output directory are required");
    if (result && result->size < sizeof(size_t))
        return nu_error(NU_ERR_INVALID_ARG, "nu_train: set result->size to "
                        "sizeof(nu_training_result)");
    /* A caller's options, however old its struct: fields past its size keep
     * their defaults. */
    nu_training_options g;
    nu_training_options_init_sized(&g, sizeof g);
    if (given) {
        if (given->size < sizeof(size_t) || given->size > sizeof g)
            return nu_error(NU_ERR_INVALID_ARG, "nu_training_options.size is %zu: call "
                            "nu_training_options_init first", given->size);
        memcpy(&g, given, given->size);
    }
    if (!(g.lr > 0 && g.lr < 10))
        return nu_error(NU_ERR_INVALID_ARG, "the learning rate must be in (0, 10), got %g", g.lr);
    if (!(g.lambda_con >= 0 && g.lambda_ce >= 0 && g.lambda_aux >= 0) ||
        !(g.lambda_con + g.lambda_ce + g.lambda_aux > 0))
        return nu_error(NU_ERR_INVALID_ARG, "the loss weights must be >= 0 with a positive sum");
    if (g.validate && g.checkpoint_every)
        return nu_error(NU_ERR_INVALID_ARG, "checkpoint_every does not go with validation: the "
                        "checkpoint is then the best model");

    nu_train_options o;
    nu_train_defaults(&o);
    o.data_dir = data_dir;
    o.out_dir = out_dir;
    o.resume_dir = g.resume_dir;
    o.no_prefix = g.no_prefix != 0;
    o.epochs = g.epochs;
    o.batch = g.batch;
    o.seed = g.seed;
    o.negatives = g.negatives;
    o.checkpoint_every = g.checkpoint_every;
    o.max_steps = g.max_steps;
    o.threads = g.threads;
    o.windows = g.all_windows ? NU_WINDOWS_ALL : NU_WINDOWS_DISJOINT;
    o.validate = g.validate;
    o.validate_ctx = g.validate_ctx;
    o.val_every = g.val_every;
    o.patience = g.patience;
    o.adam.lr = g.lr;
    o.lambda_con = g.lambda_con;
    o.lambda_ce = g.lambda_ce;
    o.lambda_aux = g.lambda_aux;
    o.stop = g.stop;
    if (g.collectives && (g.collectives->size < sizeof *g.collectives || g.collectives->ranks < 1 ||
                          g.collectives->rank < 0 || g.collectives->rank >= g.collectives->ranks ||
                          !g.collectives->allgather || !g.collectives->alltoallv))
        return nu_error(NU_ERR_INVALID_ARG, "nu_training_options.collectives: set size, rank, "
                        "ranks, allgather and alltoallv");
    o.comm = g.collectives;
    progress_relay pr = {g.progress, g.progress_ctx};
    if (g.progress) {
        o.progress = relay;
        o.progress_ctx = &pr;
    }
    /* The new model's config: the defaults (users and prefix fields come
     * from the data), the config file, then the overrides. */
    nu_model_config cfg;
    nu_config_defaults(&cfg);
    nu_status s = g.config_path ? nu_config_load_unchecked(g.config_path, &cfg) : NU_OK;
    if (s != NU_OK)
        return s;
    if (g.max_users)
        cfg.max_users = g.max_users;
    if (g.no_cls)
        cfg.use_cls = 0;
    if (g.bidirectional)
        cfg.bidirectional = 1;
    if (g.config_path || g.max_users || g.no_cls || g.bidirectional)
        o.model_cfg = &cfg;

    nu_train_summary sum;
    memset(&sum, 0, sizeof sum);
    s = nu_train_run(&o, &sum);
    if (s == NU_OK && result) {
        nu_training_result full = {.steps = sum.steps,
                                   .epochs = sum.epochs,
                                   .stopped = sum.stopped,
                                   .early_stopped = sum.early_stopped,
                                   .first_loss = sum.first_total,
                                   .last_loss = sum.last_total,
                                   .seconds = sum.seconds,
                                   .best_score = sum.best_score,
                                   .best_step = sum.best_step,
                                   .best_prior_weight = sum.best_prior_weight,
                                   .best_feature_prior_weight = sum.best_feature_prior_weight,
                                   .fetch_bytes = sum.fetch_bytes,
                                   .push_bytes = sum.push_bytes,
                                   .dense_bytes = sum.dense_bytes,
                                   .small_bytes = sum.small_bytes,
                                   .comm_seconds = sum.comm_seconds,
                                   .compute_seconds = sum.compute_seconds};
        full.size = result->size < sizeof full ? result->size : sizeof full;
        memcpy(result, &full, full.size);
    }
    return s;
}
