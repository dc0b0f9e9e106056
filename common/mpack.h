/*  mpack.h - small helpers over msgpack-c: find a key in a map, read typed values, pack strings. */
#ifndef KF_MPACK_H
#define KF_MPACK_H
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

//  Returns the value stored under `key` in `map`, or NULL when `map` is NULL, not a map, or lacks it.
//  The result is borrowed from the map's zone.
const msgpack_object *kf_mp_get (const msgpack_object *map, const char *key);

//  True when `obj` is a str; sets *s (not NUL-terminated, borrowed) and *len.
bool kf_mp_str (const msgpack_object *obj, const char **s, size_t *len);

//  Returns a heap copy of the str under `key`, or NULL when missing or not a str. Caller frees.
char *kf_mp_dup_str (const msgpack_object *map, const char *key);

//  Reads an integer (positive or negative int, or a float with no fraction). Returns false otherwise.
bool kf_mp_int (const msgpack_object *obj, int64_t *value);

//  Reads the integer under `key`, returning `fallback` when missing or not an integer.
int64_t kf_mp_get_int (const msgpack_object *map, const char *key, int64_t fallback);

//  Reads the number (int or float) under `key`, returning `fallback` when missing or not a number.
double kf_mp_get_double (const msgpack_object *map, const char *key, double fallback);

//  Reads the bool under `key`, returning `fallback` when missing or not a bool.
bool kf_mp_get_bool (const msgpack_object *map, const char *key, bool fallback);

//  True when `obj` is a str equal to `value`.
bool kf_mp_str_eq_key (const msgpack_object *obj, const char *value);

//  True when the str under `key` equals `value`.
bool kf_mp_str_eq (const msgpack_object *map, const char *key, const char *value);

//  Packs a NUL-terminated string (NULL packs nil).
void kf_mp_pack_cstr (msgpack_packer *pk, const char *s);

//  Packs `len` bytes as a str.
void kf_mp_pack_str (msgpack_packer *pk, const char *s, size_t len);

//  Packs key then a str / int / bool / double value: the usual map members.
void kf_mp_pack_kv_str (msgpack_packer *pk, const char *key, const char *value);
void kf_mp_pack_kv_int (msgpack_packer *pk, const char *key, int64_t value);
void kf_mp_pack_kv_bool (msgpack_packer *pk, const char *key, bool value);
void kf_mp_pack_kv_double (msgpack_packer *pk, const char *key, double value);
//  A key and `value`, or nil when `value` is NULL / `has` is false
void kf_mp_pack_kv_object (msgpack_packer *pk, const char *key, const msgpack_object *value);
void kf_mp_pack_kv_double_if (msgpack_packer *pk, const char *key, bool has, double value);

//  Unpacks exactly one object from `data`, keeping its own copy of the bytes (so the result may
//  outlive `data`). Returns true and fills `result` (caller destroys it with
//  msgpack_unpacked_destroy) when the bytes hold one complete object, nested at most 32 deep, and
//  nothing after it. On false, `result` is initialised and empty.
bool kf_mp_unpack_one (const char *data, size_t len, msgpack_unpacked *result);
//  The same without the copy, for large inputs: strings in `result` point into `data`, which must
//  outlive it. Also false for a lone scalar.
bool kf_mp_unpack_borrowed (const char *data, size_t len, msgpack_unpacked *result);
//  Paged lists (page counts from 1): how many of `total` rows page `page` shows, and the closing
//  pairs of a paged result: total, page, page_size, has_more.
int64_t kf_page_rows (int64_t total, int64_t page, int64_t page_size);
void kf_mp_pack_page (msgpack_packer *pk, int64_t total, int64_t page, int64_t page_size);
#endif
