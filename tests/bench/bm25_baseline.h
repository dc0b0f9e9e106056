/*  bm25_baseline.h - plain BM25, the baseline kefu's retrieval is measured against: k1 1.2, b 0.75,
    over the character unigrams, bigrams and latin words of the normalized text (kf_text_normalize,
    kf_text_terms), every kind weighted alike, no confidence; an item scores its best question. */
#ifndef KF_BM25_BASELINE_H
#define KF_BM25_BASELINE_H
#include <stddef.h>

typedef struct _kf_bm25_t kf_bm25_t;

//  Creates an empty baseline index. Never NULL.
kf_bm25_t *kf_bm25_new (void);

//  Destroys the index; nulls *self_p.
void kf_bm25_destroy (kf_bm25_t **self_p);

//  Adds a question of item `item` (numbers from 0, any order). Call kf_bm25_build after the last.
void kf_bm25_add (kf_bm25_t *self, int item, const char *question);

//  Computes idf and the average question length.
void kf_bm25_build (kf_bm25_t *self);

//  Fills up to `max` best items for `query` (raw text), best first, one per item, and their scores
//  (either may be NULL); returns how many.
int kf_bm25_search (kf_bm25_t *self, const char *query, size_t len, int *items, double *scores,
                    int max);
#endif
