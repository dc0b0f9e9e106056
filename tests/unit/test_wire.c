/*  test_wire.c - unit test for the protocol codec (common/wire.c, common/mpack.c) and the helpers it
    stands on (common/utf8.c, common/dict.c): request decoding against the whole catalogue of bad
    input, error replies, parameter validators and their limits, in-process and without sockets. */
#include "common/dict.h"
#include "common/json_codec.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include "common/wire.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>

//  --- Building inputs ---------------------------------------------------------------------------

//  A msgpack body under construction: raw bytes, JSON and packer calls can be mixed.
typedef struct {
    msgpack_sbuffer buf;        //  The bytes so far
    msgpack_packer pk;          //  Packs into buf
} s_body_t;

static void
s_body_init (s_body_t *self)
{
    msgpack_sbuffer_init (&self->buf);
    msgpack_packer_init (&self->pk, &self->buf, msgpack_sbuffer_write);
}

static void
s_body_free (s_body_t *self)
{
    msgpack_sbuffer_destroy (&self->buf);
}

//  Appends `len` raw bytes.
static void
s_body_raw (s_body_t *self, const char *bytes, size_t len)
{
    msgpack_sbuffer_write (&self->buf, bytes, len);
}

//  Appends the msgpack form of one JSON value (the test's own JSON must parse).
static void
s_body_json (s_body_t *self, const char *json)
{
    char err [128];
    if (kf_json_to_msgpack (json, strlen (json), &self->pk, err, sizeof err)) {
        fprintf (stderr, "bad test JSON %s: %s\n", json, err);
        exit (1);
    }
}

//  Appends a str of exactly these bytes (which need not be UTF-8).
static void
s_body_str (s_body_t *self, const char *bytes, size_t len)
{
    kf_mp_pack_str (&self->pk, bytes, len);
}

//  A decoded tree that tests read through: the bytes and the objects pointing into them.
typedef struct {
    s_body_t body;
    msgpack_unpacked unpacked;
} s_tree_t;

//  Unpacks what `tree->body` holds; the bytes must be one valid object.
static const msgpack_object *
s_tree_unpack (s_tree_t *self)
{
    if (!kf_mp_unpack_one (self->body.buf.data, self->body.buf.size, &self->unpacked)) {
        fprintf (stderr, "test input of %zu bytes does not unpack\n", self->body.buf.size);
        exit (1);
    }
    return &self->unpacked.data;
}

static const msgpack_object *
s_tree_json (s_tree_t *self, const char *json)
{
    s_body_init (&self->body);
    s_body_json (&self->body, json);
    return s_tree_unpack (self);
}

static void
s_tree_free (s_tree_t *self)
{
    msgpack_unpacked_destroy (&self->unpacked);
    s_body_free (&self->body);
}

//  Fills `out` with `count` copies of the UTF-8 text `unit`; returns the byte length. Caller frees.
static char *
s_repeat (const char *unit, size_t count, size_t *len)
{
    size_t unit_len = strlen (unit);
    char *out = malloc (unit_len * count + 1);
    CHECK (out);
    for (size_t i = 0; i < count; i++)
        memcpy (out + i * unit_len, unit, unit_len);
    out [unit_len * count] = 0;
    *len = unit_len * count;
    return out;
}

//  True when an error message is fit for a client: non-empty, short enough, valid UTF-8.
static bool
s_is_good_message (const char *message)
{
    size_t len = strnlen (message, 256);
    return len > 0 && len < 256 && kf_utf8_is_valid (message, len);
}

//  --- Error table ------------------------------------------------------------------------------

static void
s_test_error_table (void)
{
    //  The codes and names of PROTOCOL.md section 6.2: clients decide on these
    static const struct {
        kf_errc_t errc;
        int code;
        const char *name;
    } table [] = {
        { KF_E_BAD_FRAMES, 400, "bad_frames" },       { KF_E_BAD_MSGPACK, 400, "bad_msgpack" },
        { KF_E_INVALID_REQUEST, 400, "invalid_request" },
        { KF_E_MISSING_ARGUMENT, 400, "missing_argument" },
        { KF_E_INVALID_PARAM, 400, "invalid_param" }, { KF_E_INVALID_UTF8, 400, "invalid_utf8" },
        { KF_E_UNKNOWN_METHOD, 404, "unknown_method" }, { KF_E_NOT_FOUND, 404, "not_found" },
        { KF_E_CONFLICT, 409, "conflict" },           { KF_E_TOO_LARGE, 413, "too_large" },
        { KF_E_SESSION_CLOSED, 409, "session_closed" },
        { KF_E_BUSY, 429, "busy" },                   { KF_E_RATE_LIMITED, 429, "rate_limited" },
        { KF_E_INTERNAL, 500, "internal" },           { KF_E_WORKER_LOST, 500, "worker_lost" },
        { KF_E_UPSTREAM, 502, "upstream_error" },     { KF_E_UNAVAILABLE, 503, "unavailable" },
        { KF_E_TIMEOUT, 504, "timeout" },
    };
    size_t count = sizeof table / sizeof table [0];
    CHECK_INT (count, KF_E_COUNT - 1);
    for (size_t i = 0; i < count; i++) {
        CHECK_INT (kf_errc_code (table [i].errc), table [i].code);
        CHECK_STR (kf_errc_name (table [i].errc), table [i].name);
        CHECK_INT (kf_errc_from_name (table [i].name, strlen (table [i].name)), table [i].errc);
    }
    //  Unknown names (a worker's invention, a prefix, a longer word) become internal
    CHECK_INT (kf_errc_from_name ("no_such_error", 13), KF_E_INTERNAL);
    CHECK_INT (kf_errc_from_name ("busy", 3), KF_E_INTERNAL);
    CHECK_INT (kf_errc_from_name ("busyness", 8), KF_E_INTERNAL);
    CHECK_INT (kf_errc_from_name ("", 0), KF_E_INTERNAL);
    //  Out-of-range values never index past the table
    CHECK_INT (kf_errc_code (KF_E_COUNT), 500);
    CHECK_STR (kf_errc_name ((kf_errc_t) 1000), "internal");
}

//  --- Request decoding -------------------------------------------------------------------------

//  Decodes [sig, body] as `frames` frames and checks the outcome: `want` KF_OK for success, else
//  that error; `want_id` is the id the reply must echo (NULL: nil).
static void
s_check_decode_frames (const char *what, int frames, const char *sig, size_t sig_len,
                       const char *body, size_t body_len, kf_errc_t want, const char *want_id)
{
    kf_request_t req;
    kf_error_t err;
    memset (&err, 0x55, sizeof err);
    int rc = kf_request_decode (&req, frames, sig, sig_len, body, body_len, &err);
    kf_errc_t got = rc == 0 ? KF_OK : err.errc;
    if (got != want)
        fprintf (stderr, "case '%s': got %s, want %s\n", what, kf_errc_name (got), kf_errc_name (want));
    CHECK_INT (got, want);
    CHECK_INT (rc, want == KF_OK ? 0 : -1);
    if (rc) {
        if (!s_is_good_message (err.message))
            fprintf (stderr, "case '%s': bad error message\n", what);
        CHECK (s_is_good_message (err.message));
        CHECK_INT (err.retry_after_ms, 0);
    }
    if (want_id) {
        if (!req.id || req.id_len != strlen (want_id) || memcmp (req.id, want_id, req.id_len))
            fprintf (stderr, "case '%s': id not kept\n", what);
        CHECK (req.id && req.id_len == strlen (want_id) && memcmp (req.id, want_id, req.id_len) == 0);
    }
    else {
        if (req.id)
            fprintf (stderr, "case '%s': id should be nil\n", what);
        CHECK (req.id == NULL);
    }
    kf_request_release (&req);
    kf_request_release (&req);          //  Safe twice
    CHECK (req.id == NULL && req.method == NULL && req.params == NULL);
}

static void
s_check_decode (const char *what, const s_body_t *body, kf_errc_t want, const char *want_id)
{
    s_check_decode_frames (what, 2, KF_SIGNATURE, KF_SIGNATURE_LEN, body->buf.data, body->buf.size,
                           want, want_id);
}

//  A body given as JSON, decoded as a proper 2-frame request
static void
s_check_decode_json (const char *json, kf_errc_t want, const char *want_id)
{
    s_body_t body;
    s_body_init (&body);
    s_body_json (&body, json);
    s_check_decode (json, &body, want, want_id);
    s_body_free (&body);
}

static void
s_test_decode_good (void)
{
    //  The byte-level example of PROTOCOL.md 2.4
    static const char health [] = "\x83\xa2\x69\x64\xa5\x72\x65\x71\x2d\x31\xa6\x6d\x65\x74\x68\x6f"
                                  "\x64\xa6\x68\x65\x61\x6c\x74\x68\xa6\x70\x61\x72\x61\x6d\x73\x80";
    CHECK_INT (sizeof health - 1, 32);
    kf_request_t req;
    kf_error_t err;
    CHECK_INT (kf_request_decode (&req, 2, "KEFU1", 5, health, 32, &err), 0);
    CHECK_INT (req.id_len, 5);
    CHECK (memcmp (req.id, "req-1", 5) == 0);
    CHECK_INT (req.method_len, 6);
    CHECK (memcmp (req.method, "health", 6) == 0);
    CHECK (req.params && req.params->type == MSGPACK_OBJECT_MAP && req.params->via.map.size == 0);
    kf_request_release (&req);

    //  Without params: 82 and the first 23 bytes after 83, 24 bytes in all
    char short_body [24];
    short_body [0] = (char) 0x82;
    memcpy (short_body + 1, health + 1, 23);
    CHECK_INT (kf_request_decode (&req, 2, "KEFU1", 5, short_body, 24, &err), 0);
    CHECK (req.params == NULL);
    CHECK (memcmp (req.method, "health", 6) == 0);
    kf_request_release (&req);

    //  params nil is an empty map; key order and unknown keys do not matter
    s_body_t body;
    s_body_init (&body);
    s_body_json (&body, "{\"params\":null,\"extra\":[1,2],\"method\":\"stats\",\"id\":\"请求-1\"}");
    CHECK_INT (kf_request_decode (&req, 2, "KEFU1", 5, body.buf.data, body.buf.size, &err), 0);
    CHECK (req.params == NULL);
    CHECK_INT (req.id_len, strlen ("请求-1"));
    CHECK (memcmp (req.id, "请求-1", req.id_len) == 0);
    kf_request_release (&req);
    s_body_free (&body);

    //  Chat params reach the method untouched
    s_body_init (&body);
    s_body_json (&body, "{\"id\":\"c1\",\"method\":\"chat\",\"params\":{\"message\":\"怎么申请退货？\","
                        "\"labels\":{\"会员\":\"金卡\"},\"stream\":true}}");
    CHECK_INT (kf_request_decode (&req, 2, "KEFU1", 5, body.buf.data, body.buf.size, &err), 0);
    CHECK (kf_mp_str_eq (req.params, "message", "怎么申请退货？"));
    CHECK (kf_mp_get_bool (req.params, "stream", false));
    CHECK (kf_mp_str_eq (kf_mp_get (req.params, "labels"), "会员", "金卡"));
    kf_request_release (&req);
    s_body_free (&body);

    //  Duplicate keys: the first one wins
    s_check_decode_json ("{\"id\":\"first\",\"id\":\"second\",\"method\":\"health\"}", KF_OK, "first");
    s_check_decode_json ("{\"id\":\"d\",\"method\":\"health\",\"method\":7}", KF_OK, "d");

    //  The id limit is in bytes: 42 CJK characters and 2 letters are 128 bytes, one more is 129
    size_t len;
    char *cjk = s_repeat ("号", 43, &len);
    char id [160];
    snprintf (id, sizeof id, "ab%.*s", 126, cjk);
    s_body_init (&body);
    s_body_raw (&body, "\x82", 1);
    kf_mp_pack_kv_str (&body.pk, "id", id);
    kf_mp_pack_kv_str (&body.pk, "method", "health");
    CHECK_INT (strlen (id), 128);
    s_check_decode ("id of 128 bytes", &body, KF_OK, id);
    s_body_free (&body);
    snprintf (id, sizeof id, "abc%.*s", 126, cjk);
    s_body_init (&body);
    s_body_raw (&body, "\x82", 1);
    kf_mp_pack_kv_str (&body.pk, "id", id);
    kf_mp_pack_kv_str (&body.pk, "method", "health");
    CHECK_INT (strlen (id), 129);
    s_check_decode ("id of 129 bytes", &body, KF_E_INVALID_REQUEST, NULL);
    s_body_free (&body);
    free (cjk);

    //  A method of 64 bytes passes decoding (it is unknown, but that is the dispatcher's call)
    char method [66];
    memset (method, 'm', 65);
    method [64] = 0;
    s_body_init (&body);
    s_body_raw (&body, "\x82", 1);
    kf_mp_pack_kv_str (&body.pk, "id", "m64");
    kf_mp_pack_kv_str (&body.pk, "method", method);
    s_check_decode ("method of 64 bytes", &body, KF_OK, "m64");
    s_body_free (&body);
    method [64] = 'm';
    method [65] = 0;
    s_body_init (&body);
    s_body_raw (&body, "\x82", 1);
    kf_mp_pack_kv_str (&body.pk, "id", "m65");
    kf_mp_pack_kv_str (&body.pk, "method", method);
    s_check_decode ("method of 65 bytes", &body, KF_E_INVALID_REQUEST, "m65");
    s_body_free (&body);
}

//  Frame count and signature: checks 1 and 2 of PROTOCOL.md 2.5, before the body is looked at
static void
s_test_decode_frames (void)
{
    const char *good = "\x82\xa2id\xa2r1\xa6method\xa6health";
    size_t good_len = strlen (good);
    s_check_decode_frames ("proper", 2, "KEFU1", 5, good, good_len, KF_OK, "r1");
    s_check_decode_frames ("0 frames", 0, "", 0, "", 0, KF_E_BAD_FRAMES, NULL);
    s_check_decode_frames ("1 frame", 1, "KEFU1", 5, "", 0, KF_E_BAD_FRAMES, NULL);
    s_check_decode_frames ("3 frames", 3, "KEFU1", 5, good, good_len, KF_E_BAD_FRAMES, NULL);
    s_check_decode_frames ("4 frames", 4, "KEFU1", 5, good, good_len, KF_E_BAD_FRAMES, NULL);
    s_check_decode_frames ("negative frames", -1, "KEFU1", 5, good, good_len, KF_E_BAD_FRAMES, NULL);
    s_check_decode_frames ("KEFU2", 2, "KEFU2", 5, good, good_len, KF_E_BAD_FRAMES, NULL);
    s_check_decode_frames ("empty signature", 2, "", 0, good, good_len, KF_E_BAD_FRAMES, NULL);
    s_check_decode_frames ("lower case", 2, "kefu1", 5, good, good_len, KF_E_BAD_FRAMES, NULL);
    s_check_decode_frames ("short signature", 2, "KEFU", 4, good, good_len, KF_E_BAD_FRAMES, NULL);
    s_check_decode_frames ("signature and NUL", 2, "KEFU1\0", 6, good, good_len, KF_E_BAD_FRAMES, NULL);
    s_check_decode_frames ("worker signature", 2, "KFW1", 4, good, good_len, KF_E_BAD_FRAMES, NULL);
    //  A REQ socket's delimiter: ["", "KEFU1", body] is 3 frames with an empty first one
    s_check_decode_frames ("REQ delimiter", 3, "", 0, "KEFU1", 5, KF_E_BAD_FRAMES, NULL);
}

//  Bodies that are not exactly one msgpack object, or not a map: checks 3 and 4
static void
s_test_decode_bad_msgpack (void)
{
    static const struct {
        const char *what;
        const char *bytes;
        size_t len;
        kf_errc_t want;
    } cases [] = {
        { "empty body",         "", 0, KF_E_BAD_MSGPACK },
        { "reserved byte c1",   "\xc1", 1, KF_E_BAD_MSGPACK },
        { "random bytes",       "\xc1\x07\xff\x13\x99\x00\xab", 7, KF_E_BAD_MSGPACK },
        { "JSON text",          "{\"id\":\"x\",\"method\":\"health\"}", 28, KF_E_BAD_MSGPACK },
        { "map missing values", "\x83\xa2id", 4, KF_E_BAD_MSGPACK },
        { "truncated str",      "\x81\xa2id\xa5re", 7, KF_E_BAD_MSGPACK },
        { "two objects",        "\x81\xa2id\xa1x\xc0", 7, KF_E_BAD_MSGPACK },
        { "two maps",           "\x80\x80", 2, KF_E_BAD_MSGPACK },
        { "trailing zero byte", "\x80\x00", 2, KF_E_BAD_MSGPACK },
        { "str8 length cut",    "\xd9", 1, KF_E_BAD_MSGPACK },
        { "map16 length cut",   "\xde\x00", 2, KF_E_BAD_MSGPACK },
        { "str32 of 4 GB",      "\xdb\xff\xff\xff\xff" "abc", 8, KF_E_BAD_MSGPACK },
        { "bin32 of 4 GB",      "\xc6\xff\xff\xff\xff" "abc", 8, KF_E_BAD_MSGPACK },
        { "ext32 of 4 GB",      "\xc9\xff\xff\xff\xff\x01" "ab", 8, KF_E_BAD_MSGPACK },
        { "array32 of 2^32-1",  "\xdd\xff\xff\xff\xff\xc0\xc0", 7, KF_E_BAD_MSGPACK },
        { "map32 of 2^32-1",    "\xdf\xff\xff\xff\xff\xa1k\xc0", 8, KF_E_BAD_MSGPACK },
        { "array16 too long",   "\xdc\x00\x05\x01\x02\x03\x04", 7, KF_E_BAD_MSGPACK },
        { "fixmap too long",    "\x8f\xa1k\xc0", 4, KF_E_BAD_MSGPACK },
        { "array",              "\x92\xa2id\xa1x", 6, KF_E_INVALID_REQUEST },
        { "string",             "\xa5hello", 6, KF_E_INVALID_REQUEST },
        { "integer",            "\x2a", 1, KF_E_INVALID_REQUEST },
        { "uint64",             "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, KF_E_INVALID_REQUEST },
        { "nil",                "\xc0", 1, KF_E_INVALID_REQUEST },
        { "true",               "\xc3", 1, KF_E_INVALID_REQUEST },
        { "float64",            "\xcb\x40\x09\x21\xfb\x54\x44\x2d\x18", 9, KF_E_INVALID_REQUEST },
        { "bin",                "\xc4\x02{}", 4, KF_E_INVALID_REQUEST },
        { "fixext",             "\xd4\x01\x02", 3, KF_E_INVALID_REQUEST },
        { "empty map",          "\x80", 1, KF_E_INVALID_REQUEST },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++)
        s_check_decode_frames (cases [i].what, 2, "KEFU1", 5, cases [i].bytes, cases [i].len,
                               cases [i].want, NULL);

    //  Every strict prefix of a good request is truncated msgpack; the whole passes
    s_body_t body;
    s_body_init (&body);
    s_body_json (&body, "{\"id\":\"t1\",\"method\":\"chat\",\"params\":{\"message\":\"我的快递到哪了\","
                        "\"labels\":{\"vip\":\"gold\"},\"inputs\":{\"n\":[1,2.5,-300,70000,null]}}}");
    for (size_t len = 0; len < body.buf.size; len++)
        s_check_decode_frames ("truncated", 2, "KEFU1", 5, body.buf.data, len, KF_E_BAD_MSGPACK, NULL);
    s_check_decode ("whole", &body, KF_OK, "t1");
    s_body_free (&body);
}

//  Depth: the body map is level 1; 32 levels pass, 33 are bad_msgpack (and the id is not read)
static void
s_check_depth (int levels, bool is_map_chain, kf_errc_t want)
{
    s_body_t body;
    s_body_init (&body);
    s_body_raw (&body, "\x83", 1);
    kf_mp_pack_kv_str (&body.pk, "id", "deep");
    kf_mp_pack_kv_str (&body.pk, "method", "chat");
    kf_mp_pack_cstr (&body.pk, "params");
    //  Levels 2.. are the chain; the innermost holds one integer
    for (int level = 2; level <= levels; level++) {
        if (is_map_chain) {
            s_body_raw (&body, "\x81", 1);
            kf_mp_pack_cstr (&body.pk, "k");
        }
        else
            s_body_raw (&body, "\x91", 1);
    }
    s_body_raw (&body, "\x07", 1);
    char what [64];
    snprintf (what, sizeof what, "%d levels of %s", levels, is_map_chain ? "maps" : "arrays");
    //  The chain starts at params: a map chain keeps params a map, an array chain makes it invalid
    kf_errc_t expect = want;
    if (want == KF_OK && !is_map_chain && levels >= 2)
        expect = KF_E_INVALID_REQUEST;
    s_check_decode (what, &body, expect, want == KF_E_BAD_MSGPACK ? NULL : "deep");
    s_body_free (&body);
}

static void
s_test_decode_depth (void)
{
    s_check_depth (2, true, KF_OK);
    s_check_depth (32, true, KF_OK);
    s_check_depth (33, true, KF_E_BAD_MSGPACK);
    s_check_depth (40, true, KF_E_BAD_MSGPACK);
    s_check_depth (32, false, KF_OK);
    s_check_depth (33, false, KF_E_BAD_MSGPACK);
    s_check_depth (1000, false, KF_E_BAD_MSGPACK);
}

//  Check 5 (id, reply id nil) and checks 6 and 7 (method, params, reply id kept)
static void
s_test_decode_fields (void)
{
    s_check_decode_json ("{\"method\":\"health\"}", KF_E_INVALID_REQUEST, NULL);
    s_check_decode_json ("{\"id\":null,\"method\":\"health\"}", KF_E_INVALID_REQUEST, NULL);
    s_check_decode_json ("{\"id\":42,\"method\":\"health\"}", KF_E_INVALID_REQUEST, NULL);
    s_check_decode_json ("{\"id\":-1,\"method\":\"health\"}", KF_E_INVALID_REQUEST, NULL);
    s_check_decode_json ("{\"id\":true,\"method\":\"health\"}", KF_E_INVALID_REQUEST, NULL);
    s_check_decode_json ("{\"id\":[\"x\"],\"method\":\"health\"}", KF_E_INVALID_REQUEST, NULL);
    s_check_decode_json ("{\"id\":{\"x\":1},\"method\":\"health\"}", KF_E_INVALID_REQUEST, NULL);
    s_check_decode_json ("{\"id\":\"\",\"method\":\"health\"}", KF_E_INVALID_REQUEST, NULL);
    s_check_decode_json ("{\"ID\":\"x\",\"method\":\"health\"}", KF_E_INVALID_REQUEST, NULL);
    s_check_decode_json ("{\"id\":\"x\"}", KF_E_INVALID_REQUEST, "x");
    s_check_decode_json ("{\"id\":\"x\",\"method\":null}", KF_E_INVALID_REQUEST, "x");
    s_check_decode_json ("{\"id\":\"x\",\"method\":7}", KF_E_INVALID_REQUEST, "x");
    s_check_decode_json ("{\"id\":\"x\",\"method\":\"\"}", KF_E_INVALID_REQUEST, "x");
    s_check_decode_json ("{\"id\":\"x\",\"method\":[\"chat\"]}", KF_E_INVALID_REQUEST, "x");
    s_check_decode_json ("{\"id\":\"x\",\"method\":\"chat\",\"params\":[]}", KF_E_INVALID_REQUEST, "x");
    s_check_decode_json ("{\"id\":\"x\",\"method\":\"chat\",\"params\":\"{}\"}",
                         KF_E_INVALID_REQUEST, "x");
    s_check_decode_json ("{\"id\":\"x\",\"method\":\"chat\",\"params\":0}", KF_E_INVALID_REQUEST, "x");
    s_check_decode_json ("{\"id\":\"x\",\"method\":\"chat\",\"params\":false}",
                         KF_E_INVALID_REQUEST, "x");
    //  Decoding does not judge method names: an unknown one is the dispatcher's unknown_method
    s_check_decode_json ("{\"id\":\"x\",\"method\":\"nope\"}", KF_OK, "x");

    //  Ids that are not UTF-8, or bin instead of str; a map key of bin type is not "id"
    static const struct {
        const char *what;
        const char *bytes;
        size_t len;
    } ids [] = {
        { "id 0xff",            "\xff", 1 },
        { "id overlong slash",  "\xc0\xaf", 2 },
        { "id surrogate",       "r\xed\xa0\x80", 4 },
        { "id past U+10FFFF",   "\xf4\x90\x80\x80", 4 },
        { "id cut CJK",         "\xe8\xaf\xb7\xe6\xb1", 5 },
        { "id lone continuation", "a\x80z", 3 },
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids [0]; i++) {
        s_body_t body;
        s_body_init (&body);
        s_body_raw (&body, "\x82\xa2id", 4);
        s_body_str (&body, ids [i].bytes, ids [i].len);
        kf_mp_pack_kv_str (&body.pk, "method", "health");
        s_check_decode (ids [i].what, &body, KF_E_INVALID_REQUEST, NULL);
        s_body_free (&body);
    }
    s_body_t body;
    s_body_init (&body);
    s_body_raw (&body, "\x82\xa2id\xc4\x02r1", 8);
    kf_mp_pack_kv_str (&body.pk, "method", "health");
    s_check_decode ("id as bin", &body, KF_E_INVALID_REQUEST, NULL);
    s_body_free (&body);
    s_body_init (&body);
    s_body_raw (&body, "\x82\xc4\x02id\xa2r1", 8);
    kf_mp_pack_kv_str (&body.pk, "method", "health");
    s_check_decode ("key id as bin", &body, KF_E_INVALID_REQUEST, NULL);
    s_body_free (&body);
    s_body_init (&body);
    s_body_raw (&body, "\x82\xa2id\xa2r1\xa6method\xc4\x06health", 22);
    s_check_decode ("method as bin", &body, KF_E_INVALID_REQUEST, "r1");
    s_body_free (&body);
    //  A NUL inside the id is valid UTF-8 and is kept byte for byte
    s_body_init (&body);
    s_body_raw (&body, "\x82\xa2id\xa3" "a\0b", 8);
    kf_mp_pack_kv_str (&body.pk, "method", "health");
    kf_request_t req;
    kf_error_t err;
    CHECK_INT (kf_request_decode (&req, 2, "KEFU1", 5, body.buf.data, body.buf.size, &err), 0);
    CHECK_INT (req.id_len, 3);
    CHECK (memcmp (req.id, "a\0b", 3) == 0);
    kf_request_release (&req);
    s_body_free (&body);
}

//  --- Replies and error maps -------------------------------------------------------------------

//  Unpacks a packed reply, which must be exactly one object of the reply shape.
static const msgpack_object *
s_unpack_reply (s_body_t *body, msgpack_unpacked *out)
{
    CHECK (kf_mp_unpack_one (body->buf.data, body->buf.size, out));
    const msgpack_object *reply = &out->data;
    CHECK (reply->type == MSGPACK_OBJECT_MAP);
    CHECK_INT (reply->via.map.size, 3);
    return reply;
}

static void
s_test_reply_roundtrip (void)
{
    //  Error with retry_after_ms and an id: 4-key error map, the id byte for byte
    kf_error_t err, back;
    kf_error_set (&err, KF_E_BUSY, "%d chat jobs pending; retry later", 10000);
    err.retry_after_ms = 100;
    s_body_t body;
    s_body_init (&body);
    kf_reply_pack_error (&body.pk, "请求-9", strlen ("请求-9"), &err);
    msgpack_unpacked unpacked;
    const msgpack_object *reply = s_unpack_reply (&body, &unpacked);
    CHECK (kf_mp_str_eq (reply, "id", "请求-9"));
    const msgpack_object *ok = kf_mp_get (reply, "ok");
    CHECK (ok && ok->type == MSGPACK_OBJECT_BOOLEAN && !ok->via.boolean);
    const msgpack_object *error = kf_mp_get (reply, "error");
    CHECK (error && error->type == MSGPACK_OBJECT_MAP);
    CHECK_INT (error->via.map.size, 4);
    CHECK_INT (kf_mp_get_int (error, "code", 0), 429);
    CHECK (kf_mp_str_eq (error, "name", "busy"));
    CHECK (kf_mp_str_eq (error, "message", "10000 chat jobs pending; retry later"));
    CHECK_INT (kf_mp_get_int (error, "retry_after_ms", 0), 100);
    memset (&back, 0, sizeof back);
    CHECK (kf_error_unpack (error, &back));
    CHECK_INT (back.errc, KF_E_BUSY);
    CHECK_INT (back.retry_after_ms, 100);
    CHECK_STR (back.message, err.message);
    msgpack_unpacked_destroy (&unpacked);
    s_body_free (&body);

    //  No retry: 3 keys, no retry_after_ms; no id: nil
    kf_error_set (&err, KF_E_BAD_FRAMES, "first frame must be the signature KEFU1");
    s_body_init (&body);
    kf_reply_pack_error (&body.pk, NULL, 0, &err);
    reply = s_unpack_reply (&body, &unpacked);
    const msgpack_object *id = kf_mp_get (reply, "id");
    CHECK (id && id->type == MSGPACK_OBJECT_NIL);
    error = kf_mp_get (reply, "error");
    CHECK_INT (error->via.map.size, 3);
    CHECK (kf_mp_get (error, "retry_after_ms") == NULL);
    CHECK_INT (kf_mp_get_int (error, "code", 0), 400);
    back.retry_after_ms = 77;
    CHECK (kf_error_unpack (error, &back));
    CHECK_INT (back.errc, KF_E_BAD_FRAMES);
    CHECK_INT (back.retry_after_ms, 0);
    msgpack_unpacked_destroy (&unpacked);
    s_body_free (&body);

    //  Every error survives the trip, with a message of the full 255 bytes
    for (int e = KF_E_BAD_FRAMES; e < KF_E_COUNT; e++) {
        char text [300];
        memset (text, 'a' + e % 26, sizeof text);
        text [299] = 0;
        kf_error_set (&err, (kf_errc_t) e, "%s", text);
        CHECK_INT (strlen (err.message), 255);
        err.retry_after_ms = e;
        s_body_init (&body);
        kf_error_pack (&body.pk, &err);
        CHECK (kf_mp_unpack_one (body.buf.data, body.buf.size, &unpacked));
        CHECK (kf_error_unpack (&unpacked.data, &back));
        CHECK_INT (back.errc, e);
        CHECK_INT (back.retry_after_ms, e);
        CHECK_STR (back.message, err.message);
        msgpack_unpacked_destroy (&unpacked);
        s_body_free (&body);
    }

    //  What is not an error map
    s_tree_t tree;
    CHECK (!kf_error_unpack (s_tree_json (&tree, "[1,2]"), &back));
    s_tree_free (&tree);
    CHECK (!kf_error_unpack (s_tree_json (&tree, "{\"code\":400,\"message\":\"x\"}"), &back));
    s_tree_free (&tree);
    CHECK (!kf_error_unpack (s_tree_json (&tree, "{\"name\":400}"), &back));
    s_tree_free (&tree);
    CHECK (!kf_error_unpack (NULL, &back));
    //  A worker's unknown name becomes internal; a missing message is empty
    CHECK (kf_error_unpack (s_tree_json (&tree, "{\"name\":\"exploded\",\"code\":418}"), &back));
    CHECK_INT (back.errc, KF_E_INTERNAL);
    CHECK_STR (back.message, "");
    s_tree_free (&tree);

    //  Success head: PROTOCOL.md 2.4's captured reply starts with exactly these bytes
    s_body_init (&body);
    kf_reply_pack_ok_head (&body.pk, "req-1", 5);
    static const char head [] = "\x83\xa2\x69\x64\xa5\x72\x65\x71\x2d\x31\xa2\x6f\x6b\xc3\xa6\x72"
                                "\x65\x73\x75\x6c\x74";
    CHECK_INT (body.buf.size, sizeof head - 1);
    CHECK (memcmp (body.buf.data, head, sizeof head - 1) == 0);
    msgpack_pack_map (&body.pk, 1);
    kf_mp_pack_kv_str (&body.pk, "status", "ok");
    reply = s_unpack_reply (&body, &unpacked);
    CHECK (kf_mp_get_bool (reply, "ok", false));
    CHECK (kf_mp_str_eq (kf_mp_get (reply, "result"), "status", "ok"));
    msgpack_unpacked_destroy (&unpacked);
    s_body_free (&body);
    s_body_init (&body);
    kf_reply_pack_ok_head (&body.pk, NULL, 0);
    msgpack_pack_nil (&body.pk);
    reply = s_unpack_reply (&body, &unpacked);
    CHECK (kf_mp_get (reply, "id")->type == MSGPACK_OBJECT_NIL);
    msgpack_unpacked_destroy (&unpacked);
    s_body_free (&body);
}

//  kf_error_set keeps messages valid UTF-8 and within 255 bytes whatever they echo
static void
s_test_error_set_utf8 (void)
{
    kf_error_t err;
    err.retry_after_ms = 5;
    CHECK_INT (kf_error_set (&err, KF_E_NOT_FOUND, "session %s does not exist", "s_1"), -1);
    CHECK_INT (err.errc, KF_E_NOT_FOUND);
    CHECK_INT (err.retry_after_ms, 0);
    CHECK_STR (err.message, "session s_1 does not exist");

    //  Cut inside a 3-byte character: "x" + 84 whole characters is 253 bytes, the 85th is cut
    size_t len;
    char *cjk = s_repeat ("退", 100, &len);
    kf_error_set (&err, KF_E_TOO_LARGE, "x%s", cjk);
    CHECK_INT (strlen (err.message), 253);
    CHECK (kf_utf8_is_valid (err.message, strlen (err.message)));
    CHECK_INT (kf_utf8_count (err.message, strlen (err.message)), 85);
    //  Each offset of a 4-byte character at the cut
    char *emoji = s_repeat ("😀", 80, &len);
    for (int pad = 0; pad < 4; pad++) {
        kf_error_set (&err, KF_E_TOO_LARGE, "%.*s%s", pad, "abc", emoji);
        size_t got = strlen (err.message);
        CHECK (got <= 255 && got >= 252);
        CHECK_INT ((got - pad) % 4, 0);
        CHECK (kf_utf8_is_valid (err.message, got));
    }
    //  Exactly 255 bytes that end on a boundary are kept whole
    kf_error_set (&err, KF_E_TOO_LARGE, "%.255s", cjk);
    CHECK_INT (strlen (err.message), 255);
    CHECK (memcmp (err.message, cjk, 255) == 0);
    free (cjk);
    free (emoji);

    //  Echoed client bytes that are not UTF-8: replaced, the rest of the text kept
    static const char *bad [] = {
        "\xff\xfe", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe4\xbd", "\x80\x80\x80\x80\x80",
        "\xf8\x88\x80\x80\x80", "ok\xe4", "\xc3", "\xf0\x9f\x98",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        kf_error_set (&err, KF_E_NOT_FOUND, "session %s does not exist", bad [i]);
        len = strlen (err.message);
        CHECK (kf_utf8_is_valid (err.message, len));
        CHECK (strncmp (err.message, "session ", 8) == 0);
        CHECK (strstr (err.message, " does not exist") != NULL);
    }
    //  Invalid bytes at the very end of a full-length message
    char tail [300];
    memset (tail, 'a', sizeof tail);
    memcpy (tail + 250, "\xff\xe4\xbd\xa0\xe4\xbd\xa0", 7);
    tail [257] = 0;
    kf_error_set (&err, KF_E_INVALID_UTF8, "%s", tail);
    CHECK_INT (strlen (err.message), 254);
    CHECK (kf_utf8_is_valid (err.message, 254));
    CHECK (memcmp (err.message + 251, "你", 3) == 0);
    //  Mixed valid CJK and garbage keep the CJK
    kf_error_set (&err, KF_E_INVALID_UTF8, "%s", "您\xff好");
    CHECK (kf_utf8_is_valid (err.message, strlen (err.message)));
    CHECK (strstr (err.message, "您") && strstr (err.message, "好"));
}

//  --- Parameter validators ---------------------------------------------------------------------

//  Checks a validator's failure: return -1, the error, and a message naming the field.
static void
s_check_param_error (int rc, const kf_error_t *err, kf_errc_t want, const char *want_message)
{
    if (rc != -1 || err->errc != want)
        fprintf (stderr, "validator: rc %d, %s (%s), want %s\n", rc, kf_errc_name (err->errc),
                 rc ? err->message : "", kf_errc_name (want));
    CHECK_INT (rc, -1);
    CHECK_INT (err->errc, want);
    CHECK (s_is_good_message (err->message));
    if (want_message)
        CHECK_STR (err->message, want_message);
}

static void
s_test_param_str (void)
{
    s_tree_t tree;
    kf_error_t err;
    const char *value;
    size_t len;
    const msgpack_object *params = s_tree_json (&tree, "{\"message\":\"你好\",\"empty\":\"\","
        "\"nil\":null,\"num\":5,\"list\":[\"a\"],\"map\":{},\"yes\":true,\"real\":1.5}");
    CHECK_INT (kf_param_str (params, "message", true, 4000, &value, &len, &err), 0);
    CHECK_INT (len, 6);
    CHECK (memcmp (value, "你好", 6) == 0);
    //  Absent and nil: optional gives NULL, required is missing_argument
    CHECK_INT (kf_param_str (params, "absent", false, 10, &value, &len, &err), 0);
    CHECK (value == NULL && len == 0);
    CHECK_INT (kf_param_str (params, "nil", false, 10, &value, &len, &err), 0);
    CHECK (value == NULL);
    s_check_param_error (kf_param_str (params, "absent", true, 10, &value, &len, &err), &err,
                         KF_E_MISSING_ARGUMENT, "params.absent is required");
    s_check_param_error (kf_param_str (params, "nil", true, 10, &value, &len, &err), &err,
                         KF_E_MISSING_ARGUMENT, "params.nil is required");
    //  Empty: required is missing_argument, optional is fine (and not absent)
    s_check_param_error (kf_param_str (params, "empty", true, 10, &value, &len, &err), &err,
                         KF_E_MISSING_ARGUMENT, "params.empty must not be empty");
    CHECK_INT (kf_param_str (params, "empty", false, 10, &value, &len, &err), 0);
    CHECK (value != NULL && len == 0);
    //  Wrong types
    const char *wrong [] = { "num", "list", "map", "yes", "real" };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong [0]; i++)
        s_check_param_error (kf_param_str (params, wrong [i], true, 10, &value, &len, &err), &err,
                             KF_E_INVALID_PARAM, NULL);
    s_check_param_error (kf_param_str (params, "num", false, 10, &value, &len, &err), &err,
                         KF_E_INVALID_PARAM, "params.num must be a string");
    //  No params map at all (params absent from the request)
    CHECK_INT (kf_param_str (NULL, "user_id", false, 128, &value, &len, &err), 0);
    s_check_param_error (kf_param_str (NULL, "message", true, 4000, &value, &len, &err), &err,
                         KF_E_MISSING_ARGUMENT, "params.message is required");
    s_tree_free (&tree);

    //  The limit counts characters: 4000 CJK characters (12000 bytes) pass, 4001 are too_large
    char *text = s_repeat ("货", 4001, &len);
    s_body_init (&tree.body);
    s_body_raw (&tree.body, "\x82", 1);
    kf_mp_pack_cstr (&tree.body.pk, "exact");
    s_body_str (&tree.body, text, len - 3);
    kf_mp_pack_cstr (&tree.body.pk, "over");
    s_body_str (&tree.body, text, len);
    params = s_tree_unpack (&tree);
    size_t got;
    CHECK_INT (kf_param_str (params, "exact", true, 4000, &value, &got, &err), 0);
    CHECK_INT (got, 12000);
    s_check_param_error (kf_param_str (params, "over", true, 4000, &value, &got, &err), &err,
                         KF_E_TOO_LARGE, "params.over is longer than 4000 characters");
    CHECK_INT (kf_param_str (params, "over", true, 0, &value, &got, &err), 0);
    CHECK_INT (got, 12003);
    s_tree_free (&tree);
    free (text);
    //  4-byte characters count once each too
    text = s_repeat ("𠀀", 65, &len);
    s_body_init (&tree.body);
    s_body_raw (&tree.body, "\x82", 1);
    kf_mp_pack_cstr (&tree.body.pk, "bot_id");
    s_body_str (&tree.body, text, len - 4);
    kf_mp_pack_cstr (&tree.body.pk, "long");
    s_body_str (&tree.body, text, len);
    params = s_tree_unpack (&tree);
    CHECK_INT (kf_param_str (params, "bot_id", false, 64, &value, &got, &err), 0);
    s_check_param_error (kf_param_str (params, "long", false, 64, &value, &got, &err), &err,
                         KF_E_TOO_LARGE, NULL);
    s_tree_free (&tree);
    free (text);

    //  Invalid UTF-8 is invalid_utf8, checked before emptiness and length
    static const struct {
        const char *bytes;
        size_t len;
    } bad [] = {
        { "\xff", 1 }, { "abc\xc0\xaf", 5 }, { "\xe0\x80\xaf", 3 }, { "\xed\xbf\xbf", 3 },
        { "\xf4\x90\x80\x80", 4 }, { "\xf8\x88\x80\x80\x80", 5 }, { "你\xe5\xa5", 5 },
        { "\xe5\xa5\xbd\x80", 4 }, { "\xf0\x9f\x98", 3 }, { "a\xc3", 2 }, { "\xc2\x41", 2 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        s_body_init (&tree.body);
        s_body_raw (&tree.body, "\x81", 1);
        kf_mp_pack_cstr (&tree.body.pk, "message");
        s_body_str (&tree.body, bad [i].bytes, bad [i].len);
        params = s_tree_unpack (&tree);
        s_check_param_error (kf_param_str (params, "message", true, 1, &value, &got, &err), &err,
                             KF_E_INVALID_UTF8, "params.message is not valid UTF-8");
        s_tree_free (&tree);
    }
    //  A bin value where a string is expected is a wrong type, not text
    s_body_init (&tree.body);
    s_body_raw (&tree.body, "\x81\xa7message\xc4\x02hi", 13);
    params = s_tree_unpack (&tree);
    s_check_param_error (kf_param_str (params, "message", true, 10, &value, &got, &err), &err,
                         KF_E_INVALID_PARAM, NULL);
    s_tree_free (&tree);
}

static void
s_test_param_int_bool (void)
{
    s_tree_t tree;
    kf_error_t err;
    int64_t value;
    bool flag;
    const msgpack_object *params = s_tree_json (&tree, "{\"zero\":0,\"one\":1,\"hundred\":100,"
        "\"over\":101,\"minus\":-1,\"float\":20.0,\"half\":2.5,\"text\":\"5\",\"nil\":null,"
        "\"big\":2147483647,\"bigger\":2147483648,\"max\":9223372036854775807,"
        "\"u64\":18446744073709551615,\"t\":true,\"f\":false,\"list\":[]}");
    //  history.limit: 1..100, default 20
    CHECK_INT (kf_param_int (params, "absent", 1, 100, 20, &value, &err), 0);
    CHECK_INT (value, 20);
    CHECK_INT (kf_param_int (params, "nil", 1, 100, 20, &value, &err), 0);
    CHECK_INT (value, 20);
    CHECK_INT (kf_param_int (params, "one", 1, 100, 20, &value, &err), 0);
    CHECK_INT (value, 1);
    CHECK_INT (kf_param_int (params, "hundred", 1, 100, 20, &value, &err), 0);
    CHECK_INT (value, 100);
    CHECK_INT (kf_param_int (params, "float", 1, 100, 0, &value, &err), 0);
    CHECK_INT (value, 20);
    s_check_param_error (kf_param_int (params, "zero", 1, 100, 20, &value, &err), &err,
                         KF_E_INVALID_PARAM, "params.zero must be between 1 and 100");
    s_check_param_error (kf_param_int (params, "over", 1, 100, 20, &value, &err), &err,
                         KF_E_INVALID_PARAM, NULL);
    s_check_param_error (kf_param_int (params, "half", 1, 100, 20, &value, &err), &err,
                         KF_E_INVALID_PARAM, "params.half must be an integer");
    const char *wrong [] = { "text", "t", "list", "u64" };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong [0]; i++)
        s_check_param_error (kf_param_int (params, wrong [i], INT64_MIN, INT64_MAX, 0, &value, &err),
                             &err, KF_E_INVALID_PARAM, NULL);
    //  history.offset: 0..2147483647
    CHECK_INT (kf_param_int (params, "zero", 0, INT32_MAX, 0, &value, &err), 0);
    CHECK_INT (kf_param_int (params, "big", 0, INT32_MAX, 0, &value, &err), 0);
    CHECK_INT (value, INT32_MAX);
    s_check_param_error (kf_param_int (params, "bigger", 0, INT32_MAX, 0, &value, &err), &err,
                         KF_E_INVALID_PARAM, NULL);
    s_check_param_error (kf_param_int (params, "minus", 0, INT32_MAX, 0, &value, &err), &err,
                         KF_E_INVALID_PARAM, NULL);
    //  message.get: 1..INT64_MAX
    CHECK_INT (kf_param_int (params, "max", 1, INT64_MAX, 0, &value, &err), 0);
    CHECK (value == INT64_MAX);
    //  Booleans are true/false only
    CHECK_INT (kf_param_bool (params, "t", false, &flag, &err), 0);
    CHECK (flag);
    CHECK_INT (kf_param_bool (params, "f", true, &flag, &err), 0);
    CHECK (!flag);
    CHECK_INT (kf_param_bool (params, "absent", true, &flag, &err), 0);
    CHECK (flag);
    CHECK_INT (kf_param_bool (params, "nil", false, &flag, &err), 0);
    CHECK (!flag);
    const char *not_bool [] = { "one", "zero", "text", "list" };
    for (size_t i = 0; i < sizeof not_bool / sizeof not_bool [0]; i++)
        s_check_param_error (kf_param_bool (params, not_bool [i], false, &flag, &err), &err,
                             KF_E_INVALID_PARAM, NULL);
    s_tree_free (&tree);
}

//  Every integer encoding reads the same, as section 1.3 requires of decoders
static void
s_test_int_formats (void)
{
    static const struct {
        const char *bytes;
        size_t len;
        int64_t want;
    } ints [] = {
        { "\x00", 1, 0 },                       { "\x7f", 1, 127 },
        { "\xff", 1, -1 },                      { "\xe0", 1, -32 },
        { "\xcc\xff", 2, 255 },                 { "\xcd\x01\x00", 3, 256 },
        { "\xce\x00\x02\x51\x76", 5, 151926 },
        { "\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 9, 4294967296LL },
        { "\xd0\x80", 2, -128 },                { "\xd1\x80\x00", 3, -32768 },
        { "\xd2\xff\xff\xff\xfe", 5, -2 },
        { "\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9, INT64_MIN },
        { "\xd0\x05", 2, 5 },                   { "\xca\x41\xa0\x00\x00", 5, 20 },
        { "\xcb\x40\x34\x00\x00\x00\x00\x00\x00", 9, 20 },
        { "\xcb\xc0\x59\x00\x00\x00\x00\x00\x00", 9, -100 },
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints [0]; i++) {
        msgpack_unpacked unpacked;
        CHECK (kf_mp_unpack_one (ints [i].bytes, ints [i].len, &unpacked));
        int64_t value = 12345;
        CHECK (kf_mp_int (&unpacked.data, &value));
        CHECK (value == ints [i].want);
        msgpack_unpacked_destroy (&unpacked);
    }
    //  Not integers: fractions, NaN, infinity, beyond int64, strings, bools
    static const struct {
        const char *bytes;
        size_t len;
    } not_ints [] = {
        { "\xcb\x40\x04\x00\x00\x00\x00\x00\x00", 9 },     //  2.5
        { "\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", 9 },     //  NaN
        { "\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00", 9 },     //  +Inf
        { "\xcb\x44\x30\x00\x00\x00\x00\x00\x00", 9 },     //  2^68
        { "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9 },     //  UINT64_MAX
        { "\xa1" "5", 2 }, { "\xc3", 1 }, { "\xc0", 1 },
    };
    for (size_t i = 0; i < sizeof not_ints / sizeof not_ints [0]; i++) {
        msgpack_unpacked unpacked;
        CHECK (kf_mp_unpack_one (not_ints [i].bytes, not_ints [i].len, &unpacked));
        int64_t value;
        CHECK (!kf_mp_int (&unpacked.data, &value));
        msgpack_unpacked_destroy (&unpacked);
    }
    int64_t value;
    CHECK (!kf_mp_int (NULL, &value));
}

static void
s_test_param_maps (void)
{
    s_tree_t tree;
    kf_error_t err;
    const msgpack_object *value;
    char channel [16];
    const msgpack_object *params = s_tree_json (&tree, "{\"labels\":{\"member_level\":\"gold\","
        "\"城市\":\"上海\"},\"empty\":{},\"nil\":null,\"list\":[\"a\",\"b\"],\"text\":\"a=b\","
        "\"int_value\":{\"vip\":1},\"nil_value\":{\"vip\":null},\"map_value\":{\"vip\":{}},"
        "\"inputs\":{\"order_id\":123,\"items\":[{\"sku\":\"A1\"}]}}");
    CHECK_INT (kf_param_str_map (params, "labels", 50, &value, &err), 0);
    CHECK (value && value->via.map.size == 2);
    CHECK_INT (kf_param_str_map (params, "empty", 50, &value, &err), 0);
    CHECK (value && value->via.map.size == 0);
    CHECK_INT (kf_param_str_map (params, "absent", 50, &value, &err), 0);
    CHECK (value == NULL);
    CHECK_INT (kf_param_str_map (params, "nil", 50, &value, &err), 0);
    CHECK (value == NULL);
    s_check_param_error (kf_param_str_map (params, "list", 50, &value, &err), &err,
                         KF_E_INVALID_PARAM, "params.list must be a map");
    s_check_param_error (kf_param_str_map (params, "text", 50, &value, &err), &err,
                         KF_E_INVALID_PARAM, NULL);
    s_check_param_error (kf_param_str_map (params, "int_value", 50, &value, &err), &err,
                         KF_E_INVALID_PARAM, "params.int_value must map strings to strings");
    s_check_param_error (kf_param_str_map (params, "nil_value", 50, &value, &err), &err,
                         KF_E_INVALID_PARAM, NULL);
    s_check_param_error (kf_param_str_map (params, "map_value", 50, &value, &err), &err,
                         KF_E_INVALID_PARAM, NULL);
    s_check_param_error (kf_param_str_map (params, "labels", 1, &value, &err), &err,
                         KF_E_TOO_LARGE, NULL);
    //  inputs: any map
    CHECK_INT (kf_param_map (params, "inputs", &value, &err), 0);
    CHECK (value && kf_mp_get_int (value, "order_id", 0) == 123);
    CHECK_INT (kf_param_map (params, "nil", &value, &err), 0);
    CHECK (value == NULL);
    s_check_param_error (kf_param_map (params, "list", &value, &err), &err, KF_E_INVALID_PARAM, NULL);
    s_check_param_error (kf_param_map (params, "text", &value, &err), &err, KF_E_INVALID_PARAM, NULL);
    s_tree_free (&tree);

    //  labels: 50 entries pass, 51 are too_large; an int key is invalid_param; bad UTF-8 in a key
    //  or a value is invalid_utf8
    for (int entries = 50; entries <= 51; entries++) {
        s_body_init (&tree.body);
        s_body_raw (&tree.body, "\x81\xa6labels", 8);
        msgpack_pack_map (&tree.body.pk, entries);
        for (int i = 0; i < entries; i++) {
            char key [16];
            snprintf (key, sizeof key, "标签%d", i);
            kf_mp_pack_kv_str (&tree.body.pk, key, "值");
        }
        params = s_tree_unpack (&tree);
        int rc = kf_param_str_map (params, "labels", 50, &value, &err);
        if (entries == 50)
            CHECK_INT (rc, 0);
        else
            s_check_param_error (rc, &err, KF_E_TOO_LARGE, "params.labels has more than 50 entries");
        s_tree_free (&tree);
    }
    static const struct {
        const char *bytes;
        size_t len;
        kf_errc_t want;
    } labels [] = {
        { "\x81\x01\xa1v", 4, KF_E_INVALID_PARAM },
        { "\x81\xc4\x01k\xa1v", 6, KF_E_INVALID_PARAM },
        { "\x81\xa1k\xc4\x01v", 6, KF_E_INVALID_PARAM },
        { "\x81\xa1\xff\xa1v", 5, KF_E_INVALID_UTF8 },
        { "\x81\xa1k\xa2\xc0\xaf", 6, KF_E_INVALID_UTF8 },
        { "\x82\xa1k\xa1v\xa2k2\xa3\xed\xa0\x80", 12, KF_E_INVALID_UTF8 },
    };
    for (size_t i = 0; i < sizeof labels / sizeof labels [0]; i++) {
        s_body_init (&tree.body);
        s_body_raw (&tree.body, "\x81\xa6labels", 8);
        s_body_raw (&tree.body, labels [i].bytes, labels [i].len);
        params = s_tree_unpack (&tree);
        s_check_param_error (kf_param_str_map (params, "labels", 50, &value, &err), &err,
                             labels [i].want, NULL);
        s_tree_free (&tree);
    }

    //  channel: one of six, "api" by default
    static const char *good [] = { "web", "app", "wechat", "wxmini", "dingtalk", "api" };
    for (size_t i = 0; i < 6; i++) {
        char json [64];
        snprintf (json, sizeof json, "{\"channel\":\"%s\"}", good [i]);
        params = s_tree_json (&tree, json);
        memset (channel, 'z', sizeof channel);
        CHECK_INT (kf_param_channel (params, channel, &err), 0);
        CHECK_STR (channel, good [i]);
        s_tree_free (&tree);
    }
    params = s_tree_json (&tree, "{\"channel\":null}");
    CHECK_INT (kf_param_channel (params, channel, &err), 0);
    CHECK_STR (channel, "api");
    s_tree_free (&tree);
    CHECK_INT (kf_param_channel (NULL, channel, &err), 0);
    CHECK_STR (channel, "api");
    static const char *bad [] = {
        "{\"channel\":\"fax\"}", "{\"channel\":\"WEB\"}", "{\"channel\":\"\"}",
        "{\"channel\":\"web \"}",
        "{\"channel\":\"webx\"}", "{\"channel\":\"we\"}", "{\"channel\":3}", "{\"channel\":[\"web\"]}",
        "{\"channel\":\"微信\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        params = s_tree_json (&tree, bad [i]);
        s_check_param_error (kf_param_channel (params, channel, &err), &err, KF_E_INVALID_PARAM, NULL);
        s_tree_free (&tree);
    }
    s_body_init (&tree.body);
    s_body_raw (&tree.body, "\x81\xa7" "channel\xa3w\xff" "b", 13);
    params = s_tree_unpack (&tree);
    s_check_param_error (kf_param_channel (params, channel, &err), &err, KF_E_INVALID_UTF8, NULL);
    s_tree_free (&tree);
    //  A channel with a NUL after a known name is not that name
    s_body_init (&tree.body);
    s_body_raw (&tree.body, "\x81\xa7" "channel\xa4web\0", 14);
    params = s_tree_unpack (&tree);
    s_check_param_error (kf_param_channel (params, channel, &err), &err, KF_E_INVALID_PARAM, NULL);
    s_tree_free (&tree);
}

//  --- kf_mp_unpack_one --------------------------------------------------------------------------

//  `levels` nested containers; `inner` empty innermost or one holding a scalar
static bool
s_unpack_nested (int levels, unsigned char open, bool is_empty_inside)
{
    s_body_t body;
    s_body_init (&body);
    for (int i = 0; i < levels; i++) {
        char c = (char) (i == levels - 1 && is_empty_inside ? open & 0xf0 : open);
        s_body_raw (&body, &c, 1);
        if ((open & 0xf0) == 0x80 && !(i == levels - 1 && is_empty_inside))
            s_body_raw (&body, "\xa1k", 2);
    }
    if (!is_empty_inside)
        s_body_raw (&body, "\x2a", 1);
    msgpack_unpacked unpacked;
    bool ok = kf_mp_unpack_one (body.buf.data, body.buf.size, &unpacked);
    if (ok) {
        //  Walk down: the tree has exactly the levels built
        const msgpack_object *obj = &unpacked.data;
        int depth = 0;
        while (obj->type == MSGPACK_OBJECT_ARRAY || obj->type == MSGPACK_OBJECT_MAP) {
            depth++;
            if (obj->type == MSGPACK_OBJECT_ARRAY)
                obj = obj->via.array.size ? &obj->via.array.ptr [0] : NULL;
            else
                obj = obj->via.map.size ? &obj->via.map.ptr [0].val : NULL;
            if (!obj)
                break;
        }
        CHECK_INT (depth, levels);
    }
    else
        CHECK (unpacked.zone == NULL);      //  Initialised and empty on failure
    msgpack_unpacked_destroy (&unpacked);
    s_body_free (&body);
    return ok;
}

static void
s_test_unpack_one (void)
{
    for (int empty = 0; empty < 2; empty++) {
        CHECK (s_unpack_nested (1, 0x91, empty));
        CHECK (s_unpack_nested (31, 0x91, empty));
        CHECK (s_unpack_nested (32, 0x91, empty));
        CHECK (!s_unpack_nested (33, 0x91, empty));
        CHECK (s_unpack_nested (32, 0x81, empty));
        CHECK (!s_unpack_nested (33, 0x81, empty));
        CHECK (!s_unpack_nested (100000, 0x91, empty));
    }
    //  Depth counts nesting, not how many containers there are: 1000 siblings at level 2 pass
    s_body_t body;
    s_body_init (&body);
    msgpack_pack_array (&body.pk, 1000);
    for (int i = 0; i < 1000; i++)
        s_body_raw (&body, "\x91\x90", 2);
    msgpack_unpacked unpacked;
    CHECK (kf_mp_unpack_one (body.buf.data, body.buf.size, &unpacked));
    CHECK_INT (unpacked.data.via.array.size, 1000);
    msgpack_unpacked_destroy (&unpacked);
    s_body_free (&body);

    //  Declared lengths far beyond the bytes present: refused without trying to allocate them
    static const struct {
        const char *bytes;
        size_t len;
    } huge [] = {
        { "\xdb\xff\xff\xff\xff" "ab", 7 },                 //  str32 of 4 GB
        { "\xdb\x00\x00\x00\x03" "ab", 7 },                 //  str32 one byte short
        { "\xd9\x05" "abcd", 6 },                           //  str8 one byte short
        { "\xc6\xff\xff\xff\xff", 5 },                      //  bin32 of 4 GB, no payload
        { "\xc9\xff\xff\xff\xff\x05", 6 },                  //  ext32 of 4 GB
        { "\xc7\x02\x05" "a", 4 },                          //  ext8 one byte short
        { "\xdd\xff\xff\xff\xff", 5 },                      //  array32 of 2^32-1
        { "\xdd\xff\xff\xff\xff\xc0\xc0\xc0\xc0", 9 },
        { "\xdf\xff\xff\xff\xff\xa1k\xa1v", 9 },            //  map32 of 2^32-1
        { "\xdc\xff\xff\x01", 4 },                          //  array16 of 65535
        { "\xde\x00\x02\xa1k\xa1v\xa1k", 9 },               //  map16 missing a value
        { "\x91\xdd\x7f\xff\xff\xff\x00", 7 },              //  nested array32
        { "\xcf\x00", 2 }, { "\xcb\x40", 2 }, { "\xd8\x01", 2 },
        { "\xc1", 1 }, { "", 0 },
    };
    for (size_t i = 0; i < sizeof huge / sizeof huge [0]; i++) {
        CHECK (!kf_mp_unpack_one (huge [i].bytes, huge [i].len, &unpacked));
        msgpack_unpacked_destroy (&unpacked);
    }
    //  Containers of nils: each element takes a byte, so the exact count passes
    char nils [70000];
    nils [0] = (char) 0xdc;
    nils [1] = (char) 0xff;
    nils [2] = (char) 0xff;
    memset (nils + 3, 0xc0, sizeof nils - 3);
    CHECK (kf_mp_unpack_one (nils, 3 + 65535, &unpacked));
    CHECK_INT (unpacked.data.via.array.size, 65535);
    msgpack_unpacked_destroy (&unpacked);
    CHECK (!kf_mp_unpack_one (nils, 3 + 65534, &unpacked));
    CHECK (!kf_mp_unpack_one (nils, 3 + 65536, &unpacked));     //  trailing byte
    //  Extension types and bin decode as themselves (kefu ignores them, the decoder must not fail)
    CHECK (kf_mp_unpack_one ("\x92\xd4\x01\x02\xc4\x00", 6, &unpacked));
    msgpack_unpacked_destroy (&unpacked);
}

//  --- mpack helpers -----------------------------------------------------------------------------

static void
s_test_mpack_helpers (void)
{
    s_tree_t tree;
    const msgpack_object *map = s_tree_json (&tree, "{\"s\":\"文本\",\"i\":-7,\"f\":0.25,\"b\":true,"
                                                   "\"n\":null,\"whole\":3.0}");
    char *copy = kf_mp_dup_str (map, "s");
    CHECK_STR (copy, "文本");
    free (copy);
    CHECK (kf_mp_dup_str (map, "i") == NULL);
    CHECK (kf_mp_dup_str (map, "missing") == NULL);
    CHECK_INT (kf_mp_get_int (map, "i", 0), -7);
    CHECK_INT (kf_mp_get_int (map, "whole", 0), 3);
    CHECK_INT (kf_mp_get_int (map, "f", 99), 99);
    CHECK_INT (kf_mp_get_int (map, "s", 99), 99);
    CHECK (kf_mp_get_double (map, "f", 0) == 0.25);
    CHECK (kf_mp_get_double (map, "i", 0) == -7.0);
    CHECK (kf_mp_get_double (map, "s", 1.5) == 1.5);
    CHECK (kf_mp_get_bool (map, "b", false));
    CHECK (kf_mp_get_bool (map, "i", true));
    CHECK (kf_mp_str_eq (map, "s", "文本"));
    CHECK (!kf_mp_str_eq (map, "s", "文"));
    CHECK (!kf_mp_str_eq (map, "i", "-7"));
    CHECK (kf_mp_get (map, "") == NULL);
    CHECK (kf_mp_get (kf_mp_get (map, "s"), "s") == NULL);      //  Not a map
    CHECK (kf_mp_get (NULL, "s") == NULL);
    s_tree_free (&tree);
}

//  --- UTF-8 -------------------------------------------------------------------------------------

static void
s_test_utf8 (void)
{
    static const struct {
        const char *bytes;
        size_t len;
        bool is_valid;
    } cases [] = {
        { "", 0, true },                         { "plain ascii", 11, true },
        { "退货", 6, true },                      { "\xc2\x80", 2, true },           //  U+0080
        { "\xdf\xbf", 2, true },                 { "\xe0\xa0\x80", 3, true },       //  U+07FF, U+0800
        { "\xef\xbf\xbf", 3, true },             { "\xf0\x90\x80\x80", 4, true },   //  U+FFFF, U+10000
        { "\xf4\x8f\xbf\xbf", 4, true },         { "\xed\x9f\xbf", 3, true },       //  U+10FFFF, U+D7FF
        { "\xee\x80\x80", 3, true },             { "a\0b", 3, true },               //  U+E000, NUL
        //  Overlong forms
        { "\xc0\x80", 2, false },                { "\xc1\xbf", 2, false },
        { "\xe0\x80\x80", 3, false },            { "\xe0\x9f\xbf", 3, false },
        { "\xf0\x80\x80\x80", 4, false },        { "\xf0\x8f\xbf\xbf", 4, false },
        //  Surrogates
        { "\xed\xa0\x80", 3, false },            { "\xed\xbf\xbf", 3, false },
        { "\xed\xa0\xbd\xed\xb8\x80", 6, false },
        //  Beyond U+10FFFF, and bytes that never start a character
        { "\xf4\x90\x80\x80", 4, false },        { "\xf7\xbf\xbf\xbf", 4, false },
        { "\xf8\x88\x80\x80\x80", 5, false },    { "\xfc\x84\x80\x80\x80\x80", 6, false },
        { "\xfe", 1, false },                    { "\xff", 1, false },
        { "\x80", 1, false },                    { "\xbf", 1, false },
        //  Truncated at the end, or interrupted in the middle
        { "\xc3", 1, false },                    { "\xe9\x80", 2, false },
        { "\xf0\x9f\x98", 3, false },            { "退\xe8", 4, false },
        { "\xe9\x80" "a", 3, false },            { "\xf0\x9f" "\xe9\x80\x80", 5, false },
        { "\xc3\xc3\xa9", 3, false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        if (kf_utf8_is_valid (cases [i].bytes, cases [i].len) != cases [i].is_valid)
            fprintf (stderr, "utf8 case %zu\n", i);
        CHECK (kf_utf8_is_valid (cases [i].bytes, cases [i].len) == cases [i].is_valid);
    }
    //  Encode and decode agree at every boundary
    static const uint32_t points [] = { 0, 0x41, 0x7f, 0x80, 0x7ff, 0x800, 0x9000, 0xd7ff, 0xe000,
                                        0xfffd, 0xffff, 0x10000, 0x1f600, 0x10ffff };
    static const int lengths [] = { 1, 1, 1, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4, 4 };
    for (size_t i = 0; i < sizeof points / sizeof points [0]; i++) {
        char out [4];
        uint32_t cp = 0xdeadbeef;
        CHECK_INT (kf_utf8_encode (points [i], out), lengths [i]);
        CHECK_INT (kf_utf8_decode (out, lengths [i], &cp), lengths [i]);
        CHECK_INT (cp, points [i]);
        CHECK_INT (kf_utf8_decode (out, lengths [i] - 1, &cp), 0);     //  One byte short
    }
    char out [4];
    CHECK_INT (kf_utf8_encode (0xd800, out), 0);
    CHECK_INT (kf_utf8_encode (0xdfff, out), 0);
    CHECK_INT (kf_utf8_encode (0x110000, out), 0);
    uint32_t cp;
    CHECK_INT (kf_utf8_decode ("\xe9\x80\x80", 3, &cp), 3);
    CHECK_INT (cp, 0x9000);
    CHECK_INT (kf_utf8_decode ("", 0, &cp), 0);

    //  Counting characters
    CHECK_INT (kf_utf8_count ("", 0), 0);
    CHECK_INT (kf_utf8_count ("退货", 6), 2);
    CHECK_INT (kf_utf8_count ("App「我的」😀", strlen ("App「我的」😀")), 8);
    CHECK_INT (kf_utf8_count ("a\0b", 3), 3);

    //  Complete prefix: a stream cut inside a character keeps the partial bytes back
    const char *text = "您好";                          //  e6 82 a8 e5 a5 bd
    CHECK_INT (kf_utf8_complete_prefix (text, 6), 6);
    CHECK_INT (kf_utf8_complete_prefix (text, 5), 3);
    CHECK_INT (kf_utf8_complete_prefix (text, 4), 3);
    CHECK_INT (kf_utf8_complete_prefix (text, 3), 3);
    CHECK_INT (kf_utf8_complete_prefix (text, 2), 0);
    CHECK_INT (kf_utf8_complete_prefix (text, 1), 0);
    CHECK_INT (kf_utf8_complete_prefix (text, 0), 0);
    const char *mixed = "a😀";                          //  61 f0 9f 98 80
    CHECK_INT (kf_utf8_complete_prefix (mixed, 5), 5);
    CHECK_INT (kf_utf8_complete_prefix (mixed, 4), 1);
    CHECK_INT (kf_utf8_complete_prefix (mixed, 3), 1);
    CHECK_INT (kf_utf8_complete_prefix (mixed, 2), 1);
    CHECK_INT (kf_utf8_complete_prefix (mixed, 1), 1);
    CHECK_INT (kf_utf8_complete_prefix ("ab", 2), 2);
    CHECK_INT (kf_utf8_complete_prefix ("\xc3\xa9", 1), 0);
    //  Every prefix of a long mixed text ends where the whole characters end
    const char *long_text = "客服 kefu 😀 退货退款 ü 𠀀!";
    size_t long_len = strlen (long_text);
    for (size_t len = 0; len <= long_len; len++) {
        size_t keep = kf_utf8_complete_prefix (long_text, len);
        CHECK (keep <= len && len - keep < 4);
        CHECK (kf_utf8_is_valid (long_text, keep));
        //  The longest: one more byte after `keep` up to `len` would not be a boundary
        for (size_t longer = keep + 1; longer <= len; longer++)
            CHECK (!kf_utf8_is_valid (long_text, longer));
    }
}

//  --- dict -----------------------------------------------------------------------------------------

static void
s_test_dict (void)
{
    kf_dict_t *dict = kf_dict_new ();
    CHECK (dict);
    CHECK_INT (kf_dict_size (dict), 0);
    static int values [20000];
    char key [32];
    //  Many keys, with a growing table
    for (int i = 0; i < 20000; i++) {
        int len = snprintf (key, sizeof key, "s_%08x", i * 2654435761u);
        CHECK (kf_dict_put (dict, key, len, &values [i]) == NULL);
    }
    CHECK_INT (kf_dict_size (dict), 20000);
    for (int i = 0; i < 20000; i++) {
        int len = snprintf (key, sizeof key, "s_%08x", i * 2654435761u);
        CHECK (kf_dict_get (dict, key, len) == &values [i]);
    }
    CHECK (kf_dict_get (dict, "s_", 2) == NULL);
    CHECK (kf_dict_get (dict, "", 0) == NULL);
    //  Replace returns the previous value
    int len = snprintf (key, sizeof key, "s_%08x", 7 * 2654435761u);
    int other;
    CHECK (kf_dict_put (dict, key, len, &other) == &values [7]);
    CHECK (kf_dict_get (dict, key, len) == &other);
    CHECK_INT (kf_dict_size (dict), 20000);
    CHECK (kf_dict_put (dict, key, len, &values [7]) == &other);

    //  Iteration sees every entry once; removing the entry just returned is allowed
    static unsigned char seen [20000];
    memset (seen, 0, sizeof seen);
    size_t cursor = 0;
    const char *k;
    void *v;
    size_t visited = 0, removed = 0;
    while (kf_dict_next (dict, &cursor, &k, &v)) {
        int index = (int) ((int *) v - values);
        CHECK (index >= 0 && index < 20000);
        CHECK_INT (seen [index], 0);
        seen [index] = 1;
        visited++;
        if (index % 3 == 0) {
            CHECK (kf_dict_remove (dict, k, strlen (k)) == v);
            removed++;
        }
    }
    CHECK_INT (visited, 20000);
    CHECK_INT (kf_dict_size (dict), 20000 - removed);
    for (int i = 0; i < 20000; i++) {
        len = snprintf (key, sizeof key, "s_%08x", i * 2654435761u);
        CHECK (kf_dict_get (dict, key, len) == (i % 3 == 0 ? NULL : &values [i]));
    }
    //  Removing again is NULL; iteration after removal sees only the rest
    CHECK (kf_dict_remove (dict, "s_00000000", 10) == NULL);
    cursor = visited = 0;
    while (kf_dict_next (dict, &cursor, NULL, &v))
        visited++;
    CHECK_INT (visited, 20000 - removed);
    //  Remove everything while iterating: the table is empty and still usable
    cursor = 0;
    while (kf_dict_next (dict, &cursor, &k, NULL))
        CHECK (kf_dict_remove (dict, k, strlen (k)) != NULL);
    CHECK_INT (kf_dict_size (dict), 0);
    cursor = 0;
    CHECK (!kf_dict_next (dict, &cursor, &k, &v));
    kf_dict_destroy (&dict);
    CHECK (dict == NULL);
    kf_dict_destroy (&dict);            //  Destroying NULL is a no-op

    //  Binary keys: NUL bytes inside, prefixes of each other, high bytes, the empty key
    dict = kf_dict_new ();
    static const struct {
        const char *bytes;
        size_t len;
    } keys [] = {
        { "", 0 }, { "a", 1 }, { "a\0", 2 }, { "a\0\0", 3 }, { "\0", 1 }, { "\0a", 2 },
        { "\xff\xfe", 2 }, { "\xe9\x80\x80", 3 }, { "\xe9\x80", 2 }, { "A", 1 },
    };
    size_t nkeys = sizeof keys / sizeof keys [0];
    for (size_t i = 0; i < nkeys; i++)
        CHECK (kf_dict_put (dict, keys [i].bytes, keys [i].len, &values [i]) == NULL);
    CHECK_INT (kf_dict_size (dict), nkeys);
    for (size_t i = 0; i < nkeys; i++)
        CHECK (kf_dict_get (dict, keys [i].bytes, keys [i].len) == &values [i]);
    CHECK (kf_dict_remove (dict, "a\0", 2) == &values [2]);
    CHECK (kf_dict_get (dict, "a", 1) == &values [1]);
    CHECK (kf_dict_get (dict, "a\0\0", 3) == &values [3]);
    CHECK (kf_dict_get (dict, "a\0", 2) == NULL);
    kf_dict_destroy (&dict);

    //  Churn: a small live set with endless insert/remove must not fill the table with tombstones
    dict = kf_dict_new ();
    for (int i = 0; i < 200000; i++) {
        len = snprintf (key, sizeof key, "job-%d", i);
        kf_dict_put (dict, key, len, &values [i % 20000]);
        if (i >= 8) {
            len = snprintf (key, sizeof key, "job-%d", i - 8);
            CHECK (kf_dict_remove (dict, key, len) == &values [(i - 8) % 20000]);
        }
    }
    CHECK_INT (kf_dict_size (dict), 8);
    for (int i = 200000 - 8; i < 200000; i++) {
        len = snprintf (key, sizeof key, "job-%d", i);
        CHECK (kf_dict_get (dict, key, len) == &values [i % 20000]);
    }
    kf_dict_destroy (&dict);
}

int
main (void)
{
    s_test_error_table ();
    s_test_decode_good ();
    s_test_decode_frames ();
    s_test_decode_bad_msgpack ();
    s_test_decode_depth ();
    s_test_decode_fields ();
    s_test_reply_roundtrip ();
    s_test_error_set_utf8 ();
    s_test_param_str ();
    s_test_param_int_bool ();
    s_test_int_formats ();
    s_test_param_maps ();
    s_test_unpack_one ();
    s_test_mpack_helpers ();
    s_test_utf8 ();
    s_test_dict ();
    TEST_PASS ("test_wire");
    return 0;
}
