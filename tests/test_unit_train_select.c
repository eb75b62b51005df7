/* Selection on validation in the training loop (label model): with a
 * validation score that rises then falls, training stops `patience`
 * validations after the peak, and the checkpoint it leaves is the model of
 * the peak step, bit for bit the model a run stopped at that step leaves.
 * Also: disjoint windows are the default, a resume with other windows is
 * refused, and the selection state survives in the checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/synthetic.h"
#include "kernel_test_util.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

/* A scripted validation curve: rises to its peak at the 3rd call, then falls. */
typedef struct curve {
    int calls;
} curve;

static const double scores[] = {0.10, 0.30, 0.50, 0.40, 0.45, 0.20, 0.10, 0.05};

static nu_status scripted(nu_model *m, double *score, void *ctx)
{
    (void)m;
    curve *c = ctx;
    *score = scores[c->calls < 8 ? c->calls : 7];
    c->calls++;
    return NU_OK;
}

static nu_train_options options(const char *data, const char *out)
{
    nu_train_options o;
    nu_train_defaults(&o);
    o.data_dir = data;
    o.out_dir = out;
    o.epochs = 50;
    o.batch = 16;
    o.negatives = 64;
    o.threads = 1;
    o.seed = 3;
    return o;
}

int main(void)
{
    char base[64], data[96], best[96], plain[96], resumed[96];
    snprintf(base, sizeof base, "/tmp/nu_train_select_%ld", (long)getpid());
    snprintf(data, sizeof data, "%s/data", base);
    snprintf(best, sizeof best, "%s/best", base);
    snprintf(plain, sizeof plain, "%s/plain", base);
    snprintf(resumed, sizeof resumed, "%s/resumed", base);
    NU_CHECK(mkdir(base, 0777) == 0, "temporary directory");
    nu_synth_params sp;
    nu_synth_defaults(&sp);
    sp.users = 60;
    sp.items = 80;
    sp.seed = 2;
    NU_CHECK(nu_synth_write(&sp, data, NULL) == NU_OK, "synthetic data: %s", nu_last_error());

    /* Validation every 2 steps, patience 3: scores 0.1 (step 2), 0.3 (4),
     * 0.5 (6, the peak), 0.4, 0.45, 0.2 (8, 10, 12): stops at step 12 and
     * keeps step 6. */
    curve c = {0};
    nu_train_options o = options(data, best);
    o.validate = scripted;
    o.validate_ctx = &c;
    o.val_every = 2;
    o.patience = 3;
    nu_train_summary sum;
    NU_CHECK(nu_train_run(&o, &sum) == NU_OK, "training with validation: %s", nu_last_error());
    NU_CHECK(sum.early_stopped && !sum.stopped && sum.steps == 12 && c.calls == 6,
             "stops 3 validations after the peak: steps %llu, validations %d",
             (unsigned long long)sum.steps, c.calls);
    NU_CHECK(sum.best_step == 6 && sum.best_score == 0.5, "the peak: step %llu score %g",
             (unsigned long long)sum.best_step, sum.best_score);

    /* The same run stopped at step 6 without validation: identical weights. */
    nu_train_options p = options(data, plain);
    p.max_steps = 6;
    NU_CHECK(nu_train_run(&p, &sum) == NU_OK && sum.steps == 6, "plain run to step 6: %s",
             nu_last_error());
    nu_model *mb = NULL, *mp = NULL;
    nu_adam ab, ap;
    nu_train_state sb, spl;
    NU_CHECK(nu_checkpoint_load(best, &mb, &ab, &sb) == NU_OK, "best checkpoint: %s",
             nu_last_error());
    NU_CHECK(nu_checkpoint_load(plain, &mp, &ap, &spl) == NU_OK, "plain checkpoint: %s",
             nu_last_error());
    if (mb && mp) {
        NU_CHECK(mb->layout.total == mp->layout.total &&
                     !memcmp(mb->params, mp->params, mb->layout.total * sizeof(float)),
                 "the kept model is the model of the peak step, bit for bit");
        NU_CHECK(sb.step == 6 && sb.best_step == 6 && sb.best_score == 0.5 &&
                     sb.evals_since_best == 0 && !sb.windows_all,
                 "its state: step 6, the best, disjoint windows");
        nu_adam_free(&ab);
        nu_adam_free(&ap);
    }
    nu_model_free(mb);
    nu_model_free(mp);

    /* Resuming the best checkpoint continues the same curve: the same stop. */
    curve c2 = {3}; /* the validations already made */
    nu_train_options r = options(data, resumed);
    r.resume_dir = best;
    r.validate = scripted;
    r.validate_ctx = &c2;
    r.val_every = 2;
    r.patience = 3;
    NU_CHECK(nu_train_run(&r, &sum) == NU_OK, "resume with validation: %s", nu_last_error());
    NU_CHECK(sum.early_stopped && sum.steps == 12 && sum.best_step == 6,
             "a resume from the best stops where the uninterrupted run did (step %llu)",
             (unsigned long long)sum.steps);

    /* Windows must match on resume. */
    nu_train_options w = options(data, resumed);
    w.resume_dir = plain;
    w.windows = NU_WINDOWS_ALL;
    NU_CHECK(nu_train_run(&w, &sum) == NU_ERR_INVALID_ARG, "resume with other windows refused");

    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    NU_CHECK(system(cmd) == 0, "cleanup");
    return nu_test_finish("unit_train_select");
}
