/*  kb_index.c - the retrieval index: construction and accessors. Items are added to a bot's
    vocabulary and to forward lists per question and per item; the build computes each bot's term
    weights (idf over its items, see kb_search.c for how they score), its inverted lists and the
    weight of every question, and moves the large arrays searches read into 2 MB pages. The
    structures are in kb_index_private.h; searching is in kb_search.c. */
#include "workers/kb_index.h"
#include "workers/kb_index_private.h"
#include "common/log.h"
#include "common/text_norm.h"
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void
s_synonyms_free (kf_kb_index_t *self)
{
    for (int i = 0; i < self->synonym_count; i++) {
        kf_ki_synonym_t *rule = self->rules [i];
        free (rule->bot_id);
        free (rule->from);
        free (rule->to);
        free (rule);
    }
    free (self->rules);
    if (self->synonyms)
        kf_dict_destroy (&self->synonyms);
}

kf_kb_index_t *
kf_kb_index_new (void)
{
    kf_kb_index_t *self = kf_calloc (1, sizeof *self);
    self->bot_ids = kf_dict_new ();
    return self;
}

void
kf_kb_index_destroy (kf_kb_index_t **self_p)
{
    kf_kb_index_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->item_count; i++) {
        kf_kb_item_t *item = &self->items [i];
        free (item->bot_id);
        free (item->external_id);
        free (item->category);
        free (item->question);
        free (item->answer);
        for (int s = 0; s < item->similar_count; s++)
            free (item->similar [s]);
        free (item->similar);
        for (int k = 0; k < item->keyword_count; k++)
            free (item->keywords [k]);
        free (item->keywords);
        for (int a = 0; a < item->answer_count; a++)
            kf_variant_free (&item->answers [a]);
        free (item->answers);
    }
    s_synonyms_free (self);
    for (int b = 0; b < self->bot_count; b++) {
        kf_ki_bot_t *bot = &self->bots [b];
        free (bot->bot_id);
        kf_dict_destroy (&bot->vocabulary);
        free (bot->terms);
        free (bot->items);
        free (bot->item_postings);
        free (bot->in_query);
        free (bot->pending);
        free (bot->answer_pending);
    }
    free (self->bots);
    kf_dict_destroy (&self->bot_ids);
    free (self->items);
    free (self->entries);
    free (self->docs);
    free (self->doc_texts);
    free (self->doc_terms.data);
    free (self->item_terms.data);
    free (self->touched_items);
    free (self->best);
    free (self->candidate_keys);
    free (self->bounds);
    free (self->bound_items);
    free (self->candidates);
    free (self->query);
    free (self->unknown);
    free (self);
    *self_p = NULL;
}

static void
s_entries_push (kf_ki_entries_t *entries, uint32_t entry)
{
    if (entries->count == entries->capacity) {
        entries->capacity = entries->capacity ? entries->capacity * 2 : 256;
        entries->data = kf_realloc (entries->data, entries->capacity * sizeof (uint32_t));
    }
    entries->data [entries->count++] = entry;
}

void
kf_kb_index_add_synonyms (kf_kb_index_t *self, const char *bot_id, const char *const *words,
                          int count)
{
    if (count < 2)
        return;
    char *to = kf_text_normalize (words [0], strlen (words [0]));
    if (!self->synonyms)
        self->synonyms = kf_dict_new ();
    for (int i = 1; i < count; i++) {
        char *from = kf_text_normalize (words [i], strlen (words [i]));
        size_t from_len = strlen (from);
        if (from_len == 0 || strcmp (from, to) == 0) {
            free (from);
            continue;
        }
        kf_ki_synonym_t *rule = kf_calloc (1, sizeof *rule);
        *rule = (kf_ki_synonym_t) { kf_strdup (bot_id), from, kf_strdup (to), from_len, NULL };
        self->rules = kf_realloc (self->rules,
                                  (self->synonym_count + 1) * sizeof (kf_ki_synonym_t *));
        self->rules [self->synonym_count++] = rule;
        //  Longest first among the rules starting with the same character
        int first = kf_ki_char_len (from, from_len);
        kf_ki_synonym_t *head = kf_dict_get (self->synonyms, from, first);
        kf_ki_synonym_t **link = &head;
        while (*link && (*link)->from_len >= from_len)
            link = &(*link)->next;
        rule->next = *link;
        *link = rule;
        kf_dict_put (self->synonyms, from, first, head);
    }
    free (to);
}

//  Normalizes `text` and rewrites the bot's synonyms to their group's first word. Caller frees.
char *
kf_ki_normalize (kf_kb_index_t *self, const char *bot_id, const char *text, size_t len)
{
    char *normalized = kf_text_normalize (text, len);
    if (!self->synonyms)
        return normalized;
    size_t size = strlen (normalized), capacity = size * 2 + 16, used = 0;
    char *out = kf_malloc (capacity);
    for (size_t at = 0; at < size; ) {
        int first = kf_ki_char_len (normalized + at, size - at);
        const kf_ki_synonym_t *rule = kf_dict_get (self->synonyms, normalized + at, first);
        for (; rule; rule = rule->next)
            if (rule->from_len <= size - at && memcmp (normalized + at, rule->from, rule->from_len) == 0
            &&  strcmp (rule->bot_id, bot_id) == 0)
                break;
        const char *piece = rule ? rule->to : normalized + at;
        size_t piece_len = rule ? strlen (rule->to) : (size_t) first;
        if (used + piece_len + 1 > capacity) {
            capacity = (used + piece_len + 1) * 2;
            out = kf_realloc (out, capacity);
        }
        memcpy (out + used, piece, piece_len);
        used += piece_len;
        at += rule ? rule->from_len : (size_t) first;
    }
    out [used] = 0;
    free (normalized);
    return out;
}

//  The bot's index in self->bots, or -1 when it has none (`create`: then a new empty one)
int
kf_ki_bot (kf_kb_index_t *self, const char *bot_id, bool create)
{
    intptr_t b = (intptr_t) kf_dict_get (self->bot_ids, bot_id, strlen (bot_id)) - 1;
    if (b >= 0 || !create)
        return (int) b;
    self->bots = kf_realloc (self->bots, (self->bot_count + 1) * sizeof (kf_ki_bot_t));
    b = self->bot_count++;
    self->bots [b] = (kf_ki_bot_t) { .bot_id = kf_strdup (bot_id), .vocabulary = kf_dict_new () };
    kf_dict_put (self->bot_ids, bot_id, strlen (bot_id), (void *) (b + 1));
    return (int) b;
}

//  Adds a term of the text being added to the forward lists of its item and (for a question) of
//  its question: a new entry the first time, else the field or one more occurrence
static void
s_add_term (void *arg, const char *term, size_t len, kf_term_kind_t kind)
{
    (void) kind;
    kf_kb_index_t *self = arg;
    kf_ki_bot_t *bot = self->bot;
    intptr_t id = (intptr_t) kf_dict_get (bot->vocabulary, term, len) - 1;
    if (id < 0) {
        if (bot->term_count == KF_KI_MAX_ID)
            return;             //  Vocabulary full: the term is left out
        if (bot->term_count == bot->term_capacity) {
            bot->term_capacity = bot->term_capacity ? bot->term_capacity * 2 : 256;
            bot->terms = kf_realloc (bot->terms, bot->term_capacity * sizeof (kf_ki_term_t));
        }
        id = bot->term_count++;
        bot->terms [id] = (kf_ki_term_t) { .added_doc = -1, .added_item = -1 };
        kf_dict_put (bot->vocabulary, term, len, (void *) (id + 1));
    }
    kf_ki_term_t *t = &bot->terms [id];
    int item = self->item_count - 1;
    if (t->added_item != item) {
        t->added_item = item;
        t->item_slot = self->item_terms.count;
        s_entries_push (&self->item_terms, KF_KI_PACK (id, self->field));
        self->entries [item].term_count++;
    }
    else
        self->item_terms.data [t->item_slot] |= self->field;
    if (self->doc < 0)
        return;
    kf_ki_doc_t *doc = &self->docs [self->doc];
    doc->length++;
    if (t->added_doc != self->doc) {
        t->added_doc = self->doc;
        t->doc_slot = self->doc_terms.count;
        s_entries_push (&self->doc_terms, KF_KI_PACK (id, 1));
        doc->term_count++;
    }
    else
    if (KF_KI_LOW (self->doc_terms.data [t->doc_slot]) < 15)
        self->doc_terms.data [t->doc_slot]++;   //  Term frequency, capped at 15
}

//  Indexes one text of the item being added: a question becomes a document, other fields only
//  add to the item's terms
static void
s_add_text (kf_kb_index_t *self, int item, const char *text, uint8_t field)
{
    kf_ki_bot_t *bot = self->bot;
    self->field = field;
    self->doc = -1;
    if (field == KF_KI_IN_QUESTION) {
        if (self->doc_count == self->doc_capacity) {
            self->doc_capacity = self->doc_capacity ? self->doc_capacity * 2 : 256;
            self->docs = kf_realloc (self->docs, self->doc_capacity * sizeof (kf_ki_doc_t));
            self->doc_texts = kf_realloc (self->doc_texts, self->doc_capacity * sizeof (char *));
        }
        self->doc = self->doc_count++;
        self->doc_texts [self->doc] = text;
        self->docs [self->doc] = (kf_ki_doc_t) { .item = item,
                                                 .term_start = self->doc_terms.count };
        bot->doc_count++;
    }
    char *normalized = kf_ki_normalize (self, bot->bot_id, text, strlen (text));
    kf_text_terms (normalized, strlen (normalized), s_add_term, self);
    free (normalized);
}

void
kf_kb_index_add_item (kf_kb_index_t *self, kf_kb_item_t *item)
{
    if (self->item_count == self->item_capacity) {
        self->item_capacity = self->item_capacity ? self->item_capacity * 2 : 128;
        self->items = kf_realloc (self->items, self->item_capacity * sizeof (kf_kb_item_t));
        self->entries = kf_realloc (self->entries, self->item_capacity * sizeof (kf_ki_entry_t));
    }
    int index = self->item_count++;
    kf_kb_item_t *kept = &self->items [index];
    *kept = *item;
    if (!kept->answers) {
        kept->answers = kf_calloc (1, sizeof (kf_variant_t));
        kf_variant_from_json (&kept->answers [0], NULL, kept->answer, "text", NULL);
        kept->answer_count = 1;
    }
    int b = kf_ki_bot (self, kept->bot_id, true);     //  May move self->bots
    kf_ki_bot_t *bot = self->bot = &self->bots [b];
    if (bot->item_count == bot->item_capacity) {
        bot->item_capacity = bot->item_capacity ? bot->item_capacity * 2 : 64;
        bot->items = kf_realloc (bot->items, bot->item_capacity * sizeof (int));
    }
    bot->items [bot->item_count++] = index;
    kf_ki_entry_t *entry = &self->entries [index];
    *entry = (kf_ki_entry_t) { .first_doc = self->doc_count, .doc_terms = self->doc_terms.count,
                           .term_start = self->item_terms.count };
    //  Items array may move later: documents refer to items by index, text pointers stay valid
    s_add_text (self, index, kept->question, KF_KI_IN_QUESTION);
    for (int s = 0; s < kept->similar_count; s++)
        s_add_text (self, index, kept->similar [s], KF_KI_IN_QUESTION);
    for (int k = 0; k < kept->keyword_count; k++)
        s_add_text (self, index, kept->keywords [k], KF_KI_IN_KEYWORD);
    if (kept->answer)
        s_add_text (self, index, kept->answer, KF_KI_IN_ANSWER);
    entry->doc_count = self->doc_count - entry->first_doc;
    entry->doc_term_count = (int) (self->doc_terms.count - entry->doc_terms);
}

void
kf_kb_index_add (kf_kb_index_t *self, int64_t id, const char *bot_id, const char *external_id,
                 const char *category, const char *question, const char *answer,
                 const char *const *similar, int similar_count)
{
    kf_kb_item_t item = {
        .id = id, .bot_id = kf_strdup (bot_id), .external_id = kf_strdup (external_id ? external_id : ""),
        .category = kf_strdup (category ? category : ""), .question = kf_strdup (question),
        .answer = kf_strdup (answer), .similar_count = similar_count,
        .similar = kf_calloc (similar_count ? similar_count : 1, sizeof (char *))
    };
    for (int s = 0; s < similar_count; s++)
        item.similar [s] = kf_strdup (similar [s]);
    kf_kb_index_add_item (self, &item);
}

//  Memory for a large array the searches read at random: in 2 MB pages where the system allows,
//  so that a search does not spend its time on page-table walks
#define S_HUGE_PAGE (2 * 1024 * 1024)

static void *
s_huge_alloc (size_t bytes)
{
    void *memory = NULL;
    if (bytes < 2 * S_HUGE_PAGE)
        return kf_malloc (bytes ? bytes : 1);
    size_t size = (bytes + S_HUGE_PAGE - 1) / S_HUGE_PAGE * S_HUGE_PAGE;
    if (posix_memalign (&memory, S_HUGE_PAGE, size) != 0)
        kf_oom ();
    madvise (memory, size, MADV_HUGEPAGE);  //  Advice only: fine when refused
    return memory;
}

//  Moves an array built by realloc into such memory
static void *
s_huge_move (void *data, size_t bytes)
{
    void *moved = s_huge_alloc (bytes);
    if (bytes)
        memcpy (moved, data, bytes);    //  An empty array may be NULL
    free (data);
    return moved;
}

//  Inverted lists from the forward lists, term weights, document weights
static void
s_build_bot (kf_kb_index_t *self, kf_ki_bot_t *bot)
{
    int *question_df = kf_calloc (bot->term_count ? bot->term_count : 1, sizeof (int));
    for (int t = 0; t < bot->term_count; t++)
        bot->terms [t].asked_count = bot->terms [t].answer_count = 0;
    for (int k = 0; k < bot->item_count; k++) {
        const kf_ki_entry_t *entry = &self->entries [bot->items [k]];
        for (int e = 0; e < entry->term_count; e++) {
            uint32_t term = self->item_terms.data [entry->term_start + e];
            kf_ki_term_t *t = &bot->terms [KF_KI_ID (term)];
            if (KF_KI_LOW (term) & (KF_KI_IN_QUESTION | KF_KI_IN_KEYWORD))
                t->asked_count++;
            else
                t->answer_count++;
            question_df [KF_KI_ID (term)] += (KF_KI_LOW (term) & KF_KI_IN_QUESTION) != 0;
        }
    }
    uint32_t total = 0;
    double n = bot->item_count;
    uint32_t *answer_at = kf_calloc (bot->term_count ? bot->term_count : 1, sizeof (uint32_t));
    for (int t = 0; t < bot->term_count; t++) {
        kf_ki_term_t *term = &bot->terms [t];
        term->item_start = total;
        answer_at [t] = total + term->asked_count;
        total += term->asked_count + term->answer_count;
        term->asked_count = term->answer_count = 0;     //  Counted again below
        term->weight = log (1 + (n - question_df [t] + 0.5) / (question_df [t] + 0.5));
    }
    free (question_df);
    bot->unknown_weight = log (1 + (n + 0.5) / 0.5);
    bot->in_query = kf_calloc (bot->term_count / 64 + 1, sizeof (uint64_t));
    bot->pending = kf_calloc (bot->term_count / 64 + 1, sizeof (uint64_t));
    bot->answer_pending = kf_calloc (bot->term_count / 64 + 1, sizeof (uint64_t));
    bot->item_postings = s_huge_alloc (total * sizeof (uint32_t));
    //  Items in increasing order: every list comes out sorted
    double total_length = 0;
    for (int k = 0; k < bot->item_count; k++) {
        int item = bot->items [k];
        const kf_ki_entry_t *entry = &self->entries [item];
        for (int e = 0; e < entry->term_count; e++) {
            uint32_t term = self->item_terms.data [entry->term_start + e];
            int id = KF_KI_ID (term);
            kf_ki_term_t *t = &bot->terms [id];
            if (KF_KI_LOW (term) & (KF_KI_IN_QUESTION | KF_KI_IN_KEYWORD))
                bot->item_postings [t->item_start + t->asked_count++]
                    = KF_KI_PACK (item, KF_KI_LOW (term));
            else
                bot->item_postings [answer_at [id] + t->answer_count++]
                    = KF_KI_PACK (item, KF_KI_LOW (term));
        }
        for (int d = entry->first_doc; d < entry->first_doc + entry->doc_count; d++) {
            kf_ki_doc_t *doc = &self->docs [d];
            double weight = 0;
            for (int e = 0; e < doc->term_count; e++)
                weight += bot->terms [KF_KI_ID (self->doc_terms.data [doc->term_start + e])].weight;
            doc->inverse_weight = weight > 0 ? (float) (1 / weight) : 0;
            total_length += doc->length;
        }
    }
    free (answer_at);
    bot->average_length = bot->doc_count ? total_length / bot->doc_count : 1;
}

void
kf_kb_index_build (kf_kb_index_t *self)
{
    if (self->is_built)
        return;
    if (self->item_count > KF_KI_MAX_ID || self->doc_count > KF_KI_MAX_ID) {
        kf_error ("kb index: %d items, %d questions: more than it can hold", self->item_count,
                  self->doc_count);
        return;
    }
    self->docs = s_huge_move (self->docs, self->doc_count * sizeof (kf_ki_doc_t));
    self->entries = s_huge_move (self->entries, self->item_count * sizeof (kf_ki_entry_t));
    self->doc_terms.data = s_huge_move (self->doc_terms.data,
                                        self->doc_terms.count * sizeof (uint32_t));
    self->item_terms.data = s_huge_move (self->item_terms.data,
                                         self->item_terms.count * sizeof (uint32_t));
    self->doc_capacity = self->doc_count;       //  The arrays moved hold exactly what they have
    self->item_capacity = self->item_count;
    self->doc_terms.capacity = self->doc_terms.count;
    self->item_terms.capacity = self->item_terms.count;
    for (int b = 0; b < self->bot_count; b++)
        s_build_bot (self, &self->bots [b]);
    int items = self->item_count ? self->item_count : 1;
    self->touched_items = kf_calloc (items, sizeof (int));
    self->candidate_keys = kf_calloc (KF_KI_MAX_COMPLETED, sizeof (float));
    self->candidates = kf_calloc (KF_KI_MAX_COMPLETED, sizeof (int));
    self->is_built = true;
}

size_t
kf_kb_index_size (kf_kb_index_t *self)
{
    return self->item_count;
}

const kf_kb_item_t *
kf_kb_index_item (kf_kb_index_t *self, size_t index)
{
    return &self->items [index];
}

void
kf_kb_index_set_exhaustive (kf_kb_index_t *self, bool is_exhaustive)
{
    self->is_exhaustive = is_exhaustive;
}
