/*  kb_catalog.h - how a bot's knowledge base is organized: the category tree (names unique among
    siblings, ordered, enabled or not, at most 8 levels) and synonym groups. Keeps its own
    statements on the broker's connection; writes join the broker's batch. Callers bump the
    knowledge-base version after writes that change answers. */
#ifndef KF_KB_CATALOG_H
#define KF_KB_CATALOG_H
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include "broker/store.h"

#define KF_CATEGORY_DEPTH_MAX 8

typedef struct _kf_kb_catalog_t kf_kb_catalog_t;

//  Prepares the statements on `store`'s connection (borrowed). NULL (logged) when that fails.
kf_kb_catalog_t *kf_kb_catalog_new (kf_store_t *store);

//  Frees the statements; nulls *self_p.
void kf_kb_catalog_destroy (kf_kb_catalog_t **self_p);

//  Creates one category from {name, parent_id?, position?, enabled?}. Returns 0 with *id set,
//  or -1 with `err` set (invalid, unknown parent, a sibling of that name, too deep).
int kf_kb_category_create (kf_kb_catalog_t *self, const char *bot_id, const msgpack_object *entry,
                           int64_t *id, kf_error_t *err);

//  Updates one category from {id, name?, parent_id?, position?, enabled?}; a move under its own
//  subtree is refused. Returns 0, or -1 with `err` set.
int kf_kb_category_update (kf_kb_catalog_t *self, const char *bot_id, const msgpack_object *entry,
                           kf_error_t *err);

//  Deletes category `id` and its subtree. Their items lose their category (moved to 0) or, with
//  `is_deleting_items`, are deleted. Adds to the counters. Returns 1, 0 when there is no such
//  category, -1 on a database error.
int kf_kb_category_delete (kf_kb_catalog_t *self, const char *bot_id, int64_t id,
                           bool is_deleting_items, int64_t *categories, int64_t *items);

//  Packs {data: [category...], total, page, page_size, has_more} for a query with optional ids
//  (array), name (substring), parent_id (< 0: any). Returns 0 or -1.
int kf_kb_category_query_pack (kf_kb_catalog_t *self, const char *bot_id, const msgpack_object *ids,
                               const char *name, size_t name_len, int64_t parent_id, int64_t page,
                               int64_t page_size, msgpack_packer *pk);

//  True when category `id` exists in the bot (0, no category, always does).
bool kf_kb_category_exists (kf_kb_catalog_t *self, const char *bot_id, int64_t id);

//  Finds the category at `path` ("售后服务/退货退款": names split on '/', trimmed), creating the
//  missing ones. Returns 0 with *id set, -1 with `err` set.
int kf_kb_category_resolve (kf_kb_catalog_t *self, const char *bot_id, const char *path,
                            size_t len, int64_t *id, kf_error_t *err);

//  Writes the path of category `id` ("售后服务/退货退款", "" for 0 or an unknown id) into `path`.
void kf_kb_category_path (kf_kb_catalog_t *self, int64_t id, char *path, size_t size);

//  Synonym groups: {words: [2..50 distinct words of 1..20 characters]}. Create returns 0 with *id;
//  update takes {id, words}; delete returns 1, or 0 when absent; -1 on errors (with `err` set for
//  create and update).
int kf_kb_synonyms_create (kf_kb_catalog_t *self, const char *bot_id, const msgpack_object *entry,
                           int64_t *id, kf_error_t *err);
int kf_kb_synonyms_update (kf_kb_catalog_t *self, const char *bot_id, const msgpack_object *entry,
                           kf_error_t *err);
int kf_kb_synonyms_delete (kf_kb_catalog_t *self, const char *bot_id, int64_t id);

//  Packs {data: [{id, words, updated_at}], total, page, page_size, has_more}, groups holding a
//  word that contains `keyword` when given. Returns 0 or -1.
int kf_kb_synonyms_query_pack (kf_kb_catalog_t *self, const char *bot_id, const char *keyword,
                               size_t keyword_len, int64_t page, int64_t page_size,
                               msgpack_packer *pk);
#endif
