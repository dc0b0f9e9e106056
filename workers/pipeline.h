/*  pipeline.h - the answer pipeline of one chat turn: normalize -> intent -> retrieve -> answer.
    Streaming is the worker's job; the pipeline only says what to stream. Stages fill one kf_turn_t,
    so later stages (LLM calls, business APIs) slot in without reshaping the others. */
#ifndef KF_PIPELINE_H
#define KF_PIPELINE_H
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include "common/config.h"
#include "workers/kb_index.h"

#define KF_PIPELINE_HITS 5
#define KF_SUGGESTIONS_MAX 3
#define KF_CONTEXT_MAX 3        //  Knowledge items an LLM gets as reference material

//  Thresholds on the retrieval confidence; the trade-off is measured in BENCHMARKS.md.
typedef struct {
    double answer_threshold;    //  At or above: answer with the item
    double suggest_threshold;   //  At or above: offer as a "did you mean" suggestion
    double sure_threshold;      //  At or above: answer even when another item is close
    double ambiguity_margin;    //  Below sure, a runner-up this close makes it a suggestion
} kf_pipeline_config_t;

//  One turn going through the pipeline. Inputs are borrowed from the job; outputs owned here.
typedef struct {
    //  Inputs
    const char *message;        //  Customer text (UTF-8, validated by the broker)
    size_t message_len;
    char bot_id [260];          //  Up to 64 characters of UTF-8
    int64_t failed_attempts;    //  Consecutive unanswered turns before this one
    const msgpack_object *labels;   //  The asker's labels (a string map) or NULL
    int64_t kb_version;         //  Version of `kb`, set by the caller: the answer cache's key
    //  normalize
    char *normalized;
    //  intent
    const char *intent;         //  chitchat, knowledge_qa, transfer_to_human
    double intent_confidence;
    //  retrieve
    kf_kb_hit_t hits [KF_PIPELINE_HITS];
    int hit_count;
    //  answer
    char *reply;                //  Text to stream
    double confidence;          //  Confidence of the answer given
    bool is_answered;           //  The knowledge base (or a canned reply) answered
    bool escalate_to_human;
    const kf_kb_item_t *source; //  Item answered from, or NULL
    const kf_variant_t *answer; //  The source's answer picked for the asker's labels, or NULL
    bool is_cacheable;          //  Sure enough, and from nothing but the message and labels
    const char *suggestions [KF_SUGGESTIONS_MAX];
    int suggestion_count;
    //  llm (kf_pipeline_use_llm): the answer comes from an upstream, with hits [0 .. context_count)
    //  as its reference material
    bool is_llm;
    int context_count;
} kf_turn_t;

//  Default thresholds.
void kf_pipeline_config_defaults (kf_pipeline_config_t *config);

//  True when the best of `count` hits (best first) is confident enough to answer: above the answer
//  threshold and either sure or clearly ahead of the runner-up.
bool kf_pipeline_is_answer (const kf_pipeline_config_t *config, const kf_kb_hit_t *hits, int count);

//  Runs normalize, intent and retrieve for the job body `job` (the "params" of a chat job and its
//  "context"). `kb` may be NULL (no knowledge base loaded yet). Everything needed for the meta
//  event is known afterwards.
void kf_pipeline_prepare (kf_turn_t *turn, const kf_pipeline_config_t *config, kf_kb_index_t *kb,
                          const msgpack_object *job);

//  Decides the answer text. Call after kf_pipeline_prepare.
void kf_pipeline_answer (kf_turn_t *turn, const kf_pipeline_config_t *config);

//  Whether the turn goes to the bot's LLM under `mode`: a knowledge_qa turn, always, or under
//  fallback when the knowledge base did not answer. Call after kf_pipeline_answer.
bool kf_pipeline_needs_llm (const kf_turn_t *turn, kf_llm_mode_t mode);

//  Marks the turn as answered by an LLM: its context is the best hits (at most KF_CONTEXT_MAX)
//  at or above the suggest threshold; the meta fields then name those as sources, with no
//  suggestions and no escalation. The knowledge-base reply stays in `reply` (the fallback when
//  the upstream fails). Call after kf_pipeline_answer.
void kf_pipeline_use_llm (kf_turn_t *turn, const kf_pipeline_config_t *config);

//  Packs one knowledge hit as a source: {id, external_id, question, category, score}.
void kf_pipeline_pack_source (msgpack_packer *pk, const kf_kb_hit_t *hit);

//  Packs the fields shared by the meta event and the result (intent, confidence, sources,
//  suggestions, escalate_to_human) as `count` key/value pairs; returns how many pairs it packed
//  when `pk` is NULL, so callers can size their maps.
int kf_pipeline_pack_meta_fields (kf_turn_t *turn, msgpack_packer *pk);

//  Packs the worker's result map for FINAL: reply, response_type, response_content, the meta
//  fields, failed_attempts, usage, and for a cacheable answer "cache": {question (normalized),
//  kb_version, answers: every answer of the item with its labels} for the broker's answer cache.
void kf_pipeline_pack_result (kf_turn_t *turn, msgpack_packer *pk);

//  Packs a token event {event: "token", content} into `body` (initialised here; the caller sends
//  it as PARTIAL and destroys it).
void kf_pipeline_pack_token (msgpack_sbuffer *body, const char *text, size_t len);

//  Packs a failed job's FINAL body {ok: false, error} into `body` (initialised here).
void kf_pipeline_pack_failure (msgpack_sbuffer *body, const kf_error_t *err);

//  Frees what the stages allocated. The turn can be reused afterwards.
void kf_turn_release (kf_turn_t *turn);
#endif
