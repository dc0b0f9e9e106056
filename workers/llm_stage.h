/*  llm_stage.h - the LLM part of chat turns in the worker: starts the upstream request of a turn
    the pipeline handed to the LLM, forwards every token as a PARTIAL token event the moment it
    arrives, and ends the job with one FINAL: the upstream's answer with its usage, or, when the
    upstream fails before any token, the knowledge-base reply (or the upstream's fallback_reply)
    with "upstream_error"; after tokens, the partial answer with "upstream_error". Owns the
    upstream client: the worker polls its file descriptors (kf_llm_stage_client) in its loop.
    Jobs hold copies of what they need, never knowledge-base pointers, so the knowledge base may
    be swapped while they stream. API keys go to the upstream client only: never into a message
    or a log line. */
#ifndef KF_LLM_STAGE_H
#define KF_LLM_STAGE_H
#include <msgpack.h>
#include <stdbool.h>
#include "common/config.h"
#include "workers/pipeline.h"
#include "workers/upstream_client.h"

typedef struct _kf_llm_stage_t kf_llm_stage_t;

//  Sends one worker-protocol message [KFW1, command, job_id, body] to the broker.
typedef void (kf_llm_send_fn) (void *arg, const char *command, const char *job_id,
                               const msgpack_sbuffer *body);

//  Creates the stage over `config` (borrowed, outlives the stage), with at most `max_requests`
//  upstream streams open; fallback replies are streamed `chunk_chars` characters a token.
kf_llm_stage_t *kf_llm_stage_new (const kf_config_t *config, int max_requests, int chunk_chars,
                                  kf_llm_send_fn *send, void *arg);

//  Cancels every request silently and destroys the stage; nulls *self_p.
void kf_llm_stage_destroy (kf_llm_stage_t **self_p);

//  The LLM settings of bot `bot_id` when it uses an LLM (mode not off, an upstream), else NULL.
const kf_bot_llm_t *kf_llm_stage_bot (kf_llm_stage_t *self, const char *bot_id);

//  Whether another start would be refused (the caller fails the job busy before sending meta).
bool kf_llm_stage_is_full (kf_llm_stage_t *self);

//  Prepares the upstream request for chat job `job_id` (`job` is the JOB body) whose turn went
//  through kf_pipeline_answer and kf_pipeline_use_llm, and asks the broker for a slot (ACQUIRE):
//  the request starts at the broker's GRANT (kf_llm_stage_grant). The caller has sent meta
//  already when `is_stream`. Tokens are sent only when `is_stream`. The turn may be released on
//  return. Returns 0, or -1 for a job id too long (nothing sent; the caller fails the job).
int kf_llm_stage_start (kf_llm_stage_t *self, const char *job_id, bool is_stream,
                        const kf_upstream_config_t *upstream, const kf_turn_t *turn,
                        const kf_wp_job_t *job);

//  The broker's GRANT for job `job_id`, which kf_llm_stage_start asked for with ACQUIRE (the
//  broker counts every upstream's streams across workers): "ok" starts the request; "open" (the
//  upstream's circuit breaker is open) ends the job at once with the fallback reply and an
//  upstream_error of code "circuit_open", no request made; "busy" drops it silently (the broker
//  fails the chat 429 itself). A job cancelled meanwhile is ignored.
void kf_llm_stage_grant (kf_llm_stage_t *self, const char *job_id, const char *status);

//  Cancels job `job_id` (the broker's CANCEL): its transfer is closed, nothing more is sent.
//  Returns true when it was an LLM job.
bool kf_llm_stage_cancel (kf_llm_stage_t *self, const char *job_id);

//  Stops job `job_id` (the broker's STOP, chat.stop): its transfer is closed, and FINAL is sent
//  with the reply so far (exactly the tokens sent) and "stopped": true. Returns true when it was
//  an LLM job still in progress.
bool kf_llm_stage_stop (kf_llm_stage_t *self, const char *job_id);

//  Cancels every job silently (the broker connection was reset).
void kf_llm_stage_cancel_all (kf_llm_stage_t *self);

//  The upstream client, for the loop's poll wiring (upstream_client.h).
kf_upstream_client_t *kf_llm_stage_client (kf_llm_stage_t *self);

//  Jobs in flight.
size_t kf_llm_stage_jobs (kf_llm_stage_t *self);
#endif
