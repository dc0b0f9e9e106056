/*  test_lifecycle.c - after the answers: feedback on an answer (stored, shown in history, counted in
    stats, revocable, only on answers, only by their user), closing a session with a satisfaction
    score (a closed session refuses chat), and idle sessions closing themselves. */
#include "harness.h"
#include "common/log.h"

static int64_t
s_chat (kf_client_t *client, const char *session, const char *message)
{
    kf_reply_t *reply = h_call (client, "chat", "{\"message\":\"%s\",\"session_id\":\"%s\",\"user_id\":\"life-1\"}",
                                message, session);
    CHECK (reply->ok);
    int64_t id = kf_mp_get_int (reply->result, "message_id", 0);
    kf_reply_destroy (&reply);
    return id;
}

static void
s_expect_error (kf_reply_t *reply, int code, const char *name)
{
    CHECK (!reply->ok);
    CHECK_INT (kf_errc_code (reply->error.errc), code);
    CHECK_STR (kf_errc_name (reply->error.errc), name);
    kf_reply_destroy (&reply);
}

static void
s_test_feedback (kf_client_t *client, const char *session)
{
    int64_t answer = s_chat (client, session, "怎么申请退货？");
    kf_reply_t *reply = h_call (client, "feedback", "{\"message_id\":%lld,\"rating\":\"like\",\"user_id\":\"life-1\"}",
                                (long long) answer);
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "rating"), "like");
    kf_reply_destroy (&reply);
    //  Changing one's mind: dislike with a reason replaces the like
    reply = h_call (client, "feedback", "{\"message_id\":%lld,\"rating\":\"dislike\",\"content\":\"没说清楚运费谁出\"}",
                    (long long) answer);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "message.get", "{\"message_id\":%lld}", (long long) answer);
    const msgpack_object *feedback = kf_mp_get (reply->result, "feedback");
    CHECK (feedback && feedback->type == MSGPACK_OBJECT_MAP);
    CHECK_STR (h_str (feedback, "rating"), "dislike");
    CHECK_STR (h_str (feedback, "content"), "没说清楚运费谁出");
    kf_reply_destroy (&reply);
    //  Counted per bot and per knowledge item
    reply = h_call (client, "stats", NULL);
    const msgpack_object *stats = kf_mp_get (reply->result, "feedback");
    const msgpack_object *by_bot = kf_mp_get (stats, "by_bot");
    CHECK_INT (by_bot->via.array.size, 1);
    CHECK_STR (h_str (&by_bot->via.array.ptr [0], "bot_id"), "default");
    CHECK_INT (kf_mp_get_int (&by_bot->via.array.ptr [0], "dislikes", 0), 1);
    const msgpack_object *by_item = kf_mp_get (stats, "by_item");
    CHECK_INT (by_item->via.array.size, 1);
    CHECK_STR (h_str (&by_item->via.array.ptr [0], "external_id"), "faq-001");
    kf_reply_destroy (&reply);
    //  Revoked with null: gone from history
    reply = h_call (client, "feedback", "{\"message_id\":%lld,\"rating\":null}", (long long) answer);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "history", "{\"session_id\":\"%s\"}", session);
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    CHECK (kf_mp_get (&data->via.array.ptr [1], "feedback")->type == MSGPACK_OBJECT_NIL);
    kf_reply_destroy (&reply);
    //  Only answers, only existing ones, only by their user, only known ratings
    s_expect_error (h_call (client, "feedback", "{\"message_id\":%lld,\"rating\":\"like\"}", (long long) answer - 1),
                    400, "invalid_param");
    s_expect_error (h_call (client, "feedback", "{\"message_id\":99999999,\"rating\":\"like\"}"), 404, "not_found");
    s_expect_error (h_call (client, "feedback", "{\"message_id\":%lld,\"rating\":\"like\",\"user_id\":\"intruder\"}",
                            (long long) answer), 404, "not_found");
    s_expect_error (h_call (client, "feedback", "{\"message_id\":%lld,\"rating\":\"love\"}", (long long) answer),
                    400, "invalid_param");
    s_expect_error (h_call (client, "feedback", "{\"message_id\":%lld}", (long long) answer), 400, "missing_argument");
}

static void
s_test_close (kf_client_t *client, const char *session)
{
    s_expect_error (h_call (client, "session.close", "{\"session_id\":\"%s\"}", session), 400, "missing_argument");
    s_expect_error (h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":2}", session),
                    400, "missing_argument");
    s_expect_error (h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":3}", session),
                    400, "invalid_param");
    s_expect_error (h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":1,\"user_id\":\"intruder\"}",
                            session), 404, "not_found");
    kf_reply_t *reply = h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":1,\"satisfaction\":1}",
                                session);
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "state"), "closed");
    CHECK_INT (kf_mp_get_int (reply->result, "satisfaction", 0), 1);
    kf_reply_destroy (&reply);
    s_expect_error (h_call (client, "chat", "{\"message\":\"还在吗\",\"session_id\":\"%s\"}", session),
                    409, "session_closed");
    s_expect_error (h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":1}", session),
                    409, "session_closed");
    //  Its history stays readable; a new session is one call away
    reply = h_call (client, "history", "{\"session_id\":\"%s\"}", session);
    CHECK (reply->ok && kf_mp_get_int (reply->result, "total", 0) == 2);
    kf_reply_destroy (&reply);
    reply = h_call (client, "chat", "{\"message\":\"你好\",\"user_id\":\"life-1\"}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    //  Transferred to a person, with the reason
    reply = h_call (client, "session.create", "{\"user_id\":\"life-1\"}");
    const char *other = h_str (reply->result, "session_id");
    kf_reply_destroy (&reply);
    reply = h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":2,\"bot2human_reason\":3,"
                    "\"satisfaction\":3}", other);
    CHECK (reply->ok);
    CHECK_INT (kf_mp_get_int (reply->result, "bot2human_reason", 0), 3);
    kf_reply_destroy (&reply);
}

int
main (void)
{
    kf_harness_t h;
    h_init (&h, "lifecycle");
    h_start_broker (&h, 1, NULL);
    h_import_sample (&h);
    kf_client_t *client = h_client (&h);
    kf_reply_t *reply = h_call (client, "session.create", "{\"user_id\":\"life-1\",\"channel\":\"wxmini\"}");
    const char *session = h_str (reply->result, "session_id");
    kf_reply_destroy (&reply);
    s_test_feedback (client, session);
    s_test_close (client, session);
    kf_client_destroy (&client);
    h_cleanup (&h);

    //  Idle sessions close themselves (and stay closed after a restart: it is stored)
    h_init (&h, "idle");
    const char *args [] = { "--idle-close-ms", "300", NULL };
    h_start_broker (&h, 1, args);
    client = h_client (&h);
    reply = h_call (client, "chat", "{\"message\":\"你好\"}");
    session = h_str (reply->result, "session_id");
    kf_reply_destroy (&reply);
    h_sleep_ms (1800);
    s_expect_error (h_call (client, "chat", "{\"message\":\"你好\",\"session_id\":\"%s\"}", session),
                    409, "session_closed");
    kf_client_destroy (&client);
    h_cleanup (&h);
    TEST_PASS ("test_lifecycle");
    return 0;
}
