/*  pipeline.c - normalize, intent, retrieve and answer for one chat turn. */
#include "workers/pipeline.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/text_norm.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Small talk answered without the knowledge base. A later issue makes this table editable per bot.
static const struct {
    const char *text;           //  Normalized message
    const char *reply;
} s_chitchat [] = {
    { "",          "您好，我是智能客服小快，请问有什么可以帮您？" },
    { "hi",        "您好，我是智能客服小快，请问有什么可以帮您？" },
    { "hello",     "您好，我是智能客服小快，请问有什么可以帮您？" },
    { "在不在",    "在的，请问有什么可以帮您？" },
    { "你是谁",    "我是本店的智能客服小快，可以帮您查询订单、物流、退换货、发票、优惠券等问题。" },
    { "你是机器人", "我是本店的智能客服小快，遇到解决不了的问题，您可以输入“转人工”联系人工客服。" },
    { "再见",      "感谢您的咨询，祝您生活愉快，再见！" },
    { "拜拜",      "感谢您的咨询，祝您生活愉快，再见！" },
    { "好的",      "好的，还有其他问题随时问我。" },
    { "没有了",    "好的，感谢您的咨询，祝您购物愉快！" },
    { "thanks",    "不客气，很高兴能帮到您！" },
    { "thank you", "不客气，很高兴能帮到您！" },
};

static const char *s_transfer_words [] = {
    "转人工", "人工客服", "找人工", "真人客服", "人工服务", "接人工", "要人工", NULL
};

static const char *s_no_answer =
    "抱歉，我暂时没有找到这个问题的答案。您可以换个说法再问一次，或者输入“转人工”联系人工客服。";
static const char *s_suggest_intro = "抱歉，我不太确定您的意思，您是不是想问：";
static const char *s_transfer_reply = "好的，正在为您转接人工客服，请稍候。";

void
kf_pipeline_config_defaults (kf_pipeline_config_t *config)
{
    config->answer_threshold = 0.45;
    config->suggest_threshold = 0.25;
    config->sure_threshold = 0.80;
    config->ambiguity_margin = 0.06;
}

bool
kf_pipeline_is_answer (const kf_pipeline_config_t *config, const kf_kb_hit_t *hits, int count)
{
    if (count == 0 || hits [0].confidence < config->answer_threshold)
        return false;
    if (hits [0].confidence >= config->sure_threshold || count == 1)
        return true;
    //  "积分" matches several items equally: asking beats guessing
    return hits [0].confidence - hits [1].confidence >= config->ambiguity_margin;
}

//  True for a message that only thanks us ("谢谢！", "感谢您")
static bool
s_is_thanks (kf_turn_t *turn)
{
    //  "谢谢" is a filler, so only an empty normalized text needs the raw one to tell it from "你好"
    if (strcmp (turn->normalized, "感谢") == 0 || strcmp (turn->normalized, "感谢您") == 0)
        return true;
    return !*turn->normalized && memmem (turn->message, turn->message_len, "谢", 3) != NULL;
}

//  Stage: intent. Rules only for now: an explicit request for a person, small talk, else a question.
//  Rules read the normalized text only ("轉人工" is "转人工"): the broker's answer cache keys on it,
//  so two messages with the same normalized text must always be routed the same way.
static void
s_stage_intent (kf_turn_t *turn)
{
    turn->intent = "knowledge_qa";
    turn->intent_confidence = 0.5;
    for (int i = 0; s_transfer_words [i]; i++)
        if (memmem (turn->normalized, strlen (turn->normalized), s_transfer_words [i],
                    strlen (s_transfer_words [i]))) {
            turn->intent = "transfer_to_human";
            turn->intent_confidence = 1.0;
            return;
        }
    //  "你好" and "谢谢" are fillers, so a message of only greetings or thanks normalizes to ""
    for (size_t i = 0; i < sizeof s_chitchat / sizeof s_chitchat [0]; i++)
        if (strcmp (turn->normalized, s_chitchat [i].text) == 0 || s_is_thanks (turn)) {
            turn->intent = "chitchat";
            turn->intent_confidence = 0.9;
            return;
        }
}

void
kf_pipeline_prepare (kf_turn_t *turn, const kf_pipeline_config_t *config, kf_kb_index_t *kb,
                     const msgpack_object *job)
{
    (void) config;
    memset (turn, 0, sizeof *turn);
    const msgpack_object *params = kf_mp_get (job, "params");
    const msgpack_object *context = kf_mp_get (job, "context");
    if (!kf_mp_str (kf_mp_get (params, "message"), &turn->message, &turn->message_len)) {
        turn->message = "";
        turn->message_len = 0;
    }
    const char *bot_id;
    size_t bot_len;
    if (!kf_mp_str (kf_mp_get (params, "bot_id"), &bot_id, &bot_len))
        bot_id = "default", bot_len = 7;
    //  The broker admits at most 64 characters; a longer id is cut, and so matches no bot (never
    //  another bot's knowledge base)
    if (bot_len >= sizeof turn->bot_id)
        bot_len = sizeof turn->bot_id - 1;
    memcpy (turn->bot_id, bot_id, bot_len);
    turn->failed_attempts = kf_mp_get_int (context, "failed_attempts", 0);
    turn->labels = kf_mp_get (params, "labels");
    //  Stage: normalize
    turn->normalized = kf_text_normalize (turn->message, turn->message_len);
    s_stage_intent (turn);
    //  Stage: retrieve
    if (kb && strcmp (turn->intent, "knowledge_qa") == 0)
        turn->hit_count = kf_kb_index_search (kb, turn->bot_id, turn->message, turn->message_len,
                                              turn->hits, KF_PIPELINE_HITS);
}

static const char *
s_chitchat_reply (kf_turn_t *turn)
{
    if (s_is_thanks (turn))
        return "不客气，很高兴能帮到您！还有其他问题随时问我。";
    for (size_t i = 0; i < sizeof s_chitchat / sizeof s_chitchat [0]; i++)
        if (strcmp (turn->normalized, s_chitchat [i].text) == 0)
            return s_chitchat [i].reply;
    return "不客气，很高兴能帮到您！";
}

//  Stage: answer. Knowledge item above the threshold, else an apology with suggestions.
void
kf_pipeline_answer (kf_turn_t *turn, const kf_pipeline_config_t *config)
{
    turn->confidence = turn->intent_confidence;
    if (strcmp (turn->intent, "transfer_to_human") == 0) {
        turn->reply = kf_strdup (s_transfer_reply);
        turn->escalate_to_human = true;
        turn->is_answered = true;
        return;
    }
    if (strcmp (turn->intent, "chitchat") == 0) {
        turn->reply = kf_strdup (s_chitchat_reply (turn));
        turn->is_answered = true;
        return;
    }
    turn->confidence = turn->hit_count ? turn->hits [0].confidence : 0;
    if (kf_pipeline_is_answer (config, turn->hits, turn->hit_count)) {
        turn->source = turn->hits [0].item;
        turn->answer = &turn->source->answers [kf_variant_pick (turn->source->answers,
                                                                turn->source->answer_count,
                                                                turn->labels)];
        turn->reply = kf_strdup (turn->answer->answer);
        turn->is_answered = true;
        //  A sure answer depends on the message, the labels and the version only: cacheable
        turn->is_cacheable = turn->confidence >= config->sure_threshold;
        return;
    }
    for (int i = 0; i < turn->hit_count && turn->suggestion_count < KF_SUGGESTIONS_MAX; i++)
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

bool
kf_pipeline_needs_llm (const kf_turn_t *turn, kf_llm_mode_t mode)
{
    if (strcmp (turn->intent, "knowledge_qa") != 0)
        return false;
    return mode == KF_LLM_ALWAYS || (mode == KF_LLM_FALLBACK && !turn->is_answered);
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
kf_pipeline_pack_source (msgpack_packer *pk, const kf_kb_hit_t *hit)
{
    const kf_kb_item_t *item = hit->item;
    msgpack_pack_map (pk, 5);
    kf_mp_pack_kv_int (pk, "id", item->id);
    kf_mp_pack_kv_str (pk, "external_id", item->external_id);
    kf_mp_pack_kv_str (pk, "question", item->question);
    kf_mp_pack_kv_str (pk, "category", item->category);
    kf_mp_pack_kv_double (pk, "score", hit->confidence);
}

int
kf_pipeline_pack_meta_fields (kf_turn_t *turn, msgpack_packer *pk)
{
    if (!pk)
        return 5;
    kf_mp_pack_kv_str (pk, "intent", turn->intent);
    kf_mp_pack_kv_double (pk, "confidence", turn->confidence);
    kf_mp_pack_cstr (pk, "sources");
    if (turn->is_llm) {
        msgpack_pack_array (pk, turn->context_count);
        for (int i = 0; i < turn->context_count; i++)
            kf_pipeline_pack_source (pk, &turn->hits [i]);
    }
    else
    if (turn->source) {
        msgpack_pack_array (pk, 1);
        kf_pipeline_pack_source (pk, &turn->hits [0]);
    }
    else
        msgpack_pack_array (pk, 0);
    int suggestions = turn->is_llm ? 0 : turn->suggestion_count;
    kf_mp_pack_cstr (pk, "suggestions");
    msgpack_pack_array (pk, suggestions);
    for (int i = 0; i < suggestions; i++)
        kf_mp_pack_cstr (pk, turn->suggestions [i]);
    kf_mp_pack_kv_bool (pk, "escalate_to_human", turn->escalate_to_human && !turn->is_llm);
    return 5;
}

//  Packs what the broker's answer cache keeps: the key's parts and every answer of the item
static void
s_pack_cache (kf_turn_t *turn, msgpack_packer *pk)
{
    const kf_kb_item_t *item = turn->source;
    msgpack_pack_map (pk, 3);
    kf_mp_pack_kv_str (pk, "question", turn->normalized);
    kf_mp_pack_kv_int (pk, "kb_version", turn->kb_version);
    kf_mp_pack_cstr (pk, "answers");
    msgpack_pack_array (pk, item->answer_count);
    for (int i = 0; i < item->answer_count; i++) {
        const kf_variant_t *answer = &item->answers [i];
        msgpack_pack_map (pk, 4);
        kf_mp_pack_cstr (pk, "labels");
        msgpack_pack_map (pk, answer->label_count);
        for (int l = 0; l < answer->label_count; l++) {
            kf_mp_pack_cstr (pk, answer->labels [l].key);
            kf_mp_pack_cstr (pk, answer->labels [l].value);
        }
        kf_mp_pack_kv_str (pk, "answer", answer->answer);
        kf_mp_pack_kv_str (pk, "response_type", answer->response_type);
        kf_mp_pack_cstr (pk, "response_content");
        kf_variant_pack_content (answer, pk);
    }
}

void
kf_pipeline_pack_result (kf_turn_t *turn, msgpack_packer *pk)
{
    bool is_cached = turn->is_cacheable && turn->source && turn->kb_version > 0;
    msgpack_pack_map (pk, 5 + is_cached + kf_pipeline_pack_meta_fields (turn, NULL));
    kf_mp_pack_kv_str (pk, "reply", turn->reply ? turn->reply : "");
    kf_mp_pack_kv_str (pk, "response_type", turn->answer ? turn->answer->response_type : "text");
    kf_mp_pack_cstr (pk, "response_content");
    if (turn->answer)
        kf_variant_pack_content (turn->answer, pk);
    else
        msgpack_pack_nil (pk);
    kf_pipeline_pack_meta_fields (turn, pk);
    kf_mp_pack_kv_int (pk, "failed_attempts", turn->is_answered ? 0 : turn->failed_attempts + 1);
    kf_mp_pack_cstr (pk, "usage");
    msgpack_pack_map (pk, 3);
    kf_mp_pack_kv_int (pk, "prompt_tokens", 0);
    kf_mp_pack_kv_int (pk, "completion_tokens", 0);
    kf_mp_pack_kv_int (pk, "total_tokens", 0);
    if (is_cached) {
        kf_mp_pack_cstr (pk, "cache");
        s_pack_cache (turn, pk);
    }
}

void
kf_turn_release (kf_turn_t *turn)
{
    free (turn->normalized);
    free (turn->reply);
    turn->normalized = turn->reply = NULL;
}

void
kf_pipeline_pack_token (msgpack_sbuffer *body, const char *text, size_t len)
{
    msgpack_sbuffer_init (body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_str (&pk, "event", "token");
    kf_mp_pack_cstr (&pk, "content");
    kf_mp_pack_str (&pk, text, len);
}

void
kf_pipeline_pack_failure (msgpack_sbuffer *body, const kf_error_t *err)
{
    msgpack_sbuffer_init (body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_bool (&pk, "ok", false);
    kf_mp_pack_cstr (&pk, "error");
    kf_error_pack (&pk, err);
}
