/*  dict.c - open-addressing string hash table with tombstones and FNV-1a hashing. */
#include "common/dict.h"
#include "common/hash.h"
#include "common/log.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;                  //  Owned copy, NUL-terminated; NULL when empty
    size_t len;                 //  Key length in bytes
    uint64_t hash;              //  Cached hash
    void *value;                //  Borrowed
    bool is_tombstone;          //  Deleted slot that probing must skip over
} s_slot_t;

struct _kf_dict_t {
    s_slot_t *slots;            //  Table, size is a power of two
    size_t capacity;            //  Number of slots
    size_t size;                //  Live entries
    size_t used;                //  Live entries plus tombstones
};

static uint64_t
s_hash (const char *key, size_t len)
{
    return kf_fnv1a (KF_FNV1A_BASIS, key, len);
}

kf_dict_t *
kf_dict_new (void)
{
    kf_dict_t *self = kf_calloc (1, sizeof *self);
    self->capacity = 16;
    self->slots = kf_calloc (self->capacity, sizeof (s_slot_t));
    return self;
}

void
kf_dict_destroy (kf_dict_t **self_p)
{
    kf_dict_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->capacity; i++)
        free (self->slots [i].key);
    free (self->slots);
    free (self);
    *self_p = NULL;
}

//  Returns the slot holding key, or the first free slot for it (tombstone or empty)
static s_slot_t *
s_find (kf_dict_t *self, const char *key, size_t len, uint64_t hash, bool *found)
{
    size_t mask = self->capacity - 1;
    s_slot_t *free_slot = NULL;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        s_slot_t *slot = &self->slots [i];
        if (!slot->key && !slot->is_tombstone) {
            *found = false;
            return free_slot ? free_slot : slot;
        }
        if (slot->is_tombstone) {
            if (!free_slot)
                free_slot = slot;
        }
        else
        if (slot->hash == hash && slot->len == len && memcmp (slot->key, key, len) == 0) {
            *found = true;
            return slot;
        }
    }
}

static void
s_grow (kf_dict_t *self)
{
    s_slot_t *old = self->slots;
    size_t old_capacity = self->capacity;
    if (self->size * 2 >= self->capacity)
        self->capacity *= 2;
    self->slots = kf_calloc (self->capacity, sizeof (s_slot_t));
    self->used = self->size;
    for (size_t i = 0; i < old_capacity; i++) {
        if (!old [i].key)
            continue;
        bool found;
        s_slot_t *slot = s_find (self, old [i].key, old [i].len, old [i].hash, &found);
        *slot = old [i];
    }
    free (old);
}

void *
kf_dict_get (kf_dict_t *self, const char *key, size_t len)
{
    bool found;
    s_slot_t *slot = s_find (self, key, len, s_hash (key, len), &found);
    return found ? slot->value : NULL;
}

void *
kf_dict_put (kf_dict_t *self, const char *key, size_t len, void *value)
{
    if ((self->used + 1) * 4 >= self->capacity * 3)
        s_grow (self);
    uint64_t hash = s_hash (key, len);
    bool found;
    s_slot_t *slot = s_find (self, key, len, hash, &found);
    if (found) {
        void *previous = slot->value;
        slot->value = value;
        return previous;
    }
    if (!slot->is_tombstone)
        self->used++;
    slot->key = kf_strndup (key, len);
    slot->len = len;
    slot->hash = hash;
    slot->value = value;
    slot->is_tombstone = false;
    self->size++;
    return NULL;
}

void *
kf_dict_remove (kf_dict_t *self, const char *key, size_t len)
{
    bool found;
    s_slot_t *slot = s_find (self, key, len, s_hash (key, len), &found);
    if (!found)
        return NULL;
    void *value = slot->value;
    free (slot->key);
    slot->key = NULL;
    slot->value = NULL;
    slot->is_tombstone = true;
    self->size--;
    return value;
}

size_t
kf_dict_size (kf_dict_t *self)
{
    return self->size;
}

bool
kf_dict_next (kf_dict_t *self, size_t *cursor, const char **key, void **value)
{
    while (*cursor < self->capacity) {
        s_slot_t *slot = &self->slots [(*cursor)++];
        if (slot->key) {
            if (key)
                *key = slot->key;
            if (value)
                *value = slot->value;
            return true;
        }
    }
    return false;
}
