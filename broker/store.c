/*  store.c - the broker's SQLite database: migrations, sessions, turns, knowledge-base writes,
    with one transaction per loop iteration (group commit). */
#include "broker/store.h"
#include "common/clock.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The migrations, embedded at build time from schemas/NNN_*.sql (see CMakeLists.txt)
extern const char *const kf_migrations [];
extern const int kf_migration_count;

enum {
    S_BEGIN, S_COMMIT, S_SESSION_INSERT, S_SESSION_LOAD, S_SESSION_UPDATE, S_TURN_INSERT,
    S_RECENT, S_KB_BUMP, S_KB_VERSION, S_TURN_COMPLETE, S_TURN_FAIL, S_SESSION_CLOSE,
    S_CLOSE_IDLE, S_REOPEN, S_TURN_OWNER, S_FEEDBACK, S_RECORD_INSERT, S_KEEP_MESSAGE_IDS,
    S_RECORD_FIND, S_SESSION_CONVERSATION, S_TURN_UPSTREAM, S_USAGE_ADD, S_COUNT
};

static const char *s_sql [S_COUNT] = {
    [S_BEGIN] = "BEGIN",
    [S_COMMIT] = "COMMIT",
    [S_SESSION_INSERT] =
        "INSERT INTO sessions (id, user_id, channel, bot_id, state, created_at, updated_at,"
        " active_minute) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7 / 60000)",
    [S_SESSION_LOAD] =
        "SELECT user_id, channel, bot_id, state, turn_count, failed_attempts, created_at,"
        " updated_at, upstream_conversation_id FROM sessions WHERE id = ? AND deleted_at IS NULL",
    [S_SESSION_CONVERSATION] = "UPDATE sessions SET upstream_conversation_id = ? WHERE id = ?",
    [S_SESSION_UPDATE] =
        "UPDATE sessions SET turn_count = ?, failed_attempts = ?, updated_at = ?,"
        " labels = coalesce (?, labels) WHERE id = ?",
    [S_TURN_INSERT] =
        "INSERT INTO turns (id, session_id, role, content, response_type, intent, confidence,"
        " sources, suggestions, status, latency_ms, prompt_tokens, completion_tokens, created_at,"
        " response_content, stopped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [S_RECENT] =
        "SELECT role, content FROM (SELECT id, role, content FROM turns WHERE session_id = ?"
        " AND status = 'ok' AND content_type = 'text' ORDER BY id DESC LIMIT ?) ORDER BY id",
    [S_KB_BUMP] = "UPDATE kb_meta SET version = version + 1 WHERE id = 1 RETURNING version",
    [S_KB_VERSION] = "SELECT version FROM kb_meta WHERE id = 1",
    [S_TURN_COMPLETE] =
        "UPDATE turns SET content = ?4, response_type = ?5, intent = ?6, confidence = ?7,"
        " sources = ?8, suggestions = ?9, status = ?10, latency_ms = ?11, prompt_tokens = ?12,"
        " completion_tokens = ?13, created_at = ?14, response_content = ?15, stopped = ?16"
        " WHERE id = ?1",
    [S_TURN_FAIL] = "UPDATE turns SET status = 'error' WHERE id = ? AND status = 'pending'",
    [S_SESSION_CLOSE] =
        "UPDATE sessions SET state = 'closed', close_reason = ?, satisfaction = ?, bot2human_reason = ?,"
        " closed_at = ?, updated_at = ? WHERE id = ?",
    [S_CLOSE_IDLE] =
        "UPDATE sessions SET state = 'closed', close_reason = 3, closed_at = ?1"
        " WHERE state = 'open' AND active_minute <= ?2 / 60000 AND updated_at < ?2",
    [S_REOPEN] =
        "UPDATE sessions SET state = 'open', close_reason = NULL, closed_at = NULL"
        " WHERE id = ? AND close_reason = 3",
    [S_TURN_OWNER] =
        "SELECT t.role, t.status, s.user_id, s.id FROM turns t JOIN sessions s ON s.id = t.session_id"
        " WHERE t.id = ? AND s.deleted_at IS NULL",
    [S_FEEDBACK] = "UPDATE turns SET feedback = ?, feedback_content = ?, feedback_at = ? WHERE id = ?",
    [S_KEEP_MESSAGE_IDS] =
        "INSERT INTO counters (name, value) VALUES ('next_message_id', ?1)"
        " ON CONFLICT (name) DO UPDATE SET value = max (value, excluded.value)",
    [S_RECORD_INSERT] =
        "INSERT OR IGNORE INTO turns (id, session_id, role, content, content_type, record_id, sender_id,"
        " title, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [S_RECORD_FIND] = "SELECT id FROM turns WHERE session_id = ? AND record_id = ?",
    [S_TURN_UPSTREAM] = "UPDATE turns SET upstream = ?2 WHERE id = ?1",
    [S_USAGE_ADD] =
        "INSERT INTO usage_totals (bot_id, upstream, turns, prompt_tokens, completion_tokens,"
        " total_tokens) VALUES (?1, ?2, 1, ?3, ?4, ?5) ON CONFLICT (bot_id, upstream) DO UPDATE SET"
        " turns = turns + 1, prompt_tokens = prompt_tokens + ?3,"
        " completion_tokens = completion_tokens + ?4, total_tokens = total_tokens + ?5",
};

struct _kf_store_t {
    sqlite3 *db;                //  The connection
    sqlite3_stmt *stmt [S_COUNT];   //  Prepared once
    bool is_dirty;              //  A transaction is open
    bool is_failed;             //  A write of this batch failed: the batch must not commit
    uint64_t batch;             //  Number of the open (or next) batch
    int64_t next_message_id;    //  Next id to hand out
    int64_t kb_version;         //  Knowledge-base version, 0 until first read
};

static int
s_exec (sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *message = NULL;
    if (sqlite3_exec (db, sql, NULL, NULL, &message) != SQLITE_OK) {
        snprintf (err, errlen, "%s", message ? message : sqlite3_errmsg (db));
        sqlite3_free (message);
        return -1;
    }
    return 0;
}

//  The sample bot's intents (deploy/sample-intents.jsonl, embedded at build time)
extern const char kf_sample_intents [];

//  Inserts the default bot's intents, one JSONL line each ({"intent", "description"?, "examples",
//  "keywords"?, "patterns"?}), inside migration 9's transaction. SQLite's JSON functions take the
//  lines apart, so the arrays are stored exactly as the file has them.
static int
s_seed_intents (sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (db,
            "INSERT INTO intents (bot_id, name, description, examples, keywords, patterns,"
            " created_at, updated_at) VALUES ('default', json_extract (?1, '$.intent'),"
            " coalesce (json_extract (?1, '$.description'), ''),"
            " json (coalesce (json_extract (?1, '$.examples'), '[]')),"
            " json (coalesce (json_extract (?1, '$.keywords'), '[]')),"
            " json (coalesce (json_extract (?1, '$.patterns'), '[]')), 0, 0)",
            -1, &stmt, NULL) != SQLITE_OK) {
        snprintf (err, errlen, "seeding intents: %s", sqlite3_errmsg (db));
        return -1;
    }
    int rc = 0;
    for (const char *line = kf_sample_intents; *line && rc == 0; ) {
        const char *end = strchr (line, '\n');
        size_t len = end ? (size_t) (end - line) : strlen (line);
        if (len > 0 && line [0] == '{') {
            sqlite3_bind_text (stmt, 1, line, (int) len, SQLITE_STATIC);
            if (sqlite3_step (stmt) != SQLITE_DONE) {
                snprintf (err, errlen, "seeding intents: %s", sqlite3_errmsg (db));
                rc = -1;
            }
            sqlite3_reset (stmt);
        }
        line += len + (end != NULL);
    }
    sqlite3_finalize (stmt);
    return rc;
}

static int
s_migrate (sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *stmt;
    int version = 0;
    if (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL) == SQLITE_OK) {
        if (sqlite3_step (stmt) == SQLITE_ROW)
            version = sqlite3_column_int (stmt, 0);
        sqlite3_finalize (stmt);
    }
    for (int i = version; i < kf_migration_count; i++) {
        char sql [64];
        snprintf (sql, sizeof sql, "PRAGMA user_version = %d; COMMIT", i + 1);
        if (s_exec (db, "BEGIN", err, errlen) || s_exec (db, kf_migrations [i], err, errlen)
        ||  (i + 1 == 9 && s_seed_intents (db, err, errlen))
        ||  s_exec (db, sql, err, errlen)) {
            sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
        kf_info ("applied migration %d", i + 1);
    }
    return 0;
}

kf_store_t *
kf_store_open (const char *path, bool is_synchronous_full, char *err, size_t errlen)
{
    kf_store_t *self = kf_calloc (1, sizeof *self);
    //  The loop is the connection's only user (the checkpointer and the snapshot thread open
    //  their own): no mutex around every call
    if (sqlite3_open_v2 (path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                         NULL)) {
        snprintf (err, errlen, "cannot open %s: %s", path, sqlite3_errmsg (self->db));
        goto failed;
    }
    //  Only the broker writes; a lock held by an outside tool must not stall the loop for long
    sqlite3_busy_timeout (self->db, 50);
    if (s_exec (self->db, "PRAGMA journal_mode = WAL", err, errlen)
    ||  s_exec (self->db, is_synchronous_full ? "PRAGMA synchronous = FULL"
                                              : "PRAGMA synchronous = NORMAL", err, errlen)
    ||  s_exec (self->db, "PRAGMA foreign_keys = ON", err, errlen)
    ||  s_migrate (self->db, err, errlen))
        goto failed;
    //  Answers that were in progress when the last broker died will never complete
    if (s_exec (self->db, "UPDATE turns SET status = 'error' WHERE status = 'pending'", err, errlen))
        goto failed;
    for (int i = 0; i < S_COUNT; i++)
        if (sqlite3_prepare_v3 (self->db, s_sql [i], -1, SQLITE_PREPARE_PERSISTENT,
                                &self->stmt [i], NULL) != SQLITE_OK) {
            snprintf (err, errlen, "prepare failed: %s", sqlite3_errmsg (self->db));
            goto failed;
        }
    sqlite3_stmt *stmt;
    //  Past every stored message, and past every one handed out before rows were purged
    sqlite3_prepare_v2 (self->db, "SELECT max (coalesce ((SELECT max (id) FROM turns), 0) + 1,"
                        " coalesce ((SELECT value FROM counters WHERE name = 'next_message_id'), 1))",
                        -1, &stmt, NULL);
    self->next_message_id = sqlite3_step (stmt) == SQLITE_ROW ? sqlite3_column_int64 (stmt, 0) : 1;
    sqlite3_finalize (stmt);
    return self;
failed:
    kf_store_destroy (&self);
    return NULL;
}

void
kf_store_set_autocheckpoint (kf_store_t *self, bool is_on)
{
    sqlite3_wal_autocheckpoint (self->db, is_on ? 1000 : 0);
}

void
kf_store_destroy (kf_store_t **self_p)
{
    kf_store_t *self = *self_p;
    if (!self)
        return;
    kf_store_flush (self);
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize (self->stmt [i]);
    sqlite3_close (self->db);
    free (self);
    *self_p = NULL;
}

//  Opens the batch (a transaction) unless it is open. Returns 0 or -1.
static int
s_open_batch (kf_store_t *self)
{
    if (self->is_dirty)
        return 0;
    sqlite3_reset (self->stmt [S_BEGIN]);
    if (sqlite3_step (self->stmt [S_BEGIN]) != SQLITE_DONE) {
        kf_error ("store: BEGIN failed: %s", sqlite3_errmsg (self->db));
        self->is_failed = true;
        return -1;
    }
    self->is_dirty = true;
    return 0;
}

//  Opens a savepoint named `name` inside the batch, so what follows can be taken back alone.
//  Returns 0 or -1.
int
kf_store_savepoint (kf_store_t *self, const char *name)
{
    if (s_open_batch (self))
        return -1;
    char sql [64];
    snprintf (sql, sizeof sql, "SAVEPOINT %s", name);
    return sqlite3_exec (self->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

//  Ends a savepoint: when `rc` < 0 its writes are taken back and the batch is whole again (the
//  failure no longer poisons it). Returns `rc`.
int
kf_store_savepoint_end (kf_store_t *self, const char *name, int rc)
{
    char sql [64];
    if (rc < 0) {
        snprintf (sql, sizeof sql, "ROLLBACK TO %s", name);
        sqlite3_exec (self->db, sql, NULL, NULL, NULL);
        self->is_failed = false;
    }
    snprintf (sql, sizeof sql, "RELEASE %s", name);
    sqlite3_exec (self->db, sql, NULL, NULL, NULL);
    return rc;
}

//  Steps a write statement inside the batch, opening the batch first. Returns 0 or -1. With
//  `is_static` its bindings are cleared after a finished step: the store's own texts are bound
//  without a copy (SQLITE_STATIC) and must not be left pointing at memory the caller frees.
static int
s_step (kf_store_t *self, sqlite3_stmt *stmt, bool is_static)
{
    if (s_open_batch (self)) {
        sqlite3_reset (stmt);
        if (is_static)
            sqlite3_clear_bindings (stmt);
        return -1;
    }
    int rc = sqlite3_step (stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        kf_error ("store: write failed: %s", sqlite3_errmsg (self->db));
        sqlite3_reset (stmt);
        if (is_static)
            sqlite3_clear_bindings (stmt);
        self->is_failed = true;
        return -1;
    }
    if (rc == SQLITE_DONE) {
        sqlite3_reset (stmt);
        if (is_static)
            sqlite3_clear_bindings (stmt);
    }
    return 0;
}

//  A write of the store's own statements (texts bound by s_bind_text)
static int
s_write (kf_store_t *self, sqlite3_stmt *stmt)
{
    return s_step (self, stmt, true);
}

int
kf_store_flush (kf_store_t *self)
{
    if (!self->is_dirty && !self->is_failed)
        return 0;
    bool is_failed = self->is_failed;
    self->is_dirty = self->is_failed = false;
    self->batch++;
    if (is_failed) {
        kf_error ("store: rolling back a batch with a failed write");
        sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    sqlite3_reset (self->stmt [S_COMMIT]);
    if (sqlite3_step (self->stmt [S_COMMIT]) != SQLITE_DONE) {
        kf_error ("store: COMMIT failed: %s", sqlite3_errmsg (self->db));
        sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

bool
kf_store_is_dirty (kf_store_t *self)
{
    return self->is_dirty || self->is_failed;
}

uint64_t
kf_store_batch (kf_store_t *self)
{
    return self->batch;
}

sqlite3 *
kf_store_db (kf_store_t *self)
{
    return self->db;
}

int
kf_store_prepare (kf_store_t *self, const char *const *sql, sqlite3_stmt **stmts, int count,
                  const char *what)
{
    for (int i = 0; i < count; i++)
        if (sqlite3_prepare_v3 (self->db, sql [i], -1, SQLITE_PREPARE_PERSISTENT, &stmts [i], NULL)
            != SQLITE_OK) {
            kf_error ("%s: prepare failed: %s", what, sqlite3_errmsg (self->db));
            kf_store_finalize (stmts, count);
            return -1;
        }
    return 0;
}

void
kf_store_finalize (sqlite3_stmt **stmts, int count)
{
    for (int i = 0; i < count; i++) {
        sqlite3_finalize (stmts [i]);
        stmts [i] = NULL;
    }
}

int
kf_store_write_step (kf_store_t *self, sqlite3_stmt *stmt)
{
    return s_step (self, stmt, false);
}

int
kf_store_keep_message_ids (kf_store_t *self)
{
    sqlite3_stmt *stmt = self->stmt [S_KEEP_MESSAGE_IDS];
    sqlite3_bind_int64 (stmt, 1, self->next_message_id);
    return s_write (self, stmt);
}

int64_t
kf_store_next_message_id (kf_store_t *self)
{
    return self->next_message_id++;
}

//  Binds a text without a copy: the statement is stepped before the text goes, and its bindings
//  cleared after (s_write does so)
static void
s_bind_text (sqlite3_stmt *stmt, int index, const char *text)
{
    if (text)
        sqlite3_bind_text (stmt, index, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null (stmt, index);
}

int
kf_store_session_insert (kf_store_t *self, const kf_session_row_t *row)
{
    sqlite3_stmt *stmt = self->stmt [S_SESSION_INSERT];
    s_bind_text (stmt, 1, row->id);
    s_bind_text (stmt, 2, row->user_id ? row->user_id : "");
    s_bind_text (stmt, 3, row->channel ? row->channel : "api");
    s_bind_text (stmt, 4, row->bot_id ? row->bot_id : "default");
    s_bind_text (stmt, 5, row->state ? row->state : "open");
    sqlite3_bind_int64 (stmt, 6, row->created_at);
    sqlite3_bind_int64 (stmt, 7, row->updated_at);
    return s_write (self, stmt);
}

static char *
s_column_dup (sqlite3_stmt *stmt, int column)
{
    const char *text = (const char *) sqlite3_column_text (stmt, column);
    return kf_strdup (text ? text : "");
}

int
kf_store_session_load (kf_store_t *self, const char *id, size_t id_len, kf_session_row_t *row)
{
    sqlite3_stmt *stmt = self->stmt [S_SESSION_LOAD];
    memset (row, 0, sizeof *row);
    if (id_len >= sizeof row->id)
        return 0;
    sqlite3_bind_text (stmt, 1, id, (int) id_len, SQLITE_TRANSIENT);
    int rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW) {
        memcpy (row->id, id, id_len);
        row->user_id = s_column_dup (stmt, 0);
        row->channel = s_column_dup (stmt, 1);
        row->bot_id = s_column_dup (stmt, 2);
        row->state = s_column_dup (stmt, 3);
        row->turn_count = sqlite3_column_int64 (stmt, 4);
        row->failed_attempts = sqlite3_column_int64 (stmt, 5);
        row->created_at = sqlite3_column_int64 (stmt, 6);
        row->updated_at = sqlite3_column_int64 (stmt, 7);
        if (sqlite3_column_type (stmt, 8) != SQLITE_NULL)
            row->upstream_conversation_id = s_column_dup (stmt, 8);
    }
    else
    if (rc != SQLITE_DONE)
        kf_error ("store: session load failed: %s", sqlite3_errmsg (self->db));
    sqlite3_reset (stmt);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

void
kf_session_row_free (kf_session_row_t *row)
{
    free (row->user_id);
    free (row->channel);
    free (row->bot_id);
    free (row->state);
    free (row->upstream_conversation_id);
    row->user_id = row->channel = row->bot_id = row->state = row->upstream_conversation_id = NULL;
}

int
kf_store_session_set_conversation (kf_store_t *self, const char *id, const char *conversation_id)
{
    sqlite3_stmt *stmt = self->stmt [S_SESSION_CONVERSATION];
    s_bind_text (stmt, 1, conversation_id);
    s_bind_text (stmt, 2, id);
    return s_write (self, stmt);
}

int
kf_store_session_update (kf_store_t *self, const char *id, int64_t turn_count,
                         int64_t failed_attempts, const char *labels_json, int64_t updated_at)
{
    sqlite3_stmt *stmt = self->stmt [S_SESSION_UPDATE];
    sqlite3_bind_int64 (stmt, 1, turn_count);
    sqlite3_bind_int64 (stmt, 2, failed_attempts);
    sqlite3_bind_int64 (stmt, 3, updated_at);
    s_bind_text (stmt, 4, labels_json);
    s_bind_text (stmt, 5, id);
    return s_write (self, stmt);
}

//  Binds a msgpack array as JSON text, or NULL
static void
s_bind_json (sqlite3_stmt *stmt, int index, const msgpack_object *obj)
{
    if (!obj || obj->type == MSGPACK_OBJECT_NIL) {
        sqlite3_bind_null (stmt, index);
        return;
    }
    char *json = kf_json_from_msgpack (obj);
    sqlite3_bind_text (stmt, index, json, -1, free);
}

//  Binds every turn column; INSERT and the completing UPDATE share the parameter numbers
static int
s_turn_write (kf_store_t *self, sqlite3_stmt *stmt, const kf_turn_row_t *turn)
{
    sqlite3_bind_int64 (stmt, 1, turn->id);
    s_bind_text (stmt, 2, turn->session_id);
    s_bind_text (stmt, 3, turn->role);
    sqlite3_bind_text (stmt, 4, turn->content, (int) turn->content_len, SQLITE_STATIC);
    s_bind_text (stmt, 5, turn->response_type ? turn->response_type : "text");
    s_bind_text (stmt, 6, turn->intent);
    if (turn->confidence >= 0)
        sqlite3_bind_double (stmt, 7, turn->confidence);
    else
        sqlite3_bind_null (stmt, 7);
    s_bind_json (stmt, 8, turn->sources);
    s_bind_json (stmt, 9, turn->suggestions);
    s_bind_text (stmt, 10, turn->status ? turn->status : "ok");
    if (turn->latency_ms >= 0)
        sqlite3_bind_int64 (stmt, 11, turn->latency_ms);
    else
        sqlite3_bind_null (stmt, 11);
    sqlite3_bind_int64 (stmt, 12, turn->prompt_tokens);
    sqlite3_bind_int64 (stmt, 13, turn->completion_tokens);
    sqlite3_bind_int64 (stmt, 14, turn->created_at);
    s_bind_json (stmt, 15, turn->response_content);
    sqlite3_bind_int (stmt, 16, turn->is_stopped);
    return s_write (self, stmt);
}

int
kf_store_turn_insert (kf_store_t *self, const kf_turn_row_t *turn)
{
    return s_turn_write (self, self->stmt [S_TURN_INSERT], turn);
}

int
kf_store_turn_complete (kf_store_t *self, const kf_turn_row_t *turn)
{
    return s_turn_write (self, self->stmt [S_TURN_COMPLETE], turn);
}

int
kf_store_usage_add (kf_store_t *self, int64_t message_id, const char *bot_id, const char *upstream,
                    int64_t prompt_tokens, int64_t completion_tokens, int64_t total_tokens)
{
    sqlite3_stmt *stmt = self->stmt [S_TURN_UPSTREAM];
    sqlite3_bind_int64 (stmt, 1, message_id);
    s_bind_text (stmt, 2, upstream);
    if (s_write (self, stmt))
        return -1;
    stmt = self->stmt [S_USAGE_ADD];
    s_bind_text (stmt, 1, bot_id);
    s_bind_text (stmt, 2, upstream);
    sqlite3_bind_int64 (stmt, 3, prompt_tokens);
    sqlite3_bind_int64 (stmt, 4, completion_tokens);
    sqlite3_bind_int64 (stmt, 5, total_tokens);
    return s_write (self, stmt);
}

int
kf_store_usage_stats_pack (kf_store_t *self, msgpack_packer *pk)
{
    static const char *sql =
        "SELECT bot_id, upstream, turns, prompt_tokens, completion_tokens, total_tokens"
        " FROM usage_totals ORDER BY bot_id, upstream LIMIT 1000";
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (self->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    int rows = 0;
    while (sqlite3_step (stmt) == SQLITE_ROW)
        rows++;
    sqlite3_reset (stmt);
    static const char *names [] = { "bot_id", "upstream", "turns", "prompt_tokens",
                                    "completion_tokens", "total_tokens" };
    msgpack_pack_array (pk, rows);
    for (int row = 0; row < rows; row++) {
        bool has_row = sqlite3_step (stmt) == SQLITE_ROW;
        msgpack_pack_map (pk, 6);
        for (int i = 0; i < 6; i++) {
            kf_mp_pack_cstr (pk, names [i]);
            if (i < 2)
                kf_mp_pack_cstr (pk, has_row ? (const char *) sqlite3_column_text (stmt, i) : "");
            else
                msgpack_pack_int64 (pk, has_row ? sqlite3_column_int64 (stmt, i) : 0);
        }
    }
    sqlite3_finalize (stmt);
    return 0;
}

int
kf_store_turn_fail (kf_store_t *self, int64_t id)
{
    sqlite3_bind_int64 (self->stmt [S_TURN_FAIL], 1, id);
    return s_write (self, self->stmt [S_TURN_FAIL]);
}

int
kf_store_recent_turns (kf_store_t *self, const char *session_id, int count, kf_turn_fn *fn,
                       void *arg)
{
    sqlite3_stmt *stmt = self->stmt [S_RECENT];
    s_bind_text (stmt, 1, session_id);
    sqlite3_bind_int (stmt, 2, count);
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
        fn (arg, (const char *) sqlite3_column_text (stmt, 0),
            (const char *) sqlite3_column_text (stmt, 1));
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);      //  s_bind_text does not copy
    return rc == SQLITE_DONE ? 0 : -1;
}

int64_t
kf_store_count (kf_store_t *self, const char *table)
{
    char sql [64];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM %s", table);
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (self->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    int64_t count = sqlite3_step (stmt) == SQLITE_ROW ? sqlite3_column_int64 (stmt, 0) : -1;
    sqlite3_finalize (stmt);
    return count;
}

int64_t
kf_store_kb_version (kf_store_t *self)
{
    if (self->kb_version > 0)
        return self->kb_version;
    sqlite3_stmt *stmt = self->stmt [S_KB_VERSION];
    int64_t version = sqlite3_step (stmt) == SQLITE_ROW ? sqlite3_column_int64 (stmt, 0) : -1;
    sqlite3_reset (stmt);
    if (version > 0)
        self->kb_version = version;
    return version;
}

int64_t
kf_store_kb_bump_version (kf_store_t *self)
{
    sqlite3_stmt *stmt = self->stmt [S_KB_BUMP];
    if (s_write (self, stmt))
        return -1;
    int64_t version = sqlite3_column_int64 (stmt, 0);
    sqlite3_reset (stmt);
    //  Kept even if the batch is rolled back: a version ahead of the database only costs the
    //  answer cache some misses, never a stale answer
    self->kb_version = version;
    return version;
}

int
kf_store_session_close (kf_store_t *self, const char *id, int64_t reason, int64_t satisfaction,
                        int64_t bot2human_reason, int64_t closed_at)
{
    sqlite3_stmt *stmt = self->stmt [S_SESSION_CLOSE];
    sqlite3_bind_int64 (stmt, 1, reason);
    if (satisfaction > 0)
        sqlite3_bind_int64 (stmt, 2, satisfaction);
    else
        sqlite3_bind_null (stmt, 2);
    if (bot2human_reason > 0)
        sqlite3_bind_int64 (stmt, 3, bot2human_reason);
    else
        sqlite3_bind_null (stmt, 3);
    sqlite3_bind_int64 (stmt, 4, closed_at);
    sqlite3_bind_int64 (stmt, 5, closed_at);
    s_bind_text (stmt, 6, id);
    return s_write (self, stmt);
}

int64_t
kf_store_close_idle (kf_store_t *self, int64_t idle_before, int64_t closed_at)
{
    sqlite3_stmt *stmt = self->stmt [S_CLOSE_IDLE];
    sqlite3_bind_int64 (stmt, 1, closed_at);
    sqlite3_bind_int64 (stmt, 2, idle_before);
    if (s_write (self, stmt))
        return -1;
    return sqlite3_changes64 (self->db);
}

int
kf_store_session_reopen (kf_store_t *self, const char *id)
{
    s_bind_text (self->stmt [S_REOPEN], 1, id);
    return s_write (self, self->stmt [S_REOPEN]);
}

int
kf_store_turn_owner (kf_store_t *self, int64_t message_id, char *role, size_t role_size,
                     char *user_id, size_t user_size, char *session_id, size_t session_size)
{
    sqlite3_stmt *stmt = self->stmt [S_TURN_OWNER];
    sqlite3_bind_int64 (stmt, 1, message_id);
    int rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW) {
        snprintf (role, role_size, "%s", (const char *) sqlite3_column_text (stmt, 0));
        if (strcmp ((const char *) sqlite3_column_text (stmt, 1), "ok") != 0)
            snprintf (role, role_size, "%s", "unfinished");
        snprintf (user_id, user_size, "%s", (const char *) sqlite3_column_text (stmt, 2));
        snprintf (session_id, session_size, "%s", (const char *) sqlite3_column_text (stmt, 3));
    }
    sqlite3_reset (stmt);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
kf_store_feedback (kf_store_t *self, int64_t message_id, const char *rating, const char *content,
                   size_t content_len, int64_t at)
{
    sqlite3_stmt *stmt = self->stmt [S_FEEDBACK];
    s_bind_text (stmt, 1, rating);
    if (rating && content)
        sqlite3_bind_text (stmt, 2, content, (int) content_len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null (stmt, 2);
    if (rating)
        sqlite3_bind_int64 (stmt, 3, at);
    else
        sqlite3_bind_null (stmt, 3);
    sqlite3_bind_int64 (stmt, 4, message_id);
    return s_write (self, stmt);
}

int
kf_store_feedback_stats_pack (kf_store_t *self, msgpack_packer *pk)
{
    //  Rare (stats), so prepared on demand: per bot, and the most disliked knowledge items
    static const char *by_bot =
        "SELECT s.bot_id, sum (t.feedback = 'like'), sum (t.feedback = 'dislike') FROM turns t"
        " JOIN sessions s ON s.id = t.session_id WHERE t.feedback IS NOT NULL GROUP BY s.bot_id"
        " ORDER BY s.bot_id LIMIT 100";
    static const char *by_item =
        "SELECT json_extract (t.sources, '$[0].id'), json_extract (t.sources, '$[0].external_id'),"
        " sum (t.feedback = 'like'), sum (t.feedback = 'dislike') FROM turns t"
        " WHERE t.feedback IS NOT NULL AND json_array_length (t.sources) > 0"
        " GROUP BY 1 ORDER BY 4 DESC, 1 LIMIT 20";
    sqlite3_stmt *stmt [2] = { NULL, NULL };
    if (sqlite3_prepare_v2 (self->db, by_bot, -1, &stmt [0], NULL) != SQLITE_OK
    ||  sqlite3_prepare_v2 (self->db, by_item, -1, &stmt [1], NULL) != SQLITE_OK) {
        sqlite3_finalize (stmt [0]);
        return -1;
    }
    msgpack_pack_map (pk, 2);
    for (int which = 0; which < 2; which++) {
        kf_mp_pack_cstr (pk, which == 0 ? "by_bot" : "by_item");
        int rows = 0;
        while (sqlite3_step (stmt [which]) == SQLITE_ROW)
            rows++;
        sqlite3_reset (stmt [which]);
        msgpack_pack_array (pk, rows);
        for (int row = 0; row < rows && sqlite3_step (stmt [which]) == SQLITE_ROW; row++) {
            int base = which == 0 ? 1 : 2;
            msgpack_pack_map (pk, which == 0 ? 3 : 4);
            if (which == 0)
                kf_mp_pack_kv_str (pk, "bot_id", (const char *) sqlite3_column_text (stmt [0], 0));
            else {
                kf_mp_pack_kv_int (pk, "item_id", sqlite3_column_int64 (stmt [1], 0));
                kf_mp_pack_kv_str (pk, "external_id", (const char *) sqlite3_column_text (stmt [1], 1));
            }
            kf_mp_pack_kv_int (pk, "likes", sqlite3_column_int64 (stmt [which], base));
            kf_mp_pack_kv_int (pk, "dislikes", sqlite3_column_int64 (stmt [which], base + 1));
        }
        sqlite3_finalize (stmt [which]);
    }
    return 0;
}

static int s_record_write (kf_store_t *self, const kf_record_row_t *record, int64_t *message_id);

int
kf_store_record_put (kf_store_t *self, const kf_record_row_t *record, int64_t *message_id)
{
    //  A record whose write fails takes back itself only, not the batch it shares with others
    if (kf_store_savepoint (self, "record"))
        return -1;
    return kf_store_savepoint_end (self, "record", s_record_write (self, record, message_id));
}

static int
s_record_write (kf_store_t *self, const kf_record_row_t *record, int64_t *message_id)
{
    sqlite3_stmt *stmt = self->stmt [S_RECORD_INSERT];
    int64_t id = kf_store_next_message_id (self);
    sqlite3_bind_int64 (stmt, 1, id);
    s_bind_text (stmt, 2, record->session_id);
    s_bind_text (stmt, 3, record->role);
    sqlite3_bind_text (stmt, 4, record->content, (int) record->content_len, SQLITE_TRANSIENT);
    s_bind_text (stmt, 5, record->type);
    sqlite3_bind_text (stmt, 6, record->record_id, (int) record->record_id_len, SQLITE_TRANSIENT);
    if (record->sender_id)
        sqlite3_bind_text (stmt, 7, record->sender_id, (int) record->sender_id_len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null (stmt, 7);
    if (record->title)
        sqlite3_bind_text (stmt, 8, record->title, (int) record->title_len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null (stmt, 8);
    sqlite3_bind_int64 (stmt, 9, record->send_time);
    if (s_write (self, stmt))
        return -1;
    if (sqlite3_changes (self->db) > 0) {
        *message_id = id;
        return 1;
    }
    //  Saved before: report the id it has
    sqlite3_stmt *find = self->stmt [S_RECORD_FIND];
    s_bind_text (find, 1, record->session_id);
    sqlite3_bind_text (find, 2, record->record_id, (int) record->record_id_len, SQLITE_TRANSIENT);
    *message_id = sqlite3_step (find) == SQLITE_ROW ? sqlite3_column_int64 (find, 0) : 0;
    sqlite3_reset (find);
    sqlite3_clear_bindings (find);      //  s_bind_text does not copy
    return 2;
}
