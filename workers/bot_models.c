/*  bot_models.c - the per-bot intent classifiers, chit-chat tables and calibrations. See
    bot_models.h. */
#include "workers/bot_models.h"
#include "common/clock.h"
#include "common/dict.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include <stdlib.h>
#include <string.h>

//  deploy/default-intents.jsonl, embedded at build time
extern const char kf_default_intents [];

typedef struct {
    kf_intent_model_t *intents; //  NULL until the bot's first intent row or question
    bool has_own_intents;       //  Rows of its own (else the defaults are added at training)
    kf_chitchat_t *chitchat;    //  NULL until its first chit-chat row
    char **questions;           //  Knowledge questions to learn, until training
    int question_count, question_seen;
    kf_kb_calibration_t *calibration;
    double train_ms;            //  -1 when not trained
} s_bot_t;

struct _kf_bot_models_t {
    kf_dict_t *bots;            //  bot_id -> s_bot_t (owned)
    s_bot_t neutral;            //  The defaults alone, for bots with nothing of their own
};

//  Calls `fn` with each line of the defaults file, decoded
typedef void (s_line_fn) (void *arg, const msgpack_object *line);

static void
s_each_default (s_line_fn *fn, void *arg)
{
    for (const char *line = kf_default_intents; *line; ) {
        const char *end = strchr (line, '\n');
        size_t len = end ? (size_t) (end - line) : strlen (line);
        msgpack_unpacked unpacked;
        if (len && line [0] == '{' && kf_json_unpack_len (line, len, &unpacked)) {
            fn (arg, &unpacked.data);
            msgpack_unpacked_destroy (&unpacked);
        }
        line += len + (end != NULL);
    }
}

//  The strings of array `key` of `obj`, borrowed into `list` (at most `max`); returns the count
static int
s_strings (const msgpack_object *obj, const char *key, const char **list, char **owned, int max)
{
    const msgpack_object *array = kf_mp_get (obj, key);
    int count = 0;
    for (uint32_t i = 0; array && array->type == MSGPACK_OBJECT_ARRAY && i < array->via.array.size
                         && count < max; i++)
        if (array->via.array.ptr [i].type == MSGPACK_OBJECT_STR) {
            owned [count] = kf_strndup (array->via.array.ptr [i].via.str.ptr,
                                        array->via.array.ptr [i].via.str.size);
            list [count] = owned [count];
            count++;
        }
    return count;
}

#define S_LINE_MAX 128          //  Strings of one list of a defaults line

//  Where the defaults go: a model, a chit-chat table, or both (either may be NULL)
typedef struct {
    kf_intent_model_t *intents;
    kf_chitchat_t *chitchat;
} s_defaults_t;

//  Adds a defaults line to the model or the chit-chat table
static void
s_add_default (void *arg, const msgpack_object *line)
{
    s_defaults_t *bot = arg;
    const char *examples [S_LINE_MAX], *keywords [S_LINE_MAX];
    char *owned [2][S_LINE_MAX];
    char *name = kf_mp_dup_str (line, "intent");
    char *reply = kf_mp_dup_str (line, "reply");
    if (name && bot->intents) {
        int e = s_strings (line, "examples", examples, owned [0], S_LINE_MAX);
        int k = s_strings (line, "keywords", keywords, owned [1], S_LINE_MAX);
        kf_intent_model_add (bot->intents, name, examples, e, keywords, k, NULL, 0);
        for (int i = 0; i < e; i++)
            free (owned [0][i]);
        for (int i = 0; i < k; i++)
            free (owned [1][i]);
    }
    if (reply && bot->chitchat) {
        int q = s_strings (line, "chitchat", examples, owned [0], S_LINE_MAX);
        kf_chitchat_add (bot->chitchat, examples, q, reply);
        for (int i = 0; i < q; i++)
            free (owned [0][i]);
    }
    free (name);
    free (reply);
}

static void
s_bot_release (s_bot_t *bot)
{
    kf_intent_model_destroy (&bot->intents);
    kf_chitchat_destroy (&bot->chitchat);
    kf_kb_calibration_destroy (&bot->calibration);
    for (int q = 0; q < bot->question_count; q++)
        free (bot->questions [q]);
    free (bot->questions);
    bot->questions = NULL;
    bot->question_count = 0;
}

kf_bot_models_t *
kf_bot_models_new (void)
{
    kf_bot_models_t *self = kf_calloc (1, sizeof *self);
    self->bots = kf_dict_new ();
    self->neutral.train_ms = -1;
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
        s_bot_release (value);
        free (value);
    }
    s_bot_release (&self->neutral);
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

//  Naive Bayes: the more accurate of the two on the held-out set, and twice as fast to train
//  (BENCHMARKS.md, "Intent routing")
static kf_intent_model_t *
s_new_model (void)
{
    return kf_intent_model_new (KF_INTENT_NAIVE_BAYES);
}

int
kf_bot_models_add_intent (kf_bot_models_t *self, const char *bot_id, const char *name,
                          const char **examples, int example_count, const char **keywords,
                          int keyword_count, const char **patterns, int pattern_count)
{
    s_bot_t *bot = s_bot (self, bot_id);
    if (!bot->intents)
        bot->intents = s_new_model ();
    bot->has_own_intents = true;
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

void
kf_bot_models_add_questions (kf_bot_models_t *self, const char *bot_id,
                             const char *const *questions, int count)
{
    s_bot_t *bot = s_bot (self, bot_id);
    for (int q = 0; q < count; q++) {
        //  Past the cap, each question seen replaces a kept one at a fixed stride of the count:
        //  the questions learnt spread over the whole knowledge base, the same on every worker
        int at = bot->question_seen++;
        if (bot->question_count < KF_BOT_KB_EXAMPLES) {
            if ((bot->question_count & (bot->question_count - 1)) == 0)     //  0, 1, 2, 4, 8 ...
                bot->questions = kf_realloc (bot->questions,
                                             (bot->question_count ? bot->question_count * 2 : 1)
                                             * sizeof (char *));
            bot->questions [bot->question_count++] = kf_strdup (questions [q]);
        }
        else
        if (at % 7 == 0) {
            int slot = (at / 7) % KF_BOT_KB_EXAMPLES;
            free (bot->questions [slot]);
            bot->questions [slot] = kf_strdup (questions [q]);
        }
    }
}

void
kf_bot_models_set_calibration (kf_bot_models_t *self, const char *bot_id,
                               kf_kb_calibration_t **calibration)
{
    s_bot_t *bot = s_bot (self, bot_id);
    kf_kb_calibration_destroy (&bot->calibration);
    bot->calibration = *calibration;
    *calibration = NULL;
}

void
kf_bot_models_each_calibration (kf_bot_models_t *self, kf_bot_models_fn *fn, void *arg)
{
    size_t cursor = 0;
    const char *bot_id;
    void *value;
    while (kf_dict_next (self->bots, &cursor, &bot_id, &value)) {
        s_bot_t *bot = value;
        if (bot->calibration)
            fn (arg, bot_id, bot->calibration);
    }
}

//  Trains `bot`: the defaults when it has no intents of its own, then its questions
static bool
s_train (s_bot_t *bot)
{
    if (!bot->has_own_intents) {
        kf_intent_model_destroy (&bot->intents);
        bot->intents = s_new_model ();
        s_defaults_t defaults = { bot->intents, NULL };
        s_each_default (s_add_default, &defaults);
    }
    //  The bot's own intents keep the wording they claim; the defaults claim nothing
    const char *const *questions = (const char *const *) bot->questions;
    if (bot->question_count
    &&  (bot->has_own_intents
         ? kf_intent_model_add_questions (bot->intents, questions, bot->question_count)
         : kf_intent_model_add_examples (bot->intents, KF_INTENT_KNOWLEDGE, questions, bot->question_count)) < 0)
        kf_warn ("intents: no room for knowledge_qa beside %d intents", KF_INTENT_MAX);
    for (int q = 0; q < bot->question_count; q++)
        free (bot->questions [q]);
    free (bot->questions);
    bot->questions = NULL;
    bot->question_count = 0;
    int64_t start = kf_mono_us ();
    if (kf_intent_model_train (bot->intents) != 0) {
        kf_intent_model_destroy (&bot->intents);
        return false;
    }
    bot->train_ms = (kf_mono_us () - start) / 1000.0;
    return true;
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
        //  A bot with chit-chat rows alone shares the neutral model
        if (!bot->has_own_intents && !bot->question_count)
            continue;
        if (s_train (bot)) {
            total += bot->train_ms;
            trained++;
        }
    }
    self->neutral.chitchat = kf_chitchat_new ();
    s_defaults_t defaults = { NULL, self->neutral.chitchat };
    s_each_default (s_add_default, &defaults);
    s_train (&self->neutral);
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
    memset (model, 0, sizeof *model);
    if (!self)
        return;
    s_bot_t *bot = kf_dict_get (self->bots, bot_id, strlen (bot_id));
    model->intents = bot && bot->intents ? bot->intents : self->neutral.intents;
    model->has_own_intents = bot && bot->has_own_intents;
    model->chitchat = bot && bot->chitchat && kf_chitchat_size (bot->chitchat) ? bot->chitchat
                    : self->neutral.chitchat;
    model->calibration = bot ? bot->calibration : NULL;
}
