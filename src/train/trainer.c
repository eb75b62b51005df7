#include "trainer.h"
#include "trainer_internal.h"
#include "shard_comm.h"
#include "train/shard.h"
#include "train/shard_checkpoint.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "train/feature_prior_build.h"
#include "error.h"
#include "io/atomic_dir.h"
#include "model/backward.h"
#include "model/forward.h"
#include "model/packed_weights.h"
#include "util/clock.h"
#include "util/rng.h"

void nu_train_defaults(nu_train_options *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = 1;
    o->batch = 256;
    o->seed = 1;
    o->negatives = 1024;
    o->neg_per_pos = 4;
    o->windows = NU_WINDOWS_DISJOINT;
    o->patience = 3;
    o->lambda_con = 1.0;
    o->lambda_ce = 0.5;
    o->lambda_aux = 0.1;
    nu_adam_defaults(&o->adam);
}


static nu_status copy_ids(nu_idmap *dst, const nu_idmap *src)
{
    nu_idmap_free(dst);
    nu_idmap_init(dst);
    for (size_t i = 0; i < src->count; i++) {
        nu_status s = nu_idmap_add(dst, src->names[i], strlen(src->names[i]), NULL, 0);
        if (s != NU_OK)
            return s;
    }
    return NU_OK;
}

/* A new model for the data: the given config (or the defaults) with the
 * data's users and prefix fields, ids and vocabularies taken from the data. */
/* The serving prior of a new model: log(1 + each user's positives on the
 * training items), what Popular ranks by; its weight is chosen on
 * validation (cfg.prior_weight, 0 until then). */
static nu_status attach_user_prior(nu_model *m, const nu_dataset *ds)
{
    size_t U = m->cfg.num_users;
    size_t *counts = malloc((U ? U : 1) * sizeof *counts);
    m->user_prior = malloc((U ? U : 1) * sizeof(float));
    if (!counts || !m->user_prior) {
        free(counts);
        return nu_error(NU_ERR_NOMEM, "out of memory for the user prior");
    }
    nu_dataset_user_positives(ds, NU_SPLIT_TRAIN, counts);
    for (size_t u = 0; u < U; u++)
        m->user_prior[u] = log1pf((float)counts[u]);
    free(counts);
    return NU_OK;
}

static nu_status new_model(run *r)
{
    nu_model_config c;
    if (r->o->model_cfg)
        c = *r->o->model_cfg;
    else
        nu_config_defaults(&c);
    c.num_users = r->ds.cfg.num_users;
    c.n_prefix = r->o->no_prefix ? 0 : r->ds.cfg.n_prefix;
    memcpy(c.prefix, r->ds.cfg.prefix, sizeof c.prefix);
    nu_status s = nu_model_create(&c, &r->m);
    if (s != NU_OK)
        return s;
    nu_model_init_random(r->m, r->o->seed);
    return nu_trainer_attach_data(r);
}

nu_status nu_trainer_attach_data(run *r)
{
    const nu_model_config *c = &r->m->cfg;
    nu_status s = copy_ids(&r->m->users, &r->ds.users);
    for (size_t f = 0; s == NU_OK && f < c->n_prefix; f++)
        if (c->prefix[f].kind != NU_FIELD_DENSE)
            s = copy_ids(&r->m->vocab[f], &r->ds.vocab[f]);
    if (s == NU_OK)
        s = attach_user_prior(r->m, &r->ds);
    if (s == NU_OK)
        s = nu_feature_prior_build(r->m, &r->ds);
    return s;
}

static nu_status setup_workers(run *r)
{
    const nu_model_config *c = &r->m->cfg;
    size_t d = c->d, B = r->o->batch;
    r->chunk_max = (B + (size_t)r->T - 1) / (size_t)r->T;
    r->R_max = r->chunk_max * (c->max_users + 1);
    size_t arena = nu_packed_weights_train_bytes(c) + nu_forward_train_bytes(c, r->chunk_max) +
                   nu_backward_scratch_bytes(c, r->chunk_max) +
                   nu_loss_scratch_bytes(d, r->R_max, r->o->negatives, r->R_max * r->o->neg_per_pos) +
                   (1 << 20);
    r->w = calloc((size_t)r->T, sizeof *r->w);
    r->shared = malloc((r->o->negatives + 1) * sizeof *r->shared);
    if (!r->w || !r->shared)
        return nu_error(NU_ERR_NOMEM, "out of memory for the training threads");
    for (int t = 0; t < r->T; t++) {
        worker *w = &r->w[t];
        nu_train_batch_init(&w->batch);
        /* Sharded: sized for each step's compact model by the shard step. */
        size_t grad_floats = r->shard ? 0 : r->m->layout.total;
        w->grad = aligned_alloc(64, (grad_floats * sizeof(float) + 63) / 64 * 64 + 64);
        w->uhat = malloc((r->R_max * d + 1) * sizeof(float));
        w->dhat = malloc((r->R_max * d + 1) * sizeof(float));
        w->target = malloc((r->R_max + 1) * sizeof(uint32_t));
        w->neg_off = malloc((r->R_max + 2) * sizeof(uint32_t));
        if (!w->grad || !w->uhat || !w->dhat || !w->target || !w->neg_off || !nu_arena_create(&w->arena, arena))
            return nu_error(NU_ERR_NOMEM, "out of memory for the training threads (%zu bytes of scratch each)",
                            arena);
        memset(w->grad, 0, grad_floats * sizeof(float));
        if (!r->shard)
            nu_model_view_bind(c, &r->m->layout, w->grad, &w->gview);
    }
    size_t specs = r->m->layout.count;
    r->rows = calloc(specs, sizeof *r->rows);
    r->spec_rows = calloc(specs, sizeof *r->spec_rows);
    r->spec_cap = calloc(specs, sizeof *r->spec_cap);
    if (!r->rows || !r->spec_rows || !r->spec_cap)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    return NU_OK;
}

static void free_run(run *r)
{
    for (int t = 0; r->w && t < r->T; t++) {
        worker *w = &r->w[t];
        nu_train_batch_free(&w->batch);
        nu_arena_destroy(&w->arena);
        free(w->grad);
        free(w->uhat);
        free(w->dhat);
        free(w->target);
        free(w->neg_off);
    }
    free(r->w);
    free(r->shared);
    for (size_t i = 0; r->spec_rows && r->m && i < r->m->layout.count; i++)
        free(r->spec_rows[i]);
    free(r->spec_rows);
    free(r->spec_cap);
    free(r->rows);
    free(r->rowbuf);
    nu_examples_free(&r->ex);
    nu_dataset_free(&r->ds);
    nu_adam_free(&r->adam);
    nu_model_free(r->m);
    nu_shard_free(r->shard);
}

void nu_trainer_build_chunk(run *r, worker *w, const size_t *windows, size_t n)
{
    w->positions = w->pairs = 0;
    w->batch.count = 0;
    if (n == 0)
        return;
    w->status = nu_train_batch_build(&w->batch, &r->ex, windows, n);
    if (w->status != NU_OK)
        return;
    const nu_train_batch *b = &w->batch;
    /* Bidirectional encoders have seen later users: train only position n+1. */
    for (size_t i = 0, p = 0; i < b->count; i++)
        for (size_t j = b->pos_off[i]; j < b->pos_off[i + 1]; j++, p++) {
            int last = j + 1 == b->pos_off[i + 1];
            w->target[p] = (!r->m->cfg.bidirectional || last) ? b->target[j] : NU_LOSS_NO_TARGET;
        }
    for (size_t p = 0; p <= b->n_pos; p++)
        w->neg_off[p] = (uint32_t)b->neg_off[p];
    /* The loss's own denominators (untargeted positions and negatives equal
     * to their target count for nothing). */
    nu_loss_batch lb = {.R = b->n_pos, .target = w->target, .neg_off = w->neg_off,
                        .neg_rows = b->neg};
    nu_loss_count_terms(&lb, &w->positions, &w->pairs);
}

/* The loss terms are weighted by this chunk's share of the batch, so the
 * sum over threads (and processes) is the batch mean. */
void nu_trainer_compute_chunk(run *r, const nu_model *m, worker *w, size_t P, size_t Q)
{
    if (w->status != NU_OK || w->batch.count == 0 || w->positions == 0)
        return;
    const nu_model_config *c = &m->cfg;
    nu_train_batch *b = &w->batch;
    w->arena.used = 0;
    /* This step's weights packed both ways, in this thread's scratch (no
     * serial step between the update and the next forward). */
    nu_model_view wv = m->w;
    const size_t pk = nu_packed_weights_train_bytes(c);
    void *packed = pk ? nu_arena_bytes(&w->arena, pk) : NULL;
    if (packed)
        nu_packed_weights_fill_train(c, packed, &wv);
    nu_train_cache cache;
    nu_status s = nu_forward_train(c, &wv, &b->items, 0, b->count, &w->arena, w->uhat, &cache);
    nu_loss_config lc;
    nu_loss_config_defaults(c, &lc);
    lc.lambda_con = r->o->lambda_con * (double)w->positions / (double)P;
    lc.lambda_aux = r->o->lambda_aux * (double)w->positions / (double)P;
    lc.lambda_ce = r->o->lambda_ce * (double)w->pairs / (double)Q;
    nu_loss_batch lb = {.R = b->n_pos, .uhat = w->uhat, .ld_uhat = c->d, .target = w->target,
                        .neg_off = w->neg_off, .neg_rows = b->neg, .M = r->o->negatives,
                        .shared = r->shared};
    if (s == NU_OK)
        s = nu_loss_compute(&lc, &lb, m->w.user_emb, c->num_users, c->d, &w->arena, w->dhat,
                            w->gview.user_emb, &w->loss_rows, &w->loss);
    if (s == NU_OK)
        s = nu_backward_batch(c, &wv, &b->items, &cache, w->dhat, &w->gview, &w->arena, &w->touched);
    if (s != NU_OK) {
        w->status = s;
        snprintf(w->message, sizeof w->message, "%s", nu_last_error());
    }
}

static nu_status grow_rows(run *r, size_t spec, size_t need)
{
    if (need <= r->spec_cap[spec])
        return NU_OK;
    uint32_t *p = realloc(r->spec_rows[spec], need * sizeof *p);
    if (!p)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    r->spec_rows[spec] = p;
    r->spec_cap[spec] = need;
    return NU_OK;
}

/* Union of one embedding table's touched rows over all threads. */
static nu_status union_rows(run *r, size_t spec, int field /* -1: users */)
{
    size_t total = 0;
    for (int t = 0; t < r->T; t++) {
        worker *w = &r->w[t];
        if (w->batch.count == 0 || w->positions == 0)
            continue;
        total += field < 0 ? w->loss_rows.count + w->touched.users.count : w->touched.prefix[field].count;
    }
    nu_status s = grow_rows(r, spec, total + 1);
    if (s != NU_OK)
        return s;
    uint32_t *tmp = malloc((total + 1) * sizeof *tmp);
    if (!tmp)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (int t = 0; t < r->T; t++) {
        worker *w = &r->w[t];
        if (w->batch.count == 0 || w->positions == 0)
            continue;
        const nu_row_list *lists[2] = {field < 0 ? &w->loss_rows : &w->touched.prefix[field],
                                       field < 0 ? &w->touched.users : NULL};
        for (int k = 0; k < 2; k++) {
            if (!lists[k])
                continue;
            n = nu_rows_union(r->spec_rows[spec], n, lists[k]->rows, lists[k]->count, tmp);
            memcpy(r->spec_rows[spec], tmp, n * sizeof *tmp);
        }
    }
    free(tmp);
    r->rows[spec].rows = r->spec_rows[spec];
    r->rows[spec].count = n;
    return NU_OK;
}

/* Adds the other threads' gradient rows [k0, k1) of spec p (dense: k
 * counts elements, rows: touched rows) into thread 0's, zeroing them. */
static void reduce_part(run *r, const nu_param_spec *p, const nu_rows *rows, size_t k0, size_t k1)
{
    const size_t w = p->kind == NU_PARAM_DENSE ? 1 : p->shape[1];
    for (size_t k = k0; k < k1; k++) {
        size_t at = p->offset + (p->kind == NU_PARAM_DENSE ? k : (size_t)rows->rows[k] * w);
        for (int t = 1; t < r->T; t++) {
            float *g0 = r->w[0].grad + at, *gt = r->w[t].grad + at;
            for (size_t j = 0; j < w; j++) {
                g0[j] += gt[j];
                gt[j] = 0;
            }
        }
    }
}

/* In thread order (fixed, so the result does not depend on scheduling);
 * the other threads' gradients are zeroed.  Each element's sum is its own,
 * so the threads share the elements (one parallel region: no fork per
 * tensor). */
nu_status nu_trainer_reduce(run *r, const nu_model *m)
{
    const nu_param_layout *l = &m->layout;
    for (size_t i = 0; i < l->count; i++) {
        const nu_param_spec *p = &l->specs[i];
        if (p->kind == NU_PARAM_DENSE)
            continue;
        int field = -1;
        if (strcmp(p->name, "user_emb") != 0)
            for (size_t f = 0; f < m->cfg.n_prefix; f++) {
                char name[NU_PARAM_NAME_MAX];
                snprintf(name, sizeof name, "prefix.%s.emb", m->cfg.prefix[f].name);
                if (strcmp(name, p->name) == 0)
                    field = (int)f;
            }
        nu_status s = union_rows(r, i, field);
        if (s != NU_OK)
            return s;
    }
    if (r->T < 2)
        return NU_OK;
#pragma omp parallel num_threads(r->T)
    for (size_t i = 0; i < l->count; i++) {
        const nu_param_spec *p = &l->specs[i];
        const size_t n = p->kind == NU_PARAM_DENSE ? p->count : r->rows[i].count;
        const size_t chunk = p->kind == NU_PARAM_DENSE ? 4096 : 64, parts = (n + chunk - 1) / chunk;
#pragma omp for schedule(static) nowait
        for (size_t q = 0; q < parts; q++)
            reduce_part(r, p, &r->rows[i], q * chunk, q * chunk + chunk < n ? q * chunk + chunk : n);
    }
    return NU_OK;
}

static nu_status step(run *r, const size_t *windows, size_t n, nu_train_progress *pr)
{
    size_t U = r->m->cfg.num_users;
    for (uint64_t j = 0; j < r->o->negatives; j++)
        r->shared[j] = (uint32_t)nu_random_below(&r->rng, U);
    size_t P = 0, Q = 0;
    int T = r->T;
#pragma omp parallel num_threads(T) if (T > 1)
    {
        int t = omp_get_thread_num();
        size_t lo = n * (size_t)t / (size_t)T, hi = n * (size_t)(t + 1) / (size_t)T;
        worker *w = &r->w[t];
        w->status = NU_OK;
        nu_trainer_build_chunk(r, w, windows + lo, hi - lo);
        if (w->status != NU_OK)
            snprintf(w->message, sizeof w->message, "%s", nu_last_error());
#pragma omp barrier
#pragma omp single
        for (int k = 0; k < T; k++) {
            P += r->w[k].positions;
            Q += r->w[k].pairs;
        }
        nu_trainer_compute_chunk(r, r->m, w, P, Q);
    }
    for (int t = 0; t < T; t++)
        if (r->w[t].status != NU_OK)
            return nu_error(r->w[t].status, "%s", r->w[t].message);
    nu_status s = nu_trainer_reduce(r, r->m);
    nu_adam_stats as;
    if (s == NU_OK)
        s = nu_adam_step(&r->adam, &r->m->layout, r->m->params, r->w[0].grad, r->rows, &as);
    if (s != NU_OK)
        return s;
    nu_trainer_loss_means(r, P, Q, pr);
    return NU_OK;
}

void nu_trainer_loss_means(const run *r, size_t P, size_t Q, nu_train_progress *pr)
{
    pr->con = pr->ce = pr->aux = 0;
    for (int t = 0; t < r->T; t++) {
        const worker *w = &r->w[t];
        if (w->positions == 0)
            continue;
        pr->con += w->loss.con * (double)w->positions / (double)P;
        pr->aux += w->loss.aux * (double)w->positions / (double)P;
        pr->ce += w->loss.ce * (double)w->pairs / (double)Q;
    }
    pr->total = r->o->lambda_con * pr->con + r->o->lambda_ce * pr->ce + r->o->lambda_aux * pr->aux;
}

/* A checkpoint of the run now: written by this process alone, or, when
 * sharded, process 0's full copy after every process's rows reach it. */
static nu_status save_checkpoint(run *r)
{
    if (!r->shard)
        return nu_checkpoint_save(r->o->out_dir, r->m, &r->adam, &r->st);
    /* The set first (each process its rows), then the full copy. */
    nu_status s = nu_shard_save_set(r);
    if (s == NU_OK)
        s = nu_shard_gather(r, 1);
    if (s == NU_OK && r->shard->rank == 0)
        s = nu_checkpoint_save(r->o->out_dir, r->m, &r->adam, &r->st);
    return nu_shard_agree(r->shard, s);
}

/* Process 0's validation (status, score and the serving weights it chose)
 * to every process, so that all take the same decisions after it. */
static nu_status share_validation(run *r, nu_status s, double *score)
{
    s = nu_shard_agree(r->shard, s);
    double v[3] = {*score, r->m->cfg.prior_weight, r->m->cfg.feature_prior_weight};
    if (s == NU_OK)
        s = nu_shard_bcast(r->shard, v, sizeof v);
    *score = v[0];
    r->m->cfg.prior_weight = v[1];
    r->m->cfg.feature_prior_weight = v[2];
    return s;
}

/* Scores the model now; a new best is written as the checkpoint (the state
 * saved with it says it is the best, so a resume continues exactly).  Sets
 * *stop after `patience` validations without improvement. */
static nu_status validate(run *r, nu_train_progress *pr, int *stop)
{
    double score = 0;
    nu_status s = r->shard ? nu_shard_gather(r, 0) : NU_OK;
    if (s == NU_OK && (!r->shard || r->shard->rank == 0))
        s = r->o->validate(r->m, &score, r->o->validate_ctx);
    if (r->shard)
        s = share_validation(r, s, &score);
    if (s != NU_OK)
        return s;
    pr->validated = 1;
    pr->val_score = score;
    if (score > r->st.best_score) {
        r->st.best_score = score;
        r->best_prior_weight = r->m->cfg.prior_weight;
        r->best_feature_prior_weight = r->m->cfg.feature_prior_weight;
        r->st.best_step = r->st.step;
        r->st.evals_since_best = 0;
        s = save_checkpoint(r);
    } else {
        r->st.evals_since_best++;
        *stop = r->o->patience && r->st.evals_since_best >= r->o->patience;
    }
    pr->best_score = r->st.best_score;
    pr->best_step = r->st.best_step;
    return s;
}

static nu_status train_locked(const nu_train_options *o, nu_train_summary *sum)
{
    run r;
    memset(&r, 0, sizeof r);
    memset(sum, 0, sizeof *sum);
    r.o = o;
    nu_status s = nu_init();
    /* The output directory is checked now, not at the first checkpoint. */
    if (s == NU_OK)
        s = nu_atomic_dir_check(o->out_dir);
    if (s == NU_OK)
        s = nu_dataset_load(o->data_dir, &r.ds);
    if (s == NU_OK) {
        if (o->resume_dir) {
            /* A sharded set (DIR.shards), on any number of processes: re-sharded. */
            s = nu_shard_set_exists(o->resume_dir)
                    ? nu_shard_load_set(&r, o->resume_dir)
                    : nu_checkpoint_load(o->resume_dir, &r.m, &r.adam, &r.st);
            if (s == NU_OK && r.st.seed != o->seed)
                s = nu_error(NU_ERR_INVALID_ARG, "%s: trained with seed %llu, not %llu", o->resume_dir,
                             (unsigned long long)r.st.seed, (unsigned long long)o->seed);
            if (s == NU_OK) { /* the checkpoint is the best */
                r.best_prior_weight = r.m->cfg.prior_weight;
                r.best_feature_prior_weight = r.m->cfg.feature_prior_weight;
            }
            if (s == NU_OK && r.st.windows_all != (o->windows == NU_WINDOWS_ALL))
                s = nu_error(NU_ERR_INVALID_ARG, "%s: trained with --windows %s, not %s",
                             o->resume_dir, r.st.windows_all ? "all" : "disjoint",
                             o->windows == NU_WINDOWS_ALL ? "all" : "disjoint");
        } else {
            s = new_model(&r);
        }
    }
    if (s == NU_OK)
        s = nu_dataset_check_model(&r.ds, r.m);
    if (s == NU_OK)
        s = nu_examples_init(&r.ex, &r.ds, &r.m->cfg, NU_SPLIT_TRAIN, o->windows, o->neg_per_pos);
    if (s == NU_OK && r.ex.count == 0)
        s = nu_error(NU_ERR_INVALID_ARG, "%s: no training examples (no train item has a positive)",
                     o->data_dir);
    int sharded = o->comm != NULL;
    if (sharded) /* every process stops here together if any failed */
        s = nu_collectives_agree(o->comm, s);
    if (s != NU_OK || o->batch == 0) {
        if (s == NU_OK)
            s = nu_error(NU_ERR_INVALID_ARG, "batch must be >= 1");
        free_run(&r);
        return s;
    }
    size_t spe = (r.ex.count + o->batch - 1) / o->batch;
    uint64_t total_steps = spe * o->epochs;
    if (!o->resume_dir) {
        nu_adam_config ac = o->adam;
        if (ac.total_steps == 0)
            ac.total_steps = total_steps;
        s = nu_adam_init(&r.adam, &r.m->layout, &ac);
        r.st.seed = o->seed;
        r.st.rng_state = o->seed ^ 0x6e6567617469766full;
        r.st.windows_all = o->windows == NU_WINDOWS_ALL;
        r.st.best_score = -1;
    }
    r.rng.state = r.st.rng_state;
    r.T = o->threads > 0 ? o->threads : omp_get_num_procs();
    r.adam.threads = r.T;
    if (s == NU_OK && sharded)
        s = nu_shard_create(&r, o->comm);
    if (s == NU_OK)
        s = setup_workers(&r);
    if (sharded)
        s = nu_collectives_agree(o->comm, s);
    int lead = !sharded || o->comm->rank == 0; /* reports progress */
    double t0 = nu_now_seconds();
    uint64_t shuffled_epoch = UINT64_MAX, steps_here = 0;
    nu_train_progress pr = {0};
    pr.total_steps = total_steps;
    /* Resumed at or past max_steps: nothing to train, the checkpoint is
     * written as it is (so a sharded set becomes one process's directory). */
    if (s == NU_OK && o->max_steps && r.st.step >= o->max_steps) {
        s = save_checkpoint(&r);
        sum->stopped = 1;
    }
    while (s == NU_OK && !sum->stopped) {
        if (r.st.position >= r.ex.count) {
            r.st.epoch++;
            r.st.position = 0;
        }
        if (r.st.epoch >= o->epochs)
            break;
        if (shuffled_epoch != r.st.epoch) {
            nu_examples_shuffle(&r.ex, o->seed, r.st.epoch);
            shuffled_epoch = r.st.epoch;
        }
        size_t n = r.ex.count - r.st.position < o->batch ? r.ex.count - r.st.position : o->batch;
        s = sharded ? nu_shard_step(&r, r.ex.order + r.st.position, n, &pr)
                    : step(&r, r.ex.order + r.st.position, n, &pr);
        if (s != NU_OK)
            break;
        r.st.position += n;
        r.st.step++;
        r.st.rng_state = r.rng.state;
        steps_here++;
        if (steps_here == 1)
            sum->first_total = pr.total;
        sum->last_total = pr.total;
        pr.step = r.st.step;
        pr.epoch = r.st.epoch;
        pr.examples_per_s = (double)(steps_here * o->batch) / (nu_now_seconds() - t0);
        pr.validated = 0;
        int epoch_end = r.st.position >= r.ex.count;
        if (o->validate && (o->val_every ? r.st.step % o->val_every == 0 : epoch_end)) {
            int stop_now = 0;
            s = validate(&r, &pr, &stop_now);
            sum->early_stopped = stop_now;
        }
        if (o->progress && lead)
            o->progress(&pr, o->progress_ctx);
        if (s != NU_OK || sum->early_stopped)
            break;
        int stop = (o->stop && *o->stop) || (o->max_steps && r.st.step >= o->max_steps);
        if (sharded) /* a signal to any process stops them all after this step */
            stop = nu_shard_any(r.shard, stop);
        /* With validation the checkpoint is the best model: written only when
         * a validation improves (or, before the first, on a stop). */
        int periodic = !o->validate && o->checkpoint_every && r.st.step % o->checkpoint_every == 0;
        if ((stop && !(o->validate && r.st.best_score >= 0)) || periodic)
            s = save_checkpoint(&r);
        if (stop) {
            sum->stopped = 1;
            break;
        }
    }
    int last_validated = pr.validated || sum->early_stopped;
    if (s == NU_OK && !sum->stopped && o->validate && !last_validated) {
        int unused = 0;
        s = validate(&r, &pr, &unused); /* the end of training counts too */
        if (s == NU_OK && o->progress && lead)
            o->progress(&pr, o->progress_ctx);
    }
    if (s == NU_OK && !sum->stopped && !o->validate)
        s = save_checkpoint(&r);
    sum->best_score = r.st.best_score;
    sum->best_prior_weight = r.best_prior_weight;
    sum->best_feature_prior_weight = r.best_feature_prior_weight;
    sum->best_step = r.st.best_step;
    sum->steps = r.st.step;
    sum->epochs = r.st.epoch;
    sum->seconds = nu_now_seconds() - t0;
    if (r.shard) {
        sum->fetch_bytes = r.shard->total.fetch_bytes;
        sum->push_bytes = r.shard->total.push_bytes;
        sum->dense_bytes = r.shard->total.dense_bytes;
        sum->small_bytes = r.shard->total.small_bytes;
        sum->comm_seconds = r.shard->total.comm_s;
        sum->compute_seconds = r.shard->total.compute_s;
    }
    free_run(&r);
    return s;
}

nu_status nu_train_run(const nu_train_options *o, nu_train_summary *sum)
{
    /* The output directory is this run's from start to end: a second
     * process training (or writing anything) into it is refused.  In a
     * sharded run process 0 alone writes it, and so alone locks it. */
    int sharded = o->comm != NULL, writer = !sharded || o->comm->rank == 0;
    nu_status s = writer ? nu_atomic_dir_lock(o->out_dir) : NU_OK;
    int locked = writer && s == NU_OK;
    if (sharded)
        s = nu_collectives_agree(o->comm, s);
    if (s != NU_OK) {
        if (locked)
            nu_atomic_dir_unlock(o->out_dir);
        memset(sum, 0, sizeof *sum);
        return s;
    }
    s = train_locked(o, sum);
    if (locked)
        nu_atomic_dir_unlock(o->out_dir);
    return s;
}
