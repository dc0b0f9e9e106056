/*  chitchat.h - a bot's small-talk table (issue 5, intent `chitchat`): rows of phrasings with one
    reply each, from the `chitchat` table of the database, matched without the knowledge base or an
    LLM. A message matches a row exactly when its normalized form (kf_intent_text_normalize: greetings
    and thanks kept as marker words) equals one of the row's phrasings; otherwise the nearest
    phrasing by character-bigram overlap (Dice coefficient over the sets of adjacent character
    pairs, a latin word counting as one character) wins when it reaches KF_CHITCHAT_NEAR. Below
    that the caller gives a generic friendly reply (KF_CHITCHAT_GENERIC_REPLY).

    Threads: built on the loader thread, then read-only; matching allocates nothing (fixed scratch
    on the stack; only the first KF_CHITCHAT_MAX_UNITS characters of a message count). */
#ifndef KF_CHITCHAT_H
#define KF_CHITCHAT_H
#include <stddef.h>

#define KF_CHITCHAT_NEAR 0.5            //  Least bigram overlap for a near match
#define KF_CHITCHAT_MAX_UNITS 48        //  Characters (latin words) of a message compared
#define KF_CHITCHAT_GENERIC_REPLY "您好，我是智能客服小快，很高兴为您服务。请问有什么可以帮您？"

typedef struct _kf_chitchat_t kf_chitchat_t;

//  Creates an empty table. Never NULL.
kf_chitchat_t *kf_chitchat_new (void);

//  Destroys the table and nulls *self_p; NULL is fine.
void kf_chitchat_destroy (kf_chitchat_t **self_p);

//  Adds a row: `count` phrasings (raw text, normalized here) and the reply (copied). Phrasings that
//  normalize to nothing are skipped; a row without phrasings or with an empty reply is ignored.
void kf_chitchat_add (kf_chitchat_t *self, const char *const *questions, int count, const char *reply);

//  Number of rows.
int kf_chitchat_size (const kf_chitchat_t *self);

//  The reply to `normal` (a kf_intent_text_normalize form), borrowed from the table, or NULL when
//  no phrasing equals it or comes within KF_CHITCHAT_NEAR. Sets *score (when not NULL) to 1 for
//  an exact match, else to the best overlap (0 when none).
const char *kf_chitchat_match (const kf_chitchat_t *self, const char *normal, double *score);
#endif
