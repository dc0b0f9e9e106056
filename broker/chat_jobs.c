/*  chat_jobs.c - the life of a chat job in the broker: accepted (validated, session found or made),
    queued behind its session's job in flight, dispatched to the least-loaded worker, streamed,
    finished (turn stored, reply queued for after the commit), or failed: deadline passed, worker
    lost after streaming began. A job whose worker is lost before it published anything is
    dispatched again, up to max_attempts. Every accepted job ends in exactly one reply. */
#include "broker/answer_cache.h"
#include "broker/bots.h"
#include "broker/broker.h"
#include "broker/stop_method.h"
#include "common/clock.h"
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
    kf_session_t *session;      //  Borrowed from the cache (pinned while the job lives)
    kf_stream_t *stream;        //  Borrowed from the hub until the last event
    kf_worker_t *worker;        //  While dispatched
    int attempts;               //  Times dispatched
    bool is_started;            //  Message ids allocated, user turn stored
    uint64_t batch;             //  Store batch its first rows went into
    bool is_ready;              //  On the ready queue
    int64_t accepted_us, deadline_us;
    int64_t user_message_id, message_id;
    kf_job_t *ready_prev, *ready_next;
    kf_job_t *live_prev, *live_next;
    kf_job_t *session_next;     //  Waiting behind the session's active job
    kf_stop_t *stop;            //  chat.stop waiting for its end (stop_method.c), or NULL
};

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

static void
s_live_unlink (kf_broker_t *self, kf_job_t *job)
{
    if (job->live_prev)
        job->live_prev->live_next = job->live_next;
    else
        self->live_head = job->live_next;
    if (job->live_next)
        job->live_next->live_prev = job->live_prev;
    else
        self->live_tail = job->live_prev;
}

//  --- Start and end ----------------------------------------------------------------------------

static bool s_answer_from_cache (kf_broker_t *self, kf_job_t *job);

//  Allocates the job's ids and stores the user turn and the answer's pending row
static void
s_store_rows (kf_broker_t *self, kf_job_t *job)
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

//  The job becomes its session's active job: ids allocated, the user turn stored, ready to dispatch
static void
s_begin (kf_broker_t *self, kf_job_t *job)
{
    job->session->active = job;
    s_store_rows (self, job);
    if (!s_answer_from_cache (self, job))
        s_ready_push (self, job, false);
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

static void s_fail (kf_broker_t *self, kf_job_t *job, const kf_error_t *err);

//  Starts the next job waiting in the session. One whose deadline has passed, or is too close to
//  be worth a dispatch, fails without starting: it stores nothing, and the one behind it gets its
//  turn.
static void
s_start_next (kf_broker_t *self, kf_session_t *session)
{
    kf_job_t *next;
    while (!session->active && (next = session->waiting_head)) {
        session->waiting_head = next->session_next;
        if (!session->waiting_head)
            session->waiting_tail = NULL;
        next->session_next = NULL;
        if (next->deadline_us - kf_mono_us () > S_MIN_TIME_LEFT_US) {
            s_begin (self, next);
            return;
        }
        kf_error_t err;
        kf_error_set (&err, KF_E_TIMEOUT, "no answer within %d ms", self->config->job_timeout_ms);
        s_fail (self, next, &err);
    }
}

//  Removes a finished job everywhere and starts the next job of its session
static void
s_finish (kf_broker_t *self, kf_job_t *job)
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

//  Publishes one event on the job's stream: {"seq", "event", fields...}; `fields` packs `count`
//  extra pairs. Returns the seq used.
typedef void (s_fields_fn) (msgpack_packer *pk, void *arg);

static int64_t
s_publish (kf_broker_t *self, kf_job_t *job, const char *event, int count, s_fields_fn *fields,
           void *arg, bool is_last)
{
    int64_t seq = kf_stream_next_seq (job->stream);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2 + count);
    kf_mp_pack_kv_int (&pk, "seq", seq);
    kf_mp_pack_kv_str (&pk, "event", event);
    if (fields)
        fields (&pk, arg);
    kf_stream_publish (self->hub, job->stream, buffer.data, buffer.size, is_last);
    msgpack_sbuffer_destroy (&buffer);
    if (is_last)
        job->stream = NULL;
    return seq;
}

static void
s_pack_error_field (msgpack_packer *pk, void *arg)
{
    kf_mp_pack_cstr (pk, "error");
    kf_error_pack (pk, arg);
}

//  Ends a job with an error: error event (when streaming) and error reply
static void
s_fail (kf_broker_t *self, kf_job_t *job, const kf_error_t *err)
{
    if (job->stream)
        s_publish (self, job, "error", 1, s_pack_error_field, (void *) err, true);
    kf_broker_reply_error (self, job->routing, job->routing_len, job->request_id,
                           job->request_id_len, err);
    if (job->stop)
        kf_stop_ended (self, job, false, "", 0, err);
    if (job->is_started)
        kf_store_turn_fail (self->store, job->message_id);
    self->counters.errors++;
    if (err->errc == KF_E_TIMEOUT)
        self->counters.timeouts++;
    s_finish (self, job);
}

//  --- Accept -----------------------------------------------------------------------------------

typedef struct {
    const char *message, *session_id, *user_id, *bot_id;
    size_t message_len, session_id_len, user_id_len, bot_id_len;
    char channel [16];
    const msgpack_object *labels, *inputs;
    bool is_stream;
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
    ||  kf_param_bool (params, "stream", false, &p->is_stream, err))
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
    msgpack_pack_map (&pk, 6);
    kf_mp_pack_cstr (&pk, "message");
    kf_mp_pack_str (&pk, p->message, p->message_len);
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
    job->session = session;
    job->accepted_us = kf_mono_us ();
    job->deadline_us = job->accepted_us + kf_llm_job_timeout_ms (self, session->bot_id) * 1000LL;
    s_pack_worker_params (job, &p, session);
    if (p.is_stream)
        job->stream = kf_stream_hub_open (self->hub, req->id, req->id_len);
    //  By deadline: LLM bots' jobs have longer ones, so walk back past those due later
    kf_job_t *before = self->live_tail;
    while (before && before->deadline_us > job->deadline_us)
        before = before->live_prev;
    job->live_prev = before;
    job->live_next = before ? before->live_next : self->live_head;
    if (job->live_next)
        job->live_next->live_prev = job;
    else
        self->live_tail = job;
    if (before)
        before->live_next = job;
    else
        self->live_head = job;
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
    msgpack_pack_map (&pk, 5);
    kf_mp_pack_kv_str (&pk, "session_id", session->id);
    kf_mp_pack_kv_str (&pk, "upstream_conversation_id",
                       session->upstream_conversation_id ? session->upstream_conversation_id : "");
    kf_mp_pack_kv_int (&pk, "turn_count", session->turn_count);
    kf_mp_pack_kv_int (&pk, "failed_attempts", session->failed_attempts);
    kf_mp_pack_cstr (&pk, "turns");
    msgpack_pack_array (&pk, session->recent_count);
    for (int i = 0; i < session->recent_count; i++) {
        const char *role, *content;
        kf_session_recent (session, i, &role, &content);
        msgpack_pack_map (&pk, 2);
        kf_mp_pack_kv_str (&pk, "role", role);
        kf_mp_pack_kv_str (&pk, "content", content);
    }
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

//  --- Worker messages --------------------------------------------------------------------------

static kf_job_t *
s_running_job (kf_broker_t *self, kf_worker_t *worker, const char *job_id, size_t id_len)
{
    kf_job_t *job = kf_dict_get (self->jobs, job_id, id_len);
    //  A job that timed out or was given to another worker: its late messages are dropped
    return job && job->worker == worker ? job : NULL;
}

typedef struct {
    kf_job_t *job;
    const msgpack_object *event;
    bool is_meta;
} s_event_ctx_t;

//  Keys of an event that only the broker sets: a worker's copies of them are dropped
static bool
s_is_broker_key (const msgpack_object *key)
{
    return kf_mp_str_eq_key (key, "event") || kf_mp_str_eq_key (key, "seq")
        || kf_mp_str_eq_key (key, "session_id") || kf_mp_str_eq_key (key, "message_id");
}

//  Copies the worker's event fields, adding session_id and message_id to meta
static void
s_pack_event_fields (msgpack_packer *pk, void *arg)
{
    s_event_ctx_t *ctx = arg;
    if (ctx->is_meta) {
        kf_mp_pack_kv_str (pk, "session_id", ctx->job->session->id);
        kf_mp_pack_kv_int (pk, "message_id", ctx->job->message_id);
    }
    const msgpack_object_map *map = &ctx->event->via.map;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *key = &map->ptr [i].key;
        if (s_is_broker_key (key))
            continue;
        msgpack_pack_object (pk, *key);
        msgpack_pack_object (pk, map->ptr [i].val);
    }
}

void
kf_chat_on_partial (kf_broker_t *self, kf_worker_t *worker, const char *job_id, size_t id_len,
                    const char *body, size_t body_len)
{
    kf_job_t *job = s_running_job (self, worker, job_id, id_len);
    if (!job || !job->stream)
        return;
    msgpack_unpacked unpacked;
    if (!kf_mp_unpack_one (body, body_len, &unpacked))
        return;
    const msgpack_object *event = &unpacked.data;
    const char *name;
    size_t name_len;
    if (event->type == MSGPACK_OBJECT_MAP && kf_mp_str (kf_mp_get (event, "event"), &name, &name_len)
    &&  name_len < 16) {
        char event_name [16];
        snprintf (event_name, sizeof event_name, "%.*s", (int) name_len, name);
        bool is_meta = strcmp (event_name, "meta") == 0;
        if (!is_meta && strcmp (event_name, "token") != 0) {
            //  done and error are the broker's to send, once, after the commit
            kf_warn ("worker %s sent a %s event; ignored", worker->name, event_name);
            msgpack_unpacked_destroy (&unpacked);
            return;
        }
        int fields = is_meta ? 2 : 0;
        for (uint32_t i = 0; i < event->via.map.size; i++) {
            const msgpack_object *key = &event->via.map.ptr [i].key;
            fields += !s_is_broker_key (key);
        }
        s_event_ctx_t ctx = { job, event, is_meta };
        s_publish (self, job, event_name, fields, s_pack_event_fields, &ctx, false);
    }
    msgpack_unpacked_destroy (&unpacked);
}

//  A stopped answer: the job was asked to stop (chat.stop) and its answer says it did
static bool
s_is_stopped (kf_job_t *job, const msgpack_object *result)
{
    return job->stop && kf_mp_get_bool (result, "stopped", false);
}

//  Packs the chat result: the worker's answer plus what only the broker knows
static void
s_pack_result (msgpack_packer *pk, kf_job_t *job, const msgpack_object *result, int64_t latency_ms,
               int64_t last_seq, bool as_fields)
{
    static const char *copied [] = { "reply", "response_type", "response_content", "intent",
                                     "confidence", "sources", "suggestions", "escalate_to_human",
                                     "usage", NULL };
    int count = 9 + 7 + (last_seq >= 0);
    if (!as_fields)
        msgpack_pack_map (pk, count);
    kf_mp_pack_kv_str (pk, "session_id", job->session->id);
    kf_mp_pack_kv_int (pk, "message_id", job->message_id);
    kf_mp_pack_kv_int (pk, "turn_count", job->session->turn_count);
    kf_mp_pack_kv_int (pk, "failed_attempts", job->session->failed_attempts);
    kf_mp_pack_kv_int (pk, "latency_ms", latency_ms);
    if (last_seq >= 0)
        kf_mp_pack_kv_int (pk, "last_seq", last_seq);
    for (int i = 0; copied [i]; i++) {
        const msgpack_object *value = kf_mp_get (result, copied [i]);
        kf_mp_pack_cstr (pk, copied [i]);
        if (value)
            msgpack_pack_object (pk, *value);
        else
            msgpack_pack_nil (pk);
    }
    kf_mp_pack_kv_bool (pk, "cached", kf_mp_get_bool (result, "cached", false));
    kf_mp_pack_kv_bool (pk, "stopped", s_is_stopped (job, result));
}

typedef struct {
    kf_job_t *job;
    const msgpack_object *result;
    int64_t latency_ms;
} s_done_ctx_t;

static void
s_pack_done_fields (msgpack_packer *pk, void *arg)
{
    s_done_ctx_t *ctx = arg;
    s_pack_result (pk, ctx->job, ctx->result, ctx->latency_ms, -1, true);
}

//  Stores the answer, updates the session, publishes done and queues the reply
static void
s_complete (kf_broker_t *self, kf_job_t *job, const msgpack_object *result)
{
    kf_session_t *session = job->session;
    int64_t now_us = kf_mono_us ();
    int64_t latency_ms = (now_us - job->accepted_us) / 1000;
    const char *reply = "", *intent = NULL, *response_type = "text";
    size_t reply_len = 0, len;
    kf_mp_str (kf_mp_get (result, "reply"), &reply, &reply_len);
    char intent_buffer [64] = "", type_buffer [32] = "text";
    if (kf_mp_str (kf_mp_get (result, "intent"), &intent, &len) && len < sizeof intent_buffer)
        snprintf (intent_buffer, sizeof intent_buffer, "%.*s", (int) len, intent);
    if (kf_mp_str (kf_mp_get (result, "response_type"), &response_type, &len) && len < sizeof type_buffer)
        snprintf (type_buffer, sizeof type_buffer, "%.*s", (int) len, response_type);
    const msgpack_object *usage = kf_mp_get (result, "usage");
    kf_turn_row_t turn = {
        .id = job->message_id, .session_id = session->id, .role = "assistant",
        .content = reply, .content_len = reply_len, .response_type = type_buffer,
        .intent = *intent_buffer ? intent_buffer : NULL,
        .confidence = kf_mp_get_double (result, "confidence", -1),
        .sources = kf_mp_get (result, "sources"), .suggestions = kf_mp_get (result, "suggestions"),
        .response_content = kf_mp_get (result, "response_content"),
        .latency_ms = latency_ms,
        .prompt_tokens = kf_mp_get_int (usage, "prompt_tokens", 0),
        .completion_tokens = kf_mp_get_int (usage, "completion_tokens", 0),
        .created_at = kf_now_ms ()
    };
    kf_store_turn_complete (self->store, &turn);
    kf_llm_on_complete (self, job->id_str, job->message_id, session->bot_id, result);
    session->turn_count++;
    int64_t failed_attempts = kf_mp_get_int (result, "failed_attempts", 0);
    session->failed_attempts = failed_attempts < 0 ? 0 : failed_attempts;
    session->updated_at = turn.created_at;
    kf_store_session_update (self->store, session->id, session->turn_count,
                             session->failed_attempts, job->labels_json, session->updated_at);
    kf_session_remember (session, "user", job->message, job->message_len);
    kf_session_remember (session, "assistant", reply, reply_len);
    const char *conversation;
    if (kf_mp_str (kf_mp_get (result, "upstream_conversation_id"), &conversation, &len))
        kf_session_set_conversation (self->sessions, session, conversation, len);
    const char *code;               //  upstream_error stays internal: logged, not returned
    if (kf_mp_str (kf_mp_get (kf_mp_get (result, "upstream_error"), "code"), &code, &len))
        kf_info ("session %s: the LLM upstream failed (%.*s)", session->id, (int) len, code);
    const msgpack_object *cache = kf_mp_get (result, "cache");
    if (cache && !kf_mp_get_bool (result, "cached", false) && !s_is_stopped (job, result))
        kf_answer_cache_put (self->cache, session->bot_id, result, cache);
    int64_t last_seq = -1;
    if (job->stream) {
        s_done_ctx_t ctx = { job, result, latency_ms };
        last_seq = s_publish (self, job, "done", 16, s_pack_done_fields, &ctx, true);
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    s_pack_result (&pk, job, result, latency_ms, last_seq, false);
    kf_broker_reply_ok (self, job->routing, job->routing_len, job->request_id, job->request_id_len,
                        buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    if (job->stop)
        kf_stop_ended (self, job, s_is_stopped (job, result), reply, reply_len, NULL);
    kf_latency_add (&self->latency, now_us - job->accepted_us);
    self->counters.done++;
    s_finish (self, job);
}

//  Packs the meta fields of a cached result: the ones a worker's meta event has
static void
s_pack_cached_meta (msgpack_packer *pk, void *arg)
{
    s_done_ctx_t *ctx = arg;
    static const char *copied [] = { "intent", "confidence", "sources", "suggestions",
                                     "escalate_to_human", NULL };
    kf_mp_pack_kv_str (pk, "session_id", ctx->job->session->id);
    kf_mp_pack_kv_int (pk, "message_id", ctx->job->message_id);
    for (int i = 0; copied [i]; i++) {
        kf_mp_pack_cstr (pk, copied [i]);
        msgpack_pack_object (pk, *kf_mp_get (ctx->result, copied [i]));
    }
}

static void
s_pack_cached_token (msgpack_packer *pk, void *arg)
{
    s_done_ctx_t *ctx = arg;
    kf_mp_pack_cstr (pk, "content");
    msgpack_pack_object (pk, *kf_mp_get (ctx->result, "reply"));
}

//  Answers a job from the hot-answer cache when it holds the answer: no worker, the same rows
//  and events as a worker's answer (meta, one token, done), "cached": true. Returns true when it
//  did (the job is finished and freed).
static bool
s_answer_from_cache (kf_broker_t *self, kf_job_t *job)
{
    char *question = kf_text_normalize (job->message, job->message_len);
    msgpack_unpacked params;
    bool has_params = kf_mp_unpack_one (job->params.data, job->params.size, &params);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    bool is_hit = kf_answer_cache_get (self->cache, job->session->bot_id, question,
                                       kf_store_kb_version (self->store),
                                       has_params ? kf_mp_get (&params.data, "labels") : NULL, &pk);
    free (question);
    if (has_params)
        msgpack_unpacked_destroy (&params);
    msgpack_unpacked result;
    if (is_hit && kf_mp_unpack_one (buffer.data, buffer.size, &result)) {
        if (job->stream) {
            s_done_ctx_t ctx = { job, &result.data, 0 };
            s_publish (self, job, "meta", 7, s_pack_cached_meta, &ctx, false);
            s_publish (self, job, "token", 1, s_pack_cached_token, &ctx, false);
        }
        s_complete (self, job, &result.data);
        msgpack_unpacked_destroy (&result);
    }
    else
        is_hit = false;
    msgpack_sbuffer_destroy (&buffer);
    return is_hit;
}

void
kf_chat_on_final (kf_broker_t *self, kf_worker_t *worker, const char *job_id, size_t id_len,
                  const char *body, size_t body_len)
{
    kf_job_t *job = s_running_job (self, worker, job_id, id_len);
    if (!job)
        return;
    worker->jobs_done++;
    msgpack_unpacked unpacked;
    kf_error_t err;
    if (!kf_mp_unpack_one (body, body_len, &unpacked)) {
        kf_error_set (&err, KF_E_INTERNAL, "worker sent an undecodable result");
        s_fail (self, job, &err);
        return;
    }
    const msgpack_object *final = &unpacked.data;
    const msgpack_object *result = kf_mp_get (final, "result");
    if (kf_mp_get_bool (final, "ok", false) && result && result->type == MSGPACK_OBJECT_MAP)
        s_complete (self, job, result);
    else {
        if (!kf_error_unpack (kf_mp_get (final, "error"), &err))
            kf_error_set (&err, KF_E_INTERNAL, "worker failed without saying why");
        s_fail (self, job, &err);
    }
    msgpack_unpacked_destroy (&unpacked);
}

//  --- Failure ----------------------------------------------------------------------------------

void
kf_chat_sweep_deadlines (kf_broker_t *self, int64_t now_us)
{
    while (self->live_head && self->live_head->deadline_us <= now_us) {
        kf_job_t *job = self->live_head;
        if (job->worker) {
            const void *data [4] = { job->worker->identity, "KFW1", "CANCEL", job->id_str };
            size_t size [4] = { job->worker->identity_len, 4, 6, strlen (job->id_str) };
            kf_frames_send (self->workers, 4, data, size, ZMQ_DONTWAIT);
        }
        kf_llm_release (self, job->id_str, 2);     //  A timed-out LLM turn failed its upstream
        kf_error_t err;
        kf_error_set (&err, KF_E_TIMEOUT, "no answer within %d ms", self->config->job_timeout_ms);
        s_fail (self, job, &err);
    }
}

long
kf_chat_timeout (kf_broker_t *self, int64_t now_us)
{
    if (!self->live_head)
        return -1;
    int64_t due = self->live_head->deadline_us;
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
            s_fail (self, job, &err);
        }
        else
        if (job->attempts >= self->config->max_attempts) {
            kf_error_set (&err, KF_E_WORKER_LOST, "%d workers were lost running this message",
                          job->attempts);
            s_fail (self, job, &err);
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
    while (self->live_head) {
        kf_job_t *job = self->live_head;
        kf_error_t err;
        kf_error_set (&err, KF_E_UNAVAILABLE, "the broker is shutting down");
        job->worker = NULL;
        s_fail (self, job, &err);
    }
}

void
kf_chat_on_batch_lost (kf_broker_t *self, uint64_t batch)
{
    //  Their rows (and perhaps their session's) were rolled back: they cannot be answered truthfully
    for (kf_job_t *job = self->live_head, *next; job; job = next) {
        next = job->live_next;
        bool is_lost = (job->is_started && job->batch == batch)
                    || job->session->created_batch == batch + 1;
        if (!is_lost)
            continue;
        if (job->worker) {
            const void *data [4] = { job->worker->identity, "KFW1", "CANCEL", job->id_str };
            size_t size [4] = { job->worker->identity_len, 4, 6, strlen (job->id_str) };
            kf_frames_send (self->workers, 4, data, size, ZMQ_DONTWAIT);
        }
        job->is_started = false;        //  Nothing of it is stored
        kf_error_t err;
        kf_error_set (&err, KF_E_INTERNAL, "the database write failed; nothing was stored");
        s_fail (self, job, &err);
        next = self->live_head;         //  Failing may have finished or started others: rescan
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
    kf_job_t *job = s_running_job (self, worker, job_id, id_len);
    if (job)
        s_fail (self, job, err);
}

//  --- chat.stop (stop_method.h) --------------------------------------------------------------

void
kf_chat_view (kf_job_t *job, kf_chat_view_t *view)
{
    *view = (kf_chat_view_t) {
        .id_str = job->id_str, .request_id = job->request_id, .request_id_len = job->request_id_len,
        .session = job->session, .worker = job->worker, .is_started = job->is_started,
        .message_id = job->message_id, .is_streaming = job->stream != NULL, .stop = &job->stop,
        .live_next = job->live_next
    };
}

void
kf_chat_end_stopped (kf_broker_t *self, kf_job_t *job, const char *text, size_t len)
{
    if (!job->is_started)
        s_store_rows (self, job);       //  Queued behind its session: the customer's turn counts
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 4);
    kf_mp_pack_cstr (&pk, "reply");
    kf_mp_pack_str (&pk, text, len);
    kf_mp_pack_kv_str (&pk, "response_type", "text");
    kf_mp_pack_kv_int (&pk, "failed_attempts", job->session->failed_attempts);
    kf_mp_pack_kv_bool (&pk, "stopped", true);
    msgpack_unpacked result;
    if (kf_mp_unpack_one (buffer.data, buffer.size, &result)) {
        s_complete (self, job, &result.data);
        msgpack_unpacked_destroy (&result);
    }
    msgpack_sbuffer_destroy (&buffer);
}
