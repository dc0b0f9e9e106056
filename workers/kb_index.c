/*  kb_index.c - inverted index with BM25 scoring and a coverage-based confidence.
    Confidence of a question is the geometric mean of how much of the query it covers and how much
    of the question the query covers, both weighted by idf: it is 1 for an exact match, falls when
    either side has words the other lacks, and means the same whatever the size of the knowledge
    base. BM25 breaks ties. Bigram terms carry the meaning; unigrams are weighted down but let a
    one-character typo still match. */
#include "workers/kb_index.h"
#include "common/dict.h"
#include "common/log.h"
#include "common/utf8.h"
#include "common/text_norm.h"
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define S_K1 1.2
#define S_B  0.75
#define S_ANSWER_SCALE 0.4      //  An answer text alone can suggest an item, never answer with it

static const double s_kind_weight [] = { 0.35, 1.0, 1.0 };  //  unigram, bigram, word

typedef struct {
    int doc;                    //  Document index
    float tf;                   //  Term frequency in that document
} s_posting_t;

typedef struct {
    kf_term_kind_t kind;
    double idf;
    s_posting_t *postings;
    int count, capacity;
} s_term_t;

typedef struct {
    int item;                   //  Item index
    const char *text;           //  The question it indexes (borrowed from the item)
    bool is_answer;             //  Indexes the answer text, not a question
    int length;                 //  Terms in the document
    double weight;              //  Sum of idf * kind weight over its distinct terms
    int *terms;                 //  Distinct term ids (freed after build)
    int term_count;
} s_doc_t;

//  A synonym: `from` (normalized) is rewritten to `to` in a bot's items and queries
typedef struct s_synonym_t {
    char *bot_id, *from, *to;
    size_t from_len;
    struct s_synonym_t *next;   //  Next rule with the same first character, longest first
} s_synonym_t;

struct _kf_kb_index_t {
    kf_dict_t *synonyms;        //  First character of `from` -> s_synonym_t list, NULL when none
    s_synonym_t **rules;        //  Every rule, to free them
    int synonym_count;
    kf_kb_item_t *items;
    int item_count, item_capacity;
    s_doc_t *docs;
    int doc_count, doc_capacity;
    kf_dict_t *vocabulary;      //  Term text -> term id + 1
    s_term_t *terms;
    int term_count, term_capacity;
    double average_length;
    //  Scratch space for searches, stamped per search instead of cleared
    double *matched, *bm25;
    unsigned *doc_stamp;
    int *item_best;             //  Best doc per item
    unsigned *item_stamp;
    unsigned stamp;
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
    self->vocabulary = kf_dict_new ();
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
    for (int d = 0; d < self->doc_count; d++)
        free (self->docs [d].terms);
    for (int t = 0; t < self->term_count; t++)
        free (self->terms [t].postings);
    free (self->items);
    free (self->docs);
    free (self->terms);
    free (self->matched);
    free (self->bm25);
    free (self->doc_stamp);
    free (self->item_best);
    free (self->item_stamp);
    kf_dict_destroy (&self->vocabulary);
    free (self);
    *self_p = NULL;
}

typedef struct {
    kf_kb_index_t *index;
    int doc;
} s_add_ctx_t;

static void
s_add_term (void *arg, const char *term, size_t len, kf_term_kind_t kind)
{
    s_add_ctx_t *ctx = arg;
    kf_kb_index_t *self = ctx->index;
    s_doc_t *doc = &self->docs [ctx->doc];
    intptr_t id = (intptr_t) kf_dict_get (self->vocabulary, term, len) - 1;
    if (id < 0) {
        if (self->term_count == self->term_capacity) {
            self->term_capacity = self->term_capacity ? self->term_capacity * 2 : 256;
            self->terms = kf_realloc (self->terms, self->term_capacity * sizeof (s_term_t));
        }
        id = self->term_count++;
        memset (&self->terms [id], 0, sizeof (s_term_t));
        self->terms [id].kind = kind;
        kf_dict_put (self->vocabulary, term, len, (void *) (id + 1));
    }
    doc->length++;
    s_term_t *t = &self->terms [id];
    if (t->count > 0 && t->postings [t->count - 1].doc == ctx->doc) {
        t->postings [t->count - 1].tf += 1;
        return;
    }
    if (t->count == t->capacity) {
        t->capacity = t->capacity ? t->capacity * 2 : 4;
        t->postings = kf_realloc (t->postings, t->capacity * sizeof (s_posting_t));
    }
    t->postings [t->count++] = (s_posting_t) { ctx->doc, 1 };
    doc->terms = kf_realloc (doc->terms, (doc->term_count + 1) * sizeof (int));
    doc->terms [doc->term_count++] = (int) id;
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

static void
s_add_doc (kf_kb_index_t *self, int item, const char *text, bool is_answer)
{
    if (self->doc_count == self->doc_capacity) {
        self->doc_capacity = self->doc_capacity ? self->doc_capacity * 2 : 256;
        self->docs = kf_realloc (self->docs, self->doc_capacity * sizeof (s_doc_t));
    }
    int doc = self->doc_count++;
    self->docs [doc] = (s_doc_t) { .item = item, .text = text, .is_answer = is_answer };
    char *normalized = s_normalize (self, self->items [item].bot_id, text, strlen (text));
    s_add_ctx_t ctx = { self, doc };
    kf_text_terms (normalized, strlen (normalized), s_add_term, &ctx);
    free (normalized);
}

void
kf_kb_index_add_item (kf_kb_index_t *self, kf_kb_item_t *item)
{
    if (self->item_count == self->item_capacity) {
        self->item_capacity = self->item_capacity ? self->item_capacity * 2 : 128;
        self->items = kf_realloc (self->items, self->item_capacity * sizeof (kf_kb_item_t));
    }
    int index = self->item_count++;
    kf_kb_item_t *kept = &self->items [index];
    *kept = *item;
    if (!kept->answers) {
        kept->answers = kf_calloc (1, sizeof (kf_variant_t));
        kf_variant_from_json (&kept->answers [0], NULL, kept->answer, "text", NULL);
        kept->answer_count = 1;
    }
    //  Items array may move later: documents refer to items by index, text pointers stay valid
    s_add_doc (self, index, kept->question, false);
    for (int s = 0; s < kept->similar_count; s++)
        s_add_doc (self, index, kept->similar [s], false);
    s_add_doc (self, index, kept->answer, true);
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

void
kf_kb_index_build (kf_kb_index_t *self)
{
    double n = self->doc_count, total_length = 0;
    for (int t = 0; t < self->term_count; t++) {
        double df = self->terms [t].count;
        self->terms [t].idf = log (1 + (n - df + 0.5) / (df + 0.5));
    }
    for (int d = 0; d < self->doc_count; d++) {
        s_doc_t *doc = &self->docs [d];
        total_length += doc->length;
        for (int i = 0; i < doc->term_count; i++) {
            s_term_t *t = &self->terms [doc->terms [i]];
            doc->weight += t->idf * s_kind_weight [t->kind];
        }
        free (doc->terms);
        doc->terms = NULL;
    }
    self->average_length = self->doc_count ? total_length / self->doc_count : 1;
    self->matched = kf_calloc (self->doc_count, sizeof (double));
    self->bm25 = kf_calloc (self->doc_count, sizeof (double));
    self->doc_stamp = kf_calloc (self->doc_count, sizeof (unsigned));
    self->item_best = kf_calloc (self->item_count, sizeof (int));
    self->item_stamp = kf_calloc (self->item_count, sizeof (unsigned));
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

typedef struct {
    kf_kb_index_t *index;
    double query_weight;        //  Sum of idf * weight over distinct query terms
    kf_dict_t *seen;            //  Distinct query terms
} s_query_ctx_t;

static void
s_query_term (void *arg, const char *term, size_t len, kf_term_kind_t kind)
{
    s_query_ctx_t *ctx = arg;
    kf_kb_index_t *self = ctx->index;
    if (kf_dict_get (ctx->seen, term, len))
        return;
    kf_dict_put (ctx->seen, term, len, (void *) 1);
    intptr_t id = (intptr_t) kf_dict_get (self->vocabulary, term, len) - 1;
    double unknown_idf = log (1 + (self->doc_count + 0.5) / 0.5);
    if (id < 0) {
        ctx->query_weight += unknown_idf * s_kind_weight [kind];
        return;
    }
    s_term_t *t = &self->terms [id];
    double w = t->idf * s_kind_weight [t->kind];
    ctx->query_weight += w;
    for (int p = 0; p < t->count; p++) {
        int d = t->postings [p].doc;
        if (self->doc_stamp [d] != self->stamp) {
            self->doc_stamp [d] = self->stamp;
            self->matched [d] = self->bm25 [d] = 0;
        }
        double tf = t->postings [p].tf;
        double norm = 1 - S_B + S_B * self->docs [d].length / self->average_length;
        self->matched [d] += w;
        self->bm25 [d] += w * tf * (S_K1 + 1) / (tf + S_K1 * norm);
    }
}

static double
s_confidence (kf_kb_index_t *self, int doc, double query_weight)
{
    if (query_weight <= 0 || self->docs [doc].weight <= 0)
        return 0;
    double query_cover = self->matched [doc] / query_weight;
    if (self->docs [doc].is_answer)
        return S_ANSWER_SCALE * (query_cover > 1 ? 1 : query_cover * query_cover);
    double doc_cover = self->matched [doc] / self->docs [doc].weight;
    double c = sqrt (query_cover * doc_cover);
    return c > 1 ? 1 : c;
}

static int
s_hit_compare (const void *a, const void *b)
{
    const kf_kb_hit_t *x = a, *y = b;
    if (x->confidence != y->confidence)
        return x->confidence < y->confidence ? 1 : -1;
    return x->bm25 < y->bm25 ? 1 : x->bm25 > y->bm25 ? -1 : 0;
}

int
kf_kb_index_search (kf_kb_index_t *self, const char *bot_id, const char *query, size_t len,
                    kf_kb_hit_t *hits, int max_hits)
{
    if (!self->doc_stamp || max_hits <= 0)
        return 0;
    self->stamp++;
    char *normalized = s_normalize (self, bot_id, query, len);
    s_query_ctx_t ctx = { self, 0, kf_dict_new () };
    kf_text_terms (normalized, strlen (normalized), s_query_term, &ctx);
    free (normalized);
    kf_dict_destroy (&ctx.seen);
    //  Best document per item of this bot
    int candidates = 0;
    kf_kb_hit_t *all = NULL;
    for (int d = 0; d < self->doc_count; d++) {
        if (self->doc_stamp [d] != self->stamp)
            continue;
        int item = self->docs [d].item;
        if (strcmp (self->items [item].bot_id, bot_id) != 0)
            continue;
        double confidence = s_confidence (self, d, ctx.query_weight);
        if (self->item_stamp [item] == self->stamp) {
            kf_kb_hit_t *best = &all [self->item_best [item]];
            if (confidence > best->confidence
            || (confidence == best->confidence && self->bm25 [d] > best->bm25))
                *best = (kf_kb_hit_t) { &self->items [item], confidence, self->bm25 [d],
                                        self->docs [d].text };
            continue;
        }
        self->item_stamp [item] = self->stamp;
        self->item_best [item] = candidates;
        all = kf_realloc (all, (candidates + 1) * sizeof (kf_kb_hit_t));
        all [candidates++] = (kf_kb_hit_t) { &self->items [item], confidence, self->bm25 [d],
                                             self->docs [d].text };
    }
    if (candidates > 1)
        qsort (all, candidates, sizeof (kf_kb_hit_t), s_hit_compare);
    int count = candidates < max_hits ? candidates : max_hits;
    if (count > 0)
        memcpy (hits, all, count * sizeof (kf_kb_hit_t));
    free (all);
    return count;
}
