/*  fuzz_json_codec.c - libFuzzer target for common/json_codec: JSON -> msgpack -> JSON must be stable. */
#include "common/json_codec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Aborts with a message when an invariant does not hold (works with -DNDEBUG too).
static void s_require (bool ok, const char *what)
{
    if (!ok) {
        fprintf (stderr, "fuzz_json_codec: invariant failed: %s\n", what);
        abort ();
    }
}

//  Parses `len` bytes of JSON into `sbuf` (initialised by the caller); checks the error contract.
static int s_parse (const char *json, size_t len, msgpack_sbuffer *sbuf)
{
    char err [128];
    msgpack_packer pk;
    memset (err, 'x', sizeof err);
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    int rc = kf_json_to_msgpack (json, len, &pk, err, sizeof err);
    s_require (rc == 0 || rc == -1, "return code is 0 or -1");
    s_require (memchr (err, '\0', sizeof err) != NULL, "error buffer is NUL-terminated");
    if (rc == 0)
        s_require (err [0] == '\0', "no message on success");
    else
        s_require (strstr (err, " at byte ") != NULL, "message carries a byte offset");
    return rc;
}

//  Unpacks exactly one object from `sbuf` into `result`; returns the msgpack_unpack_next code.
static int s_unpack (const msgpack_sbuffer *sbuf, msgpack_unpacked *result)
{
    size_t offset = 0;
    msgpack_unpacked_init (result);
    int rc = msgpack_unpack_next (result, sbuf->data, sbuf->size, &offset);
    if (rc == MSGPACK_UNPACK_SUCCESS)
        s_require (offset == sbuf->size, "packed value is exactly one object");
    return rc;
}

//  Parses JSON produced by our renderer (must succeed and unpack) and renders it compactly.
static char *s_reparse_render (const char *json)
{
    msgpack_sbuffer sbuf;
    msgpack_unpacked result;
    msgpack_sbuffer_init (&sbuf);
    s_require (s_parse (json, strlen (json), &sbuf) == 0, "rendered JSON parses again");
    s_require (s_unpack (&sbuf, &result) == MSGPACK_UNPACK_SUCCESS, "re-parsed value unpacks");
    char *text = kf_json_from_msgpack (&result.data);
    msgpack_unpacked_destroy (&result);
    msgpack_sbuffer_destroy (&sbuf);
    return text;
}

//  Leg 1: the input as JSON. If it parses, render(parse(render(x))) must equal render(x), and
//  the pretty form must parse back to the same value.
static void s_check_json_input (const uint8_t *data, size_t size)
{
    msgpack_sbuffer sbuf;
    msgpack_unpacked result;
    msgpack_sbuffer_init (&sbuf);
    if (s_parse ((const char *) data, size, &sbuf) == 0) {
        int rc = s_unpack (&sbuf, &result);
        //  msgpack-c's C unpacker refuses more than 32 nested containers (NOMEM_ERROR)
        s_require (rc == MSGPACK_UNPACK_SUCCESS || rc == MSGPACK_UNPACK_NOMEM_ERROR, "parsed value unpacks");
        if (rc == MSGPACK_UNPACK_SUCCESS) {
            char *first = kf_json_from_msgpack (&result.data);
            char *pretty = kf_json_from_msgpack_pretty (&result.data);
            char *second = s_reparse_render (first);
            char *third = s_reparse_render (pretty);
            s_require (strcmp (first, second) == 0, "second render equals the first");
            s_require (strcmp (first, third) == 0, "pretty render parses to the same value");
            free (first);
            free (pretty);
            free (second);
            free (third);
        }
        msgpack_unpacked_destroy (&result);
    }
    msgpack_sbuffer_destroy (&sbuf);
}

//  Leg 2 builds an arbitrary msgpack_object tree from the same bytes, to reach what JSON cannot
//  express: bin, ext, float32, NaN/Inf, invalid UTF-8 in str, non-string map keys.
typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
    msgpack_object objects [512];
    msgpack_object_kv pairs [256];
    size_t objects_used;
    size_t pairs_used;
} gen_t;

static uint8_t s_gen_byte (gen_t *g)
{
    return g->pos < g->size ? g->data [g->pos++] : 0;
}

static void s_gen_bytes (gen_t *g, void *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ((uint8_t *) out) [i] = s_gen_byte (g);
}

//  Points `ptr` at up to 15 input bytes and returns how many.
static uint32_t s_gen_slice (gen_t *g, const char **ptr)
{
    size_t n = s_gen_byte (g) % 16;
    if (n > g->size - g->pos)
        n = g->size - g->pos;
    *ptr = n ? (const char *) g->data + g->pos : NULL;
    g->pos += n;
    return (uint32_t) n;
}

static void s_gen_object (gen_t *g, msgpack_object *obj, int depth);

static void s_gen_container (gen_t *g, msgpack_object *obj, int depth, bool is_map)
{
    uint32_t n = s_gen_byte (g) % 5;
    if (depth >= 8 || g->objects_used + n > 512 || g->pairs_used + n > 256)
        n = 0;
    if (is_map) {
        obj->type = MSGPACK_OBJECT_MAP;
        obj->via.map = (msgpack_object_map) { n, n ? g->pairs + g->pairs_used : NULL };
        g->pairs_used += n;
        for (uint32_t i = 0; i < n; i++) {
            s_gen_object (g, &obj->via.map.ptr [i].key, depth + 1);
            s_gen_object (g, &obj->via.map.ptr [i].val, depth + 1);
        }
    }
    else {
        obj->type = MSGPACK_OBJECT_ARRAY;
        obj->via.array = (msgpack_object_array) { n, n ? g->objects + g->objects_used : NULL };
        g->objects_used += n;
        for (uint32_t i = 0; i < n; i++)
            s_gen_object (g, &obj->via.array.ptr [i], depth + 1);
    }
}

static void s_gen_object (gen_t *g, msgpack_object *obj, int depth)
{
    float f32;
    memset (obj, 0, sizeof *obj);
    switch (s_gen_byte (g) % 11) {
        case 1: obj->type = MSGPACK_OBJECT_BOOLEAN;
                obj->via.boolean = s_gen_byte (g) & 1; break;
        case 2: obj->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
                s_gen_bytes (g, &obj->via.u64, 8); break;
        case 3: obj->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
                s_gen_bytes (g, &obj->via.i64, 8);
                obj->via.i64 = obj->via.i64 < 0 ? obj->via.i64 : -1 - obj->via.i64; break;
        case 4: obj->type = MSGPACK_OBJECT_FLOAT64;
                s_gen_bytes (g, &obj->via.f64, 8); break;
        case 5: obj->type = MSGPACK_OBJECT_FLOAT32;
                s_gen_bytes (g, &f32, 4);
                obj->via.f64 = (double) f32; break;
        case 6: obj->type = MSGPACK_OBJECT_STR;
                obj->via.str.size = s_gen_slice (g, &obj->via.str.ptr); break;
        case 7: obj->type = MSGPACK_OBJECT_BIN;
                obj->via.bin.size = s_gen_slice (g, &obj->via.bin.ptr); break;
        case 8: obj->type = MSGPACK_OBJECT_EXT;
                obj->via.ext.size = s_gen_slice (g, &obj->via.ext.ptr); break;
        case 9: s_gen_container (g, obj, depth, false); break;
        case 10: s_gen_container (g, obj, depth, true); break;
        default: obj->type = MSGPACK_OBJECT_NIL; break;
    }
}

//  Whatever the object, the renderer must produce JSON that parses, and one more round trip
//  must be a fixed point (float32 and non-string keys may change form only on the first one).
static void s_check_object_input (const uint8_t *data, size_t size)
{
    static gen_t g;
    memset (&g, 0, sizeof g);
    g.data = data;
    g.size = size;
    msgpack_object root;
    s_gen_object (&g, &root, 0);
    char *first = kf_json_from_msgpack (&root);
    char *pretty = kf_json_from_msgpack_pretty (&root);
    char *second = s_reparse_render (first);
    char *third = s_reparse_render (second);
    char *from_pretty = s_reparse_render (pretty);
    s_require (strcmp (second, third) == 0, "rendering is a fixed point after one round trip");
    s_require (strcmp (second, from_pretty) == 0, "pretty and compact forms parse alike");
    free (first);
    free (pretty);
    free (second);
    free (third);
    free (from_pretty);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    s_check_json_input (data, size);
    s_check_object_input (data, size);
    return 0;
}
