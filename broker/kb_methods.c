/*  kb_methods.c - the knowledge-base methods: kb.item.*, kb.category.*, kb.synonyms.* and suggest.
    Batches answer per entry (a bad entry never stops the rest); every write that changes answers
    bumps the knowledge-base version, which workers poll and the answer cache keys on. */
#include "broker/answer_cache.h"
#include "broker/broker.h"
#include "broker/kb_catalog.h"
#include "broker/kb_items.h"
#include "common/log.h"
#include "common/mpack.h"
#include <stdio.h>
#include <string.h>

//  A required non-empty list param of at most `max` entries
static int
s_list_param (kf_request_t *req, const char *key, uint32_t max, const msgpack_object **list,
              kf_error_t *err)
{
    *list = kf_mp_get (req->params, key);
    if (!*list || (*list)->type == MSGPACK_OBJECT_NIL)
        return kf_error_set (err, KF_E_MISSING_ARGUMENT, "params.%s is required", key);
    if ((*list)->type != MSGPACK_OBJECT_ARRAY || (*list)->via.array.size == 0)
        return kf_error_set (err, KF_E_INVALID_PARAM, "params.%s must be a non-empty list", key);
    if ((*list)->via.array.size > max)
        return kf_error_set (err, KF_E_TOO_LARGE, "params.%s holds at most %u entries", key, max);
    return 0;
}

//  Writes one entry of a batch: 1 created, 2 updated, -1 with `err` set
typedef int (s_entry_fn) (kf_broker_t *self, const char *bot, const msgpack_object *entry,
                          int64_t *id, kf_error_t *err);

static int
s_item_create (kf_broker_t *self, const char *bot, const msgpack_object *entry, int64_t *id,
               kf_error_t *err)
{
    return kf_kb_items_put (self->kb_items, bot, entry, false, id, err);
}

static int
s_item_update (kf_broker_t *self, const char *bot, const msgpack_object *entry, int64_t *id,
               kf_error_t *err)
{
    return kf_kb_items_put (self->kb_items, bot, entry, true, id, err);
}

static int
s_category_create (kf_broker_t *self, const char *bot, const msgpack_object *entry, int64_t *id,
                   kf_error_t *err)
{
    return kf_kb_category_create (self->kb_catalog, bot, entry, id, err) ? -1 : 1;
}

static int
s_category_update (kf_broker_t *self, const char *bot, const msgpack_object *entry, int64_t *id,
                   kf_error_t *err)
{
    *id = kf_mp_get_int (entry, "id", 0);
    return kf_kb_category_update (self->kb_catalog, bot, entry, err) ? -1 : 2;
}

static int
s_synonyms_create (kf_broker_t *self, const char *bot, const msgpack_object *entry, int64_t *id,
                   kf_error_t *err)
{
    return kf_kb_synonyms_create (self->kb_catalog, bot, entry, id, err) ? -1 : 1;
}

static int
s_synonyms_update (kf_broker_t *self, const char *bot, const msgpack_object *entry, int64_t *id,
                   kf_error_t *err)
{
    *id = kf_mp_get_int (entry, "id", 0);
    return kf_kb_synonyms_update (self->kb_catalog, bot, entry, err) ? -1 : 2;
}

//  Answers a batch write: {data: [{index, id, status} | {index, status: rejected, error}], total,
//  created, updated, has_more}
static void
s_batch (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req,
         const char *key, uint32_t max, s_entry_fn *fn)
{
    kf_error_t err;
    char bot [260];
    const msgpack_object *list;
    if (kf_broker_param_bot (req, bot, &err) || s_list_param (req, key, max, &list, &err)) {
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    kf_result_t r;
    kf_result_init (&r);
    uint32_t count = list->via.array.size, created = 0, updated = 0;
    msgpack_pack_map (&r.pk, 5);
    kf_mp_pack_cstr (&r.pk, "data");
    msgpack_pack_array (&r.pk, count);
    for (uint32_t i = 0; i < count; i++) {
        int64_t id = 0;
        kf_error_t entry_err;
        int rc = fn (self, bot, &list->via.array.ptr [i], &id, &entry_err);
        created += rc == 1;
        updated += rc == 2;
        msgpack_pack_map (&r.pk, 3);
        kf_mp_pack_kv_int (&r.pk, "index", i);
        if (rc > 0) {
            kf_mp_pack_kv_int (&r.pk, "id", id);
            kf_mp_pack_kv_str (&r.pk, "status", rc == 1 ? "created" : "updated");
        }
        else {
            kf_mp_pack_kv_str (&r.pk, "status", "rejected");
            kf_mp_pack_cstr (&r.pk, "error");
            kf_error_pack (&r.pk, &entry_err);
        }
    }
    if (created + updated)
        kf_store_kb_bump_version (self->store);
    kf_mp_pack_kv_int (&r.pk, "total", count);
    kf_mp_pack_kv_int (&r.pk, "created", created);
    kf_mp_pack_kv_int (&r.pk, "updated", updated);
    kf_mp_pack_kv_bool (&r.pk, "has_more", false);
    kf_broker_send_result (self, routing, routing_len, req, &r);
}

void
kf_method_kb_item_create (kf_broker_t *self, const char *routing, size_t routing_len,
                          kf_request_t *req)
{
    s_batch (self, routing, routing_len, req, "items", 500, s_item_create);
}

void
kf_method_kb_item_update (kf_broker_t *self, const char *routing, size_t routing_len,
                          kf_request_t *req)
{
    s_batch (self, routing, routing_len, req, "items", 500, s_item_update);
}

void
kf_method_kb_category_create (kf_broker_t *self, const char *routing, size_t routing_len,
                              kf_request_t *req)
{
    s_batch (self, routing, routing_len, req, "categories", 20, s_category_create);
}

void
kf_method_kb_category_update (kf_broker_t *self, const char *routing, size_t routing_len,
                              kf_request_t *req)
{
    s_batch (self, routing, routing_len, req, "categories", 20, s_category_update);
}

void
kf_method_kb_synonyms_create (kf_broker_t *self, const char *routing, size_t routing_len,
                              kf_request_t *req)
{
    s_batch (self, routing, routing_len, req, "groups", 20, s_synonyms_create);
}

void
kf_method_kb_synonyms_update (kf_broker_t *self, const char *routing, size_t routing_len,
                              kf_request_t *req)
{
    s_batch (self, routing, routing_len, req, "groups", 20, s_synonyms_update);
}

//  The ids param of a delete: 1..max positive integers
static int
s_ids_param (kf_request_t *req, uint32_t max, const msgpack_object **ids, kf_error_t *err)
{
    if (s_list_param (req, "ids", max, ids, err))
        return -1;
    for (uint32_t i = 0; i < (*ids)->via.array.size; i++) {
        int64_t id;
        if (!kf_mp_int (&(*ids)->via.array.ptr [i], &id) || id < 1)
            return kf_error_set (err, KF_E_INVALID_PARAM, "params.ids[%u] must be a positive"
                                 " integer", i);
    }
    return 0;
}

typedef int (s_delete_fn) (kf_broker_t *self, const char *bot, int64_t id);

static int
s_item_delete (kf_broker_t *self, const char *bot, int64_t id)
{
    return kf_kb_items_delete (self->kb_items, bot, id);
}

static int
s_synonyms_delete (kf_broker_t *self, const char *bot, int64_t id)
{
    return kf_kb_synonyms_delete (self->kb_catalog, bot, id);
}

//  Answers a delete by ids: {deleted, not_found: [ids]}
static void
s_delete (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req,
          uint32_t max, s_delete_fn *fn)
{
    kf_error_t err;
    char bot [260];
    const msgpack_object *ids;
    if (kf_broker_param_bot (req, bot, &err) || s_ids_param (req, max, &ids, &err)) {
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    int64_t missing [64];
    int deleted = 0, missing_count = 0;
    for (uint32_t i = 0; i < ids->via.array.size; i++) {
        int64_t id = 0;
        kf_mp_int (&ids->via.array.ptr [i], &id);
        int rc = fn (self, bot, id);
        if (rc < 0) {
            kf_error_set (&err, KF_E_INTERNAL, "database write failed");
            kf_broker_send_error (self, routing, routing_len, req, &err);
            return;
        }
        deleted += rc;
        if (rc == 0)
            missing [missing_count++] = id;
    }
    if (deleted)
        kf_store_kb_bump_version (self->store);
    kf_result_t r;
    kf_result_init (&r);
    msgpack_pack_map (&r.pk, 2);
    kf_mp_pack_kv_int (&r.pk, "deleted", deleted);
    kf_mp_pack_cstr (&r.pk, "not_found");
    msgpack_pack_array (&r.pk, missing_count);
    for (int i = 0; i < missing_count; i++)
        msgpack_pack_int64 (&r.pk, missing [i]);
    kf_broker_send_result (self, routing, routing_len, req, &r);
}

void
kf_method_kb_item_delete (kf_broker_t *self, const char *routing, size_t routing_len,
                          kf_request_t *req)
{
    s_delete (self, routing, routing_len, req, 50, s_item_delete);
}

void
kf_method_kb_synonyms_delete (kf_broker_t *self, const char *routing, size_t routing_len,
                              kf_request_t *req)
{
    s_delete (self, routing, routing_len, req, 50, s_synonyms_delete);
}

void
kf_method_kb_category_delete (kf_broker_t *self, const char *routing, size_t routing_len,
                              kf_request_t *req)
{
    kf_error_t err;
    char bot [260];
    const msgpack_object *ids;
    const char *items;
    size_t items_len;
    if (kf_broker_param_bot (req, bot, &err) || s_ids_param (req, 20, &ids, &err)
    ||  kf_param_str (req->params, "items", false, 16, &items, &items_len, &err))
        goto failed;
    bool is_deleting = items && items_len == 6 && memcmp (items, "delete", 6) == 0;
    if (items && !is_deleting && !(items_len == 12 && memcmp (items, "uncategorize", 12) == 0)) {
        kf_error_set (&err, KF_E_INVALID_PARAM, "params.items must be uncategorize or delete");
        goto failed;
    }
    int64_t missing [20], categories = 0, moved = 0;
    int missing_count = 0;
    for (uint32_t i = 0; i < ids->via.array.size; i++) {
        int64_t id = 0;
        kf_mp_int (&ids->via.array.ptr [i], &id);
        int rc = kf_kb_category_delete (self->kb_catalog, bot, id, is_deleting, &categories, &moved);
        if (rc < 0) {
            kf_error_set (&err, KF_E_INTERNAL, "database write failed");
            goto failed;
        }
        if (rc == 0)
            missing [missing_count++] = id;
    }
    if (categories)
        kf_store_kb_bump_version (self->store);
    kf_result_t r;
    kf_result_init (&r);
    msgpack_pack_map (&r.pk, 4);
    kf_mp_pack_kv_int (&r.pk, "deleted_categories", categories);
    kf_mp_pack_kv_int (&r.pk, "items_moved", is_deleting ? 0 : moved);
    kf_mp_pack_kv_int (&r.pk, "items_deleted", is_deleting ? moved : 0);
    kf_mp_pack_cstr (&r.pk, "not_found");
    msgpack_pack_array (&r.pk, missing_count);
    for (int i = 0; i < missing_count; i++)
        msgpack_pack_int64 (&r.pk, missing [i]);
    kf_broker_send_result (self, routing, routing_len, req, &r);
    return;
failed:
    kf_broker_send_error (self, routing, routing_len, req, &err);
}

//  An optional list of ids to filter a query on (1..max positive integers)
static int
s_filter_ids (kf_request_t *req, uint32_t max, const msgpack_object **ids, kf_error_t *err)
{
    const msgpack_object *value = kf_mp_get (req->params, "ids");
    *ids = NULL;
    if (!value || value->type == MSGPACK_OBJECT_NIL)
        return 0;
    return s_ids_param (req, max, ids, err);
}

void
kf_method_kb_item_query (kf_broker_t *self, const char *routing, size_t routing_len,
                         kf_request_t *req)
{
    kf_error_t err;
    char bot [260];
    kf_kb_filter_t filter;
    memset (&filter, 0, sizeof filter);
    if (kf_broker_param_bot (req, bot, &err) || s_filter_ids (req, 100, &filter.ids, &err)
    ||  kf_param_int (req->params, "category_id", 0, INT64_MAX, -1, &filter.category_id, &err)
    ||  kf_param_bool (req->params, "include_subcategories", false, &filter.is_subtree, &err)
    ||  kf_param_int (req->params, "status", 0, 1, -1, &filter.status, &err)
    ||  kf_param_str (req->params, "keyword", false, 100, &filter.keyword, &filter.keyword_len, &err)
    ||  kf_broker_param_page (req, 100, &filter.page, &filter.page_size, &err)) {
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    if (filter.keyword && filter.keyword_len == 0)
        filter.keyword = NULL;
    kf_result_t r;
    kf_result_init (&r);
    kf_broker_send_query (self, routing, routing_len, req, &r,
                    kf_kb_items_query_pack (self->kb_items, bot, &filter, &r.pk));
}

void
kf_method_kb_category_query (kf_broker_t *self, const char *routing, size_t routing_len,
                             kf_request_t *req)
{
    kf_error_t err;
    char bot [260];
    const msgpack_object *ids;
    const char *name;
    size_t name_len;
    int64_t parent_id, page, page_size;
    if (kf_broker_param_bot (req, bot, &err) || s_filter_ids (req, 50, &ids, &err)
    ||  kf_param_str (req->params, "name", false, 64, &name, &name_len, &err)
    ||  kf_param_int (req->params, "parent_id", 0, INT64_MAX, -1, &parent_id, &err)
    ||  kf_broker_param_page (req, 50, &page, &page_size, &err)) {
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    if (name && name_len == 0)
        name = NULL;
    kf_result_t r;
    kf_result_init (&r);
    kf_broker_send_query (self, routing, routing_len, req, &r,
                    kf_kb_category_query_pack (self->kb_catalog, bot, ids, name, name_len,
                                               parent_id, page, page_size, &r.pk));
}

void
kf_method_kb_synonyms_query (kf_broker_t *self, const char *routing, size_t routing_len,
                             kf_request_t *req)
{
    kf_error_t err;
    char bot [260];
    const char *keyword;
    size_t keyword_len;
    int64_t page, page_size;
    if (kf_broker_param_bot (req, bot, &err)
    ||  kf_param_str (req->params, "keyword", false, 20, &keyword, &keyword_len, &err)
    ||  kf_broker_param_page (req, 100, &page, &page_size, &err)) {
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    if (keyword && keyword_len == 0)
        keyword = NULL;
    kf_result_t r;
    kf_result_init (&r);
    kf_broker_send_query (self, routing, routing_len, req, &r,
                    kf_kb_synonyms_query_pack (self->kb_catalog, bot, keyword, keyword_len, page,
                                               page_size, &r.pk));
}

void
kf_method_suggest (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    kf_error_t err;
    char bot [260];
    const char *keyword;
    size_t keyword_len;
    int64_t number;
    if (kf_broker_param_bot (req, bot, &err)
    ||  kf_param_str (req->params, "keyword", true, 100, &keyword, &keyword_len, &err)
    ||  kf_param_int (req->params, "number", 1, 10, 3, &number, &err)) {
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    //  What the customer typed so far, without the spaces around it
    while (keyword_len && (*keyword == ' ' || *keyword == '\t'))
        keyword++, keyword_len--;
    while (keyword_len && (keyword [keyword_len - 1] == ' ' || keyword [keyword_len - 1] == '\t'))
        keyword_len--;
    if (keyword_len == 0) {
        kf_result_t r;
        kf_result_init (&r);
        msgpack_pack_map (&r.pk, 1);
        kf_mp_pack_cstr (&r.pk, "data");
        msgpack_pack_array (&r.pk, 0);
        kf_broker_send_result (self, routing, routing_len, req, &r);
        return;
    }
    //  Workers hold every answerable question in memory: a search there touches one posting list,
    //  where the database would scan the table for a word inside questions
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &params, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    kf_mp_pack_kv_str (&pk, "bot_id", bot);
    kf_mp_pack_cstr (&pk, "keyword");
    kf_mp_pack_str (&pk, keyword, keyword_len);
    kf_mp_pack_kv_int (&pk, "number", number);
    kf_calls_send (self, routing, routing_len, req, "suggest", params.data, params.size);
    msgpack_sbuffer_destroy (&params);
}

void
kf_method_cache_invalidate (kf_broker_t *self, const char *routing, size_t routing_len,
                            kf_request_t *req)
{
    kf_error_t err;
    const char *bot_id;
    size_t bot_len;
    if (kf_param_str (req->params, "bot_id", false, 64, &bot_id, &bot_len, &err)) {
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    char bot [260];
    snprintf (bot, sizeof bot, "%.*s", (int) (bot_id ? bot_len : 0), bot_id ? bot_id : "");
    kf_result_t r;
    kf_result_init (&r);
    msgpack_pack_map (&r.pk, 1);
    kf_mp_pack_kv_int (&r.pk, "removed", (int64_t) kf_answer_cache_invalidate (self->cache,
                                                                             *bot ? bot : NULL));
    kf_broker_send_result (self, routing, routing_len, req, &r);
}
