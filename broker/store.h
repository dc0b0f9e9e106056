/*  store.h - the broker's SQLite database: migrations, sessions, turns, knowledge-base writes.
    Only the broker writes. Writes go into one open transaction that kf_store_flush commits once
    per loop iteration (group commit), before any reply that depends on them is sent. */
#ifndef KF_STORE_H
#define KF_STORE_H
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include "common/wire.h"

typedef struct _kf_store_t kf_store_t;

//  A session row. Strings are heap copies owned by the row (see kf_session_row_free).
typedef struct {
    char id [32];               //  "s_" + 20 hex digits
    char *user_id;
    char *channel;
    char *bot_id;
    char *state;                //  "open"
    int64_t turn_count;
    int64_t failed_attempts;
    int64_t created_at;         //  Unix ms
    int64_t updated_at;
    char *upstream_conversation_id;     //  Dify's conversation, NULL when none
} kf_session_row_t;

//  A turn to insert. All pointers are borrowed for the duration of the call.
typedef struct {
    int64_t id;                 //  Message id from kf_store_next_message_id
    const char *session_id;
    const char *role;           //  user, assistant, agent, system
    const char *content;
    size_t content_len;
    const char *response_type;  //  "text"
    const char *intent;         //  NULL when none
    double confidence;          //  < 0 when none
    const msgpack_object *sources;      //  Array or NULL, stored as JSON
    const msgpack_object *suggestions;  //  Array or NULL, stored as JSON
    const msgpack_object *response_content;     //  Map of a rich answer or NULL, stored as JSON
    const char *status;         //  "ok" or "error"
    bool is_stopped;            //  Ended early by chat.stop (the content is what was said)
    int64_t latency_ms;         //  < 0 when none
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t created_at;
} kf_turn_row_t;

//  Opens (creating if needed) the database at `path`, switches it to WAL and applies the migrations
//  in schemas/. `is_synchronous_full` trades write speed for durability against power loss (the
//  default survives a killed process). Returns NULL and writes a reason into `err` on failure.
kf_store_t *kf_store_open (const char *path, bool is_synchronous_full, char *err, size_t errlen);

//  Turns SQLite's automatic checkpoints in commits on or off (off when another connection, the
//  checkpointer, does them).
void kf_store_set_autocheckpoint (kf_store_t *self, bool is_on);

//  Commits what is pending and closes the database. Nulls *self_p.
void kf_store_destroy (kf_store_t **self_p);

//  Commits the open batch, if any. A batch in which any write failed is rolled back whole. Returns
//  0, or -1 after logging when the batch was lost (the caller must answer the affected requests
//  with errors).
int kf_store_flush (kf_store_t *self);

//  Number of the batch that writes go into now; it changes at every flush.
uint64_t kf_store_batch (kf_store_t *self);

//  True while a batch is open (writes since the last flush).
bool kf_store_is_dirty (kf_store_t *self);

//  For modules that keep their own statements on the broker's connection (conversations.c): the
//  connection, borrowed, and a step of a write statement inside the current batch (0 or -1; a
//  failure poisons the batch like any other write).
struct sqlite3;
struct sqlite3_stmt;
struct sqlite3 *kf_store_db (kf_store_t *self);
int kf_store_write_step (kf_store_t *self, struct sqlite3_stmt *stmt);

//  For modules that prepare a statement per call (rare edits and queries): one statement from
//  `sql` on the store's connection, or NULL after logging the error with the start of the SQL.
//  kf_store_write_once steps such a write statement inside the current batch and finalizes it
//  (a NULL statement, a failed prepare, gives -1 like a failed step).
struct sqlite3_stmt *kf_store_statement (kf_store_t *self, const char *sql);
int kf_store_write_once (kf_store_t *self, struct sqlite3_stmt *stmt);

//  Packs one row of a query's page (a callback of kf_store_pack_page).
typedef void (kf_store_row_fn) (void *arg, struct sqlite3_stmt *row, msgpack_packer *pk);

//  Packs a page of rows read from `rows` (finalized here) as the start of a list answer: a map of
//  5 + `extra` pairs holding "data" (every row, packed by `fn`) and kf_mp_pack_page's fields of
//  `total`, `page`, `page_size`; the caller packs its `extra` pairs after. The rows are read first,
//  so nothing is packed when a step fails or `total` is negative (a failed count): returns -1.
int kf_store_pack_page (struct sqlite3_stmt *rows, kf_store_row_fn *fn, void *arg, int64_t total,
                        int64_t page, int64_t page_size, int extra, msgpack_packer *pk);

//  Writes `from` (" FROM t WHERE <condition>", the caller's own text) into `sql` and then, for
//  each i in 0..count-1 whose given [i] is not NULL, " AND columns [i] = ?<i+1>": a list query
//  gets a term only for the filters given, so SQLite can use the index of the one that narrows
//  it (a "(?1 IS NULL OR col = ?1)" term scans the table). The values are bound by the caller as
//  ?1..?count in the same order, never written into the text. Asserts that `size` suffices.
void kf_store_where (char *sql, size_t size, const char *from, const char *const *columns,
                     const char *const *given, int count);

//  Binds `len` bytes of `text` (copied) at `index`, or NULL when `text` is NULL.
void kf_store_bind_text (struct sqlite3_stmt *stmt, int index, const char *text, size_t len);

//  One integer from `sql` with ?1 = `text` and ?2 = `arg` (a statement without ?2 ignores it):
//  `fallback` when it yields no row, -1 on an error.
int64_t kf_store_int64 (kf_store_t *self, const char *sql, const char *text, int64_t arg,
                        int64_t fallback);

//  Per-bot tables whose rows a bot inherits from the "default" bot until it has rows of its own
//  (intents, chitchat): the bot whose rows `bot_id` uses in `table` (itself or "default"; the
//  pointer given, or a static string), NULL on an error.
const char *kf_store_rows_source (kf_store_t *self, const char *table, const char *bot_id);

//  Copies the default bot's rows of `table` to `bot_id`, in their order: the `columns` as they
//  are ("name, reply"), and each of `stamps` ("created_at, updated_at") set to now. Inside the
//  current batch, so the first edit of a bot and its copy commit together. Returns 0 or -1.
int kf_store_rows_adopt (kf_store_t *self, const char *table, const char *columns,
                         const char *stamps, const char *bot_id);

//  Prepares `count` statements from `sql` on the store's connection, once for their lifetime, into
//  `stmts`. Returns 0, or -1 after logging which module (`what`) failed; the statements prepared
//  so far are then finalized and every entry is NULL. kf_store_finalize frees them (NULLs fine).
int kf_store_prepare (kf_store_t *self, const char *const *sql, struct sqlite3_stmt **stmts,
                      int count, const char *what);
void kf_store_finalize (struct sqlite3_stmt **stmts, int count);

//  Savepoints inside the batch, for writes that must fail alone (one item of a batch): ends with
//  kf_store_savepoint_end, which takes the writes back when `rc` < 0 (the batch stays good) and
//  returns `rc`. kf_store_savepoint returns 0 or -1.
int kf_store_savepoint (kf_store_t *self, const char *name);
int kf_store_savepoint_end (kf_store_t *self, const char *name, int rc);

//  Allocates the next message id (increasing). Ids are never reused as long as the caller stores a
//  row under each one in the same batch (the broker stores the answer as "pending" at once), and
//  kf_store_keep_message_ids runs before rows are deleted.
int64_t kf_store_next_message_id (kf_store_t *self);

//  Writes (in the batch) that ids below the next one were handed out: a reopen starts past them
//  even when their rows are gone. Returns 0 or -1.
int kf_store_keep_message_ids (kf_store_t *self);

//  Inserts a new session. Returns 0 or -1 on a database error.
int kf_store_session_insert (kf_store_t *self, const kf_session_row_t *row);

//  Loads a session by id. Returns 1 and fills `row` when found, 0 when absent, -1 on error.
int kf_store_session_load (kf_store_t *self, const char *id, size_t id_len, kf_session_row_t *row);

//  Frees the strings of a row filled by kf_store_session_load.
void kf_session_row_free (kf_session_row_t *row);

//  Updates a session's counters, labels (JSON, may be NULL to keep) and updated_at. Returns 0 or -1.
int kf_store_session_update (kf_store_t *self, const char *id, int64_t turn_count,
                             int64_t failed_attempts, const char *labels_json, int64_t updated_at);

//  Inserts a turn. Returns 0 or -1.
int kf_store_turn_insert (kf_store_t *self, const kf_turn_row_t *turn);

//  Stores the upstream (Dify) conversation id of a session. Returns 0 or -1.
int kf_store_session_set_conversation (kf_store_t *self, const char *id, const char *conversation_id);

//  Completes a turn inserted earlier with status "pending": every column but session, role and
//  created_at is overwritten from `turn`. Returns 0 or -1.
int kf_store_turn_complete (kf_store_t *self, const kf_turn_row_t *turn);

//  Records an LLM turn's usage: the upstream of turn `message_id`, and the totals of (bot_id,
//  upstream) grow by one turn and these tokens (usage_totals). Returns 0 or -1.
int kf_store_usage_add (kf_store_t *self, int64_t message_id, const char *bot_id, const char *upstream,
                        int64_t prompt_tokens, int64_t completion_tokens, int64_t total_tokens);

//  Packs the usage totals: [{bot_id, upstream, turns, prompt_tokens, completion_tokens,
//  total_tokens}] by bot and upstream (at most 1000). Returns 0, or -1 with nothing packed.
int kf_store_usage_stats_pack (kf_store_t *self, msgpack_packer *pk);

//  Marks a pending turn as failed ("error"). Returns 0 or -1.
int kf_store_turn_fail (kf_store_t *self, int64_t id);

//  Closes a session: state "closed", with reason (1 ended, 2 transferred, 3 idle), satisfaction
//  (1-3, 0 for none) and bot2human_reason (1-5, 0 for none). Returns 0 or -1.
int kf_store_session_close (kf_store_t *self, const char *id, int64_t reason, int64_t satisfaction,
                            int64_t bot2human_reason, int64_t closed_at);

//  Closes every open session last updated before `idle_before` (Unix ms) with reason 3. Returns how
//  many, or -1.
int64_t kf_store_close_idle (kf_store_t *self, int64_t idle_before, int64_t closed_at);

//  Takes back an idle closing (reason 3) of a session that turned out to be busy. Returns 0 or -1.
int kf_store_session_reopen (kf_store_t *self, const char *id);

//  Who a message belongs to: copies its role ("unfinished" for an answer not completed), its
//  session's user_id and session id. Returns 1, 0 when the message does not exist, -1 on error.
int kf_store_turn_owner (kf_store_t *self, int64_t message_id, char *role, size_t role_size,
                         char *user_id, size_t user_size, char *session_id, size_t session_size);

//  Sets (rating "like" or "dislike", optional content) or clears (rating NULL) the feedback on a
//  message. Returns 0 or -1.
int kf_store_feedback (kf_store_t *self, int64_t message_id, const char *rating, const char *content,
                       size_t content_len, int64_t at);

//  Packs feedback counts {"by_bot": [{bot_id, likes, dislikes}], "by_item": [{item_id, external_id,
//  likes, dislikes}] (most disliked first)}. Returns 0 or -1 (nothing packed).
int kf_store_feedback_stats_pack (kf_store_t *self, msgpack_packer *pk);

//  A message imported from elsewhere (records.save). Pointers are borrowed for the call.
typedef struct {
    const char *session_id;
    const char *role;           //  user or agent
    const char *type;           //  text, image (content: JSON array of URLs) or voice (content: URL)
    const char *content;
    size_t content_len;
    const char *record_id;      //  The caller's id: saving it twice stores it once
    size_t record_id_len;
    const char *sender_id;      //  May be NULL
    size_t sender_id_len;
    const char *title;          //  May be NULL
    size_t title_len;
    int64_t send_time;          //  Unix ms, stored as created_at
} kf_record_row_t;

//  Stores a record unless the session already has its record_id. Returns 1 when stored, 2 when it
//  was there already (*message_id: its id either way), -1 on error.
int kf_store_record_put (kf_store_t *self, const kf_record_row_t *record, int64_t *message_id);

//  Calls `fn` for the last `count` turns of a session, oldest first, with role and content.
typedef void (kf_turn_fn) (void *arg, const char *role, const char *content);
int kf_store_recent_turns (kf_store_t *self, const char *session_id, int count, kf_turn_fn *fn,
                           void *arg);

//  Increments the knowledge-base version that workers poll. Returns the new version or -1.
int64_t kf_store_kb_bump_version (kf_store_t *self);

//  The knowledge-base version now (including a bump not yet committed), or -1. Read once, then
//  kept in memory: only this broker bumps it.
int64_t kf_store_kb_version (kf_store_t *self);

//  Counts rows: "sessions", "turns" or "kb_items". Returns -1 on error.
int64_t kf_store_count (kf_store_t *self, const char *table);
#endif
