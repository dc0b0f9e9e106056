/*  test_json_codec.c - unit test for common/json_codec: parsing, rendering, errors, pretty output. */
#include "common/json_codec.h"
#include "testutil.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>

//  One parsed JSON value: the packed bytes and the unpacked object pointing into them.
typedef struct {
    msgpack_sbuffer sbuf;
    msgpack_unpacked result;
} parsed_t;

//  Parses `json` (must succeed) into `p`; free with s_parsed_free.
static void s_parse (parsed_t *p, const char *json, size_t len)
{
    char err [128];
    msgpack_packer pk;
    msgpack_sbuffer_init (&p->sbuf);
    msgpack_packer_init (&pk, &p->sbuf, msgpack_sbuffer_write);
    int rc = kf_json_to_msgpack (json, len, &pk, err, sizeof err);
    if (rc != 0)
        fprintf (stderr, "unexpected parse error for '%.*s': %s\n", (int) len, json, err);
    CHECK_INT (rc, 0);
    CHECK_STR (err, "");
    size_t offset = 0;
    msgpack_unpacked_init (&p->result);
    CHECK_INT (msgpack_unpack_next (&p->result, p->sbuf.data, p->sbuf.size, &offset),
               MSGPACK_UNPACK_SUCCESS);
    CHECK_INT (offset, p->sbuf.size);
}

static void s_parsed_free (parsed_t *p)
{
    msgpack_unpacked_destroy (&p->result);
    msgpack_sbuffer_destroy (&p->sbuf);
}

//  Parses `json` and checks that the compact rendering equals `want`.
static void s_check_render (const char *json, const char *want)
{
    parsed_t p;
    s_parse (&p, json, strlen (json));
    char *text = kf_json_from_msgpack (&p.result.data);
    CHECK_STR (text, want);
    free (text);
    s_parsed_free (&p);
}

//  Checks that `json` (`len` bytes) fails with exactly the message `want`.
static void s_check_error_len (const char *json, size_t len, const char *want)
{
    char err [128] = "not touched";
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    CHECK_INT (kf_json_to_msgpack (json, len, &pk, err, sizeof err), -1);
    CHECK_STR (err, want);
    msgpack_sbuffer_destroy (&sbuf);
}

static void s_check_error (const char *json, const char *want)
{
    s_check_error_len (json, strlen (json), want);
}

static void s_test_round_trips (void)
{
    const char *doc = "{\"q\":\"怎么申请退货？\",\"tags\":[\"退货\",\"售后\"],"
                      "\"meta\":{\"score\":0.5,\"ok\":true,\"bad\":false,\"none\":null,"
                      "\"deep\":[[[{\"a\":[]}]]]}}";
    s_check_render (doc, doc);
    s_check_render (" \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } }\n ", "{\"a\":[1,2],\"b\":{}}");
    s_check_render ("{}", "{}");
    s_check_render ("[]", "[]");
    s_check_render ("[{},[],\"\",[[]]]", "[{},[],\"\",[[]]]");
    s_check_render ("\"\"", "\"\"");
    s_check_render ("{\"a\":1,\"a\":2}", "{\"a\":1,\"a\":2}");
    s_check_render ("[\"x\\\\\",\",]\",{\"a\\\\\":\"]\"},\"\\\\\\\"\"]",
                    "[\"x\\\\\",\",]\",{\"a\\\\\":\"]\"},\"\\\\\\\"\"]");
    s_check_render ("[\"a]b,c\",\"d\\\"],\",{\"}\":\"{\"}]", "[\"a]b,c\",\"d\\\"],\",{\"}\":\"{\"}]");

    //  Not NUL-terminated: only the first `len` bytes count
    parsed_t p;
    s_parse (&p, "123garbage", 3);
    CHECK_INT (p.result.data.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    CHECK_INT (p.result.data.via.u64, 123);
    s_parsed_free (&p);
}

static void s_test_escapes (void)
{
    s_check_render ("\"a\\nb\\\"c\\\\d\\u4e2d\\ud83d\\ude00\\/\\t\\b\\f\\r\\u0001\\u001F\\u00e9\"",
                    "\"a\\nb\\\"c\\\\d中😀/\\t\\b\\f\\r\\u0001\\u001fé\"");
    parsed_t p;
    const char *json = "\"\\n\\\"\\\\\\u4E2D\\uD83D\\uDE00\\u0000x\"";
    s_parse (&p, json, strlen (json));
    CHECK_INT (p.result.data.type, MSGPACK_OBJECT_STR);
    const char want [] = "\n\"\\中😀\0x";
    CHECK_INT (p.result.data.via.str.size, sizeof want - 1);
    CHECK (memcmp (p.result.data.via.str.ptr, want, sizeof want - 1) == 0);
    s_parsed_free (&p);
    s_check_render ("\"\\u0000\"", "\"\\u0000\"");
    s_check_render ("\"\\u2028\x7f\"", "\"\xe2\x80\xa8\x7f\"");
    s_check_render ("\"\xf4\x8f\xbf\xbf\"", "\"\xf4\x8f\xbf\xbf\"");
}

//  Parses `json` and checks the msgpack type and the compact rendering.
static void s_check_number (const char *json, msgpack_object_type type, const char *want)
{
    parsed_t p;
    s_parse (&p, json, strlen (json));
    CHECK_INT (p.result.data.type, type);
    char *text = kf_json_from_msgpack (&p.result.data);
    CHECK_STR (text, want);
    free (text);
    s_parsed_free (&p);
}

static void s_test_numbers (void)
{
    s_check_number ("0", MSGPACK_OBJECT_POSITIVE_INTEGER, "0");
    s_check_number ("-0", MSGPACK_OBJECT_POSITIVE_INTEGER, "0");
    s_check_number ("-1", MSGPACK_OBJECT_NEGATIVE_INTEGER, "-1");
    s_check_number ("9223372036854775807", MSGPACK_OBJECT_POSITIVE_INTEGER, "9223372036854775807");
    s_check_number ("-9223372036854775808", MSGPACK_OBJECT_NEGATIVE_INTEGER, "-9223372036854775808");
    s_check_number ("18446744073709551615", MSGPACK_OBJECT_POSITIVE_INTEGER, "18446744073709551615");
    s_check_number ("18446744073709551616", MSGPACK_OBJECT_FLOAT64, "1.8446744073709552e+19");
    s_check_number ("-9223372036854775809", MSGPACK_OBJECT_FLOAT64, "-9.223372036854776e+18");
    s_check_number ("1.5", MSGPACK_OBJECT_FLOAT64, "1.5");
    s_check_number ("-2e-3", MSGPACK_OBJECT_FLOAT64, "-0.002");
    s_check_number ("1.0", MSGPACK_OBJECT_FLOAT64, "1.0");
    s_check_number ("1E2", MSGPACK_OBJECT_FLOAT64, "100.0");
    s_check_number ("-0.0", MSGPACK_OBJECT_FLOAT64, "-0.0");
    s_check_number ("0.1", MSGPACK_OBJECT_FLOAT64, "0.1");
    s_check_number ("0.30000000000000004", MSGPACK_OBJECT_FLOAT64, "0.30000000000000004");
    s_check_number ("1e300", MSGPACK_OBJECT_FLOAT64, "1e+300");
    s_check_number ("1e+22", MSGPACK_OBJECT_FLOAT64, "1e+22");
    s_check_number ("1e-400", MSGPACK_OBJECT_FLOAT64, "0.0");
    s_check_number ("1.7976931348623157e308", MSGPACK_OBJECT_FLOAT64, "1.7976931348623157e+308");
    s_check_number ("5e-324", MSGPACK_OBJECT_FLOAT64, "4.94065645841247e-324");
    //  Overflowing a double is an error, not infinity
    s_check_error ("1e400", "number out of range at byte 0");
    s_check_error ("[-1e400]", "number out of range at byte 1");
    char big [420] = "1";
    memset (big + 1, '0', 400);
    big [401] = '\0';
    s_check_error (big, "number out of range at byte 0");
    big [300] = '\0';
    s_check_number (big, MSGPACK_OBJECT_FLOAT64, "1e+299");
}

static void s_test_errors (void)
{
    //  Truncated input
    s_check_error ("", "unexpected end of input at byte 0");
    s_check_error ("   ", "unexpected end of input at byte 3");
    s_check_error ("{\"a\": [1, 2", "unexpected end of input at byte 11");
    s_check_error ("{\"a\"", "unexpected end of input at byte 4");
    s_check_error ("\"abc", "unexpected end of input in string at byte 4");
    s_check_error ("\"\\u12", "unexpected end of input in string at byte 5");
    s_check_error ("\"\\ud83d", "unexpected end of input in string at byte 7");
    s_check_error ("tru", "unexpected end of input at byte 3");
    s_check_error ("-", "unexpected end of input at byte 1");
    s_check_error ("1.", "unexpected end of input at byte 2");
    s_check_error ("1e+", "unexpected end of input at byte 3");
    //  Trailing garbage
    s_check_error ("{} x", "unexpected data after value at byte 3");
    s_check_error ("1 2", "unexpected data after value at byte 2");
    s_check_error ("truex", "unexpected data after value at byte 4");
    s_check_error ("[1 2]", "expected ',' or ']' at byte 3");
    s_check_error ("[1,]", "unexpected character ']' at byte 3");
    s_check_error ("{\"a\":1,}", "expected string key at byte 7");
    s_check_error ("{\"a\" 1}", "expected ':' at byte 5");
    s_check_error ("{1:2}", "expected string key at byte 1");
    s_check_error ("{\"a\":1]", "expected ',' or '}' at byte 6");
    s_check_error_len ("1\0", 2, "unexpected data after value at byte 1");
    //  Bad escapes and surrogates
    s_check_error ("\"\\q\"", "invalid escape at byte 1");
    s_check_error ("\"\\x41\"", "invalid escape at byte 1");
    s_check_error ("\"\\u12g4\"", "invalid \\u escape at byte 5");
    s_check_error ("\"ab\\ud83d\"", "lone surrogate at byte 3");
    s_check_error ("\"\\ude00\"", "lone surrogate at byte 1");
    s_check_error ("\"\\ud83d\\u0041\"", "lone surrogate at byte 1");
    s_check_error ("\"\\ud83d\\ud83d\"", "lone surrogate at byte 1");
    //  Invalid UTF-8 and control characters inside strings
    s_check_error ("\"a\xff" "b\"", "invalid UTF-8 in string at byte 2");
    s_check_error ("\"\xc0\xaf\"", "invalid UTF-8 in string at byte 1");
    s_check_error ("\"\xed\xa0\x80\"", "invalid UTF-8 in string at byte 1");
    s_check_error ("\"\xf4\x90\x80\x80\"", "invalid UTF-8 in string at byte 1");
    s_check_error ("\"\xe4\xb8\"", "invalid UTF-8 in string at byte 1");
    s_check_error ("\"a\tb\"", "control character in string at byte 2");
    s_check_error ("\"a\nb\"", "control character in string at byte 2");
    //  Numbers and bare words
    s_check_error ("01", "leading zero in number at byte 0");
    s_check_error ("[-012]", "leading zero in number at byte 1");
    s_check_error ("00", "leading zero in number at byte 0");
    s_check_error ("+1", "unexpected character '+' at byte 0");
    s_check_error (".5", "unexpected character '.' at byte 0");
    s_check_error ("1.e5", "expected digit at byte 2");
    s_check_error ("-a", "expected digit at byte 1");
    s_check_error ("hello", "unexpected character 'h' at byte 0");
    s_check_error ("True", "unexpected character 'T' at byte 0");
    s_check_error ("nul1", "invalid literal at byte 0");
    s_check_error ("[NaN]", "unexpected character 'N' at byte 1");
    s_check_error ("\xef\xbb\xbf{}", "unexpected byte 0xef at byte 0");
    s_check_error ("'a'", "unexpected character ''' at byte 0");
}

//  Parses `json` and returns the packed bytes' length, copying at most `max` of them to `out`.
static size_t s_pack_raw (const char *json, char *out, size_t max)
{
    char err [128];
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    CHECK_INT (kf_json_to_msgpack (json, strlen (json), &pk, err, sizeof err), 0);
    size_t size = sbuf.size;
    memcpy (out, sbuf.data, size < max ? size : max);
    msgpack_sbuffer_destroy (&sbuf);
    return size;
}

static void s_test_nesting (void)
{
    //  32 levels still unpack with msgpack-c, whose C unpacker stops at 32 non-empty containers
    char deep [200], packed [100];
    memset (deep, '[', 32);
    memset (deep + 32, ']', 32);
    deep [64] = '\0';
    s_check_render (deep, deep);
    //  64 levels parse (checked on the packed bytes: 63 x fixarray(1), fixarray(2), 1, 2)
    memset (deep, '[', 64);
    memcpy (deep + 64, "1,2", 3);
    memset (deep + 67, ']', 64);
    deep [131] = '\0';
    CHECK_INT (s_pack_raw (deep, packed, sizeof packed), 66);
    for (int i = 0; i < 63; i++)
        CHECK_INT ((unsigned char) packed [i], 0x91);
    CHECK (memcmp (packed + 63, "\x92\x01\x02", 3) == 0);
    //  65 levels do not
    memset (deep, '[', 65);
    memset (deep + 65, ']', 65);
    deep [130] = '\0';
    s_check_error (deep, "nesting deeper than 64 at byte 64");
    //  Objects and arrays count alike
    char mixed [400] = "";
    for (int i = 0; i < 65; i++)
        strcat (mixed, i % 2 ? "[" : "{\"k\":");
    s_check_error (mixed, "nesting deeper than 64 at byte 192");
}

static void s_test_error_buffer (void)
{
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    char small [6];
    memset (small, 'x', sizeof small);
    CHECK_INT (kf_json_to_msgpack ("[", 1, &pk, small, sizeof small), -1);
    CHECK_STR (small, "unexp");
    CHECK_INT (kf_json_to_msgpack ("[", 1, &pk, NULL, 0), -1);
    CHECK_INT (kf_json_to_msgpack ("[", 1, &pk, small, 0), -1);
    CHECK_INT (kf_json_to_msgpack (NULL, 0, &pk, small, sizeof small), -1);
    msgpack_sbuffer_destroy (&sbuf);
}

static void s_test_pretty (void)
{
    parsed_t p;
    const char *json = "{\"name\":\"退货\",\"items\":[1,2.5,{},{\"a\":null}],\"empty\":[],\"ok\":true}";
    s_parse (&p, json, strlen (json));
    char *text = kf_json_from_msgpack_pretty (&p.result.data);
    CHECK_STR (text,
        "{\n"
        "  \"name\": \"退货\",\n"
        "  \"items\": [\n"
        "    1,\n"
        "    2.5,\n"
        "    {},\n"
        "    {\n"
        "      \"a\": null\n"
        "    }\n"
        "  ],\n"
        "  \"empty\": [],\n"
        "  \"ok\": true\n"
        "}");
    free (text);
    s_parsed_free (&p);

    s_parse (&p, "7", 1);
    text = kf_json_from_msgpack_pretty (&p.result.data);
    CHECK_STR (text, "7");
    free (text);
    s_parsed_free (&p);
}

//  Objects that cannot come from JSON: bin, ext, float32, NaN/Inf, non-string keys.
static void s_test_render_only (void)
{
    msgpack_object items [8];
    msgpack_object_kv kvs [4];
    msgpack_object obj = { .type = MSGPACK_OBJECT_ARRAY, .via.array = { 8, items } };
    items [0] = (msgpack_object) { .type = MSGPACK_OBJECT_FLOAT64, .via.f64 = NAN };
    items [1] = (msgpack_object) { .type = MSGPACK_OBJECT_FLOAT64, .via.f64 = -INFINITY };
    items [2] = (msgpack_object) { .type = MSGPACK_OBJECT_FLOAT32, .via.f64 = (double) 0.1f };
    items [3] = (msgpack_object) { .type = MSGPACK_OBJECT_FLOAT32, .via.f64 = 3.0 };
    items [4] = (msgpack_object) { .type = MSGPACK_OBJECT_BIN, .via.bin = { 5, "a\xff\xe4\xb8\xad" } };
    items [5] = (msgpack_object) { .type = MSGPACK_OBJECT_EXT, .via.ext = { 1, 2, "xy" } };
    items [6] = (msgpack_object) { .type = MSGPACK_OBJECT_STR, .via.str = { 4, "\x01\x1f\"\xe4" } };
    items [7] = (msgpack_object) { .type = MSGPACK_OBJECT_MAP, .via.map = { 4, kvs } };
    msgpack_object key_items [2] = {
        { .type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = 1 },
        { .type = MSGPACK_OBJECT_STR, .via.str = { 1, "x" } }
    };
    kvs [0] = (msgpack_object_kv) { { .type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = 1 },
                                    { .type = MSGPACK_OBJECT_STR, .via.str = { 1, "a" } } };
    kvs [1] = (msgpack_object_kv) { { .type = MSGPACK_OBJECT_NIL }, { .type = MSGPACK_OBJECT_BOOLEAN } };
    kvs [2] = (msgpack_object_kv) { { .type = MSGPACK_OBJECT_ARRAY, .via.array = { 2, key_items } },
                                    { .type = MSGPACK_OBJECT_NEGATIVE_INTEGER, .via.i64 = INT64_MIN } };
    kvs [3] = (msgpack_object_kv) { { .type = MSGPACK_OBJECT_BIN, .via.bin = { 1, "k" } },
                                    { .type = MSGPACK_OBJECT_FLOAT32, .via.f64 = 1e300 } };
    char *text = kf_json_from_msgpack (&obj);
    CHECK_STR (text, "[null,null,0.1,3.0,\"a\xef\xbf\xbd中\",null,\"\\u0001\\u001f\\\"\xef\xbf\xbd\","
                     "{\"1\":\"a\",\"null\":false,\"[1,\\\"x\\\"]\":-9223372036854775808,\"k\":1e+300}]");
    free (text);
    text = kf_json_from_msgpack (NULL);
    CHECK_STR (text, "null");
    free (text);
    msgpack_object empty_str = { .type = MSGPACK_OBJECT_STR, .via.str = { 0, NULL } };
    text = kf_json_from_msgpack_pretty (&empty_str);
    CHECK_STR (text, "\"\"");
    free (text);
}

//  A program that called setlocale must still get '.' decimals both ways. Runs only when a
//  comma-decimal locale is installed (e.g. LOCPATH pointing at a localedef output).
static void s_test_locale (void)
{
    const char *names [] = { "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8" };
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++) {
        if (!setlocale (LC_ALL, names [i]))
            continue;
        char probe [16];
        snprintf (probe, sizeof probe, "%.1f", 1.5);
        if (strcmp (probe, "1,5") == 0) {
            s_test_numbers ();
            s_check_render ("[1.25,{\"x\":-0.5e-3}]", "[1.25,{\"x\":-0.0005}]");
            snprintf (probe, sizeof probe, "%.1f", 1.5);
            CHECK_STR (probe, "1,5");                //  the caller's locale is restored
            printf ("test_json_codec: locale %s checked\n", names [i]);
        }
        setlocale (LC_ALL, "C");
        return;
    }
}

int main (void)
{
    s_test_round_trips ();
    s_test_escapes ();
    s_test_numbers ();
    s_test_errors ();
    s_test_nesting ();
    s_test_error_buffer ();
    s_test_pretty ();
    s_test_render_only ();
    s_test_locale ();
    TEST_PASS ("test_json_codec");
    return 0;
}
