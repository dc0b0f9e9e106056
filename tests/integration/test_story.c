/*  test_story.c - issue 5's scripted conversations, end to end over real processes: a broker with
    two local workers, the sample knowledge base, a config whose bots call the fake shop API
    (tests/fake/fake_business.c), a client on the request socket, a watch on the agent topics like
    an agent desk's, and kefuctl agent as a person would use it.
        1. A business query: the order number given in one turn, "那它的物流到哪了？" answered
           from the shop API in the next with that number remembered.
        2. A ticket collected over three turns and created (form_show card, tickets.query).
        3. Every handoff reason firing: 1 handoff.request, 2 keyword, 3 no answer twice,
           4 negative emotion, 5 the same question three times; each card published on
           agent.escalations and listed by escalations.list.
        4. A person takes over (kefuctl agent take / reply / resolve): the bot is silent while the
           session is in human hands, the customer's message reaches agent.messages, the agent's
           reply reaches session.<id> and history as role agent, and after resolve the bot answers
           again. */
#include "harness.h"
#include "common/json_codec.h"
#include "common/kefu_watch.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kf_harness_t s_h;
static kf_client_t *s_client;
static kf_watch_t *s_agents;        //  agent.escalations and agent.messages

//  Sends one chat message in `session` ("" starts a new one, whose id is copied back) and returns
//  the reply, which must be ok
static kf_reply_t *
s_say (char *session, size_t size, const char *message)
{
    kf_reply_t *reply = *session
        ? h_call (s_client, "chat", "{\"message\":\"%s\",\"session_id\":\"%s\",\"user_id\":\"u_story\"}",
                  message, session)
        : h_call (s_client, "chat", "{\"message\":\"%s\",\"user_id\":\"u_story\",\"channel\":\"wechat\"}",
                  message);
    if (!reply->ok)
        fprintf (stderr, "chat %s failed: %s\n", message, reply->error.message);
    CHECK (reply->ok);
    if (!*session)
        snprintf (session, size, "%s", h_str (reply->result, "session_id"));
    return reply;
}

//  Waits for the next event on the agent topics named `topic` with `event` for `session`
static void
s_expect_agent_event (const char *topic, const char *event, const char *session,
                      msgpack_unpacked *out)
{
    for (int i = 0; i < 20; i++) {
        char got [64];
        int rc = kf_watch_next (s_agents, 3000, got, sizeof got, out);
        CHECK (rc == 1);
        if (strcmp (got, topic) == 0 && kf_mp_str_eq (&out->data, "event", event)
        &&  strcmp (h_str (&out->data, "session_id"), session) == 0)
            return;
        msgpack_unpacked_destroy (out);
    }
    CHECK (!"expected agent event never came");
}

//  Checks the escalation card of a handed-over chat and its copy on agent.escalations
static void
s_check_escalated (kf_reply_t *reply, const char *session, int reason, const char *reason_name)
{
    const msgpack_object *result = reply->result;
    if (!kf_mp_get_bool (result, "escalate_to_human", false)) {
        char *json = kf_json_from_msgpack (result);
        fprintf (stderr, "not handed over (reason %d expected): %s\n", reason, json);
        free (json);
    }
    CHECK (kf_mp_get_bool (result, "escalate_to_human", false));
    CHECK_INT (kf_mp_get_int (result, "handoff_reason", 0), reason);
    CHECK_STR (h_str (result, "handoff_state"), "pending");
    const msgpack_object *card = kf_mp_get (result, "escalation_card");
    CHECK (card && card->type == MSGPACK_OBJECT_MAP);
    CHECK_INT (kf_mp_get_int (card, "reason", 0), reason);
    CHECK_STR (h_str (card, "reason_name"), reason_name);
    CHECK_STR (h_str (card, "session_id"), session);
    CHECK_STR (h_str (card, "channel"), "wechat");
    CHECK (kf_mp_get_int (card, "created_at", 0) > 0);
    const msgpack_object *summary = kf_mp_get (card, "summary");
    CHECK (summary && summary->type == MSGPACK_OBJECT_ARRAY && summary->via.array.size >= 1);
    msgpack_unpacked event;
    s_expect_agent_event ("agent.escalations", "escalation", session, &event);
    CHECK_INT (kf_mp_get_int (&event.data, "escalation_id", 0), kf_mp_get_int (card, "escalation_id", -1));
    CHECK_INT (kf_mp_get_int (&event.data, "reason", 0), reason);
    msgpack_unpacked_destroy (&event);
}

static void
s_business_query (int port)
{
    char session [64] = "";
    kf_reply_t *reply = s_say (session, sizeof session, "你好");
    CHECK_STR (h_str (reply->result, "intent"), "chitchat");
    kf_reply_destroy (&reply);
    reply = s_say (session, sizeof session, "我的订单号是 ORD-2024-001");
    kf_reply_destroy (&reply);
    char *stats = h_fake_stats (port);
    long long before = h_fake_stat (stats, "orders");
    free (stats);
    //  The next turn names no order: the one from the turn before is remembered
    reply = s_say (session, sizeof session, "那它的物流到哪了？");
    CHECK_STR (h_str (reply->result, "intent"), "business_query");
    const char *text = h_str (reply->result, "reply");
    CHECK (strstr (text, "ORD-2024-001"));
    CHECK (strstr (text, "顺丰速运"));
    CHECK_INT (kf_mp_get_int (reply->result, "failed_attempts", -1), 0);
    CHECK (!kf_mp_get_bool (reply->result, "escalate_to_human", true));
    kf_reply_destroy (&reply);
    stats = h_fake_stats (port);
    CHECK_INT (h_fake_stat (stats, "orders"), before + 1);
    CHECK (strstr (stats, "ORD-2024-001"));
    free (stats);

    //  Two requests, the order first: the API's answer, then the knowledge base's for the other
    reply = s_say (session, sizeof session, "查下订单ORD-2024-001的物流，顺便问下怎么申请退货");
    CHECK_STR (h_str (reply->result, "intent"), "business_query");
    text = h_str (reply->result, "reply");
    const char *api = strstr (text, "顺丰速运"), *kb = strstr (text, "申请售后");
    CHECK (api && kb && api < kb);
    const msgpack_object *sources = kf_mp_get (reply->result, "sources");
    CHECK (sources && sources->type == MSGPACK_OBJECT_ARRAY && sources->via.array.size == 1);
    CHECK_STR (h_str (&sources->via.array.ptr [0], "external_id"), "faq-001");
    kf_reply_destroy (&reply);

    //  A ticket waits for its address while the customer asks about the order: the API answers
    //  and the reminder follows
    char other [64] = "";
    reply = s_say (other, sizeof other, "我要报修，家里水管漏水了");
    CHECK_STR (h_str (reply->result, "intent"), "ticket");
    kf_reply_destroy (&reply);
    reply = s_say (other, sizeof other, "订单ORD-2024-001到哪了");
    CHECK_STR (h_str (reply->result, "intent"), "business_query");
    text = h_str (reply->result, "reply");
    api = strstr (text, "顺丰速运");
    const char *reminder = strstr (text, "工单还未提交");
    CHECK (api && reminder && api < reminder);
    kf_reply_destroy (&reply);
    reply = s_say (other, sizeof other, "取消");
    kf_reply_destroy (&reply);
}

static void
s_ticket (void)
{
    char session [64] = "";
    kf_reply_t *reply = s_say (session, sizeof session, "我家空调坏了不制冷，要报修");
    CHECK_STR (h_str (reply->result, "intent"), "ticket");
    CHECK (strstr (h_str (reply->result, "reply"), "地址"));
    kf_reply_destroy (&reply);
    reply = s_say (session, sizeof session, "北京市朝阳区建国路88号3栋2单元501室");
    CHECK (strstr (h_str (reply->result, "reply"), "电话"));
    kf_reply_destroy (&reply);
    reply = s_say (session, sizeof session, "13812345678");
    const msgpack_object *result = reply->result;
    CHECK_STR (h_str (result, "response_type"), "form_show");
    const msgpack_object *ticket = kf_mp_get (result, "ticket");
    CHECK (ticket && ticket->type == MSGPACK_OBJECT_MAP);
    char ticket_no [32];
    snprintf (ticket_no, sizeof ticket_no, "%s", h_str (ticket, "ticket_no"));
    CHECK (ticket_no [0] == 'T' && strlen (ticket_no) >= 15);
    CHECK_STR (h_str (ticket, "type"), "报修");
    const msgpack_object *fields = kf_mp_get (ticket, "fields");
    CHECK_STR (h_str (fields, "phone"), "13812345678");
    CHECK (strstr (h_str (fields, "address"), "建国路88号"));
    CHECK (strstr (h_str (result, "reply"), ticket_no));
    //  The card: 编号, 创建时间, 工单类型 ...
    const msgpack_object *rows = kf_mp_get (kf_mp_get (result, "response_content"), "params");
    CHECK (rows && rows->type == MSGPACK_OBJECT_ARRAY && rows->via.array.size >= 5);
    CHECK_STR (h_str (&rows->via.array.ptr [0], "key"), "编号");
    CHECK_STR (h_str (&rows->via.array.ptr [0], "value"), ticket_no);
    kf_reply_destroy (&reply);
    reply = h_call (s_client, "tickets.query", "{\"session_id\":\"%s\"}", session);
    CHECK (reply->ok);
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    CHECK (data && data->via.array.size == 1);
    CHECK_STR (h_str (&data->via.array.ptr [0], "ticket_no"), ticket_no);
    kf_reply_destroy (&reply);
}

//  Reason 1: the customer pressed the button
static void
s_reason_requested (char *session, size_t size)
{
    kf_reply_t *reply = s_say (session, size, "退款多久能到账？");
    CHECK_STR (h_str (reply->result, "handoff_state"), "bot");
    kf_reply_destroy (&reply);
    reply = h_call (s_client, "handoff.request", "{\"session_id\":\"%s\",\"user_id\":\"u_story\"}", session);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    msgpack_unpacked event;
    s_expect_agent_event ("agent.escalations", "escalation", session, &event);
    CHECK_INT (kf_mp_get_int (&event.data, "reason", 0), 1);
    CHECK_STR (h_str (&event.data, "reason_name"), "user_request");
    msgpack_unpacked_destroy (&event);
}

static void
s_reasons (void)
{
    char session [64] = "";
    kf_reply_t *reply = s_say (session, sizeof session, "转人工");
    s_check_escalated (reply, session, 2, "keyword");
    kf_reply_destroy (&reply);

    *session = 0;
    reply = s_say (session, sizeof session, "你们支持用比特币付款吗");
    CHECK (!kf_mp_get_bool (reply->result, "escalate_to_human", true));
    CHECK_INT (kf_mp_get_int (reply->result, "failed_attempts", 0), 1);
    kf_reply_destroy (&reply);
    reply = s_say (session, sizeof session, "火星上能送货吗");
    s_check_escalated (reply, session, 3, "failed_attempts");
    kf_reply_destroy (&reply);

    *session = 0;
    reply = s_say (session, sizeof session, "你们这什么垃圾服务，等了三天还没发货，气死我了！！！");
    s_check_escalated (reply, session, 4, "negative_emotion");
    CHECK (kf_mp_get_double (reply->result, "emotion_score", 1) < 0.3);
    kf_reply_destroy (&reply);

    *session = 0;
    for (int i = 0; i < 2; i++) {
        reply = s_say (session, sizeof session, "发票怎么开？");
        CHECK (!kf_mp_get_bool (reply->result, "escalate_to_human", true));
        kf_reply_destroy (&reply);
    }
    reply = s_say (session, sizeof session, "发票怎么开？");
    s_check_escalated (reply, session, 5, "repeated_question");
    kf_reply_destroy (&reply);

    //  All five (and the ticket-less request below) are waiting for people
    reply = h_call (s_client, "escalations.list", "{\"status\":\"pending\",\"page_size\":100}");
    CHECK (reply->ok);
    CHECK (kf_mp_get_int (reply->result, "total", 0) >= 4);
    kf_reply_destroy (&reply);
}

//  kefuctl agent, as a person at the desk runs it
static char *
s_desk (const char *verb, const char *session, const char *text)
{
    const char *args [] = { "agent", verb, session, "--agent", "wang", text, NULL };
    int status = -1;
    char *output = h_kefuctl_output (&s_h, args, &status);
    CHECK_INT (status, 0);
    return output;
}

static void
s_agent_takes_over (void)
{
    char session [64] = "";
    s_reason_requested (session, sizeof session);
    const char *topics [] = { "" };
    char topic [96];
    snprintf (topic, sizeof topic, "session.%s", session);
    topics [0] = topic;
    kf_watch_t *customer = kf_watch_new (s_h.streams, topics, 1);
    CHECK (customer);
    h_sleep_ms (200);                   //  Let the subscription reach the broker

    //  The desk lists it
    const char *list [] = { "agent", "list", "--status", "pending", NULL };
    int status = -1;
    char *output = h_kefuctl_output (&s_h, list, &status);
    CHECK_INT (status, 0);
    CHECK (strstr (output, session));
    free (output);

    //  While pending the bot is silent; the message goes to the agents
    kf_reply_t *reply = s_say (session, sizeof session, "人呢？还在吗");
    CHECK (kf_mp_get_bool (reply->result, "to_agent", false));
    CHECK_STR (h_str (reply->result, "reply"), "");
    kf_reply_destroy (&reply);
    msgpack_unpacked event;
    s_expect_agent_event ("agent.messages", "user_message", session, &event);
    CHECK_STR (h_str (&event.data, "content"), "人呢？还在吗");
    msgpack_unpacked_destroy (&event);

    free (s_desk ("take", session, NULL));
    char got [96];
    CHECK_INT (kf_watch_next (customer, 3000, got, sizeof got, &event), 1);
    CHECK_STR (h_str (&event.data, "event"), "handoff");
    CHECK_STR (h_str (&event.data, "state"), "assigned");
    msgpack_unpacked_destroy (&event);

    free (s_desk ("reply", session, "您好，我是人工客服小王，您的退款已加急处理。"));
    CHECK_INT (kf_watch_next (customer, 3000, got, sizeof got, &event), 1);
    CHECK_STR (got, topic);
    CHECK_STR (h_str (&event.data, "event"), "agent_message");
    CHECK_STR (h_str (&event.data, "content"), "您好，我是人工客服小王，您的退款已加急处理。");
    CHECK_STR (h_str (&event.data, "agent_id"), "wang");
    msgpack_unpacked_destroy (&event);

    //  Assigned: still silent
    reply = s_say (session, sizeof session, "好的，谢谢");
    CHECK (kf_mp_get_bool (reply->result, "to_agent", false));
    CHECK_STR (h_str (reply->result, "handoff_state"), "assigned");
    kf_reply_destroy (&reply);

    free (s_desk ("resolve", session, NULL));
    CHECK_INT (kf_watch_next (customer, 3000, got, sizeof got, &event), 1);
    CHECK_STR (h_str (&event.data, "state"), "resolved");
    msgpack_unpacked_destroy (&event);

    //  The bot answers again
    reply = s_say (session, sizeof session, "怎么申请退货？");
    CHECK (!kf_mp_get_bool (reply->result, "to_agent", true));
    CHECK_STR (h_str (reply->result, "handoff_state"), "bot");
    CHECK_STR (h_str (reply->result, "intent"), "knowledge_qa");
    CHECK (strlen (h_str (reply->result, "reply")) > 10);
    kf_reply_destroy (&reply);

    //  History holds the agent's reply as role agent, between the customer's messages
    reply = h_call (s_client, "history", "{\"session_id\":\"%s\",\"limit\":50}", session);
    CHECK (reply->ok);
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    int agents = 0;
    for (uint32_t i = 0; data && i < data->via.array.size; i++)
        if (strcmp (h_str (&data->via.array.ptr [i], "role"), "agent") == 0) {
            agents++;
            CHECK (strstr (h_str (&data->via.array.ptr [i], "content"), "人工客服小王"));
        }
    CHECK_INT (agents, 1);
    kf_reply_destroy (&reply);
    kf_watch_destroy (&customer);
}

int
main (void)
{
    pid_t fake;
    int port = h_start_fake_business (&fake);
    h_init (&s_h, "story");
    char config [400];
    snprintf (config, sizeof config, "%s/kefu.ini", s_h.dir);
    FILE *file = fopen (config, "w");
    CHECK (file);
    fprintf (file, "[business orders]\nurl = http://127.0.0.1:%d/orders/{order_no}\ntimeout_ms = 2000\n"
             "reply = 您的订单 {order_no} 当前状态：{status}，{logistics.company}：{logistics.latest}\n\n"
             "[bot *]\nbusiness = orders\n", port);
    fclose (file);
    const char *args [] = { "--config", config, NULL };
    h_start_broker (&s_h, 2, args);
    h_import_sample (&s_h);
    s_client = h_client (&s_h);
    const char *topics [] = { "agent." };
    s_agents = kf_watch_new (s_h.streams, topics, 1);
    CHECK (s_agents);
    h_sleep_ms (200);

    s_business_query (port);
    s_ticket ();
    s_reasons ();
    s_agent_takes_over ();

    //  stats.handoff counts what happened: one escalation per reason, one person's reply, one
    //  conversation handed back
    kf_reply_t *reply = h_call (s_client, "stats", "{}");
    CHECK (reply->ok);
    const msgpack_object *handoff = kf_mp_get (reply->result, "handoff");
    CHECK (handoff && handoff->type == MSGPACK_OBJECT_MAP);
    const msgpack_object *escalated = kf_mp_get (handoff, "escalated");
    const char *reasons [] = { "user_request", "keyword", "failed_attempts", "negative_emotion",
                               "repeated_question" };
    for (int i = 0; i < 5; i++)
        CHECK (kf_mp_get_int (escalated, reasons [i], 0) >= 1);
    CHECK_INT (kf_mp_get_int (handoff, "pending", -1), 4);
    CHECK_INT (kf_mp_get_int (handoff, "assigned", -1), 0);
    CHECK_INT (kf_mp_get_int (handoff, "resolved", -1), 1);
    CHECK_INT (kf_mp_get_int (handoff, "agent_replies", -1), 1);
    kf_reply_destroy (&reply);

    kf_watch_destroy (&s_agents);
    kf_client_destroy (&s_client);
    h_cleanup (&s_h);
    printf ("test_story: all checks passed\n");
    return 0;
}
