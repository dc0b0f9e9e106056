/*  test_streams.c - token streams lose nothing: many concurrent streamed chats from several clients
    arrive complete and in order without any repair; a subscriber that comes late (within the hold)
    still gets every event; one that never subscribes can fetch the whole stream afterwards. */
#include "harness.h"
#include "common/json_codec.h"
#include "common/log.h"
#include <pthread.h>

#define S_THREADS 6
#define S_CHATS 40              //  Per thread

static kf_harness_t s_h;

typedef struct {
    char text [8192];
    int64_t next_seq;
    bool is_broken;
} s_stream_t;

static void
s_on_event (void *arg, const msgpack_object *event)
{
    s_stream_t *stream = arg;
    if (kf_mp_get_int (event, "seq", -1) != stream->next_seq)
        stream->is_broken = true;
    if (stream->next_seq == 0 && !kf_mp_str_eq (event, "event", "meta"))
        stream->is_broken = true;
    stream->next_seq++;
    const char *text;
    size_t len;
    if (kf_mp_str_eq (event, "event", "token") && kf_mp_str (kf_mp_get (event, "content"), &text, &len)
    &&  strlen (stream->text) + len < sizeof stream->text)
        strncat (stream->text, text, len);
}

static const char *s_questions [] = {
    "怎么申请退货？", "发票怎么开", "运费多少钱", "优惠券在哪里领？", "App 登录不了怎么办",
    "支持 Apple Pay 吗", "退款多久到账", "怎么修改收货地址"
};

typedef struct {
    int index;
    int completed;
    unsigned long repaired;
} s_thread_t;

static void *
s_run (void *arg)
{
    s_thread_t *thread = arg;
    kf_client_t *client = h_client (&s_h);
    for (int i = 0; i < S_CHATS; i++) {
        s_stream_t stream = { 0 };
        msgpack_sbuffer params;
        h_pack_json (&params, "{\"message\":\"%s\",\"user_id\":\"load-%d\"}",
                     s_questions [(thread->index + i) % 8], thread->index);
        kf_reply_t *reply = NULL;
        CHECK_INT (kf_client_chat_stream (client, params.data, params.size, s_on_event, &stream, &reply), 0);
        msgpack_sbuffer_destroy (&params);
        CHECK (reply->ok);
        CHECK (!stream.is_broken);
        CHECK_INT (kf_mp_get_int (reply->result, "last_seq", -1), stream.next_seq - 1);
        const char *answer = h_str (reply->result, "reply");
        CHECK_STR (stream.text, answer);
        kf_reply_destroy (&reply);
        thread->completed++;
    }
    thread->repaired = kf_client_repaired (client);
    kf_client_destroy (&client);
    return NULL;
}

//  Concurrent streams with paced tokens: every event arrives, none needed repair
static void
s_test_load (void)
{
    pthread_t threads [S_THREADS];
    s_thread_t state [S_THREADS] = { { 0 } };
    for (int i = 0; i < S_THREADS; i++) {
        state [i].index = i;
        CHECK_INT (pthread_create (&threads [i], NULL, s_run, &state [i]), 0);
    }
    unsigned long repaired = 0;
    for (int i = 0; i < S_THREADS; i++) {
        pthread_join (threads [i], NULL);
        CHECK_INT (state [i].completed, S_CHATS);
        repaired += state [i].repaired;
    }
    CHECK_INT (repaired, 0);
    printf ("streams: %d streamed chats complete, %lu events repaired\n", S_THREADS * S_CHATS, repaired);
}

//  Collects the events of one topic from a raw SUB until `done` or `error`
static int64_t
s_collect (h_raw_t *raw, const char *id, char *text, size_t size)
{
    int64_t next_seq = 0;
    while (true) {
        char topic [128];
        msgpack_unpacked event;
        CHECK (h_raw_event (raw, 5000, topic, sizeof topic, &event));
        if (strcmp (topic, id) == 0) {
            if (kf_mp_get_int (&event.data, "seq", -1) != next_seq) {
                char *json = kf_json_from_msgpack (&event.data);
                fprintf (stderr, "unexpected event: %s\n", json);
                free (json);
            }
            CHECK_INT (kf_mp_get_int (&event.data, "seq", -1), next_seq);
            next_seq++;
            const char *content;
            size_t len;
            if (kf_mp_str (kf_mp_get (&event.data, "content"), &content, &len) && strlen (text) + len < size)
                strncat (text, content, len);
            bool is_end = kf_mp_str_eq (&event.data, "event", "done") || kf_mp_str_eq (&event.data, "event", "error");
            msgpack_unpacked_destroy (&event);
            if (is_end)
                return next_seq;
        }
        else
            msgpack_unpacked_destroy (&event);
    }
}

//  Subscribing after sending, within the hold: nothing is lost (the slow-joiner race)
static void
s_test_late_subscriber (void)
{
    h_raw_t raw;
    h_raw_open (&raw, &s_h);
    h_raw_send (&raw, "late-1", "chat", "{\"message\":\"怎么申请退货？\",\"stream\":true}");
    h_sleep_ms (150);
    zmq_setsockopt (raw.sub, ZMQ_SUBSCRIBE, "late-1", 6);
    char text [8192] = "";
    int64_t events = s_collect (&raw, "late-1", text, sizeof text);
    kf_reply_t *reply = h_raw_reply (&raw, 5000);
    CHECK (reply && reply->ok);
    CHECK_INT (kf_mp_get_int (reply->result, "last_seq", -1), events - 1);
    CHECK_STR (text, h_str (reply->result, "reply"));
    kf_reply_destroy (&reply);

    //  A prefix subscription ("late-") by someone else does not release "late-2" early; its own
    //  subscriber still gets everything from seq 0
    h_raw_t other;
    h_raw_open (&other, &s_h);
    zmq_setsockopt (other.sub, ZMQ_SUBSCRIBE, "late-", 5);
    h_sleep_ms (50);
    h_raw_send (&raw, "late-2", "chat", "{\"message\":\"发票怎么开\",\"stream\":true}");
    h_sleep_ms (150);
    zmq_setsockopt (raw.sub, ZMQ_SUBSCRIBE, "late-2", 6);
    text [0] = 0;
    events = s_collect (&raw, "late-2", text, sizeof text);
    reply = h_raw_reply (&raw, 5000);
    CHECK (reply && reply->ok);
    CHECK_INT (kf_mp_get_int (reply->result, "last_seq", -1), events - 1);
    kf_reply_destroy (&reply);
    h_raw_close (&other);

    //  Never subscribed: after the hold the stream goes out to nobody; stream.fetch returns it all
    h_raw_send (&raw, "nosub-1", "chat", "{\"message\":\"运费多少钱\",\"stream\":true}");
    reply = h_raw_reply (&raw, 5000);
    CHECK (reply && reply->ok);
    int64_t last_seq = kf_mp_get_int (reply->result, "last_seq", -1);
    const char *answer = h_str (reply->result, "reply");
    kf_reply_destroy (&reply);
    kf_client_t *client = h_client (&s_h);
    reply = h_call (client, "stream.fetch", "{\"stream_id\":\"nosub-1\",\"from_seq\":0}");
    CHECK (reply->ok);
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    CHECK_INT (data->via.array.size, last_seq + 1);
    CHECK (kf_mp_get_bool (reply->result, "ended", false));
    char joined [8192] = "";
    for (uint32_t i = 0; i < data->via.array.size; i++) {
        const msgpack_object *event = &data->via.array.ptr [i];
        CHECK_INT (kf_mp_get_int (event, "seq", -1), i);
        const char *content;
        size_t len;
        if (kf_mp_str (kf_mp_get (event, "content"), &content, &len))
            strncat (joined, content, len);
    }
    CHECK_STR (joined, answer);
    kf_reply_destroy (&reply);
    //  The same id while that stream is open is a conflict; once ended it may be reused
    reply = h_call (client, "chat", "{\"message\":\"你好\",\"stream\":false}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    kf_client_destroy (&client);
    h_raw_close (&raw);
}

int
main (void)
{
    h_init (&s_h, "streams");
    const char *args [] = { "--pace-ms", "1", "--stream-wait-ms", "400", NULL };
    h_start_broker (&s_h, 2, args);
    h_import_sample (&s_h);
    s_test_load ();
    s_test_late_subscriber ();
    h_cleanup (&s_h);
    TEST_PASS ("test_streams");
    return 0;
}
