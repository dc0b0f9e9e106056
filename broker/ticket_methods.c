/*  ticket_methods.c - intent.execute (run an executable intent directly: submit a ticket, or hand
    a session to people through handoff.h), tickets.query and tickets.update (PROTOCOL.md
    4.42-4.43, 16). Each validates its params and answers exactly once. */
#include "broker/broker.h"
#include "broker/handoff.h"
#include "broker/intents.h"
#include "broker/tickets.h"
#include "common/clock.h"
#include "common/emotion.h"
#include "common/mpack.h"
#include <stdio.h>
#include <string.h>

#define S_STATUSES "open, processing or closed"

static bool
s_is_status (const char *status, size_t len)
{
    return (len == 4 && memcmp (status, "open", 4) == 0)
        || (len == 10 && memcmp (status, "processing", 10) == 0)
        || (len == 6 && memcmp (status, "closed", 6) == 0);
}

//  The session params.session_id names, when it names one, as params.user_id sees it (4.0).
//  Returns 0 with *session set (NULL: none given), or -1 with `err` set
static int
s_optional_session (kf_broker_t *self, kf_request_t *req, kf_session_t **session, kf_error_t *err)
{
    const char *id;
    size_t id_len;
    *session = NULL;
    if (kf_param_str (req->params, "session_id", false, 64, &id, &id_len, err))
        return -1;
    if (!id || id_len == 0)
        return 0;
    *session = kf_broker_session_param (self, req, err);
    return *session ? 0 : -1;
}

//  The intent intent.execute names (by name or id) in the bot, enabled and executable: copies its
//  name into `name` (KF_INTENT_NAME_MAX + 1 bytes). Returns 0 or -1 with `err` set
static int
s_executable_intent (kf_broker_t *self, kf_request_t *req, const char *bot, char *name,
                     kf_error_t *err)
{
    const char *given;
    size_t given_len;
    int64_t id;
    const msgpack_object *id_obj = kf_mp_get (req->params, "intent_id");
    bool has_id = id_obj && id_obj->type != MSGPACK_OBJECT_NIL;
    if (kf_param_str (req->params, "intent", false, KF_INTENT_NAME_MAX, &given, &given_len, err)
    ||  kf_param_int (req->params, "intent_id", 1, INT64_MAX, 0, &id, err))
        return -1;
    if (given && given_len == 0)
        given = NULL;
    if (!given && !has_id)
        return kf_error_set (err, KF_E_MISSING_ARGUMENT, "params.intent or params.intent_id is"
                             " required");
    bool is_enabled = false;
    int rc = kf_intents_find (self->store, bot, given, given_len, id, name, &is_enabled);
    if (rc < 0)
        return kf_error_set (err, KF_E_INTERNAL, "could not read the intents");
    if (rc == 1 && given && has_id) {
        //  Both given: they must name the same intent
        char by_id [KF_INTENT_NAME_MAX + 1];
        bool ignored;
        int found = kf_intents_find (self->store, bot, NULL, 0, id, by_id, &ignored);
        if (found < 0)
            return kf_error_set (err, KF_E_INTERNAL, "could not read the intents");
        if (found == 0 || strcmp (by_id, name) != 0)
            return kf_error_set (err, KF_E_INVALID_PARAM, "params.intent and params.intent_id name"
                                 " different intents");
    }
    if (rc == 0 && given)
        return kf_error_set (err, KF_E_NOT_FOUND, "intent %.*s does not exist in bot %s",
                             (int) given_len, given, bot);
    if (rc == 0)
        return kf_error_set (err, KF_E_NOT_FOUND, "intent %lld does not exist in bot %s",
                             (long long) id, bot);
    if (!kf_intent_is_executable (name, strlen (name)))
        return kf_error_set (err, KF_E_INVALID_PARAM, "intent %s is not executable: intent.execute"
                             " runs ticket and transfer_to_human", name);
    if (!is_enabled)
        return kf_error_set (err, KF_E_INVALID_PARAM, "intent %s is disabled in bot %s", name, bot);
    return 0;
}

//  Stores a ticket's confirmation as an answer of the bot in `session` (message `id`), so the
//  conversation shows the card a chat would have: history, the recent turns a worker sees
static int
s_store_confirmation (kf_broker_t *self, kf_session_t *session, int64_t id,
                      const kf_ticket_made_t *made)
{
    msgpack_unpacked content;
    if (!kf_mp_unpack_one (made->content.data, made->content.size, &content))
        return -1;
    kf_turn_row_t turn = {
        .id = id, .session_id = session->id, .role = "assistant", .content = made->reply,
        .content_len = strlen (made->reply), .response_type = "form_show", .intent = "ticket",
        .confidence = 1.0, .response_content = &content.data, .status = "ok", .latency_ms = -1,
        .created_at = kf_now_ms ()
    };
    int rc = kf_store_turn_insert (self->store, &turn);
    msgpack_unpacked_destroy (&content);
    if (rc)
        return -1;
    kf_session_remember (session, "assistant", made->reply, strlen (made->reply));
    session->updated_at = turn.created_at;
    return kf_sessions_save (self->sessions, session, NULL);
}

//  Submits the ticket params.params describes; packs the answer
static int
s_execute_ticket (kf_broker_t *self, kf_request_t *req, const char *bot, kf_session_t *session,
                  msgpack_packer *pk, kf_error_t *err)
{
    const msgpack_object *params;
    const char *user_id, *type;
    size_t user_len, type_len;
    if (kf_param_str (req->params, "user_id", false, 128, &user_id, &user_len, err)
    ||  kf_param_map (req->params, "params", &params, err))
        return -1;
    if (!params)
        return kf_error_set (err, KF_E_MISSING_ARGUMENT, "params.params is required: the ticket's"
                             " type and fields");
    const msgpack_object *type_obj = kf_mp_get (params, "type");
    if (!type_obj || type_obj->type == MSGPACK_OBJECT_NIL)
        return kf_error_set (err, KF_E_MISSING_ARGUMENT, "params.params.type is required");
    if (!kf_mp_str (type_obj, &type, &type_len))
        return kf_error_set (err, KF_E_INVALID_PARAM, "params.params.type must be a string");
    char user [4 * 128 + 1];
    snprintf (user, sizeof user, "%.*s", user_id ? (int) user_len : 0, user_id ? user_id : "");
    kf_ticket_origin_t origin = {
        .bot_id = bot, .session_id = session ? session->id : NULL,
        .user_id = session ? session->user_id : user, .source = "execute"
    };
    //  With an open session, the confirmation joins its conversation as the bot's answer
    if (session && session->is_closed)
        session = NULL;
    if (session)
        origin.message_id = kf_store_next_message_id (self->store);
    kf_ticket_made_t made;
    if (kf_tickets_create (self->store, &origin, type, type_len, params, "params.params", &made,
                           err))
        return -1;
    if (session && s_store_confirmation (self, session, origin.message_id, &made)) {
        kf_ticket_made_free (&made);
        return kf_error_set (err, KF_E_INTERNAL, "could not store the ticket's confirmation");
    }
    msgpack_pack_map (pk, 6);
    kf_mp_pack_cstr (pk, "message_id");
    if (session)
        msgpack_pack_int64 (pk, origin.message_id);
    else
        msgpack_pack_nil (pk);
    kf_mp_pack_kv_str (pk, "intent", "ticket");
    kf_mp_pack_cstr (pk, "ticket");
    pk->callback (pk->data, made.ticket.data, made.ticket.size);
    kf_mp_pack_kv_str (pk, "reply", made.reply);
    kf_mp_pack_kv_str (pk, "response_type", "form_show");
    kf_mp_pack_cstr (pk, "response_content");
    pk->callback (pk->data, made.content.data, made.content.size);
    kf_ticket_made_free (&made);
    return 0;
}

//  Hands the session to people as handoff.request does (reason 1, the customer asked), with the
//  intent named in the escalation; packs the answer
static int
s_execute_transfer (kf_broker_t *self, kf_request_t *req, kf_session_t *session,
                    msgpack_packer *pk, kf_error_t *err)
{
    const msgpack_object *params;
    const char *text = NULL;
    size_t text_len = 0;
    if (kf_param_map (req->params, "params", &params, err))
        return -1;
    if (params && kf_param_str (params, "reason_text", false, 500, &text, &text_len, err)) {
        size_t len = strlen (err->message);     //  "params.reason_text ...": one level deeper
        if (len + 8 <= sizeof err->message) {
            memmove (err->message + 7, err->message, len + 1);
            memcpy (err->message, "params.", 7);
        }
        return -1;
    }
    if (!session)
        return kf_error_set (err, KF_E_MISSING_ARGUMENT, "params.session_id is required to execute"
                             " transfer_to_human");
    if (session->is_closed)
        return kf_error_set (err, KF_E_SESSION_CLOSED, "session %s is closed", session->id);
    bool has_text = text && text_len;
    kf_escalation_in_t in = {
        .session = session, .reason = 1, .intent = "transfer_to_human",
        .emotion_score = has_text ? kf_emotion_score (text, text_len) : -1,
        .reason_text = has_text ? text : NULL, .reason_text_len = has_text ? text_len : 0,
        .created_at = kf_now_ms ()
    };
    msgpack_sbuffer card;
    msgpack_sbuffer_init (&card);
    int64_t id = kf_handoff_escalate (self, &in, &card, err);
    if (id >= 0) {
        msgpack_pack_map (pk, 4);
        kf_mp_pack_kv_str (pk, "intent", "transfer_to_human");
        kf_mp_pack_kv_int (pk, "escalation_id", id);
        kf_mp_pack_kv_str (pk, "handoff_state", "pending");
        kf_mp_pack_cstr (pk, "escalation_card");
        pk->callback (pk->data, card.data, card.size);
    }
    msgpack_sbuffer_destroy (&card);
    return id >= 0 ? 0 : -1;
}

void
kf_method_intent_execute (kf_broker_t *self, const char *routing, size_t routing_len,
                          kf_request_t *req)
{
    kf_error_t err;
    const char *bot_id;
    size_t bot_len;
    kf_session_t *session;
    char bot [260], name [KF_INTENT_NAME_MAX + 1];
    kf_result_t r;
    kf_result_init (&r);
    if (kf_param_str (req->params, "bot_id", false, 64, &bot_id, &bot_len, &err)
    ||  s_optional_session (self, req, &session, &err))
        goto failed;
    if (session && bot_id && bot_len
    &&  (strlen (session->bot_id) != bot_len || memcmp (session->bot_id, bot_id, bot_len))) {
        kf_error_set (&err, KF_E_INVALID_PARAM, "session %s belongs to bot %s, not %.*s",
                      session->id, session->bot_id, (int) bot_len, bot_id);
        goto failed;
    }
    snprintf (bot, sizeof bot, "%.*s", bot_id && bot_len ? (int) bot_len : 255,
              bot_id && bot_len ? bot_id : session ? session->bot_id : "default");
    if (s_executable_intent (self, req, bot, name, &err))
        goto failed;
    if (strcmp (name, "ticket") == 0) {
        if (s_execute_ticket (self, req, bot, session, &r.pk, &err))
            goto failed;
        kf_broker_send_result (self, routing, routing_len, req, &r);
        return;
    }
    if (s_execute_transfer (self, req, session, &r.pk, &err))
        goto failed;
    kf_broker_send_result (self, routing, routing_len, req, &r);
    return;
failed:
    msgpack_sbuffer_destroy (&r.buffer);
    kf_broker_send_error (self, routing, routing_len, req, &err);
}

//  A string filter of tickets.query: NULL when absent or empty
static int
s_filter (kf_request_t *req, const char *key, size_t max_chars, const char **value, size_t *len,
          kf_error_t *err)
{
    if (kf_param_str (req->params, key, false, max_chars, value, len, err))
        return -1;
    if (*value && *len == 0)
        *value = NULL;
    return 0;
}

void
kf_method_tickets_query (kf_broker_t *self, const char *routing, size_t routing_len,
                         kf_request_t *req)
{
    kf_error_t err;
    kf_ticket_filter_t f;
    kf_session_t *session = NULL;
    memset (&f, 0, sizeof f);
    if (s_filter (req, "bot_id", 64, &f.bot_id, &f.bot_len, &err)
    ||  s_filter (req, "session_id", 64, &f.session_id, &f.session_len, &err)
    ||  s_filter (req, "user_id", 128, &f.user_id, &f.user_len, &err)
    ||  s_filter (req, "ticket_no", KF_TICKET_NO_MAX, &f.ticket_no, &f.ticket_no_len, &err)
    ||  s_filter (req, "type", 16, &f.type, &f.type_len, &err)
    ||  s_filter (req, "status", 16, &f.status, &f.status_len, &err)
    ||  kf_broker_param_page (req, 100, &f.page, &f.page_size, &err))
        goto failed;
    if (f.status && !s_is_status (f.status, f.status_len)) {
        kf_error_set (&err, KF_E_INVALID_PARAM, "params.status must be " S_STATUSES);
        goto failed;
    }
    //  A session's tickets, as its user sees them (4.0): user_id is then the ownership check,
    //  not a filter (a session with no user has tickets with none)
    if (f.session_id) {
        if (s_optional_session (self, req, &session, &err))
            goto failed;
        f.user_id = NULL;
    }
    kf_result_t r;
    kf_result_init (&r);
    kf_broker_send_query (self, routing, routing_len, req, &r,
                          kf_tickets_query_pack (self->store, &f, &r.pk));
    return;
failed:
    kf_broker_send_error (self, routing, routing_len, req, &err);
}

void
kf_method_tickets_update (kf_broker_t *self, const char *routing, size_t routing_len,
                          kf_request_t *req)
{
    kf_error_t err;
    int64_t id;
    const char *ticket_no, *status;
    size_t no_len, status_len;
    const msgpack_object *id_obj = kf_mp_get (req->params, "id");
    bool has_id = id_obj && id_obj->type != MSGPACK_OBJECT_NIL;
    if (kf_param_int (req->params, "id", 1, INT64_MAX, 0, &id, &err)
    ||  s_filter (req, "ticket_no", KF_TICKET_NO_MAX, &ticket_no, &no_len, &err)
    ||  kf_param_str (req->params, "status", true, 16, &status, &status_len, &err))
        goto failed;
    if (!has_id && !ticket_no) {
        kf_error_set (&err, KF_E_MISSING_ARGUMENT, "params.id or params.ticket_no is required");
        goto failed;
    }
    if (!s_is_status (status, status_len)) {
        kf_error_set (&err, KF_E_INVALID_PARAM, "params.status must be " S_STATUSES);
        goto failed;
    }
    if (has_id && ticket_no) {
        //  Both given: they must name the same ticket
        int64_t named = kf_tickets_find_id (self->store, ticket_no, no_len);
        if (named < 0) {
            kf_error_set (&err, KF_E_INTERNAL, "could not read the tickets");
            goto failed;
        }
        if (named != id) {
            kf_error_set (&err, named ? KF_E_INVALID_PARAM : KF_E_NOT_FOUND, named
                          ? "params.id and params.ticket_no name different tickets"
                          : "ticket %.*s does not exist", (int) no_len, ticket_no);
            goto failed;
        }
    }
    char state [16];
    snprintf (state, sizeof state, "%.*s", (int) status_len, status);
    kf_result_t r;
    kf_result_init (&r);
    int rc = kf_tickets_set_status (self->store, has_id ? id : 0, has_id ? NULL : ticket_no,
                                    no_len, state, &r.pk);
    if (rc == 1) {
        kf_broker_send_result (self, routing, routing_len, req, &r);
        return;
    }
    msgpack_sbuffer_destroy (&r.buffer);
    if (rc == 0 && has_id)
        kf_error_set (&err, KF_E_NOT_FOUND, "ticket %lld does not exist", (long long) id);
    else
    if (rc == 0)
        kf_error_set (&err, KF_E_NOT_FOUND, "ticket %.*s does not exist", (int) no_len, ticket_no);
    else
        kf_error_set (&err, KF_E_INTERNAL, "could not update the ticket");
failed:
    kf_broker_send_error (self, routing, routing_len, req, &err);
}
