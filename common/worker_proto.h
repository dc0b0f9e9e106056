/*  worker_proto.h - the chat messages of the worker protocol (KFW1, PROTOCOL.md 9) as typed
    structs: the job the broker sends (9.5) and the result a worker's FINAL carries (9.7), each
    decoded once where it arrives and read as fields from then on, and encoded from the same
    struct by whoever makes one.

    Decoding is one pass over the map. Strings are views into the decoded message (borrowed, not
    NUL-terminated; data NULL when absent or not a string). Values of the wrong type count as
    absent, so a worker cannot put a map where the broker stores a string. The lists a worker makes
    and the broker passes on as they are (sources, suggestions, candidates, sub_tasks), the slots
    it keeps for the session, and the ticket and cache maps that their own modules read stay
    msgpack objects, borrowed too; they are kept only when of the documented type (array or map).
    Unknown keys are ignored, and the last of duplicate keys wins. */
#ifndef KF_WORKER_PROTO_H
#define KF_WORKER_PROTO_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *data;           //  NULL: absent
    size_t len;
} kf_wp_str_t;

#define KF_WP_TOKENS_MAX 1000000000000LL     //  A count above this is taken as this

//  Token counts of a turn (usage); absent or negative counts are 0, none above KF_WP_TOKENS_MAX,
//  so sums of them never overflow
typedef struct {
    int64_t prompt_tokens, completion_tokens, total_tokens;
} kf_wp_usage_t;

//  The result of a chat (9.7)
typedef struct {
    kf_wp_str_t reply, response_type, intent;
    const msgpack_object *response_content;     //  NULL: absent or nil
    double intent_confidence, confidence, emotion_score;
    bool has_intent_confidence, has_confidence, has_emotion_score;
    const msgpack_object *sources, *suggestions, *candidates, *sub_tasks;    //  Arrays, or NULL
    bool escalate_to_human;
    int64_t handoff_reason, failed_attempts;
    bool has_handoff_reason, has_failed_attempts;
    kf_wp_usage_t usage;
    bool has_usage;
    const msgpack_object *slots, *ticket, *cache;  //  Maps, or NULL
    kf_wp_str_t upstream, upstream_conversation_id;
    bool has_upstream_error;
    kf_wp_str_t upstream_error_code, upstream_error_message;
    int64_t upstream_error_status;              //  0: none
    bool stopped, cached;
} kf_wp_result_t;

//  The bot's handoff thresholds a job carries (context.handoff); has_*: present as a number
typedef struct {
    int64_t failed_attempts, repeated_question;
    double emotion_below;
    bool has_failed_attempts, has_repeated_question, has_emotion_below;
} kf_wp_handoff_t;

//  One earlier turn of the session (context.turns)
typedef struct {
    kf_wp_str_t role, content;
} kf_wp_turn_t;

#define KF_WP_TURNS_MAX 16      //  Earlier turns a job keeps, the latest ones

//  A job (9.5): a chat, or a suggest call (keyword, number)
typedef struct {
    kf_wp_str_t method;
    bool stream;
    //  params
    kf_wp_str_t message, bot_id, user_id, channel, keyword;
    int64_t top_k, number;
    bool has_top_k, has_number;
    const msgpack_object *labels, *inputs;      //  Maps, or NULL
    //  context
    kf_wp_str_t session_id, upstream_conversation_id;
    int64_t turn_count, failed_attempts, repeat_count;
    kf_wp_turn_t turns [KF_WP_TURNS_MAX];
    int turn_total;             //  Entries of context.turns kept in `turns` (the last ones)
    const msgpack_object *slots;                //  A map, or NULL
    double emotion_score;
    bool has_emotion_score;
    kf_wp_handoff_t handoff;
    bool has_handoff;
    double target_precision;    //  context.answer
    int64_t suggestions;
    bool has_target_precision, has_suggestions;
} kf_wp_job_t;

//  Reads the job map `map` into `job` (zeroed first). Returns false when `map` is not a map
bool kf_wp_job_decode (const msgpack_object *map, kf_wp_job_t *job);

//  Packs `job` as a map with the keys it has (the encoding kf_wp_job_decode reads back)
void kf_wp_job_pack (const kf_wp_job_t *job, msgpack_packer *pk);

//  Reads a handoff map into `handoff` (zeroed first); false when `map` is not a map
bool kf_wp_handoff_decode (const msgpack_object *map, kf_wp_handoff_t *handoff);

//  Reads the result map `map` into `result` (zeroed first). Returns false when `map` is not a
//  map (the result then holds nothing)
bool kf_wp_result_decode (const msgpack_object *map, kf_wp_result_t *result);

//  True when every text of `result` the broker stores or returns (reply, response_type, intent,
//  upstream, upstream_conversation_id) is valid UTF-8 without a NUL
bool kf_wp_result_is_text (const kf_wp_result_t *result);

//  Packs `result` as a map with the keys it has (the encoding kf_wp_result_decode reads back)
void kf_wp_result_pack (const kf_wp_result_t *result, msgpack_packer *pk);

//  Packs the pair "usage": {prompt_tokens, completion_tokens, total_tokens}, nil without `has`
void kf_wp_usage_pack (msgpack_packer *pk, bool has, const kf_wp_usage_t *usage);

//  Packs a view as a msgpack string, or nil when absent
void kf_wp_pack_str (msgpack_packer *pk, kf_wp_str_t str);

//  A view of a NUL-terminated string (NULL stays absent)
kf_wp_str_t kf_wp_str (const char *text);

#endif
