/*  stop_method.h - chat.stop: the customer stops an answer being written. A queued job ends at
    once with an empty answer; a job on a worker gets STOP (the worker closes the upstream transfer
    or the paced stream and answers FINAL with the partial reply, "stopped": true); a worker silent
    for S_STOP_GRACE_MS after the STOP, or lost, has its job ended by the broker with the token
    text the broker relayed. Either way the partial answer is stored with status ok, `done` carries
    "stopped": true, and every chat.stop waiting on the job is answered once the job has ended.
    The split with chat_jobs.c: that module owns the job and its end (kf_chat_end_stopped); this
    one owns the stop requests and the grace timer. */
#ifndef KF_STOP_METHOD_H
#define KF_STOP_METHOD_H
#include "broker/broker.h"

typedef struct kf_stop_t kf_stop_t;

//  What stop_method.c may see of a job (chat_jobs.c keeps kf_job_t private).
typedef struct {
    const char *id_str;         //  The id in JOB, STOP and CANCEL frames
    const char *request_id;     //  The chat's request id (its stream topic when streamed)
    size_t request_id_len;
    const char *routing;        //  The client that sent the chat
    size_t routing_len;
    kf_session_t *session;
    kf_worker_t *worker;        //  NULL while queued
    bool is_started;            //  Ids allocated, rows stored
    int64_t message_id;         //  0 until started
    bool is_streaming;          //  Its stream is still open (events can be read back)
    kf_stop_t **stop;           //  The job's stop slot: NULL until chat.stop names it
} kf_chat_view_t;

//  Fills `view` from `job` (chat_jobs.c).
void kf_chat_view (kf_job_t *job, kf_chat_view_t *view);

//  Ends a job no worker will answer for (queued, or its worker silent or lost after STOP): the
//  user turn is stored first if it had not started, then the answer `text` (what the customer was
//  shown), stopped, exactly like a worker's answer: done published, chat reply queued, job freed
//  (chat_jobs.c).
void kf_chat_end_stopped (kf_broker_t *self, kf_job_t *job, const char *text, size_t len);

//  The client method (params: message_id or request_id, user_id).
kf_method_fn kf_method_chat_stop;

//  Hook of chat_jobs.c: the job whose stop slot is set has ended, completed (`err` NULL; its
//  answer `content`, `is_stopped` as published) or failed (`err`). Answers every waiting chat.stop,
//  frees the stop and clears the slot.
void kf_stop_ended (kf_broker_t *self, kf_job_t *job, bool is_stopped, const char *content,
                    size_t len, const kf_error_t *err);

//  Hook of chat_jobs.c: the worker of a stopping job was lost; the broker ends it itself.
void kf_stop_on_worker_lost (kf_broker_t *self, kf_job_t *job);

//  Ends the stopping jobs whose worker stayed silent past the grace time (broker loop timer).
void kf_stop_sweep (kf_broker_t *self, int64_t now_us);

//  Milliseconds until kf_stop_sweep has work, -1 when nothing is stopping.
long kf_stop_timeout (kf_broker_t *self, int64_t now_us);
#endif
