/* A training data directory in memory (docs/data-format.md) and the
 * training examples built from it: windows of consecutive positives, their
 * nearest-in-time exposed negatives, a seeded epoch order, and batches
 * ready for the generator's TRAIN forward. */
#ifndef NU_DATASET_H
#define NU_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "data/idmap.h"
#include "data/items.h"
#include "model/model.h"

typedef enum nu_split { NU_SPLIT_TRAIN = 0, NU_SPLIT_VAL = 1, NU_SPLIT_TEST = 2 } nu_split;

/* Per item a time-ordered list of (user row, timestamp): item i's entries
 * are [off[i], off[i + 1]). */
typedef struct nu_interactions {
    size_t *off; /* num_items + 1 */
    uint32_t *user;
    int64_t *time;
    size_t len, cap;
} nu_interactions;

typedef struct nu_dataset {
    /* num_users and prefix_fields of data.json; every other value is the
     * default of docs/model-format.md (the model's own config decides). */
    nu_model_config cfg;
    size_t num_items;
    double seed;     /* data.json "seed" (informative; 0 when absent) */
    char source[256]; /* data.json "source", truncated */
    nu_idmap users;  /* users.txt: row -> id */
    nu_idmap items;  /* item ids in file order: item index -> id */
    nu_idmap vocab[NU_MAX_FIELDS]; /* categorical and multi fields; 0 is <unk> */
    /* Per item its prefix feature values, mapped by the rules of the items
     * file (docs/model-format.md): no users, ids NULL.  feats.unknown_values
     * counts values absent from the vocabulary (mapped to <unk>). */
    nu_items feats;
    uint8_t *split; /* per item, an nu_split */
    size_t n_split[3];
    nu_interactions pos, neg; /* positives and exposed negatives */
} nu_dataset;

/* Reads DIR/data.json, users.txt, vocab_<field>.txt and items.jsonl.
 * Everything is checked; an error names the file (and line: 1-based, blank
 * lines counted and skipped) and what is wrong: bad JSON, unknown keys,
 * unknown user ids, unsorted interactions (time, then user row), an unknown
 * split, a repeated item id, counts that disagree with data.json, ... */
nu_status nu_dataset_load(const char *dir, nu_dataset *ds);
void nu_dataset_free(nu_dataset *ds);

/* Each user's number of positives on the items of `split` (what Popular
 * ranks by): counts has num_users entries and is overwritten. */
void nu_dataset_user_positives(const nu_dataset *ds, nu_split split, size_t *counts);

/* Whether a model can train on this data: same num_users and users.txt
 * row for row, same prefix fields (name, kind, size) and vocabularies. */
nu_status nu_dataset_check_model(const nu_dataset *ds, const nu_model *m);

static inline size_t nu_dataset_n_pos(const nu_dataset *ds, size_t item)
{
    return ds->pos.off[item + 1] - ds->pos.off[item];
}

/* ---- training examples ----
 * For an item of the chosen split with m >= 1 positives, windows of
 * w = min(m, max_users + 1) consecutive positives (0-based, time order):
 * context = its first w - 1 users, decoder targets j = 1..w = its w users
 * in order.  Which windows (nu_windows):
 * - DISJOINT (the default): starts 0, w, 2w, ..., the last one moved back to
 *   m - w so it ends at the last positive: every positive is a target once
 *   (twice at most where the last window overlaps), so an item weighs in
 *   proportion to its positives;
 * - ALL: every start 0 .. m - w.  An item's weight then grows with the
 *   square of its positives (each of ~m windows has w targets): training is
 *   dominated by the most popular items, and on sparse data the generator
 *   learns to ignore short contexts (results/quality.md).
 * Windows are numbered item by item: item i owns [win_off[i], win_off[i + 1]). */
typedef enum nu_windows { NU_WINDOWS_DISJOINT = 0, NU_WINDOWS_ALL = 1 } nu_windows;

typedef struct nu_examples {
    const nu_dataset *ds;
    nu_model_config cfg; /* the model's config (max_users, prefix fields) */
    nu_windows windows;
    size_t neg_per_pos;  /* at most this many exposed negatives per position */
    size_t count;        /* windows */
    size_t *win_off;     /* num_items + 1 */
    size_t *order;       /* count: the epoch order (identity until shuffled) */
} nu_examples;

/* Windows of the items of `split` for model config `c` (whose prefix fields
 * must equal the data's).  `ds` must outlive `ex`. */
nu_status nu_examples_init(nu_examples *ex, const nu_dataset *ds, const nu_model_config *c,
                           nu_split split, nu_windows windows, size_t neg_per_pos);
void nu_examples_free(nu_examples *ex);
/* order = a permutation of [0, count) drawn from (seed, epoch) alone
 * (Fisher-Yates on the identity with the splitmix stream). */
void nu_examples_shuffle(nu_examples *ex, uint64_t seed, uint64_t epoch);
/* Window k -> its item and the index of its first positive. */
void nu_examples_locate(const nu_examples *ex, size_t k, size_t *item, size_t *start);

/* Up to `most` exposed negatives of `item` nearest in time to `t`, nearest
 * first (equal distance: the earlier one first, then list order), skipping
 * negatives whose user is `skip_user` (the position's own target).  Returns
 * how many were written to rows. */
size_t nu_nearest_negatives(const nu_dataset *ds, size_t item, int64_t t, uint32_t skip_user,
                            size_t most, uint32_t *rows);

/* A batch of B examples.
 * - items: B items (item id, features, context users = the first w - 1
 *   users of each window), ready for nu_forward_train / NU_FORWARD_TRAIN.
 *   Example b has nu_items_n_users(&items, b) + 1 decoder positions.
 * - Decoder positions of all examples in the forward's output order
 *   (example 0's positions j = 1..w, then example 1's, ...):
 *   pos_off[b] .. pos_off[b + 1] are example b's positions (pos_off[B] =
 *   n_pos); target[p] is the user row position p must generate (the
 *   window's users in order: every target is a real positive).
 * - neg[neg_off[p] .. neg_off[p + 1]) are position p's exposed negatives
 *   (nu_nearest_negatives of its target's time, at most neg_per_pos).
 * - window[b] is example b's window index (into nu_examples). */
typedef struct nu_train_batch {
    nu_items items;
    size_t count, n_pos;
    size_t *pos_off;   /* count + 1 */
    uint32_t *target;  /* n_pos */
    size_t *neg_off;   /* n_pos + 1 */
    uint32_t *neg;
    size_t *window;    /* count */
    size_t cap_off, cap_win, cap_target, cap_negoff, cap_neg; /* capacities (reused) */
} nu_train_batch;

void nu_train_batch_init(nu_train_batch *b);
void nu_train_batch_free(nu_train_batch *b);
/* Fills b (replacing what it held) with windows[0 .. count). */
nu_status nu_train_batch_build(nu_train_batch *b, const nu_examples *ex, const size_t *windows, size_t count);

#endif
