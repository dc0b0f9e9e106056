/*  kb_index.c - the retrieval index. Per bot: a vocabulary, inverted lists over the terms (CJK
    characters, CJK bigrams, latin words) of every question, keyword and answer, and the same terms
    as forward lists per question and per item, so a search can both find items and finish them.

    Scoring. A term weighs its idf over the bot's items (df: items that ask with it). An item
    explains a query term fully when one of its questions has it, 0.8 of it when only its keywords
    do, 0.4 when only its answer does; its query cover is the share of the query's weight it
    explains. A question's doc cover is the share of the question's weight the query has.
        confidence = query cover ^ 0.6 * doc cover ^ 0.4    (best question of the item)
    It is 1 for an exact match, falls when either side has words the other lacks, and means the
    same whatever the size of the knowledge base. BM25 of that question breaks ties. An item that
    only its answer text matches scores 0.4 * answer cover ^ 2: it can be suggested, never answered.
    Query terms the bot has never seen weigh like its rarest (they keep questions about something
    else unanswered), but half when they are a bigram of two known characters (a typo, or two words
    side by side) or a latin word or number (English in Chinese text, an amount).

    Search. The query's terms are taken rarest first through their inverted lists of items, which
    gives every item found the query weight it explains so far. An item that no term taken reached
    can score at most (untaken weight / query weight) ^ 0.6: once that is below S_FLOOR, the
    remaining terms find no new items. Neither do terms in more than S_LONG_LIST items (common
    words) once the rarer terms make up S_RARE_SHARE of the query's known weight: that keeps a
    search fast on a large knowledge base. The S_MAX_COMPLETED items found that explain the most
    (all of them when there are no more) are then completed from their forward lists - the terms
    not taken, and the query's terms in each of their questions - and ranked. When no more items
    than that were found, the hits are exactly those of scoring everything, down to S_FLOOR: always
    so on a small knowledge base; on a large one the replies are the same almost always
    (tests/bench/kb_bench --check measures it). Comparisons use confidence^5 = query cover^3 * doc
    cover^2, so the loops need no pow. A search allocates nothing but the normalized text. */
#include "workers/kb_index.h"
#include "common/dict.h"
#include "common/log.h"
#include "common/utf8.h"
#include "common/text_norm.h"
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define S_K1 1.2
#define S_B  0.75
#define S_KEYWORD_EVIDENCE 0.8  //  Share of a query term an item explains with its keywords only
#define S_ANSWER_EVIDENCE  0.4  //  ... with its answer text only
#define S_ANSWER_SCALE     0.4  //  An answer text alone can suggest an item, never answer with it
#define S_UNSEEN_FACTOR    0.5  //  Unseen bigram of known characters, unseen latin word or number
#define S_FLOOR            0.1  //  Items below it reached only through common terms may be missing
#define S_LONG_LIST        2048 //  Items: a term in more no longer finds new items, once ...
#define S_RARE_SHARE       0.4  //  ... the rarer terms make up this share of the known weight
#define S_MAX_COMPLETED    128  //  Items completed from forward lists per search at most
#define S_PREFETCH_AHEAD   4    //  Completion: items ahead whose lists are fetched into the cache
#define S_EPSILON          1e-9 //  Relative: scores this close are equal (summation order differs)

//  Packed list entries: an id in the high 28 bits, 4 bits of detail (term frequency or fields);
//  forward lists are in order of first occurrence, inverted lists in order of item
#define S_PACK(id, low)     (((uint32_t) (id) << 4) | (uint32_t) (low))
#define S_ID(entry)         ((int) ((entry) >> 4))
#define S_LOW(entry)        ((int) ((entry) & 15))
#define S_MAX_ID            ((1 << 28) - 1)
#define S_BIT(bits, i)      (((bits) [(i) >> 6] >> ((i) & 63)) & 1)
#define S_SET_BIT(bits, i)  ((bits) [(i) >> 6] |= (uint64_t) 1 << ((i) & 63))
#define S_CLEAR_BIT(bits, i) ((bits) [(i) >> 6] &= ~((uint64_t) 1 << ((i) & 63)))

//  Where in an item a term occurs
enum { S_IN_QUESTION = 1, S_IN_KEYWORD = 2, S_IN_ANSWER = 4 };

typedef struct {
    double weight;              //  idf over the bot's items; set by the build
    uint32_t item_start;        //  Postings in bot->item_postings: S_PACK (item, fields), first ...
    uint32_t asked_count;       //  ... the items with it in a question or keyword, then ...
    uint32_t answer_count;      //  ... those with it only in their answer
    unsigned stamp;             //  Search that last saw it in its query
    //  While adding: the last question and item that had it, and its entry in their forward lists
    int added_doc, added_item;
    uint32_t doc_slot, item_slot;
} s_term_t;

//  One bot's knowledge base: its own vocabulary, statistics and lists
typedef struct {
    char *bot_id;
    kf_dict_t *vocabulary;      //  Term text -> term id + 1
    s_term_t *terms;
    int term_count, term_capacity;
    int *items;                 //  Its items, in order of adding
    int item_count, item_capacity;
    int doc_count;
    uint32_t *item_postings;
    uint64_t *in_query;         //  Bit per term: in the query being searched, ...
    uint64_t *pending;          //  ... not taken: completion adds it, ...
    uint64_t *answer_pending;   //  ... answer-only postings put off: completion adds those
    double average_length;      //  Of its questions, in terms
    double unknown_weight;      //  Of a term it has never seen
} s_bot_t;

//  A question
typedef struct {
    int item;
    float inverse_weight;       //  1 / the sum of the weights of its distinct terms (0: no terms)
    uint32_t term_start;        //  Forward list in self->doc_terms: S_PACK (term, tf)
    int term_count;
    int length;                 //  Terms, with repeats
} s_doc_t;

//  An item: where its lists are, and what a search keeps on it (one cache line)
typedef struct {
    int first_doc, doc_count;   //  Its questions are consecutive documents ...
    uint32_t doc_terms;         //  ... with consecutive forward lists from here, ...
    int doc_term_count;         //  ... this many entries
    uint32_t term_start;        //  Its forward list in self->item_terms: S_PACK (term, fields)
    int term_count;
    unsigned stamp;             //  Search that touched it
    int best_doc;               //  Its best question, -1 for its answer
    double key;                 //  Its key (confidence^5), once completed
    double explained;           //  Query weight it explains
    double answer;              //  Query weight its answer has
    double bm25;                //  Of best_doc; -1 until needed (ties only)
} s_entry_t;
_Static_assert (sizeof (s_entry_t) == 64, "an item's search state fills one cache line");

//  A synonym: `from` (normalized) is rewritten to `to` in a bot's items and queries
typedef struct s_synonym_t {
    char *bot_id, *from, *to;
    size_t from_len;
    struct s_synonym_t *next;   //  Next rule with the same first character, longest first
} s_synonym_t;

//  A distinct known term of the query being searched
typedef struct {
    int id;
    double weight;
} s_query_term_t;

//  A growable array of packed entries
typedef struct {
    uint32_t *data;
    size_t count, capacity;
} s_entries_t;

struct _kf_kb_index_t {
    kf_dict_t *synonyms;        //  First character of `from` -> s_synonym_t list, NULL when none
    s_synonym_t **rules;        //  Every rule, to free them
    int synonym_count;
    kf_dict_t *bot_ids;         //  Bot id -> bot index + 1
    s_bot_t *bots;
    int bot_count;
    kf_kb_item_t *items;
    s_entry_t *entries;         //  Parallel to items
    int item_count, item_capacity;
    s_doc_t *docs;
    const char **doc_texts;     //  Parallel to docs: the question (borrowed from its item)
    int doc_count, doc_capacity;
    s_entries_t doc_terms, item_terms;  //  Forward lists
    bool is_built, is_exhaustive;
    //  While adding: the field of the text being added, and its question (-1: not a question)
    uint8_t field;
    int doc;
    //  Scratch space for searches, stamped per search instead of cleared
    s_bot_t *bot;
    unsigned stamp;
    int *touched_items, touched_item_count;
    int *best;                  //  The best items, best first
    int best_capacity;
    float *candidate_keys;      //  Items to complete: a min-heap by what they explain so far
    int *candidates;
    bool has_pending;           //  Terms or answer-only postings are left to completion
    s_query_term_t *query;
    int query_count, query_capacity;
    double query_weight;
    uint64_t *unknown;          //  Hashes of the query's unknown terms (open addressing, 0 free)
    size_t unknown_capacity;
};

static void
s_synonyms_free (kf_kb_index_t *self)
{
    for (int i = 0; i < self->synonym_count; i++) {
        s_synonym_t *rule = self->rules [i];
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
        s_bot_t *bot = &self->bots [b];
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
    free (self->candidates);
    free (self->query);
    free (self->unknown);
    free (self);
    *self_p = NULL;
}

static void
s_entries_push (s_entries_t *entries, uint32_t entry)
{
    if (entries->count == entries->capacity) {
        entries->capacity = entries->capacity ? entries->capacity * 2 : 256;
        entries->data = kf_realloc (entries->data, entries->capacity * sizeof (uint32_t));
    }
    entries->data [entries->count++] = entry;
}

//  Length in bytes of the character at `s` (1 for a byte that starts none)
static int
s_char_len (const char *s, size_t len)
{
    uint32_t cp;
    int n = kf_utf8_decode (s, len, &cp);
    return n > 0 ? n : 1;
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
        s_synonym_t *rule = kf_calloc (1, sizeof *rule);
        *rule = (s_synonym_t) { kf_strdup (bot_id), from, kf_strdup (to), from_len, NULL };
        self->rules = kf_realloc (self->rules, (self->synonym_count + 1) * sizeof (s_synonym_t *));
        self->rules [self->synonym_count++] = rule;
        //  Longest first among the rules starting with the same character
        int first = s_char_len (from, from_len);
        s_synonym_t *head = kf_dict_get (self->synonyms, from, first);
        s_synonym_t **link = &head;
        while (*link && (*link)->from_len >= from_len)
            link = &(*link)->next;
        rule->next = *link;
        *link = rule;
        kf_dict_put (self->synonyms, from, first, head);
    }
    free (to);
}

//  Normalizes `text` and rewrites the bot's synonyms to their group's first word. Caller frees.
static char *
s_normalize (kf_kb_index_t *self, const char *bot_id, const char *text, size_t len)
{
    char *normalized = kf_text_normalize (text, len);
    if (!self->synonyms)
        return normalized;
    size_t size = strlen (normalized), capacity = size * 2 + 16, used = 0;
    char *out = kf_malloc (capacity);
    for (size_t at = 0; at < size; ) {
        int first = s_char_len (normalized + at, size - at);
        const s_synonym_t *rule = kf_dict_get (self->synonyms, normalized + at, first);
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
static int
s_bot (kf_kb_index_t *self, const char *bot_id, bool create)
{
    intptr_t b = (intptr_t) kf_dict_get (self->bot_ids, bot_id, strlen (bot_id)) - 1;
    if (b >= 0 || !create)
        return (int) b;
    self->bots = kf_realloc (self->bots, (self->bot_count + 1) * sizeof (s_bot_t));
    b = self->bot_count++;
    self->bots [b] = (s_bot_t) { .bot_id = kf_strdup (bot_id), .vocabulary = kf_dict_new () };
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
    s_bot_t *bot = self->bot;
    intptr_t id = (intptr_t) kf_dict_get (bot->vocabulary, term, len) - 1;
    if (id < 0) {
        if (bot->term_count == S_MAX_ID)
            return;             //  Vocabulary full: the term is left out
        if (bot->term_count == bot->term_capacity) {
            bot->term_capacity = bot->term_capacity ? bot->term_capacity * 2 : 256;
            bot->terms = kf_realloc (bot->terms, bot->term_capacity * sizeof (s_term_t));
        }
        id = bot->term_count++;
        bot->terms [id] = (s_term_t) { .added_doc = -1, .added_item = -1 };
        kf_dict_put (bot->vocabulary, term, len, (void *) (id + 1));
    }
    s_term_t *t = &bot->terms [id];
    int item = self->item_count - 1;
    if (t->added_item != item) {
        t->added_item = item;
        t->item_slot = self->item_terms.count;
        s_entries_push (&self->item_terms, S_PACK (id, self->field));
        self->entries [item].term_count++;
    }
    else
        self->item_terms.data [t->item_slot] |= self->field;
    if (self->doc < 0)
        return;
    s_doc_t *doc = &self->docs [self->doc];
    doc->length++;
    if (t->added_doc != self->doc) {
        t->added_doc = self->doc;
        t->doc_slot = self->doc_terms.count;
        s_entries_push (&self->doc_terms, S_PACK (id, 1));
        doc->term_count++;
    }
    else
    if (S_LOW (self->doc_terms.data [t->doc_slot]) < 15)
        self->doc_terms.data [t->doc_slot]++;   //  Term frequency, capped at 15
}

//  Indexes one text of the item being added: a question becomes a document, other fields only
//  add to the item's terms
static void
s_add_text (kf_kb_index_t *self, int item, const char *text, uint8_t field)
{
    s_bot_t *bot = self->bot;
    self->field = field;
    self->doc = -1;
    if (field == S_IN_QUESTION) {
        if (self->doc_count == self->doc_capacity) {
            self->doc_capacity = self->doc_capacity ? self->doc_capacity * 2 : 256;
            self->docs = kf_realloc (self->docs, self->doc_capacity * sizeof (s_doc_t));
            self->doc_texts = kf_realloc (self->doc_texts, self->doc_capacity * sizeof (char *));
        }
        self->doc = self->doc_count++;
        self->doc_texts [self->doc] = text;
        self->docs [self->doc] = (s_doc_t) { .item = item, .term_start = self->doc_terms.count };
        bot->doc_count++;
    }
    char *normalized = s_normalize (self, bot->bot_id, text, strlen (text));
    kf_text_terms (normalized, strlen (normalized), s_add_term, self);
    free (normalized);
}

void
kf_kb_index_add_item (kf_kb_index_t *self, kf_kb_item_t *item)
{
    if (self->item_count == self->item_capacity) {
        self->item_capacity = self->item_capacity ? self->item_capacity * 2 : 128;
        self->items = kf_realloc (self->items, self->item_capacity * sizeof (kf_kb_item_t));
        self->entries = kf_realloc (self->entries, self->item_capacity * sizeof (s_entry_t));
    }
    int index = self->item_count++;
    kf_kb_item_t *kept = &self->items [index];
    *kept = *item;
    if (!kept->answers) {
        kept->answers = kf_calloc (1, sizeof (kf_variant_t));
        kf_variant_from_json (&kept->answers [0], NULL, kept->answer, "text", NULL);
        kept->answer_count = 1;
    }
    int b = s_bot (self, kept->bot_id, true);     //  May move self->bots
    s_bot_t *bot = self->bot = &self->bots [b];
    if (bot->item_count == bot->item_capacity) {
        bot->item_capacity = bot->item_capacity ? bot->item_capacity * 2 : 64;
        bot->items = kf_realloc (bot->items, bot->item_capacity * sizeof (int));
    }
    bot->items [bot->item_count++] = index;
    s_entry_t *entry = &self->entries [index];
    *entry = (s_entry_t) { .first_doc = self->doc_count, .doc_terms = self->doc_terms.count,
                           .term_start = self->item_terms.count };
    //  Items array may move later: documents refer to items by index, text pointers stay valid
    s_add_text (self, index, kept->question, S_IN_QUESTION);
    for (int s = 0; s < kept->similar_count; s++)
        s_add_text (self, index, kept->similar [s], S_IN_QUESTION);
    for (int k = 0; k < kept->keyword_count; k++)
        s_add_text (self, index, kept->keywords [k], S_IN_KEYWORD);
    if (kept->answer)
        s_add_text (self, index, kept->answer, S_IN_ANSWER);
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
    memcpy (moved, data, bytes);
    free (data);
    return moved;
}

//  Inverted lists from the forward lists, term weights, document weights
static void
s_build_bot (kf_kb_index_t *self, s_bot_t *bot)
{
    int *question_df = kf_calloc (bot->term_count ? bot->term_count : 1, sizeof (int));
    for (int t = 0; t < bot->term_count; t++)
        bot->terms [t].asked_count = bot->terms [t].answer_count = 0;
    for (int k = 0; k < bot->item_count; k++) {
        const s_entry_t *entry = &self->entries [bot->items [k]];
        for (int e = 0; e < entry->term_count; e++) {
            uint32_t term = self->item_terms.data [entry->term_start + e];
            s_term_t *t = &bot->terms [S_ID (term)];
            if (S_LOW (term) & (S_IN_QUESTION | S_IN_KEYWORD))
                t->asked_count++;
            else
                t->answer_count++;
            question_df [S_ID (term)] += (S_LOW (term) & S_IN_QUESTION) != 0;
        }
    }
    uint32_t total = 0;
    double n = bot->item_count;
    uint32_t *answer_at = kf_calloc (bot->term_count ? bot->term_count : 1, sizeof (uint32_t));
    for (int t = 0; t < bot->term_count; t++) {
        s_term_t *term = &bot->terms [t];
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
        const s_entry_t *entry = &self->entries [item];
        for (int e = 0; e < entry->term_count; e++) {
            uint32_t term = self->item_terms.data [entry->term_start + e];
            int id = S_ID (term);
            s_term_t *t = &bot->terms [id];
            if (S_LOW (term) & (S_IN_QUESTION | S_IN_KEYWORD))
                bot->item_postings [t->item_start + t->asked_count++] = S_PACK (item, S_LOW (term));
            else
                bot->item_postings [answer_at [id] + t->answer_count++]
                    = S_PACK (item, S_LOW (term));
        }
        for (int d = entry->first_doc; d < entry->first_doc + entry->doc_count; d++) {
            s_doc_t *doc = &self->docs [d];
            double weight = 0;
            for (int e = 0; e < doc->term_count; e++)
                weight += bot->terms [S_ID (self->doc_terms.data [doc->term_start + e])].weight;
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
    if (self->item_count > S_MAX_ID || self->doc_count > S_MAX_ID) {
        kf_error ("kb index: %d items, %d questions: more than it can hold", self->item_count,
                  self->doc_count);
        return;
    }
    self->docs = s_huge_move (self->docs, self->doc_count * sizeof (s_doc_t));
    self->entries = s_huge_move (self->entries, self->item_count * sizeof (s_entry_t));
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
    self->candidate_keys = kf_calloc (S_MAX_COMPLETED, sizeof (float));
    self->candidates = kf_calloc (S_MAX_COMPLETED, sizeof (int));
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

//  True the first time the search sees unknown term `term` (by 64-bit hash)
static bool
s_unknown_is_new (kf_kb_index_t *self, const char *term, size_t len)
{
    uint64_t hash = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        hash = (hash ^ (unsigned char) term [i]) * 1099511628211ULL;
    hash |= 1;
    size_t mask = self->unknown_capacity - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        if (self->unknown [i] == hash)
            return false;
        if (self->unknown [i] == 0) {
            self->unknown [i] = hash;
            return true;
        }
    }
}

//  Collects a distinct term of the query
static void
s_query_term (void *arg, const char *term, size_t len, kf_term_kind_t kind)
{
    kf_kb_index_t *self = arg;
    s_bot_t *bot = self->bot;
    intptr_t id = (intptr_t) kf_dict_get (bot->vocabulary, term, len) - 1;
    if (id < 0) {
        if (!s_unknown_is_new (self, term, len))
            return;
        double weight = bot->unknown_weight;
        if (kind == KF_TERM_WORD)
            weight *= S_UNSEEN_FACTOR;
        else
        if (kind == KF_TERM_BIGRAM) {
            int first = s_char_len (term, len);
            if (kf_dict_get (bot->vocabulary, term, first)
            &&  kf_dict_get (bot->vocabulary, term + first, len - first))
                weight *= S_UNSEEN_FACTOR;
        }
        self->query_weight += weight;
        return;
    }
    s_term_t *t = &bot->terms [id];
    if (t->stamp == self->stamp)
        return;
    t->stamp = self->stamp;
    S_SET_BIT (bot->in_query, id);
    self->query_weight += t->weight;
    if (self->query_count == self->query_capacity) {
        self->query_capacity = self->query_capacity ? self->query_capacity * 2 : 64;
        self->query = kf_realloc (self->query, self->query_capacity * sizeof (s_query_term_t));
    }
    self->query [self->query_count++] = (s_query_term_t) { (int) id, t->weight };
}

//  Collects the distinct terms of the query into self->query and its weight; false when it has none
static bool
s_read_query (kf_kb_index_t *self, const char *bot_id, const char *query, size_t len)
{
    self->query_count = 0;
    self->query_weight = 0;
    char *normalized = s_normalize (self, bot_id, query, len);
    size_t normalized_len = strlen (normalized);
    //  Room for every term of the text (at most two per byte) at half load
    size_t capacity = 64;
    while (capacity < 4 * normalized_len + 16)
        capacity *= 2;
    if (capacity > self->unknown_capacity) {
        free (self->unknown);
        self->unknown = kf_malloc (capacity * sizeof (uint64_t));
        self->unknown_capacity = capacity;
    }
    memset (self->unknown, 0, self->unknown_capacity * sizeof (uint64_t));
    kf_text_terms (normalized, normalized_len, s_query_term, self);
    free (normalized);
    return self->query_weight > 0;
}

static int
s_rarest_first (const void *a, const void *b)
{
    const s_query_term_t *x = a, *y = b;
    return x->weight > y->weight ? -1 : x->weight < y->weight ? 1 : x->id - y->id;
}

//  Sorts the query's terms rarest first; insertion sort for the usual few
static void
s_sort_query (s_query_term_t *terms, int count)
{
    if (count > 32) {
        qsort (terms, count, sizeof (s_query_term_t), s_rarest_first);
        return;
    }
    for (int i = 1; i < count; i++) {
        s_query_term_t term = terms [i];
        int j = i;
        for (; j > 0 && s_rarest_first (&terms [j - 1], &term) > 0; j--)
            terms [j] = terms [j - 1];
        terms [j] = term;
    }
}

static inline double
s_min1 (double x)
{
    return x < 1 ? x : 1;
}

//  confidence^5 of a question, and of an answer-only match
static inline double
s_question_key (double query_cover, double doc_cover)
{
    query_cover = s_min1 (query_cover);
    doc_cover = s_min1 (doc_cover);
    return query_cover * query_cover * query_cover * doc_cover * doc_cover;
}

static inline double
s_answer_key (double answer_cover)
{
    answer_cover = s_min1 (answer_cover);
    double c = S_ANSWER_SCALE * answer_cover * answer_cover;
    return c * c * c * c * c;
}

//  True when a clearly beats b (relative S_EPSILON)
static inline bool
s_beats (double a, double b)
{
    return a > b + S_EPSILON * (a > b ? a : b);
}

//  Starts scoring item `item` in this search
static inline void
s_touch_item (kf_kb_index_t *self, s_entry_t *entry, int item)
{
    if (entry->stamp != self->stamp) {
        entry->stamp = self->stamp;
        entry->explained = entry->answer = 0;
        self->touched_items [self->touched_item_count++] = item;
    }
}

//  Share of a query term an item explains, by the fields it has the term in
static const double s_evidence [8] = {
    0, 1, S_KEYWORD_EVIDENCE, 1, S_ANSWER_EVIDENCE, 1, S_KEYWORD_EVIDENCE, 1
};

//  Adds a query term of weight `weight` to an item that has it in `fields`
static inline void
s_score_item (s_entry_t *entry, double weight, int fields)
{
    entry->explained += weight * s_evidence [fields & 7];
    if (fields & S_IN_ANSWER)
        entry->answer += weight;
}

//  BM25 of question `d` for the query; 0 for no question
static double
s_doc_bm25 (kf_kb_index_t *self, int d)
{
    if (d < 0)
        return 0;
    const s_bot_t *bot = self->bot;
    const s_doc_t *doc = &self->docs [d];
    double norm = S_K1 * (1 - S_B + S_B * doc->length / bot->average_length), bm25 = 0;
    const uint32_t *list = self->doc_terms.data + doc->term_start;
    for (int e = 0; e < doc->term_count; e++) {
        int id = S_ID (list [e]);
        if (S_BIT (bot->in_query, id)) {
            double tf = S_LOW (list [e]);
            bm25 += bot->terms [id].weight * tf * (S_K1 + 1) / (tf + norm);
        }
    }
    return bm25;
}

//  BM25 of the best question of an item, computed when first needed (ties only)
static double
s_entry_bm25 (kf_kb_index_t *self, s_entry_t *entry)
{
    if (entry->bm25 < 0)
        entry->bm25 = s_doc_bm25 (self, entry->best_doc);
    return entry->bm25;
}

//  Offers question `d`, which has `matched` of the query's weight, as the best of its item: it
//  wins on a higher key, then as a question over the answer, then on a higher BM25, then as the
//  earlier question
static void
s_offer_doc (kf_kb_index_t *self, s_entry_t *entry, int d, double matched)
{
    double key = s_question_key (entry->explained / self->query_weight,
                                 matched * self->docs [d].inverse_weight);
    double bm25 = -1;
    if (!s_beats (key, entry->key)) {
        if (s_beats (entry->key, key))
            return;
        if (entry->best_doc >= 0) {
            bm25 = s_doc_bm25 (self, d);
            double best_bm25 = s_entry_bm25 (self, entry);
            if (s_beats (best_bm25, bm25) || (!s_beats (bm25, best_bm25) && entry->best_doc < d))
                return;
        }
    }
    entry->key = key;
    entry->best_doc = d;
    entry->bm25 = bm25;
}

//  True when item a ranks before item b (both completed)
static bool
s_is_before (kf_kb_index_t *self, int a, int b)
{
    s_entry_t *x = &self->entries [a], *y = &self->entries [b];
    if (s_beats (x->key, y->key) || s_beats (y->key, x->key))
        return x->key > y->key;
    double x_bm25 = s_entry_bm25 (self, x), y_bm25 = s_entry_bm25 (self, y);
    if (s_beats (x_bm25, y_bm25) || s_beats (y_bm25, x_bm25))
        return x_bm25 > y_bm25;
    return a < b;
}

//  Puts `item` among the best `max` in `best` (best first, *count of them) if it belongs there
static void
s_rank (kf_kb_index_t *self, int *best, int *count, int max, int item)
{
    if (self->entries [item].key <= 0
    || (*count == max && !s_is_before (self, item, best [max - 1])))
        return;
    int at = *count < max ? (*count)++ : max - 1;
    while (at > 0 && s_is_before (self, item, best [at - 1])) {
        best [at] = best [at - 1];
        at--;
    }
    best [at] = item;
}

//  Walks a term's inverted list: every item that asks with it, and (`with_answers`) every item
//  that has it only in its answer
static void
s_take_term (kf_kb_index_t *self, const s_term_t *t, bool with_answers)
{
    const uint32_t *postings = self->bot->item_postings + t->item_start;
    uint32_t count = t->asked_count + (with_answers ? t->answer_count : 0);
    double weight = t->weight;
    for (uint32_t p = 0; p < count; p++) {
        if (p + 16 < count)
            __builtin_prefetch (&self->entries [S_ID (postings [p + 16])]);
        int item = S_ID (postings [p]);
        s_entry_t *entry = &self->entries [item];
        s_touch_item (self, entry, item);
        s_score_item (entry, weight, S_LOW (postings [p]));
    }
}

//  Fetches an item's forward lists into the cache ahead of its completion
static void
s_prefetch_item (kf_kb_index_t *self, const s_entry_t *entry)
{
    const char *list = (const char *) (self->item_terms.data + entry->term_start);
    for (int at = 0; at < entry->term_count * 4; at += 64)
        __builtin_prefetch (list + at);
    list = (const char *) (self->doc_terms.data + entry->doc_terms);
    for (int at = 0; at < entry->doc_term_count * 4; at += 64)
        __builtin_prefetch (list + at);
    for (int d = entry->first_doc; d < entry->first_doc + entry->doc_count; d += 3)
        __builtin_prefetch (&self->docs [d]);
}

//  Completes a touched item from its forward lists: the terms not taken (bot->pending) and the
//  answer-only postings put off (bot->answer_pending) to what it explains, then every question
//  with the query's terms it has; leaves its best key, question and BM25 (if computed)
static void
s_complete (kf_kb_index_t *self, s_entry_t *entry)
{
    const s_bot_t *bot = self->bot;
    const uint32_t *list = self->item_terms.data + entry->term_start;
    for (int e = 0; self->has_pending && e < entry->term_count; e++) {
        int id = S_ID (list [e]);
        if (S_BIT (bot->pending, id)
        || (S_BIT (bot->answer_pending, id) && S_LOW (list [e]) == S_IN_ANSWER))
            s_score_item (entry, bot->terms [id].weight, S_LOW (list [e]));
    }
    entry->key = s_answer_key (entry->answer / self->query_weight);
    entry->best_doc = -1;
    entry->bm25 = 0;
    for (int d = entry->first_doc; d < entry->first_doc + entry->doc_count; d++) {
        const s_doc_t *doc = &self->docs [d];
        list = self->doc_terms.data + doc->term_start;
        double matched = 0;
        for (int e = 0; e < doc->term_count; e++) {
            int id = S_ID (list [e]);
            if (S_BIT (bot->in_query, id))
                matched += bot->terms [id].weight;
        }
        if (matched > 0)
            s_offer_doc (self, entry, d, matched);
    }
}

//  Min-heap of candidates by what they explain: restores the order below position `at`
static void
s_sift_down (float *keys, int *candidates, int count, int at)
{
    while (true) {
        int child = 2 * at + 1;
        if (child >= count)
            return;
        if (child + 1 < count && keys [child + 1] < keys [child])
            child++;
        if (keys [child] >= keys [at])
            return;
        float key = keys [at];
        keys [at] = keys [child];
        keys [child] = key;
        int candidate = candidates [at];
        candidates [at] = candidates [child];
        candidates [child] = candidate;
        at = child;
    }
}

//  Into self->candidates: the touched items that explain the most of the query so far, at most
//  S_MAX_COMPLETED of them (all of them in exhaustive mode, then in self->touched_items); returns
//  the array and sets *count
static int *
s_candidates (kf_kb_index_t *self, int *count)
{
    if (self->is_exhaustive || self->touched_item_count <= S_MAX_COMPLETED) {
        *count = self->touched_item_count;
        return self->touched_items;
    }
    float *keys = self->candidate_keys;
    int *candidates = self->candidates, found = 0;
    for (int k = 0; k < self->touched_item_count; k++) {
        int item = self->touched_items [k];
        float key = (float) self->entries [item].explained;
        if (found < S_MAX_COMPLETED) {
            keys [found] = key;
            candidates [found++] = item;
            if (found == S_MAX_COMPLETED)
                for (int at = found / 2 - 1; at >= 0; at--)
                    s_sift_down (keys, candidates, found, at);
        }
        else
        if (key > keys [0]) {
            keys [0] = key;
            candidates [0] = item;
            s_sift_down (keys, candidates, found, 0);
        }
    }
    *count = found;
    return candidates;
}

//  A new search stamp; clears every stamp when the counter wraps
static void
s_next_stamp (kf_kb_index_t *self)
{
    if (++self->stamp != 0)
        return;
    for (int i = 0; i < self->item_count; i++)
        self->entries [i].stamp = 0;
    for (int b = 0; b < self->bot_count; b++)
        for (int t = 0; t < self->bots [b].term_count; t++)
            self->bots [b].terms [t].stamp = 0;
    self->stamp = 1;
}

int
kf_kb_index_search (kf_kb_index_t *self, const char *bot_id, const char *query, size_t len,
                    kf_kb_hit_t *hits, int max_hits)
{
    if (!self->is_built || max_hits <= 0)
        return 0;
    int b = s_bot (self, bot_id, false);
    if (b < 0)
        return 0;
    s_bot_t *bot = self->bot = &self->bots [b];
    s_next_stamp (self);
    self->touched_item_count = 0;
    int found = 0;
    if (!s_read_query (self, bot_id, query, len))
        goto done;
    if (max_hits > self->best_capacity) {
        self->best_capacity = max_hits;
        self->best = kf_realloc (self->best, max_hits * sizeof (int));
    }
    //  Rarest first through the inverted lists, while an item not found yet could still make it
    s_query_term_t *terms = self->query;
    int count = self->query_count;
    s_sort_query (terms, count);
    double untaken = 0, put_off = 0;    //  Weight of the terms not taken, of the answers put off
    for (int q = 0; q < count; q++)
        untaken += terms [q].weight;
    double known = untaken, w = self->query_weight, floor_key = pow (S_FLOOR, 5);
    int taken = 0;
    for (; taken < count; taken++) {
        const s_term_t *t = &bot->terms [terms [taken].id];
        bool with_answers = true;
        if (!self->is_exhaustive) {
            //  What an item not found so far can score at most
            double share = s_min1 ((untaken + S_ANSWER_EVIDENCE * put_off) / w);
            if (share * share * share < floor_key)     //  (share^0.6)^5
                break;
            if (t->asked_count > S_LONG_LIST && untaken <= (1 - S_RARE_SHARE) * known)
                break;          //  Common terms only complete what rarer terms found
            //  A long list of answers with the term is put off: the items found otherwise get
            //  it from their forward lists
            with_answers = t->answer_count <= S_LONG_LIST;
        }
        s_take_term (self, t, with_answers);
        if (!with_answers) {
            put_off += terms [taken].weight;
            S_SET_BIT (bot->answer_pending, terms [taken].id);
        }
        untaken -= terms [taken].weight;
    }
    for (int q = taken; q < count; q++)
        S_SET_BIT (bot->pending, terms [q].id);
    self->has_pending = taken < count || put_off > 0;
    //  The items that explain the most so far are completed and ranked
    int candidate_count;
    int *candidates = s_candidates (self, &candidate_count);
    for (int c = 0; c < candidate_count; c++) {
        if (c + S_PREFETCH_AHEAD < candidate_count)
            s_prefetch_item (self, &self->entries [candidates [c + S_PREFETCH_AHEAD]]);
        s_complete (self, &self->entries [candidates [c]]);
        s_rank (self, self->best, &found, max_hits, candidates [c]);
    }
    for (int h = 0; h < found; h++) {
        int item = self->best [h];
        s_entry_t *entry = &self->entries [item];
        hits [h] = (kf_kb_hit_t) {
            .item = &self->items [item], .confidence = pow (entry->key, 0.2),
            .bm25 = s_entry_bm25 (self, entry),
            .matched = entry->best_doc >= 0 ? self->doc_texts [entry->best_doc]
                                            : self->items [item].answer
        };
    }
done:
    for (int q = 0; q < self->query_count; q++) {
        int id = self->query [q].id;
        S_CLEAR_BIT (bot->in_query, id);
        S_CLEAR_BIT (bot->pending, id);
        S_CLEAR_BIT (bot->answer_pending, id);
    }
    return found;
}
