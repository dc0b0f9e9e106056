/*  intents.h - a bot's intents in SQLite (table `intents`, schemas/009_intents.sql): the six
    built-in intents every bot has (chitchat, knowledge_qa, business_query, emotion_sensitive,
    transfer_to_human, ticket) and the operator's own, at most 16 a bot. Workers train their
    classifier from these rows when they load a bot (PROTOCOL.md 4.37-4.40).

    Inheritance: a bot with no rows of its own uses the `default` bot's. The first edit of such a
    bot copies the default bot's rows to it (kf_intents_adopt) in the same batch as the edit, so it
    starts from the six built-ins; an edit that fails takes the copy back (the callers wrap both
    in a store savepoint). Built-in intents cannot be deleted or renamed (disable them instead), so
    a bot that adopted never falls back to the default's rows again.

    Statements are prepared per call: these are rare administrative edits, and it keeps the module
    a set of functions over the store rather than one more handle on the broker. Writes join the
    store's open batch; callers bump the knowledge-base version after a successful edit. */
#ifndef KF_INTENTS_H
#define KF_INTENTS_H
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "broker/store.h"

#define KF_INTENTS_MAX          16      //  Intents a bot may have, built-ins included
#define KF_INTENT_NAME_MAX      64      //  Characters of a name: letters, digits, '_'
#define KF_INTENT_EXAMPLES_MAX  500     //  Example utterances of one intent
#define KF_INTENT_EXAMPLE_CHARS 200
#define KF_INTENT_WORDS_MAX     50      //  Keywords, and patterns, of one intent
#define KF_INTENT_WORD_CHARS    64      //  Characters of a keyword or a pattern
#define KF_INTENT_DESCRIPTION_CHARS 500

//  True when `name` (`len` bytes) is one of the six built-in intents.
bool kf_intent_is_builtin (const char *name, size_t len);

//  True when intent.execute can run the intent `name`: ticket, transfer_to_human.
bool kf_intent_is_executable (const char *name, size_t len);

//  Checks a list param `key` of `params`: absent or nil is fine when `min` is 0 (*json NULL) and
//  missing_argument otherwise; else an array of `min`..`max` non-empty UTF-8 strings of at most
//  `max_chars` characters (invalid_param, too_large, invalid_utf8). Returns 0 with the list as
//  JSON text in *json (caller frees; NULL when absent), or -1 with `err` set.
int kf_text_list_json (const msgpack_object *params, const char *key, uint32_t min, uint32_t max,
                       size_t max_chars, char **json, kf_error_t *err);

//  Checks an intent name: 1..64 characters among letters, digits and '_'. Returns 0 or -1 with
//  `err` set (missing_argument when empty, too_large over 64, invalid_param otherwise).
int kf_intent_name_check (const char *name, size_t len, kf_error_t *err);

//  The bot whose rows `bot_id` uses: itself when it has intents of its own, else "default".
//  Returns a static string or `bot_id`; NULL on a database error.
const char *kf_intents_source (kf_store_t *store, const char *bot_id);

//  Copies the default bot's intents to `bot_id` when it has none of its own (not for "default"
//  itself). Returns 1 when it copied, 0 when there was nothing to do, -1 on a database error.
int kf_intents_adopt (kf_store_t *store, const char *bot_id);

//  Creates an intent from params {name, description?, examples, keywords?, patterns?, enabled?}
//  (adopting the default's first). Returns 0 with *id set, or -1 with `err` set: invalid or
//  missing fields, conflict (the bot has that name), too_large (16 intents already), internal.
int kf_intents_create (kf_store_t *store, const char *bot_id, const msgpack_object *params,
                       int64_t *id, kf_error_t *err);

//  Updates the intent params.id or params.name names (with both, `name` renames it) from the
//  fields given; lists replace the stored ones. An id of a default bot's row, for a bot that
//  inherits, means that intent's copy. Returns 0 with *id set (the row now), or -1 with `err`.
int kf_intents_update (kf_store_t *store, const char *bot_id, const msgpack_object *params,
                       int64_t *id, kf_error_t *err);

//  Deletes the intents params.ids and/or params.names name (1..16 each); built-ins are refused
//  (the whole request, nothing deleted). Packs the result {deleted, not_found: [ids or names]}
//  into `pk` and returns the number deleted, or -1 with `err` set and nothing packed.
int kf_intents_delete (kf_store_t *store, const char *bot_id, const msgpack_object *params,
                       msgpack_packer *pk, kf_error_t *err);

//  Packs intent row `id` {id, bot_id, name, description, examples, keywords, patterns, enabled,
//  builtin, executable, created_at, updated_at}. Returns 0, or -1 with nothing packed.
int kf_intents_pack_one (kf_store_t *store, int64_t id, msgpack_packer *pk);

//  Packs {data: [intent...], total, page, page_size, has_more, bot_id, inherited}: the intents
//  `bot_id` uses (the default bot's, inherited: true, when it has none), by id, with name `name`
//  only when given. Returns 0, or -1 with nothing packed.
int kf_intents_query_pack (kf_store_t *store, const char *bot_id, const char *name,
                           size_t name_len, int64_t page, int64_t page_size, msgpack_packer *pk);

//  Finds the intent `bot_id` uses by name (or, when `name` is NULL, by row id `id`): copies its
//  name into `out` (KF_INTENT_NAME_MAX + 1 bytes) and whether it is enabled. Returns 1, 0 when
//  there is none, -1 on a database error.
int kf_intents_find (kf_store_t *store, const char *bot_id, const char *name, size_t name_len,
                     int64_t id, char *out, bool *is_enabled);
#endif
