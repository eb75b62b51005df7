#include "synthetic.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "io/atomic_dir.h"
#include "io/atomic_file.h"
#include "util/path.h"
#include "util/rng.h"

#define T0 1600000000ll        /* start of the synthetic timeline (unix seconds) */
#define SPAN 31536000ll        /* one year */
#define LIFE (SPAN / 5)        /* an item's engagement window */
#define N_YEARS 6
#define DENSE_DIM 8
static const char *const years[N_YEARS] = {"1970s", "1980s", "1990s", "2000s", "2010s", "2020s"};

void nu_synth_defaults(nu_synth_params *p)
{
    memset(p, 0, sizeof *p);
    p->groups = 8;
    p->pos_mean = 20;
    p->neg_mean = 10;
    p->max_users = 50;
    p->train_frac = 0.7;
    p->val_frac = 0.1;
    p->in_group = 0.9;
    p->drift = 0.2;
    p->seed = 1;
}

nu_status nu_synth_check(const nu_synth_params *p)
{
    if (p->users < 1 || p->users >= 0xffffffffu)
        return nu_error(NU_ERR_INVALID_ARG, "users must be in [1, 2^32 - 1)");
    if (p->items < 1 || p->items >= 0xffffffffu)
        return nu_error(NU_ERR_INVALID_ARG, "items must be in [1, 2^32 - 1)");
    if (p->groups < 1 || p->groups > p->users || p->groups > 100000)
        return nu_error(NU_ERR_INVALID_ARG, "groups (%zu) must be in [1, min(users, 100000)]",
                        p->groups);
    if (!(p->pos_mean >= 1 && p->pos_mean <= 1e6))
        return nu_error(NU_ERR_INVALID_ARG, "mean positives per item must be in [1, 1e6]");
    if (p->neg_mean > 1000000 || p->max_users < 1)
        return nu_error(NU_ERR_INVALID_ARG, "negatives per item <= 1e6 and max_users >= 1");
    if (!(p->train_frac >= 0 && p->val_frac >= 0 && p->train_frac + p->val_frac <= 1))
        return nu_error(NU_ERR_INVALID_ARG, "split fractions must be >= 0 and sum to <= 1");
    if (!(p->in_group >= 0 && p->drift >= 0 && p->in_group <= 1 && p->drift <= p->in_group))
        return nu_error(NU_ERR_INVALID_ARG, "need 0 <= drift <= in_group <= 1");
    if (!(p->activity_skew >= 0 && p->activity_skew <= 10))
        return nu_error(NU_ERR_INVALID_ARG, "activity skew must be in [0, 10]");
    return NU_OK;
}

/* ---- generator state ---- */

typedef struct pair { int64_t t; uint32_t u; } pair;

typedef struct gen {
    const nu_synth_params *p;
    size_t G, n_genres, n_tags;
    uint32_t *ugroup, *igroup; /* group of each user / item */
    uint32_t *gusers;          /* users sorted by group */
    size_t *goff;              /* G + 1 offsets into gusers */
    uint32_t *mark;            /* per user: last item (+1) that used it */
    uint8_t *split;
    double *centroid;          /* G x DENSE_DIM */
    pair *pos, *neg;           /* per-item buffers */
    size_t pos_cap, neg_cap;
} gen;

static nu_random stream(uint64_t seed, uint64_t tag, uint64_t index)
{
    nu_random r = {seed ^ (tag * 0xd1b54a32d192ed03ull) ^ (index * 0x9e3779b97f4a7c15ull)};
    nu_random_next(&r); /* decorrelate neighbouring states */
    return r;
}

static void shuffle(uint32_t *a, size_t n, nu_random *r)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)nu_random_below(r, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* Balanced random groups: a seeded permutation dealt round-robin. */
static int assign_groups(uint32_t *group, size_t n, size_t G, nu_random *r)
{
    uint32_t *perm = malloc(n * sizeof *perm);
    if (!perm)
        return 0;
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    shuffle(perm, n, r);
    for (size_t i = 0; i < n; i++)
        group[perm[i]] = (uint32_t)(i % G);
    free(perm);
    return 1;
}

static void free_gen(gen *g)
{
    free(g->ugroup);
    free(g->igroup);
    free(g->gusers);
    free(g->goff);
    free(g->mark);
    free(g->split);
    free(g->centroid);
    free(g->pos);
    free(g->neg);
}

static nu_status setup(gen *g, const nu_synth_params *p)
{
    memset(g, 0, sizeof *g);
    g->p = p;
    g->G = p->groups;
    g->n_genres = 2 * g->G + 4;
    g->n_tags = 4 * g->G + 16;
    size_t U = p->users, I = p->items, G = g->G;
    g->ugroup = malloc(U * sizeof *g->ugroup);
    g->igroup = malloc(I * sizeof *g->igroup);
    g->gusers = malloc(U * sizeof *g->gusers);
    g->goff = calloc(G + 1, sizeof *g->goff);
    g->mark = calloc(U, sizeof *g->mark);
    g->split = malloc(I);
    g->centroid = malloc(G * DENSE_DIM * sizeof *g->centroid);
    uint32_t *perm = malloc(I * sizeof *perm);
    nu_random r = stream(p->seed, 1, 0);
    int ok = g->ugroup && g->igroup && g->gusers && g->goff && g->mark && g->split &&
             g->centroid && perm && assign_groups(g->ugroup, U, G, &r) &&
             assign_groups(g->igroup, I, G, &r);
    if (!ok) {
        free(perm);
        free_gen(g);
        return nu_error(NU_ERR_NOMEM, "out of memory for %zu users and %zu items", U, I);
    }
    for (size_t u = 0; u < U; u++)
        g->goff[g->ugroup[u] + 1]++;
    for (size_t k = 0; k < G; k++)
        g->goff[k + 1] += g->goff[k];
    size_t *fill = calloc(G, sizeof *fill);
    if (!fill) {
        free(perm);
        free_gen(g);
        return nu_error(NU_ERR_NOMEM, "out of memory");
    }
    for (size_t u = 0; u < U; u++)
        g->gusers[g->goff[g->ugroup[u]] + fill[g->ugroup[u]]++] = (uint32_t)u;
    free(fill);
    for (size_t i = 0; i < G * DENSE_DIM; i++)
        g->centroid[i] = nu_random_normal(&r);
    /* Exact split sizes: the first train_frac of a permutation, then val. */
    for (size_t i = 0; i < I; i++)
        perm[i] = (uint32_t)i;
    shuffle(perm, I, &r);
    size_t n_train = (size_t)llround(p->train_frac * (double)I);
    size_t n_val = (size_t)llround(p->val_frac * (double)I);
    if (n_train + n_val > I)
        n_val = I - n_train;
    for (size_t i = 0; i < I; i++)
        g->split[perm[i]] = i < n_train ? 0 : i < n_train + n_val ? 1 : 2;
    free(perm);
    return NU_OK;
}

/* A user of `group` (or anyone when group < 0) not yet used by this item.
 * Random tries first; then a scan from a random start, which always ends
 * because callers never ask for more users than exist. */
/* One of n candidates: uniform, or skewed toward the first ones. */
static size_t draw_index(const gen *g, size_t n, nu_random *r)
{
    if (g->p->activity_skew <= 0)
        return (size_t)nu_random_below(r, n);
    size_t j = (size_t)((double)n * pow(nu_random_unit(r), 1.0 + g->p->activity_skew));
    return j < n ? j : n - 1;
}

static uint32_t pick_user(gen *g, long group, uint32_t item_mark, nu_random *r)
{
    size_t U = g->p->users;
    for (int tries = 0; tries < 32; tries++) {
        uint32_t u;
        if (group >= 0) {
            size_t b = g->goff[group], n = g->goff[group + 1] - b;
            u = g->gusers[b + draw_index(g, n, r)];
        } else
            u = (uint32_t)draw_index(g, U, r);
        if (g->mark[u] != item_mark) {
            g->mark[u] = item_mark;
            return u;
        }
    }
    size_t u = (size_t)nu_random_below(r, U);
    while (g->mark[u] == item_mark)
        u = (u + 1) % U;
    g->mark[u] = item_mark;
    return (uint32_t)u;
}

static size_t count_positives(const gen *g, nu_random *r)
{
    const nu_synth_params *p = g->p;
    if (nu_random_unit(r) < 0.05)
        return 0;
    /* Lognormal with mean pos_mean: exp(mu + s^2 / 2) = pos_mean. */
    double s = 1.2, mu = log(p->pos_mean) - 0.5 * s * s;
    double x = ceil(exp(mu + s * nu_random_normal(r)));
    double cap = fmax(4.0 * (double)p->max_users, 20.0 * p->pos_mean);
    if (cap > (double)p->users)
        cap = (double)p->users;
    return (size_t)fmin(fmax(x, 1.0), cap);
}

static int cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->u < y->u ? -1 : x->u > y->u;
}

static int reserve(pair **p, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 1;
    pair *q = realloc(*p, n * sizeof *q);
    if (!q)
        return 0;
    *p = q;
    *cap = n;
    return 1;
}

/* Positives and negatives of item i into g->pos / g->neg, sorted. */
static nu_status interactions(gen *g, size_t i, nu_random *r, size_t *np, size_t *nn)
{
    const nu_synth_params *p = g->p;
    size_t G = g->G, grp = g->igroup[i];
    size_t m = count_positives(g, r);
    size_t n = p->neg_mean ? p->neg_mean / 2 + (size_t)nu_random_below(r, p->neg_mean + 1) : 0;
    if (n > p->users - m)
        n = p->users - m;
    if (!reserve(&g->pos, &g->pos_cap, m + 1) || !reserve(&g->neg, &g->neg_cap, n + 1))
        return nu_error(NU_ERR_NOMEM, "out of memory");
    int64_t release = T0 + (int64_t)nu_random_below(r, (uint64_t)(SPAN * 4 / 5));
    /* Engagement is front-loaded: offsets are LIFE * v^2. */
    double *x = malloc((m + 1) * sizeof *x);
    if (!x)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < m; k++) {
        double v = nu_random_unit(r);
        x[k] = v * v;
    }
    uint32_t mk = (uint32_t)i + 1;
    for (size_t k = 0; k < m; k++) {
        double c = nu_random_unit(r), own = p->in_group - p->drift * x[k];
        long from = c < own ? (long)grp : c < p->in_group ? (long)((grp + 1) % G) : -1;
        g->pos[k].t = release + (int64_t)(x[k] * (double)LIFE);
        g->pos[k].u = pick_user(g, from, mk, r);
    }
    free(x);
    for (size_t k = 0; k < n; k++) {
        /* Near a positive's time (within 2% of the lifetime), else anywhere. */
        int64_t base = m ? g->pos[nu_random_below(r, m)].t : release + (int64_t)nu_random_below(r, LIFE);
        int64_t t = base + (int64_t)nu_random_below(r, LIFE / 25) - LIFE / 50;
        g->neg[k].t = t < release ? release : t;
        long from = G > 1 ? (long)((grp + 1 + nu_random_below(r, G - 1)) % G) : -1;
        g->neg[k].u = pick_user(g, from, mk, r);
    }
    qsort(g->pos, m, sizeof *g->pos, cmp_pair);
    qsort(g->neg, n, sizeof *g->neg, cmp_pair);
    *np = m;
    *nn = n;
    return NU_OK;
}

/* ---- writing ---- */

static void write_list(FILE *f, const char *fmt, const size_t *vals, size_t n)
{
    fputc('[', f);
    for (size_t j = 0; j < n; j++) {
        fputs(j ? ", \"" : "\"", f);
        fprintf(f, fmt, vals[j]);
        fputc('"', f);
    }
    fputc(']', f);
}

/* Up to `most` distinct values: with probability `home` from the group's
 * `per` own values, else from the whole vocabulary of `total`. */
static size_t draw_values(nu_random *r, size_t grp, size_t per, size_t total, double home,
                          size_t most, size_t *out)
{
    size_t want = 1 + (size_t)nu_random_below(r, most), n = 0;
    for (size_t j = 0; j < want; j++) {
        size_t v = nu_random_unit(r) < home ? grp * per + (size_t)nu_random_below(r, per)
                                            : (size_t)nu_random_below(r, total);
        int dup = 0;
        for (size_t q = 0; q < n; q++)
            dup |= out[q] == v;
        if (!dup)
            out[n++] = v;
    }
    return n;
}

static void write_features(gen *g, FILE *f, size_t grp, nu_random *r)
{
    size_t vals[8], n;
    fputs("\"features\": {\"genres\": ", f);
    n = draw_values(r, grp, 2, g->n_genres, 0.8, 3, vals);
    write_list(f, "genre%02zu", vals, n);
    size_t y = nu_random_unit(r) < 0.6 ? grp % N_YEARS : (size_t)nu_random_below(r, N_YEARS);
    fprintf(f, ", \"year\": \"%s\"", years[y]);
    double t = nu_random_unit(r);
    if (t >= 0.05) { /* 5% of items lack tags altogether, 5% have an empty list */
        fputs(", \"tags\": ", f);
        n = t < 0.10 ? 0 : draw_values(r, grp, 4, g->n_tags, 0.6, 4, vals);
        write_list(f, "tag%03zu", vals, n);
    }
    fputs(", \"content\": [", f);
    for (size_t d = 0; d < DENSE_DIM; d++)
        fprintf(f, "%s%.4f", d ? ", " : "",
                g->centroid[grp * DENSE_DIM + d] + 0.5 * nu_random_normal(r));
    fputs("]}", f);
}

static void write_pairs(FILE *f, const char *key, const pair *ps, size_t n)
{
    fprintf(f, ", \"%s\": [", key);
    for (size_t k = 0; k < n; k++)
        fprintf(f, "%s[\"u%u\", %lld]", k ? ", " : "", ps[k].u, (long long)ps[k].t);
    fputc(']', f);
}

static const char *const split_names[3] = {"train", "val", "test"};

static nu_status write_items(gen *g, FILE *f, nu_synth_summary *sum)
{
    for (size_t i = 0; i < g->p->items; i++) {
        nu_random r = stream(g->p->seed, 2, i);
        size_t m = 0, n = 0;
        nu_status s = interactions(g, i, &r, &m, &n);
        if (s != NU_OK)
            return s;
        fprintf(f, "{\"id\": \"i%zu\", \"split\": \"%s\", ", i, split_names[g->split[i]]);
        write_features(g, f, g->igroup[i], &r);
        write_pairs(f, "positives", g->pos, m);
        write_pairs(f, "negatives", g->neg, n);
        fputs("}\n", f);
        sum->positives += m;
        sum->negatives += n;
        sum->split_items[g->split[i]]++;
        sum->empty_items += m == 0;
        sum->long_items += m > g->p->max_users;
    }
    return NU_OK;
}

static void write_vocab(FILE *f, const char *fmt, size_t n)
{
    fputs("<unk>\n", f);
    for (size_t v = 0; v < n; v++) {
        fprintf(f, fmt, v);
        fputc('\n', f);
    }
}

static void write_data_json(gen *g, FILE *f)
{
    const nu_synth_params *p = g->p;
    fprintf(f,
            "{\"format\": \"nextuser-data-1\", \"num_users\": %zu, \"num_items\": %zu,\n"
            " \"prefix_fields\": [{\"name\": \"genres\", \"kind\": \"multi\", \"vocab\": %zu},\n"
            "  {\"name\": \"year\", \"kind\": \"categorical\", \"vocab\": %d},\n"
            "  {\"name\": \"tags\", \"kind\": \"multi\", \"vocab\": %zu},\n"
            "  {\"name\": \"content\", \"kind\": \"dense\", \"dim\": %d}],\n"
            " \"seed\": %llu,\n"
            " \"source\": \"synth-data: users %zu, items %zu, groups %zu, pos_mean %g, "
            "neg_mean %zu, max_users %zu\"}\n",
            p->users, p->items, g->n_genres + 1, N_YEARS + 1, g->n_tags + 1, DENSE_DIM,
            (unsigned long long)p->seed, p->users, p->items, p->groups, p->pos_mean, p->neg_mean,
            p->max_users);
}

static void write_truth(gen *g, FILE *f)
{
    fprintf(f, "{\"groups\": %zu, \"drift_to\": \"(group + 1) %% groups\",\n \"user_group\": [",
            g->G);
    for (size_t u = 0; u < g->p->users; u++)
        fprintf(f, "%s%u", u ? "," : "", g->ugroup[u]);
    fputs("],\n \"item_group\": [", f);
    for (size_t i = 0; i < g->p->items; i++)
        fprintf(f, "%s%u", i ? "," : "", g->igroup[i]);
    fputs("]}\n", f);
}

enum { F_DATA, F_USERS, F_GENRES, F_YEAR, F_TAGS, F_ITEMS, F_TRUTH, F_COUNT };
static const char *const file_names[F_COUNT] = {"data.json", "users.txt", "vocab_genres.txt",
                                                "vocab_year.txt", "vocab_tags.txt",
                                                "items.jsonl", "truth.json"};

static nu_status write_one(gen *g, const char *dir, int which, nu_synth_summary *sum)
{
    char path[NU_PATH_MAX];
    nu_status s = nu_path_join(path, sizeof path, dir, file_names[which]);
    nu_atomic_file af;
    if (s == NU_OK)
        s = nu_atomic_open(path, &af);
    if (s != NU_OK)
        return s;
    FILE *f = af.fp;
    switch (which) {
    case F_DATA: write_data_json(g, f); break;
    case F_USERS:
        for (size_t u = 0; u < g->p->users; u++)
            fprintf(f, "u%zu\n", u);
        break;
    case F_GENRES: write_vocab(f, "genre%02zu", g->n_genres); break;
    case F_YEAR:
        fputs("<unk>\n", f);
        for (int y = 0; y < N_YEARS; y++)
            fprintf(f, "%s\n", years[y]);
        break;
    case F_TAGS: write_vocab(f, "tag%03zu", g->n_tags); break;
    case F_ITEMS: s = write_items(g, f, sum); break;
    default: write_truth(g, f); break;
    }
    return nu_atomic_finish(&af, s); /* the commit reports a write error the stream saw */
}

nu_status nu_synth_write(const nu_synth_params *p, const char *dir, nu_synth_summary *sum)
{
    nu_synth_summary local;
    if (!sum)
        sum = &local;
    memset(sum, 0, sizeof *sum);
    nu_status s = nu_synth_check(p);
    if (s != NU_OK)
        return s;
    if ((s = nu_atomic_dir_check(dir)) != NU_OK)
        return s; /* before generating anything */
    gen g;
    if ((s = setup(&g, p)) != NU_OK)
        return s;
    nu_atomic_dir ad;
    if ((s = nu_atomic_dir_begin(dir, &ad)) != NU_OK) {
        free_gen(&g);
        return s;
    }
    for (int w = 0; s == NU_OK && w < F_COUNT; w++)
        s = write_one(&g, ad.tmp, w, sum);
    free_gen(&g);
    if (s == NU_OK)
        s = nu_atomic_dir_commit(&ad);
    else
        nu_atomic_dir_abort(&ad);
    return s;
}
