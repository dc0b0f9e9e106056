/*  test_intents.c - intent routing over real processes (issue 5): a broker and two workers on the
    sample knowledge base and the sample bot's intents (seeded at migration 9). Every result and
    meta event carries the intent, its confidence and the emotion score; two requests give
    sub_tasks; small talk comes from the chit-chat table; a ticket is collected over three turns
    and created by the broker; and handoff reasons 2, 3, 4 and 5 fire. */
#include "harness.h"
#include "common/log.h"

typedef struct {
    int meta_count;
    bool has_fields;            //  meta carried intent, intent_confidence, emotion_score ...
    char intent [64];
} s_events_t;

static void
s_on_event (void *arg, const msgpack_object *event)
{
    s_events_t *events = arg;
    if (!kf_mp_str_eq (event, "event", "meta"))
        return;
    events->meta_count++;
    const msgpack_object *score = kf_mp_get (event, "emotion_score");
    const msgpack_object *subs = kf_mp_get (event, "sub_tasks");
    events->has_fields = kf_mp_get (event, "intent") && kf_mp_get (event, "intent_confidence")
                      && score && (score->type == MSGPACK_OBJECT_FLOAT64 || score->type == MSGPACK_OBJECT_FLOAT32)
                      && subs && subs->type == MSGPACK_OBJECT_ARRAY
                      && kf_mp_get (event, "handoff_reason");
    snprintf (events->intent, sizeof events->intent, "%s", h_str (event, "intent"));
}

//  The issue-5 fields every chat result carries
static void
s_check_fields (const msgpack_object *result)
{
    CHECK (*h_str (result, "intent"));
    double confidence = kf_mp_get_double (result, "intent_confidence", -1);
    CHECK (confidence >= 0 && confidence <= 1);
    double score = kf_mp_get_double (result, "emotion_score", -1);
    CHECK (score >= 0 && score <= 1);
    CHECK (kf_mp_get (result, "sub_tasks") && kf_mp_get (result, "sub_tasks")->type == MSGPACK_OBJECT_ARRAY);
    CHECK (kf_mp_get (result, "handoff_reason"));
}

//  A chat in `session` ("" for a new one); the result checked for the common fields
static kf_reply_t *
s_chat (kf_client_t *client, const char *session, const char *message)
{
    kf_reply_t *reply = *session
        ? h_call (client, "chat", "{\"message\":\"%s\",\"session_id\":\"%s\",\"user_id\":\"u5\"}", message, session)
        : h_call (client, "chat", "{\"message\":\"%s\",\"user_id\":\"u5\"}", message);
    CHECK (reply->ok);
    s_check_fields (reply->result);
    return reply;
}

static void
s_test_streamed_fields (kf_client_t *client)
{
    s_events_t events = { 0 };
    msgpack_sbuffer params;
    h_pack_json (&params, "{\"message\":\"怎么申请退货？\",\"user_id\":\"u5\"}");
    kf_reply_t *reply = NULL;
    CHECK_INT (kf_client_chat_stream (client, params.data, params.size, s_on_event, &events, &reply), 0);
    msgpack_sbuffer_destroy (&params);
    CHECK (reply->ok);
    CHECK_INT (events.meta_count, 1);
    CHECK (events.has_fields);
    CHECK_STR (events.intent, "knowledge_qa");
    s_check_fields (reply->result);
    CHECK_STR (h_str (reply->result, "intent"), "knowledge_qa");
    CHECK (kf_mp_get_double (reply->result, "intent_confidence", 0) > 0.5);
    kf_reply_destroy (&reply);
}

static void
s_test_sub_tasks (kf_client_t *client)
{
    kf_reply_t *reply = s_chat (client, "", "我要退货，另外我的快递到哪了");
    const msgpack_object *subs = kf_mp_get (reply->result, "sub_tasks");
    CHECK_INT (subs->via.array.size, 2);
    CHECK_STR (h_str (&subs->via.array.ptr [0], "text"), "我要退货");
    CHECK_STR (h_str (&subs->via.array.ptr [1], "intent"), "business_query");
    CHECK_STR (h_str (&subs->via.array.ptr [1], "text"), "我的快递到哪了");
    CHECK (kf_mp_get_double (&subs->via.array.ptr [1], "confidence", 0) > 0.25);
    //  The second request is answered too (the sample bot has no business API: the knowledge
    //  base knows how to follow a parcel), after the first
    CHECK (strstr (h_str (reply->result, "reply"), "\n\n在App「我的-我的订单」中打开对应订单，点击「查看物流」"));
    const msgpack_object *sources = kf_mp_get (reply->result, "sources");
    CHECK (sources && sources->via.array.size >= 1);
    CHECK_STR (h_str (&sources->via.array.ptr [sources->via.array.size - 1], "question"),
               "怎么查询物流信息？");
    kf_reply_destroy (&reply);
}

static void
s_test_chitchat (kf_client_t *client)
{
    kf_reply_t *reply = s_chat (client, "", "你好呀");
    CHECK_STR (h_str (reply->result, "intent"), "chitchat");
    CHECK_STR (h_str (reply->result, "reply"), "您好，我是智能客服小快，请问有什么可以帮您？");
    kf_reply_destroy (&reply);
    reply = s_chat (client, "", "你是谁");
    CHECK_STR (h_str (reply->result, "reply"),
               "我是本店的智能客服小快，可以帮您查询订单、物流、退换货、发票、优惠券等问题。");
    kf_reply_destroy (&reply);
}

//  报修 over three turns; the broker creates the ticket from the worker's `ticket`
static void
s_test_ticket (kf_client_t *client)
{
    kf_reply_t *reply = s_chat (client, "", "我家空调坏了，一直不制冷，要报修");
    char session [64];
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    CHECK_STR (h_str (reply->result, "intent"), "ticket");
    CHECK (strstr (h_str (reply->result, "reply"), "地址"));
    kf_reply_destroy (&reply);
    reply = s_chat (client, session, "北京市朝阳区建国路88号3栋2单元501室");
    CHECK_STR (h_str (reply->result, "intent"), "ticket");
    CHECK (strstr (h_str (reply->result, "reply"), "电话"));
    kf_reply_destroy (&reply);
    reply = s_chat (client, session, "13812345678");
    CHECK_STR (h_str (reply->result, "intent"), "ticket");
    const msgpack_object *ticket = kf_mp_get (reply->result, "ticket");
    CHECK (ticket && ticket->type == MSGPACK_OBJECT_MAP);
    CHECK (kf_mp_get_int (ticket, "id", 0) > 0);
    CHECK (*h_str (ticket, "ticket_no") == 'T');
    CHECK_STR (h_str (ticket, "type"), "报修");
    const msgpack_object *fields = kf_mp_get (ticket, "fields");
    CHECK_STR (h_str (fields, "phone"), "13812345678");
    CHECK_STR (h_str (fields, "address"), "北京市朝阳区建国路88号3栋2单元501室");
    CHECK_STR (h_str (fields, "description"), "我家空调坏了，一直不制冷，要报修");
    CHECK_STR (h_str (reply->result, "response_type"), "form_show");
    CHECK (strstr (h_str (reply->result, "reply"), h_str (ticket, "ticket_no")));
    kf_reply_destroy (&reply);
    //  The dialog is over: the next message is answered as usual
    reply = s_chat (client, session, "发票怎么开");
    CHECK_STR (h_str (reply->result, "intent"), "knowledge_qa");
    CHECK (!kf_mp_get_bool (reply->result, "escalate_to_human", true));
    kf_reply_destroy (&reply);
}

//  Reasons 2 (keyword), 4 (emotion), 5 (repeated question), 3 (no answer), each in a new session
static void
s_test_handoff_reasons (kf_client_t *client)
{
    kf_reply_t *reply = s_chat (client, "", "我要转人工");
    CHECK (kf_mp_get_bool (reply->result, "escalate_to_human", false));
    CHECK_INT (kf_mp_get_int (reply->result, "handoff_reason", 0), 2);
    kf_reply_destroy (&reply);

    reply = s_chat (client, "", "你们这帮骗子，垃圾服务，我要去12315投诉！！！");
    CHECK (kf_mp_get_bool (reply->result, "escalate_to_human", false));
    CHECK_INT (kf_mp_get_int (reply->result, "handoff_reason", 0), 4);
    CHECK (kf_mp_get_double (reply->result, "emotion_score", 1) < 0.30);
    kf_reply_destroy (&reply);

    reply = s_chat (client, "", "运费怎么算");
    char session [64];
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    CHECK_INT (kf_mp_get_int (reply->result, "handoff_reason", -1), 0);
    kf_reply_destroy (&reply);
    reply = s_chat (client, session, "运费怎么算？");
    CHECK_INT (kf_mp_get_int (reply->result, "handoff_reason", -1), 0);
    kf_reply_destroy (&reply);
    reply = s_chat (client, session, "运费怎么算？？");
    CHECK (kf_mp_get_bool (reply->result, "escalate_to_human", false));
    CHECK_INT (kf_mp_get_int (reply->result, "handoff_reason", 0), 5);
    kf_reply_destroy (&reply);

    reply = s_chat (client, "", "你们支持比特币付款吗");
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    CHECK_INT (kf_mp_get_int (reply->result, "failed_attempts", 0), 1);
    CHECK (!kf_mp_get_bool (reply->result, "escalate_to_human", true));
    kf_reply_destroy (&reply);
    reply = s_chat (client, session, "能用美元信用卡付款吗");
    CHECK (kf_mp_get_bool (reply->result, "escalate_to_human", false));
    CHECK_INT (kf_mp_get_int (reply->result, "handoff_reason", 0), 3);
    CHECK (strstr (h_str (reply->result, "reply"), "人工客服"));
    kf_reply_destroy (&reply);
}

int
main (void)
{
    kf_harness_t h;
    h_init (&h, "intents");
    h_start_broker (&h, 2, NULL);
    h_import_sample (&h);
    kf_client_t *client = h_client (&h);
    s_test_streamed_fields (client);
    s_test_sub_tasks (client);
    s_test_chitchat (client);
    s_test_ticket (client);
    s_test_handoff_reasons (client);
    kf_client_destroy (&client);
    h_cleanup (&h);
    TEST_PASS ("test_intents");
    return 0;
}
