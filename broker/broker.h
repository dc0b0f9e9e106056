/*  broker.h - the kefu-broker process: one event loop over three sockets (client requests on a
    ROUTER, token streams on an XPUB, workers on a ROUTER) that owns the database. This header is
    shared by the broker's modules: the loop (broker.c), client methods (methods.c and the other
    *_methods.c), the chat job lifecycle (chat_jobs.c) and its answers (chat_results.c). */
#ifndef KF_BROKER_H
#define KF_BROKER_H
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include "broker/kb_publisher.h"
#include "broker/latency.h"
#include "broker/sessions.h"
#include "broker/store.h"
#include "broker/stream_hub.h"
#include "broker/worker_pool.h"
#include "common/dict.h"
#include "common/wire.h"
#include "common/worker_proto.h"

typedef struct {
    const char *requests;       //  ROUTER for clients
    const char *streams;        //  XPUB for token streams
    const char *workers;        //  ROUTER for workers
    const char *db_path;
    bool is_synchronous_full;   //  fsync every commit (power-loss safe) instead of WAL NORMAL
    int local_workers;          //  Workers to start and supervise (--workers N)
    const char *worker_bin;     //  Path of kefu-worker; default: beside this binary
    int worker_pace_ms;         //  Passed to local workers
    const char *config_path;    //  LLM configuration file (common/config.h), passed to local
                                //  workers; NULL: none (the KEFU_LLM_* environment still counts)
    const struct _kf_config_t *llm; //  That configuration, loaded (borrowed; NULL: no upstreams):
                                //  the broker enforces its upstream limits (llm_jobs.c)
    int heartbeat_ms;           //  Worker heartbeat interval
    int liveness;               //  Missed heartbeats before a worker is lost
    int job_timeout_ms;         //  Deadline of a chat job from its arrival
    int max_pending;            //  Chat jobs queued or running before 429 busy
    int max_message_chars;      //  Longest chat message accepted
    int stream_wait_ms;         //  How long a stream waits for its subscriber
    int stream_retention_ms;    //  How long an ended stream stays fetchable
    int max_attempts;           //  Dispatches of one job before giving up on lost workers
    int idle_close_ms;          //  Sessions untouched this long close themselves (0: never)
    int cache_mb;               //  Hot-answer cache size (0: off)
    //  CURVE (common/curve.h, broker/zap.h): the broker's key file, NULL for plain sockets. With
    //  it every socket is a CURVE server; clients are checked against authorized_clients (NULL or
    //  "any": any key), workers against authorized_workers (NULL: the local workers' own key
    //  only; "any": any key)
    const char *curve_key_path;
    const char *authorized_clients;
    const char *authorized_workers;
} kf_broker_config_t;

#define KF_LIVE_LANES 8         //  Distinct chat deadline lengths kept apart (broker.live)

//  A reply or error waiting for the end of the loop iteration (after the commit)
typedef struct {
    char *routing;              //  Client routing id
    size_t routing_len;
    char *body;                 //  Packed reply
    size_t body_len;
    char *request_id;           //  For the error that replaces it if the commit fails
    size_t request_id_len;
} kf_outbox_entry_t;

typedef struct {
    const kf_broker_config_t *config;
    void *ctx;
    void *requests, *streams, *workers;     //  Sockets
    kf_store_t *store;
    kf_sessions_t *sessions;
    struct _kf_conversations_t *conversations;  //  Profiles, lists, names, deletion
    struct _kf_bots_t *bots;    //  Bot profiles and input definitions
    struct _kf_history_t *history;  //  Reads conversations back
    struct _kf_kb_catalog_t *kb_catalog;    //  Category trees and synonym groups
    struct _kf_kb_items_t *kb_items;        //  Knowledge items
    struct _kf_answer_cache_t *cache;       //  Hot answers, answered without a worker
    struct _kf_answer_quality_t *quality;   //  How surely each bot answers, as workers measured
    int64_t quality_warned_ms;  //  Last warning about a QUALITY report (rate limit)
    struct _kf_escalations_t *escalations;  //  Conversations handed to people (handoff.h)
    struct _kf_zap_t *zap;      //  Authorizes CURVE keys; NULL when the sockets are plain
    kf_worker_pool_t *pool;
    kf_stream_hub_t *hub;
    kf_dict_t *jobs;            //  Job id -> running kf_job_t
    kf_job_t *ready_head, *ready_tail;      //  Jobs waiting for a worker
    struct {                    //  Every unfinished job, in lanes of one deadline length each:
        int64_t timeout_ms;     //  a lane is then in deadline order by arrival alone (the last
        kf_job_t *head, *tail;  //  lane takes every other length, sorted as it goes)
    } live [KF_LIVE_LANES];
    int live_lanes;             //  Lanes in use
    struct kf_call_t *calls_head, *calls_tail;  //  Worker calls (suggest) awaiting an answer
    uint64_t next_call_id;
    struct kf_stop_t *stops;    //  chat.stop requests waiting for their job's end (stop_method.c)
    int pending;                //  Unfinished jobs
    uint64_t next_job_id;
    kf_outbox_entry_t *outbox;  //  Replies to send after the commit
    size_t outbox_count, outbox_capacity;
    struct kf_ended_t *ended;   //  Chats answered in the open batch: their answer rows failed and
    size_t ended_count, ended_capacity;     //  their done taken back if it is lost (chat_jobs.c)
    msgpack_sbuffer event_buffer;   //  Scratch for packing one stream event (kf_cj_publish),
                                    //  kept: one allocation for all instead of one per token
    kf_latency_t latency;       //  Chat latency, arrival to reply
    struct _kf_upstream_limits_t *limits;   //  LLM upstream slots and breakers (llm_jobs.c)
    kf_kb_publisher_t *kb_publisher;        //  Snapshots for remote workers (kb_transfer.c)
    kf_kb_blob_t *kb_snapshot;  //  The latest snapshot the loop took (one reference), or NULL
    int64_t kb_requested_version;           //  Knowledge-base version last asked of the thread
    int64_t kb_requested_us;    //  When
    bool kb_is_building;        //  A request to the thread not seen finished yet
    int64_t started_us;
    int64_t heartbeat_at_us;
    int64_t dirty_since_us;     //  When the open batch got its first write, 0 when clean
    struct {
        uint64_t requests, accepted, done, errors, rejected, timeouts, requeued, workers_lost;
        uint64_t commits;
    } counters;
} kf_broker_t;

//  Fills the defaults.
void kf_broker_config_defaults (kf_broker_config_t *config);

//  Runs the broker until SIGINT/SIGTERM. Returns the process exit code.
int kf_broker_run (const kf_broker_config_t *config);

//  A method's result being packed, for kf_broker_send_result.
typedef struct {
    msgpack_sbuffer buffer;
    msgpack_packer pk;          //  Packs into buffer
} kf_result_t;

//  Starts an empty result.
void kf_result_init (kf_result_t *result);

//  Queues the success reply carrying `result` (one packed value) and frees its buffer.
void kf_broker_send_result (kf_broker_t *self, const char *routing, size_t routing_len,
                            kf_request_t *req, kf_result_t *result);

//  Queues an error reply to `req` and counts it in stats.
void kf_broker_send_error (kf_broker_t *self, const char *routing, size_t routing_len,
                           kf_request_t *req, const kf_error_t *err);

//  Queues a success reply: `result` is a packed msgpack value. Sent after the commit.
void kf_broker_reply_ok (kf_broker_t *self, const char *routing, size_t routing_len,
                         const char *id, size_t id_len, const char *result, size_t result_len);

//  Queues an error reply. Sent after the commit.
void kf_broker_reply_error (kf_broker_t *self, const char *routing, size_t routing_len,
                            const char *id, size_t id_len, const kf_error_t *err);

//  The session a request names in params.session_id, as seen by params.user_id (the ownership rule,
//  PROTOCOL.md 4.0). NULL with `err` set (missing, invalid, or 404 not_found).
kf_session_t *kf_broker_session_param (kf_broker_t *self, kf_request_t *req, kf_error_t *err);

//  The stored message `message_id` as seen by `user_id` (NULL: anyone): copies its role
//  ("unfinished" for an answer not completed) and session id. Another user's message is as good
//  as absent. Returns 1, or 0 with `err` set (404 not_found, 500 when it could not be read).
int kf_broker_message_owned (kf_broker_t *self, int64_t message_id, const char *user_id,
                             size_t user_len, char *role, size_t role_size, char *session_id,
                             size_t session_size, kf_error_t *err);

//  Parameter helpers of the *_methods.c files (methods.c): the bot a request names ("default"
//  when absent or empty) copied into `bot` (260 bytes); page (from 1) and page_size (1..max,
//  default 20 or max when smaller). Each returns 0, or -1 with `err` set.
int kf_broker_param_bot (kf_request_t *req, char *bot, kf_error_t *err);
int kf_broker_param_page (kf_request_t *req, int64_t max, int64_t *page, int64_t *page_size,
                          kf_error_t *err);

//  Answers a query: sends `result` when `rc` is 0, else frees it and answers 500 internal.
void kf_broker_send_query (kf_broker_t *self, const char *routing, size_t routing_len,
                           kf_request_t *req, kf_result_t *result, int rc);

//  A client method: answers `req` from the client `routing` exactly once (reply queued).
typedef void (kf_method_fn) (kf_broker_t *self, const char *routing, size_t routing_len,
                             kf_request_t *req);

//  Handles one decoded client request (methods.c). `routing` identifies the client.
void kf_methods_dispatch (kf_broker_t *self, const char *routing, size_t routing_len,
                          kf_request_t *req);

//  Conversation lifecycle (lifecycle_methods.c): session.close, feedback, and the idle sweep.
kf_method_fn kf_method_session_close;
kf_method_fn kf_method_feedback;
void kf_lifecycle_close_idle (kf_broker_t *self);
//  Purges conversations deleted more than a week ago, at most 100 a call (once a minute).
void kf_lifecycle_purge (kf_broker_t *self);

//  Bots (bot_methods.c): session.init, bot.get, bot.update, parameters.
kf_method_fn kf_method_session_init;
kf_method_fn kf_method_bot_get;
kf_method_fn kf_method_bot_update;
kf_method_fn kf_method_parameters;

//  Conversations and profiles (conversation_methods.c).
kf_method_fn kf_method_user_login;
kf_method_fn kf_method_user_get;
kf_method_fn kf_method_user_logout;
kf_method_fn kf_method_conversations_list;
kf_method_fn kf_method_conversations_rename;
kf_method_fn kf_method_conversations_delete;
kf_method_fn kf_method_records_save;

//  The knowledge base (kb_methods.c).
kf_method_fn kf_method_kb_item_create;
kf_method_fn kf_method_kb_item_update;
kf_method_fn kf_method_kb_item_query;
kf_method_fn kf_method_kb_item_delete;
kf_method_fn kf_method_kb_category_create;
kf_method_fn kf_method_kb_category_update;
kf_method_fn kf_method_kb_category_query;
kf_method_fn kf_method_kb_category_delete;
kf_method_fn kf_method_kb_synonyms_create;
kf_method_fn kf_method_kb_synonyms_update;
kf_method_fn kf_method_kb_synonyms_query;
kf_method_fn kf_method_kb_synonyms_delete;
kf_method_fn kf_method_suggest;
kf_method_fn kf_method_cache_invalidate;

//  Intents and chit-chat (intent_methods.c), tickets and intent.execute (ticket_methods.c).
kf_method_fn kf_method_intent_create;
kf_method_fn kf_method_intent_query;
kf_method_fn kf_method_intent_update;
kf_method_fn kf_method_intent_delete;
kf_method_fn kf_method_chitchat_create;
kf_method_fn kf_method_chitchat_query;
kf_method_fn kf_method_chitchat_update;
kf_method_fn kf_method_chitchat_delete;
kf_method_fn kf_method_intent_execute;
kf_method_fn kf_method_tickets_query;
kf_method_fn kf_method_tickets_update;

//  Chat jobs (chat_jobs.c: accept, dispatch, sweep deadlines, recover the jobs of a lost worker,
//  free what is left at shutdown; chat_results.c: worker events and answers).
kf_method_fn kf_chat_accept;
//  PARTIAL (PROTOCOL.md 9.6): `body` is one event (a map) or an array of them, relayed in order,
//  each as its own stream event with its own seq. Unknown or finished jobs, non-streamed jobs and
//  malformed events are skipped (malformed ones logged); the other events of the body still go.
void kf_chat_on_partial (kf_broker_t *self, kf_worker_t *worker, const char *job_id, size_t id_len,
                         const char *body, size_t body_len);
//  PARTIALS (9.6): `body` is an array of [job_id, events] pairs, `events` as PARTIAL's body; the
//  same as that many PARTIALs in that order. A malformed pair is skipped (logged), not the rest.
void kf_chat_on_partials (kf_broker_t *self, kf_worker_t *worker, const char *body, size_t body_len);
void kf_chat_on_final (kf_broker_t *self, kf_worker_t *worker, const char *job_id, size_t id_len,
                       const char *body, size_t body_len);
void kf_chat_dispatch (kf_broker_t *self);
void kf_chat_sweep_deadlines (kf_broker_t *self, int64_t now_us);
void kf_chat_on_worker_lost (kf_broker_t *self, kf_worker_t *worker);
void kf_chat_destroy_all (kf_broker_t *self);
//  A store batch was rolled back: fails the jobs whose rows were in it, forgets its new sessions.
void kf_chat_on_batch_lost (kf_broker_t *self, uint64_t batch);
//  The open batch committed: the streams answered in it keep their done
void kf_chat_on_batch_committed (kf_broker_t *self);
//  Forgets the streams remembered for the open batch (kf_chat_on_batch_committed does so)
void kf_chat_forget_ended (kf_broker_t *self);
//  Milliseconds until the oldest job's deadline, -1 when none.
long kf_chat_timeout (kf_broker_t *self, int64_t now_us);

//  Every unfinished chat job, lane by lane (chat.stop's lookups): the first, and the one after
//  `job`; NULL at the end.
kf_job_t *kf_chat_live_first (kf_broker_t *self);
kf_job_t *kf_chat_live_next (kf_broker_t *self, kf_job_t *job);

//  Hooks for llm_jobs.c: the worker of running job `job_id` (NULL: none, or not running), and
//  failing a running job of `worker` with `err` (nothing when it is not running there).
kf_worker_t *kf_chat_job_worker (kf_broker_t *self, const char *job_id, size_t id_len);
void kf_chat_fail_job (kf_broker_t *self, kf_worker_t *worker, const char *job_id, size_t id_len,
                       const kf_error_t *err);

//  LLM jobs (llm_jobs.c): the upstream limits over every worker. The worker's ACQUIRE is answered
//  with GRANT (ok, open) now, later (queued), or busy: the chat then fails 429 with
//  retry_after_ms. kf_llm_release frees a job's slot or queue place (idempotent; outcome is a
//  kf_outcome_t of upstream_limits.h: 0 none, 1 success, 2 failure); kf_llm_on_complete releases
//  with the outcome of an answered job's result and stores its usage; kf_llm_job_timeout_ms is
//  the deadline of a job of bot `bot_id`: max (job_timeout_ms, upstream total_timeout_ms + 5 s)
//  for a bot with an upstream. kf_llm_stats_pack packs two stats pairs: upstreams and usage.
void kf_llm_jobs_init (kf_broker_t *self);
void kf_llm_jobs_destroy (kf_broker_t *self);
void kf_llm_on_acquire (kf_broker_t *self, kf_worker_t *worker, const char *job_id, size_t id_len,
                        const char *body, size_t body_len);
void kf_llm_release (kf_broker_t *self, const char *job_id, int outcome);
bool kf_llm_holds_slot (kf_broker_t *self, const char *job_id);
void kf_llm_on_complete (kf_broker_t *self, const char *job_id, int64_t message_id,
                         const char *bot_id, const kf_wp_result_t *result);
//  True when the configuration gives bot `bot_id` an LLM upstream (its jobs carry recent turns)
bool kf_llm_bot_calls_upstream (kf_broker_t *self, const char *bot_id);
int kf_llm_job_timeout_ms (kf_broker_t *self, const char *bot_id);
void kf_llm_stats_pack (kf_broker_t *self, msgpack_packer *pk);

//  The knowledge base for remote workers (kb_transfer.c, PROTOCOL.md 9.10). kf_kb_transfer_on_get
//  answers a worker's KB_GET (body: its msgpack {version}, NULL when absent) at once when the
//  snapshot is current, else when the one being built is ready; kf_kb_transfer_tick, after each
//  commit, takes finished snapshots, serves and notifies workers, and asks for a new snapshot
//  when a remote worker exists and the committed version changed; kf_kb_transfer_timeout is the
//  loop's poll bound while a snapshot is being built (-1: none).
void kf_kb_transfer_init (kf_broker_t *self);
void kf_kb_transfer_destroy (kf_broker_t *self);
void kf_kb_transfer_on_get (kf_broker_t *self, kf_worker_t *worker, const char *body, size_t len);
void kf_kb_transfer_tick (kf_broker_t *self, int64_t now_us);
long kf_kb_transfer_timeout (kf_broker_t *self);

//  Worker calls (worker_calls.c): requests a worker answers from memory without a session
//  (suggest). kf_calls_on_final returns false for a job id that is not a call's.
typedef struct kf_call_t kf_call_t;
void kf_calls_send (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req,
                    const char *method, const char *params, size_t params_len);
bool kf_calls_on_final (kf_broker_t *self, kf_worker_t *worker, const char *job_id, size_t id_len,
                        const char *body, size_t body_len);
void kf_calls_on_worker_lost (kf_broker_t *self, kf_worker_t *worker);
void kf_calls_sweep (kf_broker_t *self, int64_t now_us);
long kf_calls_timeout (kf_broker_t *self, int64_t now_us);
void kf_calls_destroy_all (kf_broker_t *self);
#endif
