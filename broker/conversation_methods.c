/*  conversation_methods.c - the client methods for a user's conversations and profile:
    user.login, user.logout, conversations.list, conversations.rename, conversations.delete. */
#include "broker/broker.h"
#include "broker/conversations.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mpack.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A result being packed into its own buffer
typedef struct {
    msgpack_sbuffer buffer;
    msgpack_packer pk;
} s_result_t;

static void
s_result_init (s_result_t *result)
{
    msgpack_sbuffer_init (&result->buffer);
    msgpack_packer_init (&result->pk, &result->buffer, msgpack_sbuffer_write);
}

static void
s_result_send (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req,
               s_result_t *result)
{
    kf_broker_reply_ok (self, routing, routing_len, req->id, req->id_len, result->buffer.data,
                        result->buffer.size);
    msgpack_sbuffer_destroy (&result->buffer);
}

static void
s_reply_error (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req,
               const kf_error_t *err)
{
    self->counters.errors++;
    kf_broker_reply_error (self, routing, routing_len, req->id, req->id_len, err);
}

void
kf_method_user_login (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    kf_error_t err;
    const char *user_id;
    size_t user_len;
    kf_field_t fields [4];
    if (kf_param_str (req->params, "user_id", true, 128, &user_id, &user_len, &err)
    ||  kf_param_str (req->params, "name", false, 64, &fields [0].value, &fields [0].len, &err)
    ||  kf_param_str (req->params, "email", false, 128, &fields [1].value, &fields [1].len, &err)
    ||  kf_param_str (req->params, "mobile", false, 32, &fields [2].value, &fields [2].len, &err)
    ||  kf_param_str (req->params, "photo_url", false, 1024, &fields [3].value, &fields [3].len, &err))
        goto failed;
    if (fields [1].value && fields [1].len && !memchr (fields [1].value, '@', fields [1].len)) {
        kf_error_set (&err, KF_E_INVALID_PARAM, "params.email is not an email address");
        goto failed;
    }
    s_result_t r;
    s_result_init (&r);
    if (kf_conversations_login (self->conversations, user_id, user_len, fields, kf_now_ms (), &r.pk)) {
        msgpack_sbuffer_destroy (&r.buffer);
        kf_error_set (&err, KF_E_INTERNAL, "could not store the profile");
        goto failed;
    }
    s_result_send (self, routing, routing_len, req, &r);
    return;
failed:
    s_reply_error (self, routing, routing_len, req, &err);
}

void
kf_method_user_logout (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    kf_error_t err;
    const char *user_id;
    size_t user_len;
    if (kf_param_str (req->params, "user_id", true, 128, &user_id, &user_len, &err))
        goto failed;
    int rc = kf_conversations_logout (self->conversations, user_id, user_len, kf_now_ms ());
    if (rc != 1) {
        kf_error_set (&err, rc == 0 ? KF_E_NOT_FOUND : KF_E_INTERNAL, "user %.*s %s", (int) user_len,
                      user_id, rc == 0 ? "never logged in" : "could not be updated");
        goto failed;
    }
    s_result_t r;
    s_result_init (&r);
    msgpack_pack_map (&r.pk, 2);
    kf_mp_pack_cstr (&r.pk, "user_id");
    kf_mp_pack_str (&r.pk, user_id, user_len);
    kf_mp_pack_kv_bool (&r.pk, "is_logged_in", false);
    s_result_send (self, routing, routing_len, req, &r);
    return;
failed:
    s_reply_error (self, routing, routing_len, req, &err);
}

void
kf_method_conversations_list (kf_broker_t *self, const char *routing, size_t routing_len,
                              kf_request_t *req)
{
    kf_error_t err;
    const char *user_id, *last_id;
    size_t user_len, last_len;
    int64_t limit;
    if (kf_param_str (req->params, "user_id", true, 128, &user_id, &user_len, &err)
    ||  kf_param_str (req->params, "last_id", false, 64, &last_id, &last_len, &err)
    ||  kf_param_int (req->params, "limit", 1, 100, 20, &limit, &err))
        goto failed;
    s_result_t r;
    s_result_init (&r);
    int rc = kf_conversations_list_pack (self->conversations, user_id, user_len, limit,
                                         last_id && last_len ? last_id : NULL, last_len, &r.pk);
    if (rc) {
        msgpack_sbuffer_destroy (&r.buffer);
        kf_error_set (&err, rc == 1 ? KF_E_NOT_FOUND : KF_E_INTERNAL, rc == 1
                      ? "last_id %.*s is not a conversation of this user" : "could not read the list%.*s",
                      rc == 1 ? (int) last_len : 0, rc == 1 ? last_id : "");
        goto failed;
    }
    s_result_send (self, routing, routing_len, req, &r);
    return;
failed:
    s_reply_error (self, routing, routing_len, req, &err);
}

//  The session a conversation method names, with the ownership rule; NULL with `err` set
static kf_session_t *
s_conversation (kf_broker_t *self, kf_request_t *req, kf_error_t *err)
{
    const char *id, *user_id;
    size_t id_len, user_len;
    if (kf_param_str (req->params, "session_id", true, 64, &id, &id_len, err)
    ||  kf_param_str (req->params, "user_id", false, 128, &user_id, &user_len, err))
        return NULL;
    kf_session_t *session = kf_sessions_find (self->sessions, id, id_len, user_id, user_len);
    if (!session)
        kf_error_set (err, KF_E_NOT_FOUND, "conversation %.*s does not exist", (int) id_len, id);
    return session;
}

void
kf_method_conversations_rename (kf_broker_t *self, const char *routing, size_t routing_len,
                                kf_request_t *req)
{
    kf_error_t err;
    const char *name;
    size_t name_len;
    bool is_auto;
    char *generated = NULL;
    kf_session_t *session = s_conversation (self, req, &err);
    if (!session
    ||  kf_param_str (req->params, "name", false, 100, &name, &name_len, &err)
    ||  kf_param_bool (req->params, "auto_generate", false, &is_auto, &err))
        goto failed;
    if (!is_auto == !(name && name_len)) {
        kf_error_set (&err, !is_auto ? KF_E_MISSING_ARGUMENT : KF_E_INVALID_PARAM,
                      "give either params.name or params.auto_generate: true");
        goto failed;
    }
    if (is_auto) {
        //  From the first question, already stored: no worker, no upstream, no wait
        generated = kf_conversations_auto_name (self->conversations, session->id);
        if (!generated) {
            kf_error_set (&err, KF_E_CONFLICT, "the conversation has no question to be named after yet");
            goto failed;
        }
        name = generated;
        name_len = strlen (generated);
    }
    if (kf_conversations_rename (self->conversations, session->id, name, name_len)) {
        kf_error_set (&err, KF_E_INTERNAL, "could not store the name");
        goto failed;
    }
    s_result_t r;
    s_result_init (&r);
    msgpack_pack_map (&r.pk, 2);
    kf_mp_pack_kv_str (&r.pk, "session_id", session->id);
    kf_mp_pack_cstr (&r.pk, "name");
    kf_mp_pack_str (&r.pk, name, name_len);
    s_result_send (self, routing, routing_len, req, &r);
    free (generated);
    return;
failed:
    free (generated);
    s_reply_error (self, routing, routing_len, req, &err);
}

void
kf_method_conversations_delete (kf_broker_t *self, const char *routing, size_t routing_len,
                                kf_request_t *req)
{
    kf_error_t err;
    kf_session_t *session = s_conversation (self, req, &err);
    if (!session)
        goto failed;
    if (kf_conversations_delete (self->conversations, session->id, kf_now_ms ())) {
        kf_error_set (&err, KF_E_INTERNAL, "could not delete the conversation");
        goto failed;
    }
    s_result_t r;
    s_result_init (&r);
    msgpack_pack_map (&r.pk, 2);
    kf_mp_pack_kv_str (&r.pk, "session_id", session->id);
    kf_mp_pack_kv_bool (&r.pk, "deleted", true);
    //  Gone from every method from now on; a message in flight still completes, unseen
    kf_sessions_hide (self->sessions, session);
    s_result_send (self, routing, routing_len, req, &r);
    return;
failed:
    s_reply_error (self, routing, routing_len, req, &err);
}
