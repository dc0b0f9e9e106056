/*  intents.c - a bot's intents in SQLite: checks of the editable fields, the copy of the default
    bot's rows on a bot's first edit, and the queries behind intent.create/query/update/delete. */
#include "broker/intents.h"
#include "common/clock.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SAVEPOINT "intent_edit"
#define S_COLUMNS "id, bot_id, name, description, examples, keywords, patterns, enabled," \
                  " created_at, updated_at"

static const char *const s_builtin [] = {
    "chitchat", "knowledge_qa", "business_query", "emotion_sensitive", "transfer_to_human",
    "ticket", NULL
};
static const char *const s_executable [] = { "ticket", "transfer_to_human", NULL };

static bool
s_in (const char *const *list, const char *name, size_t len)
{
    for (; *list; list++)
        if (strlen (*list) == len && memcmp (*list, name, len) == 0)
            return true;
    return false;
}

bool
kf_intent_is_builtin (const char *name, size_t len)
{
    return s_in (s_builtin, name, len);
}

bool
kf_intent_is_executable (const char *name, size_t len)
{
    return s_in (s_executable, name, len);
}

//  --- Statements ------------------------------------------------------------------------------

//  Rows of `bot_id` with name `name` (NULL: any). Returns the count or -1
static int64_t
s_count (kf_store_t *store, const char *bot_id, const char *name, size_t name_len)
{
    sqlite3_stmt *stmt = kf_store_statement (store, "SELECT count(*) FROM intents WHERE bot_id = ?1"
                                           " AND (?2 IS NULL OR name = ?2)");
    if (!stmt)
        return -1;
    sqlite3_bind_text (stmt, 1, bot_id, -1, SQLITE_TRANSIENT);
    kf_store_bind_text (stmt, 2, name, name_len);
    int64_t count = sqlite3_step (stmt) == SQLITE_ROW ? sqlite3_column_int64 (stmt, 0) : -1;
    sqlite3_finalize (stmt);
    return count;
}

//  --- Checks ----------------------------------------------------------------------------------

int
kf_text_list_json (const msgpack_object *params, const char *key, uint32_t min, uint32_t max,
                   size_t max_chars, char **json, kf_error_t *err)
{
    const msgpack_object *list = kf_mp_get (params, key);
    *json = NULL;
    if (!list || list->type == MSGPACK_OBJECT_NIL)
        return min ? kf_error_set (err, KF_E_MISSING_ARGUMENT, "params.%s is required", key) : 0;
    if (list->type != MSGPACK_OBJECT_ARRAY)
        return kf_error_set (err, KF_E_INVALID_PARAM, "params.%s must be a list of strings", key);
    if (list->via.array.size < min)
        return kf_error_set (err, KF_E_INVALID_PARAM, "params.%s must hold at least %u %s", key,
                             min, min == 1 ? "entry" : "entries");
    if (list->via.array.size > max)
        return kf_error_set (err, KF_E_TOO_LARGE, "params.%s holds at most %u entries", key, max);
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object *entry = &list->via.array.ptr [i];
        if (entry->type != MSGPACK_OBJECT_STR || entry->via.str.size == 0)
            return kf_error_set (err, KF_E_INVALID_PARAM, "params.%s[%u] must be a non-empty"
                                 " string", key, i);
        if (!kf_utf8_is_valid (entry->via.str.ptr, entry->via.str.size))
            return kf_error_set (err, KF_E_INVALID_UTF8, "params.%s[%u] is not valid UTF-8", key,
                                 i);
        if (kf_utf8_count (entry->via.str.ptr, entry->via.str.size) > max_chars)
            return kf_error_set (err, KF_E_TOO_LARGE, "params.%s[%u] is longer than %zu"
                                 " characters", key, i, max_chars);
    }
    *json = kf_json_from_msgpack (list);
    return 0;
}

int
kf_intent_name_check (const char *name, size_t len, kf_error_t *err)
{
    if (len == 0)
        return kf_error_set (err, KF_E_MISSING_ARGUMENT, "params.name must not be empty");
    if (kf_utf8_count (name, len) > KF_INTENT_NAME_MAX)
        return kf_error_set (err, KF_E_TOO_LARGE, "params.name is longer than %d characters",
                             KF_INTENT_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        char c = name [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        ||    c == '_'))
            return kf_error_set (err, KF_E_INVALID_PARAM, "params.name may hold only letters,"
                                 " digits and '_'");
    }
    return 0;
}

//  Patterns are "A" or "A*B": at most one '*', with text on both sides
static int
s_patterns_check (const msgpack_object *params, kf_error_t *err)
{
    const msgpack_object *list = kf_mp_get (params, "patterns");
    if (!list || list->type != MSGPACK_OBJECT_ARRAY)
        return 0;
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const char *s = list->via.array.ptr [i].via.str.ptr;
        size_t len = list->via.array.ptr [i].via.str.size;
        const char *star = memchr (s, '*', len);
        bool is_bad = star && (star == s || star == s + len - 1
                            || memchr (star + 1, '*', (size_t) (s + len - star - 1)));
        if (is_bad)
            return kf_error_set (err, KF_E_INVALID_PARAM, "params.patterns[%u] must be \"A\" or"
                                 " \"A*B\": one '*' at most, with text on both sides", i);
    }
    return 0;
}

//  The editable fields of an intent, checked
typedef struct {
    const char *description;    //  NULL: not given
    size_t description_len;
    char *examples, *keywords, *patterns;   //  JSON lists, owned; NULL: not given
    int enabled;                //  -1 not given, else 0 or 1
} s_fields_t;

static void
s_fields_free (s_fields_t *fields)
{
    free (fields->examples);
    free (fields->keywords);
    free (fields->patterns);
    memset (fields, 0, sizeof *fields);
}

//  Checks the fields in `params` (examples required when creating). Returns 0 or -1 with `err`
static int
s_fields_parse (const msgpack_object *params, bool is_create, s_fields_t *fields, kf_error_t *err)
{
    memset (fields, 0, sizeof *fields);
    fields->enabled = -1;
    bool is_enabled;
    const msgpack_object *enabled = kf_mp_get (params, "enabled");
    int rc = kf_param_str (params, "description", false, KF_INTENT_DESCRIPTION_CHARS,
                           &fields->description, &fields->description_len, err)
          || kf_text_list_json (params, "examples", is_create ? 1 : 0, KF_INTENT_EXAMPLES_MAX,
                                KF_INTENT_EXAMPLE_CHARS, &fields->examples, err)
          || kf_text_list_json (params, "keywords", 0, KF_INTENT_WORDS_MAX, KF_INTENT_WORD_CHARS,
                                &fields->keywords, err)
          || kf_text_list_json (params, "patterns", 0, KF_INTENT_WORDS_MAX, KF_INTENT_WORD_CHARS,
                                &fields->patterns, err)
          || s_patterns_check (params, err)
          || kf_param_bool (params, "enabled", true, &is_enabled, err) ? -1 : 0;
    //  An empty list given to update means "none" for keywords and patterns, but an intent
    //  always keeps at least one example
    if (rc == 0 && fields->examples && strcmp (fields->examples, "[]") == 0)
        rc = kf_error_set (err, KF_E_INVALID_PARAM, "params.examples must hold at least 1 entry");
    if (rc == 0 && enabled && enabled->type != MSGPACK_OBJECT_NIL)
        fields->enabled = is_enabled;
    if (rc)
        s_fields_free (fields);
    return rc;
}

static bool
s_fields_empty (const s_fields_t *fields)
{
    return !fields->description && !fields->examples && !fields->keywords && !fields->patterns
        && fields->enabled < 0;
}

//  --- Inheritance -----------------------------------------------------------------------------

const char *
kf_intents_source (kf_store_t *store, const char *bot_id)
{
    return kf_store_rows_source (store, "intents", bot_id);
}

int
kf_intents_adopt (kf_store_t *store, const char *bot_id)
{
    const char *source = kf_intents_source (store, bot_id);
    if (!source)
        return -1;
    if (source == bot_id)
        return 0;
    return kf_store_rows_adopt (store, "intents", "name, description, examples, keywords, patterns,"
                                " enabled", "created_at, updated_at", bot_id) ? -1 : 1;
}

int
kf_intents_find (kf_store_t *store, const char *bot_id, const char *name, size_t name_len,
                 int64_t id, char *out, bool *is_enabled)
{
    const char *source = kf_intents_source (store, bot_id);
    sqlite3_stmt *stmt = source ? kf_store_statement (store, "SELECT name, enabled FROM intents"
        " WHERE bot_id = ?1 AND (name = ?2 OR (?2 IS NULL AND id = ?3))") : NULL;
    if (!stmt)
        return -1;
    sqlite3_bind_text (stmt, 1, source, -1, SQLITE_TRANSIENT);
    kf_store_bind_text (stmt, 2, name, name_len);
    sqlite3_bind_int64 (stmt, 3, id);
    int rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW) {
        snprintf (out, KF_INTENT_NAME_MAX + 1, "%s", (const char *) sqlite3_column_text (stmt, 0));
        *is_enabled = sqlite3_column_int (stmt, 1) != 0;
    }
    sqlite3_finalize (stmt);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

//  Row id of intent `name` of `bot_id`, 0 when none
static int64_t
s_id_of (kf_store_t *store, const char *bot_id, const char *name)
{
    sqlite3_stmt *stmt = kf_store_statement (store, "SELECT id FROM intents WHERE bot_id = ? AND name = ?");
    if (!stmt)
        return 0;
    sqlite3_bind_text (stmt, 1, bot_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 2, name, -1, SQLITE_TRANSIENT);
    int64_t id = sqlite3_step (stmt) == SQLITE_ROW ? sqlite3_column_int64 (stmt, 0) : 0;
    sqlite3_finalize (stmt);
    return id;
}

//  --- Edits -----------------------------------------------------------------------------------

static int
s_create (kf_store_t *store, const char *bot_id, const char *name, size_t name_len,
          const s_fields_t *fields, int64_t *id, kf_error_t *err)
{
    if (kf_intents_adopt (store, bot_id) < 0)
        return kf_error_set (err, KF_E_INTERNAL, "could not read or copy the intents");
    int64_t count = s_count (store, bot_id, NULL, 0);
    int64_t same = s_count (store, bot_id, name, name_len);
    if (count < 0 || same < 0)
        return kf_error_set (err, KF_E_INTERNAL, "could not read the intents");
    if (same > 0)
        return kf_error_set (err, KF_E_CONFLICT, "intent %.*s already exists in bot %s",
                             (int) name_len, name, bot_id);
    if (count >= KF_INTENTS_MAX)
        return kf_error_set (err, KF_E_TOO_LARGE, "bot %s has %d intents, the most a bot may"
                             " have", bot_id, KF_INTENTS_MAX);
    sqlite3_stmt *stmt = kf_store_statement (store,
        "INSERT INTO intents (bot_id, name, description, examples, keywords, patterns, enabled,"
        " created_at, updated_at) VALUES (?1, ?2, coalesce (?3, ''), ?4, coalesce (?5, '[]'),"
        " coalesce (?6, '[]'), ?7, ?8, ?8)");
    if (stmt) {
        sqlite3_bind_text (stmt, 1, bot_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (stmt, 2, name, (int) name_len, SQLITE_TRANSIENT);
        kf_store_bind_text (stmt, 3, fields->description, fields->description_len);
        sqlite3_bind_text (stmt, 4, fields->examples, -1, SQLITE_TRANSIENT);
        kf_store_bind_text (stmt, 5, fields->keywords, fields->keywords ? strlen (fields->keywords) : 0);
        kf_store_bind_text (stmt, 6, fields->patterns, fields->patterns ? strlen (fields->patterns) : 0);
        sqlite3_bind_int (stmt, 7, fields->enabled != 0);
        sqlite3_bind_int64 (stmt, 8, kf_now_ms ());
    }
    if (kf_store_write_once (store, stmt))
        return kf_error_set (err, KF_E_INTERNAL, "could not store the intent");
    *id = sqlite3_last_insert_rowid (kf_store_db (store));
    return 0;
}

int
kf_intents_create (kf_store_t *store, const char *bot_id, const msgpack_object *params,
                   int64_t *id, kf_error_t *err)
{
    const char *name;
    size_t name_len;
    s_fields_t fields;
    if (kf_param_str (params, "name", true, 0, &name, &name_len, err)
    ||  kf_intent_name_check (name, name_len, err)
    ||  s_fields_parse (params, true, &fields, err))
        return -1;
    int rc = kf_store_savepoint (store, S_SAVEPOINT);
    if (rc)
        kf_error_set (err, KF_E_INTERNAL, "could not open a transaction");
    else
        rc = kf_store_savepoint_end (store, S_SAVEPOINT,
                                     s_create (store, bot_id, name, name_len, &fields, id, err));
    s_fields_free (&fields);
    return rc;
}

//  The update of intent `current` of `bot_id` (already found), renamed to `new_name` when given
static int
s_update (kf_store_t *store, const char *bot_id, const char *current, const char *new_name,
          size_t new_len, const s_fields_t *fields, int64_t *id, kf_error_t *err)
{
    if (kf_intents_adopt (store, bot_id) < 0)
        return kf_error_set (err, KF_E_INTERNAL, "could not read or copy the intents");
    if (new_name && strlen (current) == new_len && memcmp (current, new_name, new_len) == 0)
        new_name = NULL;            //  Renamed to itself
    if (new_name && kf_intent_is_builtin (current, strlen (current)))
        return kf_error_set (err, KF_E_INVALID_PARAM, "built-in intent %s cannot be renamed",
                             current);
    if (new_name) {
        int64_t same = s_count (store, bot_id, new_name, new_len);
        if (same < 0)
            return kf_error_set (err, KF_E_INTERNAL, "could not read the intents");
        if (same > 0 || kf_intent_is_builtin (new_name, new_len))
            return kf_error_set (err, KF_E_CONFLICT, "intent %.*s already exists in bot %s",
                                 (int) new_len, new_name, bot_id);
    }
    sqlite3_stmt *stmt = kf_store_statement (store,
        "UPDATE intents SET name = coalesce (?3, name), description = coalesce (?4, description),"
        " examples = coalesce (?5, examples), keywords = coalesce (?6, keywords),"
        " patterns = coalesce (?7, patterns), enabled = coalesce (?8, enabled), updated_at = ?9"
        " WHERE bot_id = ?1 AND name = ?2");
    if (stmt) {
        sqlite3_bind_text (stmt, 1, bot_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (stmt, 2, current, -1, SQLITE_TRANSIENT);
        kf_store_bind_text (stmt, 3, new_name, new_len);
        kf_store_bind_text (stmt, 4, fields->description, fields->description_len);
        kf_store_bind_text (stmt, 5, fields->examples, fields->examples ? strlen (fields->examples) : 0);
        kf_store_bind_text (stmt, 6, fields->keywords, fields->keywords ? strlen (fields->keywords) : 0);
        kf_store_bind_text (stmt, 7, fields->patterns, fields->patterns ? strlen (fields->patterns) : 0);
        if (fields->enabled >= 0)
            sqlite3_bind_int (stmt, 8, fields->enabled);
        sqlite3_bind_int64 (stmt, 9, kf_now_ms ());
    }
    if (kf_store_write_once (store, stmt))
        return kf_error_set (err, KF_E_INTERNAL, "could not store the intent");
    char name [KF_INTENT_NAME_MAX + 1];
    snprintf (name, sizeof name, "%.*s", new_name ? (int) new_len : KF_INTENT_NAME_MAX,
              new_name ? new_name : current);
    *id = s_id_of (store, bot_id, name);
    return 0;
}

int
kf_intents_update (kf_store_t *store, const char *bot_id, const msgpack_object *params,
                   int64_t *id, kf_error_t *err)
{
    int64_t given_id;
    const char *name;
    size_t name_len;
    const msgpack_object *id_obj = kf_mp_get (params, "id");
    bool has_id = id_obj && id_obj->type != MSGPACK_OBJECT_NIL;
    if (kf_param_int (params, "id", 1, INT64_MAX, 0, &given_id, err)
    ||  kf_param_str (params, "name", false, 0, &name, &name_len, err))
        return -1;
    if (!has_id && !name)
        return kf_error_set (err, KF_E_MISSING_ARGUMENT, "params.id or params.name is required");
    s_fields_t fields;
    if ((name && kf_intent_name_check (name, name_len, err))
    ||  s_fields_parse (params, false, &fields, err))
        return -1;
    bool is_rename = has_id && name;
    if (!is_rename && s_fields_empty (&fields))
        return kf_error_set (err, KF_E_INVALID_PARAM, "nothing to change: give description,"
                             " examples, keywords, patterns or enabled");
    char current [KF_INTENT_NAME_MAX + 1];
    bool is_enabled;
    int rc = kf_intents_find (store, bot_id, has_id ? NULL : name, name_len, given_id, current,
                              &is_enabled);
    if (rc < 0)
        kf_error_set (err, KF_E_INTERNAL, "could not read the intents");
    else
    if (rc == 0 && has_id)
        rc = kf_error_set (err, KF_E_NOT_FOUND, "intent %lld does not exist in bot %s",
                           (long long) given_id, bot_id);
    else
    if (rc == 0)
        rc = kf_error_set (err, KF_E_NOT_FOUND, "intent %.*s does not exist in bot %s",
                           (int) name_len, name, bot_id);
    else
    if (kf_store_savepoint (store, S_SAVEPOINT))
        rc = kf_error_set (err, KF_E_INTERNAL, "could not open a transaction");
    else
        rc = kf_store_savepoint_end (store, S_SAVEPOINT,
                                     s_update (store, bot_id, current, is_rename ? name : NULL,
                                               name_len, &fields, id, err));
    s_fields_free (&fields);
    return rc < 0 ? -1 : 0;
}

//  Checks a delete's list `key` (ids or names): NULL when absent, else 1..16 positive integers
//  or intent names, no built-in name among them
static int
s_delete_list (const msgpack_object *params, const char *key, const msgpack_object **list,
               kf_error_t *err)
{
    *list = kf_mp_get (params, key);
    if (!*list || (*list)->type == MSGPACK_OBJECT_NIL) {
        *list = NULL;
        return 0;
    }
    bool is_ids = strcmp (key, "ids") == 0;
    if ((*list)->type != MSGPACK_OBJECT_ARRAY || (*list)->via.array.size == 0)
        return kf_error_set (err, KF_E_INVALID_PARAM, "params.%s must be a non-empty list", key);
    if ((*list)->via.array.size > KF_INTENTS_MAX)
        return kf_error_set (err, KF_E_TOO_LARGE, "params.%s holds at most %d entries", key,
                             KF_INTENTS_MAX);
    for (uint32_t i = 0; i < (*list)->via.array.size; i++) {
        const msgpack_object *entry = &(*list)->via.array.ptr [i];
        int64_t id;
        if (is_ids && (!kf_mp_int (entry, &id) || id < 1))
            return kf_error_set (err, KF_E_INVALID_PARAM, "params.ids[%u] must be a positive"
                                 " integer", i);
        if (!is_ids && (entry->type != MSGPACK_OBJECT_STR
                    ||  kf_intent_name_check (entry->via.str.ptr, entry->via.str.size, err)))
            return kf_error_set (err, KF_E_INVALID_PARAM, "params.names[%u] must be an intent"
                                 " name (letters, digits and '_', 1 to %d)", i,
                                 KF_INTENT_NAME_MAX);
        if (!is_ids && kf_intent_is_builtin (entry->via.str.ptr, entry->via.str.size))
            return kf_error_set (err, KF_E_INVALID_PARAM, "intent %.*s is built in: disable it"
                                 " (intent.update enabled: false) rather than delete it",
                                 (int) entry->via.str.size, entry->via.str.ptr);
    }
    return 0;
}

//  The names to delete: looks every entry up in the rows `bot_id` uses. Entries not found go to
//  `missing`. Returns how many names, or -1 with `err` set (a built-in, a database error)
static int
s_delete_targets (kf_store_t *store, const char *bot_id, const msgpack_object *list,
                  char names [][KF_INTENT_NAME_MAX + 1], int count,
                  const msgpack_object **missing, int *missing_count, kf_error_t *err)
{
    for (uint32_t i = 0; list && i < list->via.array.size; i++) {
        const msgpack_object *entry = &list->via.array.ptr [i];
        int64_t id = 0;
        bool is_enabled, is_id = kf_mp_int (entry, &id);
        int rc = kf_intents_find (store, bot_id, is_id ? NULL : entry->via.str.ptr,
                                  is_id ? 0 : entry->via.str.size, id, names [count], &is_enabled);
        if (rc < 0)
            return kf_error_set (err, KF_E_INTERNAL, "could not read the intents");
        if (rc == 0)
            missing [(*missing_count)++] = entry;
        else
        if (kf_intent_is_builtin (names [count], strlen (names [count])))
            return kf_error_set (err, KF_E_INVALID_PARAM, "intent %lld (%s) is built in: disable"
                                 " it (intent.update enabled: false) rather than delete it",
                                 (long long) id, names [count]);
        else
            count++;
    }
    return count;
}

static int
s_delete (kf_store_t *store, const char *bot_id, const msgpack_object *ids,
          const msgpack_object *names, msgpack_packer *pk, kf_error_t *err)
{
    char targets [2 * KF_INTENTS_MAX][KF_INTENT_NAME_MAX + 1];
    const msgpack_object *missing [2 * KF_INTENTS_MAX];
    int missing_count = 0, count = 0, deleted = 0;
    count = s_delete_targets (store, bot_id, ids, targets, count, missing, &missing_count, err);
    if (count >= 0)
        count = s_delete_targets (store, bot_id, names, targets, count, missing, &missing_count,
                                  err);
    if (count < 0)
        return -1;
    if (count > 0 && kf_intents_adopt (store, bot_id) < 0)
        return kf_error_set (err, KF_E_INTERNAL, "could not read or copy the intents");
    for (int i = 0; i < count; i++) {
        sqlite3_stmt *stmt = kf_store_statement (store, "DELETE FROM intents WHERE bot_id = ? AND name = ?");
        if (stmt) {
            sqlite3_bind_text (stmt, 1, bot_id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text (stmt, 2, targets [i], -1, SQLITE_TRANSIENT);
        }
        if (kf_store_write_once (store, stmt))
            return kf_error_set (err, KF_E_INTERNAL, "could not delete the intent");
        deleted += sqlite3_changes (kf_store_db (store));
    }
    msgpack_pack_map (pk, 2);
    kf_mp_pack_kv_int (pk, "deleted", deleted);
    kf_mp_pack_cstr (pk, "not_found");
    msgpack_pack_array (pk, missing_count);
    for (int i = 0; i < missing_count; i++)
        msgpack_pack_object (pk, *missing [i]);
    return deleted;
}

int
kf_intents_delete (kf_store_t *store, const char *bot_id, const msgpack_object *params,
                   msgpack_packer *pk, kf_error_t *err)
{
    const msgpack_object *ids, *names;
    if (s_delete_list (params, "ids", &ids, err) || s_delete_list (params, "names", &names, err))
        return -1;
    if (!ids && !names)
        return kf_error_set (err, KF_E_MISSING_ARGUMENT, "params.ids or params.names is required");
    if (kf_store_savepoint (store, S_SAVEPOINT))
        return kf_error_set (err, KF_E_INTERNAL, "could not open a transaction");
    return kf_store_savepoint_end (store, S_SAVEPOINT,
                                   s_delete (store, bot_id, ids, names, pk, err));
}

//  --- Reads -----------------------------------------------------------------------------------

//  Packs the row `stmt` stands on (columns S_COLUMNS)
static void
s_pack_row (void *arg, sqlite3_stmt *stmt, msgpack_packer *pk)
{
    (void) arg;
    const char *name = (const char *) sqlite3_column_text (stmt, 2);
    msgpack_pack_map (pk, 12);
    kf_mp_pack_kv_int (pk, "id", sqlite3_column_int64 (stmt, 0));
    kf_mp_pack_kv_str (pk, "bot_id", (const char *) sqlite3_column_text (stmt, 1));
    kf_mp_pack_kv_str (pk, "name", name);
    kf_mp_pack_kv_str (pk, "description", (const char *) sqlite3_column_text (stmt, 3));
    kf_mp_pack_cstr (pk, "examples");
    kf_json_pack_text (pk, (const char *) sqlite3_column_text (stmt, 4));
    kf_mp_pack_cstr (pk, "keywords");
    kf_json_pack_text (pk, (const char *) sqlite3_column_text (stmt, 5));
    kf_mp_pack_cstr (pk, "patterns");
    kf_json_pack_text (pk, (const char *) sqlite3_column_text (stmt, 6));
    kf_mp_pack_kv_bool (pk, "enabled", sqlite3_column_int (stmt, 7) != 0);
    kf_mp_pack_kv_bool (pk, "builtin", kf_intent_is_builtin (name, strlen (name)));
    kf_mp_pack_kv_bool (pk, "executable", kf_intent_is_executable (name, strlen (name)));
    kf_mp_pack_kv_int (pk, "created_at", sqlite3_column_int64 (stmt, 8));
    kf_mp_pack_kv_int (pk, "updated_at", sqlite3_column_int64 (stmt, 9));
}

int
kf_intents_pack_one (kf_store_t *store, int64_t id, msgpack_packer *pk)
{
    sqlite3_stmt *stmt = kf_store_statement (store, "SELECT " S_COLUMNS " FROM intents WHERE id = ?");
    if (!stmt)
        return -1;
    sqlite3_bind_int64 (stmt, 1, id);
    int rc = sqlite3_step (stmt) == SQLITE_ROW ? 0 : -1;
    if (rc == 0)
        s_pack_row (NULL, stmt, pk);
    sqlite3_finalize (stmt);
    return rc;
}

int
kf_intents_query_pack (kf_store_t *store, const char *bot_id, const char *name, size_t name_len,
                       int64_t page, int64_t page_size, msgpack_packer *pk)
{
    const char *source = kf_intents_source (store, bot_id);
    int64_t total = source ? s_count (store, source, name, name_len) : -1;
    sqlite3_stmt *rows = total >= 0 ? kf_store_statement (store, "SELECT " S_COLUMNS " FROM intents"
        " WHERE bot_id = ?1 AND (?2 IS NULL OR name = ?2) ORDER BY id LIMIT ?3 OFFSET ?4") : NULL;
    if (!rows)
        return -1;
    sqlite3_bind_text (rows, 1, source, -1, SQLITE_TRANSIENT);
    kf_store_bind_text (rows, 2, name, name_len);
    sqlite3_bind_int64 (rows, 3, page_size);
    sqlite3_bind_int64 (rows, 4, (page - 1) * page_size);
    if (kf_store_pack_page (rows, s_pack_row, NULL, total, page, page_size, 2, pk))
        return -1;
    kf_mp_pack_kv_str (pk, "bot_id", bot_id);
    kf_mp_pack_kv_bool (pk, "inherited", strcmp (source, bot_id) != 0);
    return 0;
}
