/*  history.c - reading a conversation back: pages of messages (offset or cursor) and single
    messages, packed as the protocol's message objects. The read side of the store: its own
    statements on the broker's connection (it sees the open batch, so a client reads what it was
    told). */
#include "broker/history.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_COLUMNS "id, session_id, role, content, response_type, intent, confidence, sources," \
    " suggestions, status, latency_ms, prompt_tokens, completion_tokens, created_at, feedback," \
    " feedback_content, feedback_at, content_type, record_id, sender_id, title, response_content," \
    " stopped"

enum { H_PAGE, H_COUNT, H_MESSAGE, H_BEFORE, H_OLDER, H_STATEMENTS };

static const char *s_sql [H_STATEMENTS] = {
    [H_PAGE] = "SELECT " S_COLUMNS " FROM turns WHERE session_id = ? ORDER BY id LIMIT ? OFFSET ?",
    [H_COUNT] = "SELECT count(*) FROM turns WHERE session_id = ?",
    [H_MESSAGE] =
        "SELECT " S_COLUMNS " FROM turns WHERE id = ?"
        " AND session_id IN (SELECT id FROM sessions WHERE deleted_at IS NULL)",
    [H_BEFORE] =
        "SELECT * FROM (SELECT " S_COLUMNS " FROM turns WHERE session_id = ?1 AND id < ?2"
        " ORDER BY id DESC LIMIT ?3) ORDER BY id",
    [H_OLDER] = "SELECT EXISTS (SELECT 1 FROM turns WHERE session_id = ?1 AND id < ?2)",
};

struct _kf_history_t {
    sqlite3_stmt *stmt [H_STATEMENTS];
};

kf_history_t *
kf_history_new (kf_store_t *store)
{
    kf_history_t *self = kf_calloc (1, sizeof *self);
    if (kf_store_prepare (store, s_sql, self->stmt, H_STATEMENTS, "history")) {
        kf_history_destroy (&self);
        return NULL;
    }
    return self;
}

void
kf_history_destroy (kf_history_t **self_p)
{
    kf_history_t *self = *self_p;
    if (!self)
        return;
    kf_store_finalize (self->stmt, H_STATEMENTS);
    free (self);
    *self_p = NULL;
}

static void
s_bind (sqlite3_stmt *stmt, int index, const char *text)
{
    sqlite3_bind_text (stmt, index, text, -1, SQLITE_TRANSIENT);
}

//  Packs a JSON text column as msgpack, or nil when NULL or unparsable
static void
s_pack_json_column (msgpack_packer *pk, sqlite3_stmt *stmt, int column)
{
    kf_json_pack_text (pk, (const char *) sqlite3_column_text (stmt, column));
}

//  Packs the current row of a message query (the columns of S_COLUMNS) as a message map
static void
s_pack_message (msgpack_packer *pk, sqlite3_stmt *stmt)
{
    msgpack_pack_map (pk, 19);
    kf_mp_pack_kv_int (pk, "id", sqlite3_column_int64 (stmt, 0));
    kf_mp_pack_kv_str (pk, "session_id", (const char *) sqlite3_column_text (stmt, 1));
    kf_mp_pack_kv_str (pk, "role", (const char *) sqlite3_column_text (stmt, 2));
    //  Text and voice (a URL) are strings; images are a list of URLs, stored as JSON
    const char *type = (const char *) sqlite3_column_text (stmt, 17);
    kf_mp_pack_cstr (pk, "content");
    if (type && strcmp (type, "image") == 0)
        s_pack_json_column (pk, stmt, 3);
    else
        kf_mp_pack_cstr (pk, (const char *) sqlite3_column_text (stmt, 3));
    kf_mp_pack_kv_str (pk, "type", type ? type : "text");
    kf_mp_pack_kv_str (pk, "response_type", (const char *) sqlite3_column_text (stmt, 4));
    kf_mp_pack_cstr (pk, "response_content");
    s_pack_json_column (pk, stmt, 21);
    kf_mp_pack_kv_str (pk, "intent", (const char *) sqlite3_column_text (stmt, 5));
    kf_mp_pack_cstr (pk, "confidence");
    if (sqlite3_column_type (stmt, 6) == SQLITE_NULL)
        msgpack_pack_nil (pk);
    else
        msgpack_pack_double (pk, sqlite3_column_double (stmt, 6));
    kf_mp_pack_cstr (pk, "sources");
    s_pack_json_column (pk, stmt, 7);
    kf_mp_pack_cstr (pk, "suggestions");
    s_pack_json_column (pk, stmt, 8);
    kf_mp_pack_kv_str (pk, "status", (const char *) sqlite3_column_text (stmt, 9));
    kf_mp_pack_kv_bool (pk, "stopped", sqlite3_column_int (stmt, 22) != 0);
    kf_mp_pack_cstr (pk, "usage");
    msgpack_pack_map (pk, 3);
    //  Rows an older broker stored may hold any integers: the sum must not overflow
    int64_t prompt = sqlite3_column_int64 (stmt, 11), completion = sqlite3_column_int64 (stmt, 12);
    int64_t total;
    if (__builtin_add_overflow (prompt, completion, &total))
        total = prompt > 0 ? INT64_MAX : INT64_MIN;
    kf_mp_pack_kv_int (pk, "prompt_tokens", prompt);
    kf_mp_pack_kv_int (pk, "completion_tokens", completion);
    kf_mp_pack_kv_int (pk, "total_tokens", total);
    kf_mp_pack_kv_int (pk, "created_at", sqlite3_column_int64 (stmt, 13));
    kf_mp_pack_cstr (pk, "feedback");
    if (sqlite3_column_type (stmt, 14) == SQLITE_NULL)
        msgpack_pack_nil (pk);
    else {
        msgpack_pack_map (pk, 3);
        kf_mp_pack_kv_str (pk, "rating", (const char *) sqlite3_column_text (stmt, 14));
        kf_mp_pack_kv_str (pk, "content", (const char *) sqlite3_column_text (stmt, 15));
        kf_mp_pack_kv_int (pk, "at", sqlite3_column_int64 (stmt, 16));
    }
    kf_mp_pack_kv_str (pk, "record_id", (const char *) sqlite3_column_text (stmt, 18));
    kf_mp_pack_kv_str (pk, "sender_id", (const char *) sqlite3_column_text (stmt, 19));
    kf_mp_pack_kv_str (pk, "title", (const char *) sqlite3_column_text (stmt, 20));
}

//  Opens a list result and packs `rows` rows of `stmt` (bound, not yet stepped) as its data;
//  the caller packs has_more and total. The array length stays honest if a step fails.
static void
s_pack_rows (msgpack_packer *pk, sqlite3_stmt *stmt, int64_t rows)
{
    msgpack_pack_map (pk, 3);
    kf_mp_pack_cstr (pk, "data");
    msgpack_pack_array (pk, (size_t) rows);
    int64_t packed = 0;
    while (packed < rows && sqlite3_step (stmt) == SQLITE_ROW) {
        s_pack_message (pk, stmt);
        packed++;
    }
    sqlite3_reset (stmt);
    for (; packed < rows; packed++)
        msgpack_pack_nil (pk);
}

int
kf_history_page_pack (kf_history_t *self, const char *session_id, int64_t limit, int64_t offset,
                       msgpack_packer *pk)
{
    sqlite3_stmt *count = self->stmt [H_COUNT];
    s_bind (count, 1, session_id);
    int64_t total = sqlite3_step (count) == SQLITE_ROW ? sqlite3_column_int64 (count, 0) : -1;
    sqlite3_reset (count);
    if (total < 0)
        return -1;
    int64_t rows = offset >= total ? 0 : total - offset < limit ? total - offset : limit;
    sqlite3_stmt *stmt = self->stmt [H_PAGE];
    s_bind (stmt, 1, session_id);
    sqlite3_bind_int64 (stmt, 2, rows);
    sqlite3_bind_int64 (stmt, 3, offset);
    s_pack_rows (pk, stmt, rows);
    kf_mp_pack_kv_bool (pk, "has_more", offset + rows < total);
    kf_mp_pack_kv_int (pk, "total", total);
    return 0;
}

int
kf_history_before_pack (kf_history_t *self, const char *session_id, int64_t limit,
                              int64_t first_id, msgpack_packer *pk)
{
    sqlite3_stmt *count = self->stmt [H_COUNT];
    s_bind (count, 1, session_id);
    int64_t total = sqlite3_step (count) == SQLITE_ROW ? sqlite3_column_int64 (count, 0) : -1;
    sqlite3_reset (count);
    if (total < 0)
        return -1;
    sqlite3_stmt *page = self->stmt [H_BEFORE];
    s_bind (page, 1, session_id);
    sqlite3_bind_int64 (page, 2, first_id > 0 ? first_id : INT64_MAX);
    sqlite3_bind_int64 (page, 3, limit);
    //  Count the page first so the array header is right, then pack it
    int64_t rows = 0, oldest = INT64_MAX;
    while (sqlite3_step (page) == SQLITE_ROW) {
        if (rows == 0)
            oldest = sqlite3_column_int64 (page, 0);
        rows++;
    }
    sqlite3_reset (page);
    s_pack_rows (pk, page, rows);
    bool has_more = false;
    if (rows > 0) {
        sqlite3_stmt *older = self->stmt [H_OLDER];
        s_bind (older, 1, session_id);
        sqlite3_bind_int64 (older, 2, oldest);
        has_more = sqlite3_step (older) == SQLITE_ROW && sqlite3_column_int (older, 0);
        sqlite3_reset (older);
    }
    kf_mp_pack_kv_bool (pk, "has_more", has_more);
    kf_mp_pack_kv_int (pk, "total", total);
    return 0;
}

int
kf_history_message_pack (kf_history_t *self, int64_t message_id, msgpack_packer *pk)
{
    sqlite3_stmt *stmt = self->stmt [H_MESSAGE];
    sqlite3_bind_int64 (stmt, 1, message_id);
    int rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW)
        s_pack_message (pk, stmt);
    sqlite3_reset (stmt);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

