/*  tickets.c - tickets in SQLite: the checks of their fields (common/ticket_types.h), numbering
    in China time, the confirmation text and form_show card a chat answers with, the list and the
    status changes. */
#include "broker/tickets.h"
#include "common/clock.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include <assert.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_CHINA_OFFSET_S (8 * 3600)     //  China has no daylight saving time: UTC+8 all year
#define S_COLUMNS "id, ticket_no, bot_id, type, fields, status, source, session_id, user_id," \
                  " message_id, created_at, updated_at"

//  --- Formats ---------------------------------------------------------------------------------

static void
s_china_time (int64_t created_ms, struct tm *tm)
{
    time_t seconds = (time_t) (created_ms / 1000) + S_CHINA_OFFSET_S;
    gmtime_r (&seconds, tm);
}

char *
kf_ticket_no_format (int64_t id, int64_t created_ms, char *out)
{
    struct tm tm;
    char day [16];
    s_china_time (created_ms, &tm);
    strftime (day, sizeof day, "%Y%m%d", &tm);
    snprintf (out, KF_TICKET_NO_MAX, "T%.8s%06lld", day, (long long) id);
    return out;
}

char *
kf_ticket_time_format (int64_t created_ms, char *out)
{
    struct tm tm;
    s_china_time (created_ms, &tm);
    if (strftime (out, 20, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        *out = 0;
    return out;
}

const char *
kf_ticket_status_label (const char *status)
{
    return strcmp (status, "open") == 0 ? "待处理"
         : strcmp (status, "processing") == 0 ? "处理中"
         : strcmp (status, "closed") == 0 ? "已关闭" : status;
}

//  --- Checks ----------------------------------------------------------------------------------

//  Without the ASCII spaces around it
static void
s_trim (const char **s, size_t *len)
{
    while (*len && strchr (" \t\r\n", **s))
        (*s)++, (*len)--;
    while (*len && strchr (" \t\r\n", (*s) [*len - 1]))
        (*len)--;
}

//  "address, phone, description": the fields of `type`, for messages
static const char *
s_field_list (const kf_ticket_type_t *type, char *out, size_t size)
{
    *out = 0;
    for (int i = 0; i < type->field_count; i++)
        snprintf (out + strlen (out), size - strlen (out), "%s%s", i ? ", " : "", type->fields [i]);
    return out;
}

//  Checks one value of field `field` named in messages by `where`.`field`
static int
s_value_check (const kf_ticket_field_t *field, const msgpack_object *value, const char *where,
               kf_error_t *err)
{
    if (value->type != MSGPACK_OBJECT_STR)
        return kf_error_set (err, KF_E_INVALID_PARAM, "%s.%s must be a string", where, field->name);
    const char *s = value->via.str.ptr;
    size_t len = value->via.str.size;
    if (!kf_utf8_is_valid (s, len))
        return kf_error_set (err, KF_E_INVALID_UTF8, "%s.%s is not valid UTF-8", where,
                             field->name);
    s_trim (&s, &len);
    if (len == 0)
        return kf_error_set (err, KF_E_MISSING_ARGUMENT, "%s.%s must not be empty", where,
                             field->name);
    size_t chars = kf_utf8_count (s, len);
    if ((int) chars > field->max_chars)
        return kf_error_set (err, KF_E_TOO_LARGE, "%s.%s is longer than %d characters", where,
                             field->name, field->max_chars);
    const char *reason = kf_ticket_field_check (field, s, len);
    if (reason)
        return kf_error_set (err, KF_E_INVALID_PARAM, "%s.%s %s", where, field->name, reason);
    return 0;
}

const kf_ticket_type_t *
kf_tickets_check (const char *type_name, size_t type_len, const msgpack_object *fields,
                  const char *where, kf_error_t *err)
{
    const kf_ticket_type_t *type = kf_ticket_type_find (type_name, type_len);
    if (!type) {
        char names [128] = "";
        for (int i = 0; kf_ticket_type_at (i); i++)
            snprintf (names + strlen (names), sizeof names - strlen (names), "%s%s", i ? ", " : "",
                      kf_ticket_type_at (i)->type);
        kf_error_set (err, KF_E_INVALID_PARAM, "the ticket type must be one of %s", names);
        return NULL;
    }
    if (!fields || fields->type != MSGPACK_OBJECT_MAP) {
        kf_error_set (err, KF_E_INVALID_PARAM, "%s must be a map of the ticket's fields", where);
        return NULL;
    }
    char list [128];
    for (uint32_t i = 0; i < fields->via.map.size; i++) {
        const msgpack_object *key = &fields->via.map.ptr [i].key;
        const msgpack_object *value = &fields->via.map.ptr [i].val;
        if (key->type != MSGPACK_OBJECT_STR) {
            kf_error_set (err, KF_E_INVALID_PARAM, "%s has a key that is not a string", where);
            return NULL;
        }
        if (kf_mp_str_eq_key (key, "type")) {
            if (value->type != MSGPACK_OBJECT_STR || value->via.str.size != type_len
            ||  memcmp (value->via.str.ptr, type_name, type_len) != 0) {
                kf_error_set (err, KF_E_INVALID_PARAM, "%s.type differs from the ticket's type",
                              where);
                return NULL;
            }
            continue;
        }
        const kf_ticket_field_t *field = kf_ticket_field_find (key->via.str.ptr, key->via.str.size);
        if (!field || !kf_ticket_type_needs (type, field->name)) {
            kf_error_set (err, KF_E_INVALID_PARAM, "%s.%.*s is not a field of a %s ticket (%s)",
                          where, (int) key->via.str.size, key->via.str.ptr, type->type,
                          s_field_list (type, list, sizeof list));
            return NULL;
        }
        if (s_value_check (field, value, where, err))
            return NULL;
    }
    for (int i = 0; i < type->field_count; i++)
        if (!kf_mp_get (fields, type->fields [i])) {
            kf_error_set (err, KF_E_MISSING_ARGUMENT, "%s.%s is required for a %s ticket (%s)",
                          where, type->fields [i], type->type,
                          s_field_list (type, list, sizeof list));
            return NULL;
        }
    return type;
}

//  --- Rows ------------------------------------------------------------------------------------

static void
s_pack_row (void *arg, sqlite3_stmt *stmt, msgpack_packer *pk)
{
    (void) arg;
    msgpack_pack_map (pk, 12);
    kf_mp_pack_kv_int (pk, "id", sqlite3_column_int64 (stmt, 0));
    kf_mp_pack_kv_str (pk, "ticket_no", (const char *) sqlite3_column_text (stmt, 1));
    kf_mp_pack_kv_str (pk, "bot_id", (const char *) sqlite3_column_text (stmt, 2));
    kf_mp_pack_kv_str (pk, "type", (const char *) sqlite3_column_text (stmt, 3));
    kf_mp_pack_cstr (pk, "fields");
    kf_json_pack_text (pk, (const char *) sqlite3_column_text (stmt, 4));
    kf_mp_pack_kv_str (pk, "status", (const char *) sqlite3_column_text (stmt, 5));
    kf_mp_pack_kv_str (pk, "source", (const char *) sqlite3_column_text (stmt, 6));
    kf_mp_pack_kv_str (pk, "session_id", (const char *) sqlite3_column_text (stmt, 7));
    kf_mp_pack_kv_str (pk, "user_id", (const char *) sqlite3_column_text (stmt, 8));
    kf_mp_pack_cstr (pk, "message_id");
    if (sqlite3_column_type (stmt, 9) == SQLITE_NULL)
        msgpack_pack_nil (pk);
    else
        msgpack_pack_int64 (pk, sqlite3_column_int64 (stmt, 9));
    kf_mp_pack_kv_int (pk, "created_at", sqlite3_column_int64 (stmt, 10));
    kf_mp_pack_kv_int (pk, "updated_at", sqlite3_column_int64 (stmt, 11));
}

//  Packs ticket `id`. Returns 1, 0 when absent, -1 on error
static int
s_pack_one (kf_store_t *store, int64_t id, msgpack_packer *pk)
{
    sqlite3_stmt *stmt = kf_store_statement (store, "SELECT " S_COLUMNS " FROM tickets WHERE id = ?");
    if (!stmt)
        return -1;
    sqlite3_bind_int64 (stmt, 1, id);
    int rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW)
        s_pack_row (NULL, stmt, pk);
    sqlite3_finalize (stmt);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

//  The fields of a checked ticket as JSON, in the order its type asks for them, values trimmed
static char *
s_fields_json (const kf_ticket_type_t *type, const msgpack_object *fields)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, type->field_count);
    for (int i = 0; i < type->field_count; i++) {
        const msgpack_object *value = kf_mp_get (fields, type->fields [i]);
        const char *s = value->via.str.ptr;
        size_t len = value->via.str.size;
        s_trim (&s, &len);
        kf_mp_pack_cstr (&pk, type->fields [i]);
        kf_mp_pack_str (&pk, s, len);
    }
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    msgpack_unpack_next (&unpacked, buffer.data, buffer.size, NULL);
    char *json = kf_json_from_msgpack (&unpacked.data);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&buffer);
    return json;
}

//  The form_show card of a new ticket (PROTOCOL.md 12.4.5 and 16)
static void
s_pack_card (msgpack_packer *pk, const char *ticket_no, int64_t created_ms,
             const kf_ticket_type_t *type, const msgpack_object *fields)
{
    char when [20];
    msgpack_pack_map (pk, 2);
    kf_mp_pack_kv_str (pk, "title", "工单已创建");
    kf_mp_pack_cstr (pk, "params");
    msgpack_pack_array (pk, 4 + type->field_count);
    const char *rows [3][2] = {
        { "编号", ticket_no }, { "创建时间", kf_ticket_time_format (created_ms, when) },
        { "工单类型", type->type }
    };
    for (int i = 0; i < 3; i++) {
        msgpack_pack_map (pk, 2);
        kf_mp_pack_kv_str (pk, "key", rows [i][0]);
        kf_mp_pack_kv_str (pk, "value", rows [i][1]);
    }
    for (int i = 0; i < type->field_count; i++) {
        const msgpack_object *value = kf_mp_get (fields, type->fields [i]);
        const char *s = value->via.str.ptr;
        size_t len = value->via.str.size;
        s_trim (&s, &len);
        msgpack_pack_map (pk, 2);
        kf_mp_pack_kv_str (pk, "key", kf_ticket_field_find (type->fields [i],
                                                            strlen (type->fields [i]))->label);
        kf_mp_pack_cstr (pk, "value");
        kf_mp_pack_str (pk, s, len);
    }
    msgpack_pack_map (pk, 2);
    kf_mp_pack_kv_str (pk, "key", "状态");
    kf_mp_pack_kv_str (pk, "value", kf_ticket_status_label ("open"));
}

static void
s_made_init (kf_ticket_made_t *made)
{
    made->reply = NULL;
    msgpack_sbuffer_init (&made->content);
    msgpack_sbuffer_init (&made->ticket);
}

void
kf_ticket_made_free (kf_ticket_made_t *made)
{
    free (made->reply);
    msgpack_sbuffer_destroy (&made->content);
    msgpack_sbuffer_destroy (&made->ticket);
    s_made_init (made);
}

//  Inserts the row: its id is the next one (the broker is the only writer, and the batch it
//  joins is the only open transaction), so its number is known before the insert
static int
s_insert (kf_store_t *store, const kf_ticket_origin_t *origin, const kf_ticket_type_t *type,
          const char *fields_json, int64_t created_ms, int64_t *id, char *ticket_no)
{
    sqlite3_stmt *next = kf_store_statement (store, "SELECT coalesce (max (id), 0) + 1 FROM tickets");
    if (!next || sqlite3_step (next) != SQLITE_ROW) {
        sqlite3_finalize (next);
        return -1;
    }
    *id = sqlite3_column_int64 (next, 0);
    sqlite3_finalize (next);
    kf_ticket_no_format (*id, created_ms, ticket_no);
    sqlite3_stmt *stmt = kf_store_statement (store,
        "INSERT INTO tickets (id, ticket_no, bot_id, session_id, user_id, message_id, type,"
        " fields, status, source, created_at, updated_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open', ?9, ?10, ?10)");
    if (!stmt)
        return -1;
    sqlite3_bind_int64 (stmt, 1, *id);
    sqlite3_bind_text (stmt, 2, ticket_no, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 3, origin->bot_id, -1, SQLITE_TRANSIENT);
    if (origin->session_id)
        sqlite3_bind_text (stmt, 4, origin->session_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 5, origin->user_id ? origin->user_id : "", -1, SQLITE_TRANSIENT);
    if (origin->message_id > 0)
        sqlite3_bind_int64 (stmt, 6, origin->message_id);
    sqlite3_bind_text (stmt, 7, type->type, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 8, fields_json, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 9, origin->source, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64 (stmt, 10, created_ms);
    int rc = kf_store_write_step (store, stmt);
    sqlite3_finalize (stmt);
    return rc;
}

int
kf_tickets_create (kf_store_t *store, const kf_ticket_origin_t *origin, const char *type_name,
                   size_t type_len, const msgpack_object *fields, const char *where,
                   kf_ticket_made_t *made, kf_error_t *err)
{
    s_made_init (made);
    const kf_ticket_type_t *type = kf_tickets_check (type_name, type_len, fields, where, err);
    if (!type)
        return -1;
    char *fields_json = s_fields_json (type, fields);
    int64_t created_ms = kf_now_ms (), id = 0;
    char ticket_no [KF_TICKET_NO_MAX];
    int rc = s_insert (store, origin, type, fields_json, created_ms, &id, ticket_no);
    free (fields_json);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &made->ticket, msgpack_sbuffer_write);
    if (rc == 0 && s_pack_one (store, id, &pk) != 1)
        rc = -1;
    if (rc) {
        kf_ticket_made_free (made);
        return kf_error_set (err, KF_E_INTERNAL, "could not store the ticket");
    }
    msgpack_packer_init (&pk, &made->content, msgpack_sbuffer_write);
    s_pack_card (&pk, ticket_no, created_ms, type, fields);
    char reply [256];
    snprintf (reply, sizeof reply, "您的%s工单已提交成功，工单编号：%s。工作人员会尽快与您联系。",
              type->type, ticket_no);
    made->reply = kf_strdup (reply);
    kf_info ("broker: ticket %s (%s) created for bot %s from %s", ticket_no, type->type,
             origin->bot_id, origin->source);
    return 0;
}

int
kf_tickets_from_chat (kf_broker_t *self, kf_session_t *session, int64_t message_id,
                      const msgpack_object *ticket, kf_ticket_made_t *made, kf_error_t *err)
{
    s_made_init (made);
    const char *type;
    size_t type_len;
    if (!ticket || ticket->type != MSGPACK_OBJECT_MAP
    ||  !kf_mp_str (kf_mp_get (ticket, "type"), &type, &type_len))
        return kf_error_set (err, KF_E_INVALID_PARAM, "ticket must be a map {type, fields}");
    kf_ticket_origin_t origin = {
        .bot_id = session->bot_id, .session_id = session->id, .user_id = session->user_id,
        .message_id = message_id, .source = "chat"
    };
    return kf_tickets_create (self->store, &origin, type, type_len, kf_mp_get (ticket, "fields"),
                              "ticket.fields", made, err);
}

//  --- Reads and status ------------------------------------------------------------------------

int
kf_tickets_query_pack (kf_store_t *store, const kf_ticket_filter_t *filter, msgpack_packer *pk)
{
    static const char *columns [6] = { "bot_id", "session_id", "user_id", "ticket_no", "type",
                                       "status" };
    const char *given [6] = { filter->bot_id, filter->session_id, filter->user_id,
                              filter->ticket_no, filter->type, filter->status };
    char where [256], sql [512];
    kf_store_where (where, sizeof where, " FROM tickets WHERE 1", columns, given, 6);
    snprintf (sql, sizeof sql, "SELECT count(*)%s", where);
    sqlite3_stmt *count = kf_store_statement (store, sql);
    snprintf (sql, sizeof sql, "SELECT " S_COLUMNS "%s ORDER BY id DESC LIMIT ?7 OFFSET ?8", where);
    sqlite3_stmt *rows = count ? kf_store_statement (store, sql) : NULL;
    if (!rows) {
        sqlite3_finalize (count);
        return -1;
    }
    sqlite3_stmt *both [2] = { count, rows };
    for (int i = 0; i < 2; i++) {
        kf_store_bind_text (both [i], 1, filter->bot_id, filter->bot_len);
        kf_store_bind_text (both [i], 2, filter->session_id, filter->session_len);
        kf_store_bind_text (both [i], 3, filter->user_id, filter->user_len);
        kf_store_bind_text (both [i], 4, filter->ticket_no, filter->ticket_no_len);
        kf_store_bind_text (both [i], 5, filter->type, filter->type_len);
        kf_store_bind_text (both [i], 6, filter->status, filter->status_len);
    }
    sqlite3_bind_int64 (rows, 7, filter->page_size);
    sqlite3_bind_int64 (rows, 8, (filter->page - 1) * filter->page_size);
    int64_t total = sqlite3_step (count) == SQLITE_ROW ? sqlite3_column_int64 (count, 0) : -1;
    sqlite3_finalize (count);
    return kf_store_pack_page (rows, s_pack_row, NULL, total, filter->page, filter->page_size, 0, pk);
}

int64_t
kf_tickets_find_id (kf_store_t *store, const char *ticket_no, size_t len)
{
    sqlite3_stmt *find = kf_store_statement (store, "SELECT id FROM tickets WHERE ticket_no = ?");
    if (!find)
        return -1;
    sqlite3_bind_text (find, 1, ticket_no, (int) len, SQLITE_TRANSIENT);
    int rc = sqlite3_step (find);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64 (find, 0) : rc == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize (find);
    return id;
}

int
kf_tickets_set_status (kf_store_t *store, int64_t id, const char *ticket_no, size_t no_len,
                       const char *status, msgpack_packer *pk)
{
    sqlite3_stmt *find = kf_store_statement (store, "SELECT id FROM tickets"
                                           " WHERE id = ?1 OR ticket_no = ?2");
    if (!find)
        return -1;
    sqlite3_bind_int64 (find, 1, ticket_no ? 0 : id);
    kf_store_bind_text (find, 2, ticket_no, no_len);
    int rc = sqlite3_step (find);
    id = rc == SQLITE_ROW ? sqlite3_column_int64 (find, 0) : 0;
    sqlite3_finalize (find);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? 0 : -1;
    sqlite3_stmt *stmt = kf_store_statement (store, "UPDATE tickets SET status = ?2, updated_at = ?3"
                                           " WHERE id = ?1 AND status <> ?2");
    if (!stmt)
        return -1;
    sqlite3_bind_int64 (stmt, 1, id);
    sqlite3_bind_text (stmt, 2, status, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64 (stmt, 3, kf_now_ms ());
    rc = kf_store_write_step (store, stmt);
    sqlite3_finalize (stmt);
    return rc ? -1 : s_pack_one (store, id, pk);
}
