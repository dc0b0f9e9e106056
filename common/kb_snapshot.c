/*  kb_snapshot.c - a knowledge-base version as rows: read from SQLite, encoded to and decoded from
    msgpack. The encoding is arrays of fixed positions rather than maps: 100,000 items would repeat
    every key 100,000 times. */
#include "common/kb_snapshot.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_BLOCK_SIZE (1 << 20)  //  Arena block: few mallocs for 100,000 items, little waste for 10

//  --- Arena ------------------------------------------------------------------------------------

typedef struct s_block_t {
    struct s_block_t *next;
    char data [];
} s_block_t;

struct _kf_kb_arena_t {
    s_block_t *head;            //  Newest block first
    char *next;                 //  Free space in the head block
    size_t left;
};

static void *
s_alloc (kf_kb_arena_t *arena, size_t size)
{
    size = (size + 7) & ~(size_t) 7;
    if (size > arena->left) {
        size_t block_size = size > S_BLOCK_SIZE ? size : S_BLOCK_SIZE;
        s_block_t *block = kf_malloc (sizeof *block + block_size);
        block->next = arena->head;
        arena->head = block;
        arena->next = block->data;
        arena->left = block_size;
    }
    void *memory = arena->next;
    arena->next += size;
    arena->left -= size;
    return memory;
}

//  A NUL-terminated copy in the arena; NULL stays NULL
static const char *
s_strndup (kf_kb_arena_t *arena, const char *s, size_t len)
{
    if (!s)
        return NULL;
    char *copy = s_alloc (arena, len + 1);
    memcpy (copy, s, len);
    copy [len] = 0;
    return copy;
}

//  A growing list of string pointers, copied into the arena when complete
typedef struct {
    const char **list;
    uint32_t count, capacity;
} s_scratch_t;

static void
s_scratch_push (s_scratch_t *scratch, const char *s)
{
    if (scratch->count == scratch->capacity) {
        scratch->capacity = scratch->capacity ? scratch->capacity * 2 : 16;
        scratch->list = kf_realloc (scratch->list, scratch->capacity * sizeof (char *));
    }
    scratch->list [scratch->count++] = s;
}

static kf_kb_strings_t
s_scratch_keep (kf_kb_arena_t *arena, s_scratch_t *scratch)
{
    kf_kb_strings_t strings = { NULL, scratch->count };
    if (scratch->count) {
        strings.list = s_alloc (arena, scratch->count * sizeof (char *));
        memcpy (strings.list, scratch->list, scratch->count * sizeof (char *));
    }
    scratch->count = 0;
    return strings;
}

//  Grows a heap array of rows by one; returns the new (zeroed) row
static void *
s_push_row (void **rows, size_t *count, size_t row_size)
{
    if ((*count & (*count - 1)) == 0)   //  0, 1, 2, 4, 8...: double at each power of two
        *rows = kf_realloc (*rows, (*count ? *count * 2 : 1) * row_size);
    void *row = (char *) *rows + *count * row_size;
    memset (row, 0, row_size);
    (*count)++;
    return row;
}

static kf_kb_snapshot_t *
s_snapshot_new (void)
{
    kf_kb_snapshot_t *self = kf_calloc (1, sizeof *self);
    self->arena = kf_calloc (1, sizeof (kf_kb_arena_t));
    return self;
}

void
kf_kb_snapshot_destroy (kf_kb_snapshot_t **self_p)
{
    kf_kb_snapshot_t *self = *self_p;
    if (!self)
        return;
    for (s_block_t *block = self->arena->head, *next; block; block = next) {
        next = block->next;
        free (block);
    }
    free (self->arena);
    free (self->categories);
    free (self->synonyms);
    free (self->items);
    free (self->intents);
    free (self->chitchat);
    free (self);
    *self_p = NULL;
}

static void
s_set_err (char *err, size_t err_size, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (err, err_size, format, args);
    va_end (args);
}

//  --- Reading from SQLite ----------------------------------------------------------------------

//  Text of column `c` copied into the arena; NULL for SQL NULL
static const char *
s_column (kf_kb_arena_t *arena, sqlite3_stmt *stmt, int c)
{
    const char *text = (const char *) sqlite3_column_text (stmt, c);
    return s_strndup (arena, text, text ? (size_t) sqlite3_column_bytes (stmt, c) : 0);
}

//  The strings of a JSON array (other elements skipped; not an array: none), into the arena
static kf_kb_strings_t
s_json_strings (kf_kb_arena_t *arena, s_scratch_t *scratch, const char *json)
{
    msgpack_unpacked unpacked;
    if (kf_json_unpack (json, &unpacked)) {
        const msgpack_object *array = &unpacked.data;
        if (array->type == MSGPACK_OBJECT_ARRAY)
            for (uint32_t i = 0; i < array->via.array.size; i++) {
                const msgpack_object *s = &array->via.array.ptr [i];
                if (s->type == MSGPACK_OBJECT_STR)
                    s_scratch_push (scratch, s_strndup (arena, s->via.str.ptr, s->via.str.size));
            }
        msgpack_unpacked_destroy (&unpacked);
    }
    return s_scratch_keep (arena, scratch);
}

int64_t
kf_kb_snapshot_sql_version (sqlite3 *db, char *err, size_t err_size)
{
    sqlite3_stmt *stmt;
    int64_t version = -1;
    if (sqlite3_prepare_v2 (db, "SELECT version FROM kb_meta WHERE id = 1", -1, &stmt, NULL) == SQLITE_OK) {
        if (sqlite3_step (stmt) == SQLITE_ROW)
            version = sqlite3_column_int64 (stmt, 0);
        sqlite3_finalize (stmt);
    }
    if (version < 0)
        s_set_err (err, err_size, "cannot read the version: %s", sqlite3_errmsg (db));
    return version;
}

//  Runs `sql` and calls `row` for each result. Returns SQLITE_DONE when every row was read, or the
//  error; `is_optional`: a table that is not there (prepare fails) counts as empty.
typedef void (s_row_fn) (kf_kb_snapshot_t *self, sqlite3_stmt *stmt, void *arg);

static int
s_each_row (kf_kb_snapshot_t *self, sqlite3 *db, const char *sql, bool is_optional, s_row_fn *row,
            void *arg)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return is_optional ? SQLITE_DONE : SQLITE_ERROR;
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
        row (self, stmt, arg);
    sqlite3_finalize (stmt);
    return rc;
}

static void
s_read_category (kf_kb_snapshot_t *self, sqlite3_stmt *stmt, void *arg)
{
    (void) arg;
    kf_kb_row_category_t *category = s_push_row ((void **) &self->categories, &self->category_count,
                                                 sizeof *category);
    category->id = sqlite3_column_int64 (stmt, 0);
    category->parent_id = sqlite3_column_int64 (stmt, 1);
    category->name = s_column (self->arena, stmt, 2);
    category->is_enabled = sqlite3_column_int (stmt, 3) != 0;
}

static void
s_read_synonyms (kf_kb_snapshot_t *self, sqlite3_stmt *stmt, void *scratch)
{
    kf_kb_row_synonyms_t *group = s_push_row ((void **) &self->synonyms, &self->synonym_count,
                                              sizeof *group);
    group->bot_id = s_column (self->arena, stmt, 0);
    group->words = s_json_strings (self->arena, scratch, (const char *) sqlite3_column_text (stmt, 1));
}

static void
s_read_intent (kf_kb_snapshot_t *self, sqlite3_stmt *stmt, void *scratch)
{
    kf_kb_row_intent_t *intent = s_push_row ((void **) &self->intents, &self->intent_count,
                                             sizeof *intent);
    intent->bot_id = s_column (self->arena, stmt, 0);
    intent->name = s_column (self->arena, stmt, 1);
    intent->examples = s_json_strings (self->arena, scratch, (const char *) sqlite3_column_text (stmt, 2));
    intent->keywords = s_json_strings (self->arena, scratch, (const char *) sqlite3_column_text (stmt, 3));
    intent->patterns = s_json_strings (self->arena, scratch, (const char *) sqlite3_column_text (stmt, 4));
}

static void
s_read_chitchat (kf_kb_snapshot_t *self, sqlite3_stmt *stmt, void *scratch)
{
    kf_kb_row_chitchat_t *row = s_push_row ((void **) &self->chitchat, &self->chitchat_count,
                                            sizeof *row);
    row->bot_id = s_column (self->arena, stmt, 0);
    row->questions = s_json_strings (self->arena, scratch, (const char *) sqlite3_column_text (stmt, 1));
    row->reply = s_column (self->arena, stmt, 2);
}

//  The per-item queries, prepared once
typedef struct {
    sqlite3_stmt *similar, *variants;
    s_scratch_t scratch;
    kf_kb_row_variant_t variants_read [KF_KB_VARIANT_MAX];
    int rc;                     //  First failure of a per-item query, SQLITE_DONE while none
} s_item_reader_t;

static void
s_read_item (kf_kb_snapshot_t *self, sqlite3_stmt *stmt, void *arg)
{
    s_item_reader_t *reader = arg;
    kf_kb_arena_t *arena = self->arena;
    kf_kb_row_item_t *item = s_push_row ((void **) &self->items, &self->item_count, sizeof *item);
    item->id = sqlite3_column_int64 (stmt, 0);
    item->bot_id = s_column (arena, stmt, 1);
    item->external_id = s_column (arena, stmt, 2);
    item->question = s_column (arena, stmt, 3);
    item->answer = s_column (arena, stmt, 4);
    item->keywords = s_json_strings (arena, &reader->scratch, (const char *) sqlite3_column_text (stmt, 5));
    item->response_type = s_column (arena, stmt, 6);
    item->response_content = s_column (arena, stmt, 7);
    item->category_id = sqlite3_column_int64 (stmt, 8);
    int rc;
    sqlite3_bind_int64 (reader->similar, 1, item->id);
    while (reader->scratch.count < KF_KB_SIMILAR_MAX && (rc = sqlite3_step (reader->similar)) == SQLITE_ROW)
        s_scratch_push (&reader->scratch, s_column (arena, reader->similar, 0));
    if (rc != SQLITE_ROW && rc != SQLITE_DONE && reader->rc == SQLITE_DONE)
        reader->rc = rc;
    sqlite3_reset (reader->similar);
    item->similar = s_scratch_keep (arena, &reader->scratch);
    uint32_t count = 0;
    sqlite3_bind_int64 (reader->variants, 1, item->id);
    while (count < KF_KB_VARIANT_MAX && (rc = sqlite3_step (reader->variants)) == SQLITE_ROW)
        reader->variants_read [count++] = (kf_kb_row_variant_t) {
            s_column (arena, reader->variants, 0), s_column (arena, reader->variants, 1),
            s_column (arena, reader->variants, 2), s_column (arena, reader->variants, 3)
        };
    if (rc != SQLITE_ROW && rc != SQLITE_DONE && reader->rc == SQLITE_DONE)
        reader->rc = rc;
    sqlite3_reset (reader->variants);
    item->variant_count = count;
    if (count) {
        item->variants = s_alloc (arena, count * sizeof (kf_kb_row_variant_t));
        memcpy (item->variants, reader->variants_read, count * sizeof (kf_kb_row_variant_t));
    }
}

//  Reads every table into `self`; returns what failed, or NULL
static const char *
s_read_tables (kf_kb_snapshot_t *self, sqlite3 *db)
{
    s_item_reader_t reader = { .rc = SQLITE_DONE };
    const char *failed = NULL;
    if (sqlite3_prepare_v2 (db, "SELECT question FROM kb_questions WHERE item_id = ?"
                            " ORDER BY position", -1, &reader.similar, NULL)
    ||  sqlite3_prepare_v2 (db, "SELECT labels, answer, response_type, response_content"
                            " FROM kb_variants WHERE item_id = ? ORDER BY position", -1,
                            &reader.variants, NULL))
        failed = "cannot query items";
    else
    if (s_each_row (self, db, "SELECT id, parent_id, name, enabled FROM kb_categories ORDER BY id",
                    false, s_read_category, NULL) != SQLITE_DONE)
        failed = "reading categories failed";
    else
    if (s_each_row (self, db, "SELECT bot_id, words FROM kb_synonyms ORDER BY id", false,
                    s_read_synonyms, &reader.scratch) != SQLITE_DONE)
        failed = "reading synonyms failed";
    else
    if (s_each_row (self, db, "SELECT id, bot_id, external_id, question, answer, keywords,"
                    " response_type, response_content, category_id FROM kb_items"
                    " WHERE status = 1 ORDER BY id", false, s_read_item, &reader) != SQLITE_DONE
    ||  reader.rc != SQLITE_DONE)
        failed = "reading items failed";
    else
    if (s_each_row (self, db, "SELECT bot_id, name, examples, keywords, patterns FROM intents"
                    " WHERE enabled = 1 ORDER BY bot_id, id", true, s_read_intent,
                    &reader.scratch) != SQLITE_DONE)
        failed = "reading intents failed";
    else
    if (s_each_row (self, db, "SELECT bot_id, questions, reply FROM chitchat ORDER BY id", true,
                    s_read_chitchat, &reader.scratch) != SQLITE_DONE)
        failed = "reading chit-chat failed";
    sqlite3_finalize (reader.similar);
    sqlite3_finalize (reader.variants);
    free (reader.scratch.list);
    return failed;
}

kf_kb_snapshot_t *
kf_kb_snapshot_read (sqlite3 *db, char *err, size_t err_size)
{
    if (sqlite3_exec (db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        s_set_err (err, err_size, "cannot begin reading: %s", sqlite3_errmsg (db));
        return NULL;
    }
    kf_kb_snapshot_t *self = s_snapshot_new ();
    //  The version inside the transaction: the rows are exactly that version's
    self->version = kf_kb_snapshot_sql_version (db, err, err_size);
    const char *failed = self->version < 0 ? "cannot read the version" : s_read_tables (self, db);
    if (failed) {
        s_set_err (err, err_size, "%s: %s", failed, sqlite3_errmsg (db));
        kf_kb_snapshot_destroy (&self);
    }
    sqlite3_exec (db, "COMMIT", NULL, NULL, NULL);
    return self;
}

//  --- Encoding ---------------------------------------------------------------------------------

static void
s_pack_strings (msgpack_packer *pk, const kf_kb_strings_t *strings)
{
    msgpack_pack_array (pk, strings->count);
    for (uint32_t i = 0; i < strings->count; i++)
        kf_mp_pack_cstr (pk, strings->list [i]);
}

static void
s_pack_item (msgpack_packer *pk, const kf_kb_row_item_t *item)
{
    msgpack_pack_array (pk, 11);
    msgpack_pack_int64 (pk, item->id);
    kf_mp_pack_cstr (pk, item->bot_id);
    kf_mp_pack_cstr (pk, item->external_id);
    kf_mp_pack_cstr (pk, item->question);
    kf_mp_pack_cstr (pk, item->answer);
    kf_mp_pack_cstr (pk, item->response_type);
    kf_mp_pack_cstr (pk, item->response_content);
    msgpack_pack_int64 (pk, item->category_id);
    s_pack_strings (pk, &item->keywords);
    s_pack_strings (pk, &item->similar);
    msgpack_pack_array (pk, item->variant_count);
    for (uint32_t v = 0; v < item->variant_count; v++) {
        const kf_kb_row_variant_t *variant = &item->variants [v];
        msgpack_pack_array (pk, 4);
        kf_mp_pack_cstr (pk, variant->labels);
        kf_mp_pack_cstr (pk, variant->answer);
        kf_mp_pack_cstr (pk, variant->response_type);
        kf_mp_pack_cstr (pk, variant->response_content);
    }
}

void
kf_kb_snapshot_encode (const kf_kb_snapshot_t *self, msgpack_sbuffer *buffer)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 7);
    kf_mp_pack_kv_int (&pk, "format", KF_KB_SNAPSHOT_FORMAT);
    kf_mp_pack_kv_int (&pk, "version", self->version);
    kf_mp_pack_cstr (&pk, "categories");
    msgpack_pack_array (&pk, self->category_count);
    for (size_t i = 0; i < self->category_count; i++) {
        const kf_kb_row_category_t *category = &self->categories [i];
        msgpack_pack_array (&pk, 4);
        msgpack_pack_int64 (&pk, category->id);
        msgpack_pack_int64 (&pk, category->parent_id);
        kf_mp_pack_cstr (&pk, category->name);
        if (category->is_enabled)
            msgpack_pack_true (&pk);
        else
            msgpack_pack_false (&pk);
    }
    kf_mp_pack_cstr (&pk, "synonyms");
    msgpack_pack_array (&pk, self->synonym_count);
    for (size_t i = 0; i < self->synonym_count; i++) {
        msgpack_pack_array (&pk, 2);
        kf_mp_pack_cstr (&pk, self->synonyms [i].bot_id);
        s_pack_strings (&pk, &self->synonyms [i].words);
    }
    kf_mp_pack_cstr (&pk, "items");
    msgpack_pack_array (&pk, self->item_count);
    for (size_t i = 0; i < self->item_count; i++)
        s_pack_item (&pk, &self->items [i]);
    kf_mp_pack_cstr (&pk, "intents");
    msgpack_pack_array (&pk, self->intent_count);
    for (size_t i = 0; i < self->intent_count; i++) {
        const kf_kb_row_intent_t *intent = &self->intents [i];
        msgpack_pack_array (&pk, 5);
        kf_mp_pack_cstr (&pk, intent->bot_id);
        kf_mp_pack_cstr (&pk, intent->name);
        s_pack_strings (&pk, &intent->examples);
        s_pack_strings (&pk, &intent->keywords);
        s_pack_strings (&pk, &intent->patterns);
    }
    kf_mp_pack_cstr (&pk, "chitchat");
    msgpack_pack_array (&pk, self->chitchat_count);
    for (size_t i = 0; i < self->chitchat_count; i++) {
        msgpack_pack_array (&pk, 3);
        kf_mp_pack_cstr (&pk, self->chitchat [i].bot_id);
        s_pack_strings (&pk, &self->chitchat [i].questions);
        kf_mp_pack_cstr (&pk, self->chitchat [i].reply);
    }
}

//  --- Decoding ---------------------------------------------------------------------------------

//  The decoder's state: the first failure wins, and every step after it is a no-op
typedef struct {
    kf_kb_snapshot_t *self;
    const char *failed;         //  What was wrong, NULL while all is well
} s_decoder_t;

//  The elements of `obj` when it is an array of exactly `size` (0: any size), else NULL
static const msgpack_object *
s_array (s_decoder_t *decoder, const msgpack_object *obj, uint32_t size, const char *what)
{
    if (!decoder->failed && obj && obj->type == MSGPACK_OBJECT_ARRAY
    &&  (size == 0 || obj->via.array.size == size))
        return obj->via.array.ptr;
    if (!decoder->failed)
        decoder->failed = what;
    return NULL;
}

static const char *
s_str (s_decoder_t *decoder, const msgpack_object *obj)
{
    if (decoder->failed || obj->type == MSGPACK_OBJECT_NIL)
        return NULL;
    if (obj->type != MSGPACK_OBJECT_STR) {
        decoder->failed = "a string expected";
        return NULL;
    }
    return s_strndup (decoder->self->arena, obj->via.str.ptr, obj->via.str.size);
}

//  A string the database declares NOT NULL: nil is a bad snapshot
static const char *
s_str_needed (s_decoder_t *decoder, const msgpack_object *obj)
{
    const char *s = s_str (decoder, obj);
    if (!s && !decoder->failed)
        decoder->failed = "a required string is nil";
    return s;
}

static int64_t
s_int (s_decoder_t *decoder, const msgpack_object *obj)
{
    int64_t value = 0;
    if (!decoder->failed && !kf_mp_int (obj, &value))
        decoder->failed = "an integer expected";
    return value;
}

static kf_kb_strings_t
s_strings (s_decoder_t *decoder, const msgpack_object *obj, uint32_t max)
{
    kf_kb_strings_t strings = { NULL, 0 };
    const msgpack_object *list = s_array (decoder, obj, 0, "a list of strings expected");
    if (!list)
        return strings;
    if (obj->via.array.size > max) {
        decoder->failed = "a list longer than allowed";
        return strings;
    }
    strings.list = s_alloc (decoder->self->arena, obj->via.array.size * sizeof (char *) + 1);
    for (uint32_t i = 0; i < obj->via.array.size && !decoder->failed; i++) {
        if (list [i].type != MSGPACK_OBJECT_STR)
            decoder->failed = "a list of strings expected";
        else
            strings.list [strings.count++] = s_str (decoder, &list [i]);
    }
    return strings;
}

static void
s_decode_item (s_decoder_t *decoder, const msgpack_object *obj, void *row)
{
    kf_kb_row_item_t *item = row;
    const msgpack_object *field = s_array (decoder, obj, 11, "an item of 11 fields expected");
    if (!field)
        return;
    item->id = s_int (decoder, &field [0]);
    item->bot_id = s_str_needed (decoder, &field [1]);
    item->external_id = s_str (decoder, &field [2]);
    item->question = s_str_needed (decoder, &field [3]);
    item->answer = s_str_needed (decoder, &field [4]);
    item->response_type = s_str (decoder, &field [5]);
    item->response_content = s_str (decoder, &field [6]);
    item->category_id = s_int (decoder, &field [7]);
    item->keywords = s_strings (decoder, &field [8], UINT32_MAX);
    item->similar = s_strings (decoder, &field [9], KF_KB_SIMILAR_MAX);
    const msgpack_object *variants = s_array (decoder, &field [10], 0, "a list of variants expected");
    if (!variants)
        return;
    if (field [10].via.array.size > KF_KB_VARIANT_MAX) {
        decoder->failed = "more variants than allowed";
        return;
    }
    item->variants = s_alloc (decoder->self->arena, field [10].via.array.size * sizeof (kf_kb_row_variant_t) + 1);
    for (uint32_t v = 0; v < field [10].via.array.size && !decoder->failed; v++) {
        const msgpack_object *part = s_array (decoder, &variants [v], 4, "a variant of 4 fields expected");
        if (!part)
            return;
        item->variants [item->variant_count++] = (kf_kb_row_variant_t) {
            s_str (decoder, &part [0]), s_str_needed (decoder, &part [1]), s_str (decoder, &part [2]),
            s_str (decoder, &part [3])
        };
    }
}

static void
s_decode_category (s_decoder_t *decoder, const msgpack_object *obj, void *row)
{
    const msgpack_object *field = s_array (decoder, obj, 4, "a category of 4 fields expected");
    if (!field)
        return;
    kf_kb_row_category_t *category = row;
    category->id = s_int (decoder, &field [0]);
    category->parent_id = s_int (decoder, &field [1]);
    category->name = s_str_needed (decoder, &field [2]);
    if (field [3].type != MSGPACK_OBJECT_BOOLEAN && !decoder->failed)
        decoder->failed = "a boolean expected";
    category->is_enabled = field [3].type == MSGPACK_OBJECT_BOOLEAN && field [3].via.boolean;
}

static void
s_decode_synonyms (s_decoder_t *decoder, const msgpack_object *obj, void *row)
{
    const msgpack_object *field = s_array (decoder, obj, 2, "a synonym group of 2 fields expected");
    if (!field)
        return;
    kf_kb_row_synonyms_t *group = row;
    group->bot_id = s_str_needed (decoder, &field [0]);
    group->words = s_strings (decoder, &field [1], UINT32_MAX);
}

static void
s_decode_intent (s_decoder_t *decoder, const msgpack_object *obj, void *row)
{
    const msgpack_object *field = s_array (decoder, obj, 5, "an intent of 5 fields expected");
    if (!field)
        return;
    kf_kb_row_intent_t *intent = row;
    intent->bot_id = s_str (decoder, &field [0]);
    intent->name = s_str (decoder, &field [1]);
    intent->examples = s_strings (decoder, &field [2], UINT32_MAX);
    intent->keywords = s_strings (decoder, &field [3], UINT32_MAX);
    intent->patterns = s_strings (decoder, &field [4], UINT32_MAX);
}

static void
s_decode_chitchat (s_decoder_t *decoder, const msgpack_object *obj, void *row)
{
    const msgpack_object *field = s_array (decoder, obj, 3, "a chit-chat row of 3 fields expected");
    if (!field)
        return;
    kf_kb_row_chitchat_t *chitchat = row;
    chitchat->bot_id = s_str (decoder, &field [0]);
    chitchat->questions = s_strings (decoder, &field [1], UINT32_MAX);
    chitchat->reply = s_str_needed (decoder, &field [2]);
}

typedef void (s_decode_fn) (s_decoder_t *decoder, const msgpack_object *obj, void *row);

//  Decodes one table (an array of rows) into its heap array. The array grows as rows decode
//  rather than being sized from the declared count: a row is a few bytes on the wire (5 for a
//  category, 12 for an item) but 30 to 140 here, so an array of nils claiming 100,000 rows would
//  have cost 100 times its bytes before the first row failed. Growing, the array holds at most
//  twice the rows that decoded, each of which took its bytes.
static void
s_decode_table (s_decoder_t *decoder, const msgpack_object *map, const char *table,
                s_decode_fn *decode, void **rows, size_t *count, size_t row_size)
{
    const msgpack_object *obj = kf_mp_get (map, table);
    const msgpack_object *list = s_array (decoder, obj, 0, "a table is missing");
    if (!list)
        return;
    for (uint32_t i = 0; i < obj->via.array.size && !decoder->failed; i++)
        decode (decoder, &list [i], s_push_row (rows, count, row_size));
}

kf_kb_snapshot_t *
kf_kb_snapshot_decode (const char *data, size_t size, char *err, size_t err_size)
{
    msgpack_unpacked unpacked;
    if (!kf_mp_unpack_borrowed (data, size, &unpacked)) {
        s_set_err (err, err_size, "not one whole msgpack object (%zu bytes)", size);
        return NULL;
    }
    s_decoder_t decoder = { s_snapshot_new (), NULL };
    kf_kb_snapshot_t *self = decoder.self;
    const msgpack_object *map = &unpacked.data;
    int64_t format = kf_mp_get_int (map, "format", 0);
    self->version = kf_mp_get_int (map, "version", 0);
    if (map->type != MSGPACK_OBJECT_MAP || format != KF_KB_SNAPSHOT_FORMAT)
        decoder.failed = "not a snapshot of format 1";
    else
    if (self->version <= 0)
        decoder.failed = "no version";
    s_decode_table (&decoder, map, "categories", s_decode_category,
                    (void **) &self->categories, &self->category_count, sizeof (kf_kb_row_category_t));
    s_decode_table (&decoder, map, "synonyms", s_decode_synonyms,
                    (void **) &self->synonyms, &self->synonym_count, sizeof (kf_kb_row_synonyms_t));
    s_decode_table (&decoder, map, "items", s_decode_item,
                    (void **) &self->items, &self->item_count, sizeof (kf_kb_row_item_t));
    s_decode_table (&decoder, map, "intents", s_decode_intent,
                    (void **) &self->intents, &self->intent_count, sizeof (kf_kb_row_intent_t));
    s_decode_table (&decoder, map, "chitchat", s_decode_chitchat,
                    (void **) &self->chitchat, &self->chitchat_count, sizeof (kf_kb_row_chitchat_t));
    msgpack_unpacked_destroy (&unpacked);
    if (decoder.failed) {
        s_set_err (err, err_size, "bad snapshot: %s", decoder.failed);
        kf_kb_snapshot_destroy (&self);
    }
    return self;
}
