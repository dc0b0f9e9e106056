/*  kb_catalog.c - the category tree and synonym groups of each bot, in SQLite. Subtrees are found
    with recursive queries; paths and depths by walking up parent ids (at most 8 levels). */
#include "broker/kb_catalog.h"
#include "common/clock.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SUBTREE "WITH RECURSIVE t (id) AS (SELECT ?1 UNION ALL SELECT c.id FROM kb_categories c" \
                  " JOIN t ON c.parent_id = t.id WHERE c.bot_id = ?2) "

enum {
    K_CAT_PARENT, K_CAT_FIND, K_CAT_INSERT, K_CAT_UPDATE, K_CAT_EXISTS, K_ITEMS_MOVE,
    K_ITEMS_DELETE, K_CAT_DELETE, K_SYN_INSERT, K_SYN_UPDATE, K_SYN_DELETE, K_HEIGHT, K_COUNT
};

static const char *s_sql [K_COUNT] = {
    [K_CAT_PARENT] = "SELECT parent_id, name FROM kb_categories WHERE id = ?",
    [K_CAT_FIND] = "SELECT id FROM kb_categories WHERE bot_id = ? AND parent_id = ? AND name = ?",
    [K_CAT_INSERT] =
        "INSERT INTO kb_categories (bot_id, parent_id, name, position, enabled, created_at,"
        " updated_at) VALUES (?1, ?2, ?3, coalesce (?4, (SELECT count(*) FROM kb_categories"
        " WHERE bot_id = ?1 AND parent_id = ?2)), ?5, ?6, ?6)",
    [K_CAT_UPDATE] =
        "UPDATE kb_categories SET name = coalesce (?3, name), parent_id = coalesce (?4, parent_id),"
        " position = coalesce (?5, position), enabled = coalesce (?6, enabled), updated_at = ?7"
        " WHERE id = ?1 AND bot_id = ?2",
    [K_CAT_EXISTS] = "SELECT 1 FROM kb_categories WHERE id = ? AND bot_id = ?",
    [K_ITEMS_MOVE] = S_SUBTREE "UPDATE kb_items SET category_id = 0, updated_at = ?3"
                     " WHERE bot_id = ?2 AND category_id IN (SELECT id FROM t)",
    [K_ITEMS_DELETE] = S_SUBTREE "DELETE FROM kb_items WHERE bot_id = ?2"
                       " AND category_id IN (SELECT id FROM t)",
    [K_CAT_DELETE] = S_SUBTREE "DELETE FROM kb_categories WHERE bot_id = ?2"
                     " AND id IN (SELECT id FROM t)",
    [K_SYN_INSERT] = "INSERT INTO kb_synonyms (bot_id, words, updated_at) VALUES (?, ?, ?)",
    [K_SYN_UPDATE] = "UPDATE kb_synonyms SET words = ?3, updated_at = ?4 WHERE id = ?1 AND bot_id = ?2",
    [K_SYN_DELETE] = "DELETE FROM kb_synonyms WHERE id = ? AND bot_id = ?",
    //  Levels of the subtree under ?1, itself included (bounded, in case of a loop)
    [K_HEIGHT] =
        "WITH RECURSIVE t (id, depth) AS (SELECT ?1, 1 UNION ALL SELECT c.id, t.depth + 1"
        " FROM kb_categories c JOIN t ON c.parent_id = t.id WHERE c.bot_id = ?2 AND t.depth < 16)"
        " SELECT max (depth) FROM t",
};

struct _kf_kb_catalog_t {
    kf_store_t *store;          //  Borrowed
    sqlite3 *db;                //  Borrowed from the store
    sqlite3_stmt *stmt [K_COUNT];
};

kf_kb_catalog_t *
kf_kb_catalog_new (kf_store_t *store)
{
    kf_kb_catalog_t *self = kf_calloc (1, sizeof *self);
    self->store = store;
    self->db = kf_store_db (store);
    if (kf_store_prepare (store, s_sql, self->stmt, K_COUNT, "kb catalog")) {
        kf_kb_catalog_destroy (&self);
        return NULL;
    }
    return self;
}

void
kf_kb_catalog_destroy (kf_kb_catalog_t **self_p)
{
    kf_kb_catalog_t *self = *self_p;
    if (!self)
        return;
    kf_store_finalize (self->stmt, K_COUNT);
    free (self);
    *self_p = NULL;
}

//  --- Categories ------------------------------------------------------------------------------

//  Parent of category `id` (and its name into `name` when given); -1 when there is none
static int64_t
s_parent (kf_kb_catalog_t *self, int64_t id, char *name, size_t size)
{
    sqlite3_stmt *stmt = self->stmt [K_CAT_PARENT];
    sqlite3_bind_int64 (stmt, 1, id);
    int64_t parent = -1;
    if (sqlite3_step (stmt) == SQLITE_ROW) {
        parent = sqlite3_column_int64 (stmt, 0);
        if (name)
            snprintf (name, size, "%s", (const char *) sqlite3_column_text (stmt, 1));
    }
    sqlite3_reset (stmt);
    return parent;
}

//  Levels from the root down to `id` (1 for a top-level category); a loop counts as too deep
static int
s_depth (kf_kb_catalog_t *self, int64_t id)
{
    int depth = 0;
    while (id > 0 && depth <= KF_CATEGORY_DEPTH_MAX) {
        id = s_parent (self, id, NULL, 0);
        depth++;
    }
    return depth;
}

bool
kf_kb_category_exists (kf_kb_catalog_t *self, const char *bot_id, int64_t id)
{
    if (id == 0)
        return true;
    sqlite3_stmt *stmt = self->stmt [K_CAT_EXISTS];
    sqlite3_bind_int64 (stmt, 1, id);
    sqlite3_bind_text (stmt, 2, bot_id, -1, SQLITE_STATIC);
    bool exists = sqlite3_step (stmt) == SQLITE_ROW;
    sqlite3_reset (stmt);
    return exists;
}

void
kf_kb_category_path (kf_kb_catalog_t *self, int64_t id, char *path, size_t size)
{
    char names [KF_CATEGORY_DEPTH_MAX][260];
    int count = 0;
    while (id > 0 && count < KF_CATEGORY_DEPTH_MAX)
        id = s_parent (self, id, names [count++], sizeof names [0]);
    size_t used = 0;
    path [0] = 0;
    while (count > 0 && used < size) {
        count--;
        used += snprintf (path + used, size - used, "%s%s", used ? "/" : "", names [count]);
    }
}

//  A category name: 1-64 characters, no '/' (the path separator); spaces around it are trimmed
//  (paths trim theirs, so a name with them could never be reached by path)
static int
s_check_name (const char **name_p, size_t *len_p, kf_error_t *err)
{
    const char *name = *name_p;
    size_t len = *len_p;
    while (len && (*name == ' ' || *name == '\t'))
        name++, len--;
    while (len && (name [len - 1] == ' ' || name [len - 1] == '\t'))
        len--;
    *name_p = name;
    *len_p = len;
    if (len == 0)
        return kf_error_set (err, KF_E_INVALID_PARAM, "a category name must not be empty");
    if (memchr (name, '/', len))
        return kf_error_set (err, KF_E_INVALID_PARAM, "a category name must not contain '/'");
    return 0;
}

//  The parent a category may go under: 0 or one of the bot's, leaving room for one more level
static int
s_check_parent (kf_kb_catalog_t *self, const char *bot_id, int64_t parent_id, kf_error_t *err)
{
    if (!kf_kb_category_exists (self, bot_id, parent_id))
        return kf_error_set (err, KF_E_NOT_FOUND, "parent category %lld does not exist",
                             (long long) parent_id);
    if (s_depth (self, parent_id) >= KF_CATEGORY_DEPTH_MAX)
        return kf_error_set (err, KF_E_INVALID_PARAM, "categories nest at most %d levels",
                             KF_CATEGORY_DEPTH_MAX);
    return 0;
}

//  Inserts a checked category; a sibling with the same name is a conflict
static int
s_insert (kf_kb_catalog_t *self, const char *bot_id, int64_t parent_id, const char *name,
          size_t name_len, const int64_t *position, bool is_enabled, int64_t *id, kf_error_t *err)
{
    sqlite3_stmt *find = self->stmt [K_CAT_FIND];
    sqlite3_bind_text (find, 1, bot_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (find, 2, parent_id);
    sqlite3_bind_text (find, 3, name, (int) name_len, SQLITE_STATIC);
    bool is_taken = sqlite3_step (find) == SQLITE_ROW;
    sqlite3_reset (find);
    if (is_taken)
        return kf_error_set (err, KF_E_CONFLICT, "category %.*s already exists under parent %lld",
                             (int) name_len, name, (long long) parent_id);
    sqlite3_stmt *stmt = self->stmt [K_CAT_INSERT];
    sqlite3_bind_text (stmt, 1, bot_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64 (stmt, 2, parent_id);
    sqlite3_bind_text (stmt, 3, name, (int) name_len, SQLITE_TRANSIENT);
    if (position)
        sqlite3_bind_int64 (stmt, 4, *position);
    else
        sqlite3_bind_null (stmt, 4);
    sqlite3_bind_int (stmt, 5, is_enabled);
    sqlite3_bind_int64 (stmt, 6, kf_now_ms ());
    if (kf_store_write_step (self->store, stmt))
        return kf_error_set (err, KF_E_INTERNAL, "could not store the category");
    *id = sqlite3_last_insert_rowid (self->db);
    return 0;
}

int
kf_kb_category_create (kf_kb_catalog_t *self, const char *bot_id, const msgpack_object *entry,
                       int64_t *id, kf_error_t *err)
{
    const char *name;
    size_t name_len;
    int64_t parent_id, position;
    bool is_enabled;
    if (!entry || entry->type != MSGPACK_OBJECT_MAP)
        return kf_error_set (err, KF_E_INVALID_PARAM, "a category must be a map");
    if (kf_param_str (entry, "name", true, 64, &name, &name_len, err)
    ||  kf_param_int (entry, "parent_id", 0, INT64_MAX, 0, &parent_id, err)
    ||  kf_param_int (entry, "position", 0, INT32_MAX, -1, &position, err)
    ||  kf_param_bool (entry, "enabled", true, &is_enabled, err)
    ||  s_check_name (&name, &name_len, err)
    ||  s_check_parent (self, bot_id, parent_id, err))
        return -1;
    return s_insert (self, bot_id, parent_id, name, name_len, position >= 0 ? &position : NULL,
                     is_enabled, id, err);
}

int
kf_kb_category_update (kf_kb_catalog_t *self, const char *bot_id, const msgpack_object *entry,
                       kf_error_t *err)
{
    const char *name;
    size_t name_len;
    int64_t id, parent_id, position;
    bool is_enabled;
    if (!entry || entry->type != MSGPACK_OBJECT_MAP)
        return kf_error_set (err, KF_E_INVALID_PARAM, "a category must be a map");
    if (!kf_mp_get (entry, "id"))
        return kf_error_set (err, KF_E_MISSING_ARGUMENT, "id is required");
    if (kf_param_int (entry, "id", 1, INT64_MAX, 0, &id, err)
    ||  kf_param_str (entry, "name", false, 64, &name, &name_len, err)
    ||  kf_param_int (entry, "parent_id", 0, INT64_MAX, -1, &parent_id, err)
    ||  kf_param_int (entry, "position", 0, INT32_MAX, -1, &position, err)
    ||  kf_param_bool (entry, "enabled", true, &is_enabled, err)
    ||  (name && s_check_name (&name, &name_len, err)))
        return -1;
    if (!kf_kb_category_exists (self, bot_id, id))
        return kf_error_set (err, KF_E_NOT_FOUND, "category %lld does not exist", (long long) id);
    char old_name [260];
    int64_t old_parent = s_parent (self, id, old_name, sizeof old_name);
    if (parent_id >= 0 && parent_id != old_parent) {
        for (int64_t up = parent_id; up > 0; up = s_parent (self, up, NULL, 0))
            if (up == id)
                return kf_error_set (err, KF_E_INVALID_PARAM, "category %lld cannot move under"
                                     " itself or its own subcategories", (long long) id);
        if (s_check_parent (self, bot_id, parent_id, err))
            return -1;
        sqlite3_stmt *height = self->stmt [K_HEIGHT];
        sqlite3_bind_int64 (height, 1, id);
        sqlite3_bind_text (height, 2, bot_id, -1, SQLITE_STATIC);
        int levels = sqlite3_step (height) == SQLITE_ROW ? sqlite3_column_int (height, 0) : 1;
        sqlite3_reset (height);
        if (s_depth (self, parent_id) + levels > KF_CATEGORY_DEPTH_MAX)
            return kf_error_set (err, KF_E_INVALID_PARAM, "the move would nest categories deeper"
                                 " than %d levels", KF_CATEGORY_DEPTH_MAX);
    }
    int64_t new_parent = parent_id >= 0 ? parent_id : old_parent;
    if (name || new_parent != old_parent) {
        sqlite3_stmt *find = self->stmt [K_CAT_FIND];
        sqlite3_bind_text (find, 1, bot_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (find, 2, new_parent);
        if (name)
            sqlite3_bind_text (find, 3, name, (int) name_len, SQLITE_STATIC);
        else
            sqlite3_bind_text (find, 3, old_name, -1, SQLITE_STATIC);
        int64_t other = sqlite3_step (find) == SQLITE_ROW ? sqlite3_column_int64 (find, 0) : 0;
        sqlite3_reset (find);
        if (other && other != id)
            return kf_error_set (err, KF_E_CONFLICT, "a sibling category already has that name");
    }
    sqlite3_stmt *stmt = self->stmt [K_CAT_UPDATE];
    sqlite3_bind_int64 (stmt, 1, id);
    sqlite3_bind_text (stmt, 2, bot_id, -1, SQLITE_TRANSIENT);
    kf_store_bind_text (stmt, 3, name, name_len);
    if (parent_id >= 0)
        sqlite3_bind_int64 (stmt, 4, parent_id);
    else
        sqlite3_bind_null (stmt, 4);
    if (position >= 0)
        sqlite3_bind_int64 (stmt, 5, position);
    else
        sqlite3_bind_null (stmt, 5);
    const msgpack_object *enabled = kf_mp_get (entry, "enabled");
    if (enabled && enabled->type != MSGPACK_OBJECT_NIL)
        sqlite3_bind_int (stmt, 6, is_enabled);
    else
        sqlite3_bind_null (stmt, 6);
    sqlite3_bind_int64 (stmt, 7, kf_now_ms ());
    if (kf_store_write_step (self->store, stmt))
        return kf_error_set (err, KF_E_INTERNAL, "could not store the category");
    return 0;
}

//  Runs one of the subtree statements for category `id`; returns rows changed or -1
static int64_t
s_subtree_write (kf_kb_catalog_t *self, int which, const char *bot_id, int64_t id)
{
    sqlite3_stmt *stmt = self->stmt [which];
    sqlite3_bind_int64 (stmt, 1, id);
    sqlite3_bind_text (stmt, 2, bot_id, -1, SQLITE_TRANSIENT);
    if (which == K_ITEMS_MOVE)
        sqlite3_bind_int64 (stmt, 3, kf_now_ms ());
    if (kf_store_write_step (self->store, stmt))
        return -1;
    return sqlite3_changes64 (self->db);
}

int
kf_kb_category_delete (kf_kb_catalog_t *self, const char *bot_id, int64_t id,
                       bool is_deleting_items, int64_t *categories, int64_t *items)
{
    if (id <= 0 || !kf_kb_category_exists (self, bot_id, id))
        return 0;
    int64_t moved = s_subtree_write (self, is_deleting_items ? K_ITEMS_DELETE : K_ITEMS_MOVE,
                                     bot_id, id);
    int64_t deleted = moved < 0 ? -1 : s_subtree_write (self, K_CAT_DELETE, bot_id, id);
    if (deleted < 0)
        return -1;
    *items += moved;
    *categories += deleted;
    return 1;
}

int
kf_kb_category_resolve (kf_kb_catalog_t *self, const char *bot_id, const char *path, size_t len,
                        int64_t *id, kf_error_t *err)
{
    int64_t parent = 0;
    int depth = 0;
    size_t at = 0;
    while (at < len) {
        size_t end = at;
        while (end < len && path [end] != '/')
            end++;
        size_t start = at, stop = end;
        while (start < stop && (path [start] == ' ' || path [start] == '\t'))
            start++;
        while (stop > start && (path [stop - 1] == ' ' || path [stop - 1] == '\t'))
            stop--;
        at = end + 1;
        if (stop == start)
            continue;                   //  "售后//退款" and a trailing '/' name nothing more
        if (kf_utf8_count (path + start, stop - start) > 64)
            return kf_error_set (err, KF_E_TOO_LARGE, "category names hold at most 64 characters");
        if (++depth > KF_CATEGORY_DEPTH_MAX)
            return kf_error_set (err, KF_E_INVALID_PARAM, "categories nest at most %d levels",
                                 KF_CATEGORY_DEPTH_MAX);
        sqlite3_stmt *find = self->stmt [K_CAT_FIND];
        sqlite3_bind_text (find, 1, bot_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (find, 2, parent);
        sqlite3_bind_text (find, 3, path + start, (int) (stop - start), SQLITE_STATIC);
        int64_t found = sqlite3_step (find) == SQLITE_ROW ? sqlite3_column_int64 (find, 0) : 0;
        sqlite3_reset (find);
        if (!found && s_insert (self, bot_id, parent, path + start, stop - start, NULL, true,
                                &found, err))
            return -1;
        parent = found;
    }
    *id = parent;
    return 0;
}

//  Binds the JSON text of an id list (or NULL) for json_each
static void
s_bind_ids (sqlite3_stmt *stmt, int index, const msgpack_object *ids)
{
    if (ids && ids->type == MSGPACK_OBJECT_ARRAY)
        sqlite3_bind_text (stmt, index, kf_json_from_msgpack (ids), -1, free);
    else
        sqlite3_bind_null (stmt, index);
}

int
kf_kb_category_query_pack (kf_kb_catalog_t *self, const char *bot_id, const msgpack_object *ids,
                           const char *name, size_t name_len, int64_t parent_id, int64_t page,
                           int64_t page_size, msgpack_packer *pk)
{
    static const char *where =
        " FROM kb_categories c WHERE bot_id = ?1 AND (?2 IS NULL OR id IN (SELECT value FROM"
        " json_each (?2))) AND (?3 IS NULL OR instr (name, ?3) > 0) AND (?4 < 0 OR parent_id = ?4)";
    char sql [1024];
    sqlite3_stmt *count = NULL, *rows = NULL;
    snprintf (sql, sizeof sql, "SELECT count(*)%s", where);
    int rc = sqlite3_prepare_v2 (self->db, sql, -1, &count, NULL);
    snprintf (sql, sizeof sql, "SELECT id, parent_id, name, position, enabled, created_at,"
              " updated_at, (SELECT count(*) FROM kb_items i WHERE i.category_id = c.id)%s"
              " ORDER BY parent_id, position, id LIMIT ?5 OFFSET ?6", where);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2 (self->db, sql, -1, &rows, NULL);
    int64_t total = 0;
    if (rc == SQLITE_OK) {
        sqlite3_stmt *both [2] = { count, rows };
        for (int i = 0; i < 2; i++) {
            sqlite3_bind_text (both [i], 1, bot_id, -1, SQLITE_STATIC);
            s_bind_ids (both [i], 2, ids);
            kf_store_bind_text (both [i], 3, name, name_len);
            sqlite3_bind_int64 (both [i], 4, parent_id);
        }
        sqlite3_bind_int64 (rows, 5, page_size);
        sqlite3_bind_int64 (rows, 6, (page - 1) * page_size);
        rc = sqlite3_step (count) == SQLITE_ROW ? SQLITE_OK : SQLITE_ERROR;
        total = sqlite3_column_int64 (count, 0);
    }
    if (rc != SQLITE_OK) {
        kf_error ("kb catalog: category query failed: %s", sqlite3_errmsg (self->db));
        sqlite3_finalize (count);
        sqlite3_finalize (rows);
        return -1;
    }
    int64_t shown = kf_page_rows (total, page, page_size);
    msgpack_pack_map (pk, 5);
    kf_mp_pack_cstr (pk, "data");
    msgpack_pack_array (pk, (uint32_t) shown);
    for (int64_t i = 0; i < shown; i++) {
        //  Rows the count promised are packed even if a step fails, as empty categories
        bool is_row = sqlite3_step (rows) == SQLITE_ROW;
        int64_t id = is_row ? sqlite3_column_int64 (rows, 0) : 0;
        char path [1024];
        kf_kb_category_path (self, id, path, sizeof path);
        msgpack_pack_map (pk, 9);
        kf_mp_pack_kv_int (pk, "id", id);
        kf_mp_pack_kv_int (pk, "parent_id", is_row ? sqlite3_column_int64 (rows, 1) : 0);
        kf_mp_pack_kv_str (pk, "name", is_row ? (const char *) sqlite3_column_text (rows, 2) : "");
        kf_mp_pack_kv_str (pk, "path", path);
        kf_mp_pack_kv_int (pk, "position", is_row ? sqlite3_column_int64 (rows, 3) : 0);
        kf_mp_pack_kv_bool (pk, "enabled", is_row && sqlite3_column_int (rows, 4));
        kf_mp_pack_kv_int (pk, "item_count", is_row ? sqlite3_column_int64 (rows, 7) : 0);
        kf_mp_pack_kv_int (pk, "created_at", is_row ? sqlite3_column_int64 (rows, 5) : 0);
        kf_mp_pack_kv_int (pk, "updated_at", is_row ? sqlite3_column_int64 (rows, 6) : 0);
    }
    kf_mp_pack_page (pk, total, page, page_size);
    sqlite3_finalize (count);
    sqlite3_finalize (rows);
    return 0;
}

//  --- Synonyms --------------------------------------------------------------------------------

//  Checks {words: [...]} and returns its words as JSON (caller frees), or NULL with `err` set
static char *
s_words_json (const msgpack_object *entry, kf_error_t *err)
{
    const msgpack_object *words = kf_mp_get (entry, "words");
    if (!words || words->type == MSGPACK_OBJECT_NIL) {
        kf_error_set (err, KF_E_MISSING_ARGUMENT, "words is required");
        return NULL;
    }
    if (words->type != MSGPACK_OBJECT_ARRAY || words->via.array.size < 2
    ||  words->via.array.size > 50) {
        kf_error_set (err, KF_E_INVALID_PARAM, "words must be a list of 2 to 50 words");
        return NULL;
    }
    for (uint32_t i = 0; i < words->via.array.size; i++) {
        const msgpack_object *w = &words->via.array.ptr [i];
        if (w->type != MSGPACK_OBJECT_STR || w->via.str.size == 0) {
            kf_error_set (err, KF_E_INVALID_PARAM, "words[%u] must be a non-empty string", i);
            return NULL;
        }
        if (!kf_utf8_is_valid (w->via.str.ptr, w->via.str.size)) {
            kf_error_set (err, KF_E_INVALID_UTF8, "words[%u] is not valid UTF-8", i);
            return NULL;
        }
        if (kf_utf8_count (w->via.str.ptr, w->via.str.size) > 20) {
            kf_error_set (err, KF_E_TOO_LARGE, "words[%u] is longer than 20 characters", i);
            return NULL;
        }
        for (uint32_t j = 0; j < i; j++) {
            const msgpack_object *o = &words->via.array.ptr [j];
            if (o->via.str.size == w->via.str.size
            &&  memcmp (o->via.str.ptr, w->via.str.ptr, w->via.str.size) == 0) {
                kf_error_set (err, KF_E_INVALID_PARAM, "words[%u] repeats words[%u]", i, j);
                return NULL;
            }
        }
    }
    return kf_json_from_msgpack (words);
}

int
kf_kb_synonyms_create (kf_kb_catalog_t *self, const char *bot_id, const msgpack_object *entry,
                       int64_t *id, kf_error_t *err)
{
    if (!entry || entry->type != MSGPACK_OBJECT_MAP)
        return kf_error_set (err, KF_E_INVALID_PARAM, "a synonym group must be a map");
    char *words = s_words_json (entry, err);
    if (!words)
        return -1;
    sqlite3_stmt *stmt = self->stmt [K_SYN_INSERT];
    sqlite3_bind_text (stmt, 1, bot_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 2, words, -1, free);
    sqlite3_bind_int64 (stmt, 3, kf_now_ms ());
    if (kf_store_write_step (self->store, stmt))
        return kf_error_set (err, KF_E_INTERNAL, "could not store the synonym group");
    *id = sqlite3_last_insert_rowid (self->db);
    return 0;
}

int
kf_kb_synonyms_update (kf_kb_catalog_t *self, const char *bot_id, const msgpack_object *entry,
                       kf_error_t *err)
{
    int64_t id;
    if (!entry || entry->type != MSGPACK_OBJECT_MAP)
        return kf_error_set (err, KF_E_INVALID_PARAM, "a synonym group must be a map");
    if (!kf_mp_get (entry, "id"))
        return kf_error_set (err, KF_E_MISSING_ARGUMENT, "id is required");
    if (kf_param_int (entry, "id", 1, INT64_MAX, 0, &id, err))
        return -1;
    char *words = s_words_json (entry, err);
    if (!words)
        return -1;
    sqlite3_stmt *stmt = self->stmt [K_SYN_UPDATE];
    sqlite3_bind_int64 (stmt, 1, id);
    sqlite3_bind_text (stmt, 2, bot_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 3, words, -1, free);
    sqlite3_bind_int64 (stmt, 4, kf_now_ms ());
    if (kf_store_write_step (self->store, stmt))
        return kf_error_set (err, KF_E_INTERNAL, "could not store the synonym group");
    if (sqlite3_changes (self->db) == 0)
        return kf_error_set (err, KF_E_NOT_FOUND, "synonym group %lld does not exist",
                             (long long) id);
    return 0;
}

int
kf_kb_synonyms_delete (kf_kb_catalog_t *self, const char *bot_id, int64_t id)
{
    sqlite3_stmt *stmt = self->stmt [K_SYN_DELETE];
    sqlite3_bind_int64 (stmt, 1, id);
    sqlite3_bind_text (stmt, 2, bot_id, -1, SQLITE_TRANSIENT);
    if (kf_store_write_step (self->store, stmt))
        return -1;
    return sqlite3_changes (self->db) > 0;
}

int
kf_kb_synonyms_query_pack (kf_kb_catalog_t *self, const char *bot_id, const char *keyword,
                           size_t keyword_len, int64_t page, int64_t page_size, msgpack_packer *pk)
{
    static const char *where =
        " FROM kb_synonyms WHERE bot_id = ?1 AND (?2 IS NULL OR EXISTS (SELECT 1 FROM json_each"
        " (words) WHERE instr (value, ?2) > 0))";
    char sql [512];
    sqlite3_stmt *count = NULL, *rows = NULL;
    snprintf (sql, sizeof sql, "SELECT count(*)%s", where);
    int rc = sqlite3_prepare_v2 (self->db, sql, -1, &count, NULL);
    snprintf (sql, sizeof sql, "SELECT id, words, updated_at%s ORDER BY id LIMIT ?3 OFFSET ?4",
              where);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2 (self->db, sql, -1, &rows, NULL);
    if (rc != SQLITE_OK) {
        kf_error ("kb catalog: synonym query failed: %s", sqlite3_errmsg (self->db));
        sqlite3_finalize (count);
        sqlite3_finalize (rows);
        return -1;
    }
    sqlite3_stmt *both [2] = { count, rows };
    for (int i = 0; i < 2; i++) {
        sqlite3_bind_text (both [i], 1, bot_id, -1, SQLITE_STATIC);
        kf_store_bind_text (both [i], 2, keyword, keyword_len);
    }
    sqlite3_bind_int64 (rows, 3, page_size);
    sqlite3_bind_int64 (rows, 4, (page - 1) * page_size);
    int64_t total = sqlite3_step (count) == SQLITE_ROW ? sqlite3_column_int64 (count, 0) : 0;
    int64_t shown = kf_page_rows (total, page, page_size);
    msgpack_pack_map (pk, 5);
    kf_mp_pack_cstr (pk, "data");
    msgpack_pack_array (pk, (uint32_t) shown);
    for (int64_t i = 0; i < shown; i++) {
        bool is_row = sqlite3_step (rows) == SQLITE_ROW;
        msgpack_pack_map (pk, 3);
        kf_mp_pack_kv_int (pk, "id", is_row ? sqlite3_column_int64 (rows, 0) : 0);
        kf_mp_pack_cstr (pk, "words");
        kf_json_pack_text (pk, is_row ? (const char *) sqlite3_column_text (rows, 1) : "[]");
        kf_mp_pack_kv_int (pk, "updated_at", is_row ? sqlite3_column_int64 (rows, 2) : 0);
    }
    kf_mp_pack_page (pk, total, page, page_size);
    sqlite3_finalize (count);
    sqlite3_finalize (rows);
    return 0;
}
