#include "plan/plan_results.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "util/json_strict.h"

/* The whole file PATH, NUL-terminated, into *out (free it). */
static nu_status read_file(const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return nu_error(NU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len - 1, f);
        if (len < cap - 1)
            break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb)
            free(buf);
        buf = nb;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf)
        return nu_error(NU_ERR_NOMEM, "%s: out of memory", path);
    if (err) {
        free(buf);
        return nu_error(NU_ERR_IO, "%s: read failed", path);
    }
    buf[len] = 0;
    *out = buf;
    return NU_OK;
}

nu_status nu_plan_read_json(const char *path, struct cJSON **root)
{
    char *text = NULL;
    *root = NULL;
    nu_status s = read_file(path, &text);
    if (s != NU_OK)
        return s;
    s = nu_json_parse_strict(text, strlen(text), path, 0, root, NULL);
    free(text);
    return s;
}

/* True for the entry that stands for its workload: the median aggregate, or
 * an entry that is not an aggregate at all. */
static int is_median(const cJSON *e)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "run_type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "aggregate") != 0)
        return 1;
    const cJSON *agg = cJSON_GetObjectItemCaseSensitive(e, "aggregate_name");
    return cJSON_IsString(agg) && strcmp(agg->valuestring, "median") == 0;
}

nu_status nu_plan_results_load(const char *path, nu_plan_results *out)
{
    memset(out, 0, sizeof *out);
    nu_status s = nu_plan_read_json(path, &out->root);
    if (s != NU_OK) {
        nu_plan_results_free(out);
        return s;
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(out->root, "benchmarks");
    if (!out->root || !cJSON_IsArray(list)) {
        nu_plan_results_free(out);
        return nu_error(NU_ERR_FORMAT,
                        "%s: not a result file of 'nextuser bench' (needs JSON with a "
                        "\"benchmarks\" list)", path);
    }
    size_t n = (size_t)cJSON_GetArraySize(list);
    out->names = calloc(n ? n : 1, sizeof *out->names);
    out->rows = calloc(n ? n : 1, sizeof *out->rows);
    if (!out->names || !out->rows) {
        nu_plan_results_free(out);
        return nu_error(NU_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t idx = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, list) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "run_name");
        if (!cJSON_IsString(name))
            name = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (!cJSON_IsString(name)) {
            nu_plan_results_free(out);
            return nu_error(NU_ERR_FORMAT, "%s: benchmarks[%zu] has no \"name\"", path, idx);
        }
        idx++;
        if (!is_median(e))
            continue;
        long at = nu_plan_results_find(out, name->valuestring);
        if (at >= 0)
            continue; /* repetitions: the first stands for the workload */
        out->names[out->count] = name->valuestring;
        out->rows[out->count++] = e;
    }
    return NU_OK;
}

void nu_plan_results_free(nu_plan_results *r)
{
    cJSON_Delete(r->root);
    free(r->names);
    free(r->rows);
    memset(r, 0, sizeof *r);
}

long nu_plan_results_find(const nu_plan_results *r, const char *name)
{
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->names[i], name) == 0)
            return (long)i;
    return -1;
}

int nu_plan_results_field(const nu_plan_results *r, size_t i, const char *key, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->rows[i], key);
    if (!cJSON_IsNumber(v))
        return 0;
    *out = v->valuedouble;
    return 1;
}

const char *nu_plan_results_context(const nu_plan_results *r, const char *key)
{
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(r->root, "context");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ctx, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
