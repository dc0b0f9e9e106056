/*  kb_index.h - the in-memory retrieval index over a knowledge base: every standard and similar
    question of every answerable item (and, as weaker evidence, its keywords and answer text), CJK
    unigram and bigram terms plus latin words, scored with a calibrated confidence in [0, 1] (how
    much of the query the item explains, and how much of its best question the query has; BM25
    breaks ties). Each bot has its own term statistics, and its synonym groups rewrite its items and
    queries to one word per group. Built once per knowledge-base version, then read-only. */
#ifndef KF_KB_INDEX_H
#define KF_KB_INDEX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/rich_content.h"

typedef struct _kf_kb_index_t kf_kb_index_t;

//  One knowledge item as the index keeps it; all strings owned by the index.
typedef struct {
    int64_t id;                 //  Database id
    char *bot_id;
    char *external_id;          //  "" when none
    char *category;             //  Category path, "" when none
    char *question;             //  Standard question
    char *answer;               //  Default answer text
    char **similar;             //  Similar questions
    int similar_count;
    char **keywords;
    int keyword_count;
    kf_variant_t *answers;      //  [0] the default answer, then the label variants
    int answer_count;           //  At least 1
} kf_kb_item_t;

//  One search result; pointers are borrowed from the index.
typedef struct {
    const kf_kb_item_t *item;
    double confidence;          //  Retrieval score in [0, 1]: 1 is an exact match of a known
                                //  question; the same scale on every knowledge base
    double probability;         //  That it is the right answer, on this bot's knowledge base:
                                //  0 from the index, set by the pipeline (kb_calibration.h)
    double bm25;                //  Raw BM25 of the best matching question
    const char *matched;        //  The question (standard or similar) that matched best
} kf_kb_hit_t;

//  Creates an empty index. Never NULL.
kf_kb_index_t *kf_kb_index_new (void);

//  Destroys the index and its items; nulls *self_p.
void kf_kb_index_destroy (kf_kb_index_t **self_p);

//  Adds an item, taking over every string and array in it (heap allocated; `answers` may be NULL
//  and is then made from `answer` as plain text). Call kf_kb_index_build after the last add.
void kf_kb_index_add_item (kf_kb_index_t *self, kf_kb_item_t *item);

//  Adds a plain-text item, copying every string.
void kf_kb_index_add (kf_kb_index_t *self, int64_t id, const char *bot_id, const char *external_id,
                      const char *category, const char *question, const char *answer,
                      const char *const *similar, int similar_count);

//  Adds a synonym group of a bot: its words all mean words[0]. Call before adding that bot's items.
void kf_kb_index_add_synonyms (kf_kb_index_t *self, const char *bot_id, const char *const *words,
                               int count);

//  Computes term statistics and the lists searches use. Searching before building finds nothing;
//  items added after it are not found.
void kf_kb_index_build (kf_kb_index_t *self);

//  Number of items.
size_t kf_kb_index_size (kf_kb_index_t *self);

//  Item `index` (0 .. size - 1), borrowed from the index.
const kf_kb_item_t *kf_kb_index_item (kf_kb_index_t *self, size_t index);

//  Finds the best items of `bot_id` for the customer text `query` (raw; normalized here). Fills up to
//  `max_hits` hits, best first, one per item, and returns how many. Items below confidence 0.1 may
//  be left out. The work is bounded: words in more than 2,048 items stop looking for items once the
//  query's rarer words have found some, and at most 128 of the items found are scored in full. So
//  the hits are those of scoring every item whenever no more than 128 items share a word with the
//  query (always on a small knowledge base); on a large one, the reply made from them is the same
//  almost always (tests/bench/kb_bench --check measures it). Not thread-safe: a search uses scratch
//  space in the index.
int kf_kb_index_search (kf_kb_index_t *self, const char *bot_id, const char *query, size_t len,
                        kf_kb_hit_t *hits, int max_hits);

//  For tests: when set, searches score in full every item that shares a term with the query, with
//  no bound on the work (much slower on a large knowledge base).
void kf_kb_index_set_exhaustive (kf_kb_index_t *self, bool is_exhaustive);
#endif
