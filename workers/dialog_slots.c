/*  dialog_slots.c - the session's dialog state: read from and packed into msgpack. See the header. */
#include "workers/dialog_slots.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const kf_slots_field_names [KF_SLOTS_FIELD_COUNT] = {
    "address", "phone", "description", "order_no"
};

static int
s_field_index (const char *name)
{
    for (int i = 0; i < KF_SLOTS_FIELD_COUNT; i++)
        if (strcmp (kf_slots_field_names [i], name) == 0)
            return i;
    return -1;
}

//  Copies string `obj` into `out` (`size` bytes) when it is a string of valid UTF-8 that fits
static void
s_copy (const msgpack_object *obj, char *out, size_t size)
{
    const char *s;
    size_t len;
    if (kf_mp_str (obj, &s, &len) && len < size && kf_utf8_is_valid (s, len)) {
        memcpy (out, s, len);
        out [len] = 0;
    }
}

void
kf_slots_read (kf_slots_t *slots, const msgpack_object *map)
{
    memset (slots, 0, sizeof *slots);
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return;
    slots->others = map;
    s_copy (kf_mp_get (map, "order_no"), slots->order_no, sizeof slots->order_no);
    s_copy (kf_mp_get (map, "phone"), slots->phone, sizeof slots->phone);
    const msgpack_object *draft = kf_mp_get (map, "ticket_draft");
    if (draft && draft->type == MSGPACK_OBJECT_MAP) {
        slots->has_draft = true;
        s_copy (kf_mp_get (draft, "type"), slots->ticket_type, sizeof slots->ticket_type);
        if (*slots->ticket_type && !kf_ticket_type_find (slots->ticket_type, strlen (slots->ticket_type)))
            *slots->ticket_type = 0;
        const msgpack_object *fields = kf_mp_get (draft, "fields");
        for (int i = 0; i < KF_SLOTS_FIELD_COUNT; i++) {
            const char *s;
            size_t len;
            if (kf_mp_str (kf_mp_get (fields, kf_slots_field_names [i]), &s, &len) && len <= 4096
            &&  kf_utf8_is_valid (s, len))
                slots->fields [i] = kf_strndup (s, len);
        }
        s_copy (kf_mp_get (map, "awaiting"), slots->awaiting, sizeof slots->awaiting);
        if (*slots->awaiting && strcmp (slots->awaiting, "type") != 0
        &&  s_field_index (slots->awaiting) < 0)
            *slots->awaiting = 0;
    }
}

static bool
s_is_known (const msgpack_object *key)
{
    static const char *known [] = { "order_no", "phone", "ticket_draft", "awaiting", NULL };
    for (int i = 0; known [i]; i++)
        if (kf_mp_str_eq_key (key, known [i]))
            return true;
    return false;
}

void
kf_slots_pack (const kf_slots_t *slots, msgpack_packer *pk)
{
    uint32_t others = 0;
    const msgpack_object *map = slots->others;
    for (uint32_t i = 0; map && i < map->via.map.size; i++)
        others += map->via.map.ptr [i].key.type == MSGPACK_OBJECT_STR && !s_is_known (&map->via.map.ptr [i].key);
    bool has_awaiting = slots->has_draft && *slots->awaiting;
    msgpack_pack_map (pk, others + (*slots->order_no != 0) + (*slots->phone != 0)
                        + slots->has_draft + has_awaiting);
    for (uint32_t i = 0; map && i < map->via.map.size; i++)
        if (map->via.map.ptr [i].key.type == MSGPACK_OBJECT_STR && !s_is_known (&map->via.map.ptr [i].key)) {
            msgpack_pack_object (pk, map->via.map.ptr [i].key);
            msgpack_pack_object (pk, map->via.map.ptr [i].val);
        }
    if (*slots->order_no)
        kf_mp_pack_kv_str (pk, "order_no", slots->order_no);
    if (*slots->phone)
        kf_mp_pack_kv_str (pk, "phone", slots->phone);
    if (!slots->has_draft)
        return;
    kf_mp_pack_cstr (pk, "ticket_draft");
    msgpack_pack_map (pk, 2);
    kf_mp_pack_kv_str (pk, "type", slots->ticket_type);
    kf_mp_pack_cstr (pk, "fields");
    int count = 0;
    for (int i = 0; i < KF_SLOTS_FIELD_COUNT; i++)
        count += slots->fields [i] != NULL;
    msgpack_pack_map (pk, count);
    for (int i = 0; i < KF_SLOTS_FIELD_COUNT; i++)
        if (slots->fields [i])
            kf_mp_pack_kv_str (pk, kf_slots_field_names [i], slots->fields [i]);
    if (has_awaiting)
        kf_mp_pack_kv_str (pk, "awaiting", slots->awaiting);
}

const char *
kf_slots_field (const kf_slots_t *slots, const char *name)
{
    int index = s_field_index (name);
    return index < 0 ? NULL : slots->fields [index];
}

void
kf_slots_set_field (kf_slots_t *slots, const char *name, const char *value, size_t len)
{
    int index = s_field_index (name);
    if (index < 0)
        return;
    free (slots->fields [index]);
    slots->fields [index] = kf_strndup (value, len);
}

void
kf_slots_clear_draft (kf_slots_t *slots)
{
    for (int i = 0; i < KF_SLOTS_FIELD_COUNT; i++) {
        free (slots->fields [i]);
        slots->fields [i] = NULL;
    }
    slots->has_draft = false;
    *slots->ticket_type = 0;
    *slots->awaiting = 0;
}

bool
kf_slots_is_awaiting (const kf_slots_t *slots)
{
    return slots->has_draft && *slots->awaiting;
}

void
kf_slots_release (kf_slots_t *slots)
{
    for (int i = 0; i < KF_SLOTS_FIELD_COUNT; i++) {
        free (slots->fields [i]);
        slots->fields [i] = NULL;
    }
}
