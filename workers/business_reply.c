/*  business_reply.c - business API templates filled from entities and JSON answers. */
#include "workers/business_reply.h"
#include "common/json_codec.h"
#include "common/text_template.h"
#include <stdlib.h>
#include <string.h>

//  The entity named `name` (`len` bytes), or NULL when it is none or unknown
static const char *
s_entity (const kf_business_vars_t *vars, const char *name, size_t len)
{
    const struct { const char *name, *value; } entities [] = {
        { "order_no", vars->order_no }, { "phone", vars->phone }, { "user_id", vars->user_id },
        { "session_id", vars->session_id }, { "bot_id", vars->bot_id }
    };
    for (size_t i = 0; i < sizeof entities / sizeof entities [0]; i++)
        if (strlen (entities [i].name) == len && memcmp (entities [i].name, name, len) == 0)
            return entities [i].value && *entities [i].value ? entities [i].value : NULL;
    return NULL;
}

//  kf_template_lookup_fn over the entities alone
static const char *
s_lookup_entity (void *arg, const char *name, size_t len, size_t *value_len)
{
    const char *value = s_entity (arg, name, len);
    *value_len = value ? strlen (value) : 0;
    return value;
}

bool
kf_business_has_required (const kf_business_config_t *api, const kf_business_vars_t *vars)
{
    if (api->requires == 0)
        return true;
    return ((api->requires & KF_BUSINESS_NEEDS_ORDER_NO) && vars->order_no && *vars->order_no)
        || ((api->requires & KF_BUSINESS_NEEDS_PHONE) && vars->phone && *vars->phone);
}

char *
kf_business_url (const kf_business_config_t *api, const kf_business_vars_t *vars)
{
    return kf_template_fill (api->url, KF_TEMPLATE_URL, s_lookup_entity, (void *) vars, 0);
}

char *
kf_business_body (const kf_business_config_t *api, const kf_business_vars_t *vars)
{
    return kf_template_fill (api->body, KF_TEMPLATE_JSON, s_lookup_entity, (void *) vars, 0);
}

const msgpack_object *
kf_business_path (const msgpack_object *answer, const char *path, size_t len)
{
    const msgpack_object *at = answer;
    size_t i = 0;
    while (at && i < len) {
        size_t step = 0;
        while (i + step < len && path [i + step] != '.')
            step++;
        const char *key = path + i;
        const msgpack_object *next = NULL;
        if (at->type == MSGPACK_OBJECT_MAP) {
            for (uint32_t k = 0; k < at->via.map.size && !next; k++) {
                const msgpack_object *name = &at->via.map.ptr [k].key;
                if (name->type == MSGPACK_OBJECT_STR && name->via.str.size == step
                &&  memcmp (name->via.str.ptr, key, step) == 0)
                    next = &at->via.map.ptr [k].val;
            }
        }
        else
        if (at->type == MSGPACK_OBJECT_ARRAY && step > 0 && step < 10
        &&  strspn (key, "0123456789") >= step) {
            size_t index = (size_t) strtoul (key, NULL, 10);
            if (index < at->via.array.size)
                next = &at->via.array.ptr [index];
        }
        at = next;
        i += step + 1;                  //  Past the '.'
    }
    return at;
}

typedef struct {
    const msgpack_object *answer;
    const kf_business_vars_t *vars;
    char *rendered;             //  The last value rendered as JSON, freed at the next lookup
} s_reply_ctx_t;

//  kf_template_lookup_fn: the answer's value at the path, else the entity
static const char *
s_lookup_reply (void *arg, const char *name, size_t len, size_t *value_len)
{
    s_reply_ctx_t *ctx = arg;
    free (ctx->rendered);
    ctx->rendered = NULL;
    const msgpack_object *value = ctx->answer ? kf_business_path (ctx->answer, name, len) : NULL;
    if (value && value->type == MSGPACK_OBJECT_STR) {
        *value_len = value->via.str.size;
        return value->via.str.ptr;
    }
    if (value && value->type != MSGPACK_OBJECT_NIL) {
        ctx->rendered = kf_json_from_msgpack (value);
        *value_len = strlen (ctx->rendered);
        return ctx->rendered;
    }
    return s_lookup_entity ((void *) ctx->vars, name, len, value_len);
}

char *
kf_business_reply (const char *text, const msgpack_object *answer, const kf_business_vars_t *vars)
{
    s_reply_ctx_t ctx = { answer, vars, NULL };
    char *reply = kf_template_fill (text, KF_TEMPLATE_PLAIN, s_lookup_reply, &ctx,
                                    KF_BUSINESS_REPLY_MAX);
    free (ctx.rendered);
    return reply;
}
