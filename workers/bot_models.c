/*  bot_models.c - the per-bot intent classifiers and chit-chat tables. See bot_models.h. */
#include "workers/bot_models.h"
#include "common/clock.h"
#include "common/dict.h"
#include "common/log.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    kf_intent_model_t *intents; //  NULL until the bot's first intent row
    kf_chitchat_t *chitchat;    //  NULL until its first chit-chat row
    double train_ms;            //  -1 when not trained
} s_bot_t;

struct _kf_bot_models_t {
    kf_dict_t *bots;            //  bot_id -> s_bot_t (owned)
};

kf_bot_models_t *
kf_bot_models_new (void)
{
    kf_bot_models_t *self = kf_calloc (1, sizeof *self);
    self->bots = kf_dict_new ();
    return self;
}

void
kf_bot_models_destroy (kf_bot_models_t **self_p)
{
    kf_bot_models_t *self = *self_p;
    if (!self)
        return;
    size_t cursor = 0;
    void *value;
    while (kf_dict_next (self->bots, &cursor, NULL, &value)) {
        s_bot_t *bot = value;
        kf_intent_model_destroy (&bot->intents);
        kf_chitchat_destroy (&bot->chitchat);
        free (bot);
    }
    kf_dict_destroy (&self->bots);
    free (self);
    *self_p = NULL;
}

static s_bot_t *
s_bot (kf_bot_models_t *self, const char *bot_id)
{
    s_bot_t *bot = kf_dict_get (self->bots, bot_id, strlen (bot_id));
    if (!bot) {
        bot = kf_calloc (1, sizeof *bot);
        bot->train_ms = -1;
        kf_dict_put (self->bots, bot_id, strlen (bot_id), bot);
    }
    return bot;
}

int
kf_bot_models_add_intent (kf_bot_models_t *self, const char *bot_id, const char *name,
                          const char **examples, int example_count, const char **keywords,
                          int keyword_count, const char **patterns, int pattern_count)
{
    s_bot_t *bot = s_bot (self, bot_id);
    //  Naive Bayes: the more accurate of the two on the held-out set, and twice as fast to train
    //  (BENCHMARKS.md, "Intent routing")
    if (!bot->intents)
        bot->intents = kf_intent_model_new (KF_INTENT_NAIVE_BAYES);
    return kf_intent_model_add (bot->intents, name, examples, example_count, keywords,
                                keyword_count, patterns, pattern_count) < 0 ? -1 : 0;
}

void
kf_bot_models_add_chitchat (kf_bot_models_t *self, const char *bot_id,
                            const char *const *questions, int count, const char *reply)
{
    s_bot_t *bot = s_bot (self, bot_id);
    if (!bot->chitchat)
        bot->chitchat = kf_chitchat_new ();
    kf_chitchat_add (bot->chitchat, questions, count, reply);
}

int
kf_bot_models_train (kf_bot_models_t *self, double *elapsed_ms)
{
    int trained = 0;
    double total = 0;
    size_t cursor = 0;
    void *value;
    while (kf_dict_next (self->bots, &cursor, NULL, &value)) {
        s_bot_t *bot = value;
        if (!bot->intents)
            continue;
        int64_t start = kf_mono_us ();
        if (kf_intent_model_train (bot->intents) == 0) {
            bot->train_ms = (kf_mono_us () - start) / 1000.0;
            total += bot->train_ms;
            trained++;
        }
        else
            kf_intent_model_destroy (&bot->intents);
    }
    if (elapsed_ms)
        *elapsed_ms = total;
    return trained;
}

double
kf_bot_models_train_ms (kf_bot_models_t *self, const char *bot_id)
{
    s_bot_t *bot = kf_dict_get (self->bots, bot_id, strlen (bot_id));
    return bot && bot->intents ? bot->train_ms : -1;
}

void
kf_bot_models_get (kf_bot_models_t *self, const char *bot_id, kf_bot_model_t *model)
{
    model->intents = NULL;
    model->chitchat = NULL;
    if (!self)
        return;
    s_bot_t *bot = kf_dict_get (self->bots, bot_id, strlen (bot_id));
    s_bot_t *fallback = kf_dict_get (self->bots, "default", 7);
    model->intents = bot && bot->intents ? bot->intents : fallback ? fallback->intents : NULL;
    model->chitchat = bot && bot->chitchat && kf_chitchat_size (bot->chitchat) ? bot->chitchat
                    : fallback ? fallback->chitchat : NULL;
}
