/*  kb_search.c - searching the retrieval index that kb_index.c builds (its structures are in
    kb_index_private.h): per bot, inverted lists to find items, forward lists to finish them.

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
    search fast on a large knowledge base. The KF_KI_MAX_COMPLETED items found that explain the most
    (all of them when there are no more) are then completed from their forward lists - the terms
    not taken, and the query's terms in each of their questions - and ranked. When no more items
    than that were found, the hits are exactly those of scoring everything, down to S_FLOOR: always
    so on a small knowledge base; on a large one the replies are the same almost always
    (tests/bench/kb_bench --check measures it). Comparisons use confidence^5 = query cover^3 * doc
    cover^2, so the loops need no pow. A search allocates nothing but the normalized text. */
#include "workers/kb_index.h"
#include "common/hash.h"
#include "workers/kb_index_private.h"
#include "common/log.h"
#include "common/text_norm.h"
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define S_K1 1.2
#define S_B  0.75
#define S_KEYWORD_EVIDENCE 0.8  //  Share of a query term an item explains with its keywords only
#define S_ANSWER_EVIDENCE  0.4  //  ... with its answer text only
#define S_ANSWER_SCALE     0.4  //  An answer text alone can suggest an item, never answer with it
#define S_UNSEEN_FACTOR    0.5  //  Unseen bigram of known characters, unseen latin word or number
#define S_FLOOR            0.1  //  Items below it reached only through common terms may be missing
#define S_LONG_LIST        2048 //  Items: a term in more no longer finds new items, once ...
#define S_RARE_SHARE       0.4  //  ... the rarer terms make up this share of the known weight
#define S_EPSILON          1e-9 //  Relative: scores this close are equal (summation order differs)

//  Bit sets over a bot's terms (bot->in_query, pending, answer_pending)
#define S_BIT(bits, i)      (((bits) [(i) >> 6] >> ((i) & 63)) & 1)
#define S_SET_BIT(bits, i)  ((bits) [(i) >> 6] |= (uint64_t) 1 << ((i) & 63))
#define S_CLEAR_BIT(bits, i) ((bits) [(i) >> 6] &= ~((uint64_t) 1 << ((i) & 63)))

//  True the first time the search sees unknown term `term` (by 64-bit hash)
static bool
s_unknown_is_new (kf_kb_index_t *self, const char *term, size_t len)
{
    uint64_t hash = kf_fnv1a (KF_FNV1A_BASIS, term, len) | 1;
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
    kf_ki_bot_t *bot = self->bot;
    intptr_t id = (intptr_t) kf_dict_get (bot->vocabulary, term, len) - 1;
    if (id < 0) {
        if (!s_unknown_is_new (self, term, len))
            return;
        double weight = bot->unknown_weight;
        if (kind == KF_TERM_WORD)
            weight *= S_UNSEEN_FACTOR;
        else
        if (kind == KF_TERM_BIGRAM) {
            int first = kf_ki_char_len (term, len);
            if (kf_dict_get (bot->vocabulary, term, first)
            &&  kf_dict_get (bot->vocabulary, term + first, len - first))
                weight *= S_UNSEEN_FACTOR;
        }
        self->query_weight += weight;
        return;
    }
    kf_ki_term_t *t = &bot->terms [id];
    if (t->stamp == self->stamp)
        return;
    t->stamp = self->stamp;
    S_SET_BIT (bot->in_query, id);
    self->query_weight += t->weight;
    if (self->query_count == self->query_capacity) {
        self->query_capacity = self->query_capacity ? self->query_capacity * 2 : 64;
        self->query = kf_realloc (self->query, self->query_capacity * sizeof (kf_ki_query_term_t));
    }
    self->query [self->query_count++] = (kf_ki_query_term_t) { (int) id, t->weight };
}

//  Collects the distinct terms of the query into self->query and its weight; false when it has none
static bool
s_read_query (kf_kb_index_t *self, const char *bot_id, const char *query, size_t len)
{
    self->query_count = 0;
    self->query_weight = 0;
    char *normalized = kf_ki_normalize (self, bot_id, query, len);
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
    const kf_ki_query_term_t *x = a, *y = b;
    return x->weight > y->weight ? -1 : x->weight < y->weight ? 1 : x->id - y->id;
}

//  Sorts the query's terms rarest first; insertion sort for the usual few
static void
s_sort_query (kf_ki_query_term_t *terms, int count)
{
    if (count > 32) {
        qsort (terms, count, sizeof (kf_ki_query_term_t), s_rarest_first);
        return;
    }
    for (int i = 1; i < count; i++) {
        kf_ki_query_term_t term = terms [i];
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
s_touch_item (kf_kb_index_t *self, kf_ki_entry_t *entry, int item)
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
s_score_item (kf_ki_entry_t *entry, double weight, int fields)
{
    entry->explained += weight * s_evidence [fields & 7];
    if (fields & KF_KI_IN_ANSWER)
        entry->answer += weight;
}

//  BM25 of question `d` for the query; 0 for no question
static double
s_doc_bm25 (kf_kb_index_t *self, int d)
{
    if (d < 0)
        return 0;
    const kf_ki_bot_t *bot = self->bot;
    const kf_ki_doc_t *doc = &self->docs [d];
    double norm = S_K1 * (1 - S_B + S_B * doc->length / bot->average_length), bm25 = 0;
    const uint32_t *list = self->doc_terms.data + doc->term_start;
    for (int e = 0; e < doc->term_count; e++) {
        int id = KF_KI_ID (list [e]);
        if (S_BIT (bot->in_query, id)) {
            double tf = KF_KI_LOW (list [e]);
            bm25 += bot->terms [id].weight * tf * (S_K1 + 1) / (tf + norm);
        }
    }
    return bm25;
}

//  BM25 of the best question of an item, computed when first needed (ties only)
static double
s_entry_bm25 (kf_kb_index_t *self, kf_ki_entry_t *entry)
{
    if (entry->bm25 < 0)
        entry->bm25 = s_doc_bm25 (self, entry->best_doc);
    return entry->bm25;
}

//  Offers question `d`, which has `matched` of the query's weight, as the best of its item: it
//  wins on a higher key, then as a question over the answer, then on a higher BM25, then as the
//  earlier question
static void
s_offer_doc (kf_kb_index_t *self, kf_ki_entry_t *entry, int d, double matched)
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
    kf_ki_entry_t *x = &self->entries [a], *y = &self->entries [b];
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
s_take_term (kf_kb_index_t *self, const kf_ki_term_t *t, bool with_answers)
{
    const uint32_t *postings = self->bot->item_postings + t->item_start;
    uint32_t count = t->asked_count + (with_answers ? t->answer_count : 0);
    double weight = t->weight;
    for (uint32_t p = 0; p < count; p++) {
        if (p + 16 < count)
            __builtin_prefetch (&self->entries [KF_KI_ID (postings [p + 16])]);
        int item = KF_KI_ID (postings [p]);
        kf_ki_entry_t *entry = &self->entries [item];
        s_touch_item (self, entry, item);
        s_score_item (entry, weight, KF_KI_LOW (postings [p]));
    }
}

//  Fetches an item's forward lists into the cache ahead of its completion
static void
s_prefetch_item (kf_kb_index_t *self, const kf_ki_entry_t *entry)
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
s_complete (kf_kb_index_t *self, kf_ki_entry_t *entry)
{
    const kf_ki_bot_t *bot = self->bot;
    const uint32_t *list = self->item_terms.data + entry->term_start;
    for (int e = 0; self->has_pending && e < entry->term_count; e++) {
        int id = KF_KI_ID (list [e]);
        if (S_BIT (bot->pending, id)
        || (S_BIT (bot->answer_pending, id) && KF_KI_LOW (list [e]) == KF_KI_IN_ANSWER))
            s_score_item (entry, bot->terms [id].weight, KF_KI_LOW (list [e]));
    }
    entry->key = s_answer_key (entry->answer / self->query_weight);
    entry->best_doc = -1;
    entry->bm25 = 0;
    for (int d = entry->first_doc; d < entry->first_doc + entry->doc_count; d++) {
        const kf_ki_doc_t *doc = &self->docs [d];
        list = self->doc_terms.data + doc->term_start;
        double matched = 0;
        for (int e = 0; e < doc->term_count; e++) {
            int id = KF_KI_ID (list [e]);
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
//  KF_KI_MAX_COMPLETED of them (all of them in exhaustive mode, then in self->touched_items);
//  returns the array and sets *count
static int *
s_candidates (kf_kb_index_t *self, int *count)
{
    if (self->is_exhaustive || self->touched_item_count <= KF_KI_MAX_COMPLETED) {
        *count = self->touched_item_count;
        return self->touched_items;
    }
    float *keys = self->candidate_keys;
    int *candidates = self->candidates, found = 0;
    for (int k = 0; k < self->touched_item_count; k++) {
        int item = self->touched_items [k];
        float key = (float) self->entries [item].explained;
        if (found < KF_KI_MAX_COMPLETED) {
            keys [found] = key;
            candidates [found++] = item;
            if (found == KF_KI_MAX_COMPLETED)
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

//  Max-heap of candidates by the key they can reach: restores the order below position `at`
static void
s_bound_down (double *bounds, int *items, int count, int at)
{
    while (true) {
        int child = 2 * at + 1;
        if (child >= count)
            return;
        if (child + 1 < count && bounds [child + 1] > bounds [child])
            child++;
        if (bounds [child] <= bounds [at])
            return;
        double bound = bounds [at];
        bounds [at] = bounds [child];
        bounds [child] = bound;
        int item = items [at];
        items [at] = items [child];
        items [child] = item;
        at = child;
    }
}

//  Completes and ranks the candidates, the highest reachable key first, until none left can
//  enter the best `max_hits`. What an item can reach: its query cover cubed (its doc cover is at
//  most 1), with every weight still pending counted in, or its answer key so; a candidate whose
//  reach the last of the best beats clearly cannot tie with it either, so the hits are those of
//  completing them all. Returns how many hits `self->best` holds
static int
s_complete_best (kf_kb_index_t *self, const int *candidates, int count, double pending, int max_hits)
{
    if (count > self->bound_capacity) {
        self->bound_capacity = count;
        self->bounds = kf_realloc (self->bounds, count * sizeof (double));
        self->bound_items = kf_realloc (self->bound_items, count * sizeof (int));
    }
    double *bounds = self->bounds, w = self->query_weight;
    int *items = self->bound_items;
    //  The pending weight comes from subtractions, a few ulps off: never below 0, and every bound
    //  a little above the key it bounds
    pending = pending > 0 ? pending : 0;
    for (int c = 0; c < count; c++) {
        const kf_ki_entry_t *entry = &self->entries [candidates [c]];
        double cover = s_min1 ((entry->explained + pending) / w);
        double question = cover * cover * cover;
        double answer = s_answer_key ((entry->answer + pending) / w);
        bounds [c] = (question > answer ? question : answer) * (1 + 8 * DBL_EPSILON);
        items [c] = candidates [c];
    }
    for (int at = count / 2 - 1; at >= 0; at--)
        s_bound_down (bounds, items, count, at);
    int found = 0;
    while (count > 0) {
        //  Exhaustive (tests): every candidate completed, so the early stop is checked against it
        if (found == max_hits && !self->is_exhaustive
        &&  s_beats (self->entries [self->best [max_hits - 1]].key, bounds [0]))
            break;
        int item = items [0];
        for (int child = 1; child <= 2 && child < count; child++)
            s_prefetch_item (self, &self->entries [items [child]]);     //  The next, likely
        bounds [0] = bounds [count - 1];
        items [0] = items [count - 1];
        s_bound_down (bounds, items, --count, 0);
        s_complete (self, &self->entries [item]);
        s_rank (self, self->best, &found, max_hits, item);
    }
    return found;
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
    int b = kf_ki_bot (self, bot_id, false);
    if (b < 0)
        return 0;
    kf_ki_bot_t *bot = self->bot = &self->bots [b];
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
    kf_ki_query_term_t *terms = self->query;
    int count = self->query_count;
    s_sort_query (terms, count);
    double untaken = 0, put_off = 0;    //  Weight of the terms not taken, of the answers put off
    for (int q = 0; q < count; q++)
        untaken += terms [q].weight;
    double known = untaken, w = self->query_weight, floor_key = pow (S_FLOOR, 5);
    int taken = 0;
    for (; taken < count; taken++) {
        const kf_ki_term_t *t = &bot->terms [terms [taken].id];
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
    found = s_complete_best (self, candidates, candidate_count, untaken + put_off, max_hits);
    for (int h = 0; h < found; h++) {
        int item = self->best [h];
        kf_ki_entry_t *entry = &self->entries [item];
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
