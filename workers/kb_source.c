/*  kb_source.c - builds the knowledge base from snapshot rows: read from the broker's SQLite file
    (read-only), or decoded from the bytes the broker shipped. */
#include "workers/kb_source.h"
#include "common/dict.h"
#include "common/hash.h"
#include "common/clock.h"
#include "common/log.h"
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _kf_kb_source_t {
    char *path;                 //  Database file, NULL for a source fed with snapshots
    sqlite3 *db;                //  Read-only connection, NULL until the file exists
    int64_t version;            //  Version last loaded, 0 before the first load
    bool is_failing;            //  Logged the current failure streak already
    kf_dict_t *calibrations;    //  bot_id -> s_calibrated_t of the last build: a bot whose
                                //  items did not change keeps its calibration
};

//  A bot's calibration and the hash of what it was fitted on
typedef struct {
    uint64_t hash;
    kf_kb_calibration_t calibration;
} s_calibrated_t;

kf_kb_source_t *
kf_kb_source_new (const char *path)
{
    kf_kb_source_t *self = kf_calloc (1, sizeof *self);
    self->path = path ? kf_strdup (path) : NULL;
    self->calibrations = kf_dict_new ();
    return self;
}

static void
s_calibrations_free (kf_dict_t **dict_p)
{
    if (!*dict_p)
        return;
    size_t cursor = 0;
    void *value;
    while (kf_dict_next (*dict_p, &cursor, NULL, &value))
        free (value);
    kf_dict_destroy (dict_p);
}

void
kf_kb_source_destroy (kf_kb_source_t **self_p)
{
    kf_kb_source_t *self = *self_p;
    if (!self)
        return;
    sqlite3_close (self->db);
    s_calibrations_free (&self->calibrations);
    free (self->path);
    free (self);
    *self_p = NULL;
}

static void
s_failed (kf_kb_source_t *self, const char *what)
{
    if (!self->is_failing)
        kf_warn ("knowledge base: %s", what);
    self->is_failing = true;
}

//  --- Building ---------------------------------------------------------------------------------

//  The category tree as loaded: paths and whether items under each may be answered
typedef struct {
    const kf_kb_row_category_t *row;
    bool is_enabled;            //  Its own flag and every ancestor's
    char *path;                 //  Computed on first use
    int state;                  //  0 not resolved, 1 resolving, 2 resolved
    int depth;                  //  1 for a root, once resolved
} s_category_t;

//  Levels of the tree a path is built for. The broker makes at most KF_CATEGORY_DEPTH_MAX (8),
//  but a snapshot comes over the wire: a chain of 100,000 categories would recurse that deep and
//  build paths of quadratic size. Deeper categories are treated like a loop: nothing under them
//  answers.
#define S_CATEGORY_DEPTH_MAX 64

typedef struct {
    s_category_t *list;
    size_t count;
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

//  Resolves a category's path and effective enabled state (disabled if any ancestor is, or when
//  it is in a loop or deeper than S_CATEGORY_DEPTH_MAX). Recurses at most that deep: an ancestor
//  that deep is resolved already or refused.
static void
s_resolve (s_tree_t *tree, s_category_t *category, int depth)
{
    if (category->state == 2)
        return;
    if (category->state == 1 || depth > S_CATEGORY_DEPTH_MAX) {
        category->is_enabled = false;   //  A loop in the tree, or too deep: nothing under it answers
        return;
    }
    category->state = 1;
    s_category_t *parent = category->row->parent_id ? s_category (tree, category->row->parent_id) : NULL;
    if (parent)
        s_resolve (tree, parent, depth + 1);
    //  An ancestor in a loop or too deep disables this one, whose path then starts here. A parent
    //  still resolving is this one itself (a row that is its own parent) or a loop through it.
    bool has_parent = parent && parent->state == 2 && parent->depth < S_CATEGORY_DEPTH_MAX;
    if (parent && (!has_parent || !parent->is_enabled))
        category->is_enabled = false;
    const char *parent_path = has_parent ? parent->path : NULL;
    const char *name = category->row->name;
    size_t size = strlen (name) + (parent_path ? strlen (parent_path) : 0) + 2;
    category->path = kf_malloc (size);
    snprintf (category->path, size, "%s%s%s", parent_path ? parent_path : "", parent_path ? "/" : "",
              name);
    category->depth = has_parent ? parent->depth + 1 : 1;
    category->state = 2;
}

static void
s_tree_new (s_tree_t *tree, const kf_kb_snapshot_t *snapshot)
{
    tree->count = snapshot->category_count;
    tree->list = kf_calloc (tree->count + 1, sizeof (s_category_t));
    tree->by_id = kf_dict_new ();
    for (size_t i = 0; i < tree->count; i++) {
        const kf_kb_row_category_t *row = &snapshot->categories [i];
        tree->list [i] = (s_category_t) { .row = row, .is_enabled = row->is_enabled };
        char key [24];
        int len = snprintf (key, sizeof key, "%lld", (long long) row->id);
        kf_dict_put (tree->by_id, key, len, (void *) (intptr_t) (i + 1));
    }
    for (size_t i = 0; i < tree->count; i++)
        s_resolve (tree, &tree->list [i], 1);
}

static void
s_tree_free (s_tree_t *tree)
{
    for (size_t i = 0; i < tree->count; i++)
        free (tree->list [i].path);
    free (tree->list);
    kf_dict_destroy (&tree->by_id);
}

//  A heap copy of a string list, as kf_kb_index_add_item takes it; NULL when empty
static char **
s_copy_strings (const kf_kb_strings_t *strings, int *count)
{
    *count = (int) strings->count;
    if (!strings->count)
        return NULL;
    char **copy = kf_calloc (strings->count, sizeof (char *));
    for (uint32_t i = 0; i < strings->count; i++)
        copy [i] = kf_strdup (strings->list [i]);
    return copy;
}

//  Fills `item` (heap copies) from its row, filed under `category` (NULL: none)
static void
s_make_item (const kf_kb_row_item_t *row, s_category_t *category, kf_kb_item_t *item)
{
    *item = (kf_kb_item_t) {
        .id = row->id, .bot_id = kf_strdup (row->bot_id),
        .external_id = kf_strdup (row->external_id ? row->external_id : ""),
        .category = kf_strdup (category ? category->path : ""), .question = kf_strdup (row->question),
        .answer = kf_strdup (row->answer)
    };
    item->keywords = s_copy_strings (&row->keywords, &item->keyword_count);
    item->similar = s_copy_strings (&row->similar, &item->similar_count);
    //  Answers: the default first, then the variants in order
    item->answers = kf_calloc (1 + KF_KB_VARIANT_MAX, sizeof (kf_variant_t));
    kf_variant_from_json (&item->answers [0], NULL, item->answer, row->response_type,
                          row->response_content);
    item->answer_count = 1;
    for (uint32_t v = 0; v < row->variant_count && v < KF_KB_VARIANT_MAX; v++) {
        const kf_kb_row_variant_t *variant = &row->variants [v];
        kf_variant_from_json (&item->answers [item->answer_count++], variant->labels,
                              variant->answer, variant->response_type, variant->response_content);
    }
}

//  One bot's items in the index, while the models are built
typedef struct {
    int *items;
    int count, capacity;
} s_bot_items_t;

static uint64_t
s_hash_text (uint64_t hash, const char *text)
{
    return kf_fnv1a (hash, text, strlen (text) + 1);      //  With its NUL: "ab" "c" != "a" "bc"
}

//  A hash of what a bot's calibration depends on: its items' questions and keywords as the index
//  has them, in order, and its synonym groups. Not the answers: an edited answer moves an item's
//  scores a little (answer text is weak evidence, never an answer alone), and answers are what a
//  business edits most: recalibrating every bot at each of those edits would delay the new answer
//  (test_kb: "edit under load") for nothing the threshold would show
static uint64_t
s_bot_hash (kf_kb_index_t *index, const int *items, int count, const kf_kb_synonym_group_t *groups,
            int group_count)
{
    uint64_t hash = KF_FNV1A_BASIS;
    for (int i = 0; i < count; i++) {
        const kf_kb_item_t *item = kf_kb_index_item (index, items [i]);
        hash = kf_fnv1a (hash, &item->id, sizeof item->id);
        hash = s_hash_text (hash, item->question);
        for (int q = 0; q < item->similar_count; q++)
            hash = s_hash_text (hash, item->similar [q]);
        hash = kf_fnv1a (hash, "|", 1);
        for (int k = 0; k < item->keyword_count; k++)
            hash = s_hash_text (hash, item->keywords [k]);
        hash = kf_fnv1a (hash, "|", 1);
    }
    for (int g = 0; g < group_count; g++) {
        for (int w = 0; w < groups [g].count; w++)
            hash = s_hash_text (hash, groups [g].words [w]);
        hash = kf_fnv1a (hash, "|", 1);
    }
    return hash;
}

//  The calibration of a bot: the one of the last build when its items are the same (`previous`,
//  may be NULL), else fitted now; remembered in `next` (may be NULL)
static kf_kb_calibration_t *
s_calibrate (kf_kb_index_t *index, const char *bot_id, const s_bot_items_t *bot,
             const kf_kb_synonym_group_t *groups, int group_count, kf_dict_t *previous, kf_dict_t *next)
{
    uint64_t hash = s_bot_hash (index, bot->items, bot->count, groups, group_count);
    s_calibrated_t *kept = previous ? kf_dict_get (previous, bot_id, strlen (bot_id)) : NULL;
    kf_kb_calibration_t *calibration;
    if (kept && kept->hash == hash) {
        calibration = kf_malloc (sizeof *calibration);
        *calibration = kept->calibration;
    }
    else {
        calibration = kf_kb_calibration_fit (index, bot_id, bot->items, bot->count, groups, group_count);
        kf_debug ("bot %s: calibrated on %d questions in %.1f ms (%s)", bot_id,
                  calibration->curve.samples, calibration->fit_ms,
                  calibration->curve.is_fitted ? "fitted" : "default");
    }
    if (next) {
        s_calibrated_t *entry = kf_malloc (sizeof *entry);
        *entry = (s_calibrated_t) { hash, *calibration };
        kf_dict_put (next, bot_id, strlen (bot_id), entry);
    }
    return calibration;
}

//  Gives every bot with items its questions as knowledge_qa examples and the calibration of its
//  knowledge base (kb_calibration.h), kept from `*cache` for the bots whose items did not change;
//  *cache (NULL: none) becomes this build's
static void
s_learn_knowledge (kf_kb_index_t *index, const kf_kb_snapshot_t *snapshot, kf_bot_models_t *models,
                   kf_dict_t **cache)
{
    kf_dict_t *bots = kf_dict_new ();
    size_t size = kf_kb_index_size (index);
    for (size_t i = 0; i < size; i++) {
        const kf_kb_item_t *item = kf_kb_index_item (index, i);
        s_bot_items_t *bot = kf_dict_get (bots, item->bot_id, strlen (item->bot_id));
        if (!bot) {
            bot = kf_calloc (1, sizeof *bot);
            kf_dict_put (bots, item->bot_id, strlen (item->bot_id), bot);
        }
        if (bot->count == bot->capacity) {
            bot->capacity = bot->capacity ? bot->capacity * 2 : 64;
            bot->items = kf_realloc (bot->items, bot->capacity * sizeof (int));
        }
        bot->items [bot->count++] = (int) i;
        kf_bot_models_add_questions (models, item->bot_id, (const char *const *) &item->question, 1);
        kf_bot_models_add_questions (models, item->bot_id, (const char *const *) item->similar,
                                     item->similar_count);
    }
    kf_dict_t *next = cache ? kf_dict_new () : NULL;
    size_t cursor = 0;
    const char *bot_id;
    void *value;
    kf_kb_synonym_group_t *groups = kf_calloc (snapshot->synonym_count + 1, sizeof *groups);
    while (kf_dict_next (bots, &cursor, &bot_id, &value)) {
        s_bot_items_t *bot = value;
        int group_count = 0;
        for (size_t g = 0; g < snapshot->synonym_count; g++)
            if (snapshot->synonyms [g].bot_id && strcmp (snapshot->synonyms [g].bot_id, bot_id) == 0)
                groups [group_count++] = (kf_kb_synonym_group_t) {
                    snapshot->synonyms [g].words.list, (int) snapshot->synonyms [g].words.count
                };
        kf_kb_calibration_t *calibration = s_calibrate (index, bot_id, bot, groups, group_count,
                                                        cache ? *cache : NULL, next);
        kf_bot_models_set_calibration (models, bot_id, &calibration);
        free (bot->items);
        free (bot);
    }
    free (groups);
    kf_dict_destroy (&bots);
    if (cache) {
        s_calibrations_free (cache);
        *cache = next;
    }
}

//  Builds and trains the bots' intent models, chit-chat tables and calibrations
static kf_bot_models_t *
s_build_models (kf_kb_index_t *index, const kf_kb_snapshot_t *snapshot, kf_dict_t **cache)
{
    kf_bot_models_t *models = kf_bot_models_new ();
    for (size_t i = 0; i < snapshot->intent_count; i++) {
        const kf_kb_row_intent_t *intent = &snapshot->intents [i];
        if (intent->bot_id && intent->name && *intent->name
        &&  kf_bot_models_add_intent (models, intent->bot_id, intent->name,
                                      intent->examples.list, intent->examples.count,
                                      intent->keywords.list, intent->keywords.count,
                                      intent->patterns.list, intent->patterns.count) != 0)
            kf_warn ("knowledge base: intent %s of bot %s skipped (repeated or more than %d)",
                     intent->name, intent->bot_id, KF_INTENT_MAX);
    }
    for (size_t i = 0; i < snapshot->chitchat_count; i++) {
        const kf_kb_row_chitchat_t *row = &snapshot->chitchat [i];
        if (row->bot_id)
            kf_bot_models_add_chitchat (models, row->bot_id, row->questions.list,
                                        row->questions.count, row->reply);
    }
    int64_t start = kf_mono_us ();
    s_learn_knowledge (index, snapshot, models, cache);
    double calibrate_ms = (kf_mono_us () - start) / 1000.0;
    double elapsed_ms;
    int trained = kf_bot_models_train (models, &elapsed_ms);
    if (trained)
        kf_info ("intent models trained: %d bot(s) in %.1f ms (default bot %.1f ms); knowledge"
                 " bases calibrated in %.1f ms", trained, elapsed_ms,
                 kf_bot_models_train_ms (models, "default"), calibrate_ms);
    return models;
}

//  kf_kb_source_build, with the calibrations of the last build (`cache`, may be NULL)
static kf_kb_index_t *
s_build (const kf_kb_snapshot_t *snapshot, kf_bot_models_t **models, kf_dict_t **cache)
{
    kf_kb_index_t *index = kf_kb_index_new ();
    s_tree_t tree;
    s_tree_new (&tree, snapshot);
    for (size_t i = 0; i < snapshot->synonym_count; i++)
        kf_kb_index_add_synonyms (index, snapshot->synonyms [i].bot_id,
                                  snapshot->synonyms [i].words.list,
                                  (int) snapshot->synonyms [i].words.count);
    //  Every answerable item: on shelf (the only ones a snapshot has), in no disabled category
    for (size_t i = 0; i < snapshot->item_count; i++) {
        const kf_kb_row_item_t *row = &snapshot->items [i];
        s_category_t *category = row->category_id ? s_category (&tree, row->category_id) : NULL;
        if (category && !category->is_enabled)
            continue;
        kf_kb_item_t item;
        s_make_item (row, category, &item);
        kf_kb_index_add_item (index, &item);
    }
    s_tree_free (&tree);
    kf_kb_index_build (index);
    *models = s_build_models (index, snapshot, cache);
    return index;
}

kf_kb_index_t *
kf_kb_source_build (const kf_kb_snapshot_t *snapshot, kf_bot_models_t **models)
{
    return s_build (snapshot, models, NULL);
}

//  --- Sources ----------------------------------------------------------------------------------

static int64_t
s_read_version (kf_kb_source_t *self)
{
    char err [256];
    if (!self->db) {
        if (sqlite3_open_v2 (self->path, &self->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
            snprintf (err, sizeof err, "cannot open %s: %s", self->path,
                      self->db ? sqlite3_errmsg (self->db) : "no memory");
            s_failed (self, err);
            sqlite3_close (self->db);
            self->db = NULL;
            return -1;
        }
        sqlite3_busy_timeout (self->db, 100);
    }
    int64_t version = kf_kb_snapshot_sql_version (self->db, err, sizeof err);
    if (version < 0)
        s_failed (self, err);
    return version;
}

kf_kb_index_t *
kf_kb_source_poll (kf_kb_source_t *self, int64_t *version, kf_bot_models_t **models)
{
    *models = NULL;
    if (!self->path)
        return NULL;
    int64_t current = s_read_version (self);
    if (current < 0 || current == self->version)
        return NULL;
    char err [256];
    kf_kb_snapshot_t *snapshot = kf_kb_snapshot_read (self->db, err, sizeof err);
    if (!snapshot) {
        //  A partial read must not pass for the whole version: keep serving the previous one
        s_failed (self, err);
        return NULL;
    }
    kf_kb_index_t *index = s_build (snapshot, models, &self->calibrations);
    self->is_failing = false;
    self->version = snapshot->version;
    *version = snapshot->version;
    kf_kb_snapshot_destroy (&snapshot);
    return index;
}

kf_kb_index_t *
kf_kb_source_load (kf_kb_source_t *self, const char *data, size_t size, int64_t *version,
                   kf_bot_models_t **models)
{
    *models = NULL;
    char err [256];
    kf_kb_snapshot_t *snapshot = kf_kb_snapshot_decode (data, size, err, sizeof err);
    if (!snapshot) {
        kf_warn ("knowledge base from the broker rejected: %s", err);
        return NULL;
    }
    kf_kb_index_t *index = s_build (snapshot, models, &self->calibrations);
    self->version = snapshot->version;
    *version = snapshot->version;
    kf_kb_snapshot_destroy (&snapshot);
    return index;
}
