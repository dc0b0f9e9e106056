/*  kb_index.c - inverted index with BM25 scoring and a coverage-based confidence.
    Confidence of a question is the geometric mean of how much of the query it covers and how much
    of the question the query covers, both weighted by idf: it is 1 for an exact match, falls when
    either side has words the other lacks, and means the same whatever the size of the knowledge
    base. BM25 breaks ties. Bigram terms carry the meaning; unigrams are weighted down but let a
    one-character typo still match. */
#include "workers/kb_index.h"
#include "common/dict.h"
#include "common/log.h"
#include "workers/text_norm.h"
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define S_K1 1.2
#define S_B  0.75

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
    int length;                 //  Terms in the document
    double weight;              //  Sum of idf * kind weight over its distinct terms
    int *terms;                 //  Distinct term ids (freed after build)
    int term_count;
} s_doc_t;

struct _kf_kb_index_t {
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
    }
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

static void
s_add_doc (kf_kb_index_t *self, int item, const char *text)
{
    if (self->doc_count == self->doc_capacity) {
        self->doc_capacity = self->doc_capacity ? self->doc_capacity * 2 : 256;
        self->docs = kf_realloc (self->docs, self->doc_capacity * sizeof (s_doc_t));
    }
    int doc = self->doc_count++;
    self->docs [doc] = (s_doc_t) { .item = item, .text = text };
    char *normalized = kf_text_normalize (text, strlen (text));
    s_add_ctx_t ctx = { self, doc };
    kf_text_terms (normalized, strlen (normalized), s_add_term, &ctx);
    free (normalized);
}

void
kf_kb_index_add (kf_kb_index_t *self, int64_t id, const char *bot_id, const char *external_id,
                 const char *category, const char *question, const char *answer,
                 const char *const *similar, int similar_count)
{
    if (self->item_count == self->item_capacity) {
        self->item_capacity = self->item_capacity ? self->item_capacity * 2 : 128;
        self->items = kf_realloc (self->items, self->item_capacity * sizeof (kf_kb_item_t));
    }
    int index = self->item_count++;
    kf_kb_item_t *item = &self->items [index];
    item->id = id;
    item->bot_id = kf_strdup (bot_id);
    item->external_id = kf_strdup (external_id ? external_id : "");
    item->category = kf_strdup (category ? category : "");
    item->question = kf_strdup (question);
    item->answer = kf_strdup (answer);
    item->similar_count = similar_count;
    item->similar = kf_calloc (similar_count ? similar_count : 1, sizeof (char *));
    for (int s = 0; s < similar_count; s++)
        item->similar [s] = kf_strdup (similar [s]);
    //  Items array may move later: documents refer to items by index, text pointers stay valid
    s_add_doc (self, index, item->question);
    for (int s = 0; s < similar_count; s++)
        s_add_doc (self, index, item->similar [s]);
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
    char *normalized = kf_text_normalize (query, len);
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
