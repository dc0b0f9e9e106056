/*  test_bad_input.c - a real broker faces malformed and invalid requests on a raw DEALER: wrong
    frames, broken msgpack, wrong types, values past every limit, invalid UTF-8. Each gets exactly
    one reply [KEFU1, map] with ok false and the documented error; afterwards the broker is alive,
    has counted every request and error, and still answers a normal chat. */
#include "harness.h"
#include "common/utf8.h"
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <zmq.h>

//  The raw client: plain libzmq, so that every frame is exactly what the test says
typedef struct {
    void *ctx;
    void *dealer;
    int serial;                 //  Numbers the request ids
    int sent;                   //  Requests sent
    int errors;                 //  Error replies received
    char id [32];               //  Id of the last request built with s_fresh_id
} s_raw_t;

static void
s_raw_open (s_raw_t *raw, kf_harness_t *h)
{
    memset (raw, 0, sizeof *raw);
    raw->ctx = zmq_ctx_new ();
    raw->dealer = zmq_socket (raw->ctx, ZMQ_DEALER);
    int linger = 0, timeout = 5000;     //  A missing reply fails the test instead of hanging it
    zmq_setsockopt (raw->dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (raw->dealer, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    CHECK_INT (zmq_connect (raw->dealer, h->requests), 0);
}

static void
s_raw_close (s_raw_t *raw)
{
    zmq_close (raw->dealer);
    zmq_ctx_term (raw->ctx);
}

//  A new request id ("bad-001", ...), also kept in raw->id.
static const char *
s_fresh_id (s_raw_t *raw)
{
    snprintf (raw->id, sizeof raw->id, "bad-%03d", ++raw->serial);
    return raw->id;
}

//  Sends `count` frames as one message.
static void
s_send_frames (s_raw_t *raw, int count, const void *const *data, const size_t *size)
{
    for (int i = 0; i < count; i++)
        CHECK (zmq_send (raw->dealer, data [i], size [i], i < count - 1 ? ZMQ_SNDMORE : 0) >= 0);
    raw->sent++;
}

//  Sends [KEFU1, body].
static void
s_send_body (s_raw_t *raw, const void *body, size_t len)
{
    const void *data [2] = { KF_SIGNATURE, body };
    size_t size [2] = { KF_SIGNATURE_LEN, len };
    s_send_frames (raw, 2, data, size);
}

//  Receives one reply, which must be [KEFU1, one msgpack map]; fails the test after 5 s.
static const msgpack_object *
s_recv_reply (s_raw_t *raw, msgpack_unpacked *unpacked)
{
    zmq_msg_t part [2], spare;
    int count = 0, more = 1;
    while (more) {
        zmq_msg_t *msg = count < 2 ? &part [count] : &spare;
        zmq_msg_init (msg);
        if (zmq_msg_recv (msg, raw->dealer, 0) == -1) {
            fprintf (stderr, "no reply after request %s: %s\n", raw->id, zmq_strerror (errno));
            exit (1);
        }
        more = zmq_msg_more (msg);
        if (msg == &spare)
            zmq_msg_close (&spare);
        count++;
    }
    CHECK_INT (count, 2);
    CHECK_INT (zmq_msg_size (&part [0]), KF_SIGNATURE_LEN);
    CHECK (memcmp (zmq_msg_data (&part [0]), KF_SIGNATURE, KF_SIGNATURE_LEN) == 0);
    CHECK (kf_mp_unpack_one (zmq_msg_data (&part [1]), zmq_msg_size (&part [1]), unpacked));
    zmq_msg_close (&part [0]);
    zmq_msg_close (&part [1]);
    const msgpack_object *reply = &unpacked->data;
    CHECK (reply->type == MSGPACK_OBJECT_MAP);
    CHECK_INT (reply->via.map.size, 3);
    return reply;
}

//  Checks the reply's id: `want_id` (want_len bytes) or nil when want_id is NULL.
static void
s_check_id (const msgpack_object *reply, const char *want_id, size_t want_len)
{
    const msgpack_object *id = kf_mp_get (reply, "id");
    CHECK (id);
    if (!want_id) {
        if (id->type != MSGPACK_OBJECT_NIL)
            fprintf (stderr, "reply id should be nil\n");
        CHECK (id->type == MSGPACK_OBJECT_NIL);
        return;
    }
    CHECK (id->type == MSGPACK_OBJECT_STR);
    CHECK_INT (id->via.str.size, want_len);
    CHECK (memcmp (id->via.str.ptr, want_id, want_len) == 0);
}

//  Receives the reply to the last request: an error with this code and name, echoing `want_id`.
static void
s_expect_error_id (s_raw_t *raw, const char *want_id, size_t want_len, int code, const char *name)
{
    msgpack_unpacked unpacked;
    const msgpack_object *reply = s_recv_reply (raw, &unpacked);
    const msgpack_object *ok = kf_mp_get (reply, "ok");
    CHECK (ok && ok->type == MSGPACK_OBJECT_BOOLEAN);
    if (ok->via.boolean)
        fprintf (stderr, "request %s succeeded, expected %s\n", raw->id, name);
    CHECK (!ok->via.boolean);
    const msgpack_object *error = kf_mp_get (reply, "error");
    CHECK (error && error->type == MSGPACK_OBJECT_MAP);
    kf_error_t err;
    CHECK (kf_error_unpack (error, &err));
    const char *got_name;
    size_t got_len;
    CHECK (kf_mp_str (kf_mp_get (error, "name"), &got_name, &got_len));
    if (got_len != strlen (name) || memcmp (got_name, name, got_len) != 0)
        fprintf (stderr, "request %s: got %.*s (%s), want %s\n", raw->id, (int) got_len, got_name,
                 err.message, name);
    CHECK_STR (kf_errc_name (err.errc), name);
    CHECK_INT (kf_mp_get_int (error, "code", 0), code);
    //  A message for people: present, short, and text a strict decoder accepts
    const char *message;
    size_t message_len;
    CHECK (kf_mp_str (kf_mp_get (error, "message"), &message, &message_len));
    CHECK (message_len > 0 && message_len <= 255);
    CHECK (kf_utf8_is_valid (message, message_len));
    //  Only busy carries a retry hint
    CHECK (kf_mp_get (error, "retry_after_ms") == NULL);
    CHECK_INT (error->via.map.size, 3);
    s_check_id (reply, want_id, want_len);
    msgpack_unpacked_destroy (&unpacked);
    raw->errors++;
}

static void
s_expect_error (s_raw_t *raw, const char *want_id, int code, const char *name)
{
    s_expect_error_id (raw, want_id, want_id ? strlen (want_id) : 0, code, name);
}

//  Receives a success reply echoing `want_id`; returns the result (owned by `unpacked`).
static const msgpack_object *
s_expect_ok (s_raw_t *raw, const char *want_id, msgpack_unpacked *unpacked)
{
    const msgpack_object *reply = s_recv_reply (raw, unpacked);
    const msgpack_object *ok = kf_mp_get (reply, "ok");
    CHECK (ok && ok->type == MSGPACK_OBJECT_BOOLEAN);
    if (!ok->via.boolean) {
        kf_error_t err;
        kf_error_unpack (kf_mp_get (reply, "error"), &err);
        fprintf (stderr, "request %s failed: %s %s\n", want_id, kf_errc_name (err.errc), err.message);
    }
    CHECK (ok->via.boolean);
    s_check_id (reply, want_id, strlen (want_id));
    const msgpack_object *result = kf_mp_get (reply, "result");
    CHECK (result);
    return result;
}

//  A request {id, method, params} with params as JSON (NULL leaves params out)
static void
s_send_json (s_raw_t *raw, const char *method, const char *params_json)
{
    msgpack_sbuffer body;
    if (params_json)
        h_pack_json (&body, "{\"id\":\"%s\",\"method\":\"%s\",\"params\":%s}", s_fresh_id (raw),
                     method, params_json);
    else
        h_pack_json (&body, "{\"id\":\"%s\",\"method\":\"%s\"}", s_fresh_id (raw), method);
    s_send_body (raw, body.data, body.size);
    msgpack_sbuffer_destroy (&body);
}

//  Sends `method` with JSON params and expects this error, the id echoed.
static void
s_bad (s_raw_t *raw, const char *method, const char *params_json, int code, const char *name)
{
    s_send_json (raw, method, params_json);
    s_expect_error (raw, raw->id, code, name);
}

//  A body under construction: starts {id, method, "params": and the caller packs the params
typedef struct {
    msgpack_sbuffer buf;
    msgpack_packer pk;
} s_body_t;

static void
s_body_begin (s_body_t *body, const char *id, const char *method)
{
    msgpack_sbuffer_init (&body->buf);
    msgpack_packer_init (&body->pk, &body->buf, msgpack_sbuffer_write);
    msgpack_pack_map (&body->pk, 3);
    kf_mp_pack_kv_str (&body->pk, "id", id);
    kf_mp_pack_kv_str (&body->pk, "method", method);
    kf_mp_pack_cstr (&body->pk, "params");
}

//  Sends the body and frees it.
static void
s_body_send (s_raw_t *raw, s_body_t *body)
{
    s_send_body (raw, body->buf.data, body->buf.size);
    msgpack_sbuffer_destroy (&body->buf);
}

//  Sends `method` with params {key: str of these exact bytes} and expects this error.
static void
s_bad_str (s_raw_t *raw, const char *method, const char *key, const char *bytes, size_t len,
           int code, const char *name)
{
    s_body_t body;
    s_body_begin (&body, s_fresh_id (raw), method);
    bool has_message = strcmp (method, "chat") == 0 && strcmp (key, "message") != 0;
    msgpack_pack_map (&body.pk, has_message ? 2 : 1);
    if (has_message)
        kf_mp_pack_kv_str (&body.pk, "message", "你好");
    kf_mp_pack_cstr (&body.pk, key);
    kf_mp_pack_str (&body.pk, bytes, len);
    s_body_send (raw, &body);
    s_expect_error (raw, raw->id, code, name);
}

//  Heap copy of the string under `key`, which must be there. Caller frees.
static char *
s_dup_str (const msgpack_object *map, const char *key)
{
    char *s = kf_mp_dup_str (map, key);
    if (!s)
        fprintf (stderr, "no string under %s\n", key);
    CHECK (s);
    return s;
}

//  Heap string of `count` copies of `unit`. Caller frees.
static char *
s_repeat (const char *unit, size_t count)
{
    size_t unit_len = strlen (unit);
    char *out = malloc (unit_len * count + 1);
    CHECK (out);
    for (size_t i = 0; i < count; i++)
        memcpy (out + i * unit_len, unit, unit_len);
    out [unit_len * count] = 0;
    return out;
}

//  --- Frames and signature (reply id nil) ------------------------------------------------------

static void
s_test_frames (s_raw_t *raw)
{
    msgpack_sbuffer good;
    h_pack_json (&good, "{\"id\":\"frames-ok\",\"method\":\"health\"}");
    //  One frame: the signature alone, the body alone, an empty frame
    const void *data [10];
    size_t size [10];
    data [0] = KF_SIGNATURE;
    size [0] = KF_SIGNATURE_LEN;
    s_fresh_id (raw);
    s_send_frames (raw, 1, data, size);
    s_expect_error (raw, NULL, 400, "bad_frames");
    data [0] = good.data;
    size [0] = good.size;
    s_send_frames (raw, 1, data, size);
    s_expect_error (raw, NULL, 400, "bad_frames");
    size [0] = 0;
    s_send_frames (raw, 1, data, size);
    s_expect_error (raw, NULL, 400, "bad_frames");
    //  Three frames: a trailing extra, and a REQ socket's empty delimiter in front
    data [0] = KF_SIGNATURE;
    size [0] = KF_SIGNATURE_LEN;
    data [1] = good.data;
    size [1] = good.size;
    data [2] = "extra";
    size [2] = 5;
    s_send_frames (raw, 3, data, size);
    s_expect_error (raw, NULL, 400, "bad_frames");
    data [0] = "";
    size [0] = 0;
    data [1] = KF_SIGNATURE;
    size [1] = KF_SIGNATURE_LEN;
    data [2] = good.data;
    size [2] = good.size;
    s_send_frames (raw, 3, data, size);
    s_expect_error (raw, NULL, 400, "bad_frames");
    //  Ten frames (more than the broker keeps)
    for (int i = 0; i < 10; i++) {
        data [i] = i == 0 ? KF_SIGNATURE : (const char *) good.data;
        size [i] = i == 0 ? KF_SIGNATURE_LEN : good.size;
    }
    s_send_frames (raw, 10, data, size);
    s_expect_error (raw, NULL, 400, "bad_frames");
    //  Signatures that are not exactly KEFU1, with a good body
    static const struct {
        const char *bytes;
        size_t len;
    } sigs [] = {
        { "KEFU2", 5 }, { "", 0 }, { "kefu1", 5 }, { "KEFU", 4 }, { "KEFU1\0", 6 }, { "KEFU10", 6 },
        { " KEFU1", 6 }, { "KFW1", 4 },
    };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs [0]; i++) {
        data [0] = sigs [i].bytes;
        size [0] = sigs [i].len;
        data [1] = good.data;
        size [1] = good.size;
        s_send_frames (raw, 2, data, size);
        s_expect_error (raw, NULL, 400, "bad_frames");
    }
    //  And the same body as a proper request works
    s_send_body (raw, good.data, good.size);
    msgpack_unpacked unpacked;
    const msgpack_object *result = s_expect_ok (raw, "frames-ok", &unpacked);
    CHECK (kf_mp_str_eq (result, "status", "ok"));
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&good);
}

//  --- Body: not one msgpack object, not a map, bad id (reply id nil) ---------------------------

static void
s_test_bodies (s_raw_t *raw)
{
    static const struct {
        const char *what;
        const char *bytes;
        size_t len;
        const char *name;
    } bodies [] = {
        { "empty",              "", 0, "bad_msgpack" },
        { "random bytes",       "\xc1\x9e\x07\xff\x13\x00\xab\xc1", 8, "bad_msgpack" },
        { "JSON text",          "{\"id\":\"x\",\"method\":\"health\"}", 28, "bad_msgpack" },
        { "truncated map",      "\x82\xa2id\xa5" "bad-t\xa6method", 17, "bad_msgpack" },
        { "truncated CJK",      "\x82\xa2id\xa6\xe8\xaf\xb7\xe6\xb1", 10, "bad_msgpack" },
        { "two objects",        "\x82\xa2id\xa1x\xa6method\xa6health\xc0", 21, "bad_msgpack" },
        { "two maps",           "\x80\x80", 2, "bad_msgpack" },
        { "str32 of 4 GB",      "\x83\xa2id\xa1s\xa6method\xa4" "chat\xa6params\x81\xa7message"
                                "\xdb\xff\xff\xff\xff\xe9\x80\x80", 42, "bad_msgpack" },
        { "array32 of 2^32-1",  "\x83\xa2id\xa1" "a\xa6method\xa4" "chat\xa6params\xdd\xff\xff\xff"
                                "\xff\x01\x02", 32, "bad_msgpack" },
        { "map32 of 2^32-1",    "\xdf\xff\xff\xff\xff\xa2id\xa1m", 10, "bad_msgpack" },
        { "bin32 of 4 GB",      "\x82\xa2id\xc6\xff\xff\xff\xff", 9, "bad_msgpack" },
        { "array",              "\x94\xa2id\xa1x\xa6method\xa6health", 20, "invalid_request" },
        { "string",             "\xa6health", 7, "invalid_request" },
        { "integer",            "\xcd\x01\x00", 3, "invalid_request" },
        { "negative integer",   "\xff", 1, "invalid_request" },
        { "nil",                "\xc0", 1, "invalid_request" },
        { "true",               "\xc3", 1, "invalid_request" },
        { "float",              "\xcb\x40\x09\x21\xfb\x54\x44\x2d\x18", 9, "invalid_request" },
        { "bin",                "\xc4\x02{}", 4, "invalid_request" },
        { "empty map",          "\x80", 1, "invalid_request" },
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies [0]; i++) {
        snprintf (raw->id, sizeof raw->id, "%s", bodies [i].what);
        s_send_body (raw, bodies [i].bytes, bodies [i].len);
        s_expect_error (raw, NULL, 400, bodies [i].name);
    }
    //  Ids the broker cannot echo
    static const char *json_ids [] = {
        "{\"method\":\"health\"}", "{\"id\":null,\"method\":\"health\"}",
        "{\"id\":42,\"method\":\"health\"}", "{\"id\":\"\",\"method\":\"health\"}",
        "{\"id\":[\"x\"],\"method\":\"health\"}", "{\"id\":{\"a\":1},\"method\":\"health\"}",
        "{\"id\":true,\"method\":\"health\"}", "{\"Id\":\"x\",\"method\":\"health\"}",
    };
    for (size_t i = 0; i < sizeof json_ids / sizeof json_ids [0]; i++) {
        msgpack_sbuffer body;
        h_pack_json (&body, "%s", json_ids [i]);
        snprintf (raw->id, sizeof raw->id, "json id %zu", i);
        s_send_body (raw, body.data, body.size);
        s_expect_error (raw, NULL, 400, "invalid_request");
        msgpack_sbuffer_destroy (&body);
    }
    static const struct {
        const char *bytes;
        size_t len;
    } bad_ids [] = {
        { "\xff", 1 }, { "r\xc0\xaf", 3 }, { "r\xed\xa0\x80", 4 }, { "\xf4\x90\x80\x80", 4 },
        { "id\xe8\xaf", 4 }, { "\x80", 1 },
    };
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids [0]; i++) {
        msgpack_sbuffer body;
        msgpack_sbuffer_init (&body);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 2);
        kf_mp_pack_cstr (&pk, "id");
        kf_mp_pack_str (&pk, bad_ids [i].bytes, bad_ids [i].len);
        kf_mp_pack_kv_str (&pk, "method", "health");
        snprintf (raw->id, sizeof raw->id, "utf8 id %zu", i);
        s_send_body (raw, body.data, body.size);
        s_expect_error (raw, NULL, 400, "invalid_request");
        msgpack_sbuffer_destroy (&body);
    }
    //  An id as bin, not str
    s_send_body (raw, "\x82\xa2id\xc4\x02id\xa6method\xa6health", 22);
    s_expect_error (raw, NULL, 400, "invalid_request");

    //  Length is in bytes: 126 bytes of CJK and 2 letters pass, one more byte does not
    char *cjk = s_repeat ("号", 42);
    char id [160];
    snprintf (id, sizeof id, "ab%s", cjk);
    CHECK_INT (strlen (id), 128);
    msgpack_sbuffer body;
    h_pack_json (&body, "{\"id\":\"%s\",\"method\":\"health\"}", id);
    s_send_body (raw, body.data, body.size);
    msgpack_sbuffer_destroy (&body);
    msgpack_unpacked unpacked;
    s_expect_ok (raw, id, &unpacked);
    msgpack_unpacked_destroy (&unpacked);
    snprintf (id, sizeof id, "abc%s", cjk);
    CHECK_INT (strlen (id), 129);
    h_pack_json (&body, "{\"id\":\"%s\",\"method\":\"health\"}", id);
    s_send_body (raw, body.data, body.size);
    msgpack_sbuffer_destroy (&body);
    s_expect_error (raw, NULL, 400, "invalid_request");
    free (cjk);

    //  Ids are echoed byte for byte, a NUL inside included
    s_send_body (raw, "\x82\xa2id\xa6" "a\0b\xe7\x94\xb2" "\xa6method\xa4nope", 23);
    s_expect_error_id (raw, "a\0b\xe7\x94\xb2", 6, 404, "unknown_method");
}

//  Nesting: the body map is level 1; 32 levels are fine, 33 and 40 are bad_msgpack
static void
s_test_nesting (s_raw_t *raw)
{
    for (int levels = 32; levels <= 40; levels += levels == 32 ? 1 : 7) {
        s_body_t body;
        char id [32];
        snprintf (id, sizeof id, "nest-%d", levels);
        snprintf (raw->id, sizeof raw->id, "%s", id);
        s_body_begin (&body, id, "chat");
        msgpack_pack_map (&body.pk, 2);                 //  params: level 2
        kf_mp_pack_kv_str (&body.pk, "message", "嵌套");
        kf_mp_pack_cstr (&body.pk, "inputs");
        for (int level = 3; level <= levels; level++) {
            msgpack_pack_map (&body.pk, 1);
            kf_mp_pack_cstr (&body.pk, "k");
        }
        msgpack_pack_int (&body.pk, 1);
        s_body_send (raw, &body);
        if (levels == 32) {
            msgpack_unpacked unpacked;
            const msgpack_object *result = s_expect_ok (raw, id, &unpacked);
            CHECK (kf_mp_get (result, "reply"));
            msgpack_unpacked_destroy (&unpacked);
        }
        else
            s_expect_error (raw, NULL, 400, "bad_msgpack");
    }
}

//  --- method and params (reply id kept) -------------------------------------------------------

static void
s_test_method_params (s_raw_t *raw)
{
    static const char *bodies [] = {
        "{\"id\":\"%s\"}", "{\"id\":\"%s\",\"method\":null}", "{\"id\":\"%s\",\"method\":7}",
        "{\"id\":\"%s\",\"method\":\"\"}", "{\"id\":\"%s\",\"method\":[\"chat\"]}",
        "{\"id\":\"%s\",\"method\":\"chat\",\"params\":[\"message\",\"hi\"]}",
        "{\"id\":\"%s\",\"method\":\"chat\",\"params\":\"{}\"}",
        "{\"id\":\"%s\",\"method\":\"health\",\"params\":1}",
        "{\"id\":\"%s\",\"method\":\"health\",\"params\":false}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies [0]; i++) {
        msgpack_sbuffer body;
        h_pack_json (&body, bodies [i], s_fresh_id (raw));
        s_send_body (raw, body.data, body.size);
        msgpack_sbuffer_destroy (&body);
        s_expect_error (raw, raw->id, 400, "invalid_request");
    }
    //  Method as bin
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_str (&pk, "id", s_fresh_id (raw));
    kf_mp_pack_cstr (&pk, "method");
    msgpack_pack_bin (&pk, 6);
    msgpack_pack_bin_body (&pk, "health", 6);
    s_send_body (raw, body.data, body.size);
    msgpack_sbuffer_destroy (&body);
    s_expect_error (raw, raw->id, 400, "invalid_request");
    //  Unknown methods: exact and case-sensitive
    s_bad (raw, "nope", "{}", 404, "unknown_method");
    s_bad (raw, "Chat", "{\"message\":\"hi\"}", 404, "unknown_method");
    s_bad (raw, "chat ", "{\"message\":\"hi\"}", 404, "unknown_method");
    s_bad (raw, "kb.item", "{}", 404, "unknown_method");
    s_bad (raw, "方法", NULL, 404, "unknown_method");
    char *long_method = s_repeat ("m", 64);
    s_bad (raw, long_method, NULL, 404, "unknown_method");
    free (long_method);
    long_method = s_repeat ("m", 65);
    s_bad (raw, long_method, NULL, 400, "invalid_request");
    free (long_method);
    //  A method name with a NUL after a known one is not that method
    msgpack_sbuffer_init (&body);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_str (&pk, "id", s_fresh_id (raw));
    kf_mp_pack_cstr (&pk, "method");
    kf_mp_pack_str (&pk, "health\0", 7);
    s_send_body (raw, body.data, body.size);
    msgpack_sbuffer_destroy (&body);
    s_expect_error (raw, raw->id, 404, "unknown_method");
    //  params nil and absent mean empty
    s_send_json (raw, "health", "null");
    msgpack_unpacked unpacked;
    s_expect_ok (raw, raw->id, &unpacked);
    msgpack_unpacked_destroy (&unpacked);
}

//  --- chat --------------------------------------------------------------------------------------

static void
s_test_chat (s_raw_t *raw)
{
    //  message
    s_bad (raw, "chat", NULL, 400, "missing_argument");
    s_bad (raw, "chat", "{}", 400, "missing_argument");
    s_bad (raw, "chat", "{\"message\":null}", 400, "missing_argument");
    s_bad (raw, "chat", "{\"message\":\"\"}", 400, "missing_argument");
    s_bad (raw, "chat", "{\"user_id\":\"u1\",\"stream\":true}", 400, "missing_argument");
    s_bad (raw, "chat", "{\"message\":5}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":-1.5}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":true}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":[\"你好\"]}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":{\"text\":\"你好\"}}", 400, "invalid_param");
    s_body_t body;
    s_body_begin (&body, s_fresh_id (raw), "chat");
    msgpack_pack_map (&body.pk, 1);
    kf_mp_pack_cstr (&body.pk, "message");
    msgpack_pack_bin (&body.pk, 6);
    msgpack_pack_bin_body (&body.pk, "你好", 6);
    s_body_send (raw, &body);
    s_expect_error (raw, raw->id, 400, "invalid_param");

    //  Invalid UTF-8 in the message
    static const struct {
        const char *bytes;
        size_t len;
    } bad_text [] = {
        { "\xff", 1 }, { "退货\xc0\xaf", 8 }, { "\xe0\x80\xaf", 3 }, { "a\xed\xa0\x80z", 5 },
        { "\xf4\x90\x80\x80", 4 }, { "你\xe5\xa5", 5 }, { "\x80好", 4 }, { "\xf8\x88\x80\x80\x80", 5 },
    };
    for (size_t i = 0; i < sizeof bad_text / sizeof bad_text [0]; i++)
        s_bad_str (raw, "chat", "message", bad_text [i].bytes, bad_text [i].len, 400, "invalid_utf8");
    //  A NUL would cut the stored text short: refused, in the message and in an id
    s_bad_str (raw, "chat", "message", "before\0after", 12, 400, "invalid_param");
    s_bad_str (raw, "chat", "bot_id", "de\0fault", 8, 400, "invalid_param");

    //  Length in characters: 4000 CJK characters (12000 bytes) are answered, 4001 are too_large
    char *text = s_repeat ("货", 4001);
    s_bad_str (raw, "chat", "message", text, strlen (text), 413, "too_large");
    s_body_begin (&body, s_fresh_id (raw), "chat");
    msgpack_pack_map (&body.pk, 1);
    kf_mp_pack_cstr (&body.pk, "message");
    kf_mp_pack_str (&body.pk, text, strlen (text) - 3);
    s_body_send (raw, &body);
    msgpack_unpacked unpacked;
    const msgpack_object *result = s_expect_ok (raw, raw->id, &unpacked);
    CHECK (kf_mp_get (result, "reply") && kf_mp_get (result, "session_id"));
    char *session = s_dup_str (result, "session_id");
    msgpack_unpacked_destroy (&unpacked);
    free (text);
    text = s_repeat ("a", 4001);
    s_bad_str (raw, "chat", "message", text, 4001, 413, "too_large");
    free (text);

    //  session_id: unknown, empty, too long, not a string, someone else's
    s_bad (raw, "chat", "{\"message\":\"hi\",\"session_id\":\"s_00000000000000000000\"}",
           404, "not_found");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"session_id\":\"\"}", 404, "not_found");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"session_id\":\"不存在的会话\"}", 404, "not_found");
    text = s_repeat ("s", 65);
    s_bad_str (raw, "chat", "session_id", text, 65, 413, "too_large");
    free (text);
    s_bad (raw, "chat", "{\"message\":\"hi\",\"session_id\":12}", 400, "invalid_param");
    s_bad_str (raw, "chat", "session_id", "s_\xff", 3, 400, "invalid_utf8");
    s_send_json (raw, "session.create", "{\"user_id\":\"owner\"}");
    result = s_expect_ok (raw, raw->id, &unpacked);
    char *owned = s_dup_str (result, "session_id");
    msgpack_unpacked_destroy (&unpacked);
    char params [512];
    snprintf (params, sizeof params, "{\"message\":\"hi\",\"session_id\":\"%s\",\"user_id\":\"thief\"}",
              owned);
    s_bad (raw, "chat", params, 404, "not_found");

    //  user_id, channel, bot_id
    text = s_repeat ("用", 129);
    s_bad_str (raw, "chat", "user_id", text, strlen (text), 413, "too_large");
    free (text);
    s_bad (raw, "chat", "{\"message\":\"hi\",\"user_id\":1001}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"channel\":\"fax\"}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"channel\":\"WEB\"}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"channel\":\"微信\"}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"channel\":3}", 400, "invalid_param");
    s_bad_str (raw, "chat", "channel", "web\xff", 4, 400, "invalid_utf8");
    text = s_repeat ("b", 65);
    s_bad_str (raw, "chat", "bot_id", text, 65, 413, "too_large");
    free (text);
    s_bad (raw, "chat", "{\"message\":\"hi\",\"bot_id\":[]}", 400, "invalid_param");

    //  labels: a map of strings to strings, at most 50
    s_bad (raw, "chat", "{\"message\":\"hi\",\"labels\":[\"vip\"]}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"labels\":\"vip=gold\"}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"labels\":{\"vip\":1}}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"labels\":{\"vip\":true,\"city\":\"上海\"}}",
           400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"labels\":{\"vip\":null}}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"labels\":{\"vip\":{\"level\":\"gold\"}}}",
           400, "invalid_param");
    s_body_begin (&body, s_fresh_id (raw), "chat");
    msgpack_pack_map (&body.pk, 2);
    kf_mp_pack_kv_str (&body.pk, "message", "hi");
    kf_mp_pack_cstr (&body.pk, "labels");
    msgpack_pack_map (&body.pk, 51);
    for (int i = 0; i < 51; i++) {
        char key [16];
        snprintf (key, sizeof key, "标签%d", i);
        kf_mp_pack_kv_str (&body.pk, key, "值");
    }
    s_body_send (raw, &body);
    s_expect_error (raw, raw->id, 413, "too_large");
    s_body_begin (&body, s_fresh_id (raw), "chat");
    msgpack_pack_map (&body.pk, 2);
    kf_mp_pack_kv_str (&body.pk, "message", "hi");
    kf_mp_pack_cstr (&body.pk, "labels");
    msgpack_pack_map (&body.pk, 1);
    kf_mp_pack_cstr (&body.pk, "vip");
    kf_mp_pack_str (&body.pk, "\xe9\x87\x91\xe5", 4);
    s_body_send (raw, &body);
    s_expect_error (raw, raw->id, 400, "invalid_utf8");
    s_body_begin (&body, s_fresh_id (raw), "chat");
    msgpack_pack_map (&body.pk, 2);
    kf_mp_pack_kv_str (&body.pk, "message", "hi");
    kf_mp_pack_cstr (&body.pk, "labels");
    msgpack_pack_map (&body.pk, 1);
    msgpack_pack_int (&body.pk, 7);
    kf_mp_pack_cstr (&body.pk, "seven");
    s_body_send (raw, &body);
    s_expect_error (raw, raw->id, 400, "invalid_param");

    //  stream: a bool; inputs: a map
    s_bad (raw, "chat", "{\"message\":\"hi\",\"stream\":\"true\"}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"stream\":1}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"stream\":{}}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"inputs\":[1,2]}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"inputs\":\"order=1\"}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"inputs\":7}", 400, "invalid_param");

    //  The first failing check in table order decides
    s_bad (raw, "chat", "{\"channel\":\"fax\",\"stream\":1}", 400, "missing_argument");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"channel\":\"fax\",\"stream\":1}", 400, "invalid_param");
    s_bad (raw, "chat", "{\"message\":\"hi\",\"session_id\":\"s_00000000000000000000\",\"stream\":1}",
           400, "invalid_param");

    //  None of this touched the session that was answered: it holds one turn
    snprintf (params, sizeof params, "{\"session_id\":\"%s\"}", session);
    s_send_json (raw, "history", params);
    result = s_expect_ok (raw, raw->id, &unpacked);
    CHECK_INT (kf_mp_get_int (result, "total", -1), 2);
    msgpack_unpacked_destroy (&unpacked);
    free (session);
    free (owned);
}

//  --- history, message.get, stream.fetch, session.create --------------------------------------

static void
s_test_reads (s_raw_t *raw)
{
    s_send_json (raw, "session.create", "{\"user_id\":\"reader\",\"channel\":\"web\"}");
    msgpack_unpacked unpacked;
    const msgpack_object *result = s_expect_ok (raw, raw->id, &unpacked);
    char *session = s_dup_str (result, "session_id");
    msgpack_unpacked_destroy (&unpacked);
    char params [256];

    s_bad (raw, "history", NULL, 400, "missing_argument");
    s_bad (raw, "history", "{}", 400, "missing_argument");
    s_bad (raw, "history", "{\"session_id\":null}", 400, "missing_argument");
    s_bad (raw, "history", "{\"session_id\":\"\"}", 400, "missing_argument");
    s_bad (raw, "history", "{\"session_id\":5}", 400, "invalid_param");
    s_bad (raw, "history", "{\"session_id\":\"s_00000000000000000000\"}", 404, "not_found");
    s_bad_str (raw, "history", "session_id", "s_\xc0\x80", 4, 400, "invalid_utf8");
    static const char *bad_paging [] = {
        "\"limit\":0", "\"limit\":101", "\"limit\":-1", "\"limit\":\"5\"", "\"limit\":2.5",
        "\"limit\":true", "\"offset\":-1", "\"offset\":2147483648", "\"offset\":0.5",
        "\"offset\":[0]",
    };
    for (size_t i = 0; i < sizeof bad_paging / sizeof bad_paging [0]; i++) {
        snprintf (params, sizeof params, "{\"session_id\":\"%s\",%s}", session, bad_paging [i]);
        s_bad (raw, "history", params, 400, "invalid_param");
    }
    //  limit and offset are checked before the session
    s_bad (raw, "history", "{\"limit\":0}", 400, "invalid_param");
    s_bad (raw, "history", "{\"session_id\":\"s_00000000000000000000\",\"offset\":-1}",
           400, "invalid_param");
    //  The edges are fine, and a whole float is an integer
    snprintf (params, sizeof params, "{\"session_id\":\"%s\",\"limit\":100,\"offset\":2147483647}",
              session);
    s_send_json (raw, "history", params);
    result = s_expect_ok (raw, raw->id, &unpacked);
    CHECK_INT (kf_mp_get_int (result, "total", -1), 0);
    msgpack_unpacked_destroy (&unpacked);
    snprintf (params, sizeof params, "{\"session_id\":\"%s\",\"limit\":1.0,\"user_id\":\"reader\"}",
              session);
    s_send_json (raw, "history", params);
    s_expect_ok (raw, raw->id, &unpacked);
    msgpack_unpacked_destroy (&unpacked);
    snprintf (params, sizeof params, "{\"session_id\":\"%s\",\"user_id\":\"someone\"}", session);
    s_bad (raw, "history", params, 404, "not_found");

    s_bad (raw, "message.get", NULL, 400, "missing_argument");
    s_bad (raw, "message.get", "{}", 400, "missing_argument");
    s_bad (raw, "message.get", "{\"message_id\":null}", 400, "missing_argument");
    s_bad (raw, "message.get", "{\"message_id\":\"12\"}", 400, "invalid_param");
    s_bad (raw, "message.get", "{\"message_id\":0}", 400, "invalid_param");
    s_bad (raw, "message.get", "{\"message_id\":-5}", 400, "invalid_param");
    s_bad (raw, "message.get", "{\"message_id\":1.5}", 400, "invalid_param");
    s_bad (raw, "message.get", "{\"message_id\":[1]}", 400, "invalid_param");
    s_bad (raw, "message.get", "{\"message_id\":18446744073709551615}", 400, "invalid_param");
    s_bad (raw, "message.get", "{\"message_id\":999999}", 404, "not_found");
    s_bad (raw, "message.get", "{\"message_id\":9223372036854775807}", 404, "not_found");

    s_bad (raw, "stream.fetch", NULL, 400, "missing_argument");
    s_bad (raw, "stream.fetch", "{\"stream_id\":\"\"}", 400, "missing_argument");
    s_bad (raw, "stream.fetch", "{\"stream_id\":5}", 400, "invalid_param");
    s_bad (raw, "stream.fetch", "{\"stream_id\":\"no-such-stream-0001\"}", 404, "not_found");
    s_bad (raw, "stream.fetch", "{\"stream_id\":\"不存在\",\"from_seq\":3}", 404, "not_found");
    s_bad (raw, "stream.fetch", "{\"stream_id\":\"x\",\"from_seq\":-1}", 400, "invalid_param");
    s_bad (raw, "stream.fetch", "{\"stream_id\":\"x\",\"from_seq\":\"0\"}", 400, "invalid_param");
    s_bad_str (raw, "stream.fetch", "stream_id", "\xed\xb0\x80", 3, 400, "invalid_utf8");

    s_bad (raw, "session.create", "{\"channel\":\"fax\"}", 400, "invalid_param");
    s_bad (raw, "session.create", "{\"user_id\":7}", 400, "invalid_param");
    char *text = s_repeat ("u", 129);
    s_bad_str (raw, "session.create", "user_id", text, 129, 413, "too_large");
    free (text);
    text = s_repeat ("机", 65);
    s_bad_str (raw, "session.create", "bot_id", text, strlen (text), 413, "too_large");
    free (text);
    s_bad_str (raw, "session.create", "user_id", "\xf0\x9f\x98", 3, 400, "invalid_utf8");
    free (session);
}

//  --- kb.item.create -----------------------------------------------------------------------------

//  Sends kb.item.create with `count` items {question, answer} for `bot`.
static void
s_send_items (s_raw_t *raw, const char *bot, int count)
{
    s_body_t body;
    s_body_begin (&body, s_fresh_id (raw), "kb.item.create");
    msgpack_pack_map (&body.pk, 2);
    kf_mp_pack_kv_str (&body.pk, "bot_id", bot);
    kf_mp_pack_cstr (&body.pk, "items");
    msgpack_pack_array (&body.pk, count);
    for (int i = 0; i < count; i++) {
        char question [64];
        snprintf (question, sizeof question, "批量问题 %d 怎么办？", i);
        msgpack_pack_map (&body.pk, 2);
        kf_mp_pack_kv_str (&body.pk, "question", question);
        kf_mp_pack_kv_str (&body.pk, "answer", "请联系客服。");
    }
    s_body_send (raw, &body);
}

//  Checks entry `index` of a kb.item.create result; returns the item id (0 when rejected).
static int64_t
s_check_item (const msgpack_object *result, uint32_t index, const char *status, const char *error)
{
    const msgpack_object *data = kf_mp_get (result, "data");
    CHECK (data && data->type == MSGPACK_OBJECT_ARRAY && index < data->via.array.size);
    const msgpack_object *entry = &data->via.array.ptr [index];
    CHECK_INT (kf_mp_get_int (entry, "index", -1), index);
    char *got = s_dup_str (entry, "status");
    CHECK_STR (got, status);
    free (got);
    if (!error) {
        CHECK (kf_mp_get (entry, "error") == NULL);
        CHECK (kf_mp_get_int (entry, "id", 0) > 0);
        return kf_mp_get_int (entry, "id", 0);
    }
    kf_error_t err;
    CHECK (kf_error_unpack (kf_mp_get (entry, "error"), &err));
    CHECK_STR (kf_errc_name (err.errc), error);
    CHECK (kf_mp_get_int (kf_mp_get (entry, "error"), "code", 0) == kf_errc_code (err.errc));
    CHECK (err.message [0]);
    CHECK (kf_mp_get (entry, "id") == NULL);
    return 0;
}

static void
s_test_kb_items (s_raw_t *raw)
{
    s_bad (raw, "kb.item.create", NULL, 400, "missing_argument");
    s_bad (raw, "kb.item.create", "{\"bot_id\":\"x\"}", 400, "missing_argument");
    s_bad (raw, "kb.item.create", "{\"items\":[]}", 400, "invalid_param");
    s_bad (raw, "kb.item.create", "{\"items\":\"faq.jsonl\"}", 400, "invalid_param");
    s_bad (raw, "kb.item.create", "{\"items\":{\"question\":\"q\",\"answer\":\"a\"}}",
           400, "invalid_param");
    s_bad (raw, "kb.item.create", "{\"bot_id\":7,\"items\":[{\"question\":\"q\",\"answer\":\"a\"}]}",
           400, "invalid_param");
    char *long_bot = s_repeat ("b", 65);
    s_send_items (raw, long_bot, 1);
    s_expect_error (raw, raw->id, 413, "too_large");
    free (long_bot);
    s_send_items (raw, "bulk", 501);
    s_expect_error (raw, raw->id, 413, "too_large");
    //  500 is the limit, and it is accepted in full
    s_send_items (raw, "bulk", 500);
    msgpack_unpacked unpacked;
    const msgpack_object *result = s_expect_ok (raw, raw->id, &unpacked);
    CHECK_INT (kf_mp_get_int (result, "total", 0), 500);
    CHECK_INT (kf_mp_get_int (result, "created", 0), 500);
    CHECK_INT (kf_mp_get (result, "data")->via.array.size, 500);
    msgpack_unpacked_destroy (&unpacked);

    //  A mixed batch: each bad item is rejected on its own, the good ones are stored
    s_send_json (raw, "kb.item.create", "{\"bot_id\":\"mixed\",\"items\":["
        "{\"external_id\":\"ok-1\",\"question\":\"怎么开发票？\",\"answer\":\"在订单详情页申请。\"},"
        "{\"external_id\":\"no-answer\",\"question\":\"没有答案的问题\"},"
        "{\"question\":\"\",\"answer\":\"x\"},"
        "42,"
        "{\"question\":\"q\",\"answer\":\"a\",\"status\":2},"
        "{\"question\":\"q\",\"answer\":\"a\",\"keywords\":[\"\"]},"
        "{\"question\":\"q\",\"answer\":5},"
        "{\"external_id\":\"ok-2\",\"question\":\"运费怎么算？\",\"answer\":\"满99包邮。\","
        "\"keywords\":[\"运费\"],\"similar_questions\":[\"邮费多少\"],\"category\":\"物流\"}]}");
    result = s_expect_ok (raw, raw->id, &unpacked);
    CHECK_INT (kf_mp_get_int (result, "total", 0), 8);
    CHECK_INT (kf_mp_get_int (result, "created", -1), 2);
    CHECK_INT (kf_mp_get_int (result, "updated", -1), 0);
    int64_t first = s_check_item (result, 0, "created", NULL);
    s_check_item (result, 1, "rejected", "missing_argument");
    s_check_item (result, 2, "rejected", "missing_argument");
    s_check_item (result, 3, "rejected", "invalid_param");
    s_check_item (result, 4, "rejected", "invalid_param");
    s_check_item (result, 5, "rejected", "invalid_param");
    s_check_item (result, 6, "rejected", "invalid_param");
    int64_t second = s_check_item (result, 7, "created", NULL);
    CHECK (first != second);
    msgpack_unpacked_destroy (&unpacked);
    //  They were really stored: sending them again updates the same items
    s_send_json (raw, "kb.item.create", "{\"bot_id\":\"mixed\",\"items\":["
        "{\"external_id\":\"ok-1\",\"question\":\"怎么开发票？\",\"answer\":\"在订单详情页-申请开票。\"},"
        "{\"external_id\":\"ok-2\",\"question\":\"运费怎么算？\",\"answer\":\"满99元包邮。\"}]}");
    result = s_expect_ok (raw, raw->id, &unpacked);
    CHECK_INT (kf_mp_get_int (result, "updated", -1), 2);
    CHECK_INT (s_check_item (result, 0, "updated", NULL), first);
    CHECK_INT (s_check_item (result, 1, "updated", NULL), second);
    msgpack_unpacked_destroy (&unpacked);
}

//  --- After all that -----------------------------------------------------------------------------

//  The jobs counters of a stats reply sent on the raw socket
static void
s_stats (s_raw_t *raw, int64_t *requests, int64_t *errors)
{
    s_send_json (raw, "stats", NULL);
    msgpack_unpacked unpacked;
    const msgpack_object *result = s_expect_ok (raw, raw->id, &unpacked);
    const msgpack_object *jobs = kf_mp_get (result, "jobs");
    CHECK (jobs);
    *requests = kf_mp_get_int (jobs, "requests", -1);
    *errors = kf_mp_get_int (jobs, "errors", -1);
    msgpack_unpacked_destroy (&unpacked);
}

int
main (void)
{
    kf_harness_t h;
    h_init (&h, "bad-input");
    h_start_broker (&h, 1, NULL);
    s_raw_t raw;
    s_raw_open (&raw, &h);
    int64_t requests_before, errors_before;
    s_stats (&raw, &requests_before, &errors_before);
    int sent_before = raw.sent, errors_seen_before = raw.errors;

    s_test_frames (&raw);
    s_test_bodies (&raw);
    s_test_nesting (&raw);
    s_test_method_params (&raw);
    s_test_chat (&raw);
    s_test_reads (&raw);
    s_test_kb_items (&raw);

    //  Exactly one reply each: nothing else is waiting
    zmq_pollitem_t item = { raw.dealer, 0, ZMQ_POLLIN, 0 };
    CHECK_INT (zmq_poll (&item, 1, 300), 0);

    //  Every request and every error was counted (the second stats request counts itself)
    int64_t requests_after, errors_after;
    s_stats (&raw, &requests_after, &errors_after);
    CHECK_INT (requests_after - requests_before, raw.sent - sent_before);
    CHECK_INT (errors_after - errors_before, raw.errors - errors_seen_before);
    printf ("test_bad_input: %d requests, %d error replies\n", raw.sent, raw.errors);
    CHECK (raw.errors > 150);        //  The catalogue really ran

    //  The broker is alive (not a zombie either) and serves a normal client
    CHECK_INT (kill (h.broker, 0), 0);
    int status;
    CHECK_INT (waitpid (h.broker, &status, WNOHANG), 0);
    kf_client_t *client = h_client (&h);
    kf_reply_t *reply = h_call (client, "chat", "{\"message\":\"你好\",\"user_id\":\"after\"}");
    CHECK (reply->ok);
    char *intent = s_dup_str (reply->result, "intent");
    CHECK_STR (intent, "chitchat");
    free (intent);
    kf_reply_destroy (&reply);
    reply = h_call (client, "health", NULL);
    CHECK (reply->ok);
    CHECK_INT (kf_mp_get_int (reply->result, "workers", 0), 1);
    kf_reply_destroy (&reply);
    kf_client_destroy (&client);
    s_raw_close (&raw);
    h_cleanup (&h);
    TEST_PASS ("test_bad_input");
    return 0;
}
