/*  lifecycle_methods.c - the client methods that follow a conversation after its answers:
    session.close (with satisfaction, and the handoff it records: an open escalation closes with
    its session) and feedback on answers. Idle sessions close themselves here too
    (kf_lifecycle_close_idle, on the broker's timer), their escalations with them. */
#include "broker/broker.h"
#include "broker/conversations.h"
#include "broker/handoff.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mpack.h"
#include <stdio.h>
#include <string.h>

//  Reads an optional small integer in [min, max]; 0 when absent
static int
s_param_code (const msgpack_object *params, const char *key, int64_t min, int64_t max,
              int64_t *value, kf_error_t *err)
{
    return kf_param_int (params, key, min, max, 0, value, err);
}

void
kf_method_session_close (kf_broker_t *self, const char *routing, size_t routing_len,
                         kf_request_t *req)
{
    kf_error_t err;
    int64_t reason, satisfaction, bot2human;
    if (s_param_code (req->params, "reason", 1, 2, &reason, &err)
    ||  s_param_code (req->params, "satisfaction", 1, 3, &satisfaction, &err)
    ||  s_param_code (req->params, "bot2human_reason", 1, 5, &bot2human, &err))
        goto failed;
    if (reason == 0) {
        kf_error_set (&err, KF_E_MISSING_ARGUMENT, "params.reason is required (1 ended, 2 transferred to a human)");
        goto failed;
    }
    if (reason == 1 && bot2human != 0) {
        kf_error_set (&err, KF_E_INVALID_PARAM, "params.bot2human_reason goes only with reason 2");
        goto failed;
    }
    kf_session_t *session = kf_broker_session_param (self, req, &err);
    if (!session)
        goto failed;
    if (session->is_closed) {
        kf_error_set (&err, KF_E_SESSION_CLOSED, "session %s is already closed", session->id);
        goto failed;
    }
    //  A transfer records why the bot handed over: the caller's code, else the reason of the
    //  session's latest escalation (open or not)
    if (reason == 2 && bot2human == 0)
        bot2human = kf_escalations_latest_reason (self->escalations, session->id);
    if (reason == 2 && bot2human <= 0) {
        kf_error_set (&err, KF_E_MISSING_ARGUMENT, "params.bot2human_reason (1-5) is required when"
                      " reason is 2 and the session was never handed over (handoff.request)");
        goto failed;
    }
    int64_t now = kf_now_ms ();
    kf_handoff_close (self, session, now);
    if (kf_store_session_close (self->store, session->id, reason, satisfaction, bot2human, now)) {
        kf_error_set (&err, KF_E_INTERNAL, "could not store the closing");
        goto failed;
    }
    //  A message already accepted for this session is still answered; new ones are refused
    session->is_closed = true;
    session->updated_at = now;
    kf_result_t r;
    kf_result_init (&r);
    msgpack_packer *pk = &r.pk;
    msgpack_pack_map (pk, 6);
    kf_mp_pack_kv_str (pk, "session_id", session->id);
    kf_mp_pack_kv_str (pk, "state", "closed");
    kf_mp_pack_kv_int (pk, "reason", reason);
    kf_mp_pack_cstr (pk, "satisfaction");
    if (satisfaction)
        msgpack_pack_int64 (pk, satisfaction);
    else
        msgpack_pack_nil (pk);
    kf_mp_pack_cstr (pk, "bot2human_reason");
    if (bot2human)
        msgpack_pack_int64 (pk, bot2human);
    else
        msgpack_pack_nil (pk);
    kf_mp_pack_kv_int (pk, "closed_at", now);
    kf_broker_send_result (self, routing, routing_len, req, &r);
    return;
failed:
    kf_broker_send_error (self, routing, routing_len, req, &err);
}

void
kf_method_feedback (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    kf_error_t err;
    int64_t message_id;
    const char *user_id, *content, *rating;
    size_t user_len, content_len, rating_len;
    const msgpack_object *given = kf_mp_get (req->params, "message_id");
    if (!given || given->type == MSGPACK_OBJECT_NIL) {
        kf_error_set (&err, KF_E_MISSING_ARGUMENT, "params.message_id is required");
        goto failed;
    }
    if (!kf_mp_get (req->params, "rating")) {
        kf_error_set (&err, KF_E_MISSING_ARGUMENT,
                      "params.rating is required: \"like\", \"dislike\", or null to revoke");
        goto failed;
    }
    if (kf_param_int (req->params, "message_id", 1, INT64_MAX, 0, &message_id, &err)
    ||  kf_param_str (req->params, "user_id", false, 128, &user_id, &user_len, &err)
    ||  kf_param_str (req->params, "rating", false, 0, &rating, &rating_len, &err)
    ||  kf_param_str (req->params, "content", false, 500, &content, &content_len, &err))
        goto failed;
    const char *stored = NULL;
    if (rating && rating_len == 4 && memcmp (rating, "like", 4) == 0)
        stored = "like";
    else
    if (rating && rating_len == 7 && memcmp (rating, "dislike", 7) == 0)
        stored = "dislike";
    else
    if (rating) {
        kf_error_set (&err, KF_E_INVALID_PARAM, "params.rating must be \"like\", \"dislike\" or null");
        goto failed;
    }
    char role [16], session_id [80];
    if (!kf_broker_message_owned (self, message_id, user_id, user_len, role, sizeof role, session_id,
                                  sizeof session_id, &err))
        goto failed;
    if (strcmp (role, "assistant") != 0) {
        kf_error_set (&err, KF_E_INVALID_PARAM, "feedback rates answers: message %lld is %s",
                      (long long) message_id, strcmp (role, "unfinished") == 0
                      ? "an answer that did not complete" : "not an answer");
        goto failed;
    }
    int64_t now = kf_now_ms ();
    if (kf_store_feedback (self->store, message_id, stored, content, content_len, now)) {
        kf_error_set (&err, KF_E_INTERNAL, "could not store the feedback");
        goto failed;
    }
    kf_result_t r;
    kf_result_init (&r);
    msgpack_packer *pk = &r.pk;
    msgpack_pack_map (pk, 5);
    kf_mp_pack_kv_int (pk, "message_id", message_id);
    kf_mp_pack_kv_str (pk, "session_id", session_id);
    kf_mp_pack_kv_str (pk, "rating", stored);
    kf_mp_pack_cstr (pk, "content");
    if (stored && content)
        kf_mp_pack_str (pk, content, content_len);
    else
        msgpack_pack_nil (pk);
    kf_mp_pack_kv_int (pk, "at", now);
    kf_broker_send_result (self, routing, routing_len, req, &r);
    return;
failed:
    kf_broker_send_error (self, routing, routing_len, req, &err);
}

static void
s_reopen (void *arg, kf_session_t *session)
{
    kf_broker_t *self = arg;
    kf_store_session_reopen (self->store, session->id);
}

void
kf_lifecycle_close_idle (kf_broker_t *self)
{
    int64_t now = kf_now_ms ();
    int64_t before = now - self->config->idle_close_ms;
    int64_t closed = self->config->idle_close_ms > 0 ? kf_store_close_idle (self->store, before, now) : 0;
    if (self->config->idle_close_ms > 0)
        kf_sessions_close_idle (self->sessions, before, s_reopen, self);
    if (closed > 0)
        kf_info ("closed %lld idle sessions", (long long) closed);
    kf_handoff_sweep (self);        //  Their escalations, and those of deleted conversations
}

void
kf_lifecycle_purge (kf_broker_t *self)
{
    int64_t purged = kf_conversations_purge (self->conversations, kf_now_ms () - KF_PURGE_AFTER_MS);
    if (purged > 0)
        kf_info ("purged %lld deleted conversations", (long long) purged);
}
