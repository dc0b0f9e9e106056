/*  answer_cache.h - the broker's hot-answer cache. Knowledge answers a worker resolved with high
    confidence are kept under (bot, normalized question, knowledge-base version) with every answer
    variant of their item, so the asker's labels pick the answer at lookup exactly as a worker
    would. The version in the key means an edit never serves a stale answer: after a bump, old
    entries are simply never found again and age out. Bounded in bytes, least recently used out. */
#ifndef KF_ANSWER_CACHE_H
#define KF_ANSWER_CACHE_H
#include "common/worker_proto.h"
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _kf_answer_cache_t kf_answer_cache_t;

//  Creates a cache holding at most `max_bytes` (0 disables it). Never NULL.
kf_answer_cache_t *kf_answer_cache_new (size_t max_bytes);

//  Frees every entry; nulls *self_p.
void kf_answer_cache_destroy (kf_answer_cache_t **self_p);

//  Keeps a worker's cacheable result of `message` (the job's): its intent, intent_confidence,
//  confidence, sources and candidates, and its "cache" map {question, kb_version, answers}.
//  Ignores malformed input, and a question that is not the message normalized (a worker cannot
//  plant an answer for another question).
void kf_answer_cache_put (kf_answer_cache_t *self, const char *bot_id, const kf_wp_result_t *result,
                          const char *message, size_t message_len);

//  An entry found by kf_answer_cache_find; valid until the next call that changes the cache.
typedef struct _kf_answer_entry_t kf_answer_entry_t;

//  Looks up (bot, `message` as normalized by kf_text_normalize, version) and counts a hit or a
//  miss. Costs nothing more while the cache is empty (the message is normalized only when there
//  is something to find). Returns the entry or NULL.
const kf_answer_entry_t *kf_answer_cache_find (kf_answer_cache_t *self, const char *bot_id,
                                               const char *message, size_t len, int64_t version);

//  Packs the result map of an entry as a worker would send it, with the answer for `labels` (a
//  string map or NULL), no sub_tasks, handoff_reason 0 and "cached": true (no emotion_score: that
//  is the message's, which the caller scores).
void kf_answer_cache_pack (const kf_answer_entry_t *entry, const msgpack_object *labels,
                           msgpack_packer *pk);

//  Drops every entry of `bot_id` (every entry when NULL). Returns how many.
size_t kf_answer_cache_invalidate (kf_answer_cache_t *self, const char *bot_id);

//  Packs {entries, bytes, max_bytes, hits, misses, hit_rate, refused} for stats.
void kf_answer_cache_stats_pack (kf_answer_cache_t *self, msgpack_packer *pk);
#endif
