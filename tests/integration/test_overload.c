/*  test_overload.c - past its bounded queue the broker answers 429 busy at once with a retry hint;
    a job past its deadline gets 504 (and an error event when streaming); with no worker at all the
    client still gets an answer. Every request gets exactly one reply. */
#include "harness.h"
#include "common/log.h"
#include <signal.h>

#define S_REQUESTS 40

static void
s_test_busy (void)
{
    kf_harness_t h;
    h_init (&h, "overload");
    const char *args [] = { "--max-pending", "5", "--pace-ms", "20", "--stream-wait-ms", "0", NULL };
    h_start_broker (&h, 1, args);
    h_raw_t raw;
    h_raw_open (&raw, &h);
    for (int i = 0; i < S_REQUESTS; i++) {
        char id [32];
        snprintf (id, sizeof id, "busy-%d", i);
        h_raw_send (&raw, id, "chat", "{\"message\":\"你是谁\",\"stream\":true}");
    }
    int ok = 0, busy = 0;
    bool seen [S_REQUESTS] = { false };
    for (int i = 0; i < S_REQUESTS; i++) {
        kf_reply_t *reply = h_raw_reply (&raw, 10000);
        CHECK (reply);
        char id [64];
        int index = atoi (h_reply_id (reply, id, sizeof id) + 5);
        CHECK (index >= 0 && index < S_REQUESTS && !seen [index]);
        seen [index] = true;
        if (reply->ok)
            ok++;
        else {
            CHECK_INT (kf_errc_code (reply->error.errc), 429);
            CHECK_STR (kf_errc_name (reply->error.errc), "busy");
            CHECK (reply->error.retry_after_ms > 0);
            busy++;
        }
        kf_reply_destroy (&reply);
    }
    CHECK (ok >= 5);
    CHECK (busy >= 1);
    CHECK_INT (ok + busy, S_REQUESTS);
    printf ("overload: %d answered, %d told busy\n", ok, busy);
    //  Nothing more arrives: exactly one reply each
    CHECK (h_raw_reply (&raw, 300) == NULL);
    h_raw_close (&raw);
    h_cleanup (&h);
}

static void
s_test_deadline (void)
{
    kf_harness_t h;
    h_init (&h, "deadline");
    const char *args [] = { "--job-timeout-ms", "300", "--pace-ms", "100", NULL };
    h_start_broker (&h, 1, args);
    h_raw_t raw;
    h_raw_open (&raw, &h);
    zmq_setsockopt (raw.sub, ZMQ_SUBSCRIBE, "slow-1", 6);
    h_sleep_ms (100);
    //  The canned self-introduction streams for more than a second at 100 ms per token
    h_raw_send (&raw, "slow-1", "chat", "{\"message\":\"你是谁\",\"stream\":true}");
    kf_reply_t *reply = h_raw_reply (&raw, 5000);
    CHECK (reply && !reply->ok);
    CHECK_INT (kf_errc_code (reply->error.errc), 504);
    CHECK_STR (kf_errc_name (reply->error.errc), "timeout");
    CHECK_STR (reply->error.message, "no answer within 300 ms");
    kf_reply_destroy (&reply);
    bool has_error = false;
    char topic [64];
    msgpack_unpacked event;
    while (!has_error && h_raw_event (&raw, 2000, topic, sizeof topic, &event)) {
        has_error = kf_mp_str_eq (&event.data, "event", "error");
        msgpack_unpacked_destroy (&event);
    }
    CHECK (has_error);
    //  The session is free again: the next message is answered (the canned greeting is short)
    kf_client_t *client = h_client (&h);
    reply = h_call (client, "chat", "{\"message\":\"你好\"}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    //  A message queued behind a slow one in the same session expires without ever starting: both
    //  get 504, and only the first left rows (its question, its failed answer)
    reply = h_call (client, "session.create", NULL);
    const char *session = h_str (reply->result, "session_id");
    kf_reply_destroy (&reply);
    h_raw_send (&raw, "queued-1", "chat", "{\"message\":\"你是谁\",\"session_id\":\"%s\",\"stream\":true}", session);
    h_raw_send (&raw, "queued-2", "chat", "{\"message\":\"你好\",\"session_id\":\"%s\"}", session);
    for (int i = 0; i < 2; i++) {
        reply = h_raw_reply (&raw, 5000);
        CHECK (reply && !reply->ok);
        CHECK_INT (kf_errc_code (reply->error.errc), 504);
        kf_reply_destroy (&reply);
    }
    reply = h_call (client, "history", "{\"session_id\":\"%s\"}", session);
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    CHECK_INT (data->via.array.size, 2);
    CHECK_STR (h_str (&data->via.array.ptr [0], "content"), "你是谁");
    CHECK_STR (h_str (&data->via.array.ptr [1], "status"), "error");
    kf_reply_destroy (&reply);

    //  Shutdown while a stream is held for its subscriber: the chat still ends with an error event
    //  and a 503 reply, not silence
    reply = h_call (client, "stats", NULL);
    int64_t before = kf_mp_get_int (kf_mp_get (reply->result, "jobs"), "accepted", 0);
    kf_reply_destroy (&reply);
    h_raw_send (&raw, "shutdown-1", "chat", "{\"message\":\"你好\",\"stream\":true}");
    for (int64_t accepted = before; accepted == before;) {
        h_sleep_ms (10);
        reply = h_call (client, "stats", NULL);
        accepted = kf_mp_get_int (kf_mp_get (reply->result, "jobs"), "accepted", 0);
        kf_reply_destroy (&reply);
    }
    kf_client_destroy (&client);
    zmq_setsockopt (raw.sub, ZMQ_SUBSCRIBE, "shutdown-1", 10);
    h_kill_broker (&h, SIGTERM);
    bool has_unavailable = false;
    while (!has_unavailable && h_raw_event (&raw, 3000, topic, sizeof topic, &event)) {
        has_unavailable = strcmp (topic, "shutdown-1") == 0 && kf_mp_str_eq (&event.data, "event", "error")
                       && kf_mp_str_eq (kf_mp_get (&event.data, "error"), "name", "unavailable");
        msgpack_unpacked_destroy (&event);
    }
    CHECK (has_unavailable);
    reply = h_raw_reply (&raw, 3000);
    CHECK (reply && !reply->ok);
    CHECK_INT (kf_errc_code (reply->error.errc), 503);
    kf_reply_destroy (&reply);
    h_raw_close (&raw);
    h_cleanup (&h);

    //  No worker at all: the deadline still answers
    h_init (&h, "noworker");
    const char *lonely [] = { "--job-timeout-ms", "200", NULL };
    h_start_broker (&h, 0, lonely);
    client = h_client (&h);
    reply = h_call (client, "chat", "{\"message\":\"有人吗\"}");
    CHECK (!reply->ok);
    CHECK_INT (kf_errc_code (reply->error.errc), 504);
    kf_reply_destroy (&reply);
    kf_client_destroy (&client);
    h_cleanup (&h);
}

//  A burst of requests, then an immediate stop: whether the broker had read them or not, each
//  gets exactly one reply (an answer, busy, or 503 unavailable)
static void
s_test_stop_under_load (void)
{
    kf_harness_t h;
    h_init (&h, "stopload");
    const char *args [] = { "--pace-ms", "20", "--stream-wait-ms", "0", NULL };
    h_start_broker (&h, 1, args);
    h_raw_t raw;
    h_raw_open (&raw, &h);
    for (int i = 0; i < 30; i++) {
        char id [32];
        snprintf (id, sizeof id, "stop-%d", i);
        h_raw_send (&raw, id, "chat", "{\"message\":\"你是谁\",\"stream\":true}");
    }
    kill (h.broker, SIGTERM);
    bool seen [30] = { false };
    for (int i = 0; i < 30; i++) {
        kf_reply_t *reply = h_raw_reply (&raw, 5000);
        CHECK (reply);
        char id [64];
        int index = atoi (h_reply_id (reply, id, sizeof id) + 5);
        CHECK (index >= 0 && index < 30 && !seen [index]);
        seen [index] = true;
        CHECK (reply->ok || kf_errc_code (reply->error.errc) == 503 || kf_errc_code (reply->error.errc) == 429);
        kf_reply_destroy (&reply);
    }
    CHECK (h_raw_reply (&raw, 200) == NULL);
    h_raw_close (&raw);
    h_kill_broker (&h, SIGTERM);
    h_cleanup (&h);
}

int
main (void)
{
    s_test_busy ();
    s_test_stop_under_load ();
    s_test_deadline ();
    TEST_PASS ("test_overload");
    return 0;
}
