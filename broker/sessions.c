/*  sessions.c - session cache with recent-turn rings, per-session job queues, and the handoff,
    dialog and repeat state stored with each session. */
#include "broker/sessions.h"
#include "common/clock.h"
#include "common/dict.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { S_LOAD_STATE, S_SAVE, S_SAVE_MINUTE, S_STATEMENTS };

//  The columns of issue 5 are read and written here, beside the session's counters, so one UPDATE
//  per answered turn stores all of it
static const char *s_sql [S_STATEMENTS] = {
    [S_LOAD_STATE] =
        "SELECT handoff_state, escalation_id, slots, repeat_key, repeat_count,"
        " (SELECT agent_id FROM escalations e WHERE e.id = s.escalation_id)"
        " FROM sessions s WHERE id = ?",
    [S_SAVE] =
        "UPDATE sessions SET turn_count = ?2, failed_attempts = ?3, updated_at = ?4,"
        " labels = coalesce (?5, labels), slots = coalesce (?6, slots), repeat_key = ?7,"
        " repeat_count = ?8,"
        " handoff_state = ?9, escalation_id = ?10 WHERE id = ?1",
    //  The same, when the minute of its last activity moved (the idle index changes then only)
    [S_SAVE_MINUTE] =
        "UPDATE sessions SET turn_count = ?2, failed_attempts = ?3, updated_at = ?4,"
        " labels = coalesce (?5, labels), slots = coalesce (?6, slots), repeat_key = ?7,"
        " repeat_count = ?8,"
        " handoff_state = ?9, escalation_id = ?10, active_minute = ?4 / 60000 WHERE id = ?1",
};

struct _kf_sessions_t {
    kf_store_t *store;          //  Borrowed
    kf_dict_t *cache;           //  Id -> kf_session_t (owned)
    int random_fd;              //  /dev/urandom, for session ids
    sqlite3_stmt *stmt [S_STATEMENTS];
};

kf_sessions_t *
kf_sessions_new (kf_store_t *store)
{
    kf_sessions_t *self = kf_calloc (1, sizeof *self);
    self->store = store;
    self->cache = kf_dict_new ();
    self->random_fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (kf_store_prepare (store, s_sql, self->stmt, S_STATEMENTS, "sessions"))
        kf_sessions_destroy (&self);
    return self;
}

static void
s_session_free (kf_session_t *session)
{
    free (session->user_id);
    free (session->channel);
    free (session->bot_id);
    free (session->upstream_conversation_id);
    free (session->agent_id);
    free (session->slots);
    free (session->repeat_key);
    for (int i = 0; i < KF_SESSION_RECENT; i++) {
        free (session->recent_role [i]);
        free (session->recent_content [i]);
    }
    free (session);
}

void
kf_sessions_destroy (kf_sessions_t **self_p)
{
    kf_sessions_t *self = *self_p;
    if (!self)
        return;
    size_t cursor = 0;
    void *value;
    while (kf_dict_next (self->cache, &cursor, NULL, &value))
        s_session_free (value);
    kf_dict_destroy (&self->cache);
    kf_store_finalize (self->stmt, S_STATEMENTS);
    if (self->random_fd >= 0)
        close (self->random_fd);
    free (self);
    *self_p = NULL;
}

//  "s_" + 20 hex digits: 80 random bits, not guessable from another session's id
static void
s_new_id (kf_sessions_t *self, char *id)
{
    unsigned char bytes [10];
    if (self->random_fd < 0 || read (self->random_fd, bytes, sizeof bytes) != sizeof bytes) {
        uint64_t fallback = (uint64_t) kf_mono_us () ^ ((uint64_t) getpid () << 40);
        for (size_t i = 0; i < sizeof bytes; i++)
            bytes [i] = (unsigned char) (fallback >> (i * 6));
    }
    strcpy (id, "s_");
    for (size_t i = 0; i < sizeof bytes; i++)
        sprintf (id + 2 + i * 2, "%02x", bytes [i]);
}

kf_session_t *
kf_sessions_create (kf_sessions_t *self, const char *user_id, size_t user_len,
                    const char *channel, const char *bot_id, size_t bot_len)
{
    kf_session_t *session = kf_calloc (1, sizeof *session);
    s_new_id (self, session->id);
    session->user_id = kf_strndup (user_id ? user_id : "", user_id ? user_len : 0);
    session->channel = kf_strdup (channel ? channel : "api");
    session->bot_id = kf_strndup (bot_id ? bot_id : "default", bot_id ? bot_len : 7);
    session->created_at = session->updated_at = kf_now_ms ();
    session->saved_minute = session->updated_at / 60000;            //  The insert writes it
    session->last_used_us = kf_mono_us ();
    session->created_batch = kf_store_batch (self->store) + 1;     //  0 means "from the database"
    session->slots = kf_strndup ("\x80", 1);                       //  {}
    session->slots_size = 1;
    kf_session_row_t row = {
        .user_id = session->user_id, .channel = session->channel, .bot_id = session->bot_id,
        .state = "open", .created_at = session->created_at, .updated_at = session->updated_at
    };
    memcpy (row.id, session->id, sizeof row.id);
    if (kf_store_session_insert (self->store, &row)) {
        s_session_free (session);
        return NULL;
    }
    kf_dict_put (self->cache, session->id, strlen (session->id), session);
    return session;
}

//  Copies `slots` (a map) into the session, unless it holds those bytes
//  already. Returns whether they changed.
static bool
s_slots_put (kf_session_t *session, const msgpack_object *slots)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_object (&pk, *slots);
    if (session->slots && buffer.size == session->slots_size
    &&  memcmp (buffer.data, session->slots, buffer.size) == 0) {
        msgpack_sbuffer_destroy (&buffer);
        return false;           //  The common turn: the worker sent back what it was given
    }
    free (session->slots);
    session->slots_size = buffer.size;
    session->slots = msgpack_sbuffer_release (&buffer);
    const msgpack_object *awaiting = kf_mp_get (slots, "awaiting");
    session->is_dialog_open = awaiting && awaiting->type != MSGPACK_OBJECT_NIL
        && !(awaiting->type == MSGPACK_OBJECT_STR && awaiting->via.str.size == 0)
        && !(awaiting->type == MSGPACK_OBJECT_ARRAY && awaiting->via.array.size == 0)
        && !(awaiting->type == MSGPACK_OBJECT_MAP && awaiting->via.map.size == 0)
        && !(awaiting->type == MSGPACK_OBJECT_BOOLEAN && !awaiting->via.boolean);
    return true;
}

void
kf_session_set_slots (kf_session_t *session, const msgpack_object *slots)
{
    if (slots && slots->type == MSGPACK_OBJECT_MAP && s_slots_put (session, slots))
        session->is_slots_dirty = true;
}

//  Reads the handoff, slots and repeat columns of a session being loaded. A stored slots text that
//  is not a JSON object reads as {}.
static void
s_load_state (kf_sessions_t *self, kf_session_t *session)
{
    sqlite3_stmt *stmt = self->stmt [S_LOAD_STATE];
    sqlite3_bind_text (stmt, 1, session->id, -1, SQLITE_STATIC);
    const char *json = NULL;
    if (sqlite3_step (stmt) == SQLITE_ROW) {
        const char *state = (const char *) sqlite3_column_text (stmt, 0);
        session->handoff = state && strcmp (state, "pending") == 0 ? KF_HANDOFF_PENDING
                         : state && strcmp (state, "assigned") == 0 ? KF_HANDOFF_ASSIGNED
                         : KF_HANDOFF_BOT;
        session->escalation_id = sqlite3_column_int64 (stmt, 1);
        json = (const char *) sqlite3_column_text (stmt, 2);
        if (sqlite3_column_type (stmt, 3) != SQLITE_NULL)
            session->repeat_key = kf_strdup ((const char *) sqlite3_column_text (stmt, 3));
        session->repeat_count = sqlite3_column_int64 (stmt, 4);
        if (session->handoff == KF_HANDOFF_ASSIGNED && sqlite3_column_type (stmt, 5) != SQLITE_NULL)
            session->agent_id = kf_strdup ((const char *) sqlite3_column_text (stmt, 5));
        if (session->handoff == KF_HANDOFF_ASSIGNED && !session->agent_id)
            session->handoff = KF_HANDOFF_PENDING;      //  Assigned needs its agent (handoff.c)
    }
    msgpack_unpacked slots;
    if (kf_json_unpack (json, &slots) && slots.data.type == MSGPACK_OBJECT_MAP)
        s_slots_put (session, &slots.data);
    else {
        session->slots = kf_strndup ("\x80", 1);
        session->slots_size = 1;
    }
    session->is_slots_dirty = false;
    msgpack_unpacked_destroy (&slots);
    sqlite3_reset (stmt);
}

//  The session's slots as JSON, as stored (heap; NULL if they could not be read), converted only
//  when a save writes them
static char *
s_slots_json (const kf_session_t *session)
{
    msgpack_unpacked slots;
    char *json = kf_mp_unpack_borrowed (session->slots, session->slots_size, &slots)
               ? kf_json_from_msgpack (&slots.data) : NULL;
    msgpack_unpacked_destroy (&slots);
    return json;
}

int
kf_sessions_save (kf_sessions_t *self, kf_session_t *session, const char *labels_json)
{
    int64_t minute = session->updated_at / 60000;
    sqlite3_stmt *stmt = self->stmt [minute == session->saved_minute ? S_SAVE : S_SAVE_MINUTE];
    session->saved_minute = minute;
    sqlite3_bind_text (stmt, 1, session->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64 (stmt, 2, session->turn_count);
    sqlite3_bind_int64 (stmt, 3, session->failed_attempts);
    sqlite3_bind_int64 (stmt, 4, session->updated_at);
    if (labels_json)
        sqlite3_bind_text (stmt, 5, labels_json, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null (stmt, 5);
    char *slots_json = session->is_slots_dirty ? s_slots_json (session) : NULL;
    if (slots_json)
        sqlite3_bind_text (stmt, 6, slots_json, -1, free);
    else
        sqlite3_bind_null (stmt, 6);        //  Unchanged: the row keeps them
    if (session->repeat_key)
        sqlite3_bind_text (stmt, 7, session->repeat_key, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null (stmt, 7);
    sqlite3_bind_int64 (stmt, 8, session->repeat_count);
    sqlite3_bind_text (stmt, 9, kf_handoff_name (session->handoff), -1, SQLITE_STATIC);
    if (session->escalation_id > 0)
        sqlite3_bind_int64 (stmt, 10, session->escalation_id);
    else
        sqlite3_bind_null (stmt, 10);
    //  A failed write loses the whole batch, and kf_sessions_restore_batch reads the session back
    session->saved_batch = kf_store_batch (self->store);
    session->is_slots_dirty = false;
    return kf_store_write_step (self->store, stmt);
}

int64_t
kf_session_count_repeat (kf_session_t *session, char *key)
{
    if (!key || !*key) {
        free (key);
        return 0;
    }
    if (session->repeat_key && strcmp (session->repeat_key, key) == 0) {
        free (key);
        return ++session->repeat_count;
    }
    free (session->repeat_key);
    session->repeat_key = key;
    return session->repeat_count = 1;
}

void
kf_session_reset_repeat (kf_session_t *session)
{
    free (session->repeat_key);
    session->repeat_key = NULL;
    session->repeat_count = 0;
}

void
kf_session_set_handoff (kf_session_t *session, kf_handoff_t state, int64_t escalation_id,
                        const char *agent_id, size_t agent_len)
{
    session->handoff = state;
    session->escalation_id = escalation_id;
    free (session->agent_id);
    session->agent_id = agent_id ? kf_strndup (agent_id, agent_len) : NULL;
}

const char *
kf_handoff_name (kf_handoff_t state)
{
    return state == KF_HANDOFF_PENDING ? "pending" : state == KF_HANDOFF_ASSIGNED ? "assigned" : "bot";
}

static void
s_on_recent (void *arg, const char *role, const char *content)
{
    kf_session_remember (arg, role, content, strlen (content));
}

kf_session_t *
kf_sessions_get (kf_sessions_t *self, const char *id, size_t len)
{
    kf_session_t *session = kf_dict_get (self->cache, id, len);
    if (session && session->is_hidden)
        return NULL;
    if (session) {
        session->last_used_us = kf_mono_us ();
        return session;
    }
    kf_session_row_t row;
    if (kf_store_session_load (self->store, id, len, &row) != 1)
        return NULL;
    session = kf_calloc (1, sizeof *session);
    memcpy (session->id, row.id, sizeof session->id);
    session->user_id = row.user_id;
    session->channel = row.channel;
    session->bot_id = row.bot_id;
    session->is_closed = row.state && strcmp (row.state, "closed") == 0;
    free (row.state);
    session->turn_count = row.turn_count;
    session->failed_attempts = row.failed_attempts;
    session->created_at = row.created_at;
    session->updated_at = row.updated_at;
    session->saved_minute = -1;
    session->upstream_conversation_id = row.upstream_conversation_id;
    session->last_used_us = kf_mono_us ();
    s_load_state (self, session);
    kf_store_recent_turns (self->store, session->id, KF_SESSION_RECENT, s_on_recent, session);
    kf_dict_put (self->cache, session->id, strlen (session->id), session);
    return session;
}

void
kf_session_set_conversation (kf_sessions_t *self, kf_session_t *session, const char *id, size_t len)
{
    const char *known = session->upstream_conversation_id;
    if (len == 0 || len > 256 || (known && strlen (known) == len && memcmp (known, id, len) == 0))
        return;
    free (session->upstream_conversation_id);
    session->upstream_conversation_id = kf_strndup (id, len);
    kf_store_session_set_conversation (self->store, session->id, session->upstream_conversation_id);
}

kf_session_t *
kf_sessions_find (kf_sessions_t *self, const char *id, size_t len, const char *user_id,
                  size_t user_len)
{
    kf_session_t *session = kf_sessions_get (self, id, len);
    if (session && user_id && *session->user_id
    && (strlen (session->user_id) != user_len || memcmp (session->user_id, user_id, user_len) != 0))
        return NULL;
    return session;
}

void
kf_session_remember (kf_session_t *session, const char *role, const char *content, size_t len)
{
    int slot = session->recent_next;
    free (session->recent_role [slot]);
    free (session->recent_content [slot]);
    session->recent_role [slot] = kf_strdup (role);
    session->recent_content [slot] = kf_strndup (content, len);
    session->recent_next = (slot + 1) % KF_SESSION_RECENT;
    if (session->recent_count < KF_SESSION_RECENT)
        session->recent_count++;
}

void
kf_session_recent (kf_session_t *session, int index, const char **role, const char **content)
{
    int first = (session->recent_next - session->recent_count + KF_SESSION_RECENT) % KF_SESSION_RECENT;
    int slot = (first + index) % KF_SESSION_RECENT;
    *role = session->recent_role [slot];
    *content = session->recent_content [slot];
}

size_t
kf_sessions_evict (kf_sessions_t *self, int64_t now_us, int64_t idle_us)
{
    size_t cursor = 0, evicted = 0;
    const char *key;
    void *value;
    while (kf_dict_next (self->cache, &cursor, &key, &value)) {
        kf_session_t *session = value;
        if (session->active || session->waiting_head || now_us - session->last_used_us < idle_us)
            continue;
        kf_dict_remove (self->cache, key, strlen (key));
        s_session_free (session);
        evicted++;
    }
    return evicted;
}

size_t
kf_sessions_trim (kf_sessions_t *self, int64_t now_us, size_t max)
{
    //  Halve the idle age until enough go: a few linear passes, no sort, and only when over
    size_t evicted = 0;
    for (int64_t idle_us = 600000000; kf_dict_size (self->cache) > max && idle_us >= 1000; idle_us /= 2)
        evicted += kf_sessions_evict (self, now_us, idle_us);
    return evicted;
}

size_t
kf_sessions_forget_batch (kf_sessions_t *self, uint64_t batch)
{
    size_t cursor = 0, forgotten = 0;
    const char *key;
    void *value;
    while (kf_dict_next (self->cache, &cursor, &key, &value)) {
        kf_session_t *session = value;
        if (session->created_batch != batch + 1 || session->active || session->waiting_head)
            continue;
        kf_dict_remove (self->cache, key, strlen (key));
        s_session_free (session);
        forgotten++;
    }
    return forgotten;
}

//  Reads back from the database what a lost batch may have changed in a session with a job
static void
s_reload (kf_sessions_t *self, kf_session_t *session)
{
    kf_session_row_t row;
    if (kf_store_session_load (self->store, session->id, strlen (session->id), &row) == 1) {
        session->turn_count = row.turn_count;
        session->failed_attempts = row.failed_attempts;
        session->updated_at = row.updated_at;
        session->is_closed = row.state && strcmp (row.state, "closed") == 0;
        kf_session_row_free (&row);
    }
    session->saved_minute = -1;
    kf_session_set_handoff (session, KF_HANDOFF_BOT, 0, NULL, 0);
    kf_session_reset_repeat (session);
    free (session->slots);
    session->slots = NULL;
    session->is_dialog_open = false;
    s_load_state (self, session);
}

size_t
kf_sessions_restore_batch (kf_sessions_t *self, uint64_t batch)
{
    size_t cursor = 0, restored = 0;
    const char *key;
    void *value;
    while (kf_dict_next (self->cache, &cursor, &key, &value)) {
        kf_session_t *session = value;
        if (session->saved_batch != batch || session->created_batch == batch + 1)
            continue;               //  Not saved in it; or made in it (kf_sessions_forget_batch)
        if (session->active || session->waiting_head)
            s_reload (self, session);
        else {
            kf_dict_remove (self->cache, key, strlen (key));
            s_session_free (session);
        }
        restored++;
    }
    return restored;
}

size_t
kf_sessions_close_idle (kf_sessions_t *self, int64_t idle_before, kf_session_fn *reopen, void *arg)
{
    size_t cursor = 0, closed = 0;
    void *value;
    while (kf_dict_next (self->cache, &cursor, NULL, &value)) {
        kf_session_t *session = value;
        if (session->is_closed || session->updated_at >= idle_before)
            continue;
        if (session->active || session->waiting_head)
            reopen (arg, session);
        else {
            session->is_closed = true;
            closed++;
        }
    }
    return closed;
}

void
kf_sessions_hide (kf_sessions_t *self, kf_session_t *session)
{
    session->is_hidden = true;
    if (session->active || session->waiting_head)
        return;
    kf_dict_remove (self->cache, session->id, strlen (session->id));
    s_session_free (session);
}

size_t
kf_sessions_cached (kf_sessions_t *self)
{
    return kf_dict_size (self->cache);
}
