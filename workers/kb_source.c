/*  kb_source.c - loads the knowledge base from the broker's SQLite file, read-only. */
#include "workers/kb_source.h"
#include "common/dict.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _kf_kb_source_t {
    char *path;                 //  Database file
    sqlite3 *db;                //  Read-only connection, NULL until the file exists
    int64_t version;            //  Version last loaded, 0 before the first load
    bool is_failing;            //  Logged the current failure streak already
};

kf_kb_source_t *
kf_kb_source_new (const char *path)
{
    kf_kb_source_t *self = kf_calloc (1, sizeof *self);
    self->path = kf_strdup (path);
    return self;
}

void
kf_kb_source_destroy (kf_kb_source_t **self_p)
{
    kf_kb_source_t *self = *self_p;
    if (!self)
        return;
    sqlite3_close (self->db);
    free (self->path);
    free (self);
    *self_p = NULL;
}

static void
s_failed (kf_kb_source_t *self, const char *what)
{
    if (!self->is_failing)
        kf_warn ("knowledge base: %s: %s", what, self->db ? sqlite3_errmsg (self->db) : self->path);
    self->is_failing = true;
}

static int64_t
s_read_version (kf_kb_source_t *self)
{
    if (!self->db) {
        if (sqlite3_open_v2 (self->path, &self->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
            s_failed (self, "cannot open");
            sqlite3_close (self->db);
            self->db = NULL;
            return -1;
        }
        sqlite3_busy_timeout (self->db, 100);
    }
    sqlite3_stmt *stmt;
    int64_t version = -1;
    if (sqlite3_prepare_v2 (self->db, "SELECT version FROM kb_meta WHERE id = 1", -1, &stmt,
                            NULL) == SQLITE_OK) {
        if (sqlite3_step (stmt) == SQLITE_ROW)
            version = sqlite3_column_int64 (stmt, 0);
        sqlite3_finalize (stmt);
    }
    if (version < 0)
        s_failed (self, "cannot read version");
    return version;
}

//  The category tree as loaded: paths and whether items under each may be answered
typedef struct {
    int64_t id, parent_id;
    char *name;
    bool is_enabled;
    char *path;                 //  Computed on first use
    int state;                  //  0 not resolved, 1 resolving, 2 resolved
} s_category_t;

typedef struct {
    s_category_t *list;
    int count;
    kf_dict_t *by_id;           //  Decimal id -> index + 1
} s_tree_t;

static s_category_t *
s_category (s_tree_t *tree, int64_t id)
{
    char key [24];
    int len = snprintf (key, sizeof key, "%lld", (long long) id);
    intptr_t index = (intptr_t) kf_dict_get (tree->by_id, key, len) - 1;
    return index < 0 ? NULL : &tree->list [index];
}

//  Resolves a category's path and effective enabled state (disabled if any ancestor is)
static void
s_resolve (s_tree_t *tree, s_category_t *category)
{
    if (category->state == 2)
        return;
    if (category->state == 1) {                 //  A loop in the tree: nothing under it answers
        category->is_enabled = false;
        return;
    }
    category->state = 1;
    s_category_t *parent = category->parent_id ? s_category (tree, category->parent_id) : NULL;
    if (parent)
        s_resolve (tree, parent);
    size_t size = strlen (category->name) + (parent && parent->path ? strlen (parent->path) : 0) + 2;
    category->path = kf_malloc (size);
    snprintf (category->path, size, "%s%s%s", parent && parent->path ? parent->path : "",
              parent && parent->path ? "/" : "", category->name);
    if (parent && !parent->is_enabled)
        category->is_enabled = false;
    category->state = 2;
}

static void
s_tree_free (s_tree_t *tree)
{
    for (int i = 0; i < tree->count; i++) {
        free (tree->list [i].name);
        free (tree->list [i].path);
    }
    free (tree->list);
    if (tree->by_id)
        kf_dict_destroy (&tree->by_id);
}

static void
s_load_tree (kf_kb_source_t *self, s_tree_t *tree)
{
    memset (tree, 0, sizeof *tree);
    tree->by_id = kf_dict_new ();
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (self->db, "SELECT id, parent_id, name, enabled FROM kb_categories",
                            -1, &stmt, NULL) != SQLITE_OK)
        return;
    int capacity = 0;
    while (sqlite3_step (stmt) == SQLITE_ROW) {
        if (tree->count == capacity) {
            capacity = capacity ? capacity * 2 : 64;
            tree->list = kf_realloc (tree->list, capacity * sizeof (s_category_t));
        }
        s_category_t *category = &tree->list [tree->count++];
        *category = (s_category_t) {
            .id = sqlite3_column_int64 (stmt, 0), .parent_id = sqlite3_column_int64 (stmt, 1),
            .name = kf_strdup ((const char *) sqlite3_column_text (stmt, 2)),
            .is_enabled = sqlite3_column_int (stmt, 3) != 0
        };
        char key [24];
        int len = snprintf (key, sizeof key, "%lld", (long long) category->id);
        kf_dict_put (tree->by_id, key, len, (void *) (intptr_t) tree->count);
    }
    sqlite3_finalize (stmt);
    for (int i = 0; i < tree->count; i++)
        s_resolve (tree, &tree->list [i]);
}

//  Reads a JSON array of strings into a heap array; returns the count
static int
s_json_strings (const char *json, char ***out)
{
    *out = NULL;
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_unpacked unpacked;
    int count = 0;
    if (json && kf_json_to_msgpack (json, strlen (json), &pk, NULL, 0) == 0
    &&  kf_mp_unpack_one (buffer.data, buffer.size, &unpacked)) {
        const msgpack_object *array = &unpacked.data;
        if (array->type == MSGPACK_OBJECT_ARRAY && array->via.array.size) {
            *out = kf_calloc (array->via.array.size, sizeof (char *));
            for (uint32_t i = 0; i < array->via.array.size; i++) {
                const msgpack_object *s = &array->via.array.ptr [i];
                if (s->type == MSGPACK_OBJECT_STR)
                    (*out) [count++] = kf_strndup (s->via.str.ptr, s->via.str.size);
            }
        }
        msgpack_unpacked_destroy (&unpacked);
    }
    msgpack_sbuffer_destroy (&buffer);
    return count;
}

static void
s_load_synonyms (kf_kb_source_t *self, kf_kb_index_t *index)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (self->db, "SELECT bot_id, words FROM kb_synonyms ORDER BY id", -1,
                            &stmt, NULL) != SQLITE_OK)
        return;
    while (sqlite3_step (stmt) == SQLITE_ROW) {
        char **words;
        int count = s_json_strings ((const char *) sqlite3_column_text (stmt, 1), &words);
        kf_kb_index_add_synonyms (index, (const char *) sqlite3_column_text (stmt, 0),
                                  (const char *const *) words, count);
        for (int i = 0; i < count; i++)
            free (words [i]);
        free (words);
    }
    sqlite3_finalize (stmt);
}

//  Reads the current row of the items query, with its similar questions and variants
static void
s_read_item (sqlite3_stmt *items, sqlite3_stmt *similar, sqlite3_stmt *variants,
             s_category_t *category, kf_kb_item_t *item)
{
    const char *text [6];
    for (int c = 1; c <= 5; c++)
        text [c - 1] = (const char *) sqlite3_column_text (items, c);
    int64_t id = sqlite3_column_int64 (items, 0);
    *item = (kf_kb_item_t) {
        .id = id, .bot_id = kf_strdup (text [0]), .external_id = kf_strdup (text [1] ? text [1] : ""),
        .category = kf_strdup (category ? category->path : ""), .question = kf_strdup (text [2]),
        .answer = kf_strdup (text [3])
    };
    item->keyword_count = s_json_strings (text [4], &item->keywords);
    sqlite3_bind_int64 (similar, 1, id);
    int capacity = 0;
    while (item->similar_count < 200 && sqlite3_step (similar) == SQLITE_ROW) {
        if (item->similar_count == capacity) {
            capacity = capacity ? capacity * 2 : 8;
            item->similar = kf_realloc (item->similar, capacity * sizeof (char *));
        }
        item->similar [item->similar_count++] = kf_strdup ((const char *) sqlite3_column_text (similar, 0));
    }
    sqlite3_reset (similar);
    //  Answers: the default first, then the variants in order
    item->answers = kf_calloc (21, sizeof (kf_variant_t));
    kf_variant_from_json (&item->answers [0], NULL, item->answer,
                          (const char *) sqlite3_column_text (items, 6),
                          (const char *) sqlite3_column_text (items, 7));
    item->answer_count = 1;
    sqlite3_bind_int64 (variants, 1, id);
    while (item->answer_count < 21 && sqlite3_step (variants) == SQLITE_ROW)
        kf_variant_from_json (&item->answers [item->answer_count++],
                              (const char *) sqlite3_column_text (variants, 0),
                              (const char *) sqlite3_column_text (variants, 1),
                              (const char *) sqlite3_column_text (variants, 2),
                              (const char *) sqlite3_column_text (variants, 3));
    sqlite3_reset (variants);
}

static void
s_free_strings (char **strings, int count)
{
    for (int i = 0; i < count; i++)
        free (strings [i]);
    free (strings);
}

//  Adds every enabled intent row to `models`. Returns false when the rows could not be read to the
//  end; a database without the table (before migration 9) has no intents, which is no failure.
static bool
s_load_intents (kf_kb_source_t *self, kf_bot_models_t *models)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (self->db, "SELECT bot_id, name, examples, keywords, patterns"
                            " FROM intents WHERE enabled = 1 ORDER BY bot_id, id", -1, &stmt,
                            NULL) != SQLITE_OK)
        return true;
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        const char *bot_id = (const char *) sqlite3_column_text (stmt, 0);
        const char *name = (const char *) sqlite3_column_text (stmt, 1);
        char **lists [3];
        int counts [3];
        for (int l = 0; l < 3; l++)
            counts [l] = s_json_strings ((const char *) sqlite3_column_text (stmt, 2 + l), &lists [l]);
        if (bot_id && name && *name
        &&  kf_bot_models_add_intent (models, bot_id, name, (const char **) lists [0], counts [0],
                                      (const char **) lists [1], counts [1],
                                      (const char **) lists [2], counts [2]) != 0)
            kf_warn ("knowledge base: intent %s of bot %s skipped (repeated or more than %d)",
                     name, bot_id, KF_INTENT_MAX);
        for (int l = 0; l < 3; l++)
            s_free_strings (lists [l], counts [l]);
    }
    sqlite3_finalize (stmt);
    return rc == SQLITE_DONE;
}

//  Adds every chit-chat row to `models`; false when the rows could not be read to the end
static bool
s_load_chitchat (kf_kb_source_t *self, kf_bot_models_t *models)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (self->db, "SELECT bot_id, questions, reply FROM chitchat ORDER BY id",
                            -1, &stmt, NULL) != SQLITE_OK)
        return true;
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        const char *bot_id = (const char *) sqlite3_column_text (stmt, 0);
        char **questions;
        int count = s_json_strings ((const char *) sqlite3_column_text (stmt, 1), &questions);
        if (bot_id)
            kf_bot_models_add_chitchat (models, bot_id, (const char *const *) questions, count,
                                        (const char *) sqlite3_column_text (stmt, 2));
        s_free_strings (questions, count);
    }
    sqlite3_finalize (stmt);
    return rc == SQLITE_DONE;
}

//  Builds and trains the bots' intent models and chit-chat tables; NULL when reading failed
static kf_bot_models_t *
s_load_models (kf_kb_source_t *self)
{
    kf_bot_models_t *models = kf_bot_models_new ();
    if (!s_load_intents (self, models) || !s_load_chitchat (self, models)) {
        s_failed (self, "reading intents failed");
        kf_bot_models_destroy (&models);
        return NULL;
    }
    double elapsed_ms;
    int trained = kf_bot_models_train (models, &elapsed_ms);
    if (trained)
        kf_info ("intent models trained: %d bot(s) in %.1f ms (default bot %.1f ms)", trained,
                 elapsed_ms, kf_bot_models_train_ms (models, "default"));
    return models;
}

//  Loads every answerable item (on shelf, in no disabled category) into a new index, and the bots'
//  intent models into *models
static kf_kb_index_t *
s_load (kf_kb_source_t *self, kf_bot_models_t **models)
{
    sqlite3_stmt *items = NULL, *similar = NULL, *variants = NULL;
    kf_kb_index_t *index = NULL;
    s_tree_t tree = { 0 };
    sqlite3_exec (self->db, "BEGIN", NULL, NULL, NULL);     //  One snapshot for every query
    if (sqlite3_prepare_v2 (self->db, "SELECT id, bot_id, external_id, question, answer, keywords,"
                            " response_type, response_content, category_id FROM kb_items"
                            " WHERE status = 1 ORDER BY id", -1, &items, NULL)
    ||  sqlite3_prepare_v2 (self->db, "SELECT question FROM kb_questions WHERE item_id = ?"
                            " ORDER BY position", -1, &similar, NULL)
    ||  sqlite3_prepare_v2 (self->db, "SELECT labels, answer, response_type, response_content"
                            " FROM kb_variants WHERE item_id = ? ORDER BY position", -1, &variants,
                            NULL)) {
        s_failed (self, "cannot query items");
        goto done;
    }
    index = kf_kb_index_new ();
    s_load_tree (self, &tree);
    s_load_synonyms (self, index);
    int rc;
    while ((rc = sqlite3_step (items)) == SQLITE_ROW) {
        int64_t category_id = sqlite3_column_int64 (items, 8);
        s_category_t *category = category_id ? s_category (&tree, category_id) : NULL;
        if (category && !category->is_enabled)
            continue;
        kf_kb_item_t item;
        s_read_item (items, similar, variants, category, &item);
        kf_kb_index_add_item (index, &item);
    }
    if (rc != SQLITE_DONE) {
        //  A partial read must not pass for the whole version: keep serving the previous one
        s_failed (self, "reading items failed");
        kf_kb_index_destroy (&index);
        goto done;
    }
    kf_kb_index_build (index);
    *models = s_load_models (self);
    if (!*models)
        kf_kb_index_destroy (&index);
done:
    s_tree_free (&tree);
    sqlite3_finalize (items);
    sqlite3_finalize (similar);
    sqlite3_finalize (variants);
    sqlite3_exec (self->db, "COMMIT", NULL, NULL, NULL);
    return index;
}

kf_kb_index_t *
kf_kb_source_poll (kf_kb_source_t *self, int64_t *version, kf_bot_models_t **models)
{
    *models = NULL;
    int64_t current = s_read_version (self);
    if (current < 0 || current == self->version)
        return NULL;
    kf_kb_index_t *index = s_load (self, models);
    if (!index)
        return NULL;
    self->is_failing = false;
    self->version = current;
    *version = current;
    return index;
}
