/*  chitchat_store.c - a bot's small-talk table in SQLite: checks, the copy of the default bot's
    rows on a bot's first edit (with the ids of inherited rows mapped to their copies), and the
    queries behind chitchat.create/query/update/delete. */
#include "broker/chitchat_store.h"
#include "broker/intents.h"
#include "common/clock.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define S_SAVEPOINT "chitchat_edit"

static int64_t
s_count (kf_store_t *store, const char *bot_id)
{
    return kf_store_int64 (store, "SELECT count(*) FROM chitchat WHERE bot_id = ?1", bot_id, 0, 0);
}

//  The bot whose rows `bot_id` uses (itself, or "default" when it has none); NULL on error
static const char *
s_source (kf_store_t *store, const char *bot_id)
{
    return kf_store_rows_source (store, "chitchat", bot_id);
}

//  Copies the default bot's rows to `bot_id`, in their order. Returns 0 or -1
static int
s_adopt (kf_store_t *store, const char *bot_id)
{
    return kf_store_rows_adopt (store, "chitchat", "questions, reply", "updated_at", bot_id);
}

//  Where row `id` stands among the rows of `source` (0 first), -1 when it is not one of them,
//  -2 on a database error
static int64_t
s_position (kf_store_t *store, const char *source, int64_t id)
{
    int64_t is_row = kf_store_int64 (store, "SELECT 1 FROM chitchat WHERE bot_id = ?1 AND id = ?2",
                               source, id, 0);
    if (is_row <= 0)
        return is_row < 0 ? -2 : -1;
    int64_t position = kf_store_int64 (store, "SELECT count(*) FROM chitchat WHERE bot_id = ?1"
                                 " AND id < ?2", source, id, 0);
    return position < 0 ? -2 : position;
}

//  The id of the row at `position` among the rows of `bot_id`, 0 when none
static int64_t
s_at (kf_store_t *store, const char *bot_id, int64_t position)
{
    int64_t id = kf_store_int64 (store, "SELECT id FROM chitchat WHERE bot_id = ?1 ORDER BY id"
                           " LIMIT 1 OFFSET ?2", bot_id, position, 0);
    return id < 0 ? 0 : id;
}

//  Checks questions (required when creating) and reply; JSON of the questions into *questions
static int
s_fields_parse (const msgpack_object *params, bool is_create, char **questions,
                const char **reply, size_t *reply_len, kf_error_t *err)
{
    if (kf_text_list_json (params, "questions", is_create ? 1 : 0, KF_CHITCHAT_QUESTIONS_MAX,
                           KF_CHITCHAT_QUESTION_CHARS, questions, err))
        return -1;
    int rc = 0;
    if (*questions && strcmp (*questions, "[]") == 0)
        rc = kf_error_set (err, KF_E_INVALID_PARAM, "params.questions must hold at least 1 entry");
    else
    if (kf_param_str (params, "reply", is_create, KF_CHITCHAT_REPLY_CHARS, reply, reply_len, err))
        rc = -1;
    else
    if (*reply && *reply_len == 0)
        rc = kf_error_set (err, KF_E_MISSING_ARGUMENT, "params.reply must not be empty");
    if (rc) {
        free (*questions);
        *questions = NULL;
    }
    return rc;
}

//  --- Edits -----------------------------------------------------------------------------------

static int
s_create (kf_store_t *store, const char *bot_id, const char *questions, const char *reply,
          size_t reply_len, int64_t *id, kf_error_t *err)
{
    const char *source = s_source (store, bot_id);
    if (!source || (source != bot_id && s_adopt (store, bot_id)))
        return kf_error_set (err, KF_E_INTERNAL, "could not read or copy the chit-chat table");
    int64_t count = s_count (store, bot_id);
    if (count < 0)
        return kf_error_set (err, KF_E_INTERNAL, "could not read the chit-chat table");
    if (count >= KF_CHITCHAT_MAX)
        return kf_error_set (err, KF_E_TOO_LARGE, "bot %s has %d chit-chat rows, the most a bot"
                             " may have", bot_id, KF_CHITCHAT_MAX);
    sqlite3_stmt *stmt = kf_store_statement (store, "INSERT INTO chitchat (bot_id, questions, reply,"
                                           " updated_at) VALUES (?, ?, ?, ?)");
    if (stmt) {
        sqlite3_bind_text (stmt, 1, bot_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (stmt, 2, questions, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (stmt, 3, reply, (int) reply_len, SQLITE_TRANSIENT);
        sqlite3_bind_int64 (stmt, 4, kf_now_ms ());
    }
    if (kf_store_write_once (store, stmt))
        return kf_error_set (err, KF_E_INTERNAL, "could not store the chit-chat row");
    *id = sqlite3_last_insert_rowid (kf_store_db (store));
    return 0;
}

int
kf_chitchat_store_create (kf_store_t *store, const char *bot_id, const msgpack_object *params,
                    int64_t *id, kf_error_t *err)
{
    char *questions = NULL;
    const char *reply;
    size_t reply_len;
    if (s_fields_parse (params, true, &questions, &reply, &reply_len, err))
        return -1;
    int rc = kf_store_savepoint (store, S_SAVEPOINT);
    if (rc)
        kf_error_set (err, KF_E_INTERNAL, "could not open a transaction");
    else
        rc = kf_store_savepoint_end (store, S_SAVEPOINT, s_create (store, bot_id, questions, reply,
                                                                   reply_len, id, err));
    free (questions);
    return rc;
}

//  The row `given` of the rows `bot_id` uses, as a row of `bot_id` itself (copying the default's
//  first when it inherits): 1 with *id set, 0 when there is no such row, -1 on errors
static int
s_own_row (kf_store_t *store, const char *bot_id, int64_t given, int64_t *id)
{
    const char *source = s_source (store, bot_id);
    int64_t position = source ? s_position (store, source, given) : -2;
    if (position < 0)
        return position == -1 ? 0 : -1;
    if (source == bot_id) {
        *id = given;
        return 1;
    }
    if (s_adopt (store, bot_id))
        return -1;
    *id = s_at (store, bot_id, position);
    return *id > 0 ? 1 : -1;
}

static int
s_update (kf_store_t *store, const char *bot_id, int64_t given, const char *questions,
          const char *reply, size_t reply_len, int64_t *id, kf_error_t *err)
{
    int rc = s_own_row (store, bot_id, given, id);
    if (rc <= 0)
        return rc == 0 ? kf_error_set (err, KF_E_NOT_FOUND, "chit-chat row %lld does not exist in"
                                       " bot %s", (long long) given, bot_id)
                       : kf_error_set (err, KF_E_INTERNAL, "could not read or copy the chit-chat"
                                       " table");
    sqlite3_stmt *stmt = kf_store_statement (store, "UPDATE chitchat SET questions = coalesce (?2,"
        " questions), reply = coalesce (?3, reply), updated_at = ?4 WHERE id = ?1");
    if (stmt) {
        sqlite3_bind_int64 (stmt, 1, *id);
        if (questions)
            sqlite3_bind_text (stmt, 2, questions, -1, SQLITE_TRANSIENT);
        if (reply)
            sqlite3_bind_text (stmt, 3, reply, (int) reply_len, SQLITE_TRANSIENT);
        sqlite3_bind_int64 (stmt, 4, kf_now_ms ());
    }
    if (kf_store_write_once (store, stmt))
        return kf_error_set (err, KF_E_INTERNAL, "could not store the chit-chat row");
    return 0;
}

int
kf_chitchat_store_update (kf_store_t *store, const char *bot_id, const msgpack_object *params,
                    int64_t *id, kf_error_t *err)
{
    int64_t given;
    char *questions = NULL;
    const char *reply;
    size_t reply_len;
    const msgpack_object *id_obj = kf_mp_get (params, "id");
    if (!id_obj || id_obj->type == MSGPACK_OBJECT_NIL)
        return kf_error_set (err, KF_E_MISSING_ARGUMENT, "params.id is required");
    if (kf_param_int (params, "id", 1, INT64_MAX, 0, &given, err)
    ||  s_fields_parse (params, false, &questions, &reply, &reply_len, err))
        return -1;
    int rc = -1;
    if (!questions && !reply)
        kf_error_set (err, KF_E_INVALID_PARAM, "nothing to change: give questions or reply");
    else
    if (kf_store_savepoint (store, S_SAVEPOINT))
        kf_error_set (err, KF_E_INTERNAL, "could not open a transaction");
    else
        rc = kf_store_savepoint_end (store, S_SAVEPOINT, s_update (store, bot_id, given, questions,
                                                                   reply, reply_len, id, err));
    free (questions);
    return rc;
}

//  Deletes what it can of `ids`, packing the result. Returns how many, or -1 with `err`
static int
s_delete (kf_store_t *store, const char *bot_id, const msgpack_object *ids, msgpack_packer *pk,
          kf_error_t *err)
{
    const char *source = s_source (store, bot_id);
    if (!source)
        return kf_error_set (err, KF_E_INTERNAL, "could not read the chit-chat table");
    //  Positions first: they stay valid across the copy, which renumbers the rows
    int64_t positions [KF_CHITCHAT_QUESTIONS_MAX];
    uint32_t count = ids->via.array.size, found = 0;
    for (uint32_t i = 0; i < count; i++) {
        int64_t id = 0;
        kf_mp_int (&ids->via.array.ptr [i], &id);
        positions [i] = s_position (store, source, id);
        if (positions [i] < -1)
            return kf_error_set (err, KF_E_INTERNAL, "could not read the chit-chat table");
        found += positions [i] >= 0;
    }
    bool is_copy = source != bot_id && found > 0;
    if (is_copy && s_adopt (store, bot_id))
        return kf_error_set (err, KF_E_INTERNAL, "could not copy the chit-chat table");
    //  Row ids before deleting any, since deleting shifts positions
    int64_t rows [KF_CHITCHAT_QUESTIONS_MAX];
    for (uint32_t i = 0; i < count; i++) {
        rows [i] = 0;
        kf_mp_int (&ids->via.array.ptr [i], &rows [i]);
        if (is_copy && positions [i] >= 0)
            rows [i] = s_at (store, bot_id, positions [i]);
    }
    int deleted = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (positions [i] < 0)
            continue;
        sqlite3_stmt *stmt = kf_store_statement (store, "DELETE FROM chitchat WHERE id = ? AND bot_id = ?");
        if (stmt) {
            sqlite3_bind_int64 (stmt, 1, rows [i]);
            sqlite3_bind_text (stmt, 2, bot_id, -1, SQLITE_TRANSIENT);
        }
        if (kf_store_write_once (store, stmt))
            return kf_error_set (err, KF_E_INTERNAL, "could not delete the chit-chat row");
        deleted += sqlite3_changes (kf_store_db (store));
    }
    const char *now = s_source (store, bot_id);
    msgpack_pack_map (pk, 3);
    kf_mp_pack_kv_int (pk, "deleted", deleted);
    kf_mp_pack_cstr (pk, "not_found");
    msgpack_pack_array (pk, count - found);
    for (uint32_t i = 0; i < count; i++)
        if (positions [i] < 0)
            msgpack_pack_object (pk, ids->via.array.ptr [i]);
    kf_mp_pack_kv_bool (pk, "inherited", now && strcmp (now, bot_id) != 0);
    return deleted;
}

int
kf_chitchat_store_delete (kf_store_t *store, const char *bot_id, const msgpack_object *params,
                    msgpack_packer *pk, kf_error_t *err)
{
    const msgpack_object *ids = kf_mp_get (params, "ids");
    if (!ids || ids->type == MSGPACK_OBJECT_NIL)
        return kf_error_set (err, KF_E_MISSING_ARGUMENT, "params.ids is required");
    if (ids->type != MSGPACK_OBJECT_ARRAY || ids->via.array.size == 0)
        return kf_error_set (err, KF_E_INVALID_PARAM, "params.ids must be a non-empty list");
    if (ids->via.array.size > KF_CHITCHAT_QUESTIONS_MAX)
        return kf_error_set (err, KF_E_TOO_LARGE, "params.ids holds at most %d entries",
                             KF_CHITCHAT_QUESTIONS_MAX);
    for (uint32_t i = 0; i < ids->via.array.size; i++) {
        int64_t id;
        if (!kf_mp_int (&ids->via.array.ptr [i], &id) || id < 1)
            return kf_error_set (err, KF_E_INVALID_PARAM, "params.ids[%u] must be a positive"
                                 " integer", i);
    }
    if (kf_store_savepoint (store, S_SAVEPOINT))
        return kf_error_set (err, KF_E_INTERNAL, "could not open a transaction");
    return kf_store_savepoint_end (store, S_SAVEPOINT, s_delete (store, bot_id, ids, pk, err));
}

//  --- Reads -----------------------------------------------------------------------------------

static void
s_pack_row (void *arg, sqlite3_stmt *stmt, msgpack_packer *pk)
{
    (void) arg;
    msgpack_pack_map (pk, 5);
    kf_mp_pack_kv_int (pk, "id", sqlite3_column_int64 (stmt, 0));
    kf_mp_pack_kv_str (pk, "bot_id", (const char *) sqlite3_column_text (stmt, 1));
    kf_mp_pack_cstr (pk, "questions");
    kf_json_pack_text (pk, (const char *) sqlite3_column_text (stmt, 2));
    kf_mp_pack_kv_str (pk, "reply", (const char *) sqlite3_column_text (stmt, 3));
    kf_mp_pack_kv_int (pk, "updated_at", sqlite3_column_int64 (stmt, 4));
}

int
kf_chitchat_store_pack_one (kf_store_t *store, int64_t id, msgpack_packer *pk)
{
    sqlite3_stmt *stmt = kf_store_statement (store, "SELECT id, bot_id, questions, reply, updated_at"
                                           " FROM chitchat WHERE id = ?");
    if (!stmt)
        return -1;
    sqlite3_bind_int64 (stmt, 1, id);
    int rc = sqlite3_step (stmt) == SQLITE_ROW ? 0 : -1;
    if (rc == 0)
        s_pack_row (NULL, stmt, pk);
    sqlite3_finalize (stmt);
    return rc;
}

int
kf_chitchat_store_query_pack (kf_store_t *store, const char *bot_id, const char *keyword,
                        size_t keyword_len, int64_t page, int64_t page_size, msgpack_packer *pk)
{
    #define S_WHERE " FROM chitchat WHERE bot_id = ?1" \
                    " AND (?2 IS NULL OR instr (questions, ?2) > 0 OR instr (reply, ?2) > 0)"
    const char *source = s_source (store, bot_id);
    sqlite3_stmt *count = source ? kf_store_statement (store, "SELECT count(*)" S_WHERE) : NULL;
    sqlite3_stmt *rows = count ? kf_store_statement (store, "SELECT id, bot_id, questions, reply,"
                                            " updated_at" S_WHERE " ORDER BY id LIMIT ?3 OFFSET ?4")
                               : NULL;
    #undef S_WHERE
    if (!rows) {
        sqlite3_finalize (count);
        return -1;
    }
    sqlite3_stmt *both [2] = { count, rows };
    for (int i = 0; i < 2; i++) {
        sqlite3_bind_text (both [i], 1, source, -1, SQLITE_TRANSIENT);
        if (keyword)
            sqlite3_bind_text (both [i], 2, keyword, (int) keyword_len, SQLITE_TRANSIENT);
    }
    sqlite3_bind_int64 (rows, 3, page_size);
    sqlite3_bind_int64 (rows, 4, (page - 1) * page_size);
    int64_t total = sqlite3_step (count) == SQLITE_ROW ? sqlite3_column_int64 (count, 0) : -1;
    sqlite3_finalize (count);
    if (kf_store_pack_page (rows, s_pack_row, NULL, total, page, page_size, 2, pk))
        return -1;
    kf_mp_pack_kv_str (pk, "bot_id", bot_id);
    kf_mp_pack_kv_bool (pk, "inherited", strcmp (source, bot_id) != 0);
    return 0;
}
