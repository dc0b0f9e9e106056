/*  store_query.c - the helpers of store modules that build a statement per call (rare edits and
    list queries: intents, chit-chat, tickets, escalations, knowledge items): prepare, write once,
    bind text, filters that keep indexes usable, and a page of rows packed as a list answer. */
#include "broker/store.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mpack.h"
#include <assert.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

sqlite3_stmt *
kf_store_statement (kf_store_t *self, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2 (kf_store_db (self), sql, -1, &stmt, NULL) != SQLITE_OK) {
        kf_error ("cannot prepare \"%.60s\": %s", sql, sqlite3_errmsg (kf_store_db (self)));
        sqlite3_finalize (stmt);
        return NULL;
    }
    return stmt;
}

int
kf_store_write_once (kf_store_t *self, sqlite3_stmt *stmt)
{
    if (!stmt)
        return -1;
    int rc = kf_store_write_step (self, stmt);
    sqlite3_finalize (stmt);
    return rc;
}

int
kf_store_pack_page (sqlite3_stmt *rows, kf_store_row_fn *fn, void *arg, int64_t total, int64_t page,
                    int64_t page_size, int extra, msgpack_packer *pk)
{
    msgpack_sbuffer data;
    msgpack_sbuffer_init (&data);
    msgpack_packer data_pk;
    msgpack_packer_init (&data_pk, &data, msgpack_sbuffer_write);
    uint32_t shown = 0;
    int rc = SQLITE_ERROR;
    while (total >= 0 && shown < page_size && (rc = sqlite3_step (rows)) == SQLITE_ROW) {
        fn (arg, rows, &data_pk);
        shown++;
    }
    if (shown == page_size)
        rc = SQLITE_DONE;       //  A full page: what follows is not asked for
    sqlite3_finalize (rows);
    if (rc == SQLITE_DONE) {
        msgpack_pack_map (pk, 5 + extra);
        kf_mp_pack_cstr (pk, "data");
        msgpack_pack_array (pk, shown);
        pk->callback (pk->data, data.data, data.size);
        kf_mp_pack_page (pk, total, page, page_size);
    }
    msgpack_sbuffer_destroy (&data);
    return rc == SQLITE_DONE ? 0 : -1;
}

void
kf_store_where (char *sql, size_t size, const char *from, const char *const *columns,
                const char *const *given, int count)
{
    size_t used = snprintf (sql, size, "%s", from);
    for (int i = 0; i < count && used < size; i++)
        if (given [i])
            used += snprintf (sql + used, size - used, " AND %s = ?%d", columns [i], i + 1);
    assert (used < size);
}

void
kf_store_bind_text (sqlite3_stmt *stmt, int index, const char *text, size_t len)
{
    if (text)
        sqlite3_bind_text (stmt, index, text, (int) len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null (stmt, index);
}

int64_t
kf_store_int64 (kf_store_t *self, const char *sql, const char *text, int64_t arg, int64_t fallback)
{
    sqlite3_stmt *stmt = kf_store_statement (self, sql);
    if (!stmt)
        return -1;
    sqlite3_bind_text (stmt, 1, text, -1, SQLITE_TRANSIENT);
    if (sqlite3_bind_parameter_count (stmt) >= 2)
        sqlite3_bind_int64 (stmt, 2, arg);
    int rc = sqlite3_step (stmt);
    int64_t value = rc == SQLITE_ROW ? sqlite3_column_int64 (stmt, 0)
                  : rc == SQLITE_DONE ? fallback : -1;
    sqlite3_finalize (stmt);
    return value;
}

const char *
kf_store_rows_source (kf_store_t *self, const char *table, const char *bot_id)
{
    if (strcmp (bot_id, "default") == 0)
        return bot_id;
    char sql [128];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM %s WHERE bot_id = ?1", table);
    int64_t count = kf_store_int64 (self, sql, bot_id, 0, 0);
    return count < 0 ? NULL : count > 0 ? bot_id : "default";
}

int
kf_store_rows_adopt (kf_store_t *self, const char *table, const char *columns, const char *stamps,
                     const char *bot_id)
{
    char now [64] = "?2";               //  "?2" once per stamp column
    for (const char *comma = strchr (stamps, ','); comma; comma = strchr (comma + 1, ','))
        strncat (now, ", ?2", sizeof now - strlen (now) - 1);
    char sql [512];
    int len = snprintf (sql, sizeof sql, "INSERT INTO %s (bot_id, %s, %s) SELECT ?1, %s, %s FROM %s"
                        " WHERE bot_id = 'default' ORDER BY id", table, columns, stamps, columns,
                        now, table);
    assert (len > 0 && (size_t) len < sizeof sql);
    sqlite3_stmt *stmt = kf_store_statement (self, sql);
    if (stmt) {
        sqlite3_bind_text (stmt, 1, bot_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64 (stmt, 2, kf_now_ms ());
    }
    return kf_store_write_once (self, stmt);
}
