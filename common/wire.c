/*  wire.c - the client protocol codec: request decoding and validation, replies and error codes. */
#include "common/wire.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    int code;
    const char *name;
} s_errors [KF_E_COUNT] = {
    [KF_OK]                 = { 200, "ok" },
    [KF_E_BAD_FRAMES]       = { 400, "bad_frames" },
    [KF_E_BAD_MSGPACK]      = { 400, "bad_msgpack" },
    [KF_E_INVALID_REQUEST]  = { 400, "invalid_request" },
    [KF_E_MISSING_ARGUMENT] = { 400, "missing_argument" },
    [KF_E_INVALID_PARAM]    = { 400, "invalid_param" },
    [KF_E_INVALID_UTF8]     = { 400, "invalid_utf8" },
    [KF_E_UNKNOWN_METHOD]   = { 404, "unknown_method" },
    [KF_E_NOT_FOUND]        = { 404, "not_found" },
    [KF_E_CONFLICT]         = { 409, "conflict" },
    [KF_E_SESSION_CLOSED]   = { 409, "session_closed" },
    [KF_E_TOO_LARGE]        = { 413, "too_large" },
    [KF_E_BUSY]             = { 429, "busy" },
    [KF_E_RATE_LIMITED]     = { 429, "rate_limited" },
    [KF_E_INTERNAL]         = { 500, "internal" },
    [KF_E_WORKER_LOST]      = { 500, "worker_lost" },
    [KF_E_UPSTREAM]         = { 502, "upstream_error" },
    [KF_E_UNAVAILABLE]      = { 503, "unavailable" },
    [KF_E_TIMEOUT]          = { 504, "timeout" },
};

int
kf_errc_code (kf_errc_t errc)
{
    return errc < KF_E_COUNT ? s_errors [errc].code : 500;
}

const char *
kf_errc_name (kf_errc_t errc)
{
    return errc < KF_E_COUNT ? s_errors [errc].name : "internal";
}

kf_errc_t
kf_errc_from_name (const char *name, size_t len)
{
    for (int i = 0; i < KF_E_COUNT; i++)
        if (strlen (s_errors [i].name) == len && memcmp (s_errors [i].name, name, len) == 0)
            return (kf_errc_t) i;
    return KF_E_INTERNAL;
}

int
kf_error_set (kf_error_t *err, kf_errc_t errc, const char *format, ...)
{
    err->errc = errc;
    err->retry_after_ms = 0;
    va_list args;
    va_start (args, format);
    vsnprintf (err->message, sizeof err->message, format, args);
    va_end (args);
    //  Messages echo client bytes and may be cut mid-character: keep them valid UTF-8
    size_t len = strlen (err->message), out = 0;
    len = kf_utf8_complete_prefix (err->message, len);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int n = kf_utf8_decode (err->message + i, len - i, &cp);
        if (n == 0) {
            err->message [out++] = '?';
            i++;
        }
        else {
            memmove (err->message + out, err->message + i, n);
            out += n;
            i += n;
        }
    }
    err->message [out] = 0;
    return -1;
}

int
kf_request_decode (kf_request_t *req, int frame_count, const void *sig, size_t sig_len,
                   const void *body, size_t body_len, kf_error_t *err)
{
    memset (req, 0, sizeof *req);
    msgpack_unpacked_init (&req->unpacked);
    if (frame_count != 2)
        return kf_error_set (err, KF_E_BAD_FRAMES,
                             "a request is 2 frames (KEFU1, msgpack body), got %d", frame_count);
    if (sig_len != KF_SIGNATURE_LEN || memcmp (sig, KF_SIGNATURE, KF_SIGNATURE_LEN) != 0)
        return kf_error_set (err, KF_E_BAD_FRAMES, "first frame must be the signature KEFU1");
    if (!kf_mp_unpack_one (body, body_len, &req->unpacked))
        return kf_error_set (err, KF_E_BAD_MSGPACK,
                             "second frame is not exactly one msgpack object (or nests deeper than 32)");
    const msgpack_object *root = &req->unpacked.data;
    if (root->type != MSGPACK_OBJECT_MAP)
        return kf_error_set (err, KF_E_INVALID_REQUEST, "request body must be a map");
    const msgpack_object *id = kf_mp_get (root, "id");
    if (!id)
        return kf_error_set (err, KF_E_INVALID_REQUEST, "request has no id");
    if (id->type != MSGPACK_OBJECT_STR || id->via.str.size == 0 || id->via.str.size > KF_ID_MAX
    ||  !kf_utf8_is_valid (id->via.str.ptr, id->via.str.size))
        return kf_error_set (err, KF_E_INVALID_REQUEST,
                             "id must be a non-empty UTF-8 string of at most %d bytes", KF_ID_MAX);
    req->id = id->via.str.ptr;
    req->id_len = id->via.str.size;
    const msgpack_object *method = kf_mp_get (root, "method");
    if (!method)
        return kf_error_set (err, KF_E_INVALID_REQUEST, "request has no method");
    if (method->type != MSGPACK_OBJECT_STR || method->via.str.size == 0
    ||  method->via.str.size > KF_METHOD_MAX)
        return kf_error_set (err, KF_E_INVALID_REQUEST, "method must be a non-empty string");
    req->method = method->via.str.ptr;
    req->method_len = method->via.str.size;
    const msgpack_object *params = kf_mp_get (root, "params");
    if (params && params->type != MSGPACK_OBJECT_MAP && params->type != MSGPACK_OBJECT_NIL)
        return kf_error_set (err, KF_E_INVALID_REQUEST, "params must be a map");
    req->params = params && params->type == MSGPACK_OBJECT_MAP ? params : NULL;
    return 0;
}

void
kf_request_release (kf_request_t *req)
{
    msgpack_unpacked_destroy (&req->unpacked);
    msgpack_unpacked_init (&req->unpacked);
    req->id = req->method = NULL;
    req->params = NULL;
}

void
kf_error_pack (msgpack_packer *pk, const kf_error_t *err)
{
    msgpack_pack_map (pk, err->retry_after_ms > 0 ? 4 : 3);
    kf_mp_pack_kv_int (pk, "code", kf_errc_code (err->errc));
    kf_mp_pack_kv_str (pk, "name", kf_errc_name (err->errc));
    kf_mp_pack_kv_str (pk, "message", err->message);
    if (err->retry_after_ms > 0)
        kf_mp_pack_kv_int (pk, "retry_after_ms", err->retry_after_ms);
}

bool
kf_error_unpack (const msgpack_object *obj, kf_error_t *err)
{
    const char *name, *message;
    size_t name_len, message_len;
    if (!kf_mp_str (kf_mp_get (obj, "name"), &name, &name_len))
        return false;
    err->errc = kf_errc_from_name (name, name_len);
    if (err->errc == KF_OK)
        err->errc = KF_E_INTERNAL;      //  An error that calls itself "ok" is still an error
    err->retry_after_ms = kf_mp_get_int (obj, "retry_after_ms", 0);
    if (!kf_mp_str (kf_mp_get (obj, "message"), &message, &message_len))
        message_len = 0, message = "";
    int64_t retry_after_ms = err->retry_after_ms;
    kf_error_set (err, err->errc, "%.*s", (int) message_len, message);
    err->retry_after_ms = retry_after_ms;
    return true;
}

static void
s_pack_id (msgpack_packer *pk, const char *id, size_t id_len)
{
    kf_mp_pack_cstr (pk, "id");
    if (id)
        kf_mp_pack_str (pk, id, id_len);
    else
        msgpack_pack_nil (pk);
}

void
kf_reply_pack_error (msgpack_packer *pk, const char *id, size_t id_len, const kf_error_t *err)
{
    msgpack_pack_map (pk, 3);
    s_pack_id (pk, id, id_len);
    kf_mp_pack_kv_bool (pk, "ok", false);
    kf_mp_pack_cstr (pk, "error");
    kf_error_pack (pk, err);
}

void
kf_reply_pack_ok_head (msgpack_packer *pk, const char *id, size_t id_len)
{
    msgpack_pack_map (pk, 3);
    s_pack_id (pk, id, id_len);
    kf_mp_pack_kv_bool (pk, "ok", true);
    kf_mp_pack_cstr (pk, "result");
}

int
kf_param_str (const msgpack_object *params, const char *key, bool required, size_t max_chars,
              const char **value, size_t *len, kf_error_t *err)
{
    const msgpack_object *obj = kf_mp_get (params, key);
    *value = NULL;
    *len = 0;
    if (!obj || obj->type == MSGPACK_OBJECT_NIL) {
        if (required)
            return kf_error_set (err, KF_E_MISSING_ARGUMENT, "params.%s is required", key);
        return 0;
    }
    if (obj->type != MSGPACK_OBJECT_STR)
        return kf_error_set (err, KF_E_INVALID_PARAM, "params.%s must be a string", key);
    if (!kf_utf8_is_valid (obj->via.str.ptr, obj->via.str.size))
        return kf_error_set (err, KF_E_INVALID_UTF8, "params.%s is not valid UTF-8", key);
    //  Text is stored and compared as C strings: a NUL would cut it short
    if (memchr (obj->via.str.ptr, 0, obj->via.str.size))
        return kf_error_set (err, KF_E_INVALID_PARAM, "params.%s contains a NUL character", key);
    if (required && obj->via.str.size == 0)
        return kf_error_set (err, KF_E_MISSING_ARGUMENT, "params.%s must not be empty", key);
    if (max_chars && kf_utf8_count (obj->via.str.ptr, obj->via.str.size) > max_chars)
        return kf_error_set (err, KF_E_TOO_LARGE, "params.%s is longer than %zu characters",
                             key, max_chars);
    *value = obj->via.str.ptr;
    *len = obj->via.str.size;
    return 0;
}

int
kf_param_int (const msgpack_object *params, const char *key, int64_t min, int64_t max,
              int64_t fallback, int64_t *value, kf_error_t *err)
{
    const msgpack_object *obj = kf_mp_get (params, key);
    *value = fallback;
    if (!obj || obj->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (!kf_mp_int (obj, value))
        return kf_error_set (err, KF_E_INVALID_PARAM, "params.%s must be an integer", key);
    if (*value < min || *value > max)
        return kf_error_set (err, KF_E_INVALID_PARAM, "params.%s must be between %lld and %lld",
                             key, (long long) min, (long long) max);
    return 0;
}

int
kf_param_bool (const msgpack_object *params, const char *key, bool fallback, bool *value,
               kf_error_t *err)
{
    const msgpack_object *obj = kf_mp_get (params, key);
    *value = fallback;
    if (!obj || obj->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (obj->type != MSGPACK_OBJECT_BOOLEAN)
        return kf_error_set (err, KF_E_INVALID_PARAM, "params.%s must be a boolean", key);
    *value = obj->via.boolean;
    return 0;
}

int
kf_param_str_map (const msgpack_object *params, const char *key, uint32_t max_entries,
                  const msgpack_object **value, kf_error_t *err)
{
    if (kf_param_map (params, key, value, err))
        return -1;
    if (!*value)
        return 0;
    const msgpack_object_map *map = &(*value)->via.map;
    if (map->size > max_entries)
        return kf_error_set (err, KF_E_TOO_LARGE, "params.%s has more than %u entries", key,
                             max_entries);
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *k = &map->ptr [i].key, *v = &map->ptr [i].val;
        if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_STR)
            return kf_error_set (err, KF_E_INVALID_PARAM,
                                 "params.%s must map strings to strings", key);
        if (!kf_utf8_is_valid (k->via.str.ptr, k->via.str.size)
        ||  !kf_utf8_is_valid (v->via.str.ptr, v->via.str.size))
            return kf_error_set (err, KF_E_INVALID_UTF8, "params.%s is not valid UTF-8", key);
    }
    return 0;
}

int
kf_param_map (const msgpack_object *params, const char *key, const msgpack_object **value,
              kf_error_t *err)
{
    const msgpack_object *obj = kf_mp_get (params, key);
    *value = NULL;
    if (!obj || obj->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (obj->type != MSGPACK_OBJECT_MAP)
        return kf_error_set (err, KF_E_INVALID_PARAM, "params.%s must be a map", key);
    *value = obj;
    return 0;
}

int
kf_param_channel (const msgpack_object *params, char *channel, kf_error_t *err)
{
    static const char *known [] = { "web", "app", "wechat", "wxmini", "dingtalk", "api", NULL };
    const char *value;
    size_t len;
    strcpy (channel, "api");
    if (kf_param_str (params, "channel", false, 0, &value, &len, err))
        return -1;
    if (!value)
        return 0;
    for (int i = 0; known [i]; i++)
        if (strlen (known [i]) == len && memcmp (known [i], value, len) == 0) {
            strcpy (channel, known [i]);
            return 0;
        }
    return kf_error_set (err, KF_E_INVALID_PARAM,
                         "params.channel must be one of web, app, wechat, wxmini, dingtalk, api");
}
