/*  kb_suggest.h - predictive input for the chat box: the standard questions of a knowledge base
    that start with, then contain, what the customer has typed so far (both normalized). Built from
    a finished index off the worker's loop; read-only afterwards; borrows the index's items, so it
    must be destroyed before the index. A search touches one posting list, never every question. */
#ifndef KF_KB_SUGGEST_H
#define KF_KB_SUGGEST_H
#include <stddef.h>
#include "workers/kb_index.h"

typedef struct _kf_kb_suggest_t kf_kb_suggest_t;

//  Builds the suggestions of every item in `index` (built). Never NULL.
kf_kb_suggest_t *kf_kb_suggest_new (kf_kb_index_t *index);

//  Frees it; nulls *self_p.
void kf_kb_suggest_destroy (kf_kb_suggest_t **self_p);

//  Fills up to `max` items of `bot_id` whose standard question starts with the normalized
//  `keyword` (in question order), then ones that contain it. Returns how many.
int kf_kb_suggest_find (kf_kb_suggest_t *self, const char *bot_id, const char *keyword, size_t len,
                        const kf_kb_item_t **items, int max);
#endif
