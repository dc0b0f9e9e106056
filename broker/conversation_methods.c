/*  conversation_methods.c - the client methods for a user's conversations and profile:
    user.login, user.get, user.logout, conversations.list, conversations.rename, conversations.delete,
    records.save (messages written elsewhere, imported into a conversation). */
#include "broker/broker.h"
#include "broker/conversations.h"
#include "broker/handoff.h"
#include "common/clock.h"
#include "common/json_codec.h"
#include "common/utf8.h"
#include "common/log.h"
#include "common/mpack.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    kf_result_t r;
    kf_result_init (&r);
    if (kf_conversations_login (self->conversations, user_id, user_len, fields, kf_now_ms (), &r.pk)) {
        msgpack_sbuffer_destroy (&r.buffer);
        kf_error_set (&err, KF_E_INTERNAL, "could not store the profile");
        goto failed;
    }
    kf_broker_send_result (self, routing, routing_len, req, &r);
    return;
failed:
    kf_broker_send_error (self, routing, routing_len, req, &err);
}

void
kf_method_user_get (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    kf_error_t err;
    const char *user_id;
    size_t user_len;
    if (kf_param_str (req->params, "user_id", true, 128, &user_id, &user_len, &err))
        goto failed;
    kf_result_t r;
    kf_result_init (&r);
    int rc = kf_conversations_profile_pack (self->conversations, user_id, user_len, &r.pk);
    if (rc == 1) {
        kf_broker_send_result (self, routing, routing_len, req, &r);
        return;
    }
    msgpack_sbuffer_destroy (&r.buffer);
    kf_error_set (&err, rc == 0 ? KF_E_NOT_FOUND : KF_E_INTERNAL, "user %.*s %s", (int) user_len,
                  user_id, rc == 0 ? "has no profile (user.login creates one)" : "could not be read");
failed:
    kf_broker_send_error (self, routing, routing_len, req, &err);
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
    kf_result_t r;
    kf_result_init (&r);
    msgpack_pack_map (&r.pk, 2);
    kf_mp_pack_cstr (&r.pk, "user_id");
    kf_mp_pack_str (&r.pk, user_id, user_len);
    kf_mp_pack_kv_bool (&r.pk, "is_logged_in", false);
    kf_broker_send_result (self, routing, routing_len, req, &r);
    return;
failed:
    kf_broker_send_error (self, routing, routing_len, req, &err);
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
    kf_result_t r;
    kf_result_init (&r);
    int rc = kf_conversations_list_pack (self->conversations, user_id, user_len, limit,
                                         last_id && last_len ? last_id : NULL, last_len, &r.pk);
    if (rc) {
        msgpack_sbuffer_destroy (&r.buffer);
        kf_error_set (&err, rc == 1 ? KF_E_NOT_FOUND : KF_E_INTERNAL, rc == 1
                      ? "last_id %.*s is not a conversation of this user" : "could not read the list%.*s",
                      rc == 1 ? (int) last_len : 0, rc == 1 ? last_id : "");
        goto failed;
    }
    kf_broker_send_result (self, routing, routing_len, req, &r);
    return;
failed:
    kf_broker_send_error (self, routing, routing_len, req, &err);
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
    kf_session_t *session = kf_broker_session_param (self, req, &err);
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
    kf_result_t r;
    kf_result_init (&r);
    msgpack_pack_map (&r.pk, 2);
    kf_mp_pack_kv_str (&r.pk, "session_id", session->id);
    kf_mp_pack_cstr (&r.pk, "name");
    kf_mp_pack_str (&r.pk, name, name_len);
    kf_broker_send_result (self, routing, routing_len, req, &r);
    free (generated);
    return;
failed:
    free (generated);
    kf_broker_send_error (self, routing, routing_len, req, &err);
}

void
kf_method_conversations_delete (kf_broker_t *self, const char *routing, size_t routing_len,
                                kf_request_t *req)
{
    kf_error_t err;
    kf_session_t *session = kf_broker_session_param (self, req, &err);
    if (!session)
        goto failed;
    if (kf_conversations_delete (self->conversations, session->id, kf_now_ms ())) {
        kf_error_set (&err, KF_E_INTERNAL, "could not delete the conversation");
        goto failed;
    }
    kf_handoff_close (self, session, kf_now_ms ());     //  Its open escalation, if any
    kf_result_t r;
    kf_result_init (&r);
    msgpack_pack_map (&r.pk, 2);
    kf_mp_pack_kv_str (&r.pk, "session_id", session->id);
    kf_mp_pack_kv_bool (&r.pk, "deleted", true);
    //  Gone from every method from now on; a message in flight still completes, unseen
    kf_sessions_hide (self->sessions, session);
    kf_broker_send_result (self, routing, routing_len, req, &r);
    return;
failed:
    kf_broker_send_error (self, routing, routing_len, req, &err);
}

static bool
s_is_url (const msgpack_object *obj)
{
    return obj && obj->type == MSGPACK_OBJECT_STR && obj->via.str.size <= 1024
        && ((obj->via.str.size > 7 && memcmp (obj->via.str.ptr, "http://", 7) == 0)
         || (obj->via.str.size > 8 && memcmp (obj->via.str.ptr, "https://", 8) == 0))
        && kf_utf8_is_valid (obj->via.str.ptr, obj->via.str.size);
}

//  Checks one record and fills `row` (content of images re-encoded as JSON into *json, which the
//  caller frees). Returns 0, or -1 with `err` set.
static int
s_check_record (const msgpack_object *record, kf_record_row_t *row, char **json, kf_error_t *err)
{
    const char *role, *type;
    size_t role_len, type_len;
    int64_t send_time;
    *json = NULL;
    if (!record || record->type != MSGPACK_OBJECT_MAP)
        return kf_error_set (err, KF_E_INVALID_PARAM, "a record must be a map");
    if (kf_param_str (record, "record_id", true, 64, &row->record_id, &row->record_id_len, err)
    ||  kf_param_str (record, "role", true, 16, &role, &role_len, err)
    ||  kf_param_str (record, "type", false, 16, &type, &type_len, err)
    ||  kf_param_str (record, "sender_id", false, 128, &row->sender_id, &row->sender_id_len, err)
    ||  kf_param_str (record, "title", false, 100, &row->title, &row->title_len, err)
    ||  kf_param_int (record, "send_time", 0, 9007199254740991LL, -1, &send_time, err))
        return -1;
    if (send_time < 0)
        return kf_error_set (err, KF_E_MISSING_ARGUMENT, "send_time (Unix ms) is required");
    row->send_time = send_time;
    if (role_len == 4 && memcmp (role, "user", 4) == 0)
        row->role = "user";
    else
    if (role_len == 5 && memcmp (role, "agent", 5) == 0)
        row->role = "agent";
    else
        return kf_error_set (err, KF_E_INVALID_PARAM, "role must be user or agent");
    row->type = !type || (type_len == 4 && memcmp (type, "text", 4) == 0) ? "text"
              : type_len == 5 && memcmp (type, "image", 5) == 0 ? "image"
              : type_len == 5 && memcmp (type, "voice", 5) == 0 ? "voice" : NULL;
    if (!row->type)
        return kf_error_set (err, KF_E_INVALID_PARAM, "type must be text, image or voice");
    const msgpack_object *content = kf_mp_get (record, "content");
    if (strcmp (row->type, "text") == 0)
        return kf_param_str (record, "content", true, 4000, &row->content, &row->content_len, err);
    if (strcmp (row->type, "voice") == 0) {
        if (!s_is_url (content))
            return kf_error_set (err, KF_E_INVALID_PARAM, "a voice record's content is its http(s) URL");
        row->content = content->via.str.ptr;
        row->content_len = content->via.str.size;
        return 0;
    }
    if (!content || content->type != MSGPACK_OBJECT_ARRAY || content->via.array.size == 0
    ||  content->via.array.size > 9)
        return kf_error_set (err, KF_E_INVALID_PARAM, "an image record's content is a list of 1 to 9 URLs");
    for (uint32_t i = 0; i < content->via.array.size; i++)
        if (!s_is_url (&content->via.array.ptr [i]))
            return kf_error_set (err, KF_E_INVALID_PARAM, "content[%u] is not an http(s) URL", i);
    *json = kf_json_from_msgpack (content);
    row->content = *json;
    row->content_len = strlen (*json);
    return 0;
}

void
kf_method_records_save (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    kf_error_t err;
    kf_session_t *session = kf_broker_session_param (self, req, &err);
    const msgpack_object *records = kf_mp_get (req->params, "records");
    if (!session)
        goto failed;
    if (!records || records->type == MSGPACK_OBJECT_NIL) {
        kf_error_set (&err, KF_E_MISSING_ARGUMENT, "params.records is required");
        goto failed;
    }
    if (records->type != MSGPACK_OBJECT_ARRAY || records->via.array.size == 0) {
        kf_error_set (&err, KF_E_INVALID_PARAM, "params.records must be a non-empty list");
        goto failed;
    }
    if (records->via.array.size > 500) {
        kf_error_set (&err, KF_E_TOO_LARGE, "params.records holds at most 500 records");
        goto failed;
    }
    kf_result_t r;
    kf_result_init (&r);
    uint32_t count = records->via.array.size, created = 0, duplicates = 0;
    msgpack_pack_map (&r.pk, 5);
    kf_mp_pack_cstr (&r.pk, "data");
    msgpack_pack_array (&r.pk, count);
    for (uint32_t i = 0; i < count; i++) {
        kf_record_row_t row = { .session_id = session->id };
        char *json = NULL;
        kf_error_t record_err;
        int64_t message_id = 0;
        int rc = s_check_record (&records->via.array.ptr [i], &row, &json, &record_err);
        if (rc == 0 && (rc = kf_store_record_put (self->store, &row, &message_id)) < 0)
            kf_error_set (&record_err, KF_E_INTERNAL, "could not store the record");
        if (rc == 1 && strcmp (row.type, "text") == 0)
            kf_session_remember (session, row.role, row.content, row.content_len);
        created += rc == 1;
        duplicates += rc == 2;
        msgpack_pack_map (&r.pk, 3);
        kf_mp_pack_kv_int (&r.pk, "index", i);
        if (rc > 0) {
            kf_mp_pack_kv_str (&r.pk, "status", rc == 1 ? "created" : "duplicate");
            kf_mp_pack_kv_int (&r.pk, "message_id", message_id);
        }
        else {
            kf_mp_pack_kv_str (&r.pk, "status", "rejected");
            kf_mp_pack_cstr (&r.pk, "error");
            kf_error_pack (&r.pk, &record_err);
        }
        free (json);
    }
    kf_mp_pack_kv_bool (&r.pk, "has_more", false);
    kf_mp_pack_kv_int (&r.pk, "total", count);
    kf_mp_pack_kv_int (&r.pk, "created", created);
    kf_mp_pack_kv_int (&r.pk, "duplicates", duplicates);
    kf_broker_send_result (self, routing, routing_len, req, &r);
    return;
failed:
    kf_broker_send_error (self, routing, routing_len, req, &err);
}
