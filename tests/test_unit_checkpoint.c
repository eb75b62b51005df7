/* Checkpoints: a round trip restores weights, moments, the step and the
 * loop's state bit for bit; the directory is a loadable model; a second save
 * replaces the first whole; damaged files are clear errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel_test_util.h"
#include "train/checkpoint.h"

int main(void)
{
    nu_model_config c;
    nu_config_parse("{\"num_users\": 9, \"d\": 8, \"heads\": 2, \"max_users\": 3, "
                    "\"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\", \"vocab\": 4}]}",
                    "t", &c);
    nu_model *m;
    nu_model_create(&c, &m);
    nu_model_init_random(m, 3);
    nu_adam_config ac;
    nu_adam_defaults(&ac);
    ac.lr = 3e-4;
    ac.total_steps = 1000;
    nu_adam a;
    nu_adam_init(&a, &m->layout, &ac);
    nu_rng r = {1};
    nu_rng_fill(&r, a.m, a.total, -1, 1);
    nu_rng_fill(&r, a.v, a.total, 0, 1);
    a.step = 77;
    nu_train_state st = {77, 2, 13, 42, 0xfedcba9876543210ull, 0, 0.625, 40, 2};
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/nu_ckpt_%ld", (long)getpid());
    NU_CHECK(nu_checkpoint_save(dir, m, &a, &st) == NU_OK, "save: %s", nu_last_error());
    nu_model *m2;
    nu_adam a2;
    nu_train_state st2;
    NU_CHECK(nu_checkpoint_load(dir, &m2, &a2, &st2) == NU_OK, "load: %s", nu_last_error());
    NU_CHECK(memcmp(m2->params, m->params, m->layout.total * sizeof(float)) == 0, "weights restored");
    NU_CHECK(memcmp(a2.m, a.m, a.total * sizeof(float)) == 0 && memcmp(a2.v, a.v, a.total * sizeof(float)) == 0,
             "moments restored");
    NU_CHECK(a2.step == 77 && a2.cfg.lr == 3e-4 && a2.cfg.total_steps == 1000, "Adam step and config restored");
    NU_CHECK(st2.step == st.step && st2.epoch == st.epoch && st2.position == st.position &&
                 st2.seed == st.seed && st2.rng_state == st.rng_state,
             "loop state restored (64-bit values exact)");
    NU_CHECK(st2.windows_all == 0 && st2.best_score == 0.625 && st2.best_step == 40 &&
                 st2.evals_since_best == 2,
             "windows and the validation state restored");
    nu_model *plain;
    NU_CHECK(nu_model_load(dir, &plain) == NU_OK, "a checkpoint is a loadable model directory");
    nu_model_free(plain);
    nu_model_free(m2);
    nu_adam_free(&a2);
    /* A second save replaces the first whole. */
    st.step = 78;
    a.step = 78;
    NU_CHECK(nu_checkpoint_save(dir, m, &a, &st) == NU_OK, "second save");
    NU_CHECK(nu_checkpoint_load(dir, &m2, &a2, &st2) == NU_OK && st2.step == 78 && a2.step == 78,
             "second save visible");
    nu_model_free(m2);
    nu_adam_free(&a2);
    /* Damaged pieces are clear errors. */
    char path[128], cmd[256];
    snprintf(path, sizeof path, "%s/train_state.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"format\": \"nextuser-train-state-1\", \"step\": 5}", f);
    fclose(f);
    NU_CHECK(nu_checkpoint_load(dir, &m2, &a2, &st2) == NU_ERR_FORMAT && strstr(nu_last_error(), "train_state"),
             "incomplete state refused: %s", nu_last_error());
    nu_checkpoint_save(dir, m, &a, &st);
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    if (truncate(path, 100) != 0)
        perror("truncate");
    NU_CHECK(nu_checkpoint_load(dir, &m2, &a2, &st2) == NU_ERR_FORMAT && strstr(nu_last_error(), "optimizer"),
             "truncated moments refused: %s", nu_last_error());
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    nu_adam_free(&a);
    nu_model_free(m);
    return nu_test_finish("unit_checkpoint");
}
