/* nu_batch_append (label model): items appended from other batches, in
 * pieces and out of order, are the items themselves -- the engine's
 * recommendations and embeddings for the gathered batch equal, bit for bit,
 * those of one batch that read the same JSON lines (users past max_users,
 * unknown users and values, dense fields included); a cleared batch reused
 * gives the same again; bad ranges, another model's batch and a batch
 * appending to itself are refused and leave the destination unchanged. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "nextuser/nextuser.h"

enum { USERS = 300, ITEMS = 17, K = 15 };

static int failures;
#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static nu_model *make_model(unsigned seed)
{
    const char *json =
        "{\"num_users\": 300, \"d\": 32, \"heads\": 2, \"ffn\": 64, \"max_users\": 6,"
        " \"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\", \"vocab\": 6},"
        " {\"name\": \"y\", \"kind\": \"categorical\", \"vocab\": 4},"
        " {\"name\": \"c\", \"kind\": \"dense\", \"dim\": 3}]}";
    nu_model_config c;
    nu_model *m = NULL;
    if (nu_config_parse(json, "t", &c) != NU_OK || nu_model_create(&c, &m) != NU_OK)
        exit(2);
    nu_model_init_random(m, seed);
    return m;
}

/* Item i as a JSON line: up to 11 users (some unknown), values of every
 * field (some unknown), a dense vector. */
static void item_line(const nu_model *m, size_t i, char *out, size_t cap)
{
    size_t at = (size_t)snprintf(out, cap, "{\"id\": \"it%zu\", \"users\": [", i);
    for (size_t j = 0; j < i % 12; j++) {
        const char *u = j % 5 == 4 ? "nobody" : nu_model_user_id(m, (uint32_t)((i * 37 + j * 11) % USERS));
        at += (size_t)snprintf(out + at, cap - at, "%s\"%s\"", j ? ", " : "", u);
    }
    snprintf(out + at, cap - at,
             "], \"features\": {\"g\": [\"%s\", \"%s\"], \"y\": \"%s\", \"c\": [%g, %g, %g]}}",
             m->vocab[0].names ? m->vocab[0].names[1 + i % 5] : "x",
             i % 7 == 3 ? "unheard-of" : (m->vocab[0].names ? m->vocab[0].names[1 + (i * 3) % 5] : "x"),
             m->vocab[1].names ? m->vocab[1].names[1 + i % 3] : "x", 0.1 * (double)i, -0.5,
             (double)(i % 4));
}

static void run(nu_session *s, const nu_batch *b, uint32_t *ids, float *sc, float *emb)
{
    if (nu_session_recommend(s, b, 0, ITEMS, ids, sc) != NU_OK ||
        nu_session_embed(s, b, 0, ITEMS, emb) != NU_OK) {
        fprintf(stderr, "engine call failed: %s\n", nu_last_error());
        exit(2);
    }
}

int main(void)
{
    if (nu_init() != NU_OK)
        return 2;
    nu_model *m = make_model(11), *other = make_model(12);
    nu_table *t = NULL;
    nu_engine *e = NULL;
    nu_session *s = NULL;
    nu_engine_options o;
    nu_engine_options_init(&o);
    o.threads = 1;
    o.max_batch = 32;
    o.k = K;
    if (nu_table_build(m, NU_DTYPE_BIT(NU_DTYPE_FP32), &t) != NU_OK ||
        nu_engine_create(m, t, &o, &e) != NU_OK || nu_session_create(e, &s) != NU_OK) {
        fprintf(stderr, "setup: %s\n", nu_last_error());
        return 2;
    }
    size_t dim = nu_model_dim(m);
    static uint32_t want_ids[ITEMS * K], got_ids[ITEMS * K];
    static float want_sc[ITEMS * K], got_sc[ITEMS * K], want_emb[ITEMS * 64], got_emb[ITEMS * 64];

    /* The reference: one batch reads every line. */
    nu_batch *whole = NULL, *parts[3] = {NULL, NULL, NULL}, *dst = NULL, *foreign = NULL;
    if (nu_batch_create(m, &whole) != NU_OK || nu_batch_create(m, &dst) != NU_OK ||
        nu_batch_create(other, &foreign) != NU_OK)
        return 2;
    for (int p = 0; p < 3; p++)
        if (nu_batch_create(m, &parts[p]) != NU_OK)
            return 2;
    char line[2048];
    for (size_t i = 0; i < ITEMS; i++) {
        item_line(m, i, line, sizeof line);
        if (nu_batch_add_json(whole, line, strlen(line)) != NU_OK ||
            nu_batch_add_json(parts[i % 3], line, strlen(line)) != NU_OK) {
            fprintf(stderr, "item %zu refused: %s (%s)\n", i, nu_last_error(), line);
            return 2;
        }
    }
    size_t uu, uv, tr;
    nu_batch_input_counts(whole, &uu, &uv, &tr);
    CHECK(uu > 0 && uv > 0 && tr > 0, "the items exercise unknown users %zu, values %zu, "
          "truncation %zu", uu, uv, tr);
    run(s, whole, want_ids, want_sc, want_emb);

    /* Gathered back in order from the three parts, one or two at a time. */
    for (int round = 0; round < 2; round++) {
        nu_batch_clear(dst);
        for (size_t i = 0; i < ITEMS;) {
            size_t p = i % 3, at = i / 3;
            /* Two consecutive items of one part are i and i + 3: append one. */
            CHECK(nu_batch_append(dst, parts[p], at, 1) == NU_OK, "append %zu: %s", i,
                  nu_last_error());
            i++;
        }
        CHECK(nu_batch_count(dst) == ITEMS, "count %zu", nu_batch_count(dst));
        for (size_t i = 0; i < ITEMS; i++)
            CHECK(!strcmp(nu_batch_item_id(dst, i), nu_batch_item_id(whole, i)) &&
                      nu_batch_item_users(dst, i) == nu_batch_item_users(whole, i),
                  "item %zu: id or users differ", i);
        for (size_t i = 0; i < ITEMS; i++) {
            const uint32_t *ha, *hb;
            size_t na, nb;
            CHECK(nu_batch_item_history(dst, i, &ha, &na) == NU_OK &&
                      nu_batch_item_history(whole, i, &hb, &nb) == NU_OK && na == nb &&
                      na >= nu_batch_item_users(whole, i) &&
                      (na == 0 || !memcmp(ha, hb, na * sizeof *ha)),
                  "item %zu: histories differ", i);
        }
        {
            const uint32_t *h = (const uint32_t *)1;
            size_t n = 7;
            CHECK(nu_batch_item_history(dst, ITEMS, &h, &n) == NU_ERR_INVALID_ARG && !h && n == 0,
                  "history out of range");
        }
        run(s, dst, got_ids, got_sc, got_emb);
        CHECK(!memcmp(got_ids, want_ids, sizeof want_ids) &&
                  !memcmp(got_sc, want_sc, sizeof want_sc),
              "round %d: recommendations of the gathered batch differ", round);
        CHECK(!memcmp(got_emb, want_emb, ITEMS * dim * sizeof(float)),
              "round %d: embeddings of the gathered batch differ", round);
    }
    /* A range at once. */
    nu_batch_clear(dst);
    CHECK(nu_batch_append(dst, whole, 0, 5) == NU_OK && nu_batch_append(dst, whole, 5, ITEMS - 5) == NU_OK,
          "ranges: %s", nu_last_error());
    run(s, dst, got_ids, got_sc, got_emb);
    CHECK(!memcmp(got_ids, want_ids, sizeof want_ids) && !memcmp(got_sc, want_sc, sizeof want_sc),
          "ranges: recommendations differ");

    /* Refusals change nothing. */
    size_t before = nu_batch_count(dst);
    CHECK(nu_batch_append(dst, whole, ITEMS - 1, 2) == NU_ERR_INVALID_ARG, "range past the end");
    CHECK(nu_batch_append(dst, foreign, 0, 0) == NU_ERR_INVALID_ARG, "another model's batch");
    CHECK(strstr(nu_last_error(), "different models") != NULL, "message: %s", nu_last_error());
    CHECK(nu_batch_append(dst, dst, 0, 1) == NU_ERR_INVALID_ARG, "itself");
    CHECK(nu_batch_append(NULL, whole, 0, 1) == NU_ERR_INVALID_ARG, "NULL dst");
    CHECK(nu_batch_count(dst) == before, "a refused append changed the batch");

    for (int p = 0; p < 3; p++)
        nu_batch_free(parts[p]);
    nu_batch_free(whole);
    nu_batch_free(dst);
    nu_batch_free(foreign);
    nu_session_free(s);
    nu_engine_free(e);
    nu_table_free(t);
    nu_model_free(m);
    nu_model_free(other);
    printf("batch_append: %s\n", failures ? "FAILED" : "ok");
    return failures != 0;
}
