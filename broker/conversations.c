/*  conversations.c - user profiles, conversation lists, names and deletion, in SQLite. */
#include "broker/conversations.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum {
    C_LOGIN, C_PROFILE, C_LOGOUT, C_CURSOR, C_LIST, C_COUNT_USER, C_RENAME, C_FIRST_QUESTION,
    C_DELETE, C_PURGE_TURNS, C_PURGE_SESSIONS, C_COUNT
};

static const char *s_sql [C_COUNT] = {
    [C_LOGIN] =
        "INSERT INTO users (user_id, name, email, mobile, photo_url, is_logged_in, last_login_at,"
        " created_at, updated_at) VALUES (?1, coalesce (?2, ''), coalesce (?3, ''), coalesce (?4, ''),"
        " coalesce (?5, ''), 1, ?6, ?6, ?6) ON CONFLICT (user_id) DO UPDATE SET"
        " name = coalesce (?2, name), email = coalesce (?3, email), mobile = coalesce (?4, mobile),"
        " photo_url = coalesce (?5, photo_url), is_logged_in = 1, last_login_at = ?6, updated_at = ?6",
    [C_PROFILE] =
        "SELECT name, email, mobile, photo_url, is_logged_in, created_at, updated_at FROM users"
        " WHERE user_id = ?",
    [C_LOGOUT] =
        "UPDATE users SET is_logged_in = 0, last_logout_at = ?2, updated_at = ?2 WHERE user_id = ?1",
    [C_CURSOR] = "SELECT rowid FROM sessions WHERE id = ? AND user_id = ?",
    [C_LIST] =
        "SELECT id, name, bot_id, channel, state, turn_count, created_at, updated_at, closed_at"
        " FROM sessions WHERE user_id = ?1 AND deleted_at IS NULL AND rowid < ?2"
        " ORDER BY rowid DESC LIMIT ?3",
    [C_COUNT_USER] = "SELECT count(*) FROM sessions WHERE user_id = ? AND deleted_at IS NULL",
    [C_RENAME] = "UPDATE sessions SET name = ? WHERE id = ?",
    [C_FIRST_QUESTION] =
        "SELECT content FROM turns WHERE session_id = ? AND role = 'user' AND content_type = 'text'"
        " ORDER BY id LIMIT 1",
    [C_DELETE] = "UPDATE sessions SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
    [C_PURGE_TURNS] =
        "DELETE FROM turns WHERE session_id IN (SELECT id FROM sessions WHERE deleted_at < ?1"
        " ORDER BY deleted_at, id LIMIT 100)",
    [C_PURGE_SESSIONS] =
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE deleted_at < ?1"
        " ORDER BY deleted_at, id LIMIT 100)",
};

struct _kf_conversations_t {
    kf_store_t *store;          //  Borrowed
    sqlite3 *db;                //  Borrowed from the store
    sqlite3_stmt *stmt [C_COUNT];
};

kf_conversations_t *
kf_conversations_new (kf_store_t *store)
{
    kf_conversations_t *self = kf_calloc (1, sizeof *self);
    self->store = store;
    self->db = kf_store_db (store);
    if (kf_store_prepare (store, s_sql, self->stmt, C_COUNT, "conversations")) {
        kf_conversations_destroy (&self);
        return NULL;
    }
    return self;
}

void
kf_conversations_destroy (kf_conversations_t **self_p)
{
    kf_conversations_t *self = *self_p;
    if (!self)
        return;
    kf_store_finalize (self->stmt, C_COUNT);
    free (self);
    *self_p = NULL;
}

static void
s_bind_field (sqlite3_stmt *stmt, int index, const kf_field_t *field)
{
    if (field->value)
        sqlite3_bind_text (stmt, index, field->value, (int) field->len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null (stmt, index);
}

int
kf_conversations_login (kf_conversations_t *self, const char *user_id, size_t user_len,
                        const kf_field_t fields [4], int64_t now, msgpack_packer *pk)
{
    sqlite3_stmt *stmt = self->stmt [C_LOGIN];
    sqlite3_bind_text (stmt, 1, user_id, (int) user_len, SQLITE_TRANSIENT);
    for (int i = 0; i < 4; i++)
        s_bind_field (stmt, 2 + i, &fields [i]);
    sqlite3_bind_int64 (stmt, 6, now);
    if (kf_store_write_step (self->store, stmt))
        return -1;
    return kf_conversations_profile_pack (self, user_id, user_len, pk) == 1 ? 0 : -1;
}

int
kf_conversations_profile_pack (kf_conversations_t *self, const char *user_id, size_t user_len,
                               msgpack_packer *pk)
{
    sqlite3_stmt *profile = self->stmt [C_PROFILE];
    sqlite3_bind_text (profile, 1, user_id, (int) user_len, SQLITE_TRANSIENT);
    int rc = sqlite3_step (profile);
    if (rc == SQLITE_ROW) {
        static const char *names [] = { "name", "email", "mobile", "photo_url" };
        msgpack_pack_map (pk, 8);
        kf_mp_pack_cstr (pk, "user_id");
        kf_mp_pack_str (pk, user_id, user_len);
        for (int i = 0; i < 4; i++)
            kf_mp_pack_kv_str (pk, names [i], (const char *) sqlite3_column_text (profile, i));
        kf_mp_pack_kv_bool (pk, "is_logged_in", sqlite3_column_int (profile, 4) != 0);
        kf_mp_pack_kv_int (pk, "created_at", sqlite3_column_int64 (profile, 5));
        kf_mp_pack_kv_int (pk, "updated_at", sqlite3_column_int64 (profile, 6));
    }
    sqlite3_reset (profile);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
kf_conversations_logout (kf_conversations_t *self, const char *user_id, size_t user_len, int64_t now)
{
    sqlite3_stmt *stmt = self->stmt [C_LOGOUT];
    sqlite3_bind_text (stmt, 1, user_id, (int) user_len, SQLITE_TRANSIENT);
    sqlite3_bind_int64 (stmt, 2, now);
    if (kf_store_write_step (self->store, stmt))
        return -1;
    return sqlite3_changes (self->db) > 0 ? 1 : 0;
}

//  Packs the current row of C_LIST
static void
s_pack_conversation (msgpack_packer *pk, sqlite3_stmt *stmt)
{
    msgpack_pack_map (pk, 9);
    kf_mp_pack_kv_str (pk, "session_id", (const char *) sqlite3_column_text (stmt, 0));
    kf_mp_pack_kv_str (pk, "name", (const char *) sqlite3_column_text (stmt, 1));
    kf_mp_pack_kv_str (pk, "bot_id", (const char *) sqlite3_column_text (stmt, 2));
    kf_mp_pack_kv_str (pk, "channel", (const char *) sqlite3_column_text (stmt, 3));
    kf_mp_pack_kv_str (pk, "state", (const char *) sqlite3_column_text (stmt, 4));
    kf_mp_pack_kv_int (pk, "turn_count", sqlite3_column_int64 (stmt, 5));
    kf_mp_pack_kv_int (pk, "created_at", sqlite3_column_int64 (stmt, 6));
    kf_mp_pack_kv_int (pk, "updated_at", sqlite3_column_int64 (stmt, 7));
    kf_mp_pack_cstr (pk, "closed_at");
    if (sqlite3_column_type (stmt, 8) == SQLITE_NULL)
        msgpack_pack_nil (pk);
    else
        msgpack_pack_int64 (pk, sqlite3_column_int64 (stmt, 8));
}

int
kf_conversations_list_pack (kf_conversations_t *self, const char *user_id, size_t user_len,
                            int64_t limit, const char *last_id, size_t last_len, msgpack_packer *pk)
{
    int64_t before = INT64_MAX;
    if (last_id) {
        sqlite3_stmt *cursor = self->stmt [C_CURSOR];
        sqlite3_bind_text (cursor, 1, last_id, (int) last_len, SQLITE_TRANSIENT);
        sqlite3_bind_text (cursor, 2, user_id, (int) user_len, SQLITE_TRANSIENT);
        int rc = sqlite3_step (cursor);
        before = rc == SQLITE_ROW ? sqlite3_column_int64 (cursor, 0) : -1;
        sqlite3_reset (cursor);
        if (rc != SQLITE_ROW)
            return rc == SQLITE_DONE ? 1 : -1;
    }
    sqlite3_stmt *count = self->stmt [C_COUNT_USER];
    sqlite3_bind_text (count, 1, user_id, (int) user_len, SQLITE_TRANSIENT);
    int64_t total = sqlite3_step (count) == SQLITE_ROW ? sqlite3_column_int64 (count, 0) : -1;
    sqlite3_reset (count);
    if (total < 0)
        return -1;
    //  One row more than asked tells whether there is a next page; count the page first, so the
    //  array header is right, then pack it
    sqlite3_stmt *list = self->stmt [C_LIST];
    sqlite3_bind_text (list, 1, user_id, (int) user_len, SQLITE_TRANSIENT);
    sqlite3_bind_int64 (list, 2, before);
    sqlite3_bind_int64 (list, 3, limit + 1);
    int64_t rows = 0;
    while (sqlite3_step (list) == SQLITE_ROW)
        rows++;
    sqlite3_reset (list);
    bool has_more = rows > limit;
    if (has_more)
        rows = limit;
    msgpack_pack_map (pk, 3);
    kf_mp_pack_cstr (pk, "data");
    msgpack_pack_array (pk, (size_t) rows);
    for (int64_t i = 0; i < rows && sqlite3_step (list) == SQLITE_ROW; i++)
        s_pack_conversation (pk, list);
    sqlite3_reset (list);
    kf_mp_pack_kv_bool (pk, "has_more", has_more);
    kf_mp_pack_kv_int (pk, "total", total);
    return 0;
}

int
kf_conversations_rename (kf_conversations_t *self, const char *session_id, const char *name,
                         size_t len)
{
    sqlite3_stmt *stmt = self->stmt [C_RENAME];
    sqlite3_bind_text (stmt, 1, name, (int) len, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 2, session_id, -1, SQLITE_TRANSIENT);
    return kf_store_write_step (self->store, stmt);
}

char *
kf_conversations_auto_name (kf_conversations_t *self, const char *session_id)
{
    sqlite3_stmt *stmt = self->stmt [C_FIRST_QUESTION];
    sqlite3_bind_text (stmt, 1, session_id, -1, SQLITE_TRANSIENT);
    char *name = NULL;
    if (sqlite3_step (stmt) == SQLITE_ROW) {
        const char *text = (const char *) sqlite3_column_text (stmt, 0);
        size_t len = strlen (text), cut = 0;
        int chars = 0;
        while (cut < len && chars < 20) {
            uint32_t cp;
            int n = kf_utf8_decode (text + cut, len - cut, &cp);
            cut += n ? n : 1;
            chars++;
        }
        name = kf_malloc (cut + 4);
        memcpy (name, text, cut);
        strcpy (name + cut, cut < len ? "…" : "");
    }
    sqlite3_reset (stmt);
    return name;
}

int
kf_conversations_delete (kf_conversations_t *self, const char *session_id, int64_t now)
{
    sqlite3_stmt *stmt = self->stmt [C_DELETE];
    sqlite3_bind_int64 (stmt, 1, now);
    sqlite3_bind_text (stmt, 2, session_id, -1, SQLITE_TRANSIENT);
    return kf_store_write_step (self->store, stmt);
}

int64_t
kf_conversations_purge (kf_conversations_t *self, int64_t before)
{
    if (kf_store_keep_message_ids (self->store))
        return -1;                      //  The ids of the rows purged stay taken
    sqlite3_stmt *turns = self->stmt [C_PURGE_TURNS];
    sqlite3_bind_int64 (turns, 1, before);
    if (kf_store_write_step (self->store, turns))
        return -1;
    sqlite3_stmt *sessions = self->stmt [C_PURGE_SESSIONS];
    sqlite3_bind_int64 (sessions, 1, before);
    if (kf_store_write_step (self->store, sessions))
        return -1;
    return sqlite3_changes (self->db);
}
