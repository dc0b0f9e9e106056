/*  pipeline.c - one chat turn: parse the job, run the stages in order, compose the answer of the
    route, decide the handoff. The stages' contracts are in pipeline.h; packing is pipeline_pack.c. */
#include "workers/pipeline.h"
#include "common/emotion.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/text_norm.h"
#include "workers/pipeline_stages.h"
#include "workers/ticket_dialog.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A dialog yields to another request only when the classifier is this sure of it
#define S_SIDE_CONFIDENCE 0.5
//  A ticket dialog starts on a guess this sure, or on words that name a ticket: "火星上能送货吗"
//  reads 0.34 ticket to the model and is a question
#define S_TICKET_SURE 0.5
//  A question about tickets ("怎么报修") goes to the knowledge base when it matches an item this well
#define S_TICKET_ABOUT 0.35
//  The model's chitchat below this stands only when the chit-chat table knows the message
#define S_CHITCHAT_SURE 0.5
#define S_LOOKUP_SURE 0.5       //  A lookup the bot cannot make, guessed below this, is a question
//  Small talk the chit-chat table does not know goes to the knowledge base when an item matches
//  it this well ("你们几点下班": the opening hours), and gets the generic reply below ("今天天气怎么样")
#define S_CHITCHAT_KB 0.45
//  Counters of the context are clamped to this: the result says failed_attempts + 1, and a
//  context stored by hand or by another version may hold any integer
#define S_COUNT_MAX 1000000

static void s_wrap_reply (kf_turn_t *turn, const char *head, const char *tail);

static const char *s_no_answer =
    "抱歉，我暂时没有找到这个问题的答案。您可以换个说法再问一次，或者输入“转人工”联系人工客服。";
static const char *s_suggest_intro = "抱歉，我不太确定您的意思，您是不是想问：";
static const char *s_empathy_prefix = "非常抱歉给您带来不便。";
//  A business query of a bot without a business API that the knowledge base does not answer
static const char *s_no_api_order =
    "抱歉，我这里暂时查不到订单 %s 的实时信息。如需查询，请输入“转人工”，人工客服会为您处理。";
static const char *s_no_api =
    "抱歉，我这里暂时查不到订单、物流或退款的实时信息。如需查询，请输入“转人工”，人工客服会为您处理。";
static const char *s_empathy_apology =
    "您反映的问题我已经记录下来了，如需人工客服协助处理，请输入“转人工”，我们会尽快为您解决。";

void
kf_pipeline_config_defaults (kf_pipeline_config_t *config)
{
    config->suggest_threshold = 0.25;
    config->sure_threshold = 0.80;
}

bool
kf_pipeline_is_answer (double threshold, const kf_kb_hit_t *hits, int count)
{
    //  The margin to the runner-up is in the probability: "积分" matching several items equally
    //  is unlikely to be right, and asking beats guessing
    return count > 0 && hits [0].probability >= threshold;
}

void
kf_pipeline_calibrate (const kf_kb_calibration_t *calibration, kf_kb_hit_t *hits, int count)
{
    //  Never above the hit ranked before it
    for (int i = 0; i < count; i++) {
        double p = kf_kb_calibration_probability (calibration, hits, count, i);
        hits [i].probability = i > 0 && p > hits [i - 1].probability ? hits [i - 1].probability : p;
    }
}

static bool
s_is (const char *intent, const char *name)
{
    return strcmp (intent, name) == 0;
}

static int64_t
s_clamp_count (int64_t value)
{
    return value < 0 ? 0 : value > S_COUNT_MAX ? S_COUNT_MAX : value;
}

//  Reads the job's params and context into the turn
static void
s_read_job (kf_turn_t *turn, const kf_wp_job_t *job)
{
    turn->message = job->message.data ? job->message.data : "";
    turn->message_len = job->message.len;
    const char *bot_id = job->bot_id.data ? job->bot_id.data : "default";
    size_t bot_len = job->bot_id.data ? job->bot_id.len : 7;
    //  The broker admits at most 64 characters; a longer id is cut, and so matches no bot (never
    //  another bot's knowledge base)
    if (bot_len >= sizeof turn->bot_id)
        bot_len = sizeof turn->bot_id - 1;
    memcpy (turn->bot_id, bot_id, bot_len);
    turn->failed_attempts = s_clamp_count (job->failed_attempts);
    turn->repeat_count = s_clamp_count (job->repeat_count);
    kf_handoff_config_defaults (&turn->handoff);
    if (job->has_handoff)
        kf_handoff_config_apply (&turn->handoff, &job->handoff);
    //  The broker checked both; a job made by hand may hold anything, so each is clamped
    turn->top_k = job->has_top_k && job->top_k >= 1 && job->top_k <= KF_TOP_K_MAX
                ? (int) job->top_k : KF_PIPELINE_HITS;
    turn->suggest_max = job->has_suggestions && job->suggestions >= 0
                        && job->suggestions <= KF_SUGGESTIONS_MAX
                      ? (int) job->suggestions : KF_SUGGESTIONS_DEFAULT;
    turn->target_precision = job->has_target_precision && job->target_precision >= 0.5
                             && job->target_precision <= 1
                           ? job->target_precision : KF_CAL_DEFAULT_TARGET;
    kf_slots_read (&turn->slots, job->slots);
    turn->labels = job->labels;
    //  The broker scores a message its answer cache holds; it passes the score on (the same
    //  function of the same text)
    turn->emotion_score = job->has_emotion_score && job->emotion_score >= 0 && job->emotion_score <= 1
                        ? job->emotion_score : -1;
}

//  Stage: entities. Order and phone numbers of this message, remembered in the slots so a later
//  turn ("那它的物流到哪了？") can use them
static void
s_stage_entities (kf_turn_t *turn)
{
    kf_entity_rules_t rules = { turn->bot ? turn->bot->order_pattern : NULL };
    kf_entities_extract (&rules, turn->message, turn->message_len, &turn->found);
    if (turn->found.has_order_no)
        snprintf (turn->slots.order_no, sizeof turn->slots.order_no, "%s", turn->found.order_no);
    if (turn->found.has_phone)
        snprintf (turn->slots.phone, sizeof turn->slots.phone, "%s", turn->found.phone);
}

//  Stage: evidence. The knowledge base's best item, when it answers the message, wins over what
//  the model guessed (small talk, a business query, a ticket, upset): "退货寄回的地址是什么？" is a
//  question of the knowledge base whatever the model reads in it. The customer's own words still
//  decide: a request for a person in so many words and an upset message (the empathy route
//  answers with the item too) always; an order or phone number for a bot with a business API and
//  words that name a ticket (报修, 投诉, 工单) unless the message is a known question word for word.
//  A dialog waiting for an answer, and a message with two requests, are the route's to judge.
static void
s_stage_evidence (kf_turn_t *turn)
{
    const char *intent = turn->intent;
    if (!kf_pipeline_is_answer (turn->answer_threshold, turn->hits, turn->hit_count)
    ||  s_is (intent, KF_INTENT_KNOWLEDGE) || (s_is (intent, KF_INTENT_TRANSFER) && turn->is_intent_explicit)
    ||  turn->sub_task_count > 0 || kf_slots_is_awaiting (&turn->slots) || turn->slots.has_draft)
        return;
    bool is_upset = turn->emotion_score < KF_EMOTION_UPSET_BELOW;
    if (s_is (intent, KF_INTENT_EMOTION) && is_upset)
        return;
    if (turn->hits [0].probability < 1) {
        if (s_is (intent, KF_INTENT_BUSINESS) && turn->bot && turn->bot->business
        &&  (turn->found.has_order_no || turn->found.has_phone))
            return;
        if (s_is (intent, KF_INTENT_TICKET)
        &&  (kf_ticket_type_guess (turn->message, turn->message_len)
             || memmem (turn->message, turn->message_len, "工单", strlen ("工单"))))
            return;
    }
    turn->intent = KF_INTENT_KNOWLEDGE;
    turn->intent_confidence = turn->hits [0].probability;
}

//  Stage: retrieve. Every message is looked up: the route is decided with the knowledge base's
//  evidence. Searches `text` into hits (as many as asked for, at least KF_PIPELINE_HITS) and sets
//  their probabilities
static void
s_search (kf_turn_t *turn, kf_kb_index_t *kb, const char *text, size_t len)
{
    //  As many as the candidates and the suggestions need: suggestions do not depend on top_k
    int wanted = turn->top_k > KF_PIPELINE_HITS ? turn->top_k : KF_PIPELINE_HITS;
    wanted = turn->suggest_max > wanted ? turn->suggest_max : wanted;
    turn->hit_count = kb ? kf_kb_index_search (kb, turn->bot_id, text, len, turn->hits, wanted) : 0;
    kf_pipeline_calibrate (turn->model.calibration, turn->hits, turn->hit_count);
}

//  The bot's chit-chat table's reply to the message, or NULL when it knows none (borrowed)
static const char *
s_chitchat_reply (const kf_turn_t *turn)
{
    char *normal = kf_intent_text_normalize (turn->message, turn->message_len);
    const char *reply = kf_chitchat_match (turn->model.chitchat, normal, NULL);
    free (normal);
    return reply;
}

//  True when `text` asks how, where or how long (怎么报修, 投诉电话是多少): about a thing, not for it
static bool
s_asks_how (const char *text, size_t len)
{
    static const char *markers [] = {
        "怎么", "怎样", "如何", "咋", "流程", "步骤", "哪里", "在哪", "哪儿", "多久", "多长时间",
        "电话", "方式", "渠道", "入口", "需要什么", "要什么", "几点", "几天", "什么时候", "?", "？",
        "吗", NULL
    };
    for (int m = 0; markers [m]; m++)
        if (memmem (text, len, markers [m], strlen (markers [m])))
            return true;
    return false;
}

//  The ticket dialog's part of the route: true when a waiting or starting dialog took the turn
//  (its question, or the ticket). A ticket is asked for, not asked about: "宽带坏了怎么报修" is a
//  question the knowledge base may answer; a weak guess without ticket words is a question too
static bool
s_route_ticket (kf_turn_t *turn)
{
    bool is_about = s_asks_how (turn->message, turn->message_len) && turn->hit_count
                 && turn->hits [0].confidence >= S_TICKET_ABOUT;
    if (s_is (turn->intent, KF_INTENT_TICKET) && !turn->slots.has_draft
    &&  (is_about || (turn->intent_confidence < S_TICKET_SURE
                      && !kf_ticket_type_guess (turn->message, turn->message_len)
                      && !memmem (turn->message, turn->message_len, "工单", strlen ("工单"))))) {
        turn->intent = KF_INTENT_KNOWLEDGE;
        turn->intent_confidence = KF_STAGE_RELABEL_CONFIDENCE;
    }
    bool is_ticket = s_is (turn->intent, KF_INTENT_TICKET);
    if (!turn->slots.has_draft && !is_ticket)
        return false;
    bool is_other = turn->slots.has_draft && !is_ticket && !s_is (turn->intent, KF_INTENT_CHITCHAT)
                 && turn->intent_confidence >= S_SIDE_CONFIDENCE;
    kf_ticket_step_t step = kf_ticket_dialog_step (&turn->slots, turn->message, turn->message_len,
                                                   &turn->found, is_other, &turn->reply);
    if (step == KF_TICKET_SIDE) {
        turn->reminder = kf_ticket_dialog_reminder (&turn->slots);
        return false;
    }
    if (!is_ticket) {                   //  The dialog, not the model, decided
        turn->intent = KF_INTENT_TICKET;
        turn->intent_confidence = 1.0;
    }
    turn->route = KF_ROUTE_TICKET;
    turn->has_ticket = step == KF_TICKET_COMPLETE;
    if (turn->has_ticket)
        turn->reply = kf_strdup ("");
    return true;
}

//  Guesses of the model that the message does not bear out become questions: upset needs the
//  lexicon's agreement (the model reads "现在有什么活动" as upset: 什么), small talk the table's or
//  some confidence ("是停水了吗" read 0.40 chitchat), a lookup the bot cannot make some confidence
//  or an order or phone number ("车开了六年了，年检怎么办" read 0.27 business_query)
static void
s_relabel_weak (kf_turn_t *turn)
{
    bool is_calm = s_is (turn->intent, KF_INTENT_EMOTION) && turn->emotion_score >= KF_EMOTION_UPSET_BELOW
                && turn->sub_task_count == 0;
    bool is_unsure_talk = s_is (turn->intent, KF_INTENT_CHITCHAT)
                       && turn->intent_confidence < S_CHITCHAT_SURE && !s_chitchat_reply (turn);
    bool is_unsure_lookup = s_is (turn->intent, KF_INTENT_BUSINESS) && !(turn->bot && turn->bot->business)
                         && !turn->is_intent_explicit && turn->intent_confidence < S_LOOKUP_SURE
                         && !turn->found.has_order_no && !turn->found.has_phone;
    if (is_calm || is_unsure_talk || is_unsure_lookup) {
        turn->intent = KF_INTENT_KNOWLEDGE;
        turn->intent_confidence = KF_STAGE_RELABEL_CONFIDENCE;
    }
}

//  Stage: route. A waiting or starting ticket dialog takes the message (unless it asks for a
//  person in so many words, or is plainly another request: then the draft waits and a reminder
//  follows the answer); otherwise the intent decides
static void
s_stage_route (kf_turn_t *turn)
{
    turn->was_awaiting = kf_slots_is_awaiting (&turn->slots);
    //  The model's transfer_to_human is a guess ("电话 13800138000" reads 0.90 transfer: 电话 is
    //  in its examples): a waiting dialog takes the message when it answers the question
    if (s_is (turn->intent, KF_INTENT_TRANSFER) && (turn->is_intent_explicit || !turn->was_awaiting)) {
        turn->route = KF_ROUTE_TRANSFER;
        return;
    }
    if (s_route_ticket (turn))
        return;
    if (s_is (turn->intent, KF_INTENT_TRANSFER)) {  //  Not an answer: the request stands
        free (turn->reminder);
        turn->reminder = NULL;
        turn->route = KF_ROUTE_TRANSFER;
        return;
    }
    s_relabel_weak (turn);
    const char *intent = turn->intent;
    if (s_is (intent, KF_INTENT_CHITCHAT))
        turn->route = KF_ROUTE_CHITCHAT;
    else
    if (s_is (intent, KF_INTENT_EMOTION))
        turn->route = KF_ROUTE_EMPATHY;
    else
    if (s_is (intent, KF_INTENT_BUSINESS) && turn->bot && turn->bot->business)
        turn->route = KF_ROUTE_BUSINESS;
    else
        turn->route = KF_ROUTE_KNOWLEDGE;
    kf_stage_intent_focus (turn);
}

//  Stage: retrieve, the other requests of a message with sub_tasks that the knowledge base
//  answers ("我要退货，顺便查下物流" without a business API: both clauses are questions for it)
static void
s_retrieve_sub_tasks (kf_turn_t *turn, kf_kb_index_t *kb)
{
    bool has_api = turn->bot && turn->bot->business;
    for (int t = 0; t < turn->sub_task_count; t++) {
        const kf_sub_task_t *task = &turn->sub_tasks [t];
        bool is_question = s_is (task->intent, KF_INTENT_KNOWLEDGE)
                        || (s_is (task->intent, KF_INTENT_BUSINESS) && !has_api);
        bool is_focus = task->text == turn->query && task->text_len == turn->query_len;
        if (is_question && task->text_len && !is_focus) {
            turn->sub_hit_count [t] = kf_kb_index_search (kb, turn->bot_id, task->text,
                                                          task->text_len, turn->sub_hits [t], 2);
            kf_pipeline_calibrate (turn->model.calibration, turn->sub_hits [t], turn->sub_hit_count [t]);
        }
    }
}

void
kf_pipeline_prepare (kf_turn_t *turn, const kf_pipeline_config_t *config,
                     const kf_pipeline_env_t *env, const kf_wp_job_t *job)
{
    (void) config;
    memset (turn, 0, sizeof *turn);
    s_read_job (turn, job);
    turn->bot = env->server ? kf_config_bot (env->server, turn->bot_id) : NULL;
    turn->llm_mode = turn->bot && turn->bot->upstream ? turn->bot->llm : KF_LLM_OFF;
    kf_bot_models_get (env->models, turn->bot_id, &turn->model);
    turn->answer_threshold = kf_kb_calibration_threshold (turn->model.calibration,
                                                          turn->target_precision);
    //  Stage: emotion, of the raw text (punctuation and particles are cues); the intent stage
    //  checks the model's emotion_sensitive clauses against it
    if (turn->emotion_score < 0)
        turn->emotion_score = kf_emotion_score (turn->message, turn->message_len);
    kf_stage_intent (turn);
    s_stage_entities (turn);
    s_search (turn, env->kb, turn->message, turn->message_len);
    s_stage_evidence (turn);
    s_stage_route (turn);
    //  The route may answer one clause of a message with two requests: that clause is looked up
    bool is_focused = turn->query != turn->message || turn->query_len != turn->message_len;
    if (is_focused)
        s_search (turn, env->kb, turn->query, turn->query_len);
    if (env->kb && turn->route != KF_ROUTE_CHITCHAT)
        s_retrieve_sub_tasks (turn, env->kb);
}

//  The knowledge answer: the item above the threshold, else an apology with suggestions
static void
s_answer_knowledge (kf_turn_t *turn, const kf_pipeline_config_t *config)
{
    turn->confidence = turn->hit_count ? turn->hits [0].probability : 0;
    if (kf_pipeline_is_answer (turn->answer_threshold, turn->hits, turn->hit_count)) {
        turn->source = turn->hits [0].item;
        turn->answer = &turn->source->answers [kf_variant_pick (turn->source->answers,
                                                                turn->source->answer_count,
                                                                turn->labels)];
        turn->reply = kf_strdup (turn->answer->answer);
        turn->is_answered = true;
        //  A sure answer depends on the message, the labels and the version only: cacheable
        //  when nothing else shaped it (kf_pipeline_answer)
        turn->is_cacheable = turn->hits [0].confidence >= config->sure_threshold;
        return;
    }
    for (int i = 0; i < turn->hit_count && turn->suggestion_count < turn->suggest_max; i++)
        if (turn->hits [i].confidence >= config->suggest_threshold)
            turn->suggestions [turn->suggestion_count++] = turn->hits [i].item->question;
    if (turn->suggestion_count == 0) {
        turn->reply = kf_strdup (s_no_answer);
        return;
    }
    size_t size = strlen (s_suggest_intro) + 16;
    for (int i = 0; i < turn->suggestion_count; i++)
        size += strlen (turn->suggestions [i]) + 16;
    turn->reply = kf_malloc (size);
    size_t used = snprintf (turn->reply, size, "%s", s_suggest_intro);
    for (int i = 0; i < turn->suggestion_count; i++)
        used += snprintf (turn->reply + used, size - used, "\n%d. %s", i + 1, turn->suggestions [i]);
}

//  A business query no API answers and the knowledge base does not either: say so, and how to
//  reach a person, instead of guessing at questions ("订单号是 ORD-2024-001" is no question for
//  the knowledge base). Still unanswered: it counts towards failed_attempts
static void
s_answer_without_api (kf_turn_t *turn)
{
    free (turn->reply);
    turn->suggestion_count = 0;
    if (*turn->slots.order_no) {
        size_t size = strlen (s_no_api_order) + strlen (turn->slots.order_no);
        turn->reply = kf_malloc (size);
        snprintf (turn->reply, size, s_no_api_order, turn->slots.order_no);
    }
    else
        turn->reply = kf_strdup (s_no_api);
}

//  The other requests of the message (kf_pipeline_prepare searched their clauses): each one the
//  knowledge base answers follows the first answer, its item a source too (counts as answered
//  when any request was); a business request of a bot with an API asks for the order number
//  when none is known (the API's ask_reply).
static void
s_answer_sub_tasks (kf_turn_t *turn)
{
    const kf_business_config_t *api = turn->bot ? turn->bot->business : NULL;
    for (int t = 0; t < turn->sub_task_count && turn->also_count < KF_INTENT_MAX_SUBTASKS; t++) {
        if (api && s_is (turn->sub_tasks [t].intent, KF_INTENT_BUSINESS)) {
            //  The API answers a turn of its own: say what it needs when it lacks it (the next
            //  message then gives it and is answered); a known order number waits for that turn.
            //  On the business route this turn is that turn: the stage asks itself
            if (turn->route == KF_ROUTE_BUSINESS)
                continue;
            kf_business_vars_t vars = { turn->slots.order_no, turn->slots.phone, NULL, NULL, turn->bot_id };
            if (!kf_business_has_required (api, &vars)) {
                char *ask = kf_business_reply (api->ask_reply, NULL, &vars);
                s_wrap_reply (turn, NULL, ask);
                free (ask);
            }
            continue;
        }
        const kf_kb_hit_t *hits = turn->sub_hits [t];
        if (!kf_pipeline_is_answer (turn->answer_threshold, hits, turn->sub_hit_count [t]))
            continue;
        bool is_new = hits [0].item != turn->source;
        for (int a = 0; a < turn->also_count; a++)
            is_new &= hits [0].item != turn->also [a].item;
        if (!is_new)
            continue;
        const kf_kb_item_t *item = hits [0].item;
        const kf_variant_t *answer = &item->answers [kf_variant_pick (item->answers,
                                                                      item->answer_count, turn->labels)];
        turn->also [turn->also_count++] = hits [0];
        s_wrap_reply (turn, NULL, answer->answer);
        turn->is_answered = true;
    }
}

//  Replaces heap text *text (may be NULL) with `head` + text + blank line + `tail` (either may be
//  NULL)
static void
s_wrap_text (char **text, const char *head, const char *tail)
{
    const char *body = *text ? *text : "";
    size_t size = (head ? strlen (head) : 0) + strlen (body) + (tail ? strlen (tail) + 2 : 0) + 1;
    char *wrapped = kf_malloc (size);
    snprintf (wrapped, size, "%s%s%s%s", head ? head : "", body, tail && *body ? "\n\n" : "",
              tail ? tail : "");
    free (*text);
    *text = wrapped;
}

static void
s_wrap_reply (kf_turn_t *turn, const char *head, const char *tail)
{
    s_wrap_text (&turn->reply, head, tail);
}

//  The business route: the other requests' knowledge answers, kept in business_tail for the
//  business stage to put after the API's answer (the stand-in reply stays as it is)
static void
s_answer_business_tail (kf_turn_t *turn)
{
    char *stand_in = turn->reply;
    bool was_answered = turn->is_answered;
    turn->reply = NULL;
    s_answer_sub_tasks (turn);
    turn->business_tail = turn->reply;
    turn->reply = stand_in;
    turn->is_answered = was_answered;
}

//  An upset customer: an empathetic prefix, then the answer to the question underneath, or an
//  apology that the problem is recorded and a person can help. Unanswered without an item. The
//  prefix promises no person: a turn that hands over replaces the whole reply (s_stage_handoff)
static void
s_answer_empathy (kf_turn_t *turn, const kf_pipeline_config_t *config)
{
    const char *prefix = kf_emotion_reply_no_transfer (turn->emotion_score);
    s_answer_knowledge (turn, config);
    if (!turn->source) {
        free (turn->reply);
        turn->reply = kf_strdup (s_empathy_apology);
        turn->suggestion_count = 0;
        turn->confidence = turn->intent_confidence;
    }
    s_wrap_reply (turn, *prefix ? prefix : s_empathy_prefix, NULL);
}

static void
s_answer_chitchat (kf_turn_t *turn, const kf_pipeline_config_t *config)
{
    const char *reply = s_chitchat_reply (turn);
    bool has_match = turn->hit_count && turn->hits [0].confidence >= S_CHITCHAT_KB
                  && turn->suggest_max > 0;
    if (!reply && (turn->llm_mode != KF_LLM_OFF || has_match)) {
        //  Small talk the table does not know ("你们几点下班"): a bot with an LLM lets it answer,
        //  and the knowledge base's near items beat the generic reply
        turn->intent = KF_INTENT_KNOWLEDGE;
        turn->intent_confidence = KF_STAGE_RELABEL_CONFIDENCE;
        turn->route = KF_ROUTE_KNOWLEDGE;
        s_answer_knowledge (turn, config);
        return;
    }
    turn->reply = kf_strdup (reply ? reply : KF_CHITCHAT_GENERIC_REPLY);
    turn->is_answered = true;
}

//  Stage: handoff. Decides the reason (handoff.h); a turn that escalates says so instead of its
//  answer, drops a ticket draft (a person takes over) and is never cached
static void
s_stage_handoff (kf_turn_t *turn, bool goes_elsewhere)
{
    if (turn->has_ticket)
        return;                 //  The ticket is the help; whoever reads it follows up
    //  Small talk and dialog answers ("好的", a phone number) are not questions to count. A
    //  ticket dialog is no reason to hand over for emotion: a complaint is upset by nature
    //  ("我要投诉，快递员态度太差了" scores 0.05), and the ticket gets a person on it
    bool is_question = turn->route != KF_ROUTE_CHITCHAT && turn->route != KF_ROUTE_TICKET;
    //  Unhappy is not angry: "次卧wifi信号很差" gets an empathetic answer, "你们这网速也太差了吧！"
    //  a person (kf_emotion_is_anger); the second look costs a few microseconds, on upset turns only
    double emotion = turn->route == KF_ROUTE_TICKET ? 1 : turn->emotion_score;
    if (emotion < turn->handoff.emotion_below && !kf_emotion_is_anger (turn->message, turn->message_len))
        emotion = 1;
    kf_handoff_turn_t facts = {
        .is_transfer = turn->route == KF_ROUTE_TRANSFER,
        .emotion_score = emotion,
        .repeat_count = is_question ? turn->repeat_count : 0,
        .is_answered = turn->is_answered || goes_elsewhere, .failed_attempts = turn->failed_attempts
    };
    turn->handoff_reason = kf_handoff_decide (&turn->handoff, &facts);
    if (turn->handoff_reason == KF_HANDOFF_NONE)
        return;
    turn->escalate_to_human = true;
    free (turn->reply);
    turn->reply = kf_strdup (kf_handoff_reply (turn->handoff_reason));
    free (turn->reminder);
    free (turn->business_tail);
    turn->reminder = turn->business_tail = NULL;
    turn->source = NULL;
    turn->answer = NULL;
    turn->also_count = 0;
    turn->suggestion_count = 0;
    turn->is_cacheable = false;
    kf_slots_clear_draft (&turn->slots);
}

void
kf_pipeline_answer (kf_turn_t *turn, const kf_pipeline_config_t *config)
{
    turn->confidence = turn->intent_confidence;
    switch (turn->route) {
        case KF_ROUTE_TRANSFER:
            turn->reply = kf_strdup (kf_handoff_reply (KF_HANDOFF_KEYWORD));
            turn->is_answered = true;
            break;
        case KF_ROUTE_TICKET:
            turn->is_answered = true;           //  The dialog's question or the ticket
            //  A dialog never hands over for emotion: its apology promises no person
            if (!turn->has_ticket && turn->emotion_score < KF_EMOTION_UPSET_BELOW)
                s_wrap_reply (turn, kf_emotion_reply_no_transfer (turn->emotion_score), NULL);
            break;
        case KF_ROUTE_CHITCHAT:
            s_answer_chitchat (turn, config);
            break;
        case KF_ROUTE_EMPATHY:
            s_answer_empathy (turn, config);
            break;
        case KF_ROUTE_BUSINESS:
        case KF_ROUTE_KNOWLEDGE:
            //  Business: the knowledge answer stands in until the business stage replaces it
            s_answer_knowledge (turn, config);
            //  A lookup the bot cannot make says so when it names an order or a phone, or the
            //  knowledge base has nothing near; else its "did you mean" may be what was meant
            //  ("退的钱怎么还没到账": how long refunds take)
            if (turn->route == KF_ROUTE_KNOWLEDGE && s_is (turn->intent, KF_INTENT_BUSINESS)
            &&  !turn->is_answered
            &&  (turn->found.has_order_no || turn->found.has_phone || turn->suggestion_count == 0))
                s_answer_without_api (turn);
            break;
    }
    bool is_dialog = turn->was_awaiting || turn->slots.has_draft;
    //  An LLM (knowledge turns) or the business API still answers: not a failure yet
    bool goes_elsewhere = turn->route == KF_ROUTE_BUSINESS || kf_pipeline_needs_llm (turn, turn->llm_mode);
    //  An LLM answers the first request alone, as before (its reply replaces this one)
    if (!goes_elsewhere && (turn->route == KF_ROUTE_KNOWLEDGE || turn->route == KF_ROUTE_EMPATHY))
        s_answer_sub_tasks (turn);
    else
    if (turn->route == KF_ROUTE_BUSINESS)
        s_answer_business_tail (turn);
    s_stage_handoff (turn, goes_elsewhere);
    if (turn->reminder && turn->route == KF_ROUTE_BUSINESS)
        s_wrap_text (&turn->business_tail, NULL, turn->reminder);  //  After the API's answer
    if (turn->reminder)
        s_wrap_reply (turn, NULL, turn->reminder);
    turn->is_cacheable = turn->is_cacheable && turn->sub_task_count == 0 && !is_dialog
                      && turn->top_k == KF_PIPELINE_HITS
                      && turn->route == KF_ROUTE_KNOWLEDGE && s_is (turn->intent, KF_INTENT_KNOWLEDGE);
}

bool
kf_pipeline_needs_llm (const kf_turn_t *turn, kf_llm_mode_t mode)
{
    if (turn->route != KF_ROUTE_KNOWLEDGE || !s_is (turn->intent, KF_INTENT_KNOWLEDGE)
    ||  turn->escalate_to_human || turn->was_awaiting || turn->slots.has_draft)
        return false;
    return mode == KF_LLM_ALWAYS || (mode == KF_LLM_FALLBACK && !turn->is_answered);
}

bool
kf_pipeline_needs_business (const kf_turn_t *turn)
{
    return turn->route == KF_ROUTE_BUSINESS && !turn->escalate_to_human;
}

void
kf_pipeline_use_llm (kf_turn_t *turn, const kf_pipeline_config_t *config)
{
    turn->is_llm = true;
    turn->is_cacheable = false;
    turn->context_count = 0;
    while (turn->context_count < turn->hit_count && turn->context_count < KF_CONTEXT_MAX
    &&     turn->hits [turn->context_count].confidence >= config->suggest_threshold)
        turn->context_count++;
}

void
kf_turn_release (kf_turn_t *turn)
{
    free (turn->normalized);
    free (turn->reply);
    free (turn->reminder);
    free (turn->business_tail);
    kf_slots_release (&turn->slots);
    turn->normalized = turn->reply = turn->reminder = turn->business_tail = NULL;
}
