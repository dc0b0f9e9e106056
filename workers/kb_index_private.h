/*  kb_index_private.h - the retrieval index's structures, packing macros and shared helpers, for
    kb_index.c (construction) and kb_search.c (search) only: no other file includes it. Per bot: a
    vocabulary, inverted lists over the terms (CJK characters, CJK bigrams, latin words) of every
    question, keyword and answer, and the same terms as forward lists per question and per item,
    so a search can both find items and finish them. */
#ifndef KF_KB_INDEX_PRIVATE_H
#define KF_KB_INDEX_PRIVATE_H
#include "workers/kb_index.h"
#include "common/dict.h"
#include "common/utf8.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Packed list entries: an id in the high 28 bits, 4 bits of detail (term frequency or fields);
//  forward lists are in order of first occurrence, inverted lists in order of item
#define KF_KI_PACK(id, low)     (((uint32_t) (id) << 4) | (uint32_t) (low))
#define KF_KI_ID(entry)         ((int) ((entry) >> 4))
#define KF_KI_LOW(entry)        ((int) ((entry) & 15))
#define KF_KI_MAX_ID            ((1 << 28) - 1)

//  Items completed from forward lists per search at most (the build sizes the scratch space)
#define KF_KI_MAX_COMPLETED     128

//  Where in an item a term occurs
enum { KF_KI_IN_QUESTION = 1, KF_KI_IN_KEYWORD = 2, KF_KI_IN_ANSWER = 4 };

typedef struct {
    double weight;              //  idf over the bot's items; set by the build
    uint32_t item_start;        //  Postings in bot->item_postings (KF_KI_PACK (item, fields)): ...
    uint32_t asked_count;       //  ... first the items with it in a question or keyword, then ...
    uint32_t answer_count;      //  ... those with it only in their answer
    unsigned stamp;             //  Search that last saw it in its query
    //  While adding: the last question and item that had it, and its entry in their forward lists
    int added_doc, added_item;
    uint32_t doc_slot, item_slot;
} kf_ki_term_t;

//  One bot's knowledge base: its own vocabulary, statistics and lists
typedef struct {
    char *bot_id;
    kf_dict_t *vocabulary;      //  Term text -> term id + 1
    kf_ki_term_t *terms;
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
} kf_ki_bot_t;

//  A question
typedef struct {
    int item;
    float inverse_weight;       //  1 / the sum of the weights of its distinct terms (0: no terms)
    uint32_t term_start;        //  Forward list in self->doc_terms: KF_KI_PACK (term, tf)
    int term_count;
    int length;                 //  Terms, with repeats
} kf_ki_doc_t;

//  An item: where its lists are, and what a search keeps on it (one cache line)
typedef struct {
    int first_doc, doc_count;   //  Its questions are consecutive documents ...
    uint32_t doc_terms;         //  ... with consecutive forward lists from here, ...
    int doc_term_count;         //  ... this many entries
    uint32_t term_start;        //  Its forward list in self->item_terms: KF_KI_PACK (term, fields)
    int term_count;
    unsigned stamp;             //  Search that touched it
    int best_doc;               //  Its best question, -1 for its answer
    double key;                 //  Its key (confidence^5), once completed
    double explained;           //  Query weight it explains
    double answer;              //  Query weight its answer has
    double bm25;                //  Of best_doc; -1 until needed (ties only)
} kf_ki_entry_t;
_Static_assert (sizeof (kf_ki_entry_t) == 64, "an item's search state fills one cache line");

//  A synonym: `from` (normalized) is rewritten to `to` in a bot's items and queries
typedef struct kf_ki_synonym_t {
    char *bot_id, *from, *to;
    size_t from_len;
    struct kf_ki_synonym_t *next;   //  Next rule with the same first character, longest first
} kf_ki_synonym_t;

//  A distinct known term of the query being searched
typedef struct {
    int id;
    double weight;
} kf_ki_query_term_t;

//  A growable array of packed entries
typedef struct {
    uint32_t *data;
    size_t count, capacity;
} kf_ki_entries_t;

struct _kf_kb_index_t {
    kf_dict_t *synonyms;        //  First character of `from` -> kf_ki_synonym_t list; NULL: none
    kf_ki_synonym_t **rules;    //  Every rule, to free them
    int synonym_count;
    kf_dict_t *bot_ids;         //  Bot id -> bot index + 1
    kf_ki_bot_t *bots;
    int bot_count;
    kf_kb_item_t *items;
    kf_ki_entry_t *entries;     //  Parallel to items
    int item_count, item_capacity;
    kf_ki_doc_t *docs;
    const char **doc_texts;     //  Parallel to docs: the question (borrowed from its item)
    int doc_count, doc_capacity;
    kf_ki_entries_t doc_terms, item_terms;  //  Forward lists
    bool is_built, is_exhaustive;
    //  While adding: the field of the text being added, and its question (-1: not a question)
    uint8_t field;
    int doc;
    //  Scratch space for searches, stamped per search instead of cleared
    kf_ki_bot_t *bot;
    unsigned stamp;
    int *touched_items, touched_item_count;
    int *best;                  //  The best items, best first
    int best_capacity;
    float *candidate_keys;      //  Items to complete: a min-heap by what they explain so far
    int *candidates;
    double *bounds;             //  Candidates to complete: a max-heap by the key each can reach
    int *bound_items, bound_capacity;
    bool has_pending;           //  Terms or answer-only postings are left to completion
    kf_ki_query_term_t *query;
    int query_count, query_capacity;
    double query_weight;
    uint64_t *unknown;          //  Hashes of the query's unknown terms (open addressing, 0 free)
    size_t unknown_capacity;
};

//  Length in bytes of the character at `s` (1 for a byte that starts none)
static inline int
kf_ki_char_len (const char *s, size_t len)
{
    uint32_t cp;
    int n = kf_utf8_decode (s, len, &cp);
    return n > 0 ? n : 1;
}

//  Normalizes `text` and rewrites the bot's synonyms to their group's first word. Caller frees.
char *kf_ki_normalize (kf_kb_index_t *self, const char *bot_id, const char *text, size_t len);

//  The bot's index in self->bots, or -1 when it has none (`create`: then a new empty one)
int kf_ki_bot (kf_kb_index_t *self, const char *bot_id, bool create);
#endif
