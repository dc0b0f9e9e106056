/*  chitchat_store.h - a bot's small-talk table in SQLite (table `chitchat`,
    schemas/009_intents.sql): phrasings and the reply workers give to them without the knowledge
    base (PROTOCOL.md 4.41).

    Inheritance as for intents (broker/intents.h): a bot with no rows of its own uses the
    `default` bot's; its first edit copies them (same batch, taken back when the edit fails). An
    id of a default bot's row, given for a bot that still inherits, means that row's copy (copies
    keep the default's order, so the n-th default row becomes the bot's n-th). A bot that deletes
    all its rows uses the default bot's again: that is how workers read the table.

    Statements are prepared per call (rare administrative edits); writes join the store's open
    batch; callers bump the knowledge-base version after a successful edit. */
#ifndef KF_CHITCHAT_STORE_H
#define KF_CHITCHAT_STORE_H
#include <msgpack.h>
#include <stdint.h>
#include "broker/store.h"

#define KF_CHITCHAT_MAX             500     //  Rows a bot may have
#define KF_CHITCHAT_QUESTIONS_MAX   50      //  Phrasings of one row
#define KF_CHITCHAT_QUESTION_CHARS  100
#define KF_CHITCHAT_REPLY_CHARS     2000

//  Creates a row from params {questions, reply}. Returns 0 with *id set, or -1 with `err` set
//  (missing or invalid fields, too_large past KF_CHITCHAT_MAX rows, internal).
int kf_chitchat_store_create (kf_store_t *store, const char *bot_id, const msgpack_object *params,
                        int64_t *id, kf_error_t *err);

//  Updates row params.id from params {questions?, reply?} (lists replace). Returns 0 with *id set
//  (the row now: a copy's id for an inherited row), or -1 with `err` set (404 when no such row).
int kf_chitchat_store_update (kf_store_t *store, const char *bot_id, const msgpack_object *params,
                        int64_t *id, kf_error_t *err);

//  Deletes rows params.ids (1..50). Packs {deleted, not_found: [ids], inherited} and returns how
//  many were deleted, or -1 with `err` set and nothing packed.
int kf_chitchat_store_delete (kf_store_t *store, const char *bot_id, const msgpack_object *params,
                        msgpack_packer *pk, kf_error_t *err);

//  Packs row `id` {id, bot_id, questions, reply, updated_at}. Returns 0 or -1 (nothing packed).
int kf_chitchat_store_pack_one (kf_store_t *store, int64_t id, msgpack_packer *pk);

//  Packs {data: [row...], total, page, page_size, has_more, bot_id, inherited}: the rows
//  `bot_id` uses, by id, those whose questions or reply contain `keyword` when given. Returns 0
//  or -1 (nothing packed).
int kf_chitchat_store_query_pack (kf_store_t *store, const char *bot_id, const char *keyword,
                            size_t keyword_len, int64_t page, int64_t page_size,
                            msgpack_packer *pk);
#endif
