/*  answer_cache.c - a hash of entries on an LRU list. The key is "bot \0 version \0 question";
    an entry keeps the item's answers and the packed intent, intent_confidence, confidence,
    sources and candidates of the result. */
#include "broker/answer_cache.h"
#include "common/dict.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/rich_content.h"
#include "common/text_norm.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct _kf_answer_entry_t {
    char *key;
    size_t key_len;
    char *bot_id;
    kf_variant_t *answers;      //  [0] default
    int answer_count;
    char *shared;               //  Packed pairs: intent, intent_confidence, confidence, sources, candidates
    size_t shared_size;
    size_t bytes;               //  What this entry costs, roughly
    struct _kf_answer_entry_t *prev, *next;      //  LRU: head is the most recent
} s_entry_t;

struct _kf_answer_cache_t {
    kf_dict_t *entries;         //  Key -> s_entry_t
    s_entry_t *head, *tail;
    size_t bytes, max_bytes;
    uint64_t hits, misses;
    uint64_t refused;           //  Answers a worker offered for another question than it was asked
};

kf_answer_cache_t *
kf_answer_cache_new (size_t max_bytes)
{
    kf_answer_cache_t *self = kf_calloc (1, sizeof *self);
    self->entries = kf_dict_new ();
    self->max_bytes = max_bytes;
    return self;
}

static void
s_unlink (kf_answer_cache_t *self, s_entry_t *entry)
{
    if (entry->prev)
        entry->prev->next = entry->next;
    else
        self->head = entry->next;
    if (entry->next)
        entry->next->prev = entry->prev;
    else
        self->tail = entry->prev;
    entry->prev = entry->next = NULL;
}

static void
s_push_front (kf_answer_cache_t *self, s_entry_t *entry)
{
    entry->next = self->head;
    if (self->head)
        self->head->prev = entry;
    self->head = entry;
    if (!self->tail)
        self->tail = entry;
}

//  Removes an entry from the cache and frees it
static void
s_drop (kf_answer_cache_t *self, s_entry_t *entry)
{
    s_unlink (self, entry);
    kf_dict_remove (self->entries, entry->key, entry->key_len);
    self->bytes -= entry->bytes;
    for (int i = 0; i < entry->answer_count; i++)
        kf_variant_free (&entry->answers [i]);
    free (entry->answers);
    free (entry->shared);
    free (entry->bot_id);
    free (entry->key);
    free (entry);
}

void
kf_answer_cache_destroy (kf_answer_cache_t **self_p)
{
    kf_answer_cache_t *self = *self_p;
    if (!self)
        return;
    while (self->head)
        s_drop (self, self->head);
    kf_dict_destroy (&self->entries);
    free (self);
    *self_p = NULL;
}

//  Builds the key into a heap buffer; returns its length
static size_t
s_key (const char *bot_id, int64_t version, const char *question, size_t question_len, char **key)
{
    size_t bot_len = strlen (bot_id);
    *key = kf_malloc (bot_len + question_len + 32);
    memcpy (*key, bot_id, bot_len + 1);
    size_t used = bot_len + 1;
    used += snprintf (*key + used, 24, "%lld", (long long) version) + 1;
    memcpy (*key + used, question, question_len);
    return used + question_len;
}

void
kf_answer_cache_put (kf_answer_cache_t *self, const char *bot_id, const kf_wp_result_t *result,
                     const char *message, size_t message_len)
{
    const msgpack_object *cache = result->cache;
    const char *question;
    size_t question_len;
    int64_t version = kf_mp_get_int (cache, "kb_version", 0);
    const msgpack_object *answers = kf_mp_get (cache, "answers");
    if (self->max_bytes == 0 || !kf_mp_str (kf_mp_get (cache, "question"), &question, &question_len)
    ||  version <= 0 || !answers || answers->type != MSGPACK_OBJECT_ARRAY
    ||  answers->via.array.size == 0 || answers->via.array.size > 21)
        return;
    char *normalized = kf_text_normalize (message, message_len);
    bool is_same = strlen (normalized) == question_len && memcmp (normalized, question, question_len) == 0;
    free (normalized);
    if (!is_same) {
        self->refused++;
        return;
    }
    char *key;
    size_t key_len = s_key (bot_id, version, question, question_len, &key);
    s_entry_t *old = kf_dict_get (self->entries, key, key_len);
    if (old)
        s_drop (self, old);
    s_entry_t *entry = kf_calloc (1, sizeof *entry);
    entry->key = key;
    entry->key_len = key_len;
    entry->bot_id = kf_strdup (bot_id);
    entry->answer_count = (int) answers->via.array.size;
    entry->answers = kf_calloc (entry->answer_count, sizeof (kf_variant_t));
    entry->bytes = sizeof *entry + 2 * key_len + 64;
    for (int i = 0; i < entry->answer_count; i++) {
        kf_variant_t *answer = &entry->answers [i];
        kf_variant_from_msgpack (answer, &answers->via.array.ptr [i]);
        entry->bytes += sizeof *answer + strlen (answer->answer) + answer->content_size + 64
                      + answer->label_count * 48;
    }
    msgpack_sbuffer shared;
    msgpack_sbuffer_init (&shared);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &shared, msgpack_sbuffer_write);
    kf_mp_pack_cstr (&pk, "intent");
    kf_wp_pack_str (&pk, result->intent);
    kf_mp_pack_kv_double_if (&pk, "intent_confidence", result->has_intent_confidence,
                        result->intent_confidence);
    kf_mp_pack_kv_double_if (&pk, "confidence", result->has_confidence, result->confidence);
    kf_mp_pack_kv_object (&pk, "sources", result->sources);
    kf_mp_pack_kv_object (&pk, "candidates", result->candidates);
    entry->shared = shared.data;
    entry->shared_size = shared.size;
    entry->bytes += shared.size;
    kf_dict_put (self->entries, key, key_len, entry);
    s_push_front (self, entry);
    self->bytes += entry->bytes;
    while (self->bytes > self->max_bytes && self->tail)
        s_drop (self, self->tail);
}

const kf_answer_entry_t *
kf_answer_cache_find (kf_answer_cache_t *self, const char *bot_id, const char *message,
                      size_t len, int64_t version)
{
    if (!self->head) {
        self->misses++;
        return NULL;
    }
    char *question = kf_text_normalize (message, len);
    char *key;
    size_t key_len = s_key (bot_id, version, question, strlen (question), &key);
    s_entry_t *entry = kf_dict_get (self->entries, key, key_len);
    free (key);
    free (question);
    if (!entry) {
        self->misses++;
        return NULL;
    }
    self->hits++;
    s_unlink (self, entry);
    s_push_front (self, entry);
    return entry;
}

void
kf_answer_cache_pack (const kf_answer_entry_t *entry, const msgpack_object *labels,
                      msgpack_packer *pk)
{
    const kf_variant_t *answer = &entry->answers [kf_variant_pick (entry->answers,
                                                                   entry->answer_count, labels)];
    msgpack_pack_map (pk, 15);
    kf_mp_pack_kv_str (pk, "reply", answer->answer);
    kf_mp_pack_kv_str (pk, "response_type", answer->response_type);
    kf_mp_pack_cstr (pk, "response_content");
    kf_variant_pack_content (answer, pk);
    pk->callback (pk->data, entry->shared, entry->shared_size);      //  5 pairs
    kf_mp_pack_cstr (pk, "suggestions");
    msgpack_pack_array (pk, 0);
    kf_mp_pack_cstr (pk, "sub_tasks");
    msgpack_pack_array (pk, 0);
    kf_mp_pack_kv_bool (pk, "escalate_to_human", false);
    kf_mp_pack_kv_int (pk, "handoff_reason", 0);
    kf_mp_pack_kv_int (pk, "failed_attempts", 0);
    kf_mp_pack_cstr (pk, "usage");
    msgpack_pack_map (pk, 3);
    kf_mp_pack_kv_int (pk, "prompt_tokens", 0);
    kf_mp_pack_kv_int (pk, "completion_tokens", 0);
    kf_mp_pack_kv_int (pk, "total_tokens", 0);
    kf_mp_pack_kv_bool (pk, "cached", true);
}

size_t
kf_answer_cache_invalidate (kf_answer_cache_t *self, const char *bot_id)
{
    size_t count = 0;
    for (s_entry_t *entry = self->head, *next; entry; entry = next) {
        next = entry->next;
        if (!bot_id || strcmp (entry->bot_id, bot_id) == 0) {
            s_drop (self, entry);
            count++;
        }
    }
    return count;
}

void
kf_answer_cache_stats_pack (kf_answer_cache_t *self, msgpack_packer *pk)
{
    uint64_t lookups = self->hits + self->misses;
    msgpack_pack_map (pk, 7);
    kf_mp_pack_kv_int (pk, "entries", (int64_t) kf_dict_size (self->entries));
    kf_mp_pack_kv_int (pk, "bytes", (int64_t) self->bytes);
    kf_mp_pack_kv_int (pk, "max_bytes", (int64_t) self->max_bytes);
    kf_mp_pack_kv_int (pk, "hits", (int64_t) self->hits);
    kf_mp_pack_kv_int (pk, "misses", (int64_t) self->misses);
    kf_mp_pack_kv_double (pk, "hit_rate", lookups ? (double) self->hits / lookups : 0);
    kf_mp_pack_kv_int (pk, "refused", (int64_t) self->refused);
}
