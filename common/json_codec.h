/*  json_codec.h - conversion between JSON text and msgpack (kefuctl, JSONL import, human output). */
#ifndef KF_JSON_CODEC_H
#define KF_JSON_CODEC_H

#include <msgpack.h>
#include <stddef.h>
#include <stdbool.h>

//  Parses one JSON value from `json` (`len` bytes, need not be NUL-terminated) and packs it into
//  `pk`. Objects become msgpack maps (keys as str), arrays arrays, strings str (with \uXXXX escapes
//  including surrogate pairs decoded to UTF-8), integers int (int64/uint64 range; out of range ->
//  float64), numbers with fraction/exponent float64, true/false bool, null nil. A number whose
//  magnitude overflows a double (1e400) is an error. Leading and trailing whitespace is allowed,
//  anything else after the value is an error. Invalid UTF-8 inside strings is an error. Nesting
//  deeper than 64 is an error. Returns 0 on success; on failure returns -1 and writes a short
//  English message with the byte offset into `err` (errlen bytes, always NUL-terminated; `err` may
//  be NULL). On failure the packer may hold a partial value, and the caller should discard the
//  buffer. The caller owns `json`, `pk` and `err`; nothing is retained after the call.
//  Note: msgpack-c's own unpacker refuses more than 32 nested non-empty containers, so values
//  nested 33..64 deep are accepted here but cannot be unpacked again with msgpack_unpack_next.
int kf_json_to_msgpack (const char *json, size_t len, msgpack_packer *pk, char *err, size_t errlen);

//  Renders a msgpack object as compact JSON (no spaces). UTF-8 is kept as is, control characters
//  are escaped; str and bin become JSON strings with each invalid UTF-8 byte replaced by U+FFFD.
//  Map keys that are not str/bin are rendered as their compact JSON text inside a string. Float
//  NaN/Inf and ext become null; a NULL `obj` renders as null. Doubles use the shortest of
//  %.15g/%.16g/%.17g that reads back exactly, with ".0" added when needed to stay a float.
//  Returns a NUL-terminated heap string the caller frees; never NULL (aborts on OOM).
char *kf_json_from_msgpack (const msgpack_object *obj);

//  Same as kf_json_from_msgpack, but indented with 2 spaces per level for humans: a newline after
//  each member, "key": value with one space, empty containers as {} and [], no trailing newline.
//  Returns a heap string the caller frees; never NULL (aborts on OOM).
char *kf_json_from_msgpack_pretty (const msgpack_object *obj);

//  Packs the JSON text `json` (NUL-terminated; NULL or invalid packs nil) into `pk` as msgpack:
//  for JSON columns read back from the database.
void kf_json_pack_text (msgpack_packer *pk, const char *json);

//  Decodes the JSON text `json` (NUL-terminated) into `result`, for JSON columns read back from
//  the database. Returns true with a result the caller destroys (msgpack_unpacked_destroy); false
//  for NULL, invalid JSON or nesting msgpack cannot unpack, with `result` initialised and empty.
bool kf_json_unpack (const char *json, msgpack_unpacked *result);

//  The same for `len` bytes of JSON (a body as received, not NUL-terminated).
bool kf_json_unpack_len (const char *json, size_t len, msgpack_unpacked *result);
#endif
