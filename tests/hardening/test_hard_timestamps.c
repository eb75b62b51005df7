/* Issue 17, timestamps read exactly.  Each check failed before the fix,
 * when items.jsonl's timestamps went through cJSON's double (exact to 2^53
 * only) and prepare refused |t| > 2^53 after a cast to double:
 *   9007199254740993 then ...992 was read as ...992 twice and taken as
 *   sorted; the reverse, which prepare writes, was refused as unsorted
 *   (prepare's output could not be loaded)
 *   the whole int64 range is kept as written; 2^63, 1e3 and 5.0 are refused
 *   naming file:line
 *   the nearest exposed negatives across the whole range (no overflow in the
 *   distance) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "data/prepare.h"
#include "hard_fixture.h"
#include "kernel_test_util.h"

/* Loads a data directory of users u0, u1, 7 and one item with
 * `interactions` (the members after "split"). */
static nu_status load_item(const char *interactions, nu_dataset *ds)
{
    const char *d = nu_hard_in("data");
    mkdir(d, 0777);
    char line[1024];
    snprintf(line, sizeof line, "{\"id\":\"a\",\"split\":\"train\",%s}\n", interactions);
    nu_test_put(d, "users.txt", "u0\nu1\n7\n");
    nu_test_put(d, "data.json", "{\"format\":\"nextuser-data-1\",\"num_users\":3,\"num_items\":1}");
    nu_test_put(d, "items.jsonl", line);
    return nu_dataset_load(d, ds);
}

static void test_dataset(void)
{
    nu_dataset ds;
    nu_status s = load_item("\"positives\":[[\"u0\",9007199254740993],[\"u1\",9007199254740992]]",
                            &ds);
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("items.jsonl:1:") && nu_hard_says("not sorted"),
             "...993 then ...992 is not sorted: %d %s", (int)s, nu_last_error());
    if (s == NU_OK)
        nu_dataset_free(&ds);

    s = load_item("\"positives\":[[\"u1\",9007199254740992],[\"u0\",9007199254740993],"
                  "[7,9223372036854775807]],\"negatives\":[[\"u1\",-9223372036854775808]]",
                  &ds);
    NU_CHECK(s == NU_OK, "exact timestamps load: %s", nu_last_error());
    if (s == NU_OK) {
        NU_CHECK(ds.pos.len == 3 && ds.pos.time[0] == INT64_C(9007199254740992) &&
                     ds.pos.time[1] == INT64_C(9007199254740993) &&
                     ds.pos.time[2] == INT64_MAX && ds.neg.time[0] == INT64_MIN,
                 "every timestamp as written");
        nu_dataset_free(&ds);
    }

    static const char *const bad[] = {"9223372036854775808", "-9223372036854775809", "1e3",
                                      "5.0", "\"5\"", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "\"positives\":[[\"u0\",%s]]", bad[i]);
        s = load_item(text, &ds);
        NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("items.jsonl:1:") && nu_hard_says("timestamp"),
                 "timestamp %s refused naming the line: %d %s", bad[i], (int)s, nu_last_error());
        if (s == NU_OK)
            nu_dataset_free(&ds);
    }

    /* Negatives at both ends of the range: the distances from t = 0 are
     * 2^63 and 2^63 - 1, beyond a signed difference. */
    s = load_item("\"positives\":[[\"u0\",0]],\"negatives\":[[\"u0\",-9223372036854775808],"
                  "[\"u1\",9223372036854775807]]",
                  &ds);
    NU_CHECK(s == NU_OK, "extreme negatives load: %s", nu_last_error());
    if (s == NU_OK) {
        uint32_t rows[2];
        size_t n = nu_nearest_negatives(&ds, 0, 0, UINT32_MAX, 2, rows);
        NU_CHECK(n == 2 && rows[0] == 1 && rows[1] == 0, "nearest first: u1 (2^63 - 1 away)");
        nu_dataset_free(&ds);
    }
}

static void test_prepare(void)
{
    /* Two users rate one movie at ...993 then ...992: prepare sorts them
     * by time, and train must read what it wrote. */
    nu_test_put(nu_hard_dir(), "ratings.csv",
                "userId,movieId,rating,timestamp\n1,1,5,9007199254740993\n2,1,5,9007199254740992\n"
                "2,2,5,9223372036854775807\n");
    nu_prepare_params p;
    nu_prepare_defaults(&p);
    p.format = NU_PREP_MOVIELENS;
    p.ratings = nu_hard_in("ratings.csv");
    nu_status s = nu_prepare(&p, nu_hard_in("prepared"), NULL);
    NU_CHECK(s == NU_OK, "prepare: timestamps beyond 2^53: %s", nu_last_error());
    nu_dataset ds;
    s = s == NU_OK ? nu_dataset_load(nu_hard_in("prepared"), &ds) : s;
    NU_CHECK(s == NU_OK, "what prepare wrote loads: %s", nu_last_error());
    if (s == NU_OK) {
        int exact = ds.pos.len == 3;
        for (size_t i = 0; exact && i < ds.items.count; i++) {
            size_t b = ds.pos.off[i], e = ds.pos.off[i + 1];
            if (e - b == 2)
                exact = ds.pos.time[b] == INT64_C(9007199254740992) &&
                        ds.pos.time[b + 1] == INT64_C(9007199254740993);
            else
                exact = e - b == 1 && ds.pos.time[b] == INT64_MAX;
        }
        NU_CHECK(exact, "prepare's timestamps arrive exactly");
        nu_dataset_free(&ds);
    }
    nu_test_put(nu_hard_dir(), "ratings.csv",
                "userId,movieId,rating,timestamp\n1,1,5,10\n2,1,5,9223372036854775808\n");
    s = nu_prepare(&p, nu_hard_in("prepared2"), NULL);
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("ratings.csv:3:") && nu_hard_says("timestamp"),
             "prepare: 2^63 refused naming the line: %d %s", (int)s, nu_last_error());
}

int main(void)
{
    nu_hard_dir_make("nu_hard_time");
    test_dataset();
    test_prepare();
    return nu_hard_finish("hardening timestamps");
}
