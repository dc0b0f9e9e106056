/*  intent_stage.c - the intent of a chat turn: the bot's trained classifier, or rules for a bot
    without intents. See pipeline_stages.h. */
#include "workers/pipeline_stages.h"
#include "common/emotion.h"
#include "workers/chitchat.h"
#include "workers/intent_classifier.h"
#include <stdlib.h>
#include <string.h>

#define S_RULE_CHITCHAT_CONFIDENCE 0.9
#define S_RULE_DEFAULT_CONFIDENCE 0.5
#define S_TRANSFER_GUESS 0.5    //  A transfer the model guesses below this never stands

//  Rules for a bot without intents: the behaviour before issue 5, with the table from the database
static void
s_rules (kf_turn_t *turn)
{
    if (kf_intent_is_transfer (turn->message, turn->message_len)) {
        turn->intent = KF_INTENT_TRANSFER;
        turn->intent_confidence = 1.0;
        turn->is_intent_explicit = true;
        return;
    }
    char *normal = kf_intent_text_normalize (turn->message, turn->message_len);
    bool is_chitchat = kf_chitchat_match (turn->model.chitchat, normal, NULL) != NULL;
    free (normal);
    turn->intent = is_chitchat ? KF_INTENT_CHITCHAT : KF_INTENT_KNOWLEDGE;
    turn->intent_confidence = is_chitchat ? S_RULE_CHITCHAT_CONFIDENCE : S_RULE_DEFAULT_CONFIDENCE;
}

//  A clause is upset when it, or the message it is part of, scores in the upset band
static bool
s_is_upset (void *arg, const char *text, size_t len)
{
    const kf_turn_t *turn = arg;
    return turn->emotion_score < KF_EMOTION_UPSET_BELOW
        || kf_emotion_score (text, len) < KF_EMOTION_UPSET_BELOW;
}

//  True when `intent` fits the bot: business_query needs a business API or the bot's own examples
//  (the defaults' are there to be recognised, not answered: "查一下我的账单" of a bank without an
//  API is a question for its knowledge base)
static bool
s_fits (const kf_turn_t *turn, const char *intent)
{
    if (strcmp (intent, KF_INTENT_BUSINESS) == 0)
        return (turn->bot && turn->bot->business) || turn->model.has_own_intents;
    return true;
}

void
kf_stage_intent (kf_turn_t *turn)
{
    turn->query = turn->message;
    turn->query_len = turn->message_len;
    turn->sub_task_count = 0;
    turn->is_intent_explicit = false;
    const kf_intent_model_t *model = turn->model.intents;
    if (!model) {
        s_rules (turn);
        return;
    }
    kf_intent_result_t result;
    kf_intent_upset_t upset = { s_is_upset, turn, KF_STAGE_EMOTION_SURE, KF_INTENT_KNOWLEDGE,
                                KF_STAGE_RELABEL_CONFIDENCE };
    kf_intent_classify_checked (model, turn->message, turn->message_len, &upset, &result);
    turn->intent = result.intent >= 0 ? result.name : KF_INTENT_KNOWLEDGE;
    turn->intent_confidence = result.intent >= 0 ? result.confidence : S_RULE_DEFAULT_CONFIDENCE;
    turn->is_intent_explicit = result.intent >= 0 && result.source != KF_INTENT_BY_MODEL;
    //  A guess of the model never hands over alone ("义乌在哪个省?" read 0.21 transfer): it needs
    //  some confidence ("客户经理说可以帮我提额" read 0.32) and a message that names a person, not
    //  negated ("我不需要人工，发票怎么开"); a knowledge item that answers it still wins (the
    //  evidence stage), as it does not over a request in so many words (is_intent_explicit). A
    //  pattern of the bot's own ("转*人工") is words, but not negated ones ("不用转人工")
    bool is_by_rule = result.intent >= 0 && result.source == KF_INTENT_BY_OVERRIDE;
    bool is_sure = turn->intent_confidence >= S_TRANSFER_GUESS || result.source == KF_INTENT_BY_PATTERN;
    if (turn->intent && strcmp (turn->intent, KF_INTENT_TRANSFER) == 0 && !is_by_rule
    &&  (!is_sure || !kf_intent_names_person (turn->message, turn->message_len))) {
        turn->intent = KF_INTENT_KNOWLEDGE;
        turn->intent_confidence = KF_STAGE_RELABEL_CONFIDENCE;
        turn->is_intent_explicit = false;
    }
    //  A bot whose own intents lack transfer_to_human still hands over on "转人工"
    if (kf_intent_model_find (model, KF_INTENT_TRANSFER) < 0
    &&  kf_intent_is_transfer (turn->message, turn->message_len)) {
        turn->intent = KF_INTENT_TRANSFER;
        turn->intent_confidence = 1.0;
        turn->is_intent_explicit = true;
    }
    if (!s_fits (turn, turn->intent)) {
        turn->intent = KF_INTENT_KNOWLEDGE;
        turn->intent_confidence = KF_STAGE_RELABEL_CONFIDENCE;
    }
    for (int t = 0; t < result.sub_task_count; t++) {
        const char *name = kf_intent_model_name (model, result.sub_tasks [t]);
        bool fits = s_fits (turn, name);
        turn->sub_tasks [turn->sub_task_count++] = (kf_sub_task_t) {
            fits ? name : KF_INTENT_KNOWLEDGE, fits ? result.sub_confidence [t] : KF_STAGE_RELABEL_CONFIDENCE,
            turn->message + result.sub_offset [t], result.sub_len [t]
        };
    }
}

void
kf_stage_intent_focus (kf_turn_t *turn)
{
    for (int t = 0; t < turn->sub_task_count; t++) {
        const char *intent = turn->sub_tasks [t].intent;
        bool fits = turn->route == KF_ROUTE_EMPATHY ? strcmp (intent, KF_INTENT_EMOTION) != 0
                                                    && strcmp (intent, KF_INTENT_TRANSFER) != 0
                  : strcmp (intent, KF_INTENT_KNOWLEDGE) == 0 || strcmp (intent, KF_INTENT_BUSINESS) == 0;
        if (fits && turn->sub_tasks [t].text_len) {
            turn->query = turn->sub_tasks [t].text;
            turn->query_len = turn->sub_tasks [t].text_len;
            return;
        }
    }
}
