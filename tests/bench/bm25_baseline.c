/*  bm25_baseline.c - plain BM25 over every question, the retrieval baseline. Deliberately simple:
    a dense score array per search. */
#include "tests/bench/bm25_baseline.h"
#include "common/dict.h"
#include "common/log.h"
#include "common/text_norm.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_K1 1.2
#define S_B  0.75

typedef struct {
    int doc;
    int tf;
} s_posting_t;

typedef struct {
    s_posting_t *postings;
    int count, capacity;
    double idf;
} s_term_t;

struct _kf_bm25_t {
    kf_dict_t *vocabulary;      //  Term -> id + 1
    s_term_t *terms;
    int term_count, term_capacity;
    int *doc_item, *doc_length;
    int doc_count, doc_capacity;
    int item_count;
    double average_length;
    double *score, *item_score;     //  Per search
};

kf_bm25_t *
kf_bm25_new (void)
{
    kf_bm25_t *self = kf_calloc (1, sizeof *self);
    self->vocabulary = kf_dict_new ();
    return self;
}

void
kf_bm25_destroy (kf_bm25_t **self_p)
{
    kf_bm25_t *self = *self_p;
    if (!self)
        return;
    for (int t = 0; t < self->term_count; t++)
        free (self->terms [t].postings);
    free (self->terms);
    free (self->doc_item);
    free (self->doc_length);
    free (self->score);
    free (self->item_score);
    kf_dict_destroy (&self->vocabulary);
    free (self);
    *self_p = NULL;
}

static void
s_add_term (void *arg, const char *term, size_t len, kf_term_kind_t kind)
{
    (void) kind;                //  Every kind counts alike
    kf_bm25_t *self = arg;
    int doc = self->doc_count - 1;
    intptr_t id = (intptr_t) kf_dict_get (self->vocabulary, term, len) - 1;
    if (id < 0) {
        if (self->term_count == self->term_capacity) {
            self->term_capacity = self->term_capacity ? self->term_capacity * 2 : 1024;
            self->terms = kf_realloc (self->terms, self->term_capacity * sizeof (s_term_t));
        }
        id = self->term_count++;
        memset (&self->terms [id], 0, sizeof (s_term_t));
        kf_dict_put (self->vocabulary, term, len, (void *) (id + 1));
    }
    self->doc_length [doc]++;
    s_term_t *t = &self->terms [id];
    if (t->count > 0 && t->postings [t->count - 1].doc == doc) {
        t->postings [t->count - 1].tf++;
        return;
    }
    if (t->count == t->capacity) {
        t->capacity = t->capacity ? t->capacity * 2 : 4;
        t->postings = kf_realloc (t->postings, t->capacity * sizeof (s_posting_t));
    }
    t->postings [t->count++] = (s_posting_t) { doc, 1 };
}

void
kf_bm25_add (kf_bm25_t *self, int item, const char *question)
{
    if (self->doc_count == self->doc_capacity) {
        self->doc_capacity = self->doc_capacity ? self->doc_capacity * 2 : 1024;
        self->doc_item = kf_realloc (self->doc_item, self->doc_capacity * sizeof (int));
        self->doc_length = kf_realloc (self->doc_length, self->doc_capacity * sizeof (int));
    }
    self->doc_item [self->doc_count] = item;
    self->doc_length [self->doc_count++] = 0;
    if (item >= self->item_count)
        self->item_count = item + 1;
    char *normalized = kf_text_normalize (question, strlen (question));
    kf_text_terms (normalized, strlen (normalized), s_add_term, self);
    free (normalized);
}

void
kf_bm25_build (kf_bm25_t *self)
{
    double n = self->doc_count, total = 0;
    for (int t = 0; t < self->term_count; t++) {
        double df = self->terms [t].count;
        self->terms [t].idf = log (1 + (n - df + 0.5) / (df + 0.5));
    }
    for (int d = 0; d < self->doc_count; d++)
        total += self->doc_length [d];
    self->average_length = self->doc_count ? total / self->doc_count : 1;
    free (self->score);
    free (self->item_score);
    self->score = kf_calloc (self->doc_count ? self->doc_count : 1, sizeof (double));
    self->item_score = kf_calloc (self->item_count ? self->item_count : 1, sizeof (double));
}

typedef struct {
    kf_bm25_t *index;
    kf_dict_t *seen;
} s_query_t;

static void
s_query_term (void *arg, const char *term, size_t len, kf_term_kind_t kind)
{
    (void) kind;
    s_query_t *query = arg;
    kf_bm25_t *self = query->index;
    if (kf_dict_get (query->seen, term, len))
        return;
    kf_dict_put (query->seen, term, len, (void *) 1);
    intptr_t id = (intptr_t) kf_dict_get (self->vocabulary, term, len) - 1;
    if (id < 0)
        return;
    s_term_t *t = &self->terms [id];
    for (int p = 0; p < t->count; p++) {
        int d = t->postings [p].doc;
        double tf = t->postings [p].tf;
        double norm = 1 - S_B + S_B * self->doc_length [d] / self->average_length;
        self->score [d] += t->idf * tf * (S_K1 + 1) / (tf + S_K1 * norm);
    }
}

int
kf_bm25_search (kf_bm25_t *self, const char *text, size_t len, int *items, double *scores, int max)
{
    if (!self->score)
        return 0;
    memset (self->score, 0, self->doc_count * sizeof (double));
    memset (self->item_score, 0, self->item_count * sizeof (double));
    s_query_t query = { self, kf_dict_new () };
    char *normalized = kf_text_normalize (text, len);
    kf_text_terms (normalized, strlen (normalized), s_query_term, &query);
    free (normalized);
    kf_dict_destroy (&query.seen);
    for (int d = 0; d < self->doc_count; d++)
        if (self->score [d] > self->item_score [self->doc_item [d]])
            self->item_score [self->doc_item [d]] = self->score [d];
    //  Selection of the best `max`, ties to the lower item number
    int count = 0;
    for (; count < max; count++) {
        int best = -1;
        for (int i = 0; i < self->item_count; i++)
            if (self->item_score [i] > 0
            && (best < 0 || self->item_score [i] > self->item_score [best]))
                best = i;
        if (best < 0)
            break;
        if (items)
            items [count] = best;
        if (scores)
            scores [count] = self->item_score [best];
        self->item_score [best] = 0;
    }
    return count;
}
