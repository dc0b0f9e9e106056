/*  bot_models.h - what each bot routes chat turns with (issue 5): its trained intent classifier and
    its chit-chat table, built by the knowledge-base loader from the `intents` and `chitchat` tables
    with each knowledge-base version, and swapped in by the worker together with the index.

    A bot with no intent rows of its own uses the `default` bot's model; a bot with no chit-chat
    rows of its own uses the `default` bot's table (the two fall back separately). A bot left with
    no model at all (no intents anywhere) is routed by the pipeline's rules (pipeline.h).

    Threads: filled and trained on the loader thread, then read-only: the worker's loop reads it
    while the loader builds the next one. Lookups allocate nothing. */
#ifndef KF_BOT_MODELS_H
#define KF_BOT_MODELS_H
#include "workers/chitchat.h"
#include "workers/intent_classifier.h"

typedef struct _kf_bot_models_t kf_bot_models_t;

//  What one bot routes with; both borrowed from the kf_bot_models_t, either may be NULL.
typedef struct {
    const kf_intent_model_t *intents;   //  Trained classifier, NULL: route by rules
    const kf_chitchat_t *chitchat;      //  Small-talk table, NULL: none
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

//  Trains the classifier of every bot that has intents. Returns how many were trained; the total
//  training time in milliseconds in *elapsed_ms (when not NULL).
int kf_bot_models_train (kf_bot_models_t *self, double *elapsed_ms);

//  The training time of bot `bot_id`'s own classifier in milliseconds, or -1 when it has none.
double kf_bot_models_train_ms (kf_bot_models_t *self, const char *bot_id);

//  Fills `model` for bot `bot_id`, with the default bot's parts where it has none of its own.
//  `self` may be NULL (nothing loaded yet): both parts NULL.
void kf_bot_models_get (kf_bot_models_t *self, const char *bot_id, kf_bot_model_t *model);
#endif
