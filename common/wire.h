/*  wire.h - the client protocol codec: KEFU1 frames, request decoding and validation, reply and
    error encoding, the error code table. Shared by the broker, the client library and kefuctl. */
#ifndef KF_WIRE_H
#define KF_WIRE_H
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KF_SIGNATURE        "KEFU1"
#define KF_SIGNATURE_LEN    5
#define KF_ID_MAX           128         //  Request ids are topics: keep them short
#define KF_METHOD_MAX       64
#define KF_CHAT_TOP_K_DEFAULT 5         //  chat params.top_k: knowledge candidates in a result
#define KF_CHAT_TOP_K_MAX   20

//  Every error the protocol can answer with. Names are stable; codes follow HTTP where one fits.
typedef enum {
    KF_OK = 0,
    KF_E_BAD_FRAMES,            //  400 wrong frame count or signature
    KF_E_BAD_MSGPACK,           //  400 body is not one msgpack object
    KF_E_INVALID_REQUEST,       //  400 body is not a map with id, method, params
    KF_E_MISSING_ARGUMENT,      //  400 a required param is absent
    KF_E_INVALID_PARAM,         //  400 a param has the wrong type or value
    KF_E_INVALID_UTF8,          //  400 text that is not UTF-8
    KF_E_UNKNOWN_METHOD,        //  404
    KF_E_NOT_FOUND,             //  404 session, message or stream does not exist
    KF_E_CONFLICT,              //  409 e.g. a stream id already in use
    KF_E_SESSION_CLOSED,        //  409 the session was closed: start a new one
    KF_E_TOO_LARGE,             //  413 message or batch beyond its limit
    KF_E_BUSY,                  //  429 queue full; retry_after_ms says when to retry
    KF_E_RATE_LIMITED,          //  429
    KF_E_INTERNAL,              //  500
    KF_E_WORKER_LOST,           //  500 the worker died after the answer had started streaming
    KF_E_UPSTREAM,              //  502 an upstream answered with an error
    KF_E_UNAVAILABLE,           //  503 no worker or upstream available
    KF_E_TIMEOUT,               //  504 the job passed its deadline
    KF_E_COUNT
} kf_errc_t;

//  An error on its way to a client: code and name come from the table, message is specific.
typedef struct {
    kf_errc_t errc;             //  Which error
    int64_t retry_after_ms;     //  For 429/503: a hint, 0 when none
    char message [256];         //  Human-readable English detail
} kf_error_t;

//  The HTTP-like code and the stable name of an error.
int kf_errc_code (kf_errc_t errc);
const char *kf_errc_name (kf_errc_t errc);

//  Looks an error up by name; returns KF_E_INTERNAL for unknown names.
kf_errc_t kf_errc_from_name (const char *name, size_t len);

//  Fills `err` and returns -1, so validators can `return kf_error_set (...)`.
int kf_error_set (kf_error_t *err, kf_errc_t errc, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  A decoded client request. Everything points into `unpacked`, which the request owns.
typedef struct {
    msgpack_unpacked unpacked;  //  Owns the decoded tree
    const char *id;             //  Request id, not NUL-terminated; NULL when absent or invalid
    size_t id_len;
    const char *method;         //  Method name, not NUL-terminated
    size_t method_len;
    const msgpack_object *params;   //  The params map, or NULL when absent (treated as empty)
} kf_request_t;

//  Decodes a request from its frames: `frame_count` frames were received, the first is `sig`
//  (sig_len bytes) and the second `body`. On success returns 0 with `req` filled (release it with
//  kf_request_release). On failure returns -1 with `err` set; `req` may still carry the id when the
//  body parsed far enough, so the error reply can name it. Never crashes on any input.
int kf_request_decode (kf_request_t *req, int frame_count, const void *sig, size_t sig_len,
                       const void *body, size_t body_len, kf_error_t *err);

//  Frees what kf_request_decode unpacked. Safe to call twice.
void kf_request_release (kf_request_t *req);

//  Packs an error reply {"id","ok":false,"error":{code,name,message[,retry_after_ms]}} into `pk`.
//  `id` may be NULL (packed as nil) when the request had none.
void kf_reply_pack_error (msgpack_packer *pk, const char *id, size_t id_len, const kf_error_t *err);

//  Packs the head of a success reply: a 3-entry map with "id", "ok": true and the key "result";
//  the caller then packs exactly one value, the result.
void kf_reply_pack_ok_head (msgpack_packer *pk, const char *id, size_t id_len);

//  Packs the error map alone {code,name,message[,retry_after_ms]}, for error events and FINALs.
void kf_error_pack (msgpack_packer *pk, const kf_error_t *err);

//  Reads an error map packed by kf_error_pack back into `err`. Returns false if it is not one.
bool kf_error_unpack (const msgpack_object *obj, kf_error_t *err);

//  Validation helpers for params. Each returns 0 when fine (or absent and optional) and -1 with
//  `err` set otherwise. Strings must be UTF-8; `max_chars` counts characters (0 = no limit).
int kf_param_str (const msgpack_object *params, const char *key, bool required, size_t max_chars,
                  const char **value, size_t *len, kf_error_t *err);
int kf_param_int (const msgpack_object *params, const char *key, int64_t min, int64_t max,
                  int64_t fallback, int64_t *value, kf_error_t *err);
int kf_param_bool (const msgpack_object *params, const char *key, bool fallback, bool *value,
                   kf_error_t *err);
//  A map whose keys and values are all strings (labels); `max_entries` bounds it.
int kf_param_str_map (const msgpack_object *params, const char *key, uint32_t max_entries,
                      const msgpack_object **value, kf_error_t *err);
//  The chat channel: one of web, app, wechat, wxmini, dingtalk, api; copied NUL-terminated into
//  `channel` (16 bytes), "api" when absent.
int kf_param_channel (const msgpack_object *params, char *channel, kf_error_t *err);
//  A map of anything (inputs), depth already bounded by the decoder.
int kf_param_map (const msgpack_object *params, const char *key, const msgpack_object **value,
                  kf_error_t *err);
#endif
