/*  pipeline.h - the answer pipeline of one chat turn (orchestrated in pipeline.c):
        normalize -> emotion -> intent (intent_stage.c) -> entities -> route (dialogs: ticket_dialog.h)
        -> retrieve -> answer (chit-chat, knowledge, empathy, ticket) -> handoff (handoff.h)
    then packing (pipeline_pack.c). Streaming is the worker's job; the pipeline only says what to
    stream, or hands the turn to the LLM stage (llm_stage.h) or the business stage. Stages fill
    one kf_turn_t, so a stage slots in without reshaping the others. Routing is described for
    clients in PROTOCOL.md section 15. */
#ifndef KF_PIPELINE_H
#define KF_PIPELINE_H
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include "common/config.h"
#include "common/worker_proto.h"
#include "common/wire.h"
#include "workers/bot_models.h"
#include "workers/business_stage.h"
#include "workers/dialog_slots.h"
#include "workers/entities.h"
#include "workers/handoff.h"
#include "workers/kb_index.h"

#define KF_PIPELINE_HITS KF_CHAT_TOP_K_DEFAULT  //  Candidates a chat gets by default (top_k)
#define KF_TOP_K_MAX KF_CHAT_TOP_K_MAX          //  ... at most
#define KF_SUGGESTIONS_DEFAULT 3    //  "Did you mean" items by default (the bot's answer.suggestions)
#define KF_SUGGESTIONS_MAX 10       //  ... at most
#define KF_CONTEXT_MAX 3        //  Knowledge items an LLM gets as reference material

//  Thresholds on the retrieval score (kf_kb_hit_t.confidence). Whether an item answers is decided
//  on its calibrated probability instead, against the bot's threshold (kb_calibration.h).
typedef struct {
    double suggest_threshold;   //  At or above: offer as a "did you mean" suggestion, or give an
                                //  LLM as reference material
    double sure_threshold;      //  At or above (and answered): cacheable
} kf_pipeline_config_t;

//  What a turn is answered from, all borrowed from the worker for the length of the turn
typedef struct {
    kf_kb_index_t *kb;          //  The knowledge base, NULL until loaded
    kf_bot_models_t *models;    //  Its bots' intent models and chit-chat tables, NULL until loaded
    const kf_config_t *server;  //  LLM and business settings (config.h), NULL when none
} kf_pipeline_env_t;

//  How a turn is answered (the intent says what the customer wants; the route what answers it)
typedef enum {
    KF_ROUTE_KNOWLEDGE = 0,     //  The knowledge base (and the LLM per the bot's mode)
    KF_ROUTE_CHITCHAT,          //  The bot's chit-chat table
    KF_ROUTE_TRANSFER,          //  To a person at once
    KF_ROUTE_EMPATHY,           //  An empathetic prefix and the knowledge answer, or an apology
    KF_ROUTE_TICKET,            //  The ticket dialog
    KF_ROUTE_BUSINESS           //  The bot's business API (the business stage)
} kf_route_t;

//  One request of a message with two or more (the classifier's sub_tasks)
typedef struct {
    const char *intent;         //  Borrowed from the bot's model
    double confidence;
    const char *text;           //  Its clause, borrowed from the message
    size_t text_len;
} kf_sub_task_t;

//  One turn going through the pipeline. Inputs are borrowed from the job; outputs owned here.
typedef struct {
    //  Inputs
    const char *message;        //  Customer text (UTF-8, validated by the broker)
    size_t message_len;
    char bot_id [260];          //  Up to 64 characters of UTF-8
    int64_t failed_attempts;    //  Consecutive unanswered turns before this one
    int64_t repeat_count;       //  Times in a row this normalized question was sent (context)
    kf_handoff_config_t handoff;    //  The bot's thresholds (context.handoff)
    const msgpack_object *labels;   //  The asker's labels (a string map) or NULL
    int64_t kb_version;         //  Version of `kb`, set by the caller: the answer cache's key
    const kf_bot_llm_t *bot;    //  The bot's LLM / business settings, NULL when none
    kf_llm_mode_t llm_mode;     //  The bot's LLM mode (off without an upstream)
    kf_bot_model_t model;       //  The bot's intent model, chit-chat table and calibration
    int top_k;                  //  Candidates asked for (params.top_k), 1..KF_TOP_K_MAX
    int suggest_max;            //  "Did you mean" items (context.answer.suggestions)
    double target_precision;    //  The bot's (context.answer.target_precision)
    double answer_threshold;    //  Probability an item needs to answer: from the calibration
    //  normalize
    char *normalized;           //  kf_text_normalize: the answer cache's key (made when packed)
    //  intent
    const char *intent;         //  One of the bot's intents (KF_INTENT_* without a model)
    double intent_confidence;
    bool is_intent_explicit;    //  The customer's words decided it (the transfer override or a
                                //  pattern), not the model's guess: only such a transfer_to_human
                                //  interrupts a waiting dialog
    kf_sub_task_t sub_tasks [KF_INTENT_MAX_SUBTASKS];
    int sub_task_count;         //  0, or 2 and more
    const char *query;          //  What is looked up in the knowledge base: the message, or the
    size_t query_len;           //  clause of the sub_task answered
    //  emotion
    double emotion_score;       //  [0, 1], lower = more upset
    //  entities and dialog
    kf_entities_t found;        //  Order and phone numbers in this message
    kf_slots_t slots;           //  The dialog state, updated by this turn (the result's slots)
    bool was_awaiting;          //  A dialog waited for this message
    kf_route_t route;
    bool has_ticket;            //  The ticket is complete: the result carries it, reply ""
    char *reminder;             //  What a waiting dialog still needs, put after the answer
    char *business_tail;        //  Route business: what follows the API's answer (the other
                                //  requests' knowledge answers, the reminder), or NULL
    //  retrieve
    kf_kb_hit_t hits [KF_TOP_K_MAX];    //  For the whole message (or the clause answered),
    int hit_count;                      //  best first, their probabilities set
    //  retrieve, for a message with sub_tasks: the best two hits of each other request the
    //  knowledge base answers (knowledge_qa, or business_query of a bot without an API), by sub_task
    kf_kb_hit_t sub_hits [KF_INTENT_MAX_SUBTASKS][2];
    int sub_hit_count [KF_INTENT_MAX_SUBTASKS];
    //  answer
    char *reply;                //  Text to stream
    double confidence;          //  Confidence of the answer given
    bool is_answered;           //  The knowledge base (or a canned reply) answered
    bool escalate_to_human;
    kf_handoff_reason_t handoff_reason;     //  Why it escalates, KF_HANDOFF_NONE when not
    const kf_kb_item_t *source; //  Item answered from, or NULL
    kf_kb_hit_t also [KF_INTENT_MAX_SUBTASKS];  //  The other requests' items answered too
    int also_count;             //  (sources after the first; their answers follow in the reply)
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

//  True when the best of `count` hits (best first, probabilities set) is likely enough to be right
//  to answer: its probability at or above `threshold`.
bool kf_pipeline_is_answer (double threshold, const kf_kb_hit_t *hits, int count);

//  Sets the probability of each of `count` hits from `calibration` (NULL: the default).
void kf_pipeline_calibrate (const kf_kb_calibration_t *calibration, kf_kb_hit_t *hits, int count);

//  Runs normalize, emotion, intent, entities, the route (and a waiting dialog's step) and
//  retrieve for the job body `job` (the "params" of a chat job and its "context"). Parts of
//  `env` may be NULL (nothing loaded yet: rules and no knowledge base). Everything needed for the
//  meta event is known after kf_pipeline_answer.
void kf_pipeline_prepare (kf_turn_t *turn, const kf_pipeline_config_t *config,
                          const kf_pipeline_env_t *env, const kf_wp_job_t *job);

//  Decides the answer text and the handoff. Call after kf_pipeline_prepare.
void kf_pipeline_answer (kf_turn_t *turn, const kf_pipeline_config_t *config);

//  Whether the turn goes to the bot's LLM under `mode`: a knowledge_qa turn, always, or under
//  fallback when the knowledge base did not answer; never a turn that escalates or is in a
//  dialog. Call after kf_pipeline_answer.
bool kf_pipeline_needs_llm (const kf_turn_t *turn, kf_llm_mode_t mode);

//  Whether the turn goes to the bot's business API (route business: a business_query turn of a
//  bot with a [business] in the config that does not escalate). Call after kf_pipeline_answer.
bool kf_pipeline_needs_business (const kf_turn_t *turn);

//  Marks the turn as answered by an LLM: its context is the best hits (at most KF_CONTEXT_MAX)
//  at or above the suggest threshold; the meta fields then name those as sources, with no
//  suggestions and no escalation. The knowledge-base reply stays in `reply` (the fallback when
//  the upstream fails). Call after kf_pipeline_answer.
void kf_pipeline_use_llm (kf_turn_t *turn, const kf_pipeline_config_t *config);

//  Packs one knowledge hit as a source: {id, external_id, question, category, score}.
void kf_pipeline_pack_source (msgpack_packer *pk, const kf_kb_hit_t *hit);

//  Packs the fields shared by the meta event and the result (intent, intent_confidence,
//  confidence, sources, suggestions, candidates, sub_tasks, emotion_score, escalate_to_human,
//  handoff_reason)
//  as key/value pairs; returns how many pairs it packs (when `pk` is NULL, packs nothing), so
//  callers can size their maps.
int kf_pipeline_pack_meta_fields (kf_turn_t *turn, msgpack_packer *pk);

//  Packs the fields of the turn a later stage (LLM, business) adds to its own result unchanged:
//  intent_confidence, candidates, sub_tasks, emotion_score, handoff_reason, slots. Returns the pair count
//  (nothing packed when `pk` is NULL).
int kf_pipeline_pack_turn_fields (const kf_turn_t *turn, msgpack_packer *pk);

//  The business stage's fields callback (business_stage.h) for a turn that needs the business API
//  (kf_pipeline_needs_business): the result's fields besides reply: response_type "text",
//  response_content nil, the meta fields (no sources or suggestions: the knowledge answer that
//  stood in is dropped; the items of the other requests answered in business_tail stay), usage, slots, and failed_attempts from the outcome (a failed call counts
//  as an unanswered turn; it escalates at the next unanswered turn, reason 3).
//  kf_pipeline_business_fields_new packs the turn's part at once (heap, for the stage's
//  fields_arg, freed by kf_pipeline_business_fields_free); the turn may be released afterwards.
void *kf_pipeline_business_fields_new (kf_turn_t *turn);
int kf_pipeline_business_fields (void *arg, const kf_business_outcome_t *outcome, msgpack_packer *pk);
void kf_pipeline_business_fields_free (void *arg);

//  Packs the worker's result map for FINAL: reply, response_type, response_content, the meta
//  fields, failed_attempts, usage, slots, `ticket` when one is complete, and for a cacheable
//  answer "cache": {question (normalized), kb_version, answers: every answer of the item with its
//  labels} for the broker's answer cache.
void kf_pipeline_pack_result (kf_turn_t *turn, msgpack_packer *pk);

//  Packs a token event {event: "token", content} into `body`, an initialised buffer it empties
//  first: a caller keeps one from token to token, so a token costs no allocation.
void kf_pipeline_pack_token (msgpack_sbuffer *body, const char *text, size_t len);

//  Packs a failed job's FINAL body {ok: false, error} into `body` (initialised here).
void kf_pipeline_pack_failure (msgpack_sbuffer *body, const kf_error_t *err);

//  Frees what the stages allocated. The turn can be reused afterwards.
void kf_turn_release (kf_turn_t *turn);
#endif
