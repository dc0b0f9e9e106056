/*  agent_methods.c - the client methods of the handoff to people (PROTOCOL.md 4.32-4.36, 13): the
    customer's handoff.request, and what an agent desk calls: agent.assign, agent.reply,
    agent.resolve, escalations.list. Each checks its params, makes its change through handoff.c
    (which stores it in the open batch and queues the topic events) and answers once, after the
    commit like every reply. */
#include "broker/handoff.h"
#include "common/clock.h"
#include "common/emotion.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/rich_content.h"
#include <stdio.h>
#include <string.h>

//  The session an agent method names in params.session_id (agents see every session: no
//  ownership rule). NULL with `err` set: missing, invalid, 404 not_found, 409 session_closed.
static kf_session_t *
s_agent_session (kf_broker_t *self, const msgpack_object *params, kf_error_t *err)
{
    const char *id;
    size_t len;
    if (kf_param_str (params, "session_id", true, 64, &id, &len, err))
        return NULL;
    kf_session_t *session = kf_sessions_get (self->sessions, id, len);
    if (!session)
        kf_error_set (err, KF_E_NOT_FOUND, "session %.*s does not exist", (int) len, id);
    else
    if (session->is_closed) {
        kf_error_set (err, KF_E_SESSION_CLOSED, "session %s is closed", session->id);
        session = NULL;
    }
    return session;
}

//  Reads params.agent_id: required, 1 to KF_AGENT_ID_MAX characters
static int
s_agent_id (const msgpack_object *params, const char **agent_id, size_t *len, kf_error_t *err)
{
    return kf_param_str (params, "agent_id", true, KF_AGENT_ID_MAX, agent_id, len, err);
}

//  Replies with escalation `id`'s entry (card, status, agent_id, times, note)
static void
s_reply_entry (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req,
               int64_t id)
{
    kf_result_t r;
    kf_result_init (&r);
    if (kf_escalations_pack (self->escalations, id, &r.pk) == 1) {
        kf_broker_send_result (self, routing, routing_len, req, &r);
        return;
    }
    msgpack_sbuffer_destroy (&r.buffer);
    kf_error_t err;
    kf_error_set (&err, KF_E_INTERNAL, "could not read escalation %lld", (long long) id);
    kf_broker_send_error (self, routing, routing_len, req, &err);
}

void
kf_method_handoff_request (kf_broker_t *self, const char *routing, size_t routing_len,
                           kf_request_t *req)
{
    kf_error_t err;
    const char *text;
    size_t text_len;
    if (kf_param_str (req->params, "reason_text", false, 500, &text, &text_len, &err))
        goto failed;
    kf_session_t *session = kf_broker_session_param (self, req, &err);
    if (!session)
        goto failed;
    if (session->is_closed) {
        kf_error_set (&err, KF_E_SESSION_CLOSED, "session %s is closed", session->id);
        goto failed;
    }
    kf_escalation_in_t in = {
        .session = session, .reason = 1, .emotion_score = text && text_len ? kf_emotion_score (text, text_len) : -1,
        .reason_text = text && text_len ? text : NULL, .reason_text_len = text_len,
        .created_at = kf_now_ms ()
    };
    kf_result_t r;
    kf_result_init (&r);
    if (kf_handoff_escalate (self, &in, &r.buffer, &err) < 0) {
        msgpack_sbuffer_destroy (&r.buffer);
        goto failed;
    }
    kf_broker_send_result (self, routing, routing_len, req, &r);
    return;
failed:
    kf_broker_send_error (self, routing, routing_len, req, &err);
}

//  The session of agent.assign: by session_id, by escalation_id (its open escalation), or both
//  when they agree. NULL with `err` set.
static kf_session_t *
s_assign_session (kf_broker_t *self, const msgpack_object *params, kf_error_t *err)
{
    int64_t escalation_id;
    const msgpack_object *by_session = kf_mp_get (params, "session_id");
    bool has_session = by_session && by_session->type != MSGPACK_OBJECT_NIL;
    if (kf_param_int (params, "escalation_id", 1, INT64_MAX, 0, &escalation_id, err))
        return NULL;
    if (!has_session && escalation_id == 0) {
        kf_error_set (err, KF_E_MISSING_ARGUMENT, "params.session_id or params.escalation_id is"
                      " required");
        return NULL;
    }
    if (has_session) {
        kf_session_t *session = s_agent_session (self, params, err);
        if (session && escalation_id && session->escalation_id != escalation_id) {
            kf_error_set (err, KF_E_INVALID_PARAM, "escalation %lld is not the open escalation of"
                          " session %s", (long long) escalation_id, session->id);
            return NULL;
        }
        return session;
    }
    kf_escalation_row_t row;
    int found = kf_escalations_get (self->escalations, escalation_id, &row);
    if (found != 1) {
        kf_error_set (err, found == 0 ? KF_E_NOT_FOUND : KF_E_INTERNAL, "escalation %lld %s",
                      (long long) escalation_id, found == 0 ? "does not exist" : "could not be read");
        return NULL;
    }
    kf_session_t *session = kf_sessions_get (self->sessions, row.session_id, strlen (row.session_id));
    if (!session || session->escalation_id != escalation_id) {
        kf_error_set (err, KF_E_CONFLICT, "escalation %lld is %s", (long long) escalation_id,
                      !session ? "of a deleted conversation" : row.status);
        return NULL;
    }
    if (session->is_closed) {
        kf_error_set (err, KF_E_SESSION_CLOSED, "session %s is closed", session->id);
        return NULL;
    }
    return session;
}

void
kf_method_agent_assign (kf_broker_t *self, const char *routing, size_t routing_len,
                        kf_request_t *req)
{
    kf_error_t err;
    const char *agent_id;
    size_t agent_len;
    kf_session_t *session;
    if (s_agent_id (req->params, &agent_id, &agent_len, &err)
    ||  !(session = s_assign_session (self, req->params, &err))
    ||  kf_handoff_assign (self, session, agent_id, agent_len, &err)) {
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    s_reply_entry (self, routing, routing_len, req, session->escalation_id);
}

//  Only the agent the session is assigned to may write to its customer
static int
s_check_assigned (const kf_session_t *session, const char *agent_id, size_t len, kf_error_t *err)
{
    if (session->handoff == KF_HANDOFF_BOT)
        return kf_error_set (err, KF_E_CONFLICT, "session %s is with the bot; agents write to"
                             " sessions handed to them (handoff, agent.assign)", session->id);
    if (session->handoff == KF_HANDOFF_PENDING)
        return kf_error_set (err, KF_E_CONFLICT, "session %s is waiting for an agent; call"
                             " agent.assign first", session->id);
    if (strlen (session->agent_id) != len || memcmp (session->agent_id, agent_id, len) != 0)
        return kf_error_set (err, KF_E_CONFLICT, "session %s is assigned to agent %s",
                             session->id, session->agent_id);
    return 0;
}

void
kf_method_agent_reply (kf_broker_t *self, const char *routing, size_t routing_len,
                       kf_request_t *req)
{
    kf_error_t err;
    const char *agent_id, *content;
    size_t agent_len, content_len;
    const msgpack_object *type = kf_mp_get (req->params, "response_type");
    const msgpack_object *rich = kf_mp_get (req->params, "response_content");
    kf_session_t *session;
    if (s_agent_id (req->params, &agent_id, &agent_len, &err)
    ||  kf_param_str (req->params, "content", true, self->config->max_message_chars, &content,
                      &content_len, &err)
    ||  kf_rich_check (type && type->type != MSGPACK_OBJECT_NIL ? type : NULL, rich, "params", &err)
    ||  !(session = s_agent_session (self, req->params, &err))
    ||  s_check_assigned (session, agent_id, agent_len, &err))
        goto failed;
    char type_name [32] = "text";
    if (type && type->type == MSGPACK_OBJECT_STR)
        snprintf (type_name, sizeof type_name, "%.*s", (int) type->via.str.size, type->via.str.ptr);
    kf_agent_turn_t turn = {
        .id = kf_store_next_message_id (self->store), .session_id = session->id,
        .agent_id = agent_id, .agent_len = agent_len, .content = content,
        .content_len = content_len, .response_type = type_name,
        .response_content = rich && rich->type != MSGPACK_OBJECT_NIL ? rich : NULL,
        .created_at = kf_now_ms ()
    };
    session->updated_at = turn.created_at;
    if (kf_escalations_agent_turn (self->escalations, &turn)
    ||  kf_sessions_save (self->sessions, session, NULL)) {
        kf_error_set (&err, KF_E_INTERNAL, "could not store the message");
        goto failed;
    }
    kf_session_remember (session, "agent", content, content_len);
    kf_handoff_agent_message (self, session, &turn);
    kf_result_t r;
    kf_result_init (&r);
    msgpack_pack_map (&r.pk, 4);
    kf_mp_pack_kv_str (&r.pk, "session_id", session->id);
    kf_mp_pack_kv_int (&r.pk, "message_id", turn.id);
    kf_mp_pack_kv_int (&r.pk, "escalation_id", session->escalation_id);
    kf_mp_pack_kv_int (&r.pk, "created_at", turn.created_at);
    kf_broker_send_result (self, routing, routing_len, req, &r);
    return;
failed:
    kf_broker_send_error (self, routing, routing_len, req, &err);
}

void
kf_method_agent_resolve (kf_broker_t *self, const char *routing, size_t routing_len,
                         kf_request_t *req)
{
    kf_error_t err;
    const char *agent_id, *note;
    size_t agent_len, note_len;
    kf_session_t *session;
    if (s_agent_id (req->params, &agent_id, &agent_len, &err)
    ||  kf_param_str (req->params, "note", false, 500, &note, &note_len, &err)
    ||  !(session = s_agent_session (self, req->params, &err)))
        goto failed;
    int64_t escalation_id = session->escalation_id;
    if (kf_handoff_resolve (self, session, agent_id, agent_len, note, note_len, &err))
        goto failed;
    s_reply_entry (self, routing, routing_len, req, escalation_id);
    return;
failed:
    kf_broker_send_error (self, routing, routing_len, req, &err);
}

void
kf_method_escalations_list (kf_broker_t *self, const char *routing, size_t routing_len,
                            kf_request_t *req)
{
    static const char *statuses [] = { "pending", "assigned", "resolved", "closed", NULL };
    kf_error_t err;
    kf_escalation_filter_t filter;
    memset (&filter, 0, sizeof filter);
    if (kf_param_str (req->params, "status", false, 16, &filter.status, &filter.status_len, &err)
    ||  kf_param_str (req->params, "session_id", false, 64, &filter.session_id,
                      &filter.session_id_len, &err)
    ||  kf_param_str (req->params, "bot_id", false, 64, &filter.bot_id, &filter.bot_id_len, &err)
    ||  kf_param_str (req->params, "agent_id", false, KF_AGENT_ID_MAX, &filter.agent_id,
                      &filter.agent_id_len, &err)
    ||  kf_broker_param_page (req, 100, &filter.page, &filter.page_size, &err))
        goto failed;
    bool is_known = filter.status_len == 0;
    for (int i = 0; statuses [i] && !is_known; i++)
        is_known = strlen (statuses [i]) == filter.status_len
                && memcmp (statuses [i], filter.status, filter.status_len) == 0;
    if (!is_known) {
        kf_error_set (&err, KF_E_INVALID_PARAM, "params.status must be pending, assigned, resolved"
                      " or closed");
        goto failed;
    }
    kf_result_t r;
    kf_result_init (&r);
    if (kf_escalations_list_pack (self->escalations, &filter, &r.pk)) {
        msgpack_sbuffer_destroy (&r.buffer);
        kf_error_set (&err, KF_E_INTERNAL, "could not read the escalations");
        goto failed;
    }
    kf_broker_send_result (self, routing, routing_len, req, &r);
    return;
failed:
    kf_broker_send_error (self, routing, routing_len, req, &err);
}
