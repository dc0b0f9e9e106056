/*  chat_jobs_private.h - the chat job and the helpers its two halves share, for chat_jobs.c (the
    job's life: accept, queues, dispatch, deadlines, worker loss) and chat_results.c (its answer:
    events relayed, the result packed, the answer stored, cache hits, stopped answers) only: no
    other file includes it. Other modules see a job as an opaque kf_job_t (sessions.h) or through
    kf_chat_view (stop_method.h); where their comments name chat_jobs.c, they mean the pair. */
#ifndef KF_CHAT_JOBS_PRIVATE_H
#define KF_CHAT_JOBS_PRIVATE_H
#include "broker/broker.h"
#include "broker/stop_method.h"
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kf_job_t {
    uint64_t id;
    char id_str [24];           //  Decimal id, the JOB frame
    char *routing;              //  Client routing id
    size_t routing_len;
    char *request_id;           //  Client's request id (and stream topic)
    size_t request_id_len;
    char *message;              //  Customer text
    size_t message_len;
    char *labels_json;          //  Labels to remember on the session, or NULL
    msgpack_sbuffer params;     //  Params as sent to the worker
    bool is_stream;
    bool has_meta, has_token;   //  Relayed from the worker it is dispatched to now
    int top_k;                  //  Candidates asked for (params.top_k)
    kf_session_t *session;      //  Borrowed from the cache (pinned while the job lives)
    kf_stream_t *stream;        //  Borrowed from the hub until the last event
    kf_worker_t *worker;        //  While dispatched
    int attempts;               //  Times dispatched
    bool is_started;            //  Message ids allocated, user turn stored
    uint64_t batch;             //  Store batch its first rows went into
    bool is_ready;              //  On the ready queue
    int64_t accepted_us, deadline_us;
    int64_t user_message_id, message_id;   //  The same id when people have the session (no
                                            //  answer row: the user turn is the only one)
    int64_t repeat_count;       //  Times in a row the customer sent this message (at start)
    double emotion_score;       //  Of the message, when the broker scored it (cache, people); < 0: not
    kf_job_t *ready_prev, *ready_next;
    kf_job_t *live_prev, *live_next;    //  In its lane of broker.live
    int lane;
    kf_job_t *session_next;     //  Waiting behind the session's active job
    kf_stop_t *stop;            //  chat.stop waiting for its end (stop_method.c), or NULL
};

//  --- chat_jobs.c ------------------------------------------------------------------------------

//  Allocates the job's ids and stores the user turn and the answer's pending row
void kf_cj_store_rows (kf_broker_t *self, kf_job_t *job);

//  Removes a finished job everywhere, starts the next job of its session and frees the job
void kf_cj_finish (kf_broker_t *self, kf_job_t *job);

//  Ends a job with an error: error event (when streaming), error reply, the waiting chat.stop
//  answered, the answer's row failed; then kf_cj_finish (the job is freed)
void kf_cj_fail (kf_broker_t *self, kf_job_t *job, const kf_error_t *err);

//  The job `job_id` when it runs on `worker`, else NULL: a job that timed out or was given to
//  another worker has its late messages dropped
kf_job_t *kf_cj_running_job (kf_broker_t *self, kf_worker_t *worker, const char *job_id,
                             size_t id_len);

//  --- chat_results.c ---------------------------------------------------------------------------

//  Packs `count` extra pairs of an event
typedef void (kf_cj_fields_fn) (msgpack_packer *pk, void *arg);

//  Publishes one event on the job's stream: {"seq", "event", fields...}; `fields` (NULL: none)
//  packs `count` extra pairs. The last event ends the stream (job->stream becomes NULL). Returns
//  the seq used.
int64_t kf_cj_publish (kf_broker_t *self, kf_job_t *job, const char *event, int count,
                       kf_cj_fields_fn *fields, void *arg, bool is_last);

//  Answers a job from the hot-answer cache when it holds the answer: no worker, the same rows
//  and events as a worker's answer (meta, one token, done), "cached": true. Returns true when it
//  did (the job is finished and freed).
bool kf_cj_answer_from_cache (kf_broker_t *self, kf_job_t *job);

//  Answers a job of a session people have (PROTOCOL.md 13.2): the customer's turn is stored (no
//  answer row), published on agent.messages, and the chat answered at once with an empty reply,
//  "to_agent": true (meta and done when streamed, no tokens). The job is finished and freed.
void kf_cj_answer_held (kf_broker_t *self, kf_job_t *job);

//  A chat answered in the open batch: if the batch is lost, its answer row is failed and its
//  stream's done taken back
struct kf_ended_t {
    char *topic;                //  NULL: not streamed
    size_t topic_len;
    uint64_t batch;
    int64_t message_id;         //  Its answer row, 0: none (a message to people)
};

//  Remembers that `job` was answered in the open batch (before its done is published)
void kf_cj_remember_ended (kf_broker_t *self, kf_job_t *job);
#endif
