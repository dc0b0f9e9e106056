/*  kb_snapshot.h - one version of a knowledge base as the rows the workers build it from: the
    category tree, synonym groups, on-shelf items with their similar questions and answer variants,
    the bots' enabled intents and chit-chat rows (issue 5). Read from the database in one read
    transaction (a worker with --db, the broker's snapshot thread) or decoded from the msgpack
    snapshot the broker ships over the worker protocol (PROTOCOL.md 9.10); either way the worker
    builds its index and models from this same structure (workers/kb_source.c), so the two paths
    cannot drift apart.

    A snapshot is read-only once made, so any thread may read it. Every string and array lives in
    the snapshot's own arena and goes with kf_kb_snapshot_destroy. Strings are NUL-terminated UTF-8
    as stored; a column that is NULL in the database is NULL here and nil on the wire. */
#ifndef KF_KB_SNAPSHOT_H
#define KF_KB_SNAPSHOT_H
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#define KF_KB_SNAPSHOT_FORMAT 1     //  "format" of the encoded snapshot; others are rejected
#define KF_KB_SIMILAR_MAX 200       //  Similar questions kept per item (more are not read)
#define KF_KB_VARIANT_MAX 20        //  Answer variants kept per item, besides the default

typedef struct {
    const char **list;          //  `count` strings (none NULL)
    uint32_t count;
} kf_kb_strings_t;

typedef struct {
    int64_t id;
    int64_t parent_id;          //  0: a root
    const char *name;
    bool is_enabled;            //  Its own flag (a disabled ancestor disables it too, at build)
} kf_kb_row_category_t;

typedef struct {
    const char *bot_id;
    kf_kb_strings_t words;      //  All mean words[0]
} kf_kb_row_synonyms_t;

typedef struct {
    const char *labels;         //  JSON object text, as stored
    const char *answer;
    const char *response_type;
    const char *response_content;   //  JSON text, as stored
} kf_kb_row_variant_t;

typedef struct {
    int64_t id;
    int64_t category_id;        //  0: none
    const char *bot_id;
    const char *external_id;
    const char *question;
    const char *answer;
    const char *response_type;
    const char *response_content;   //  JSON text, as stored
    kf_kb_strings_t keywords;
    kf_kb_strings_t similar;    //  In position order, at most KF_KB_SIMILAR_MAX
    kf_kb_row_variant_t *variants;  //  In position order, at most KF_KB_VARIANT_MAX
    uint32_t variant_count;
} kf_kb_row_item_t;

typedef struct {
    const char *bot_id;
    const char *name;
    kf_kb_strings_t examples, keywords, patterns;
} kf_kb_row_intent_t;

typedef struct {
    const char *bot_id;
    kf_kb_strings_t questions;
    const char *reply;
} kf_kb_row_chitchat_t;

typedef struct _kf_kb_arena_t kf_kb_arena_t;

typedef struct {
    int64_t version;            //  kb_meta.version the rows belong to
    kf_kb_row_category_t *categories;
    size_t category_count;
    kf_kb_row_synonyms_t *synonyms; //  By id
    size_t synonym_count;
    kf_kb_row_item_t *items;    //  On shelf (status 1), by id
    size_t item_count;
    kf_kb_row_intent_t *intents;    //  Enabled, by bot and id
    size_t intent_count;
    kf_kb_row_chitchat_t *chitchat; //  By id
    size_t chitchat_count;
    kf_kb_arena_t *arena;       //  Owns every string and array above
} kf_kb_snapshot_t;

//  The version in the database's kb_meta, or -1 (with the SQLite message in `err`) when it cannot
//  be read. Cheap: call it before kf_kb_snapshot_read to see whether anything changed.
int64_t kf_kb_snapshot_sql_version (sqlite3 *db, char *err, size_t err_size);

//  Reads the whole knowledge base from `db` in one read transaction (its version included). A
//  database without the intents or chitchat tables (before migration 9) has none of them. Returns
//  the snapshot (caller destroys), or NULL with the reason in `err` when a query failed or the
//  rows could not be read to the end: a partial read never passes for a version.
kf_kb_snapshot_t *kf_kb_snapshot_read (sqlite3 *db, char *err, size_t err_size);

//  Appends the msgpack encoding of `self` to `buffer` (PROTOCOL.md 9.10).
void kf_kb_snapshot_encode (const kf_kb_snapshot_t *self, msgpack_sbuffer *buffer);

//  Decodes an encoded snapshot. `data` is only read during the call. Returns the snapshot (caller
//  destroys), or NULL with the reason in `err` for anything that is not exactly one well-formed
//  snapshot of this format: truncated, trailing bytes, a wrong type anywhere, lists over the caps.
kf_kb_snapshot_t *kf_kb_snapshot_decode (const char *data, size_t size, char *err, size_t err_size);

//  Frees the snapshot and everything in it; nulls *self_p. NULL is fine.
void kf_kb_snapshot_destroy (kf_kb_snapshot_t **self_p);
#endif
