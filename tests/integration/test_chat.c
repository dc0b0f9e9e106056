/*  test_chat.c - a customer chats: FAQ answers, streaming, sessions, history, counters, ownership. */
#include "harness.h"
#include "common/log.h"

typedef struct {
    char text [16384];          //  Tokens joined
    int64_t next_seq;
    int meta_count, token_count, done_count, error_count;
    bool is_meta_first;
    char session_id [64];
} s_events_t;

static void
s_on_event (void *arg, const msgpack_object *event)
{
    s_events_t *events = arg;
    CHECK_INT (kf_mp_get_int (event, "seq", -1), events->next_seq);
    if (events->next_seq == 0)
        events->is_meta_first = kf_mp_str_eq (event, "event", "meta");
    events->next_seq++;
    if (kf_mp_str_eq (event, "event", "meta")) {
        events->meta_count++;
        const char *session = h_str (event, "session_id");
        snprintf (events->session_id, sizeof events->session_id, "%s", session);
        CHECK (kf_mp_get_int (event, "message_id", 0) > 0);
        CHECK (kf_mp_get (event, "intent"));
    }
    else
    if (kf_mp_str_eq (event, "event", "token")) {
        const char *text;
        size_t len;
        CHECK (kf_mp_str (kf_mp_get (event, "content"), &text, &len));
        CHECK (strlen (events->text) + len < sizeof events->text);
        strncat (events->text, text, len);
        events->token_count++;
    }
    else
    if (kf_mp_str_eq (event, "event", "done"))
        events->done_count++;
    else
        events->error_count++;
}

//  The sample answer to the demo question, straight from the knowledge base
static void
s_test_faq_answer (kf_client_t *client)
{
    kf_reply_t *reply = h_call (client, "chat", "{\"message\":\"怎么申请退货？\",\"user_id\":\"u1\",\"channel\":\"web\"}");
    CHECK (reply->ok);
    const char *answer = h_str (reply->result, "reply");
    CHECK (strstr (answer, "申请售后"));
    CHECK_STR (h_str (reply->result, "intent"), "knowledge_qa");
    CHECK (kf_mp_get_double (reply->result, "confidence", 0) > 0.99);
    const msgpack_object *sources = kf_mp_get (reply->result, "sources");
    CHECK (sources && sources->type == MSGPACK_OBJECT_ARRAY && sources->via.array.size == 1);
    CHECK (kf_mp_str_eq (&sources->via.array.ptr [0], "external_id", "faq-001"));
    CHECK (strncmp (h_str (reply->result, "session_id"), "s_", 2) == 0);
    CHECK (kf_mp_get_int (reply->result, "message_id", 0) > 0);
    CHECK_INT (kf_mp_get_int (reply->result, "turn_count", 0), 1);
    CHECK_INT (kf_mp_get_int (reply->result, "failed_attempts", -1), 0);
    CHECK (kf_mp_get_bool (reply->result, "escalate_to_human", true) == false);
    CHECK_STR (h_str (reply->result, "response_type"), "text");
    CHECK (kf_mp_get (kf_mp_get (reply->result, "usage"), "total_tokens"));
    CHECK (kf_mp_get (reply->result, "latency_ms"));
    kf_reply_destroy (&reply);
}

//  Streamed: meta first, tokens that join into the reply, done, and last_seq on the reply
static void
s_test_stream (kf_client_t *client)
{
    s_events_t events = { 0 };
    msgpack_sbuffer params;
    h_pack_json (&params, "{\"message\":\"发票怎么开\",\"user_id\":\"u2\"}");
    kf_reply_t *reply = NULL;
    CHECK_INT (kf_client_chat_stream (client, params.data, params.size, s_on_event, &events, &reply), 0);
    msgpack_sbuffer_destroy (&params);
    CHECK (reply->ok);
    CHECK (events.is_meta_first);
    CHECK_INT (events.meta_count, 1);
    CHECK_INT (events.done_count, 1);
    CHECK (events.token_count >= 2);
    CHECK_STR (events.text, h_str (reply->result, "reply"));
    CHECK_STR (events.session_id, h_str (reply->result, "session_id"));
    CHECK_INT (kf_mp_get_int (reply->result, "last_seq", -1), events.next_seq - 1);
    kf_reply_destroy (&reply);
}

//  No answer: apology, suggestions when close, failed_attempts grows, and resets on an answer
static void
s_test_no_answer (kf_client_t *client)
{
    //  Two unanswered turns in a row would hand the session to people (issue 5, reason 3; tested in
    //  test_intents): off here, so the bot keeps answering and failed_attempts keeps counting
    kf_reply_t *reply = h_call (client, "bot.update", "{\"bot_id\":\"default\",\"handoff\":{\"failed_attempts\":0}}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "session.create", "{\"user_id\":\"u3\",\"channel\":\"wxmini\"}");
    CHECK (reply->ok);
    const char *session = h_str (reply->result, "session_id");
    kf_reply_destroy (&reply);
    reply = h_call (client, "chat", "{\"message\":\"你们支持比特币付款吗\",\"session_id\":\"%s\",\"user_id\":\"u3\"}", session);
    CHECK (reply->ok);
    CHECK (strstr (h_str (reply->result, "reply"), "抱歉"));
    CHECK_INT (kf_mp_get_int (reply->result, "failed_attempts", 0), 1);
    CHECK_INT (kf_mp_get (reply->result, "sources")->via.array.size, 0);
    kf_reply_destroy (&reply);
    reply = h_call (client, "chat", "{\"message\":\"优惠券\",\"session_id\":\"%s\"}", session);
    CHECK (reply->ok);
    CHECK_INT (kf_mp_get_int (reply->result, "failed_attempts", 0), 2);
    const msgpack_object *suggestions = kf_mp_get (reply->result, "suggestions");
    CHECK (suggestions->via.array.size >= 1 && suggestions->via.array.size <= 3);
    CHECK (strstr (h_str (reply->result, "reply"), "您是不是想问"));
    kf_reply_destroy (&reply);
    reply = h_call (client, "chat", "{\"message\":\"App 登录不了怎么办\",\"session_id\":\"%s\"}", session);
    CHECK (reply->ok);
    CHECK_INT (kf_mp_get_int (reply->result, "failed_attempts", -1), 0);
    CHECK_INT (kf_mp_get_int (reply->result, "turn_count", 0), 3);
    kf_reply_destroy (&reply);
    //  History: six messages, oldest first, paged
    reply = h_call (client, "history", "{\"session_id\":\"%s\",\"limit\":4}", session);
    CHECK (reply->ok);
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 6);
    CHECK (kf_mp_get_bool (reply->result, "has_more", false));
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    CHECK_INT (data->via.array.size, 4);
    CHECK_STR (h_str (&data->via.array.ptr [0], "role"), "user");
    CHECK_STR (h_str (&data->via.array.ptr [0], "content"), "你们支持比特币付款吗");
    CHECK_STR (h_str (&data->via.array.ptr [1], "role"), "assistant");
    CHECK (kf_mp_get_int (&data->via.array.ptr [1], "id", 0) > kf_mp_get_int (&data->via.array.ptr [0], "id", 0));
    kf_reply_destroy (&reply);
    reply = h_call (client, "history", "{\"session_id\":\"%s\",\"limit\":4,\"offset\":4}", session);
    CHECK_INT (kf_mp_get (reply->result, "data")->via.array.size, 2);
    CHECK (!kf_mp_get_bool (reply->result, "has_more", true));
    const msgpack_object *last = &kf_mp_get (reply->result, "data")->via.array.ptr [1];
    CHECK_STR (h_str (last, "intent"), "knowledge_qa");
    CHECK (kf_mp_get (last, "sources")->via.array.size == 1);
    kf_reply_destroy (&reply);
    //  Another user's session is not found, never someone else's data
    reply = h_call (client, "history", "{\"session_id\":\"%s\",\"user_id\":\"intruder\"}", session);
    CHECK (!reply->ok);
    CHECK_INT (kf_errc_code (reply->error.errc), 404);
    kf_reply_destroy (&reply);
    reply = h_call (client, "chat", "{\"message\":\"你好\",\"session_id\":\"%s\",\"user_id\":\"intruder\"}", session);
    CHECK (!reply->ok);
    CHECK_STR (kf_errc_name (reply->error.errc), "not_found");
    kf_reply_destroy (&reply);
}

static void
s_test_intents_and_misc (kf_client_t *client)
{
    kf_reply_t *reply = h_call (client, "chat", "{\"message\":\"我要转人工！\"}");
    CHECK_STR (h_str (reply->result, "intent"), "transfer_to_human");
    CHECK (kf_mp_get_bool (reply->result, "escalate_to_human", false));
    kf_reply_destroy (&reply);
    reply = h_call (client, "chat", "{\"message\":\"你好\"}");
    CHECK_STR (h_str (reply->result, "intent"), "chitchat");
    kf_reply_destroy (&reply);
    //  Traditional characters and full-width punctuation still find the answer
    reply = h_call (client, "chat", "{\"message\":\"怎麼申請退貨？？\"}");
    CHECK (strstr (h_str (reply->result, "reply"), "申请售后"));
    kf_reply_destroy (&reply);
    reply = h_call (client, "chat", "{\"message\":\"hi\",\"session_id\":\"s_doesnotexist\"}");
    CHECK (!reply->ok);
    CHECK_INT (kf_errc_code (reply->error.errc), 404);
    kf_reply_destroy (&reply);
    reply = h_call (client, "stats", NULL);
    CHECK (reply->ok);
    CHECK (kf_mp_get_int (kf_mp_get (reply->result, "jobs"), "done", 0) >= 8);
    CHECK_INT (kf_mp_get (reply->result, "workers")->via.array.size, 2);
    kf_reply_destroy (&reply);
}

int
main (void)
{
    kf_harness_t h;
    h_init (&h, "chat");
    h_start_broker (&h, 2, NULL);
    h_import_sample (&h);
    kf_client_t *client = h_client (&h);
    s_test_faq_answer (client);
    s_test_stream (client);
    s_test_no_answer (client);
    s_test_intents_and_misc (client);
    //  kefuctl chat prints the streamed answer
    const char *args [] = { "chat", "怎么申请退货？", NULL };
    CHECK_INT (h_kefuctl (&h, args), 0);
    kf_client_destroy (&client);
    h_cleanup (&h);
    TEST_PASS ("test_chat");
    return 0;
}
