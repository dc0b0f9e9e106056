/*  kb_items.c - knowledge items, their similar questions and label variants, in SQLite. List
    fields are stored whole: writing similar_questions or variants replaces the stored list. */
#include "broker/kb_items.h"
#include "common/clock.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/rich_content.h"
#include "common/utf8.h"
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    I_FIND_EXT, I_FIND_ID, I_INSERT, I_UPDATE, I_SIM_DELETE, I_SIM_INSERT, I_VAR_DELETE,
    I_VAR_INSERT, I_DELETE, I_SIMILAR_OF, I_VARIANTS_OF, I_COUNT
};

static const char *s_sql [I_COUNT] = {
    [I_FIND_EXT] = "SELECT id FROM kb_items WHERE bot_id = ? AND external_id = ?",
    [I_FIND_ID] = "SELECT response_type FROM kb_items WHERE id = ? AND bot_id = ?",
    [I_INSERT] =
        //  Past the highest id ever given (counters, migration 014), not max (id) + 1
        "INSERT INTO kb_items (id, bot_id, external_id, category_id, question, answer, keywords,"
        " status, response_type, response_content, updated_at)"
        " VALUES (max (coalesce ((SELECT max (id) FROM kb_items), 0),"
        " coalesce ((SELECT value FROM counters WHERE name = 'last_kb_item_id'), 0)) + 1,"
        " ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    //  NULL keeps a column; ?11 says whether response_content is written (NULL is a value there)
    [I_UPDATE] =
        "UPDATE kb_items SET external_id = coalesce (?2, external_id),"
        " category_id = coalesce (?3, category_id), question = coalesce (?4, question),"
        " answer = coalesce (?5, answer), keywords = coalesce (?6, keywords),"
        " status = coalesce (?7, status), response_type = coalesce (?8, response_type),"
        " response_content = CASE WHEN ?11 THEN ?9 ELSE response_content END, updated_at = ?10"
        " WHERE id = ?12 AND bot_id = ?1",
    [I_SIM_DELETE] = "DELETE FROM kb_questions WHERE item_id = ?",
    [I_SIM_INSERT] = "INSERT INTO kb_questions (item_id, position, question) VALUES (?, ?, ?)",
    [I_VAR_DELETE] = "DELETE FROM kb_variants WHERE item_id = ?",
    [I_VAR_INSERT] =
        "INSERT INTO kb_variants (item_id, position, labels, answer, response_type,"
        " response_content) VALUES (?, ?, ?, ?, ?, ?)",
    [I_DELETE] = "DELETE FROM kb_items WHERE id = ? AND bot_id = ?",
    [I_SIMILAR_OF] = "SELECT question FROM kb_questions WHERE item_id = ? ORDER BY position",
    [I_VARIANTS_OF] =
        "SELECT labels, answer, response_type, response_content FROM kb_variants"
        " WHERE item_id = ? ORDER BY position",
};

static const char *s_item_keys [] = {
    "id", "external_id", "category_id", "category", "question", "similar_questions", "answer",
    "variants", "response_type", "response_content", "status", "keywords", "updated_at", NULL
};

struct _kf_kb_items_t {
    kf_store_t *store;          //  Borrowed
    kf_kb_catalog_t *catalog;   //  Borrowed
    sqlite3 *db;                //  Borrowed from the store
    sqlite3_stmt *stmt [I_COUNT];
};

kf_kb_items_t *
kf_kb_items_new (kf_store_t *store, kf_kb_catalog_t *catalog)
{
    kf_kb_items_t *self = kf_calloc (1, sizeof *self);
    self->store = store;
    self->catalog = catalog;
    self->db = kf_store_db (store);
    if (kf_store_prepare (store, s_sql, self->stmt, I_COUNT, "kb items")) {
        kf_kb_items_destroy (&self);
        return NULL;
    }
    return self;
}

void
kf_kb_items_destroy (kf_kb_items_t **self_p)
{
    kf_kb_items_t *self = *self_p;
    if (!self)
        return;
    kf_store_finalize (self->stmt, I_COUNT);
    free (self);
    *self_p = NULL;
}

//  --- Checks ------------------------------------------------------------------------------------

//  An optional list of UTF-8 strings under `key`: at most `max` entries of `max_chars`
static int
s_check_str_array (const msgpack_object *item, const char *key, uint32_t max, size_t max_chars,
                   kf_error_t *err)
{
    const msgpack_object *array = kf_mp_get (item, key);
    if (!array || array->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (array->type != MSGPACK_OBJECT_ARRAY)
        return kf_error_set (err, KF_E_INVALID_PARAM, "%s must be a list of strings", key);
    if (array->via.array.size > max)
        return kf_error_set (err, KF_E_TOO_LARGE, "%s has more than %u entries", key, max);
    for (uint32_t i = 0; i < array->via.array.size; i++) {
        const msgpack_object *s = &array->via.array.ptr [i];
        if (s->type != MSGPACK_OBJECT_STR || s->via.str.size == 0)
            return kf_error_set (err, KF_E_INVALID_PARAM, "%s[%u] must be a non-empty string",
                                 key, i);
        if (!kf_utf8_is_valid (s->via.str.ptr, s->via.str.size))
            return kf_error_set (err, KF_E_INVALID_UTF8, "%s[%u] is not valid UTF-8", key, i);
        if (kf_utf8_count (s->via.str.ptr, s->via.str.size) > max_chars)
            return kf_error_set (err, KF_E_TOO_LARGE, "%s[%u] is longer than %zu characters",
                                 key, i, max_chars);
    }
    return 0;
}

//  The fields of an item as checked, pointing into the request
typedef struct {
    const char *external_id, *category, *question, *answer;
    size_t external_id_len, category_len, question_len, answer_len;
    int64_t id, category_id, status;
    const msgpack_object *type, *content, *similar, *variants, *keywords;
    bool has_content;           //  response_content is present (nil included)
} s_item_t;

//  Checks every field present; question and answer are required when creating
static int
s_check (kf_kb_items_t *self, const char *bot_id, const msgpack_object *item, bool is_update,
         s_item_t *f, kf_error_t *err)
{
    memset (f, 0, sizeof *f);
    if (!item || item->type != MSGPACK_OBJECT_MAP)
        return kf_error_set (err, KF_E_INVALID_PARAM, "an item must be a map");
    for (uint32_t i = 0; i < item->via.map.size; i++) {
        const msgpack_object *key = &item->via.map.ptr [i].key;
        bool is_known = false;
        for (int k = 0; s_item_keys [k] && !is_known; k++)
            is_known = kf_mp_str_eq_key (key, s_item_keys [k]);
        if (!is_known)
            return kf_error_set (err, KF_E_INVALID_PARAM, "unknown field %.*s",
                                 key->type == MSGPACK_OBJECT_STR ? (int) key->via.str.size : 1,
                                 key->type == MSGPACK_OBJECT_STR ? key->via.str.ptr : "?");
    }
    if (kf_param_str (item, "question", !is_update, 500, &f->question, &f->question_len, err)
    ||  kf_param_str (item, "answer", !is_update, 10000, &f->answer, &f->answer_len, err)
    ||  kf_param_str (item, "category", false, 600, &f->category, &f->category_len, err)
    ||  kf_param_str (item, "external_id", false, 128, &f->external_id, &f->external_id_len, err)
    ||  kf_param_int (item, "id", 0, INT64_MAX, 0, &f->id, err)
    ||  kf_param_int (item, "category_id", 0, INT64_MAX, -1, &f->category_id, err)
    ||  kf_param_int (item, "status", 0, 1, -1, &f->status, err)
    ||  s_check_str_array (item, "similar_questions", 200, 500, err)
    ||  s_check_str_array (item, "keywords", 50, 50, err)
    ||  kf_variants_check (kf_mp_get (item, "variants"), err))
        return -1;
    if ((f->question && f->question_len == 0) || (f->answer && f->answer_len == 0))
        return kf_error_set (err, KF_E_INVALID_PARAM, "question and answer must not be empty");
    if (f->external_id && f->external_id_len == 0)
        f->external_id = NULL;          //  "" is no id: such items never overwrite each other
    if (f->category_id > 0 && !kf_kb_category_exists (self->catalog, bot_id, f->category_id))
        return kf_error_set (err, KF_E_NOT_FOUND, "category %lld does not exist",
                             (long long) f->category_id);
    f->type = kf_mp_get (item, "response_type");
    f->content = kf_mp_get (item, "response_content");
    f->has_content = f->content != NULL;
    //  nil is "not given", like an absent key: only a list (maybe empty) replaces one
    f->similar = kf_mp_get (item, "similar_questions");
    f->variants = kf_mp_get (item, "variants");
    f->keywords = kf_mp_get (item, "keywords");
    if (f->similar && f->similar->type == MSGPACK_OBJECT_NIL)
        f->similar = NULL;
    if (f->variants && f->variants->type == MSGPACK_OBJECT_NIL)
        f->variants = NULL;
    if (f->keywords && f->keywords->type == MSGPACK_OBJECT_NIL)
        f->keywords = NULL;
    return 0;
}

//  --- Writes ------------------------------------------------------------------------------------

static void
s_bind_json (sqlite3_stmt *stmt, int index, const msgpack_object *obj)
{
    if (obj && obj->type != MSGPACK_OBJECT_NIL)
        sqlite3_bind_text (stmt, index, kf_json_from_msgpack (obj), -1, free);
    else
        sqlite3_bind_null (stmt, index);
}

static void
s_bind_type (sqlite3_stmt *stmt, int index, const msgpack_object *type, bool is_full)
{
    if (type && type->type == MSGPACK_OBJECT_STR)
        kf_store_bind_text (stmt, index, type->via.str.ptr, type->via.str.size);
    else
    if (is_full)
        sqlite3_bind_text (stmt, index, "text", 4, SQLITE_STATIC);
    else
        sqlite3_bind_null (stmt, index);
}

//  Replaces the similar questions and variants present in the item
static int
s_write_lists (kf_kb_items_t *self, int64_t id, const s_item_t *f, bool is_full)
{
    if (is_full || f->similar) {
        sqlite3_bind_int64 (self->stmt [I_SIM_DELETE], 1, id);
        if (kf_store_write_step (self->store, self->stmt [I_SIM_DELETE]))
            return -1;
        for (uint32_t i = 0; f->similar && f->similar->type == MSGPACK_OBJECT_ARRAY
                             && i < f->similar->via.array.size; i++) {
            sqlite3_stmt *insert = self->stmt [I_SIM_INSERT];
            const msgpack_object *s = &f->similar->via.array.ptr [i];
            sqlite3_bind_int64 (insert, 1, id);
            sqlite3_bind_int (insert, 2, (int) i);
            kf_store_bind_text (insert, 3, s->via.str.ptr, s->via.str.size);
            if (kf_store_write_step (self->store, insert))
                return -1;
        }
    }
    if (is_full || f->variants) {
        sqlite3_bind_int64 (self->stmt [I_VAR_DELETE], 1, id);
        if (kf_store_write_step (self->store, self->stmt [I_VAR_DELETE]))
            return -1;
        for (uint32_t i = 0; f->variants && f->variants->type == MSGPACK_OBJECT_ARRAY
                             && i < f->variants->via.array.size; i++) {
            sqlite3_stmt *insert = self->stmt [I_VAR_INSERT];
            const msgpack_object *v = &f->variants->via.array.ptr [i];
            const msgpack_object *answer = kf_mp_get (v, "answer");
            sqlite3_bind_int64 (insert, 1, id);
            sqlite3_bind_int (insert, 2, (int) i);
            s_bind_json (insert, 3, kf_mp_get (v, "labels"));
            kf_store_bind_text (insert, 4, answer->via.str.ptr, answer->via.str.size);
            s_bind_type (insert, 5, kf_mp_get (v, "response_type"), true);
            s_bind_json (insert, 6, kf_mp_get (v, "response_content"));
            if (kf_store_write_step (self->store, insert))
                return -1;
        }
    }
    return 0;
}

//  Writes a checked item: a new row, a whole replacement (`is_full`) or the fields present
static int
s_write (kf_kb_items_t *self, const char *bot_id, const s_item_t *f, int64_t *id, bool is_full,
         bool is_content_written)
{
    bool is_insert = *id == 0;
    sqlite3_stmt *stmt = self->stmt [is_insert ? I_INSERT : I_UPDATE];
    sqlite3_bind_text (stmt, 1, bot_id, -1, SQLITE_TRANSIENT);
    kf_store_bind_text (stmt, 2, f->external_id, f->external_id_len);
    if (f->category_id >= 0 || is_full)
        sqlite3_bind_int64 (stmt, 3, f->category_id > 0 ? f->category_id : 0);
    else
        sqlite3_bind_null (stmt, 3);
    kf_store_bind_text (stmt, 4, f->question, f->question_len);
    kf_store_bind_text (stmt, 5, f->answer, f->answer_len);
    if (f->keywords)
        s_bind_json (stmt, 6, f->keywords);
    else
    if (is_full)
        sqlite3_bind_text (stmt, 6, "[]", 2, SQLITE_STATIC);
    else
        sqlite3_bind_null (stmt, 6);
    if (f->status >= 0 || is_full)
        sqlite3_bind_int64 (stmt, 7, f->status >= 0 ? f->status : 1);
    else
        sqlite3_bind_null (stmt, 7);
    s_bind_type (stmt, 8, f->type, is_full);
    s_bind_json (stmt, 9, f->content);
    sqlite3_bind_int64 (stmt, 10, kf_now_ms ());
    if (!is_insert) {
        sqlite3_bind_int (stmt, 11, is_full || is_content_written);
        sqlite3_bind_int64 (stmt, 12, *id);
    }
    if (kf_store_write_step (self->store, stmt))
        return -1;
    if (is_insert)
        *id = sqlite3_last_insert_rowid (self->db);
    return s_write_lists (self, *id, f, is_full);
}

static int64_t
s_find_external (kf_kb_items_t *self, const char *bot_id, const char *external_id, size_t len)
{
    sqlite3_stmt *find = self->stmt [I_FIND_EXT];
    sqlite3_bind_text (find, 1, bot_id, -1, SQLITE_STATIC);
    sqlite3_bind_text (find, 2, external_id, (int) len, SQLITE_STATIC);
    int64_t id = sqlite3_step (find) == SQLITE_ROW ? sqlite3_column_int64 (find, 0) : 0;
    sqlite3_reset (find);
    return id;
}

//  For a partial update: finds the item, checks the answer type it ends with, and says whether
//  response_content is written. Returns 0 or -1 with `err` set.
static int
s_prepare_update (kf_kb_items_t *self, const char *bot_id, s_item_t *f, int64_t *id,
                  bool *is_content_written, kf_error_t *err)
{
    if (f->id > 0)
        *id = f->id;
    else
    if (f->external_id) {
        *id = s_find_external (self, bot_id, f->external_id, f->external_id_len);
        f->external_id = NULL;          //  A locator here, nothing to change
    }
    else
        return kf_error_set (err, KF_E_MISSING_ARGUMENT, "an update needs id or external_id");
    sqlite3_stmt *find = self->stmt [I_FIND_ID];
    sqlite3_bind_int64 (find, 1, *id);
    sqlite3_bind_text (find, 2, bot_id, -1, SQLITE_STATIC);
    char type [32] = "";
    if (sqlite3_step (find) == SQLITE_ROW)
        snprintf (type, sizeof type, "%s", (const char *) sqlite3_column_text (find, 0));
    sqlite3_reset (find);
    if (!*type)
        return kf_error_set (err, KF_E_NOT_FOUND, "item %lld does not exist", (long long) *id);
    if (f->external_id) {
        int64_t other = s_find_external (self, bot_id, f->external_id, f->external_id_len);
        if (other && other != *id)
            return kf_error_set (err, KF_E_CONFLICT, "item %lld already has external_id %.*s",
                                 (long long) other, (int) f->external_id_len, f->external_id);
    }
    bool is_type_changed = f->type && f->type->type == MSGPACK_OBJECT_STR
                        && !kf_mp_str_eq_key (f->type, type);
    *is_content_written = f->has_content || is_type_changed;
    if (f->has_content) {
        //  New content is checked against the type the item will have
        msgpack_object stored = { .type = MSGPACK_OBJECT_STR };
        stored.via.str.ptr = type;
        stored.via.str.size = (uint32_t) strlen (type);
        return kf_rich_check (f->type ? f->type : &stored, f->content, "item", err);
    }
    if (is_type_changed)
        return kf_rich_check (f->type, NULL, "item", err);
    return 0;
}

int
kf_kb_items_put (kf_kb_items_t *self, const char *bot_id, const msgpack_object *item,
                 bool is_update, int64_t *item_id, kf_error_t *err)
{
    s_item_t f;
    if (s_check (self, bot_id, item, is_update, &f, err))
        return -1;
    *item_id = 0;
    bool is_content_written = false;
    if (is_update) {
        if (s_prepare_update (self, bot_id, &f, item_id, &is_content_written, err))
            return -1;
    }
    else {
        if (kf_rich_check (f.type, f.content, "item", err))
            return -1;
        if (f.external_id)
            *item_id = s_find_external (self, bot_id, f.external_id, f.external_id_len);
    }
    bool is_new = *item_id == 0;
    //  One savepoint per item: a failing write takes back this item only, not its batch
    if (kf_store_savepoint (self->store, "kb_item"))
        return kf_error_set (err, KF_E_INTERNAL, "database write failed");
    int rc = 0;
    if (f.category_id < 0 && f.category)
        rc = kf_kb_category_resolve (self->catalog, bot_id, f.category, f.category_len,
                                     &f.category_id, err);
    if (rc == 0 && s_write (self, bot_id, &f, item_id, !is_update, is_content_written)) {
        kf_error_set (err, KF_E_INTERNAL, "database write failed");
        rc = -1;
    }
    if (kf_store_savepoint_end (self->store, "kb_item", rc) < 0)
        return -1;
    return is_new ? 1 : 2;
}

int
kf_kb_items_delete (kf_kb_items_t *self, const char *bot_id, int64_t id)
{
    sqlite3_stmt *stmt = self->stmt [I_DELETE];
    sqlite3_bind_int64 (stmt, 1, id);
    sqlite3_bind_text (stmt, 2, bot_id, -1, SQLITE_TRANSIENT);
    if (kf_store_write_step (self->store, stmt))
        return -1;
    return sqlite3_changes (self->db) > 0;
}

//  --- Reads -------------------------------------------------------------------------------------

//  Packs the similar questions of item `id` as a list
static void
s_pack_similar (kf_kb_items_t *self, int64_t id, msgpack_packer *pk)
{
    sqlite3_stmt *stmt = self->stmt [I_SIMILAR_OF];
    sqlite3_bind_int64 (stmt, 1, id);
    const char *texts [200];
    int count = 0;
    while (count < 200 && sqlite3_step (stmt) == SQLITE_ROW)
        texts [count++] = kf_strdup ((const char *) sqlite3_column_text (stmt, 0));
    sqlite3_reset (stmt);
    msgpack_pack_array (pk, count);
    for (int i = 0; i < count; i++) {
        kf_mp_pack_cstr (pk, texts [i]);
        free ((char *) texts [i]);
    }
}

//  Packs the variants of item `id` as a list of {labels, answer, response_type, response_content}
static void
s_pack_variants (kf_kb_items_t *self, int64_t id, msgpack_packer *pk)
{
    sqlite3_stmt *stmt = self->stmt [I_VARIANTS_OF];
    sqlite3_bind_int64 (stmt, 1, id);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer rows;
    msgpack_packer_init (&rows, &buffer, msgpack_sbuffer_write);
    int count = 0;
    while (count < 20 && sqlite3_step (stmt) == SQLITE_ROW) {
        msgpack_pack_map (&rows, 4);
        kf_mp_pack_cstr (&rows, "labels");
        kf_json_pack_text (&rows, (const char *) sqlite3_column_text (stmt, 0));
        kf_mp_pack_kv_str (&rows, "answer", (const char *) sqlite3_column_text (stmt, 1));
        kf_mp_pack_kv_str (&rows, "response_type", (const char *) sqlite3_column_text (stmt, 2));
        kf_mp_pack_cstr (&rows, "response_content");
        kf_json_pack_text (&rows, (const char *) sqlite3_column_text (stmt, 3));
        count++;
    }
    sqlite3_reset (stmt);
    msgpack_pack_array (pk, count);
    pk->callback (pk->data, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
}

#define S_ITEM_COLUMNS "id, external_id, category_id, question, answer, keywords, status," \
                       " response_type, response_content, updated_at"

//  Packs the item on the current row of a statement selecting S_ITEM_COLUMNS
static void
s_pack_item (void *arg, sqlite3_stmt *row, msgpack_packer *pk)
{
    kf_kb_items_t *self = arg;
    int64_t id = sqlite3_column_int64 (row, 0);
    char path [1024];
    kf_kb_category_path (self->catalog, sqlite3_column_int64 (row, 2), path, sizeof path);
    msgpack_pack_map (pk, 13);
    kf_mp_pack_kv_int (pk, "id", id);
    kf_mp_pack_cstr (pk, "external_id");
    if (sqlite3_column_type (row, 1) == SQLITE_NULL)
        msgpack_pack_nil (pk);
    else
        kf_mp_pack_cstr (pk, (const char *) sqlite3_column_text (row, 1));
    kf_mp_pack_kv_int (pk, "category_id", sqlite3_column_int64 (row, 2));
    kf_mp_pack_kv_str (pk, "category", path);
    kf_mp_pack_kv_str (pk, "question", (const char *) sqlite3_column_text (row, 3));
    kf_mp_pack_cstr (pk, "similar_questions");
    s_pack_similar (self, id, pk);
    kf_mp_pack_kv_str (pk, "answer", (const char *) sqlite3_column_text (row, 4));
    kf_mp_pack_cstr (pk, "variants");
    s_pack_variants (self, id, pk);
    kf_mp_pack_kv_str (pk, "response_type", (const char *) sqlite3_column_text (row, 7));
    kf_mp_pack_cstr (pk, "response_content");
    kf_json_pack_text (pk, (const char *) sqlite3_column_text (row, 8));
    kf_mp_pack_kv_int (pk, "status", sqlite3_column_int64 (row, 6));
    kf_mp_pack_cstr (pk, "keywords");
    kf_json_pack_text (pk, (const char *) sqlite3_column_text (row, 5));
    kf_mp_pack_kv_int (pk, "updated_at", sqlite3_column_int64 (row, 9));
}

int
kf_kb_items_query_pack (kf_kb_items_t *self, const char *bot_id, const kf_kb_filter_t *filter,
                        msgpack_packer *pk)
{
    char where [1024];
    snprintf (where, sizeof where,
              " FROM kb_items i WHERE bot_id = ?1"
              " AND (?2 IS NULL OR id IN (SELECT value FROM json_each (?2)))"
              " AND (?3 < 0 OR category_id %s)"
              " AND (?4 < 0 OR status = ?4)"
              " AND (?5 IS NULL OR instr (question, ?5) > 0 OR instr (answer, ?5) > 0"
              " OR EXISTS (SELECT 1 FROM kb_questions q WHERE q.item_id = i.id"
              " AND instr (q.question, ?5) > 0))",
              filter->is_subtree
              ? "IN (WITH RECURSIVE t (id) AS (SELECT ?3 UNION ALL SELECT c.id FROM kb_categories c"
                " JOIN t ON c.parent_id = t.id WHERE c.bot_id = ?1) SELECT id FROM t)"
              : "= ?3");
    char sql [1400];
    sqlite3_stmt *count = NULL, *rows = NULL;
    snprintf (sql, sizeof sql, "SELECT count(*)%s", where);
    int rc = sqlite3_prepare_v2 (self->db, sql, -1, &count, NULL);
    snprintf (sql, sizeof sql, "SELECT " S_ITEM_COLUMNS "%s ORDER BY id LIMIT ?6 OFFSET ?7", where);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2 (self->db, sql, -1, &rows, NULL);
    if (rc != SQLITE_OK) {
        kf_error ("kb items: query failed: %s", sqlite3_errmsg (self->db));
        sqlite3_finalize (count);
        sqlite3_finalize (rows);
        return -1;
    }
    sqlite3_stmt *both [2] = { count, rows };
    for (int i = 0; i < 2; i++) {
        sqlite3_bind_text (both [i], 1, bot_id, -1, SQLITE_STATIC);
        s_bind_json (both [i], 2, filter->ids);
        sqlite3_bind_int64 (both [i], 3, filter->category_id);
        sqlite3_bind_int64 (both [i], 4, filter->status);
        kf_store_bind_text (both [i], 5, filter->keyword, filter->keyword_len);
    }
    sqlite3_bind_int64 (rows, 6, filter->page_size);
    sqlite3_bind_int64 (rows, 7, (filter->page - 1) * filter->page_size);
    int64_t total = sqlite3_step (count) == SQLITE_ROW ? sqlite3_column_int64 (count, 0) : 0;
    sqlite3_finalize (count);
    return kf_store_pack_page (rows, s_pack_item, self, total, filter->page, filter->page_size, 0, pk);
}
