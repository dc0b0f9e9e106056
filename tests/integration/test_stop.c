/*  test_stop.c - chat.stop end to end: a slow LLM stream from the fake upstream stopped after a
    few tokens (done with stopped: true soon after the request, the upstream connection closed,
    history holding exactly the streamed text), a paced knowledge-base stream stopped, a chat
    queued behind another of its session stopped (empty answer), stops repeated and of finished
    messages (stopped as they ended; history says which answers were stopped), the ownership rule and parameter errors. */
#include "harness.h"
#include "common/clock.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_KEY "sk-kefu-test-stop"

static int s_port;
static pid_t s_fake;

//  The fake's GET /stats: connections the client closed early, and connections open
static void
s_fake_stats (unsigned long long *client_closes, int *open)
{
    char *json = h_fake_stats (s_port);
    *client_closes = (unsigned long long) h_fake_stat (json, "client_closes");
    *open = (int) h_fake_stat (json, "open");       //  The stats connection itself may count
    free (json);
}

typedef struct {
    char text [4096];           //  Token contents so far
    int tokens;
    int64_t message_id;
    char session [64];
    bool is_done, is_stopped;
    char done_reply [4096];
    int64_t done_us;
} s_stream_t;

//  Reads events of `topic` until `tokens` tokens arrived (0: until done)
static void
s_read (h_raw_t *raw, const char *topic, s_stream_t *stream, int tokens)
{
    while (!stream->is_done && (tokens == 0 || stream->tokens < tokens)) {
        char got [128];
        msgpack_unpacked event;
        CHECK (h_raw_event (raw, 10000, got, sizeof got, &event));
        const msgpack_object *data = &event.data;
        if (strcmp (got, topic) == 0) {
            const char *content;
            size_t len;
            if (kf_mp_str_eq (data, "event", "meta")) {
                stream->message_id = kf_mp_get_int (data, "message_id", 0);
                snprintf (stream->session, sizeof stream->session, "%s", h_str (data, "session_id"));
            }
            else
            if (kf_mp_str_eq (data, "event", "token")) {
                CHECK (kf_mp_str (kf_mp_get (data, "content"), &content, &len));
                strncat (stream->text, content, len);
                stream->tokens++;
            }
            else
            if (kf_mp_str_eq (data, "event", "done")) {
                stream->is_done = true;
                stream->done_us = kf_mono_us ();
                stream->is_stopped = kf_mp_get_bool (data, "stopped", false);
                snprintf (stream->done_reply, sizeof stream->done_reply, "%s", h_str (data, "reply"));
                if (!stream->message_id)
                    stream->message_id = kf_mp_get_int (data, "message_id", 0);
            }
            else
                CHECK (!"unexpected event");
        }
        msgpack_unpacked_destroy (&event);
    }
}

//  The last two turns of a session: the customer's `message`, then the answer `answer`
static void
s_check_history (kf_client_t *client, const char *session, const char *message, const char *answer,
                 bool is_stopped)
{
    kf_reply_t *reply = h_call (client, "history", "{\"session_id\":\"%s\",\"limit\":100}", session);
    CHECK (reply->ok);
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    CHECK (data && data->via.array.size >= 2);
    const msgpack_object *last = &data->via.array.ptr [data->via.array.size - 1];
    const msgpack_object *before = &data->via.array.ptr [data->via.array.size - 2];
    CHECK_STR (h_str (last, "role"), "assistant");
    CHECK_STR (h_str (last, "content"), answer);
    CHECK (kf_mp_get (last, "stopped"));
    CHECK (kf_mp_get_bool (last, "stopped", !is_stopped) == is_stopped);
    CHECK_STR (h_str (before, "role"), "user");
    CHECK_STR (h_str (before, "content"), message);
    kf_reply_destroy (&reply);
}

static void
s_check_error (kf_client_t *client, kf_errc_t errc, const char *json)
{
    kf_reply_t *reply = h_call (client, "chat.stop", "%s", json);
    if (reply->ok || reply->error.errc != errc)
        fprintf (stderr, "chat.stop %s: expected error %d\n", json, (int) errc);
    CHECK (!reply->ok);
    CHECK_INT (reply->error.errc, errc);
    kf_reply_destroy (&reply);
}

//  A slow LLM stream stopped after 3 tokens, twice at once, and once more after its end
static void
s_test_llm (kf_harness_t *h, kf_client_t *client)
{
    unsigned long long closes_before, closes_after;
    int open;
    s_fake_stats (&closes_before, &open);
    h_raw_t raw;
    h_raw_open (&raw, h);
    zmq_setsockopt (raw.sub, ZMQ_SUBSCRIBE, "llm-1", 5);
    h_sleep_ms (100);
    h_raw_send (&raw, "llm-1", "chat", "{\"message\":\"优惠券\",\"bot_id\":\"slow\",\"user_id\":\"u1\","
                "\"stream\":true}");
    s_stream_t stream = { 0 };
    s_read (&raw, "llm-1", &stream, 3);
    CHECK (stream.message_id > 0);
    CHECK (!stream.is_done);
    //  The wrong user sees no such message; the stream goes on
    s_check_error (client, KF_E_NOT_FOUND, "{\"message_id\":1000000}");
    char json [256];
    snprintf (json, sizeof json, "{\"message_id\":%lld,\"user_id\":\"intruder\"}",
              (long long) stream.message_id);
    s_check_error (client, KF_E_NOT_FOUND, json);
    int64_t stop_us = kf_mono_us ();
    h_raw_send (&raw, "stop-1", "chat.stop", "{\"message_id\":%lld,\"user_id\":\"u1\"}",
                (long long) stream.message_id);
    h_raw_send (&raw, "stop-2", "chat.stop", "{\"message_id\":%lld}", (long long) stream.message_id);
    s_read (&raw, "llm-1", &stream, 0);
    double stop_ms = (stream.done_us - stop_us) / 1000.0;
    printf ("stop: LLM stream stopped after %d tokens; done %.1f ms after chat.stop\n",
            stream.tokens, stop_ms);
    CHECK (stop_ms < 500);
    CHECK (stream.is_stopped);
    CHECK (strlen (stream.text) > 0);
    CHECK (strcmp (stream.text, "您好，这里是测试回答：退货请在订单页申请售后。") != 0);
    CHECK_STR (stream.done_reply, stream.text);
    kf_reply_t *reply = h_raw_reply_for (&raw, "llm-1");
    CHECK (reply->ok);
    CHECK (kf_mp_get_bool (reply->result, "stopped", false));
    CHECK_STR (h_str (reply->result, "reply"), stream.text);
    kf_reply_destroy (&reply);
    for (int i = 1; i <= 2; i++) {
        reply = h_raw_reply_for (&raw, i == 1 ? "stop-1" : "stop-2");
        CHECK (reply->ok);
        //  The second stop may reach the broker after the worker's answer to the first: then the
        //  answer had already ended, stopped, and history says so (same answer either way)
        CHECK (kf_mp_get_bool (reply->result, "stopped", false));
        CHECK_INT (kf_mp_get_int (reply->result, "message_id", 0), stream.message_id);
        CHECK_STR (h_str (reply->result, "session_id"), stream.session);
        CHECK_STR (h_str (reply->result, "content"), stream.text);
        kf_reply_destroy (&reply);
    }
    //  The upstream saw its connection closed early
    for (int i = 0; i < 50; i++) {
        s_fake_stats (&closes_after, &open);
        if (closes_after > closes_before)
            break;
        h_sleep_ms (20);
    }
    CHECK (closes_after > closes_before);
    s_check_history (client, stream.session, "优惠券", stream.text, true);
    //  Stopped again, now that it has ended: nothing changes, and it says it was stopped
    snprintf (json, sizeof json, "{\"message_id\":%lld,\"user_id\":\"u1\"}", (long long) stream.message_id);
    reply = h_call (client, "chat.stop", "%s", json);
    CHECK (reply->ok);
    CHECK (kf_mp_get_bool (reply->result, "stopped", false));
    CHECK_STR (h_str (reply->result, "content"), stream.text);
    kf_reply_destroy (&reply);
    snprintf (json, sizeof json, "{\"message_id\":%lld,\"user_id\":\"intruder\"}",
              (long long) stream.message_id);
    s_check_error (client, KF_E_NOT_FOUND, json);
    //  The customer's own message is not an answer
    snprintf (json, sizeof json, "{\"message_id\":%lld}", (long long) stream.message_id - 1);
    s_check_error (client, KF_E_INVALID_PARAM, json);
    h_raw_close (&raw);
}

//  The pid of the worker holding a job (stats: active > 0)
static pid_t
s_busy_worker (kf_client_t *client)
{
    kf_reply_t *reply = h_call (client, "stats", "{}");
    CHECK (reply->ok);
    const msgpack_object *workers = kf_mp_get (reply->result, "workers");
    pid_t pid = 0;
    for (uint32_t i = 0; workers && i < workers->via.array.size; i++)
        if (kf_mp_get_int (&workers->via.array.ptr [i], "active", 0) > 0)
            pid = (pid_t) kf_mp_get_int (&workers->via.array.ptr [i], "pid", 0);
    kf_reply_destroy (&reply);
    CHECK (pid > 0);
    return pid;
}

//  A worker that does not answer the STOP (frozen): the broker ends the chat itself after 100 ms
//  with the text it relayed
static void
s_test_silent_worker (kf_harness_t *h, kf_client_t *client)
{
    h_raw_t raw;
    h_raw_open (&raw, h);
    zmq_setsockopt (raw.sub, ZMQ_SUBSCRIBE, "frozen", 6);
    h_sleep_ms (100);
    h_raw_send (&raw, "frozen", "chat", "{\"message\":\"优惠券\",\"bot_id\":\"slow\",\"stream\":true}");
    s_stream_t stream = { 0 };
    s_read (&raw, "frozen", &stream, 2);
    pid_t worker = s_busy_worker (client);
    CHECK_INT (kill (worker, SIGSTOP), 0);
    int64_t stop_us = kf_mono_us ();
    h_raw_send (&raw, "stop-frozen", "chat.stop", "{\"request_id\":\"frozen\"}");
    s_read (&raw, "frozen", &stream, 0);
    double stop_ms = (stream.done_us - stop_us) / 1000.0;
    printf ("stop: frozen worker: done %.1f ms after chat.stop\n", stop_ms);
    CHECK_INT (kill (worker, SIGCONT), 0);
    CHECK (stop_ms >= 90 && stop_ms < 1000);
    CHECK (stream.is_stopped);
    CHECK_STR (stream.done_reply, stream.text);
    kf_reply_t *reply = h_raw_reply_for (&raw, "stop-frozen");
    CHECK (reply->ok && kf_mp_get_bool (reply->result, "stopped", false));
    CHECK_STR (h_str (reply->result, "content"), stream.text);
    kf_reply_destroy (&reply);
    reply = h_raw_reply_for (&raw, "frozen");
    CHECK (reply->ok && kf_mp_get_bool (reply->result, "stopped", false));
    kf_reply_destroy (&reply);
    s_check_history (client, stream.session, "优惠券", stream.text, true);
    h_raw_close (&raw);
}

//  A paced knowledge-base stream stopped after 3 tokens
static void
s_test_paced (kf_harness_t *h, kf_client_t *client)
{
    h_raw_t raw;
    h_raw_open (&raw, h);
    zmq_setsockopt (raw.sub, ZMQ_SUBSCRIBE, "kb-1", 4);
    h_sleep_ms (100);
    h_raw_send (&raw, "kb-1", "chat", "{\"message\":\"怎么申请退货？\",\"user_id\":\"u2\",\"stream\":true}");
    s_stream_t stream = { 0 };
    s_read (&raw, "kb-1", &stream, 3);
    int64_t stop_us = kf_mono_us ();
    h_raw_send (&raw, "stop-kb", "chat.stop", "{\"message_id\":%lld,\"user_id\":\"u2\"}",
                (long long) stream.message_id);
    s_read (&raw, "kb-1", &stream, 0);
    double stop_ms = (stream.done_us - stop_us) / 1000.0;
    printf ("stop: paced stream stopped after %d tokens; done %.1f ms after chat.stop\n",
            stream.tokens, stop_ms);
    CHECK (stop_ms < 500);
    CHECK (stream.is_stopped);
    CHECK_STR (stream.done_reply, stream.text);
    kf_reply_t *reply = h_raw_reply_for (&raw, "stop-kb");
    CHECK (reply->ok);
    CHECK (kf_mp_get_bool (reply->result, "stopped", false));
    CHECK_STR (h_str (reply->result, "content"), stream.text);
    kf_reply_destroy (&reply);
    reply = h_raw_reply_for (&raw, "kb-1");
    CHECK (reply->ok && kf_mp_get_bool (reply->result, "stopped", false));
    CHECK_STR (h_str (reply->result, "reply"), stream.text);
    CHECK (strstr (h_str (reply->result, "reply"), "申请售后") == NULL);     //  Cut short
    kf_reply_destroy (&reply);
    s_check_history (client, stream.session, "怎么申请退货？", stream.text, true);
    //  The next answer is whole, and says it was not stopped
    reply = h_call (client, "chat", "{\"message\":\"怎么申请退货？\",\"session_id\":\"%s\",\"user_id\":\"u2\"}",
                    stream.session);
    CHECK (reply->ok);
    CHECK (!kf_mp_get_bool (reply->result, "stopped", true));
    CHECK (kf_mp_get (reply->result, "stopped"));
    CHECK (strstr (h_str (reply->result, "reply"), "申请售后"));
    char whole [4096];
    snprintf (whole, sizeof whole, "%s", h_str (reply->result, "reply"));
    kf_reply_destroy (&reply);
    s_check_history (client, stream.session, "怎么申请退货？", whole, false);
    h_raw_close (&raw);
}

//  A chat queued behind another of its session, stopped by its request id: ends at once, empty
static void
s_test_queued (kf_harness_t *h, kf_client_t *client)
{
    kf_reply_t *reply = h_call (client, "session.create", "{\"user_id\":\"u3\",\"bot_id\":\"slow\"}");
    CHECK (reply->ok);
    char session [64];
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    h_raw_t raw, other;             //  One per stream: a SUB reading one topic drops the other's
    h_raw_open (&raw, h);
    h_raw_open (&other, h);
    zmq_setsockopt (raw.sub, ZMQ_SUBSCRIBE, "q-first", 7);
    zmq_setsockopt (other.sub, ZMQ_SUBSCRIBE, "q-second", 8);
    h_sleep_ms (100);
    h_raw_send (&raw, "q-first", "chat", "{\"message\":\"优惠券\",\"session_id\":\"%s\",\"user_id\":\"u3\","
                "\"stream\":true}", session);
    s_stream_t first = { 0 }, second = { 0 };
    s_read (&raw, "q-first", &first, 1);    //  Running before the second is sent (two sockets)
    h_raw_send (&other, "q-second", "chat", "{\"message\":\"发票怎么开\",\"session_id\":\"%s\","
                "\"user_id\":\"u3\",\"stream\":true}", session);
    s_check_error (client, KF_E_NOT_FOUND, "{\"request_id\":\"q-second\",\"user_id\":\"intruder\"}");
    int64_t stop_us = kf_mono_us ();
    h_raw_send (&other, "stop-q", "chat.stop", "{\"request_id\":\"q-second\",\"user_id\":\"u3\"}");
    kf_reply_t *stopped = h_raw_reply_for (&other, "stop-q");
    printf ("stop: queued chat stopped in %.1f ms\n", (kf_mono_us () - stop_us) / 1000.0);
    CHECK (stopped->ok);
    CHECK (kf_mp_get_bool (stopped->result, "stopped", false));
    CHECK_STR (h_str (stopped->result, "content"), "");
    int64_t second_id = kf_mp_get_int (stopped->result, "message_id", 0);
    CHECK (second_id > 0);
    kf_reply_destroy (&stopped);
    reply = h_raw_reply_for (&other, "q-second");
    CHECK (reply->ok && kf_mp_get_bool (reply->result, "stopped", false));
    CHECK_STR (h_str (reply->result, "reply"), "");
    CHECK_INT (kf_mp_get_int (reply->result, "message_id", 0), second_id);
    kf_reply_destroy (&reply);
    //  Its only event is done, stopped (it never reached a worker, so no meta)
    s_read (&other, "q-second", &second, 0);
    h_raw_close (&other);
    CHECK (second.is_stopped && second.tokens == 0);
    s_check_history (client, session, "发票怎么开", "", true);
    //  The first goes on until it is stopped by request id as well
    h_raw_send (&raw, "stop-q1", "chat.stop", "{\"request_id\":\"q-first\"}");
    s_read (&raw, "q-first", &first, 0);
    CHECK (first.is_stopped);
    reply = h_raw_reply_for (&raw, "stop-q1");
    CHECK (reply->ok && kf_mp_get_bool (reply->result, "stopped", false));
    CHECK_STR (h_str (reply->result, "content"), first.text);
    kf_reply_destroy (&reply);
    reply = h_raw_reply_for (&raw, "q-first");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    //  Both turns are stored, in the order their rows were made
    reply = h_call (client, "history", "{\"session_id\":\"%s\"}", session);
    CHECK (reply->ok);
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    CHECK_INT (data->via.array.size, 4);
    CHECK_STR (h_str (&data->via.array.ptr [1], "content"), first.text);
    kf_reply_destroy (&reply);
    //  Over now: stopping by request id finds nothing in progress
    s_check_error (client, KF_E_NOT_FOUND, "{\"request_id\":\"q-first\"}");
    h_raw_close (&raw);
}

static void
s_test_params (kf_client_t *client)
{
    s_check_error (client, KF_E_MISSING_ARGUMENT, "{}");
    s_check_error (client, KF_E_MISSING_ARGUMENT, "{\"message_id\":null}");
    s_check_error (client, KF_E_INVALID_PARAM, "{\"message_id\":\"12\"}");
    s_check_error (client, KF_E_INVALID_PARAM, "{\"message_id\":0}");
    s_check_error (client, KF_E_INVALID_PARAM, "{\"message_id\":-3}");
    s_check_error (client, KF_E_INVALID_PARAM, "{\"message_id\":1,\"request_id\":\"x\"}");
    s_check_error (client, KF_E_INVALID_PARAM, "{\"request_id\":\"\"}");
    s_check_error (client, KF_E_INVALID_PARAM, "{\"message_id\":1,\"user_id\":7}");
}

int
main (void)
{
    s_port = h_start_fake_upstream (&s_fake);
    kf_harness_t h;
    h_init (&h, "stop");
    char config [320];
    snprintf (config, sizeof config, "%s/kefu.ini", h.dir);
    FILE *file = fopen (config, "w");
    CHECK (file);
    //  40 bytes every 50 ms: about 150 ms a token, so a stop lands mid-answer
    fprintf (file, "[upstream slow]\nkind = openai\nbase_url = http://127.0.0.1:%d/v1\n"
             "api_key = %s\nheaders = X-Fake-Auth: %s | X-Fake-Chunk: 40 | X-Fake-Delay-Ms: 50\nmodel = fake-model\n"
             "idle_timeout_ms = 5000\n[bot slow]\nupstream = slow\nllm = always\n", s_port, S_KEY, S_KEY);
    fclose (file);
    const char *args [] = { "--config", config, "--pace-ms", "60", NULL };
    h_start_broker (&h, 2, args);
    h_import_sample (&h);
    kf_client_t *client = h_client (&h);
    s_test_params (client);
    s_test_llm (&h, client);
    s_test_paced (&h, client);
    s_test_queued (&h, client);
    s_test_silent_worker (&h, client);
    //  The worker thawed and took its late FINAL in stride: chats still work
    kf_reply_t *reply = h_call (client, "chat", "{\"message\":\"怎么申请退货？\"}");
    CHECK (reply->ok && !kf_mp_get_bool (reply->result, "stopped", true));
    kf_reply_destroy (&reply);
    kf_client_destroy (&client);
    h_cleanup (&h);
    kill (s_fake, SIGKILL);
    printf ("stop: all passed\n");
    return 0;
}
