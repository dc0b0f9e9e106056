/*  escalations.c - handed-over conversations in SQLite: rows, cards, agent turns, the list. */
#include "broker/escalations.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include <assert.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    E_INSERT, E_USER, E_GET, E_ASSIGN, E_FINISH, E_LATEST, E_ENTRY, E_STALE,
    E_AGENT_TURN, E_STATEMENTS
};

static const char *s_sql [E_STATEMENTS] = {
    [E_INSERT] =
        "INSERT INTO escalations (id, session_id, bot_id, user_id, channel, reason, intent,"
        " emotion_score, failed_attempts, card, status, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
    [E_USER] = "SELECT name, email, mobile, photo_url FROM users WHERE user_id = ?",
    [E_GET] = "SELECT session_id, status, coalesce (agent_id, ''), reason FROM escalations WHERE id = ?",
    [E_ASSIGN] =
        "UPDATE escalations SET status = 'assigned', agent_id = ?2, assigned_at = ?3 WHERE id = ?1",
    [E_FINISH] =
        "UPDATE escalations SET status = ?2, agent_id = coalesce (?3, agent_id), resolved_at = ?4,"
        " note = ?5 WHERE id = ?1",
    [E_LATEST] = "SELECT reason FROM escalations WHERE session_id = ? ORDER BY id DESC LIMIT 1",
    [E_ENTRY] =
        "SELECT card, status, agent_id, assigned_at, resolved_at, note FROM escalations WHERE id = ?",
    [E_STALE] =
        "SELECT e.id, e.session_id FROM escalations e LEFT JOIN sessions s ON s.id = e.session_id"
        " WHERE e.status IN ('pending', 'assigned')"
        " AND (s.id IS NULL OR s.state = 'closed' OR s.deleted_at IS NOT NULL) LIMIT 100",
    [E_AGENT_TURN] =
        "INSERT INTO turns (id, session_id, role, content, response_type, response_content, status,"
        " sender_id, created_at) VALUES (?, ?, 'agent', ?, ?, ?, 'ok', ?, ?)",
};

struct _kf_escalations_t {
    kf_store_t *store;          //  Borrowed
    sqlite3_stmt *stmt [E_STATEMENTS];
    int64_t next_id;            //  Next escalation id to hand out
    uint64_t by_reason [6];     //  Since start: escalations by reason (1-5)
    uint64_t resolved, closed, agent_replies;
};

kf_escalations_t *
kf_escalations_new (kf_store_t *store)
{
    kf_escalations_t *self = kf_calloc (1, sizeof *self);
    self->store = store;
    if (kf_store_prepare (store, s_sql, self->stmt, E_STATEMENTS, "escalations")) {
        kf_escalations_destroy (&self);
        return NULL;
    }
    sqlite3_stmt *stmt = kf_store_statement (store, "SELECT coalesce (max (id), 0) + 1"
                                                    " FROM escalations");
    self->next_id = stmt && sqlite3_step (stmt) == SQLITE_ROW ? sqlite3_column_int64 (stmt, 0) : 1;
    sqlite3_finalize (stmt);
    return self;
}

void
kf_escalations_destroy (kf_escalations_t **self_p)
{
    kf_escalations_t *self = *self_p;
    if (!self)
        return;
    kf_store_finalize (self->stmt, E_STATEMENTS);
    free (self);
    *self_p = NULL;
}

const char *
kf_escalation_reason_name (int reason)
{
    static const char *names [] = { "unknown", "user_request", "keyword", "failed_attempts",
                                    "negative_emotion", "repeated_question" };
    return reason >= 1 && reason <= 5 ? names [reason] : names [0];
}

//  Packs the customer's profile {user_id, name, email, mobile, photo_url}: "" for what is unknown
static void
s_pack_user (kf_escalations_t *self, const char *user_id, msgpack_packer *pk)
{
    static const char *names [] = { "name", "email", "mobile", "photo_url" };
    sqlite3_stmt *stmt = self->stmt [E_USER];
    sqlite3_bind_text (stmt, 1, user_id, -1, SQLITE_STATIC);
    bool has_row = *user_id && sqlite3_step (stmt) == SQLITE_ROW;
    msgpack_pack_map (pk, 5);
    kf_mp_pack_kv_str (pk, "user_id", user_id);
    for (int i = 0; i < 4; i++) {
        const char *value = has_row ? (const char *) sqlite3_column_text (stmt, i) : NULL;
        kf_mp_pack_kv_str (pk, names [i], value ? value : "");
    }
    sqlite3_reset (stmt);
}

static void
s_pack_card (kf_escalations_t *self, const kf_escalation_in_t *in, int64_t id, msgpack_packer *pk)
{
    kf_session_t *session = in->session;
    msgpack_pack_map (pk, 15);
    kf_mp_pack_kv_int (pk, "escalation_id", id);
    kf_mp_pack_kv_str (pk, "session_id", session->id);
    kf_mp_pack_kv_str (pk, "bot_id", session->bot_id);
    kf_mp_pack_kv_str (pk, "channel", session->channel);
    kf_mp_pack_cstr (pk, "user");
    s_pack_user (self, session->user_id, pk);
    kf_mp_pack_kv_int (pk, "reason", in->reason);
    kf_mp_pack_kv_str (pk, "reason_name", kf_escalation_reason_name (in->reason));
    kf_mp_pack_cstr (pk, "reason_text");
    if (in->reason_text)
        kf_mp_pack_str (pk, in->reason_text, in->reason_text_len);
    else
        msgpack_pack_nil (pk);
    kf_mp_pack_kv_str (pk, "intent", in->intent);          //  nil when NULL
    kf_mp_pack_cstr (pk, "emotion_score");
    if (in->emotion_score >= 0)
        msgpack_pack_double (pk, in->emotion_score);
    else
        msgpack_pack_nil (pk);
    kf_mp_pack_kv_int (pk, "failed_attempts", session->failed_attempts);
    kf_mp_pack_kv_int (pk, "turn_count", session->turn_count);
    kf_mp_pack_cstr (pk, "summary");
    msgpack_pack_array (pk, session->recent_count);
    for (int i = 0; i < session->recent_count; i++) {
        const char *role, *content;
        kf_session_recent (session, i, &role, &content);
        msgpack_pack_map (pk, 2);
        kf_mp_pack_kv_str (pk, "role", role);
        kf_mp_pack_kv_str (pk, "content", content);
    }
    kf_mp_pack_kv_int (pk, "created_at", in->created_at);
    kf_mp_pack_kv_str (pk, "status", "pending");
}

int64_t
kf_escalations_create (kf_escalations_t *self, const kf_escalation_in_t *in, msgpack_sbuffer *card)
{
    assert (in->reason >= 1 && in->reason <= 5);
    int64_t id = self->next_id++;
    msgpack_packer pk;
    msgpack_packer_init (&pk, card, msgpack_sbuffer_write);
    s_pack_card (self, in, id, &pk);
    msgpack_unpacked unpacked;
    char *json = kf_mp_unpack_one (card->data, card->size, &unpacked)
               ? kf_json_from_msgpack (&unpacked.data) : NULL;
    msgpack_unpacked_destroy (&unpacked);
    if (!json)
        return -1;
    kf_session_t *session = in->session;
    sqlite3_stmt *stmt = self->stmt [E_INSERT];
    sqlite3_bind_int64 (stmt, 1, id);
    sqlite3_bind_text (stmt, 2, session->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 3, session->bot_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 4, session->user_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 5, session->channel, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int (stmt, 6, in->reason);
    kf_store_bind_text (stmt, 7, in->intent, in->intent ? strlen (in->intent) : 0);
    if (in->emotion_score >= 0)
        sqlite3_bind_double (stmt, 8, in->emotion_score);
    else
        sqlite3_bind_null (stmt, 8);
    sqlite3_bind_int64 (stmt, 9, session->failed_attempts);
    sqlite3_bind_text (stmt, 10, json, -1, free);
    sqlite3_bind_int64 (stmt, 11, in->created_at);
    if (kf_store_write_step (self->store, stmt))
        return -1;
    self->by_reason [in->reason]++;
    return id;
}

int
kf_escalations_get (kf_escalations_t *self, int64_t id, kf_escalation_row_t *row)
{
    sqlite3_stmt *stmt = self->stmt [E_GET];
    sqlite3_bind_int64 (stmt, 1, id);
    int rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW) {
        row->id = id;
        snprintf (row->session_id, sizeof row->session_id, "%s", sqlite3_column_text (stmt, 0));
        snprintf (row->status, sizeof row->status, "%s", sqlite3_column_text (stmt, 1));
        snprintf (row->agent_id, sizeof row->agent_id, "%s", sqlite3_column_text (stmt, 2));
        row->reason = sqlite3_column_int (stmt, 3);
    }
    sqlite3_reset (stmt);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
kf_escalations_assign (kf_escalations_t *self, int64_t id, const char *agent_id, size_t len,
                       int64_t at)
{
    sqlite3_stmt *stmt = self->stmt [E_ASSIGN];
    sqlite3_bind_int64 (stmt, 1, id);
    sqlite3_bind_text (stmt, 2, agent_id, (int) len, SQLITE_TRANSIENT);
    sqlite3_bind_int64 (stmt, 3, at);
    return kf_store_write_step (self->store, stmt);
}

int
kf_escalations_finish (kf_escalations_t *self, int64_t id, const char *status, const char *agent_id,
                       size_t agent_len, const char *note, size_t note_len, int64_t at)
{
    sqlite3_stmt *stmt = self->stmt [E_FINISH];
    sqlite3_bind_int64 (stmt, 1, id);
    sqlite3_bind_text (stmt, 2, status, -1, SQLITE_STATIC);
    kf_store_bind_text (stmt, 3, agent_id, agent_len);
    sqlite3_bind_int64 (stmt, 4, at);
    kf_store_bind_text (stmt, 5, note, note_len);
    int rc = kf_store_write_step (self->store, stmt);
    if (rc == 0 && strcmp (status, "resolved") == 0)
        self->resolved++;
    else
    if (rc == 0)
        self->closed++;
    return rc;
}

int
kf_escalations_latest_reason (kf_escalations_t *self, const char *session_id)
{
    sqlite3_stmt *stmt = self->stmt [E_LATEST];
    sqlite3_bind_text (stmt, 1, session_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step (stmt);
    int reason = rc == SQLITE_ROW ? sqlite3_column_int (stmt, 0) : 0;
    sqlite3_reset (stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? reason : -1;
}

//  Packs an entry from a row (card, status, agent_id, assigned_at, resolved_at, note): the card's
//  pairs but the ones the row overrides, then those. A card that does not parse packs as its
//  overrides alone.
static void
s_pack_entry (sqlite3_stmt *stmt, msgpack_packer *pk)
{
    static const char *overrides [] = { "status", "agent_id", "assigned_at", "resolved_at", "note" };
    const char *json = (const char *) sqlite3_column_text (stmt, 0);
    msgpack_unpacked card;
    bool has_card = kf_json_unpack (json, &card) && card.data.type == MSGPACK_OBJECT_MAP;
    uint32_t kept = 0;
    for (uint32_t i = 0; has_card && i < card.data.via.map.size; i++) {
        bool is_overridden = false;
        for (int j = 0; j < 5; j++)
            is_overridden |= kf_mp_str_eq_key (&card.data.via.map.ptr [i].key, overrides [j]);
        kept += !is_overridden;
    }
    msgpack_pack_map (pk, kept + 5);
    for (uint32_t i = 0; has_card && i < card.data.via.map.size; i++) {
        bool is_overridden = false;
        for (int j = 0; j < 5; j++)
            is_overridden |= kf_mp_str_eq_key (&card.data.via.map.ptr [i].key, overrides [j]);
        if (!is_overridden) {
            msgpack_pack_object (pk, card.data.via.map.ptr [i].key);
            msgpack_pack_object (pk, card.data.via.map.ptr [i].val);
        }
    }
    for (int j = 0; j < 5; j++) {
        kf_mp_pack_cstr (pk, overrides [j]);
        int column = j + 1;
        if (sqlite3_column_type (stmt, column) == SQLITE_NULL)
            msgpack_pack_nil (pk);
        else
        if (sqlite3_column_type (stmt, column) == SQLITE_INTEGER)
            msgpack_pack_int64 (pk, sqlite3_column_int64 (stmt, column));
        else
            kf_mp_pack_cstr (pk, (const char *) sqlite3_column_text (stmt, column));
    }
    msgpack_unpacked_destroy (&card);
}

int
kf_escalations_pack (kf_escalations_t *self, int64_t id, msgpack_packer *pk)
{
    sqlite3_stmt *stmt = self->stmt [E_ENTRY];
    sqlite3_bind_int64 (stmt, 1, id);
    int rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW)
        s_pack_entry (stmt, pk);
    sqlite3_reset (stmt);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static void
s_pack_list_entry (void *arg, sqlite3_stmt *row, msgpack_packer *pk)
{
    (void) arg;
    s_pack_entry (row, pk);
}

int
kf_escalations_list_pack (kf_escalations_t *self, const kf_escalation_filter_t *filter,
                          msgpack_packer *pk)
{
    //  A term only for each filter given, so the status or session index narrows the list
    static const char *columns [4] = { "e.status", "e.session_id", "e.bot_id", "e.agent_id" };
    const char *given [4] = {
        filter->status_len ? filter->status : NULL, filter->session_id_len ? filter->session_id : NULL,
        filter->bot_id_len ? filter->bot_id : NULL, filter->agent_id_len ? filter->agent_id : NULL
    };
    const size_t lens [4] = { filter->status_len, filter->session_id_len, filter->bot_id_len,
                              filter->agent_id_len };
    char where [512], sql [768];
    kf_store_where (where, sizeof where, " FROM escalations e WHERE NOT EXISTS (SELECT 1 FROM"
                    " sessions s WHERE s.id = e.session_id AND s.deleted_at IS NOT NULL)",
                    columns, given, 4);
    snprintf (sql, sizeof sql, "SELECT count(*)%s", where);
    sqlite3_stmt *count = kf_store_statement (self->store, sql);
    snprintf (sql, sizeof sql, "SELECT e.card, e.status, e.agent_id, e.assigned_at, e.resolved_at,"
              " e.note%s ORDER BY e.id DESC LIMIT ?5 OFFSET ?6", where);
    sqlite3_stmt *rows = count ? kf_store_statement (self->store, sql) : NULL;
    if (!rows) {
        sqlite3_finalize (count);
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        kf_store_bind_text (count, i + 1, given [i], lens [i]);
        kf_store_bind_text (rows, i + 1, given [i], lens [i]);
    }
    sqlite3_bind_int64 (rows, 5, filter->page_size);
    sqlite3_bind_int64 (rows, 6, (filter->page - 1) * filter->page_size);
    int64_t total = sqlite3_step (count) == SQLITE_ROW ? sqlite3_column_int64 (count, 0) : -1;
    sqlite3_finalize (count);
    return kf_store_pack_page (rows, s_pack_list_entry, NULL, total, filter->page,
                               filter->page_size, 0, pk);
}

int
kf_escalations_stale (kf_escalations_t *self, kf_escalation_fn *fn, void *arg)
{
    //  Collected first: the callback writes to the same table
    int64_t ids [100];
    char sessions [100][32];
    int found = 0;
    sqlite3_stmt *stmt = self->stmt [E_STALE];
    while (found < 100 && sqlite3_step (stmt) == SQLITE_ROW) {
        ids [found] = sqlite3_column_int64 (stmt, 0);
        snprintf (sessions [found], sizeof sessions [found], "%s", sqlite3_column_text (stmt, 1));
        found++;
    }
    sqlite3_reset (stmt);
    for (int i = 0; i < found; i++)
        fn (arg, ids [i], sessions [i]);
    return found;
}

int
kf_escalations_agent_turn (kf_escalations_t *self, const kf_agent_turn_t *turn)
{
    sqlite3_stmt *stmt = self->stmt [E_AGENT_TURN];
    sqlite3_bind_int64 (stmt, 1, turn->id);
    sqlite3_bind_text (stmt, 2, turn->session_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 3, turn->content, (int) turn->content_len, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 4, turn->response_type, -1, SQLITE_TRANSIENT);
    if (turn->response_content && turn->response_content->type != MSGPACK_OBJECT_NIL)
        sqlite3_bind_text (stmt, 5, kf_json_from_msgpack (turn->response_content), -1, free);
    else
        sqlite3_bind_null (stmt, 5);
    sqlite3_bind_text (stmt, 6, turn->agent_id, (int) turn->agent_len, SQLITE_TRANSIENT);
    sqlite3_bind_int64 (stmt, 7, turn->created_at);
    if (kf_store_write_step (self->store, stmt))
        return -1;
    self->agent_replies++;
    return 0;
}

void
kf_escalations_stats_pack (kf_escalations_t *self, msgpack_packer *pk)
{
    //  The people's queue as it is now: by the status index, two counts
    int64_t waiting [2] = { 0, 0 };
    static const char *states [2] = { "pending", "assigned" };
    sqlite3_stmt *count = kf_store_statement (self->store,
                                              "SELECT count(*) FROM escalations WHERE status = ?");
    for (int i = 0; count && i < 2; i++) {
        sqlite3_bind_text (count, 1, states [i], -1, SQLITE_STATIC);
        waiting [i] = sqlite3_step (count) == SQLITE_ROW ? sqlite3_column_int64 (count, 0) : -1;
        sqlite3_reset (count);
    }
    sqlite3_finalize (count);
    msgpack_pack_map (pk, 6);
    kf_mp_pack_kv_int (pk, "pending", waiting [0]);
    kf_mp_pack_kv_int (pk, "assigned", waiting [1]);
    kf_mp_pack_cstr (pk, "escalated");
    msgpack_pack_map (pk, 5);
    for (int reason = 1; reason <= 5; reason++)
        kf_mp_pack_kv_int (pk, kf_escalation_reason_name (reason), (int64_t) self->by_reason [reason]);
    kf_mp_pack_kv_int (pk, "resolved", (int64_t) self->resolved);
    kf_mp_pack_kv_int (pk, "closed", (int64_t) self->closed);
    kf_mp_pack_kv_int (pk, "agent_replies", (int64_t) self->agent_replies);
}
