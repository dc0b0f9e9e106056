/*  test_answer.c - the answer decision over real processes: a broker and two workers with the
    sample shop in the default bot and a bank's credit-card FAQ (tests/data/domains/bank) in a bot
    of its own, which has no intents of its own. Exact similar questions are answered with
    confidence 1 on both; a request for a person that is negated is answered, not handed over;
    the bank bot never answers with the shop's order-lookup text; candidates come ranked, as many
    as top_k asks, and a bad top_k is refused; the answer settings and the measured quality show
    in bot.get and stats. */
#include "harness.h"
#include "common/clock.h"
#include "common/json_codec.h"
#include "common/log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_BANK KEFU_SOURCE_DIR "/tests/data/domains/bank/kb.jsonl"

//  A chat of `bot` in a new session; the reply is the caller's
static kf_reply_t *
s_ask (kf_client_t *client, const char *bot, const char *message)
{
    kf_reply_t *reply = h_call (client, "chat", "{\"bot_id\":\"%s\",\"message\":\"%s\",\"user_id\":\"ua\"}",
                                bot, message);
    CHECK (reply->ok);
    return reply;
}

//  The first similar question of the bank item `external_id` (heap)
static char *
s_bank_similar (const char *external_id, int index)
{
    FILE *file = fopen (S_BANK, "r");
    CHECK (file);
    char line [8192];
    char *found = NULL;
    while (!found && fgets (line, sizeof line, file)) {
        msgpack_unpacked item;
        if (!kf_json_unpack (line, &item))
            continue;
        if (kf_mp_str_eq (&item.data, "external_id", external_id)) {
            const msgpack_object *similar = kf_mp_get (&item.data, "similar_questions");
            CHECK (similar && similar->type == MSGPACK_OBJECT_ARRAY && (int) similar->via.array.size > index);
            found = kf_strndup (similar->via.array.ptr [index].via.str.ptr,
                                similar->via.array.ptr [index].via.str.size);
        }
        msgpack_unpacked_destroy (&item);
    }
    fclose (file);
    CHECK (found);
    return found;
}

//  The bank's knowledge base in bot "bank", waited for until workers answer from it
static void
s_import_bank (kf_harness_t *h, kf_client_t *client)
{
    const char *args [] = { "kb", "import", S_BANK, "--bot", "bank", NULL };
    CHECK_INT (h_kefuctl (h, args), 0);
    char *question = s_bank_similar ("bank-002", 0);
    int64_t deadline = kf_mono_ms () + 10000;
    while (true) {
        kf_reply_t *reply = s_ask (client, "bank", question);
        bool is_loaded = kf_mp_get_double (reply->result, "confidence", 0) >= 1.0;
        kf_reply_destroy (&reply);
        if (is_loaded)
            break;
        CHECK (kf_mono_ms () < deadline);
        h_sleep_ms (50);
    }
    free (question);
}

//  An exact question answers with its item, confidence exactly 1, as knowledge_qa
static void
s_check_exact (kf_client_t *client, const char *bot, const char *question, const char *external_id)
{
    kf_reply_t *reply = s_ask (client, bot, question);
    const msgpack_object *sources = kf_mp_get (reply->result, "sources");
    if (!(sources && sources->via.array.size >= 1
          && strcmp (h_str (&sources->via.array.ptr [0], "external_id"), external_id) == 0))
        fprintf (stderr, "%s: %s (intent %s)\n", question, h_str (reply->result, "reply"),
                 h_str (reply->result, "intent"));
    CHECK (sources && sources->via.array.size >= 1);
    CHECK_STR (h_str (&sources->via.array.ptr [0], "external_id"), external_id);
    CHECK (kf_mp_get_double (reply->result, "confidence", 0) == 1.0);
    CHECK (kf_mp_get_double (&sources->via.array.ptr [0], "score", 0) == 1.0);
    CHECK_STR (h_str (reply->result, "intent"), "knowledge_qa");
    CHECK (!kf_mp_get_bool (reply->result, "escalate_to_human", true));
    CHECK_STR (h_str (reply->result, "handoff_state"), "bot");
    kf_reply_destroy (&reply);
}

static void
s_test_exact (kf_client_t *client)
{
    //  The sample bot: the standard question the model read as business_query, similar ones
    s_check_exact (client, "default", "退货寄回的地址是什么？", "faq-007");
    s_check_exact (client, "default", "退货寄到哪里", "faq-007");
    s_check_exact (client, "default", "最近有什么优惠活动", "faq-act-001");
    s_check_exact (client, "default", "怎么领券", "faq-071");
    //  The bank: similar questions, one of them a lookup by its words (审核到哪一步了)
    static const struct { const char *item; int similar; } bank [] = {
        { "bank-002", 0 }, { "bank-004", 1 }, { "bank-005", 2 }, { "bank-020", 0 }, { "bank-100", 1 }
    };
    for (size_t i = 0; i < sizeof bank / sizeof bank [0]; i++) {
        char *question = s_bank_similar (bank [i].item, bank [i].similar);
        s_check_exact (client, "bank", question, bank [i].item);
        free (question);
    }
}

//  A negated request for a person is answered; the bot keeps the session
static void
s_test_negated (kf_client_t *client)
{
    static const char *negated [] = {
        "不用转人工", "别转人工了，我自己看", "我不需要人工，发票怎么开", "不用转人工，发票怎么开",
        "人工就不用了，退货寄到哪里", "不想转人工 怎么领券", "不用帮我转接人工，怎么领券",
        "no need for a human agent, 怎么领券", NULL
    };
    for (int i = 0; negated [i]; i++) {
        kf_reply_t *reply = s_ask (client, "default", negated [i]);
        if (kf_mp_get_bool (reply->result, "escalate_to_human", true))
            fprintf (stderr, "%s: handed over (reason %lld)\n", negated [i],
                     (long long) kf_mp_get_int (reply->result, "handoff_reason", -1));
        CHECK (!kf_mp_get_bool (reply->result, "escalate_to_human", true));
        CHECK_STR (h_str (reply->result, "handoff_state"), "bot");
        CHECK (strcmp (h_str (reply->result, "intent"), "transfer_to_human") != 0);
        kf_reply_destroy (&reply);
    }
    //  The same without the negation hands over, on either bot
    static const char *asked [] = { "转人工", "我要人工客服", "帮我接通人工坐席", "rgkf", NULL };
    for (int i = 0; asked [i]; i++) {
        kf_reply_t *reply = s_ask (client, i % 2 ? "bank" : "default", asked [i]);
        CHECK (kf_mp_get_bool (reply->result, "escalate_to_human", false));
        CHECK_INT (kf_mp_get_int (reply->result, "handoff_reason", 0), 2);
        kf_reply_destroy (&reply);
    }
}

//  A bank's questions that the shop's intents read as order lookups: the bank bot has the
//  defaults, so none is a business_query, and none gets the shop's "cannot look it up" text
static void
s_test_bank_not_shop (kf_client_t *client)
{
    static const char *questions [] = {
        "为什么还款失败", "查一下我的账单", "我的卡寄到哪了", "帮我查下订单", "退款到哪一步了",
        "物流信息怎么查", "我的申请审核到哪一步了", "换卡 换不了?", "如果换了手机号怎么告诉你们",
        "义乌在哪个省?", "还款的问题", NULL
    };
    for (int i = 0; questions [i]; i++) {
        kf_reply_t *reply = s_ask (client, "bank", questions [i]);
        const char *text = h_str (reply->result, "reply");
        if (strstr (text, "订单") || strcmp (h_str (reply->result, "intent"), "knowledge_qa") != 0)
            fprintf (stderr, "%s -> %s: %s\n", questions [i], h_str (reply->result, "intent"), text);
        CHECK (!strstr (text, "查不到订单"));
        CHECK (!strstr (text, "订单、物流或退款"));
        CHECK (strcmp (h_str (reply->result, "intent"), "business_query") != 0);
        CHECK (strcmp (h_str (reply->result, "intent"), "ticket") != 0);
        CHECK (!kf_mp_get_bool (reply->result, "escalate_to_human", true));
        kf_reply_destroy (&reply);
    }
}

//  Candidates: ranked by score (then similarity), each with its fields, at most top_k
static void
s_check_candidates (const msgpack_object *result, int at_most, int at_least)
{
    const msgpack_object *candidates = kf_mp_get (result, "candidates");
    CHECK (candidates && candidates->type == MSGPACK_OBJECT_ARRAY);
    int count = (int) candidates->via.array.size;
    CHECK (count <= at_most && count >= at_least);
    for (int i = 0; i < count; i++) {
        const msgpack_object *c = &candidates->via.array.ptr [i];
        CHECK (kf_mp_get_int (c, "id", 0) > 0);
        CHECK (*h_str (c, "external_id") && *h_str (c, "question"));
        double score = kf_mp_get_double (c, "score", -1), similarity = kf_mp_get_double (c, "similarity", -1);
        CHECK (score >= 0 && score <= 1 && similarity >= 0 && similarity <= 1);
        if (i > 0) {
            const msgpack_object *p = &candidates->via.array.ptr [i - 1];
            CHECK (kf_mp_get_double (p, "similarity", 0) >= similarity - 1e-9);
            CHECK (kf_mp_get_double (p, "score", 0) >= score - 1e-9);
        }
    }
    //  The answer is the first candidate
    const msgpack_object *sources = kf_mp_get (result, "sources");
    if (sources && sources->via.array.size > 0 && count > 0)
        CHECK_STR (h_str (&sources->via.array.ptr [0], "external_id"),
                   h_str (&candidates->via.array.ptr [0], "external_id"));
}

typedef struct {
    bool has_candidates;
    int count;
} s_meta_t;

static void
s_on_event (void *arg, const msgpack_object *event)
{
    s_meta_t *meta = arg;
    if (!kf_mp_str_eq (event, "event", "meta"))
        return;
    const msgpack_object *candidates = kf_mp_get (event, "candidates");
    meta->has_candidates = candidates && candidates->type == MSGPACK_OBJECT_ARRAY;
    meta->count = meta->has_candidates ? (int) candidates->via.array.size : -1;
}

static void
s_test_candidates (kf_client_t *client)
{
    kf_reply_t *reply = h_call (client, "chat", "{\"bot_id\":\"bank\",\"message\":\"信用卡\"}");
    CHECK (reply->ok);
    s_check_candidates (reply->result, 5, 5);           //  The default: 5
    kf_reply_destroy (&reply);
    reply = h_call (client, "chat", "{\"bot_id\":\"bank\",\"message\":\"信用卡\",\"top_k\":2}");
    CHECK (reply->ok);
    s_check_candidates (reply->result, 2, 2);
    kf_reply_destroy (&reply);
    reply = h_call (client, "chat", "{\"bot_id\":\"bank\",\"message\":\"信用卡还款\",\"top_k\":20}");
    CHECK (reply->ok);
    s_check_candidates (reply->result, 20, 10);
    kf_reply_destroy (&reply);
    reply = h_call (client, "chat", "{\"bot_id\":\"bank\",\"message\":\"信用卡还款\",\"top_k\":1}");
    CHECK (reply->ok);
    s_check_candidates (reply->result, 1, 1);
    kf_reply_destroy (&reply);
    //  An exact answer ranks its item first
    reply = h_call (client, "chat", "{\"message\":\"退货寄到哪里\",\"top_k\":3}");
    s_check_candidates (reply->result, 3, 1);
    CHECK_STR (h_str (&kf_mp_get (reply->result, "candidates")->via.array.ptr [0], "external_id"), "faq-007");
    kf_reply_destroy (&reply);
    //  The meta event carries them too
    s_meta_t meta = { false, -1 };
    msgpack_sbuffer params;
    h_pack_json (&params, "{\"bot_id\":\"bank\",\"message\":\"信用卡怎么还款\",\"top_k\":3}");
    reply = NULL;
    CHECK_INT (kf_client_chat_stream (client, params.data, params.size, s_on_event, &meta, &reply), 0);
    msgpack_sbuffer_destroy (&params);
    CHECK (reply->ok && meta.has_candidates && meta.count >= 1 && meta.count <= 3);
    s_check_candidates (reply->result, 3, 1);
    kf_reply_destroy (&reply);
    //  Nothing found: none
    reply = h_call (client, "chat", "{\"bot_id\":\"bank\",\"message\":\"zzzz qqqq\"}");
    s_check_candidates (reply->result, 0, 0);
    kf_reply_destroy (&reply);
}

static void
s_test_bad_top_k (kf_client_t *client)
{
    static const char *bad [] = { "0", "21", "-1", "\"5\"", "2.5", "true", "[5]", "1000000000000", NULL };
    for (int i = 0; bad [i]; i++) {
        kf_reply_t *reply = h_call (client, "chat", "{\"message\":\"信用卡\",\"top_k\":%s}", bad [i]);
        CHECK (!reply->ok);
        CHECK_INT (kf_errc_code (reply->error.errc), 400);
        CHECK (strstr (reply->error.message, "top_k"));
        kf_reply_destroy (&reply);
    }
}

//  The answer settings of a bot, and the quality its own questions measured
static void
s_test_settings (kf_client_t *client)
{
    kf_reply_t *reply = h_call (client, "bot.update", "{\"bot_id\":\"bank\",\"name\":\"信用卡中心\","
                                "\"answer\":{\"target_precision\":0.95,\"suggestions\":5}}");
    CHECK (reply->ok);
    const msgpack_object *answer = kf_mp_get (reply->result, "answer");
    CHECK (kf_mp_get_double (answer, "target_precision", 0) == 0.95);
    CHECK_INT (kf_mp_get_int (answer, "suggestions", 0), 5);
    kf_reply_destroy (&reply);
    //  The quality the workers measured: the bank's similar questions calibrate it
    reply = h_call (client, "bot.get", "{\"bot_id\":\"bank\"}");
    CHECK (reply->ok);
    const msgpack_object *quality = kf_mp_get (reply->result, "answer_quality");
    CHECK (quality && quality->type == MSGPACK_OBJECT_MAP);
    CHECK (kf_mp_get_bool (quality, "calibrated", false));
    CHECK (kf_mp_get_int (quality, "questions", 0) >= 40);
    CHECK (kf_mp_get_double (quality, "target_precision", 0) == 0.95);
    double threshold = kf_mp_get_double (quality, "threshold", -1);
    CHECK (threshold >= 0 && threshold <= 1);
    CHECK (kf_mp_get_int (quality, "kb_version", 0) > 0);
    kf_reply_destroy (&reply);
    //  The target moves the threshold: stricter, never lower
    double thresholds [2];
    const double targets [2] = { 0.5, 0.99 };
    for (int t = 0; t < 2; t++) {
        kf_reply_destroy (&(kf_reply_t *) { h_call (client, "bot.update", "{\"bot_id\":\"bank\","
                                                    "\"answer\":{\"target_precision\":%g}}", targets [t]) });
        reply = h_call (client, "bot.get", "{\"bot_id\":\"bank\"}");
        thresholds [t] = kf_mp_get_double (kf_mp_get (reply->result, "answer_quality"), "threshold", -1);
        kf_reply_destroy (&reply);
    }
    CHECK (thresholds [0] >= 0.5 && thresholds [0] < thresholds [1]);
    kf_reply_destroy (&(kf_reply_t *) { h_call (client, "bot.update", "{\"bot_id\":\"bank\","
                                                "\"answer\":{\"target_precision\":0.95}}") });
    //  A vague question: at most the bot's number of suggestions
    reply = s_ask (client, "bank", "卡");
    CHECK (kf_mp_get (reply->result, "suggestions")->via.array.size <= 5);
    kf_reply_destroy (&reply);
    kf_reply_destroy (&(kf_reply_t *) { h_call (client, "bot.update", "{\"bot_id\":\"bank\","
                                                "\"answer\":{\"suggestions\":0}}") });
    reply = s_ask (client, "bank", "卡");
    CHECK_INT (kf_mp_get (reply->result, "suggestions")->via.array.size, 0);
    kf_reply_destroy (&reply);
    //  The rest stays as it was
    reply = h_call (client, "bot.get", "{\"bot_id\":\"bank\"}");
    CHECK (kf_mp_get_double (kf_mp_get (reply->result, "answer"), "target_precision", 0) == 0.95);
    kf_reply_destroy (&reply);
    //  Bad settings are refused
    static const char *bad [] = {
        "{\"target_precision\":1.2}", "{\"target_precision\":0.3}", "{\"target_precision\":\"high\"}",
        "{\"suggestions\":11}", "{\"suggestions\":-1}", "{\"suggestions\":2.5}", "{\"threshold\":0.5}",
        "{\"threshold\":null}",
        "[0.9]", "0.9", NULL
    };
    for (int i = 0; bad [i]; i++) {
        reply = h_call (client, "bot.update", "{\"bot_id\":\"bank\",\"answer\":%s}", bad [i]);
        CHECK (!reply->ok);
        CHECK_INT (kf_errc_code (reply->error.errc), 400);
        CHECK (strstr (reply->error.message, "answer"));
        kf_reply_destroy (&reply);
    }
    //  stats lists both bots' quality
    reply = h_call (client, "stats", "{}");
    const msgpack_object *stats = kf_mp_get (reply->result, "answer");
    CHECK (kf_mp_get_int (stats, "bots_total", 0) >= 2);
    const msgpack_object *bots = kf_mp_get (stats, "bots");
    int seen = 0;
    for (uint32_t i = 0; bots && i < bots->via.array.size; i++) {
        const char *bot = h_str (&bots->via.array.ptr [i], "bot_id");
        const msgpack_object *q = kf_mp_get (&bots->via.array.ptr [i], "quality");
        if (strcmp (bot, "bank") == 0 || strcmp (bot, "default") == 0) {
            CHECK (kf_mp_get_bool (q, "calibrated", false));
            seen++;
        }
    }
    CHECK_INT (seen, 2);
    kf_reply_destroy (&reply);
}

int
main (void)
{
    kf_harness_t h;
    h_init (&h, "answer");
    h_start_broker (&h, 2, NULL);
    h_import_sample (&h);
    kf_client_t *client = h_client (&h);
    s_import_bank (&h, client);
    s_test_exact (client);
    s_test_negated (client);
    s_test_bank_not_shop (client);
    s_test_candidates (client);
    s_test_bad_top_k (client);
    s_test_settings (client);
    kf_client_destroy (&client);
    h_cleanup (&h);
    TEST_PASS ("test_answer");
    return 0;
}
