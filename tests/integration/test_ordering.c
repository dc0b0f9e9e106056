/*  test_ordering.c - the messages of one session are answered in order, one at a time, even when a
    client sends them all at once and several workers are free; other sessions are not held up. */
#include "harness.h"
#include "common/log.h"

#define S_MESSAGES 12

static const char *s_questions [] = { "怎么申请退货？", "发票怎么开", "运费多少钱", "你好" };

int
main (void)
{
    kf_harness_t h;
    h_init (&h, "ordering");
    //  Paced streams make each answer take a while, so reordering would show
    const char *args [] = { "--pace-ms", "2", "--stream-wait-ms", "0", NULL };
    h_start_broker (&h, 2, args);
    h_import_sample (&h);
    kf_client_t *client = h_client (&h);
    kf_reply_t *reply = h_call (client, "session.create", "{\"user_id\":\"order-user\"}");
    const char *session = h_str (reply->result, "session_id");
    kf_reply_destroy (&reply);

    h_raw_t raw;
    h_raw_open (&raw, &h);
    for (int i = 0; i < S_MESSAGES; i++) {
        char id [32];
        snprintf (id, sizeof id, "order-%d", i);
        //  Alternate streamed and plain requests: both go through the same session queue
        h_raw_send (&raw, id, "chat", "{\"message\":\"%s\",\"session_id\":\"%s\",\"stream\":%s}",
                    s_questions [i % 4], session, i % 2 ? "true" : "false");
    }
    //  Another session's message, sent last, is not queued behind the first session
    h_raw_send (&raw, "other-session", "chat", "{\"message\":\"你好\"}");
    int next = 0;
    int64_t last_message_id = 0;
    bool is_other_early = false;
    for (int received = 0; received < S_MESSAGES + 1; received++) {
        reply = h_raw_reply (&raw, 10000);
        CHECK (reply && reply->ok);
        char id [64];
        h_reply_id (reply, id, sizeof id);
        if (strcmp (id, "other-session") == 0) {
            is_other_early = next < S_MESSAGES;
            kf_reply_destroy (&reply);
            continue;
        }
        char expect [32];
        snprintf (expect, sizeof expect, "order-%d", next);
        CHECK_STR (id, expect);
        CHECK_INT (kf_mp_get_int (reply->result, "turn_count", 0), next + 1);
        int64_t message_id = kf_mp_get_int (reply->result, "message_id", 0);
        CHECK (message_id > last_message_id);
        last_message_id = message_id;
        next++;
        kf_reply_destroy (&reply);
    }
    CHECK (is_other_early);
    //  History alternates user and assistant in the order sent
    reply = h_call (client, "history", "{\"session_id\":\"%s\",\"limit\":100}", session);
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    CHECK_INT (data->via.array.size, 2 * S_MESSAGES);
    for (int i = 0; i < S_MESSAGES; i++) {
        CHECK_STR (h_str (&data->via.array.ptr [2 * i], "role"), "user");
        CHECK_STR (h_str (&data->via.array.ptr [2 * i], "content"), s_questions [i % 4]);
        CHECK_STR (h_str (&data->via.array.ptr [2 * i + 1], "role"), "assistant");
    }
    kf_reply_destroy (&reply);
    h_raw_close (&raw);
    kf_client_destroy (&client);
    h_cleanup (&h);
    TEST_PASS ("test_ordering");
    return 0;
}
