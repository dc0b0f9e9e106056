/*  stop_method.c - chat.stop (PROTOCOL.md 4.31): finds the chat a customer wants stopped, ends it
    at once when it is queued, sends STOP to its worker when it runs, and answers the stop once the
    job has ended with the partial answer stored. A worker that does not answer a STOP within
    S_STOP_GRACE_MS (or is lost) has its job ended here with the token text the broker relayed,
    read back from the job's stream: nothing waits on a worker that went quiet. */
#include "broker/stop_method.h"
#include "broker/history.h"
#include "common/clock.h"
#include "common/frames.h"
#include "common/log.h"
#include "common/mpack.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_STOP_GRACE_MS 100         //  A STOP not answered by then: the broker ends the job

typedef struct {
    char *routing;              //  Client routing id of a chat.stop waiting for the end
    size_t routing_len;
    char *request_id;
    size_t request_id_len;
} s_waiter_t;

struct kf_stop_t {
    kf_job_t *job;
    bool is_sent;               //  STOP went to the job's worker
    int64_t grace_us;           //  Then the broker ends the job itself (0: no timer)
    s_waiter_t *waiters;
    size_t waiter_count;
    kf_stop_t *prev, *next;     //  In self->stops
};

//  The ownership rule (PROTOCOL.md 4.0): a session with a user is seen only by that user, or by
//  a caller who names no user
static bool
s_is_visible (kf_session_t *session, const char *user_id, size_t user_len)
{
    return !user_id || !*session->user_id
        || (strlen (session->user_id) == user_len && memcmp (session->user_id, user_id, user_len) == 0);
}

//  The unfinished job answering `message_id` (when > 0) or sent as `request_id`; of several
//  chats with that request id, the one from `routing` first
static kf_job_t *
s_find_job (kf_broker_t *self, int64_t message_id, const char *request_id, size_t request_id_len,
            const char *routing, size_t routing_len)
{
    kf_job_t *found = NULL;
    kf_chat_view_t view;
    for (kf_job_t *job = kf_chat_live_first (self); job; job = kf_chat_live_next (self, job)) {
        kf_chat_view (job, &view);
        bool is_match = message_id > 0
                      ? view.is_started && view.message_id == message_id
                      : view.request_id_len == request_id_len
                        && memcmp (view.request_id, request_id, request_id_len) == 0;
        if (is_match && message_id > 0)
            return job;
        //  Request ids are only unique per client: the caller's own chat is the one it means
        if (is_match && view.routing_len == routing_len
        &&  memcmp (view.routing, routing, routing_len) == 0)
            return job;
        if (is_match && !found)
            found = job;
    }
    return found;
}

//  The token text relayed on the job's stream so far ("" when not streamed), into `text`
static void
s_relayed_text (kf_broker_t *self, const kf_chat_view_t *view, msgpack_sbuffer *text)
{
    msgpack_sbuffer_init (text);
    if (!view->is_streaming)
        return;
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_unpacked unpacked;
    if (kf_stream_hub_fetch_pack (self->hub, view->request_id, view->request_id_len, 0, &pk) == 0
    &&  kf_mp_unpack_one (buffer.data, buffer.size, &unpacked)) {
        const msgpack_object *events = kf_mp_get (&unpacked.data, "data");
        for (uint32_t i = 0; events && events->type == MSGPACK_OBJECT_ARRAY
                             && i < events->via.array.size; i++) {
            const msgpack_object *event = &events->via.array.ptr [i];
            const char *content;
            size_t len;
            if (kf_mp_str_eq (event, "event", "token")
            &&  kf_mp_str (kf_mp_get (event, "content"), &content, &len))
                msgpack_sbuffer_write (text, content, len);
        }
        msgpack_unpacked_destroy (&unpacked);
    }
    msgpack_sbuffer_destroy (&buffer);
}

//  Ends the job itself with what was relayed (the worker will not answer, or has no job yet)
static void
s_end_with_relayed (kf_broker_t *self, kf_job_t *job)
{
    kf_chat_view_t view;
    kf_chat_view (job, &view);
    msgpack_sbuffer text;
    s_relayed_text (self, &view, &text);
    kf_chat_end_stopped (self, job, text.data ? text.data : "", text.size);
    msgpack_sbuffer_destroy (&text);
}

static void
s_reply_stopped (kf_broker_t *self, const s_waiter_t *waiter, int64_t message_id,
                 const char *session_id, bool is_stopped, const char *content, size_t len)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 4);
    kf_mp_pack_kv_int (&pk, "message_id", message_id);
    kf_mp_pack_kv_str (&pk, "session_id", session_id);
    kf_mp_pack_kv_bool (&pk, "stopped", is_stopped);
    kf_mp_pack_cstr (&pk, "content");
    kf_mp_pack_str (&pk, content, len);
    kf_broker_reply_ok (self, waiter->routing, waiter->routing_len, waiter->request_id,
                        waiter->request_id_len, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
}

//  A message that is not in progress: stopping it changes nothing
static void
s_answer_finished (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req,
                   int64_t message_id, const char *user_id, size_t user_len)
{
    kf_error_t err;
    char role [16], session_id [80];
    if (!kf_broker_message_owned (self, message_id, user_id, user_len, role, sizeof role, session_id,
                                  sizeof session_id, &err)) {
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    if (strcmp (role, "user") == 0) {
        kf_error_set (&err, KF_E_INVALID_PARAM, "message %lld is the customer's; chat.stop takes"
                      " the message_id of an answer", (long long) message_id);
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    const char *content = "";
    size_t len = 0;
    msgpack_unpacked stored;
    bool has_stored = kf_history_message_pack (self->history, message_id, &pk) == 1
                   && kf_mp_unpack_one (buffer.data, buffer.size, &stored);
    if (has_stored)
        kf_mp_str (kf_mp_get (&stored.data, "content"), &content, &len);
    s_waiter_t waiter = { (char *) routing, routing_len, (char *) req->id, req->id_len };
    //  Finished: it says whether it was stopped, by an earlier chat.stop
    bool was_stopped = has_stored && kf_mp_get_bool (&stored.data, "stopped", false);
    s_reply_stopped (self, &waiter, message_id, session_id, was_stopped, content, len);
    if (has_stored)
        msgpack_unpacked_destroy (&stored);
    msgpack_sbuffer_destroy (&buffer);
}

//  Stops a job in progress; the reply waits for its end
static void
s_stop_job (kf_broker_t *self, kf_job_t *job, const char *routing, size_t routing_len,
            kf_request_t *req)
{
    kf_chat_view_t view;
    kf_chat_view (job, &view);
    kf_stop_t *stop = *view.stop;
    if (!stop) {
        stop = kf_calloc (1, sizeof *stop);
        stop->job = job;
        stop->next = self->stops;
        if (self->stops)
            self->stops->prev = stop;
        self->stops = stop;
        *view.stop = stop;
    }
    stop->waiters = kf_realloc (stop->waiters, (stop->waiter_count + 1) * sizeof *stop->waiters);
    stop->waiters [stop->waiter_count++] = (s_waiter_t) {
        kf_strndup (routing, routing_len), routing_len, kf_strndup (req->id, req->id_len), req->id_len
    };
    if (stop->is_sent)
        return;                         //  Stopped twice: both answered at the end
    if (!view.worker) {
        s_end_with_relayed (self, job);     //  Queued: ends now (and answers the stop)
        return;
    }
    const void *data [4] = { view.worker->identity, "KFW1", "STOP", view.id_str };
    size_t size [4] = { view.worker->identity_len, 4, 4, strlen (view.id_str) };
    kf_frames_send (self->workers, 4, data, size, ZMQ_DONTWAIT);
    stop->is_sent = true;
    stop->grace_us = kf_mono_us () + S_STOP_GRACE_MS * 1000LL;
}

void
kf_method_chat_stop (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    kf_error_t err;
    int64_t message_id = 0;
    const char *request_id = NULL, *user_id = NULL;
    size_t request_id_len = 0, user_len = 0;
    const msgpack_object *given = kf_mp_get (req->params, "message_id");
    bool has_message = given && given->type != MSGPACK_OBJECT_NIL;
    if (kf_param_int (req->params, "message_id", 1, INT64_MAX, 0, &message_id, &err)
    ||  kf_param_str (req->params, "request_id", false, 255, &request_id, &request_id_len, &err)
    ||  kf_param_str (req->params, "user_id", false, 128, &user_id, &user_len, &err))
        goto failed;
    if (request_id && request_id_len == 0) {
        kf_error_set (&err, KF_E_INVALID_PARAM, "params.request_id must not be empty");
        goto failed;
    }
    if (!has_message && !request_id) {
        kf_error_set (&err, KF_E_MISSING_ARGUMENT, "params.message_id is required (or the"
                      " params.request_id of a chat still in progress)");
        goto failed;
    }
    if (has_message && request_id) {
        kf_error_set (&err, KF_E_INVALID_PARAM, "give params.message_id or params.request_id, not both");
        goto failed;
    }
    kf_job_t *job = s_find_job (self, message_id, request_id, request_id_len, routing, routing_len);
    kf_chat_view_t view;
    if (job)
        kf_chat_view (job, &view);
    if (job && !s_is_visible (view.session, user_id, user_len)) {
        kf_error_set (&err, KF_E_NOT_FOUND, "message %lld does not exist", (long long) message_id);
        if (request_id)
            kf_error_set (&err, KF_E_NOT_FOUND, "no chat %.*s is in progress", (int) request_id_len,
                          request_id);
        goto failed;
    }
    if (job)
        s_stop_job (self, job, routing, routing_len, req);
    else
    if (request_id) {
        kf_error_set (&err, KF_E_NOT_FOUND, "no chat %.*s is in progress; stop a finished answer"
                      " by its message_id", (int) request_id_len, request_id);
        goto failed;
    }
    else
        s_answer_finished (self, routing, routing_len, req, message_id, user_id, user_len);
    return;
failed:
    kf_broker_send_error (self, routing, routing_len, req, &err);
}

void
kf_stop_ended (kf_broker_t *self, kf_job_t *job, bool is_stopped, const char *content,
               size_t len, const kf_error_t *err)
{
    kf_chat_view_t view;
    kf_chat_view (job, &view);
    kf_stop_t *stop = *view.stop;
    if (!stop)
        return;
    *view.stop = NULL;
    if (stop->prev)
        stop->prev->next = stop->next;
    else
        self->stops = stop->next;
    if (stop->next)
        stop->next->prev = stop->prev;
    for (size_t i = 0; i < stop->waiter_count; i++) {
        s_waiter_t *waiter = &stop->waiters [i];
        if (err)
            kf_broker_reply_error (self, waiter->routing, waiter->routing_len, waiter->request_id,
                                   waiter->request_id_len, err);
        else
            s_reply_stopped (self, waiter, view.message_id, view.session->id, is_stopped, content, len);
        free (waiter->routing);
        free (waiter->request_id);
    }
    free (stop->waiters);
    free (stop);
}

void
kf_stop_on_worker_lost (kf_broker_t *self, kf_job_t *job)
{
    s_end_with_relayed (self, job);
}

void
kf_stop_sweep (kf_broker_t *self, int64_t now_us)
{
    kf_stop_t *stop = self->stops;
    while (stop) {
        if (!stop->is_sent || stop->grace_us > now_us) {
            stop = stop->next;
            continue;
        }
        kf_chat_view_t view;
        kf_chat_view (stop->job, &view);
        if (view.worker) {
            kf_warn ("worker %s did not answer STOP %s within %d ms; ending it here",
                     view.worker->name, view.id_str, S_STOP_GRACE_MS);
            const void *data [4] = { view.worker->identity, "KFW1", "CANCEL", view.id_str };
            size_t size [4] = { view.worker->identity_len, 4, 6, strlen (view.id_str) };
            kf_frames_send (self->workers, 4, data, size, ZMQ_DONTWAIT);
        }
        s_end_with_relayed (self, stop->job);
        stop = self->stops;             //  Ending frees this stop, perhaps starts others: rescan
    }
}

long
kf_stop_timeout (kf_broker_t *self, int64_t now_us)
{
    long timeout = -1;
    for (kf_stop_t *stop = self->stops; stop; stop = stop->next) {
        if (!stop->is_sent)
            continue;
        long due = stop->grace_us <= now_us ? 0 : (long) ((stop->grace_us - now_us) / 1000 + 1);
        if (timeout < 0 || due < timeout)
            timeout = due;
    }
    return timeout;
}
