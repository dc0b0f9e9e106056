/*  bot_models.h - what each bot routes chat turns with: its trained intent classifier, its
    chit-chat table and the calibration of its knowledge base's scores, built by the knowledge-base
    loader from the `intents` and `chitchat` tables and the items with each knowledge-base version,
    and swapped in by the worker together with the index.

    Every bot's knowledge questions (standard and similar, at most KF_BOT_KB_EXAMPLES of them) are
    examples of its knowledge_qa, so the classifier learns what its customers ask. A bot with no
    intent rows of its own gets the domain-neutral defaults (deploy/default-intents.jsonl, built
    in: greetings and thanks, an explicit request for a person, anger, generic questions), never
    another bot's: the `default` bot's rows are the sample shop's. A bot with no chit-chat rows of
    its own gets the neutral table of that file. A bot with no knowledge base of its own shares
    one model of the defaults.

    Threads: filled and trained on the loader thread, then read-only: the worker's loop reads it
    while the loader builds the next one. Lookups allocate nothing. */
#ifndef KF_BOT_MODELS_H
#define KF_BOT_MODELS_H
#include "workers/chitchat.h"
#include "workers/intent_classifier.h"
#include "workers/kb_calibration.h"

#define KF_BOT_KB_EXAMPLES 4000         //  Knowledge questions a classifier learns from, at most

typedef struct _kf_bot_models_t kf_bot_models_t;

//  What one bot routes with; all borrowed from the kf_bot_models_t, any may be NULL.
typedef struct {
    const kf_intent_model_t *intents;   //  Trained classifier, NULL: route by rules
    const kf_chitchat_t *chitchat;      //  Small-talk table, NULL: none
    const kf_kb_calibration_t *calibration; //  Its knowledge base's, NULL: the default
    bool has_own_intents;               //  The bot's own rows, not the neutral defaults
} kf_bot_model_t;

//  Creates an empty set. Never NULL.
kf_bot_models_t *kf_bot_models_new (void);

//  Destroys the set, its models and tables, and nulls *self_p; NULL is fine.
void kf_bot_models_destroy (kf_bot_models_t **self_p);

//  Adds intent `name` of bot `bot_id` with its examples, keywords and patterns (copied). Before
//  kf_bot_models_train only. Returns 0, or -1 when the bot has KF_INTENT_MAX intents already or
//  this name twice (the row is skipped).
int kf_bot_models_add_intent (kf_bot_models_t *self, const char *bot_id, const char *name,
                              const char **examples, int example_count, const char **keywords,
                              int keyword_count, const char **patterns, int pattern_count);

//  Adds a chit-chat row of bot `bot_id` (kf_chitchat_add).
void kf_bot_models_add_chitchat (kf_bot_models_t *self, const char *bot_id,
                                 const char *const *questions, int count, const char *reply);

//  Adds knowledge questions of bot `bot_id` (copied) as knowledge_qa examples. Before training.
void kf_bot_models_add_questions (kf_bot_models_t *self, const char *bot_id,
                                  const char *const *questions, int count);

//  Gives bot `bot_id` the calibration of its knowledge base (taken over; *calibration nulled).
void kf_bot_models_set_calibration (kf_bot_models_t *self, const char *bot_id,
                                    kf_kb_calibration_t **calibration);

//  Calls `fn` with every bot that has a calibration, in no particular order.
typedef void (kf_bot_models_fn) (void *arg, const char *bot_id, const kf_kb_calibration_t *calibration);
void kf_bot_models_each_calibration (kf_bot_models_t *self, kf_bot_models_fn *fn, void *arg);

//  Trains the classifier of every bot (its own intents or the defaults, with its questions) and
//  the shared one of the defaults. Returns how many bots were trained; the total training time in
//  milliseconds in *elapsed_ms (when not NULL).
int kf_bot_models_train (kf_bot_models_t *self, double *elapsed_ms);

//  The training time of bot `bot_id`'s own classifier in milliseconds, or -1 when it has none.
double kf_bot_models_train_ms (kf_bot_models_t *self, const char *bot_id);

//  Fills `model` for bot `bot_id`, with the neutral defaults where it has none of its own.
//  `self` may be NULL (nothing loaded yet): every part NULL.
void kf_bot_models_get (kf_bot_models_t *self, const char *bot_id, kf_bot_model_t *model);
#endif
