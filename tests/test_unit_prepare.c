/* nextuser prepare (app/data/prepare.h): hand-made MovieLens and CSV inputs
 * -> the expected sequences, negatives, features, vocabularies and a
 * reproducible split; the output loads with nu_dataset_load; malformed rows
 * are errors naming file:line, or counted with skip_bad; a generic
 * item-features file -> exact prefix fields, vocabularies and item features,
 * its malformed rows named by file:line with nothing written; and, when the
 * shared MovieLens latest-small copy exists, plausible counts on it. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/prepare.h"
#include "kernel_test_util.h"

static char base[128];

static void put(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", base, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) == EOF) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

static const char *in(const char *name)
{
    static char paths[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(paths[k], sizeof paths[k], "%s/%s", base, name);
    return paths[k];
}

static char *slurp(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = 0;
    fclose(f);
    return buf;
}

/* Removes a data directory prepare wrote (plain files only). */
static void rm_out(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* The summary's vocabulary rows of field `name`; 0 when there is no such field. */
static size_t vocab_of(const nu_prepare_summary *s, const char *name)
{
    for (size_t f = 0; f < s->n_fields; f++)
        if (!strcmp(s->fields[f].name, name))
            return s->fields[f].vocab;
    return 0;
}

static void check_file(const char *dir, const char *name, const char *want)
{
    char *got = slurp(dir, name);
    NU_CHECK(got && !strcmp(got, want), "%s: got\n%s\nwant\n%s", name, got ? got : "(none)",
             want);
    free(got);
}

static void check_has(const char *dir, const char *name, const char *want)
{
    char *got = slurp(dir, name);
    NU_CHECK(got && strstr(got, want), "%s lacks %s:\n%s", name, want, got ? got : "(none)");
    free(got);
}

static const char *const movies =
    "movieId,title,genres\n"
    "10,Alpha (1995),Comedy|Action\n"
    "20,\"Beta, The (2001)\",Drama\n"
    "30,Gamma,(no genres listed)\n"
    "40,Delta (1987),Comedy\n";
/* u4 is seen first (row 0), so the tie at t=90 on m10 puts u4 before u2. */
static const char *const ratings =
    "userId,movieId,rating,timestamp\n"
    "4,30,4.0,10\n"
    "1,10,5.0,100\n"
    "2,10,4.0,90\n"
    "3,10,1.0,95\n"
    "1,20,3.0,50\n"
    "2,20,2.0,60\n"
    "3,20,4.5,70\n"
    "4,10,4.0,90\n";
static const char *const tags =
    "userId,movieId,tag,timestamp\n"
    "1,10,Funny,1\n"
    "2,30,funny ,2\n"
    "1,20,\"dark, gritty\",3\n"
    "2,40,dark,4\n"
    "3,10,FUNNY,5\n";

static void test_movielens(void)
{
    char out[256];
    snprintf(out, sizeof out, "%s/out", base);
    put("movies.csv", movies);
    put("ratings.csv", ratings);
    put("tags.csv", tags);
    nu_prepare_params p;
    nu_prepare_defaults(&p);
    p.ratings = in("ratings.csv");
    p.items = in("movies.csv");
    p.tags = in("tags.csv");
    nu_prepare_summary s;
    NU_CHECK(nu_prepare(&p, out, &s) == NU_OK, "prepare: %s", nu_last_error());
    NU_CHECK(s.users == 4 && s.items == 4 && s.positives == 5 && s.negatives == 2 &&
                 s.ignored_ratings == 1 && s.skipped_rows == 0,
             "summary: %zu users %zu items %zu pos %zu neg %zu ignored", s.users, s.items,
             s.positives, s.negatives, s.ignored_ratings);
    /* 4 items: round(2.8) = 3 train, round(0.4) = 0 val, 1 test. */
    NU_CHECK(s.split_items[0] == 3 && s.split_items[1] == 0 && s.split_items[2] == 1,
             "split %zu/%zu/%zu", s.split_items[0], s.split_items[1], s.split_items[2]);
    check_file(out, "users.txt", "u4\nu1\nu2\nu3\n");
    check_file(out, "vocab_genres.txt", "<unk>\nAction\nComedy\nDrama\n");
    check_file(out, "vocab_year.txt", "<unk>\n1980s\n1990s\n2000s\n");
    check_file(out, "vocab_tags.txt", "<unk>\nfunny\n"); /* dark and "dark, gritty": 1 item */
    check_file(out, "data.json",
               "{\"format\": \"nextuser-data-1\", \"num_users\": 4, \"num_items\": 4,\n"
               " \"prefix_fields\": [{\"name\": \"genres\", \"kind\": \"multi\", \"vocab\": 4},\n"
               "  {\"name\": \"year\", \"kind\": \"categorical\", \"vocab\": 4},\n"
               "  {\"name\": \"tags\", \"kind\": \"multi\", \"vocab\": 2}],\n"
               " \"seed\": 1,\n"
               " \"source\": \"prepare movielens: pos >= 4, neg <= 2, split 0.7/0.1/0.2\"}\n");
    check_has(out, "items.jsonl",
              "\"features\": {\"genres\": [\"Action\", \"Comedy\"], \"year\": \"1990s\", "
              "\"tags\": [\"funny\"]}, \"positives\": [[\"u4\", 90], [\"u2\", 90], [\"u1\", 100]], "
              "\"negatives\": [[\"u3\", 95]]}\n");
    check_has(out, "items.jsonl",
              "\"features\": {\"genres\": [\"Drama\"], \"year\": \"2000s\", \"tags\": []}, "
              "\"positives\": [[\"u3\", 70]], \"negatives\": [[\"u2\", 60]]}\n");
    check_has(out, "items.jsonl",
              "\"features\": {\"genres\": [], \"year\": \"<unk>\", \"tags\": [\"funny\"]}, "
              "\"positives\": [[\"u4\", 10]], \"negatives\": []}\n");
    check_has(out, "items.jsonl", "{\"id\": \"m40\", \"split\": ");
    check_has(out, "items.jsonl",
              "\"features\": {\"genres\": [\"Comedy\"], \"year\": \"1980s\", \"tags\": []}, "
              "\"positives\": [], \"negatives\": []}\n");

    nu_dataset ds;
    NU_CHECK(nu_dataset_load(out, &ds) == NU_OK, "output loads: %s", nu_last_error());
    if (ds.num_items == 4) {
        NU_CHECK(ds.cfg.num_users == 4 && ds.cfg.n_prefix == 3, "loaded config");
        NU_CHECK(nu_dataset_n_pos(&ds, 0) == 3 && ds.pos.user[ds.pos.off[0]] == 0 &&
                     ds.pos.user[ds.pos.off[0] + 1] == 2,
                 "m10's positives by time, ties by user row");
        NU_CHECK(ds.feats.unknown_values == 0, "every feature value is in its vocabulary");
    }
    nu_dataset_free(&ds);

    /* Same seed, same bytes; the split comes from the seed. */
    char *first = slurp(out, "items.jsonl");
    NU_CHECK(nu_prepare(&p, out, &s) == NU_OK, "prepare again: %s", nu_last_error());
    char *second = slurp(out, "items.jsonl");
    NU_CHECK(first && second && !strcmp(first, second), "same seed, same output");
    free(first);
    free(second);
    rm_out(out);
}

/* 100 items: exact 70/10/20 split, reproducible, and seed-dependent. */
static void split_of(nu_prepare_params *p, const char *out, char *split)
{
    nu_dataset ds;
    nu_prepare_summary s;
    memset(split, 0, 100);
    NU_CHECK(nu_prepare(p, out, &s) == NU_OK, "prepare: %s", nu_last_error());
    NU_CHECK(s.split_items[0] == 70 && s.split_items[1] == 10 && s.split_items[2] == 20,
             "split %zu/%zu/%zu", s.split_items[0], s.split_items[1], s.split_items[2]);
    if (nu_dataset_load(out, &ds) != NU_OK) {
        NU_CHECK(0, "load: %s", nu_last_error());
        return;
    }
    for (size_t i = 0; i < ds.num_items && i < 100; i++)
        split[i] = (char)('0' + ds.split[i]);
    nu_dataset_free(&ds);
    rm_out(out);
}

static void test_split(void)
{
    char out[256], text[8192], a[100], b[100], c[100];
    snprintf(out, sizeof out, "%s/split", base);
    size_t n = (size_t)snprintf(text, sizeof text, "movieId,title,genres\n");
    for (int i = 1; i <= 100; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%d,M%d (19%02d),Drama\n", i, i, i % 100);
    put("movies100.csv", text);
    put("ratings1.csv", "userId,movieId,rating,timestamp\n1,5,5,1\n");
    nu_prepare_params p;
    nu_prepare_defaults(&p);
    p.ratings = in("ratings1.csv");
    p.items = in("movies100.csv");
    p.seed = 7;
    split_of(&p, out, a);
    split_of(&p, out, b);
    p.seed = 8;
    split_of(&p, out, c);
    NU_CHECK(!memcmp(a, b, 100), "same seed, same split");
    NU_CHECK(memcmp(a, c, 100), "another seed, another split");
}

/* Runs prepare on ratings text `r`; checks the error names `where`. */
static void expect_error(const char *r, const char *where, const char *what, int skip)
{
    char out[256];
    snprintf(out, sizeof out, "%s/bad", base);
    put("bad.csv", r);
    nu_prepare_params p;
    nu_prepare_defaults(&p);
    p.ratings = in("bad.csv");
    p.items = in("movies.csv");
    nu_prepare_summary s;
    nu_status st = nu_prepare(&p, out, &s);
    const char *msg = nu_last_error();
    NU_CHECK(st != NU_OK && strstr(msg, where) && strstr(msg, what),
             "error should name %s and say %s: %s", where, what, msg);
    NU_CHECK(access(out, F_OK) != 0, "nothing written on error");
    if (!skip)
        return;
    p.skip_bad = 1;
    st = nu_prepare(&p, out, &s);
    NU_CHECK(st == NU_OK && s.skipped_rows == 1 && strstr(s.first_bad, where),
             "skip-bad counts the row (%s): %zu skipped, first %s", nu_last_error(),
             s.skipped_rows, s.first_bad);
    rm_out(out);
}

static void test_malformed(void)
{
    put("movies.csv", movies);
    const char *h = "userId,movieId,rating,timestamp\n1,10,5.0,100\n";
    char r[512];
    snprintf(r, sizeof r, "%s2,10,4.0\n", h);
    expect_error(r, "bad.csv:3:", "columns", 1);
    snprintf(r, sizeof r, "%s2,10,good,7\n", h);
    expect_error(r, "bad.csv:3:", "bad rating", 1);
    snprintf(r, sizeof r, "%s2,x10,4,7\n", h);
    expect_error(r, "bad.csv:3:", "bad item id", 1);
    snprintf(r, sizeof r, "%s2,10,4,7.5\n", h);
    expect_error(r, "bad.csv:3:", "bad timestamp", 1);
    snprintf(r, sizeof r, "%s2,99,4,7\n", h);
    expect_error(r, "bad.csv:3:", "unknown item m99", 1);
    expect_error("", "bad.csv:1:", "empty", 0);
    expect_error("userId,movieId,rating,timestamp\n", "bad.csv", "no positive", 0);
    /* A malformed items file names its own line. */
    put("ratings.csv", ratings);
    put("movies_bad.csv", "movieId,title,genres\n10,Alpha (1995)\n");
    nu_prepare_params p;
    nu_prepare_defaults(&p);
    p.ratings = in("ratings.csv");
    p.items = in("movies_bad.csv");
    char out[256];
    snprintf(out, sizeof out, "%s/bad", base);
    NU_CHECK(nu_prepare(&p, out, NULL) != NU_OK && strstr(nu_last_error(), "movies_bad.csv:2:"),
             "items error names file:line: %s", nu_last_error());
}

static void test_csv(void)
{
    char out[256];
    snprintf(out, sizeof out, "%s/csv", base);
    put("log.csv", "user,item,timestamp,signal\n"
                   "alice,x1,5,positive\n"
                   "bob,x1,3,exposed\n"
                   "carol,x1,4,4.5\n"
                   "dave,x2,1,3.0\n"
                   "bob,x2,2,1\n");
    nu_prepare_params p;
    nu_prepare_defaults(&p);
    p.ratings = in("log.csv");
    p.format = NU_PREP_CSV;
    nu_prepare_summary s;
    NU_CHECK(nu_prepare(&p, out, &s) == NU_OK, "csv prepare: %s", nu_last_error());
    NU_CHECK(s.users == 3 && s.items == 2 && s.positives == 2 && s.negatives == 2 &&
                 s.ignored_ratings == 1,
             "csv summary %zu %zu %zu %zu", s.users, s.items, s.positives, s.negatives);
    check_file(out, "users.txt", "alice\nbob\ncarol\n");
    check_has(out, "items.jsonl",
              "\"features\": {\"genres\": [], \"year\": \"<unk>\"}, \"positives\": [[\"carol\", "
              "4], [\"alice\", 5]], \"negatives\": [[\"bob\", 3]]}\n");
    nu_dataset ds;
    NU_CHECK(nu_dataset_load(out, &ds) == NU_OK, "csv output loads: %s", nu_last_error());
    nu_dataset_free(&ds);
    rm_out(out);
    put("log_bad.csv", "user,item,timestamp,signal\nalice,x1,5,liked\n");
    p.ratings = in("log_bad.csv");
    NU_CHECK(nu_prepare(&p, out, NULL) != NU_OK && strstr(nu_last_error(), "log_bad.csv:2:"),
             "csv bad signal names file:line: %s", nu_last_error());
}

/* A generic item-features file: fields in first-seen order, kinds from the
 * values, vocabularies of the rated items only, a quoted CSV field. */
static const char *const feature_log =
    "user,item,timestamp,signal\n"
    "u1,a,1,positive\n"
    "u2,b,2,positive\n"
    "u1,c,3,positive\n"
    "u3,d,4,positive\n"
    "u2,e,5,exposed\n";
/* b repeats Drama (kept once); z is not rated (its Horror and studio=X add
 * the field, not the values); c has no values; e's <unk> means none; d has
 * no row. */
static const char *const feature_items =
    "item,features\n"
    "b,\"genre=Drama|lang=en, fr|genre=Comedy|genre=Drama\"\n"
    "a,genre=Action|lang=en\n"
    "\n"
    "z,genre=Horror|studio=X\n"
    "c,\n"
    "e,lang=<unk>\n";

static nu_prepare_params feature_params(const char *items)
{
    nu_prepare_params p;
    nu_prepare_defaults(&p);
    p.format = NU_PREP_CSV;
    p.ratings = in("flog.csv");
    p.item_features = in(items);
    return p;
}

static void test_item_features(void)
{
    char out[256];
    snprintf(out, sizeof out, "%s/feat", base);
    put("flog.csv", feature_log);
    put("fitems.csv", feature_items);
    nu_prepare_params p = feature_params("fitems.csv");
    nu_prepare_summary s;
    NU_CHECK(nu_prepare(&p, out, &s) == NU_OK, "item features: %s", nu_last_error());
    NU_CHECK(s.users == 3 && s.items == 5 && s.positives == 4 && s.negatives == 1 &&
                 s.unused_feature_rows == 1 && s.n_fields == 3,
             "summary: %zu users %zu items %zu pos %zu neg %zu unused rows %zu fields", s.users,
             s.items, s.positives, s.negatives, s.unused_feature_rows, s.n_fields);
    check_file(out, "data.json",
               "{\"format\": \"nextuser-data-1\", \"num_users\": 3, \"num_items\": 5,\n"
               " \"prefix_fields\": [{\"name\": \"genre\", \"kind\": \"multi\", \"vocab\": 4},\n"
               "  {\"name\": \"lang\", \"kind\": \"categorical\", \"vocab\": 3},\n"
               "  {\"name\": \"studio\", \"kind\": \"categorical\", \"vocab\": 1}],\n"
               " \"seed\": 1,\n"
               " \"source\": \"prepare csv: pos >= 4, neg <= 2, split 0.7/0.1/0.2\"}\n");
    check_file(out, "vocab_genre.txt", "<unk>\nAction\nComedy\nDrama\n");
    check_file(out, "vocab_lang.txt", "<unk>\nen\nen, fr\n");
    check_file(out, "vocab_studio.txt", "<unk>\n");
    check_file(out, "users.txt", "u1\nu2\nu3\n");
    static const char *const want[] = {
        "{\"id\": \"a\", \"split\": \"", "\"features\": {\"genre\": [\"Action\"], \"lang\": \"en\", "
        "\"studio\": \"<unk>\"}, \"positives\": [[\"u1\", 1]], \"negatives\": []}\n",
        "{\"id\": \"b\", \"split\": \"", "\"features\": {\"genre\": [\"Comedy\", \"Drama\"], "
        "\"lang\": \"en, fr\", \"studio\": \"<unk>\"}, \"positives\": [[\"u2\", 2]]",
        "{\"id\": \"c\", \"split\": \"", "\"features\": {\"genre\": [], \"lang\": \"<unk>\", "
        "\"studio\": \"<unk>\"}, \"positives\": [[\"u1\", 3]]",
        "{\"id\": \"d\", \"split\": \"", "\"features\": {\"genre\": [], \"lang\": \"<unk>\", "
        "\"studio\": \"<unk>\"}, \"positives\": [[\"u3\", 4]]",
        "{\"id\": \"e\", \"split\": \"", "\"features\": {\"genre\": [], \"lang\": \"<unk>\", "
        "\"studio\": \"<unk>\"}, \"positives\": [], \"negatives\": [[\"u2\", 5]]}\n"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        check_has(out, "items.jsonl", want[i]);
    char *items = slurp(out, "items.jsonl");
    NU_CHECK(items && !strstr(items, "Horror") && !strstr(items, "\"z\""),
             "the unrated item z is not an item");
    free(items);
    nu_dataset ds;
    NU_CHECK(nu_dataset_load(out, &ds) == NU_OK, "item-features output loads: %s",
             nu_last_error());
    if (ds.num_items == 5)
        NU_CHECK(ds.cfg.n_prefix == 3 && ds.feats.unknown_values == 0,
                 "loaded: %zu fields, %zu unknown values", ds.cfg.n_prefix,
                 ds.feats.unknown_values);
    nu_dataset_free(&ds);
    rm_out(out);

    /* One source of features: with movies.csv or a MovieLens format it is refused. */
    p.items = in("movies.csv");
    NU_CHECK(nu_prepare(&p, out, NULL) == NU_ERR_INVALID_ARG, "item features with items");
    p = feature_params("fitems.csv");
    p.format = NU_PREP_MOVIELENS;
    NU_CHECK(nu_prepare(&p, out, NULL) == NU_ERR_INVALID_ARG, "item features need csv");
    NU_CHECK(access(out, F_OK) != 0, "nothing written on a refused combination");
}

/* An item-features file `text`: the error names items_bad.csv:`where` and
 * says `what`, and nothing is written. */
static void expect_feature_error(const char *text, const char *where, const char *what)
{
    char out[256];
    snprintf(out, sizeof out, "%s/feat_bad", base);
    put("items_bad.csv", text);
    nu_prepare_params p = feature_params("items_bad.csv");
    nu_status st = nu_prepare(&p, out, NULL);
    const char *msg = nu_last_error();
    NU_CHECK(st != NU_OK && strstr(msg, where) && strstr(msg, what),
             "error should name %s and say %s: %s", where, what, msg);
    NU_CHECK(access(out, F_OK) != 0, "nothing written on error (%s)", what);
}

static void test_item_features_malformed(void)
{
    put("flog.csv", feature_log);
    const char *h = "item,features\na,genre=Action\n";
    char t[2048];
    snprintf(t, sizeof t, "%sb,gen re=Drama\n", h);
    expect_feature_error(t, "items_bad.csv:3:", "field name \"gen re\"");
    snprintf(t, sizeof t, "%sb,genre=Drama|year.x=1990\n", h);
    expect_feature_error(t, "items_bad.csv:3:", "field name \"year.x\"");
    snprintf(t, sizeof t, "%sb,=Drama\n", h);
    expect_feature_error(t, "items_bad.csv:3:", "field name \"\"");
    snprintf(t, sizeof t, "%sb,genre=Drama|Comedy\n", h);
    expect_feature_error(t, "items_bad.csv:3:", "\"Comedy\" is not field=value");
    snprintf(t, sizeof t, "%sc,genre=Crime\nb,genre=Drama\na,genre=War\n", h);
    expect_feature_error(t, "items_bad.csv:5:", "item a listed twice (also on line 2)");
    snprintf(t, sizeof t, "%sb,genre=Dra\tma\n", h);
    expect_feature_error(t, "items_bad.csv:3:", "value of field genre has a tab");
    snprintf(t, sizeof t, "%sb,\"genre=Dra\rma\"\n", h);
    expect_feature_error(t, "items_bad.csv:3:", "value of field genre has a tab or line break");
    snprintf(t, sizeof t, "%sb,genre=\n", h);
    expect_feature_error(t, "items_bad.csv:3:", "field genre has an empty value");
    snprintf(t, sizeof t, "%sb,genre=Drama|\n", h);
    expect_feature_error(t, "items_bad.csv:3:", "empty field=value pair");
    snprintf(t, sizeof t, "%sb,genre=Drama,x\n", h);
    expect_feature_error(t, "items_bad.csv:3:", "expected 2 columns");
    snprintf(t, sizeof t, "%sb,\"genre=Drama\n", h);
    expect_feature_error(t, "items_bad.csv:3:", "unterminated quote");
    expect_feature_error("item,title,features\n", "items_bad.csv:1:", "expected 2");
    expect_feature_error("", "items_bad.csv:1:", "empty file");
    expect_feature_error("item,features\n", "items_bad.csv", "no item rows");
    /* At most NU_MAX_FIELDS fields: the 17th is named with its line. */
    size_t n = (size_t)snprintf(t, sizeof t, "item,features\na,f0=x");
    for (int f = 1; f < NU_MAX_FIELDS; f++)
        n += (size_t)snprintf(t + n, sizeof t - n, "|f%d=x", f);
    snprintf(t + n, sizeof t - n, "\nb,f3=y\nc,f0=z|extra=1\n");
    expect_feature_error(t, "items_bad.csv:4:", "field extra would be prefix field 17");
    /* Exactly NU_MAX_FIELDS fields are fine. */
    t[n] = 0;
    put("items16.csv", t);
    char out[256];
    snprintf(out, sizeof out, "%s/feat16", base);
    nu_prepare_params p = feature_params("items16.csv");
    nu_prepare_summary s;
    NU_CHECK(nu_prepare(&p, out, &s) == NU_OK && s.n_fields == NU_MAX_FIELDS,
             "%d fields: %s", NU_MAX_FIELDS, nu_last_error());
    rm_out(out);
    /* --skip-bad skips a bad row whole: none of its pairs are kept. */
    put("items_skip.csv", "item,features\na,genre=Action\nb,genre=Drama|lang=\nc,lang=fr\n");
    p = feature_params("items_skip.csv");
    p.skip_bad = 1;
    snprintf(out, sizeof out, "%s/feat_skip", base);
    NU_CHECK(nu_prepare(&p, out, &s) == NU_OK && s.skipped_rows == 1 &&
                 strstr(s.first_bad, "items_skip.csv:3:"),
             "skip-bad counts the bad features row: %s", nu_last_error());
    check_file(out, "vocab_genre.txt", "<unk>\nAction\n");
    check_file(out, "vocab_lang.txt", "<unk>\nfr\n");
    rm_out(out);
}

/* The shared MovieLens latest-small copy, when present. */
static void test_ml_latest_small(void)
{
    char root[512], dir[600], r[700], m[700], t[700], out[256];
    const char *env = getenv("NU_SHARED_DATA");
    if (env)
        snprintf(root, sizeof root, "%s", env);
    else {
        /* ../shared/data relative to the repository root (this file's ../..). */
        snprintf(root, sizeof root, "%s", __FILE__);
        char *cut = strstr(root, "/tests/test_unit_prepare.c");
        if (cut)
            strcpy(cut, "/../shared/data");
        else
            snprintf(root, sizeof root, "../shared/data");
    }
    snprintf(dir, sizeof dir, "%s/ml-latest-small", root);
    snprintf(r, sizeof r, "%s/ratings.csv", dir);
    snprintf(m, sizeof m, "%s/movies.csv", dir);
    snprintf(t, sizeof t, "%s/tags.csv", dir);
    if (access(r, R_OK) || access(m, R_OK) || access(t, R_OK)) {
        printf("SKIP ml-latest-small: %s not found (set NU_SHARED_DATA)\n", dir);
        return;
    }
    snprintf(out, sizeof out, "%s/ml", base);
    nu_prepare_params p;
    nu_prepare_defaults(&p);
    p.ratings = r;
    p.items = m;
    p.tags = t;
    nu_prepare_summary s;
    NU_CHECK(nu_prepare(&p, out, &s) == NU_OK, "ml-latest-small: %s", nu_last_error());
    /* Known counts: 610 users, 9742 movies, 48580 ratings >= 4, 13523 <= 2. */
    NU_CHECK(s.users == 610 && s.items == 9742 && s.positives == 48580 &&
                 s.negatives == 13523 && s.skipped_rows == 0,
             "ml-latest-small: %zu users, %zu items, %zu pos, %zu neg", s.users, s.items,
             s.positives, s.negatives);
    NU_CHECK(s.positives + s.negatives + s.ignored_ratings == 100836, "every rating accounted");
    size_t genres = vocab_of(&s, "genres"), years = vocab_of(&s, "year"), tags = vocab_of(&s, "tags");
    NU_CHECK(s.n_fields == 3 && genres >= 19 && years >= 10 && tags > 100,
             "vocabularies %zu %zu %zu", genres, years, tags);
    nu_dataset ds;
    NU_CHECK(nu_dataset_load(out, &ds) == NU_OK, "ml output loads: %s", nu_last_error());
    NU_CHECK(ds.feats.unknown_values == 0, "no unknown feature values");
    nu_dataset_free(&ds);
    printf("ml-latest-small: %zu users, %zu items (%zu/%zu/%zu), %zu positives, %zu negatives\n",
           s.users, s.items, s.split_items[0], s.split_items[1], s.split_items[2], s.positives,
           s.negatives);
    rm_out(out);
}

int main(void)
{
    snprintf(base, sizeof base, "/tmp/nu_prepare_test_%d", (int)getpid());
    if (mkdir(base, 0755)) {
        perror(base);
        return 2;
    }
    test_movielens();
    test_split();
    test_malformed();
    test_csv();
    test_item_features();
    test_item_features_malformed();
    test_ml_latest_small();
    static const char *const inputs[] = {"movies.csv", "ratings.csv", "tags.csv", "movies100.csv",
                                         "ratings1.csv", "bad.csv", "movies_bad.csv", "log.csv",
                                         "log_bad.csv", "flog.csv", "fitems.csv",
                                         "items_bad.csv", "items16.csv", "items_skip.csv"};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        unlink(in(inputs[i]));
    rmdir(base);
    return nu_test_finish("unit_prepare");
}
