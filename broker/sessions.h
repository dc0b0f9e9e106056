/*  sessions.h - the broker's cache of sessions in front of the store: counters, the last turns a
    job needs as context, the per-session queue that keeps one job in flight per session, and the
    state issue 5 added: who has the conversation (the bot or people, PROTOCOL.md 13), the dialog
    state the worker keeps in `slots`, and how often in a row the customer asked the same thing. */
#ifndef KF_SESSIONS_H
#define KF_SESSIONS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>
#include "broker/store.h"

#define KF_SESSION_RECENT 6     //  Turns sent with each job as context

typedef struct kf_job_t kf_job_t;

//  Who answers the session (sessions.handoff_state)
typedef enum {
    KF_HANDOFF_BOT = 0,         //  The bot (workers, the answer cache)
    KF_HANDOFF_PENDING,         //  Handed to people, waiting for an agent: the bot is silent
    KF_HANDOFF_ASSIGNED         //  An agent has it: the bot is silent
} kf_handoff_t;

typedef struct {
    char id [32];
    char *user_id, *channel, *bot_id;   //  Owned
    char *upstream_conversation_id;     //  Dify's conversation for this session, owned; NULL: none
    int64_t turn_count;
    int64_t failed_attempts;
    int64_t created_at, updated_at;     //  Unix ms
    char *recent_role [KF_SESSION_RECENT];      //  Ring of recent turns, owned
    char *recent_content [KF_SESSION_RECENT];
    int recent_count, recent_next;
    kf_job_t *active;           //  The job in flight, or NULL
    kf_job_t *waiting_head;     //  Jobs queued behind it, in arrival order
    kf_job_t *waiting_tail;
    int64_t last_used_us;       //  For eviction
    uint64_t created_batch;     //  Store batch of its insert (0 when loaded from the database)
    bool is_closed;             //  Closed: refuses chat
    bool is_hidden;             //  Deleted while a job ran: invisible, evicted once idle
    kf_handoff_t handoff;       //  Who answers
    int64_t escalation_id;      //  The open escalation while with people, else 0
    char *agent_id;             //  The assigned agent, owned; NULL unless KF_HANDOFF_ASSIGNED
    char *slots;                //  Dialog state: a packed msgpack map, owned (never NULL)
    size_t slots_size;
    bool is_slots_dirty;        //  Changed since the last kf_sessions_save (stored then)
    bool is_dialog_open;        //  slots has a non-empty "awaiting": the worker asked something
    char *repeat_key;           //  Last counted question, normalized (kf_text_normalize); owned
    int64_t repeat_count;       //  Times in a row it was asked (0: none)
    uint64_t saved_batch;       //  Store batch of its last kf_sessions_save (0: none yet)
    int64_t saved_minute;       //  active_minute its row holds (-1: not known, written next save)
} kf_session_t;

typedef struct _kf_sessions_t kf_sessions_t;

//  Creates the cache over `store` (borrowed), with its statements on the store's connection.
//  Returns NULL (logged) when they cannot be prepared.
kf_sessions_t *kf_sessions_new (kf_store_t *store);

//  Destroys the cache (not the store); nulls *self_p.
void kf_sessions_destroy (kf_sessions_t **self_p);

//  Creates a new session, stored in the batch. Returns it (owned by the cache), or NULL when the
//  database write failed.
kf_session_t *kf_sessions_create (kf_sessions_t *self, const char *user_id, size_t user_len,
                                  const char *channel, const char *bot_id, size_t bot_len);

//  Finds a session by id, loading it (and its recent turns) from the store on a miss. Returns NULL
//  when it does not exist.
kf_session_t *kf_sessions_get (kf_sessions_t *self, const char *id, size_t len);

//  Like kf_sessions_get, as seen by `user_id` (NULL: any user): a session that belongs to another
//  user is reported absent, so no one learns another user's session exists.
kf_session_t *kf_sessions_find (kf_sessions_t *self, const char *id, size_t len,
                                const char *user_id, size_t user_len);

//  Stores what the cache holds of a session's changing state in the open batch: turn_count,
//  failed_attempts, updated_at, the labels (`labels_json`, NULL keeps the stored ones), slots
//  (only when they changed since the last save), repeat_key and repeat_count, handoff_state and
//  escalation_id. Returns 0 or -1 (the batch is then lost: see kf_sessions_restore_batch).
int kf_sessions_save (kf_sessions_t *self, kf_session_t *session, const char *labels_json);

//  Replaces the session's slots with `slots` (a map; anything else is ignored: the session keeps
//  its slots). The same bytes as it has change nothing (the worker sends them back every turn).
//  Not stored until kf_sessions_save.
void kf_session_set_slots (kf_session_t *session, const msgpack_object *slots);

//  Counts a customer message for repeats: `key` is its normalized text (heap, taken over; NULL or
//  "" for a message with nothing left after normalizing, which counts 0 and leaves the key as it
//  was). The same key as the last counted one adds 1, another starts again at 1. Returns the new
//  count. Not stored until kf_sessions_save.
int64_t kf_session_count_repeat (kf_session_t *session, char *key);

//  Forgets repeats: count 0, no key (a chit-chat answer, a resolved handoff).
void kf_session_reset_repeat (kf_session_t *session);

//  Sets who answers: `state`, the open escalation (0 none) and the assigned agent (NULL none;
//  copied). Not stored until kf_sessions_save.
void kf_session_set_handoff (kf_session_t *session, kf_handoff_t state, int64_t escalation_id,
                             const char *agent_id, size_t agent_len);

//  "bot", "pending" or "assigned".
const char *kf_handoff_name (kf_handoff_t state);

//  Appends a turn to the session's recent-turn ring (copies the text).
void kf_session_remember (kf_session_t *session, const char *role, const char *content, size_t len);

//  Remembers the upstream (Dify) conversation id of the session, in the cache and the store, when
//  it differs from the one it has. `len` 0 does nothing.
void kf_session_set_conversation (kf_sessions_t *self, kf_session_t *session, const char *id,
                                  size_t len);

//  Iterates the recent turns oldest first: index 0..recent_count-1.
void kf_session_recent (kf_session_t *session, int index, const char **role, const char **content);

//  Drops cached sessions idle for `idle_us` with no job in flight or queued. Returns how many.
size_t kf_sessions_evict (kf_sessions_t *self, int64_t now_us, int64_t idle_us);

//  Keeps the cache near `max` sessions: when it holds more, drops idle sessions, the longest idle
//  first, in a few passes over the table. Sessions with jobs stay. Returns how many went.
size_t kf_sessions_trim (kf_sessions_t *self, int64_t now_us, size_t max);

//  Forgets the sessions created in store batch `batch` (rolled back: they do not exist). The caller
//  has failed their jobs first. Returns how many.
size_t kf_sessions_forget_batch (kf_sessions_t *self, uint64_t batch);

//  A store batch was rolled back: what the cache holds of the sessions saved in it (handoff state,
//  slots, counters, closing) is not what the database holds. Those with no job are dropped, to be
//  loaded again when next used; those with a job keep their place and read their handoff, slots
//  and repeat state back from the database. Call before failing the batch's jobs, so a job that
//  starts meanwhile sees the stored state. Returns how many were dropped or read back.
size_t kf_sessions_restore_batch (kf_sessions_t *self, uint64_t batch);

//  Marks cached sessions closed that were last updated before `idle_before` (Unix ms) and have no
//  job, as the database sweep does for all of them; for the ones that do have a job (the database
//  sweep cannot see it), calls `reopen` so the caller can take the database closing back.
//  Returns how many were closed.
typedef void (kf_session_fn) (void *arg, kf_session_t *session);
size_t kf_sessions_close_idle (kf_sessions_t *self, int64_t idle_before, kf_session_fn *reopen,
                               void *arg);

//  Forgets a deleted session: lookups no longer find it (nor does the database). Frees it now, or,
//  when a job still runs for it, marks it hidden and leaves it to eviction.
void kf_sessions_hide (kf_sessions_t *self, kf_session_t *session);

//  Number of cached sessions.
size_t kf_sessions_cached (kf_sessions_t *self);
#endif
