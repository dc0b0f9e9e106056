/*  kb_index.h - the in-memory retrieval index over a knowledge base: every standard and similar
    question of every on-shelf item, CJK unigram and bigram terms plus latin words, scored with BM25
    and a calibrated confidence in [0, 1]. Built once per knowledge-base version, then read-only. */
#ifndef KF_KB_INDEX_H
#define KF_KB_INDEX_H
#include <stddef.h>
#include <stdint.h>

typedef struct _kf_kb_index_t kf_kb_index_t;

//  One knowledge item as the index keeps it; all strings owned by the index.
typedef struct {
    int64_t id;                 //  Database id
    char *bot_id;
    char *external_id;          //  "" when none
    char *category;
    char *question;             //  Standard question
    char *answer;
    char **similar;             //  Similar questions
    int similar_count;
} kf_kb_item_t;

//  One search result; pointers are borrowed from the index.
typedef struct {
    const kf_kb_item_t *item;
    double confidence;          //  Calibrated: 1 is an exact match of a known question
    double bm25;                //  Raw BM25 of the best matching question
    const char *matched;        //  The question (standard or similar) that matched best
} kf_kb_hit_t;

//  Creates an empty index. Never NULL.
kf_kb_index_t *kf_kb_index_new (void);

//  Destroys the index and its items; nulls *self_p.
void kf_kb_index_destroy (kf_kb_index_t **self_p);

//  Adds an item, copying every string. Call kf_kb_index_build after the last add.
void kf_kb_index_add (kf_kb_index_t *self, int64_t id, const char *bot_id, const char *external_id,
                      const char *category, const char *question, const char *answer,
                      const char *const *similar, int similar_count);

//  Computes term statistics. Searching before building finds nothing.
void kf_kb_index_build (kf_kb_index_t *self);

//  Number of items.
size_t kf_kb_index_size (kf_kb_index_t *self);

//  Finds the best items of `bot_id` for the customer text `query` (raw; normalized here). Fills up to
//  `max_hits` hits, best first, one per item, and returns how many.
int kf_kb_index_search (kf_kb_index_t *self, const char *bot_id, const char *query, size_t len,
                        kf_kb_hit_t *hits, int max_hits);
#endif
