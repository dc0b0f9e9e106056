/*  kb_items.h - knowledge items in the broker's database: checked writes (create or replace by
    external_id, partial updates, each in its own savepoint so a bad item never spoils its batch),
    queries with filters and paging, deletes. Item shape: schemas/PROTOCOL.md section 12. */
#ifndef KF_KB_ITEMS_H
#define KF_KB_ITEMS_H
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include "broker/kb_catalog.h"
#include "broker/store.h"

typedef struct _kf_kb_items_t kf_kb_items_t;

//  Prepares the statements on `store`'s connection; `catalog` resolves categories. Both borrowed.
//  NULL (logged) when that fails.
kf_kb_items_t *kf_kb_items_new (kf_store_t *store, kf_kb_catalog_t *catalog);

//  Frees the statements; nulls *self_p.
void kf_kb_items_destroy (kf_kb_items_t **self_p);

//  Writes one item. Without `is_update`: creates it, or replaces the whole item that has the same
//  external_id. With `is_update`: changes only the fields present in the item found by id (or
//  external_id). Returns 1 created, 2 updated, or -1 with `err` set (invalid, not found, database).
//  *item_id holds the id on success.
int kf_kb_items_put (kf_kb_items_t *self, const char *bot_id, const msgpack_object *item,
                     bool is_update, int64_t *item_id, kf_error_t *err);

//  Deletes one item. Returns 1, 0 when the bot has no such item, -1 on a database error.
int kf_kb_items_delete (kf_kb_items_t *self, const char *bot_id, int64_t id);

//  What kb.item.query filters on; NULL and negative values filter nothing.
typedef struct {
    const msgpack_object *ids;  //  Array of ids
    int64_t category_id;
    bool is_subtree;            //  Include the category's subcategories
    int64_t status;
    const char *keyword;        //  Substring of the question, a similar question or the answer
    size_t keyword_len;
    int64_t page, page_size;
} kf_kb_filter_t;

//  Packs {data: [item...], total, page, page_size, has_more}. Returns 0 or -1.
int kf_kb_items_query_pack (kf_kb_items_t *self, const char *bot_id, const kf_kb_filter_t *filter,
                            msgpack_packer *pk);

#endif
