#include "config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "util/json_strict.h"

void nu_config_defaults(nu_model_config *c)
{
    memset(c, 0, sizeof *c);
    c->d = 64;
    c->heads = 4;
    c->enc_layers = 2;
    c->dec_layers = 1;
    c->ffn = 256; /* 4 d; parsing sets 4 d for another d unless "ffn" is given */
    c->max_users = 50;
    c->tau = 0.1;
    c->use_cls = 1;
    c->ln_eps = 1e-5;
}

/* Sizes are whole numbers in [0, 2^31): anything else names the key. */
static nu_status get_size(const cJSON *root, const char *key, const char *origin, size_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v)
        return NU_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= 2147483648.0 ||
        v->valuedouble != floor(v->valuedouble))
        return nu_error(NU_ERR_INVALID_ARG, "%s: \"%s\" must be a whole number >= 0", origin, key);
    *out = (size_t)v->valuedouble;
    return NU_OK;
}

static nu_status get_double(const cJSON *root, const char *key, const char *origin, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v)
        return NU_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return nu_error(NU_ERR_INVALID_ARG, "%s: \"%s\" must be a finite number", origin, key);
    *out = v->valuedouble;
    return NU_OK;
}

static nu_status get_choice(const cJSON *root, const char *key, const char *origin,
                            const char *a, const char *b, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v)
        return NU_OK;
    if (cJSON_IsString(v) && strcmp(v->valuestring, a) == 0)
        *out = 0;
    else if (cJSON_IsString(v) && strcmp(v->valuestring, b) == 0)
        *out = 1;
    else
        return nu_error(NU_ERR_INVALID_ARG, "%s: \"%s\" must be \"%s\" or \"%s\"", origin, key, a, b);
    return NU_OK;
}

static nu_status parse_field(const cJSON *f, size_t i, const char *origin, nu_field_config *out)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(f, "kind");
    if (!cJSON_IsObject(f) || !cJSON_IsString(name) || !cJSON_IsString(kind))
        return nu_error(NU_ERR_INVALID_ARG,
                        "%s: prefix_fields[%zu] needs string \"name\" and \"kind\"", origin, i);
    size_t len = strlen(name->valuestring);
    /* Names go into tensor and file names: letters, digits, '_' and '-' only. */
    int ok = len > 0 && len < NU_FIELD_NAME_MAX;
    for (size_t j = 0; ok && j < len; j++) {
        char ch = name->valuestring[j];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '_' || ch == '-';
    }
    if (!ok)
        return nu_error(NU_ERR_INVALID_ARG,
                        "%s: prefix_fields[%zu].name \"%s\" must be 1..%d of [A-Za-z0-9_-]",
                        origin, i, name->valuestring, NU_FIELD_NAME_MAX - 1);
    memcpy(out->name, name->valuestring, len + 1);
    const char *k = kind->valuestring, *size_key;
    if (strcmp(k, "categorical") == 0) {
        out->kind = NU_FIELD_CATEGORICAL;
        size_key = "vocab";
    } else if (strcmp(k, "multi") == 0) {
        out->kind = NU_FIELD_MULTI;
        size_key = "vocab";
    } else if (strcmp(k, "dense") == 0) {
        out->kind = NU_FIELD_DENSE;
        size_key = "dim";
    } else {
        return nu_error(NU_ERR_INVALID_ARG,
                        "%s: prefix_fields[%zu].kind \"%s\" must be categorical, multi or dense",
                        origin, i, k);
    }
    char where[96];
    snprintf(where, sizeof where, "%s: prefix_fields[%zu]", origin, i);
    out->size = 0;
    nu_status s = get_size(f, size_key, where, &out->size);
    if (s == NU_OK && out->size == 0)
        s = nu_error(NU_ERR_INVALID_ARG, "%s.%s must be >= 1", where, size_key);
    return s;
}

static nu_status parse(const char *json, size_t len, const char *origin, nu_model_config *c,
                       int validate)
{
    nu_config_defaults(c);
    cJSON *root = NULL;
    nu_status s = nu_json_parse_strict(json, len, origin, NU_CONFIG_MAX_JSON_VALUES, &root, NULL);
    if (s != NU_OK)
        return s;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return nu_error(NU_ERR_FORMAT, "%s: not a JSON object", origin);
    }
    static const char *const known[] = {"d", "heads", "enc_layers", "dec_layers", "ffn",
                                        "max_users", "num_users", "prefix_fields",
                                        "similarity", "tau", "attention", "use_cls", "ln_eps",
                                        "prior_weight", "feature_prior_weight"};
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            ok |= strcmp(item->string, known[i]) == 0;
        if (!ok) {
            s = nu_error(NU_ERR_INVALID_ARG, "%s: unknown key \"%s\"", origin, item->string);
            break;
        }
    }
    if (s == NU_OK) s = get_size(root, "d", origin, &c->d);
    if (s == NU_OK) s = get_size(root, "heads", origin, &c->heads);
    if (s == NU_OK) s = get_size(root, "enc_layers", origin, &c->enc_layers);
    if (s == NU_OK) s = get_size(root, "dec_layers", origin, &c->dec_layers);
    if (s == NU_OK) s = get_size(root, "ffn", origin, &c->ffn);
    if (s == NU_OK) s = get_size(root, "max_users", origin, &c->max_users);
    if (s == NU_OK) s = get_size(root, "num_users", origin, &c->num_users);
    if (s == NU_OK) s = get_double(root, "tau", origin, &c->tau);
    if (s == NU_OK) s = get_double(root, "ln_eps", origin, &c->ln_eps);
    if (s == NU_OK) s = get_double(root, "prior_weight", origin, &c->prior_weight);
    if (s == NU_OK) s = get_double(root, "feature_prior_weight", origin, &c->feature_prior_weight);
    if (s == NU_OK) s = get_choice(root, "similarity", origin, "cosine", "dot", &c->similarity_dot);
    if (s == NU_OK) s = get_choice(root, "attention", origin, "causal", "bidirectional", &c->bidirectional);
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(root, "use_cls");
    if (s == NU_OK && cls) {
        if (!cJSON_IsBool(cls))
            s = nu_error(NU_ERR_INVALID_ARG, "%s: \"use_cls\" must be true or false", origin);
        else
            c->use_cls = cJSON_IsTrue(cls);
    }
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(root, "prefix_fields");
    if (s == NU_OK && fields) {
        if (!cJSON_IsArray(fields) || cJSON_GetArraySize(fields) > NU_MAX_FIELDS)
            s = nu_error(NU_ERR_INVALID_ARG, "%s: \"prefix_fields\" must be a list of at most %d fields",
                         origin, NU_MAX_FIELDS);
        const cJSON *f;
        size_t i = 0;
        if (s == NU_OK)
            cJSON_ArrayForEach(f, fields)
            {
                if (s != NU_OK)
                    break;
                s = parse_field(f, i, origin, &c->prefix[i]);
                i++;
            }
        c->n_prefix = i;
    }
    int has_ffn = cJSON_GetObjectItemCaseSensitive(root, "ffn") != NULL;
    cJSON_Delete(root);
    if (s == NU_OK && !has_ffn)
        c->ffn = 4 * c->d;
    return s == NU_OK && validate ? nu_config_validate(c, origin) : s;
}

nu_status nu_config_parse(const char *json, const char *origin, nu_model_config *c)
{
    return parse(json, strlen(json), origin, c, 1);
}

nu_status nu_config_validate(const nu_model_config *c, const char *origin)
{
    struct { const char *key; size_t v; } positive[] = {
        {"d", c->d}, {"heads", c->heads}, {"ffn", c->ffn},
        {"enc_layers", c->enc_layers}, {"dec_layers", c->dec_layers},
        {"max_users", c->max_users}, {"num_users", c->num_users},
    };
    for (size_t i = 0; i < sizeof positive / sizeof positive[0]; i++)
        if (positive[i].v == 0)
            return nu_error(NU_ERR_INVALID_ARG, "%s: \"%s\" must be >= 1", origin, positive[i].key);
    if (c->d % c->heads != 0)
        return nu_error(NU_ERR_INVALID_ARG, "%s: \"d\" (%zu) must be divisible by \"heads\" (%zu)",
                        origin, c->d, c->heads);
    if (c->d > NU_CONFIG_MAX_D || c->heads > c->d)
        return nu_error(NU_ERR_INVALID_ARG, "%s: \"d\" (%zu) must be at most %d and at least "
                        "\"heads\"", origin, c->d, NU_CONFIG_MAX_D);
    if (c->ffn > NU_CONFIG_MAX_FFN)
        return nu_error(NU_ERR_INVALID_ARG, "%s: \"ffn\" (%zu) must be at most %d", origin,
                        c->ffn, NU_CONFIG_MAX_FFN);
    if (c->enc_layers > NU_CONFIG_MAX_LAYERS || c->dec_layers > NU_CONFIG_MAX_LAYERS)
        return nu_error(NU_ERR_INVALID_ARG, "%s: at most %d encoder and decoder layers", origin,
                        NU_CONFIG_MAX_LAYERS);
    if (c->max_users > NU_CONFIG_MAX_CONTEXT)
        return nu_error(NU_ERR_INVALID_ARG, "%s: \"max_users\" (%zu) must be <= %d", origin,
                        c->max_users, NU_CONFIG_MAX_CONTEXT);
    if (c->num_users > NU_CONFIG_MAX_USERS)
        return nu_error(NU_ERR_INVALID_ARG, "%s: \"num_users\" (%zu) must be <= %u", origin,
                        c->num_users, (unsigned)NU_CONFIG_MAX_USERS);
    /* Every table is some rows of width d; each block a few d x d and
     * d x ffn matrices (an upper bound of the layout's total). */
    double rows = (double)c->num_users + 2 * (double)c->max_users + 16;
    for (size_t i = 0; i < c->n_prefix && i < NU_MAX_FIELDS; i++) {
        if (c->prefix[i].size > NU_CONFIG_MAX_SIZE)
            return nu_error(NU_ERR_INVALID_ARG, "%s: prefix_fields[%zu] has size %zu (at most %u)",
                            origin, i, c->prefix[i].size, (unsigned)NU_CONFIG_MAX_SIZE);
        rows += (double)c->prefix[i].size;
    }
    double d = (double)c->d, blocks = (double)(c->enc_layers + c->dec_layers);
    double params = rows * d + blocks * (5 * d * d + 2 * d * (double)c->ffn + 12 * d +
                                         (double)c->ffn);
    if (params > NU_CONFIG_MAX_PARAMS)
        return nu_error(NU_ERR_INVALID_ARG,
                        "%s: about %.3g parameters, more than the limit of 2^32 (16 GiB); "
                        "lower num_users, d or the vocabularies",
                        origin, params);
    if (!(c->tau > 0))
        return nu_error(NU_ERR_INVALID_ARG, "%s: \"tau\" must be > 0", origin);
    if (!(c->ln_eps > 0))
        return nu_error(NU_ERR_INVALID_ARG, "%s: \"ln_eps\" must be > 0", origin);
    if (!(c->prior_weight >= 0 && c->prior_weight <= 1000))
        return nu_error(NU_ERR_INVALID_ARG, "%s: \"prior_weight\" must be in [0, 1000]", origin);
    if (!(c->feature_prior_weight >= 0 && c->feature_prior_weight <= 1000))
        return nu_error(NU_ERR_INVALID_ARG, "%s: \"feature_prior_weight\" must be in [0, 1000]",
                        origin);
    for (size_t i = 0; i < c->n_prefix; i++) {
        if (c->prefix[i].size == 0)
            return nu_error(NU_ERR_INVALID_ARG, "%s: prefix_fields[%zu] has size 0", origin, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->prefix[i].name, c->prefix[j].name) == 0)
                return nu_error(NU_ERR_INVALID_ARG, "%s: prefix field name \"%s\" used twice",
                                origin, c->prefix[i].name);
    }
    return NU_OK;
}

char *nu_config_to_json(const nu_model_config *c)
{
    static const char *const kinds[] = {"categorical", "multi", "dense"};
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    cJSON_AddNumberToObject(root, "d", (double)c->d);
    cJSON_AddNumberToObject(root, "heads", (double)c->heads);
    cJSON_AddNumberToObject(root, "enc_layers", (double)c->enc_layers);
    cJSON_AddNumberToObject(root, "dec_layers", (double)c->dec_layers);
    cJSON_AddNumberToObject(root, "ffn", (double)c->ffn);
    cJSON_AddNumberToObject(root, "max_users", (double)c->max_users);
    cJSON_AddNumberToObject(root, "num_users", (double)c->num_users);
    cJSON *fields = cJSON_AddArrayToObject(root, "prefix_fields");
    for (size_t i = 0; i < c->n_prefix; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "name", c->prefix[i].name);
        cJSON_AddStringToObject(f, "kind", kinds[c->prefix[i].kind]);
        cJSON_AddNumberToObject(f, c->prefix[i].kind == NU_FIELD_DENSE ? "dim" : "vocab",
                                (double)c->prefix[i].size);
        cJSON_AddItemToArray(fields, f);
    }
    cJSON_AddStringToObject(root, "similarity", c->similarity_dot ? "dot" : "cosine");
    cJSON_AddNumberToObject(root, "tau", c->tau);
    cJSON_AddStringToObject(root, "attention", c->bidirectional ? "bidirectional" : "causal");
    cJSON_AddBoolToObject(root, "use_cls", c->use_cls);
    cJSON_AddNumberToObject(root, "ln_eps", c->ln_eps);
    if (c->prior_weight > 0) /* only when used: files without it stay as they were */
        cJSON_AddNumberToObject(root, "prior_weight", c->prior_weight);
    if (c->feature_prior_weight > 0)
        cJSON_AddNumberToObject(root, "feature_prior_weight", c->feature_prior_weight);
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

static nu_status load(const char *path, nu_model_config *out, int validate)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return nu_error(NU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = 2 * cap + 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return nu_error(NU_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, 4096, f);
        len += r;
        if (r < 4096)
            break;
        if (len > NU_CONFIG_MAX_BYTES) {
            free(buf);
            fclose(f);
            return nu_error(NU_ERR_FORMAT, "%s: more than %d bytes: not a model config", path,
                            NU_CONFIG_MAX_BYTES);
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return nu_error(NU_ERR_IO, "%s: read failed", path);
    }
    buf[len] = 0;
    nu_status s = parse(buf, len, path, out, validate);
    free(buf);
    return s;
}

nu_status nu_config_load(const char *path, nu_model_config *out) { return load(path, out, 1); }

nu_status nu_config_load_unchecked(const char *path, nu_model_config *out)
{
    return load(path, out, 0);
}

int nu_config_field_index(const nu_model_config *c, const char *name)
{
    for (size_t f = 0; f < c->n_prefix; f++)
        if (strcmp(c->prefix[f].name, name) == 0)
            return (int)f;
    return -1;
}
