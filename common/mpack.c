/*  mpack.c - small helpers over msgpack-c. */
#include "common/mpack.h"
#include "common/log.h"
#include <math.h>
#include <string.h>

const msgpack_object *
kf_mp_get (const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t key_len = strlen (key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr [i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == key_len
        &&  memcmp (k->via.str.ptr, key, key_len) == 0)
            return &map->via.map.ptr [i].val;
    }
    return NULL;
}

bool
kf_mp_str (const msgpack_object *obj, const char **s, size_t *len)
{
    if (!obj || obj->type != MSGPACK_OBJECT_STR)
        return false;
    *s = obj->via.str.ptr;
    *len = obj->via.str.size;
    return true;
}

char *
kf_mp_dup_str (const msgpack_object *map, const char *key)
{
    const char *s;
    size_t len;
    if (!kf_mp_str (kf_mp_get (map, key), &s, &len))
        return NULL;
    return kf_strndup (s, len);
}

bool
kf_mp_int (const msgpack_object *obj, int64_t *value)
{
    if (!obj)
        return false;
    if (obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (obj->via.u64 > INT64_MAX)
            return false;
        *value = (int64_t) obj->via.u64;
        return true;
    }
    if (obj->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *value = obj->via.i64;
        return true;
    }
    if (obj->type == MSGPACK_OBJECT_FLOAT32 || obj->type == MSGPACK_OBJECT_FLOAT64) {
        double d = obj->via.f64;
        if (isfinite (d) && d == floor (d) && fabs (d) < 9e15) {
            *value = (int64_t) d;
            return true;
        }
    }
    return false;
}

int64_t
kf_mp_get_int (const msgpack_object *map, const char *key, int64_t fallback)
{
    int64_t value;
    return kf_mp_int (kf_mp_get (map, key), &value) ? value : fallback;
}

double
kf_mp_get_double (const msgpack_object *map, const char *key, double fallback)
{
    const msgpack_object *obj = kf_mp_get (map, key);
    if (!obj)
        return fallback;
    if (obj->type == MSGPACK_OBJECT_FLOAT32 || obj->type == MSGPACK_OBJECT_FLOAT64)
        return obj->via.f64;
    int64_t value;
    return kf_mp_int (obj, &value) ? (double) value : fallback;
}

bool
kf_mp_get_bool (const msgpack_object *map, const char *key, bool fallback)
{
    const msgpack_object *obj = kf_mp_get (map, key);
    return obj && obj->type == MSGPACK_OBJECT_BOOLEAN ? obj->via.boolean : fallback;
}

bool
kf_mp_str_eq_key (const msgpack_object *obj, const char *value)
{
    const char *s;
    size_t len;
    return kf_mp_str (obj, &s, &len) && len == strlen (value) && memcmp (s, value, len) == 0;
}

bool
kf_mp_str_eq (const msgpack_object *map, const char *key, const char *value)
{
    return kf_mp_str_eq_key (kf_mp_get (map, key), value);
}

void
kf_mp_pack_str (msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, s, len);
}

void
kf_mp_pack_cstr (msgpack_packer *pk, const char *s)
{
    if (s)
        kf_mp_pack_str (pk, s, strlen (s));
    else
        msgpack_pack_nil (pk);
}

void
kf_mp_pack_kv_str (msgpack_packer *pk, const char *key, const char *value)
{
    kf_mp_pack_cstr (pk, key);
    kf_mp_pack_cstr (pk, value);
}

void
kf_mp_pack_kv_int (msgpack_packer *pk, const char *key, int64_t value)
{
    kf_mp_pack_cstr (pk, key);
    msgpack_pack_int64 (pk, value);
}

void
kf_mp_pack_kv_bool (msgpack_packer *pk, const char *key, bool value)
{
    kf_mp_pack_cstr (pk, key);
    if (value)
        msgpack_pack_true (pk);
    else
        msgpack_pack_false (pk);
}

void
kf_mp_pack_kv_double (msgpack_packer *pk, const char *key, double value)
{
    kf_mp_pack_cstr (pk, key);
    msgpack_pack_double (pk, value);
}

void
kf_mp_pack_kv_object (msgpack_packer *pk, const char *key, const msgpack_object *value)
{
    kf_mp_pack_cstr (pk, key);
    if (value)
        msgpack_pack_object (pk, *value);
    else
        msgpack_pack_nil (pk);
}

void
kf_mp_pack_kv_double_if (msgpack_packer *pk, const char *key, bool has, double value)
{
    kf_mp_pack_cstr (pk, key);
    if (has)
        msgpack_pack_double (pk, value);
    else
        msgpack_pack_nil (pk);
}

//  Walks one msgpack object at data[*pos] without allocating. Fails on truncation, on nesting past
//  `depth`, and on a container whose declared count exceeds the bytes left (each element needs at
//  least one byte); msgpack-c would otherwise allocate for the declared count before noticing.
static bool
s_skip (const unsigned char *d, size_t len, size_t *pos, int depth)
{
    if (depth <= 0 || *pos >= len)
        return false;
    unsigned char t = d [(*pos)++];
    uint64_t n = 0;                     //  Payload bytes, or element count for containers
    int width = 0;                      //  Bytes in the length field
    bool is_container = false;
    int per = 1;                        //  Objects per element (2 for maps)
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
        return true;
    if ((t & 0xe0) == 0xa0)        n = t & 0x1f;
    else if ((t & 0xf0) == 0x90) { n = t & 0x0f; is_container = true; }
    else if ((t & 0xf0) == 0x80) { n = t & 0x0f; is_container = true; per = 2; }
    else switch (t) {
        case 0xcc: case 0xd0: n = 1; break;
        case 0xcd: case 0xd1: n = 2; break;
        case 0xca: case 0xce: case 0xd2: n = 4; break;
        case 0xcb: case 0xcf: case 0xd3: n = 8; break;
        case 0xd4: n = 2; break;
        case 0xd5: n = 3; break;
        case 0xd6: n = 5; break;
        case 0xd7: n = 9; break;
        case 0xd8: n = 17; break;
        case 0xc4: case 0xd9: width = 1; break;
        case 0xc5: case 0xda: width = 2; break;
        case 0xc6: case 0xdb: width = 4; break;
        case 0xc7: width = 1; break;
        case 0xc8: width = 2; break;
        case 0xc9: width = 4; break;
        case 0xdc: width = 2; is_container = true; break;
        case 0xdd: width = 4; is_container = true; break;
        case 0xde: width = 2; is_container = true; per = 2; break;
        case 0xdf: width = 4; is_container = true; per = 2; break;
        default: return false;
    }
    if (width) {
        if (len - *pos < (size_t) width)
            return false;
        for (int i = 0; i < width; i++)
            n = (n << 8) | d [(*pos)++];
        if (t >= 0xc7 && t <= 0xc9)
            n += 1;                     //  ext: the type byte follows the length
    }
    if (!is_container) {
        if (len - *pos < n)
            return false;
        *pos += n;
        return true;
    }
    if (n * per > len - *pos)
        return false;
    for (uint64_t i = 0; i < n * per; i++)
        if (!s_skip (d, len, pos, depth - 1))
            return false;
    return true;
}

//  One complete object in `data`, nested at most 32 deep; with `is_copied` its strings point into a
//  copy the result owns (a scalar gets a zone to hold it), else into `data` (a scalar is refused)
static bool
s_unpack (const char *data, size_t len, bool is_copied, msgpack_unpacked *result)
{
    size_t offset = 0, pos = 0;
    msgpack_unpacked_init (result);
    if (!s_skip ((const unsigned char *) data, len, &pos, 33) || pos != len)
        return false;
    char *copy = is_copied ? kf_malloc (len) : NULL;
    if (copy)
        memcpy (copy, data, len);
    msgpack_unpack_return rc = msgpack_unpack_next (result, copy ? copy : data, len, &offset);
    if (copy && rc == MSGPACK_UNPACK_SUCCESS && !result->zone)
        result->zone = msgpack_zone_new (MSGPACK_ZONE_CHUNK_SIZE);     //  A scalar needs none
    if (rc != MSGPACK_UNPACK_SUCCESS || offset != len || !result->zone
    ||  (copy && !msgpack_zone_push_finalizer (result->zone, free, copy))) {
        free (copy);
        msgpack_unpacked_destroy (result);
        msgpack_unpacked_init (result);
        return false;
    }
    return true;
}

bool
kf_mp_unpack_borrowed (const char *data, size_t len, msgpack_unpacked *result)
{
    return s_unpack (data, len, false, result);
}

bool
kf_mp_unpack_one (const char *data, size_t len, msgpack_unpacked *result)
{
    //  msgpack_unpack_next does not copy: strings point into the input. The copy lives as long
    //  as the result, so a result outlives the frame it came from.
    return s_unpack (data, len, true, result);
}

int64_t
kf_page_rows (int64_t total, int64_t page, int64_t page_size)
{
    int64_t skipped = (page - 1) * page_size;
    return total <= skipped ? 0 : total - skipped < page_size ? total - skipped : page_size;
}

void
kf_mp_pack_page (msgpack_packer *pk, int64_t total, int64_t page, int64_t page_size)
{
    kf_mp_pack_kv_int (pk, "total", total);
    kf_mp_pack_kv_int (pk, "page", page);
    kf_mp_pack_kv_int (pk, "page_size", page_size);
    kf_mp_pack_kv_bool (pk, "has_more", (page - 1) * page_size + kf_page_rows (total, page,
                                                                                page_size) < total);
}
