/*  business_stage.h - the business_query part of chat turns in the worker: answers at once with
    the API's ask_reply when no entity it requires is known, else calls the bot's business API
    (business_client.h) and, when the call ends, streams the reply as token events and sends the
    job's one FINAL. The caller (the chat path) has sent meta already; the FINAL's result map is
    "reply" (and "stopped" after chat.stop) plus the fields the caller packs through its
    callback, which learns how the call went (so it can set failed_attempts, escalation, slots).
    Owns the business client: the worker polls its descriptor (kf_business_stage_client).
    Turns hold copies of what they need, never the caller's job or turn. */
#ifndef KF_BUSINESS_STAGE_H
#define KF_BUSINESS_STAGE_H
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include "common/config.h"
#include "workers/business_client.h"
#include "workers/entities.h"

typedef struct _kf_business_stage_t kf_business_stage_t;

//  Sends one worker-protocol message [KFW1, command, job_id, body] to the broker.
typedef void (kf_business_send_fn) (void *arg, const char *command, const char *job_id,
                                    const msgpack_sbuffer *body);

//  How a business turn ended, for the caller's result fields. Borrowed for the callback.
typedef struct {
    const char *job_id;
    kf_business_status_t status;
    const char *code;           //  kf_business_result_t's code; "ask", "busy", "stopped" here
    int http_status;            //  0 when no response came
    const char *reply;          //  The text streamed ("" when stopped)
    bool is_failure;            //  TIMEOUT or FAILED: the turn did not answer the customer
    int64_t failed_attempts;    //  What the result should say: previous + 1 on a failure, 0 when
                                //  answered or not found, previous when asked or stopped
} kf_business_outcome_t;

//  Packs the FINAL result's fields other than "reply" and "stopped" into `pk` and returns how many
//  key/value pairs it packed (intent, confidence, slots, failed_attempts: outcome->failed_attempts,
//  escalate_to_human ...; kf_pipeline_pack_meta_fields and friends).
typedef int (kf_business_fields_fn) (void *arg, const kf_business_outcome_t *outcome,
                                     msgpack_packer *pk);

//  Frees the callback's argument. NULL: nothing to free.
typedef void (kf_business_free_fn) (void *arg);

//  One business_query turn, for kf_business_stage_run. Borrowed for the call.
typedef struct {
    const char *job_id;         //  Under 32 bytes
    bool is_stream;             //  Stream the reply as token events before FINAL
    const char *bot_id;         //  Whose [bot] names the API; NULL: [bot *]
    kf_business_vars_t vars;    //  Entities (this message's, else the session's slots) and ids
    int64_t failed_attempts;    //  Before this turn (the job's context)
    const char *tail;           //  Put after the API's answer (or its ask), a blank line between:
                                //  the message's other answers; NULL or "" for none. Copied
    kf_business_fields_fn *fields;  //  Required
    void *fields_arg;           //  Owned by the stage from the call on, freed with free_arg
    kf_business_free_fn *free_arg;
} kf_business_turn_t;

//  What kf_business_stage_run did.
typedef enum {
    KF_BUSINESS_RUN_CALLING,    //  The call is in flight: FINAL comes from the worker's loop
    KF_BUSINESS_RUN_ANSWERED    //  FINAL was sent already (ask_reply; or error_reply, as a
                                //  failure, when max_calls are open)
} kf_business_run_t;

//  Creates the stage over `config` (borrowed, outlives the stage), with at most `max_calls` calls
//  open; replies are streamed `chunk_chars` characters a token. Never NULL.
kf_business_stage_t *kf_business_stage_new (const kf_config_t *config, int max_calls,
                                            int chunk_chars, kf_business_send_fn *send, void *arg);

//  Cancels every call silently and destroys the stage; nulls *self_p.
void kf_business_stage_destroy (kf_business_stage_t **self_p);

//  The business API of bot `bot_id` ([bot *] when it has no section), or NULL when it has none:
//  business_query then goes the knowledge-base way.
const kf_business_config_t *kf_business_stage_api (kf_business_stage_t *self, const char *bot_id);

//  The entity rules of bot `bot_id` (its order_pattern) for kf_entities_extract; the default
//  pattern for a bot without a section. Borrowed from the config.
kf_entity_rules_t kf_business_stage_rules (kf_business_stage_t *self, const char *bot_id);

//  Runs a business_query turn of a bot with an API (kf_business_stage_api not NULL; asserts).
//  The caller has sent meta (when streaming). Takes ownership of turn->fields_arg.
kf_business_run_t kf_business_stage_run (kf_business_stage_t *self, const kf_business_turn_t *turn);

//  Cancels job `job_id` (the broker's CANCEL): its call ends, nothing is sent. Returns true when
//  it was a business job in flight.
bool kf_business_stage_cancel (kf_business_stage_t *self, const char *job_id);

//  Stops job `job_id` (the broker's STOP): its call ends and FINAL is sent with reply "" and
//  "stopped": true. Returns true when it was a business job in flight.
bool kf_business_stage_stop (kf_business_stage_t *self, const char *job_id);

//  Cancels every job silently (the broker connection was reset).
void kf_business_stage_cancel_all (kf_business_stage_t *self);

//  The business client, for the loop's poll wiring.
kf_business_client_t *kf_business_stage_client (kf_business_stage_t *self);

//  Jobs in flight.
size_t kf_business_stage_jobs (kf_business_stage_t *self);
#endif
