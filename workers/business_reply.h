/*  business_reply.h - what a business API call says and what the customer reads: the call's URL
    and body from the [business] templates (config.h) and the entities of the turn, and the reply
    from the reply template and the API's JSON answer. Pure functions: no I/O, no logs. */
#ifndef KF_BUSINESS_REPLY_H
#define KF_BUSINESS_REPLY_H
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include "common/config.h"

#define KF_BUSINESS_REPLY_MAX 8192  //  Bytes of a reply at most (cut at a whole character)

//  The values the templates' entity placeholders take. Borrowed; NULL or "" is unknown (renders
//  as nothing, or as the placeholder's default).
typedef struct {
    const char *order_no;       //  From this message or an earlier one (entities.h, the slots)
    const char *phone;
    const char *user_id;
    const char *session_id;
    const char *bot_id;
} kf_business_vars_t;

//  Whether `vars` hold one of the entities `api` requires (any one; none required: true).
bool kf_business_has_required (const kf_business_config_t *api, const kf_business_vars_t *vars);

//  The URL to call: api->url with the entities URL-encoded. Heap string, the caller frees.
char *kf_business_url (const kf_business_config_t *api, const kf_business_vars_t *vars);

//  The POST body: api->body with the entities JSON-escaped. Heap string, the caller frees.
char *kf_business_body (const kf_business_config_t *api, const kf_business_vars_t *vars);

//  The value at `path` (`len` bytes: keys separated by '.', a decimal number picks an array
//  element) inside `answer`, or NULL when any step is missing. An empty path is the answer.
const msgpack_object *kf_business_path (const msgpack_object *answer, const char *path, size_t len);

//  Fills reply template `text` (config.h, [business] reply): each placeholder is looked up in
//  `answer` first (NULL: no answer) by its path, then among the entities; strings as they are,
//  numbers and booleans as JSON, objects and arrays as compact JSON; a missing or null value is
//  the placeholder's default, or nothing. Cut at KF_BUSINESS_REPLY_MAX bytes. Heap string, the
//  caller frees; never NULL.
char *kf_business_reply (const char *text, const msgpack_object *answer,
                         const kf_business_vars_t *vars);
#endif
