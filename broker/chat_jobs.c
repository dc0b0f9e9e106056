/*  chat_jobs.c - the life of a chat job in the broker: accepted (validated, session found or made),
    queued behind its session's job in flight, started (given to people instead when they have the
    session: the decision is made here, at the start, since the turn ahead may have handed the
    session over; counted for repeats; answered from the cache when that is safe), dispatched to
    the least-loaded worker, streamed,
    finished (turn stored, reply queued for after the commit), or failed: deadline passed, worker
    lost after streaming began. A job whose worker is lost before it published anything is
    dispatched again, up to max_attempts. Every accepted job ends in exactly one reply. The job's
    answer (events relayed, result stored and replied, cache hits, stopped answers) is in
    chat_results.c; the job struct and the helpers both use are in chat_jobs_private.h. */
#include "broker/chat_jobs_private.h"
#include "broker/bots.h"
#include "broker/handoff.h"
#include "broker/stop_method.h"
#include "broker/upstream_limits.h"
#include "common/clock.h"
#include "common/emotion.h"
#include "common/frames.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/text_norm.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MIN_TIME_LEFT_US 10000    //  A queued job with less left fails instead of starting

//  --- Queues ---------------------------------------------------------------------------------

static void
s_ready_push (kf_broker_t *self, kf_job_t *job, bool at_head)
{
    job->is_ready = true;
    job->ready_prev = job->ready_next = NULL;
    if (!self->ready_head)
        self->ready_head = self->ready_tail = job;
    else
    if (at_head) {
        job->ready_next = self->ready_head;
        self->ready_head->ready_prev = job;
        self->ready_head = job;
    }
    else {
        job->ready_prev = self->ready_tail;
        self->ready_tail->ready_next = job;
        self->ready_tail = job;
    }
}

static void
s_ready_unlink (kf_broker_t *self, kf_job_t *job)
{
    if (!job->is_ready)
        return;
    if (job->ready_prev)
        job->ready_prev->ready_next = job->ready_next;
    else
        self->ready_head = job->ready_next;
    if (job->ready_next)
        job->ready_next->ready_prev = job->ready_prev;
    else
        self->ready_tail = job->ready_prev;
    job->is_ready = false;
}

//  Puts `job` (deadline set) in the lane of its deadline length: at the tail, since a lane's
//  jobs all wait as long; the last lane holds every length without one of its own, sorted from
//  the tail (in practice one or two lengths: the plain chats' and each LLM upstream's)
static void
s_live_link (kf_broker_t *self, kf_job_t *job, int64_t timeout_ms)
{
    int lane = 0;
    while (lane < self->live_lanes && self->live [lane].timeout_ms != timeout_ms
    &&     lane < KF_LIVE_LANES - 1)
        lane++;
    if (lane == self->live_lanes) {
        self->live [lane].timeout_ms = timeout_ms;
        self->live_lanes++;
    }
    job->lane = lane;
    kf_job_t *before = self->live [lane].tail;
    while (before && before->deadline_us > job->deadline_us)
        before = before->live_prev;
    job->live_prev = before;
    job->live_next = before ? before->live_next : self->live [lane].head;
    if (job->live_next)
        job->live_next->live_prev = job;
    else
        self->live [lane].tail = job;
    if (before)
        before->live_next = job;
    else
        self->live [lane].head = job;
}

static void
s_live_unlink (kf_broker_t *self, kf_job_t *job)
{
    int lane = job->lane;
    if (job->live_prev)
        job->live_prev->live_next = job->live_next;
    else
        self->live [lane].head = job->live_next;
    if (job->live_next)
        job->live_next->live_prev = job->live_prev;
    else
        self->live [lane].tail = job->live_prev;
}

kf_job_t *
kf_chat_live_first (kf_broker_t *self)
{
    for (int lane = 0; lane < self->live_lanes; lane++)
        if (self->live [lane].head)
            return self->live [lane].head;
    return NULL;
}

kf_job_t *
kf_chat_live_next (kf_broker_t *self, kf_job_t *job)
{
    if (job->live_next)
        return job->live_next;
    for (int lane = job->lane + 1; lane < self->live_lanes; lane++)
        if (self->live [lane].head)
            return self->live [lane].head;
    return NULL;
}

//  --- Start and end ----------------------------------------------------------------------------

//  Allocates the job's ids and stores the user turn and the answer's pending row
void
kf_cj_store_rows (kf_broker_t *self, kf_job_t *job)
{
    job->is_started = true;
    job->batch = kf_store_batch (self->store);
    job->user_message_id = kf_store_next_message_id (self->store);
    job->message_id = kf_store_next_message_id (self->store);
    kf_turn_row_t turn = {
        .id = job->user_message_id, .session_id = job->session->id, .role = "user",
        .content = job->message, .content_len = job->message_len, .confidence = -1,
        .latency_ms = -1, .created_at = kf_now_ms ()
    };
    kf_store_turn_insert (self->store, &turn);
    //  The answer's row exists from the start, so its id is durable and never handed out twice
    kf_turn_row_t answer = {
        .id = job->message_id, .session_id = job->session->id, .role = "assistant",
        .content = "", .confidence = -1, .status = "pending", .latency_ms = -1,
        .created_at = turn.created_at
    };
    kf_store_turn_insert (self->store, &answer);
}

//  Whether the hot-answer cache may answer: it knows only the message, so not when the worker must
//  see the turn - a question asked as often as the bot's repeated_question threshold (the worker
//  hands over; the times before that are ordinary questions), a dialog waiting for the customer's
//  answer (slots), a chat that asks for another number of candidates than the default. An upset
//  customer (an empathetic reply, perhaps a handoff) is the cache's to check when it holds the
//  message: the worker scores the emotion of the messages it answers itself
static bool
s_is_cacheable (kf_broker_t *self, const kf_job_t *job)
{
    kf_session_t *session = job->session;
    kf_handoff_limits_t limits;
    kf_bots_handoff (self->bots, session->bot_id, strlen (session->bot_id), &limits);
    bool is_repeat_due = limits.repeated_question > 0
                      && job->repeat_count >= limits.repeated_question;
    //  A cached answer carries the default number of candidates
    return !is_repeat_due && !session->is_dialog_open && job->top_k == KF_CHAT_TOP_K_DEFAULT;
}

//  The key a message counts under for repeats: its normalized text without the spaces that
//  punctuation became (我的快递，到哪了？ repeats 我的快递到哪了). Heap; "" when nothing is left
//  (greetings and particles only: 你好 never counts).
static char *
s_repeat_key (const char *message, size_t len)
{
    char *key = kf_text_normalize (message, len);
    char *to = key;
    for (const char *from = key; *from; from++)
        if (*from != ' ')
            *to++ = *from;
    *to = 0;
    return key;
}

//  The job becomes its session's active job: ids allocated, the user turn stored, ready to
//  dispatch; or, when people have the session, the turn goes to them and the job ends at once
static void
s_begin (kf_broker_t *self, kf_job_t *job)
{
    kf_session_t *session = job->session;
    session->active = job;
    if (session->handoff != KF_HANDOFF_BOT) {
        kf_cj_answer_held (self, job);
        return;
    }
    kf_cj_store_rows (self, job);
    job->repeat_count = kf_session_count_repeat (session, s_repeat_key (job->message,
                                                                         job->message_len));
    if (s_is_cacheable (self, job) && kf_cj_answer_from_cache (self, job))
        return;
    s_ready_push (self, job, false);
}

//  Ends a job whose deadline passed with 504, naming its own deadline (an LLM bot's is longer)
static void
s_fail_timeout (kf_broker_t *self, kf_job_t *job)
{
    kf_error_t err;
    kf_error_set (&err, KF_E_TIMEOUT, "no answer within %lld ms",
                  (long long) ((job->deadline_us - job->accepted_us) / 1000));
    kf_cj_fail (self, job, &err);
}

static void
s_job_free (kf_job_t *job)
{
    free (job->routing);
    free (job->request_id);
    free (job->message);
    free (job->labels_json);
    msgpack_sbuffer_destroy (&job->params);
    free (job);
}

//  Starts the next job waiting in the session. One whose deadline has passed, or is too close to
//  be worth a dispatch, fails without starting: it stores nothing, and the one behind it gets its
//  turn.
//  A job answered from the cache finishes inside s_begin and calls back here for the same
//  session: the loop below goes on instead, so a long queue of cache hits never nests.
static kf_session_t *s_starting;   //  Session whose waiting jobs are being started

static void
s_start_next (kf_broker_t *self, kf_session_t *session)
{
    if (s_starting == session)
        return;
    kf_session_t *outer = s_starting;
    s_starting = session;
    kf_job_t *next;
    while (!session->active && (next = session->waiting_head)) {
        session->waiting_head = next->session_next;
        if (!session->waiting_head)
            session->waiting_tail = NULL;
        next->session_next = NULL;
        if (next->deadline_us - kf_mono_us () > S_MIN_TIME_LEFT_US) {
            s_begin (self, next);       //  Active until answered, unless the cache answered it
            continue;
        }
        s_fail_timeout (self, next);
    }
    s_starting = outer;
}

//  Removes a finished job everywhere and starts the next job of its session
void
kf_cj_finish (kf_broker_t *self, kf_job_t *job)
{
    kf_llm_release (self, job->id_str, 0);     //  Its upstream slot, if it still holds one
    s_ready_unlink (self, job);
    s_live_unlink (self, job);
    if (job->worker) {
        job->worker->active--;
        job->worker = NULL;
    }
    kf_dict_remove (self->jobs, job->id_str, strlen (job->id_str));
    self->pending--;
    kf_session_t *session = job->session;
    if (session->active == job) {
        session->active = NULL;
        s_start_next (self, session);
    }
    else {
        //  Failed while queued behind the session's active job
        for (kf_job_t **link = &session->waiting_head; *link; link = &(*link)->session_next)
            if (*link == job) {
                *link = job->session_next;
                break;
            }
        session->waiting_tail = NULL;
        for (kf_job_t *j = session->waiting_head; j; j = j->session_next)
            session->waiting_tail = j;
    }
    session->last_used_us = kf_mono_us ();
    s_job_free (job);
}

static void
s_pack_error_field (msgpack_packer *pk, void *arg)
{
    kf_mp_pack_cstr (pk, "error");
    kf_error_pack (pk, arg);
}

//  Ends a job with an error: error event (when streaming) and error reply
void
kf_cj_fail (kf_broker_t *self, kf_job_t *job, const kf_error_t *err)
{
    if (job->stream)
        kf_cj_publish (self, job, "error", 1, s_pack_error_field, (void *) err, true);
    kf_broker_reply_error (self, job->routing, job->routing_len, job->request_id,
                           job->request_id_len, err);
    if (job->stop)
        kf_stop_ended (self, job, false, "", 0, err);
    if (job->is_started)
        kf_store_turn_fail (self->store, job->message_id);
    self->counters.errors++;
    if (err->errc == KF_E_TIMEOUT)
        self->counters.timeouts++;
    kf_cj_finish (self, job);
}

//  --- Accept -----------------------------------------------------------------------------------

typedef struct {
    const char *message, *session_id, *user_id, *bot_id;
    size_t message_len, session_id_len, user_id_len, bot_id_len;
    char channel [16];
    const msgpack_object *labels, *inputs;
    bool is_stream;
    int64_t top_k;              //  Candidates wanted (KF_CHAT_TOP_K_DEFAULT when not given)
} s_chat_params_t;

static int
s_validate (kf_broker_t *self, const msgpack_object *params, s_chat_params_t *p, kf_error_t *err)
{
    memset (p, 0, sizeof *p);
    if (kf_param_str (params, "message", true, self->config->max_message_chars, &p->message,
                      &p->message_len, err)
    ||  kf_param_str (params, "session_id", false, 64, &p->session_id, &p->session_id_len, err)
    ||  kf_param_str (params, "user_id", false, 128, &p->user_id, &p->user_id_len, err)
    ||  kf_param_channel (params, p->channel, err)
    ||  kf_param_str (params, "bot_id", false, 64, &p->bot_id, &p->bot_id_len, err)
    ||  kf_param_str_map (params, "labels", 50, &p->labels, err)
    ||  kf_param_map (params, "inputs", &p->inputs, err)
    ||  kf_param_bool (params, "stream", false, &p->is_stream, err)
    ||  kf_param_int (params, "top_k", 1, KF_CHAT_TOP_K_MAX, KF_CHAT_TOP_K_DEFAULT, &p->top_k, err))
        return -1;
    if (p->bot_id && p->bot_id_len == 0)
        p->bot_id = NULL;               //  "" means the default bot, as in session.create
    return 0;
}

//  Finds the session named in the request, or creates one. NULL with `err` set on failure.
static kf_session_t *
s_session_for (kf_broker_t *self, const s_chat_params_t *p, kf_error_t *err)
{
    if (!p->session_id) {
        kf_session_t *session = kf_sessions_create (self->sessions, p->user_id, p->user_id_len,
                                                    p->channel, p->bot_id, p->bot_id_len);
        if (!session)
            kf_error_set (err, KF_E_INTERNAL, "could not store the new session");
        return session;
    }
    kf_session_t *session = kf_sessions_find (self->sessions, p->session_id, p->session_id_len,
                                              p->user_id, p->user_id_len);
    if (!session)
        kf_error_set (err, KF_E_NOT_FOUND, "session %.*s does not exist", (int) p->session_id_len,
                      p->session_id);
    else
    if (session->is_closed) {
        kf_error_set (err, KF_E_SESSION_CLOSED, "session %s is closed; chat without session_id (or"
                      " call session.create) to start a new one", session->id);
        session = NULL;
    }
    return session;
}

//  Packs what the worker needs from the request (the rest stays in the broker)
static void
s_pack_worker_params (kf_job_t *job, const s_chat_params_t *p, kf_session_t *session)
{
    msgpack_sbuffer_init (&job->params);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &job->params, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 7);
    kf_mp_pack_cstr (&pk, "message");
    kf_mp_pack_str (&pk, p->message, p->message_len);
    kf_mp_pack_kv_int (&pk, "top_k", p->top_k);
    kf_mp_pack_kv_str (&pk, "bot_id", session->bot_id);
    kf_mp_pack_kv_str (&pk, "user_id", session->user_id);
    kf_mp_pack_kv_str (&pk, "channel", session->channel);
    kf_mp_pack_cstr (&pk, "labels");
    if (p->labels)
        msgpack_pack_object (&pk, *p->labels);
    else
        msgpack_pack_map (&pk, 0);
    kf_mp_pack_cstr (&pk, "inputs");
    if (p->inputs)
        msgpack_pack_object (&pk, *p->inputs);
    else
        msgpack_pack_map (&pk, 0);
}

void
kf_chat_accept (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    kf_error_t err;
    s_chat_params_t p;
    if (s_validate (self, req->params, &p, &err))
        goto rejected;
    if (p.is_stream && kf_handoff_is_topic (req->id, req->id_len)) {
        kf_error_set (&err, KF_E_INVALID_PARAM, "a streamed chat's id is its topic; ids starting"
                      " with \"agent.\" or \"session.\" are the handoff's topics (use random ids)");
        goto rejected;
    }
    if (p.is_stream && kf_stream_hub_is_open (self->hub, req->id, req->id_len)) {
        kf_error_set (&err, KF_E_CONFLICT, "a stream with id %.*s is still open; ids must be unique",
                      (int) req->id_len, req->id);
        goto rejected;
    }
    if (self->pending >= self->config->max_pending) {
        kf_error_set (&err, KF_E_BUSY, "%d chat jobs pending; retry later", self->pending);
        err.retry_after_ms = 100;
        self->counters.rejected++;
        goto rejected;
    }
    //  Inputs are checked against the bot before a new session is made for a bad request
    if (!p.session_id && kf_bots_check_inputs (self->bots, p.bot_id ? p.bot_id : "default",
                                               p.bot_id ? p.bot_id_len : 7, p.inputs, &err))
        goto rejected;
    kf_session_t *session = s_session_for (self, &p, &err);
    if (!session)
        goto rejected;
    if (p.session_id && kf_bots_check_inputs (self->bots, session->bot_id, strlen (session->bot_id),
                                              p.inputs, &err))
        goto rejected;
    kf_job_t *job = kf_calloc (1, sizeof *job);
    job->id = ++self->next_job_id;
    snprintf (job->id_str, sizeof job->id_str, "%llu", (unsigned long long) job->id);
    job->routing = kf_strndup (routing, routing_len);
    job->routing_len = routing_len;
    job->request_id = kf_strndup (req->id, req->id_len);
    job->request_id_len = req->id_len;
    job->message = kf_strndup (p.message, p.message_len);
    job->message_len = p.message_len;
    job->labels_json = p.labels ? kf_json_from_msgpack (p.labels) : NULL;
    job->is_stream = p.is_stream;
    job->top_k = (int) p.top_k;
    job->session = session;
    job->emotion_score = -1;
    job->accepted_us = kf_mono_us ();
    int64_t timeout_ms = kf_llm_job_timeout_ms (self, session->bot_id);
    job->deadline_us = job->accepted_us + timeout_ms * 1000;
    s_pack_worker_params (job, &p, session);
    if (p.is_stream)
        job->stream = kf_stream_hub_open (self->hub, req->id, req->id_len);
    s_live_link (self, job, timeout_ms);
    self->pending++;
    self->counters.accepted++;
    if (!session->active)
        s_begin (self, job);
    else {
        if (session->waiting_tail)
            session->waiting_tail->session_next = job;
        else
            session->waiting_head = job;
        session->waiting_tail = job;
    }
    return;
rejected:
    self->counters.errors++;
    kf_broker_reply_error (self, routing, routing_len, req->id, req->id_len, &err);
}

//  --- Dispatch ---------------------------------------------------------------------------------

//  Sends JOB: params plus the context the worker needs (the worker keeps no session state)
static int
s_send_job (kf_broker_t *self, kf_worker_t *worker, kf_job_t *job)
{
    job->has_meta = job->has_token = false;     //  This worker's stream of events starts
    kf_session_t *session = job->session;
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 4);
    kf_mp_pack_kv_str (&pk, "method", "chat");
    kf_mp_pack_kv_bool (&pk, "stream", job->is_stream);
    kf_mp_pack_cstr (&pk, "params");
    pk.callback (pk.data, job->params.data, job->params.size);
    kf_mp_pack_cstr (&pk, "context");
    bool has_emotion = job->emotion_score >= 0;
    msgpack_pack_map (&pk, 9 + has_emotion);
    kf_mp_pack_kv_str (&pk, "session_id", session->id);
    kf_mp_pack_kv_str (&pk, "upstream_conversation_id",
                       session->upstream_conversation_id ? session->upstream_conversation_id : "");
    kf_mp_pack_kv_int (&pk, "turn_count", session->turn_count);
    kf_mp_pack_kv_int (&pk, "failed_attempts", session->failed_attempts);
    //  Only an LLM prompt reads the recent turns: a bot without one gets none
    int turns = kf_llm_bot_calls_upstream (self, session->bot_id) ? session->recent_count : 0;
    kf_mp_pack_cstr (&pk, "turns");
    msgpack_pack_array (&pk, turns);
    for (int i = 0; i < turns; i++) {
        const char *role, *content;
        kf_session_recent (session, i, &role, &content);
        msgpack_pack_map (&pk, 2);
        kf_mp_pack_kv_str (&pk, "role", role);
        kf_mp_pack_kv_str (&pk, "content", content);
    }
    kf_mp_pack_cstr (&pk, "slots");
    pk.callback (pk.data, session->slots, session->slots_size);
    kf_mp_pack_kv_int (&pk, "repeat_count", job->repeat_count);
    if (has_emotion)                //  Scored for the cache: the worker need not score it again
        kf_mp_pack_kv_double (&pk, "emotion_score", job->emotion_score);
    kf_handoff_limits_t limits;
    kf_bots_handoff (self->bots, session->bot_id, strlen (session->bot_id), &limits);
    kf_mp_pack_cstr (&pk, "handoff");
    kf_handoff_limits_pack (&limits, &pk);
    kf_answer_settings_t answer;
    kf_bots_answer (self->bots, session->bot_id, strlen (session->bot_id), &answer);
    kf_mp_pack_cstr (&pk, "answer");
    kf_answer_settings_pack (&answer, &pk);
    const void *data [5] = { worker->identity, "KFW1", "JOB", job->id_str, body.data };
    size_t size [5] = { worker->identity_len, 4, 3, strlen (job->id_str), body.size };
    int rc = kf_frames_send (self->workers, 5, data, size, ZMQ_DONTWAIT);
    msgpack_sbuffer_destroy (&body);
    return rc;
}

void
kf_chat_dispatch (kf_broker_t *self)
{
    while (self->ready_head) {
        kf_worker_t *worker = kf_worker_pool_pick (self->pool);
        if (!worker)
            return;
        kf_job_t *job = self->ready_head;
        s_ready_unlink (self, job);
        if (s_send_job (self, worker, job) == -1) {
            kf_warn ("could not send a job to %s: %s", worker->name, zmq_strerror (errno));
            s_ready_push (self, job, true);
            worker->expiry_us = 0;      //  Treat it as lost at the next sweep
            return;
        }
        job->worker = worker;
        job->attempts++;
        worker->active++;
        kf_dict_put (self->jobs, job->id_str, strlen (job->id_str), job);
    }
}

kf_job_t *
kf_cj_running_job (kf_broker_t *self, kf_worker_t *worker, const char *job_id, size_t id_len)
{
    kf_job_t *job = kf_dict_get (self->jobs, job_id, id_len);
    //  A job that timed out or was given to another worker: its late messages are dropped
    return job && job->worker == worker ? job : NULL;
}

//  --- Failure ----------------------------------------------------------------------------------

//  Tells the job's worker, if it has one, to drop it
static void
s_cancel_on_worker (kf_broker_t *self, kf_job_t *job)
{
    if (!job->worker)
        return;
    const void *data [4] = { job->worker->identity, "KFW1", "CANCEL", job->id_str };
    size_t size [4] = { job->worker->identity_len, 4, 6, strlen (job->id_str) };
    kf_frames_send (self->workers, 4, data, size, ZMQ_DONTWAIT);
}

//  Ends a job past its deadline: CANCEL to its worker, 504 to the client
static void
s_expire (kf_broker_t *self, kf_job_t *job)
{
    s_cancel_on_worker (self, job);
    //  Not counted against the upstream: its own timeouts (first byte, idle, total) end a turn
    //  with an upstream error first; a broker deadline means time spent queued for a slot or a
    //  stuck worker, and must not open the breaker under load
    kf_llm_release (self, job->id_str, KF_OUTCOME_NONE);
    s_fail_timeout (self, job);
}

void
kf_chat_sweep_deadlines (kf_broker_t *self, int64_t now_us)
{
    for (int lane = 0; lane < self->live_lanes; lane++) {
        kf_job_t *job;
        while ((job = self->live [lane].head) && job->deadline_us <= now_us)
            s_expire (self, job);
    }
}

long
kf_chat_timeout (kf_broker_t *self, int64_t now_us)
{
    int64_t due = INT64_MAX;
    for (int lane = 0; lane < self->live_lanes; lane++)
        if (self->live [lane].head && self->live [lane].head->deadline_us < due)
            due = self->live [lane].head->deadline_us;
    if (due == INT64_MAX)
        return -1;
    return due <= now_us ? 0 : (long) ((due - now_us) / 1000 + 1);
}

void
kf_chat_on_worker_lost (kf_broker_t *self, kf_worker_t *worker)
{
    size_t cursor = 0;
    void *value;
    while (kf_dict_next (self->jobs, &cursor, NULL, &value)) {
        kf_job_t *job = value;
        if (job->worker != worker)
            continue;
        job->worker = NULL;
        worker->active--;
        kf_llm_release (self, job->id_str, 0);     //  Its streams died with the worker
        kf_dict_remove (self->jobs, job->id_str, strlen (job->id_str));
        if (job->stop) {
            kf_stop_on_worker_lost (self, job);     //  Ends stopped with what was relayed
            continue;
        }
        kf_error_t err;
        if (job->stream && kf_stream_next_seq (job->stream) > 0) {
            kf_error_set (&err, KF_E_WORKER_LOST, "the worker was lost while streaming the answer;"
                          " send the message again");
            kf_cj_fail (self, job, &err);
        }
        else
        if (job->attempts >= self->config->max_attempts) {
            kf_error_set (&err, KF_E_WORKER_LOST, "%d workers were lost running this message",
                          job->attempts);
            kf_cj_fail (self, job, &err);
        }
        else {
            self->counters.requeued++;
            s_ready_push (self, job, true);
        }
    }
}

void
kf_chat_destroy_all (kf_broker_t *self)
{
    kf_job_t *job;
    while ((job = kf_chat_live_first (self))) {
        kf_error_t err;
        kf_error_set (&err, KF_E_UNAVAILABLE, "the broker is shutting down");
        job->worker = NULL;
        kf_cj_fail (self, job, &err);
    }
}

void
kf_cj_remember_ended (kf_broker_t *self, kf_job_t *job)
{
    if (self->ended_count == self->ended_capacity) {
        self->ended_capacity = self->ended_capacity ? self->ended_capacity * 2 : 64;
        self->ended = kf_realloc (self->ended, self->ended_capacity * sizeof (struct kf_ended_t));
    }
    size_t len = 0;
    const char *topic = job->stream ? kf_stream_topic (job->stream, &len) : NULL;
    self->ended [self->ended_count++] = (struct kf_ended_t) {
        topic ? kf_strndup (topic, len) : NULL, len, kf_store_batch (self->store),
        job->message_id != job->user_message_id ? job->message_id : 0
    };
}

void
kf_chat_on_batch_committed (kf_broker_t *self)
{
    kf_chat_forget_ended (self);
}

void
kf_chat_forget_ended (kf_broker_t *self)
{
    for (size_t i = 0; i < self->ended_count; i++)
        free (self->ended [i].topic);
    self->ended_count = 0;
    if (self->ended_capacity > 4096) {          //  A burst: give the memory back
        free (self->ended);
        self->ended = NULL;
        self->ended_capacity = 0;
    }
}

//  The chats answered in lost batch `batch`: their answer rows, stored pending by an earlier batch,
//  are failed (the turn will not complete), and their streams end with an error instead of the
//  events of that batch (done, and what else is unsent): that answer was not stored
static void
s_take_back_ended (kf_broker_t *self, uint64_t batch)
{
    kf_error_t err;
    kf_error_set (&err, KF_E_INTERNAL, "the database write failed; nothing was stored");
    for (size_t i = 0; i < self->ended_count; i++) {
        struct kf_ended_t *ended = &self->ended [i];
        if (ended->batch != batch)
            continue;
        if (ended->message_id > 0)
            kf_store_turn_fail (self->store, ended->message_id);    //  In the next batch
        kf_stream_t *stream = ended->topic
                            ? kf_stream_hub_find (self->hub, ended->topic, ended->topic_len) : NULL;
        int64_t seq = stream ? kf_stream_take_back (self->hub, stream, batch) : -1;
        if (seq < 0)
            continue;
        msgpack_sbuffer *buffer = &self->event_buffer;
        msgpack_sbuffer_clear (buffer);
        msgpack_packer pk;
        msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 3);
        kf_mp_pack_kv_int (&pk, "seq", seq);
        kf_mp_pack_kv_str (&pk, "event", "error");
        s_pack_error_field (&pk, &err);
        kf_stream_put_last (self->hub, stream, buffer->data, buffer->size);
    }
    kf_chat_forget_ended (self);            //  Taken back or not, forgotten
}

void
kf_chat_on_batch_lost (kf_broker_t *self, uint64_t batch)
{
    s_take_back_ended (self, batch);
    //  Sessions saved in the batch hold what it changed (handoff, slots, counters): read back first,
    //  so a job that starts while the batch's jobs fail sees the stored state
    kf_sessions_restore_batch (self->sessions, batch);
    //  Their rows (and perhaps their session's) were rolled back: they cannot be answered truthfully
    for (kf_job_t *job = kf_chat_live_first (self), *next; job; job = next) {
        next = kf_chat_live_next (self, job);
        bool is_lost = (job->is_started && job->batch == batch)
                    || job->session->created_batch == batch + 1;
        if (!is_lost)
            continue;
        s_cancel_on_worker (self, job);
        job->is_started = false;        //  Nothing of it is stored
        if (job->stream)                //  Its meta names a message id that was not stored
            kf_stream_take_back (self->hub, job->stream, batch);
        kf_error_t err;
        kf_error_set (&err, KF_E_INTERNAL, "the database write failed; nothing was stored");
        kf_cj_fail (self, job, &err);
        next = kf_chat_live_first (self);   //  Failing may have finished or started others: rescan
    }
    kf_sessions_forget_batch (self->sessions, batch);
}

//  --- Hooks for llm_jobs.c ---------------------------------------------------------------------

kf_worker_t *
kf_chat_job_worker (kf_broker_t *self, const char *job_id, size_t id_len)
{
    kf_job_t *job = kf_dict_get (self->jobs, job_id, id_len);
    return job ? job->worker : NULL;
}

void
kf_chat_fail_job (kf_broker_t *self, kf_worker_t *worker, const char *job_id, size_t id_len,
                  const kf_error_t *err)
{
    kf_job_t *job = kf_cj_running_job (self, worker, job_id, id_len);
    if (job)
        kf_cj_fail (self, job, err);
}

//  --- chat.stop (stop_method.h) --------------------------------------------------------------

void
kf_chat_view (kf_job_t *job, kf_chat_view_t *view)
{
    *view = (kf_chat_view_t) {
        .id_str = job->id_str, .request_id = job->request_id, .request_id_len = job->request_id_len,
        .routing = job->routing, .routing_len = job->routing_len, .session = job->session, .worker = job->worker, .is_started = job->is_started,
        .message_id = job->message_id, .is_streaming = job->stream != NULL, .stop = &job->stop
    };
}
