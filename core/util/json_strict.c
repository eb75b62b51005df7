#include "util/json_strict.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "util/grow.h"

/* Scratch space for one object's members, reused across objects. */
typedef struct key_scratch {
    const cJSON **items;
    size_t cap;
} key_scratch;

static int cmp_member_keys(const void *a, const void *b)
{
    const cJSON *const *x = a, *const *y = b;
    return strcmp((*x)->string, (*y)->string);
}

static nu_status duplicate_error(const cJSON *obj, const char *key, const char *origin)
{
    const char *sep = origin ? ": " : "";
    if (obj->string)
        return nu_error(NU_ERR_FORMAT, "%s%skey \"%s\" appears twice (in \"%s\")",
                        origin ? origin : "", sep, key, obj->string);
    return nu_error(NU_ERR_FORMAT, "%s%skey \"%s\" appears twice", origin ? origin : "", sep, key);
}

/* Sorting the member pointers puts equal keys next to each other. */
static nu_status check_object(const cJSON *obj, const char *origin, key_scratch *ks)
{
    size_t n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, obj)
    {
        if (!m->string)
            return nu_error(NU_ERR_FORMAT, "%s%sobject member without a key", origin ? origin : "",
                            origin ? ": " : "");
        if (!nu_grow((void **)&ks->items, &ks->cap, n + 1, sizeof *ks->items))
            return nu_error(NU_ERR_NOMEM, "out of memory checking JSON keys");
        ks->items[n++] = m;
    }
    if (n < 2)
        return NU_OK;
    qsort(ks->items, n, sizeof *ks->items, cmp_member_keys);
    for (size_t i = 1; i < n; i++)
        if (strcmp(ks->items[i - 1]->string, ks->items[i]->string) == 0)
            return duplicate_error(obj, ks->items[i]->string, origin);
    return NU_OK;
}

/* cJSON's parser limits nesting (CJSON_NESTING_LIMIT), which bounds the
 * recursion here too. */
static nu_status check_value(const cJSON *v, const char *origin, key_scratch *ks)
{
    nu_status s = NU_OK;
    if (cJSON_IsObject(v))
        s = check_object(v, origin, ks);
    if (s != NU_OK || !(cJSON_IsObject(v) || cJSON_IsArray(v)))
        return s;
    const cJSON *child;
    cJSON_ArrayForEach(child, v)
    {
        s = check_value(child, origin, ks);
        if (s != NU_OK)
            break;
    }
    return s;
}

nu_status nu_json_check_unique_keys(const cJSON *root, const char *origin)
{
    key_scratch ks = {NULL, 0};
    nu_status s = root ? check_value(root, origin, &ks) : NU_OK;
    free(ks.items);
    return s;
}
