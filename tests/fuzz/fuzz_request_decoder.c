/*  fuzz_request_decoder.c - libFuzzer target for the broker's front door: kf_request_decode on
    arbitrary frames, the chat parameter validators on whatever decodes, and the reply that would
    go back, which must always decode again. Input layout (deterministic, so seeds are easy to write):

        byte 0      selector: bits 0-1 = frame count - 1 (1..4); bit 2 set = explicit signature
        [byte 1]    with bit 2: signature length (mod 17), then that many signature bytes;
                    without it the signature is "KEFU1"
        rest        the body frame (ignored when the message has a single frame)  */
#include "common/json_codec.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include "common/wire.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Aborts with a message when an invariant does not hold (works with -DNDEBUG too).
static void
s_require (bool ok, const char *what)
{
    if (!ok) {
        fprintf (stderr, "fuzz_request_decoder: invariant failed: %s\n", what);
        abort ();
    }
}

//  An error fit for a client: non-empty, under 256 bytes, valid UTF-8, and one of `allowed`.
static void
s_require_error (const kf_error_t *err, const kf_errc_t *allowed, size_t count, const char *what)
{
    size_t len = strnlen (err->message, sizeof err->message);
    s_require (len > 0 && len < sizeof err->message, "error message is 1-255 bytes");
    s_require (kf_utf8_is_valid (err->message, len), "error message is valid UTF-8");
    bool is_allowed = false;
    for (size_t i = 0; i < count; i++)
        is_allowed |= err->errc == allowed [i];
    s_require (is_allowed, what);
}

static const kf_errc_t s_param_errors [] = {
    KF_E_MISSING_ARGUMENT, KF_E_INVALID_PARAM, KF_E_INVALID_UTF8, KF_E_TOO_LARGE
};
#define S_PARAM_ERRORS s_param_errors, sizeof s_param_errors / sizeof s_param_errors [0]

//  What the chat validators accepted, echoed in the success reply
typedef struct {
    const char *message, *session_id, *user_id, *bot_id;
    size_t message_len, session_id_len, user_id_len, bot_id_len;
    char channel [16];
    const msgpack_object *labels, *inputs;
    bool is_stream;
    int64_t limit, offset;
} s_chat_t;

//  One string validator: on success the value is absent or valid text within its limit.
static int
s_check_str (const msgpack_object *params, const char *key, bool required, size_t max_chars,
             const char **value, size_t *len, kf_error_t *err)
{
    int rc = kf_param_str (params, key, required, max_chars, value, len, err);
    if (rc) {
        s_require (rc == -1, "validators return 0 or -1");
        s_require_error (err, S_PARAM_ERRORS, "string param error is a param error");
        return rc;
    }
    if (*value) {
        s_require (kf_utf8_is_valid (*value, *len), "accepted string is UTF-8");
        s_require (!max_chars || kf_utf8_count (*value, *len) <= max_chars, "accepted string fits");
        s_require (!required || *len > 0, "required string is not empty");
    }
    else
        s_require (!required && *len == 0, "absent string is optional");
    return 0;
}

//  The chat parameter checks in the broker's order, each with the contract it promises. Returns
//  0 when all pass, else -1 with `err` set by the first that failed.
static int
s_validate_chat (const msgpack_object *params, s_chat_t *chat, kf_error_t *err)
{
    memset (chat, 0, sizeof *chat);
    if (s_check_str (params, "message", true, 4000, &chat->message, &chat->message_len, err)
    ||  s_check_str (params, "session_id", false, 64, &chat->session_id, &chat->session_id_len, err)
    ||  s_check_str (params, "user_id", false, 128, &chat->user_id, &chat->user_id_len, err))
        return -1;
    if (kf_param_channel (params, chat->channel, err)) {
        s_require_error (err, S_PARAM_ERRORS, "channel error is a param error");
        return -1;
    }
    static const char *channels [] = { "web", "app", "wechat", "wxmini", "dingtalk", "api" };
    bool is_known = false;
    for (size_t i = 0; i < 6; i++)
        is_known |= strcmp (chat->channel, channels [i]) == 0;
    s_require (is_known, "accepted channel is one of the six");
    if (s_check_str (params, "bot_id", false, 64, &chat->bot_id, &chat->bot_id_len, err))
        return -1;
    if (kf_param_str_map (params, "labels", 50, &chat->labels, err)) {
        s_require_error (err, S_PARAM_ERRORS, "labels error is a param error");
        return -1;
    }
    if (chat->labels) {
        const msgpack_object_map *map = &chat->labels->via.map;
        s_require (chat->labels->type == MSGPACK_OBJECT_MAP && map->size <= 50,
                   "labels is a small map");
        for (uint32_t i = 0; i < map->size; i++) {
            const msgpack_object *k = &map->ptr [i].key, *v = &map->ptr [i].val;
            s_require (k->type == MSGPACK_OBJECT_STR && v->type == MSGPACK_OBJECT_STR,
                       "labels map strings to strings");
            s_require (kf_utf8_is_valid (k->via.str.ptr, k->via.str.size)
                    && kf_utf8_is_valid (v->via.str.ptr, v->via.str.size), "labels are UTF-8");
        }
    }
    if (kf_param_map (params, "inputs", &chat->inputs, err)) {
        s_require_error (err, S_PARAM_ERRORS, "inputs error is a param error");
        return -1;
    }
    s_require (!chat->inputs || chat->inputs->type == MSGPACK_OBJECT_MAP, "inputs is a map");
    if (kf_param_bool (params, "stream", false, &chat->is_stream, err)
    ||  kf_param_int (params, "limit", 1, 100, 20, &chat->limit, err)
    ||  kf_param_int (params, "offset", 0, INT32_MAX, 0, &chat->offset, err)) {
        s_require_error (err, S_PARAM_ERRORS, "bool/int error is a param error");
        return -1;
    }
    s_require (chat->limit >= 1 && chat->limit <= 100, "limit in range");
    s_require (chat->offset >= 0 && chat->offset <= INT32_MAX, "offset in range");
    return 0;
}

//  What the broker hands a worker for an accepted chat: labels and inputs copied as they came.
//  The worker must be able to decode it (inputs sit at the same depth as in the request).
static void
s_check_job_body (const s_chat_t *chat)
{
    msgpack_sbuffer job;
    msgpack_sbuffer_init (&job);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &job, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_str (&pk, "method", "chat");
    kf_mp_pack_cstr (&pk, "params");
    msgpack_pack_map (&pk, 4);
    kf_mp_pack_cstr (&pk, "message");
    kf_mp_pack_str (&pk, chat->message, chat->message_len);
    kf_mp_pack_kv_str (&pk, "channel", chat->channel);
    kf_mp_pack_cstr (&pk, "labels");
    if (chat->labels)
        msgpack_pack_object (&pk, *chat->labels);
    else
        msgpack_pack_map (&pk, 0);
    kf_mp_pack_cstr (&pk, "inputs");
    if (chat->inputs)
        msgpack_pack_object (&pk, *chat->inputs);
    else
        msgpack_pack_map (&pk, 0);
    msgpack_unpacked unpacked;
    s_require (kf_mp_unpack_one (job.data, job.size, &unpacked), "a worker can decode the job");
    const msgpack_object *params = kf_mp_get (&unpacked.data, "params");
    s_require (kf_mp_get (params, "inputs") && kf_mp_get (params, "labels"), "job carries params");
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&job);
    //  The broker stores labels as JSON; rendering must work on anything the validator let in
    if (chat->labels) {
        char *json = kf_json_from_msgpack (chat->labels);
        s_require (json && json [0] == '{', "labels render as a JSON object");
        free (json);
    }
}

//  Decodes the reply in `sbuf` and checks it says what was packed.
static void
s_check_reply (const msgpack_sbuffer *sbuf, const kf_request_t *req, const kf_error_t *err)
{
    msgpack_unpacked unpacked;
    s_require (kf_mp_unpack_one (sbuf->data, sbuf->size, &unpacked), "reply decodes");
    const msgpack_object *reply = &unpacked.data;
    s_require (reply->type == MSGPACK_OBJECT_MAP && reply->via.map.size == 3, "reply has 3 keys");
    const msgpack_object *id = kf_mp_get (reply, "id");
    s_require (id != NULL, "reply has an id");
    if (req->id)
        s_require (id->type == MSGPACK_OBJECT_STR && id->via.str.size == req->id_len
                   && memcmp (id->via.str.ptr, req->id, req->id_len) == 0, "reply echoes the id");
    else
        s_require (id->type == MSGPACK_OBJECT_NIL, "reply id is nil");
    const msgpack_object *ok = kf_mp_get (reply, "ok");
    s_require (ok && ok->type == MSGPACK_OBJECT_BOOLEAN && ok->via.boolean == (err == NULL),
               "reply ok matches");
    if (err) {
        kf_error_t back;
        const msgpack_object *error = kf_mp_get (reply, "error");
        s_require (kf_error_unpack (error, &back), "error map decodes");
        s_require (back.errc == err->errc, "error name survives");
        s_require (kf_mp_get_int (error, "code", 0) == kf_errc_code (err->errc), "error code survives");
        s_require (strcmp (back.message, err->message) == 0, "error message survives");
    }
    else
        s_require (kf_mp_get (reply, "result") != NULL, "success has a result");
    msgpack_unpacked_destroy (&unpacked);
}

//  Packs the reply the broker would send for this request and checks it decodes.
static void
s_reply (const kf_request_t *req, const s_chat_t *chat, const kf_error_t *err)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    if (err)
        kf_reply_pack_error (&pk, req->id, req->id_len, err);
    else {
        kf_reply_pack_ok_head (&pk, req->id, req->id_len);
        msgpack_pack_map (&pk, 5);
        kf_mp_pack_cstr (&pk, "method");
        kf_mp_pack_str (&pk, req->method, req->method_len);
        kf_mp_pack_cstr (&pk, "message");
        kf_mp_pack_str (&pk, chat->message, chat->message_len);
        kf_mp_pack_kv_str (&pk, "channel", chat->channel);
        kf_mp_pack_kv_int (&pk, "limit", chat->limit);
        kf_mp_pack_kv_bool (&pk, "stream", chat->is_stream);
    }
    s_check_reply (&sbuf, req, err);
    msgpack_sbuffer_destroy (&sbuf);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int frames = (data [0] & 3) + 1;
    size_t pos = 1;
    const char *sig = KF_SIGNATURE;
    size_t sig_len = KF_SIGNATURE_LEN;
    if (data [0] & 4) {
        sig_len = pos < size ? data [pos++] % 17 : 0;
        if (sig_len > size - pos)
            sig_len = size - pos;
        sig = (const char *) data + pos;
        pos += sig_len;
    }
    //  Frames get buffers of their own size, so an over-read of one is a sanitizer report
    size_t body_len = frames >= 2 ? size - pos : 0;
    char *sig_copy = calloc (1, sig_len ? sig_len : 1);
    char *body = calloc (1, body_len ? body_len : 1);
    s_require (sig_copy && body, "memory");
    memcpy (sig_copy, sig, sig_len);
    if (body_len)
        memcpy (body, data + pos, body_len);

    kf_request_t req;
    kf_error_t err;
    memset (&err, 0, sizeof err);
    int rc = kf_request_decode (&req, frames, sig_copy, sig_len, body, body_len, &err);
    bool is_proper = frames == 2 && sig_len == KF_SIGNATURE_LEN
                  && memcmp (sig_copy, KF_SIGNATURE, KF_SIGNATURE_LEN) == 0;
    if (rc == 0) {
        s_require (is_proper, "only 2 frames with KEFU1 decode");
        s_require (req.id && req.id_len >= 1 && req.id_len <= KF_ID_MAX, "id is 1-128 bytes");
        s_require (kf_utf8_is_valid (req.id, req.id_len), "id is UTF-8");
        s_require (req.method && req.method_len >= 1 && req.method_len <= KF_METHOD_MAX,
                   "method is 1-64 bytes");
        s_require (!req.params || req.params->type == MSGPACK_OBJECT_MAP, "params is a map");
        //  What decodes is exactly one object for the plain msgpack-c unpacker too
        msgpack_unpacked plain;
        size_t offset = 0;
        msgpack_unpacked_init (&plain);
        s_require (msgpack_unpack_next (&plain, body, body_len, &offset) == MSGPACK_UNPACK_SUCCESS
                   && offset == body_len, "decoded body is one msgpack object");
        msgpack_unpacked_destroy (&plain);
        s_chat_t chat;
        kf_error_t param_err;
        if (s_validate_chat (req.params, &chat, &param_err) == 0) {
            s_check_job_body (&chat);
            s_reply (&req, &chat, NULL);
        }
        else
            s_reply (&req, &chat, &param_err);
    }
    else {
        static const kf_errc_t decode_errors [] = {
            KF_E_BAD_FRAMES, KF_E_BAD_MSGPACK, KF_E_INVALID_REQUEST
        };
        s_require (rc == -1, "decode returns 0 or -1");
        s_require_error (&err, decode_errors, 3, "decode errors are request-level");
        s_require ((err.errc == KF_E_BAD_FRAMES) == !is_proper, "bad_frames exactly for bad frames");
        if (err.errc == KF_E_BAD_MSGPACK) {
            msgpack_unpacked again;
            s_require (!kf_mp_unpack_one (body, body_len, &again), "bad_msgpack is consistent");
            msgpack_unpacked_destroy (&again);
        }
        if (req.id)
            s_require (err.errc == KF_E_INVALID_REQUEST && req.id_len >= 1 && req.id_len <= KF_ID_MAX
                       && kf_utf8_is_valid (req.id, req.id_len), "an id kept on error is valid");
        s_reply (&req, NULL, &err);
    }
    kf_request_release (&req);
    free (sig_copy);
    free (body);
    return 0;
}
