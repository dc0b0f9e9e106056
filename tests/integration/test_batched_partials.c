/*  test_batched_partials.c - batched PARTIALs (PROTOCOL.md 9.6) over real processes. A scripted KFW1
    worker on the broker's worker socket (this test speaks KFW1) is told FEATURES {partial_batch:
    true} after READY, then sends one job's events as a PARTIAL array and several jobs' at once as
    PARTIALS, beside the old one-event PARTIAL, and the ugly cases: a bad element among good ones,
    an event the broker does not relay, an empty array, a body that is neither map nor array,
    undecodable bytes, pairs that are not pairs, a job nobody has, a non-streamed job, tokens for a
    job that has finished. A client watching the streams must see every good event alone, with its
    own seq, in order, and nothing else. Then KB_GET (9.10) with bodies that are not {version: int}:
    each is answered as one from a worker that has no knowledge base. Last, ACQUIRE (9.2) with bodies
    that are not {upstream: name}, and for jobs the worker does not hold. */
#include "harness.h"
#include "common/clock.h"
#include "common/frames.h"
#include "common/utf8.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

//  --- The scripted worker -----------------------------------------------------------------------

static void *s_dealer;

//  Sends [KFW1, command, job_id?, body?] with the body packed from JSON (NULL: no body)
static void
s_send (const char *command, const char *job_id, const char *json)
{
    msgpack_sbuffer body;
    if (json)
        h_pack_json (&body, "%s", json);
    const void *data [4] = { "KFW1", command };
    size_t size [4] = { 4, strlen (command) };
    int count = 2;
    if (job_id) {
        data [count] = job_id;
        size [count++] = strlen (job_id);
    }
    if (json) {
        data [count] = body.data;
        size [count++] = body.size;
    }
    CHECK_INT (kf_frames_send (s_dealer, count, data, size, 0), 0);
    if (json)
        msgpack_sbuffer_destroy (&body);
}

//  Sends [KFW1, command, job_id, bytes] as given (not JSON)
static void
s_send_bytes (const char *command, const char *job_id, const char *bytes, size_t len)
{
    const void *data [4] = { "KFW1", command, job_id, bytes };
    size_t size [4] = { 4, strlen (command), strlen (job_id), len };
    CHECK_INT (kf_frames_send (s_dealer, 4, data, size, 0), 0);
}

//  The next message from the broker named `command` within 5 s (others skipped; heartbeats sent
//  meanwhile): its frames, which the caller closes. Fails the test when none comes.
static void
s_expect (const char *command, kf_frames_t *frames)
{
    int64_t deadline = kf_mono_us () + 5000000;
    while (true) {
        s_send ("HEARTBEAT", NULL, NULL);
        int64_t left = (deadline - kf_mono_us ()) / 1000;
        zmq_pollitem_t item = { s_dealer, 0, ZMQ_POLLIN, 0 };
        if (left <= 0 || zmq_poll (&item, 1, left) <= 0)
            fprintf (stderr, "no %s from the broker\n", command);
        CHECK (left > 0);
        if (zmq_poll (&item, 1, 0) <= 0)
            continue;
        CHECK_INT (kf_frames_recv (frames, s_dealer, 0), 0);
        if (kf_frames_is (frames, 1, command))
            return;
        kf_frames_close (frames);
    }
}

//  Connects, sends READY and checks that the broker says it takes batched PARTIALs
static void
s_worker_open (kf_harness_t *h, void *ctx)
{
    s_dealer = zmq_socket (ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (s_dealer, ZMQ_LINGER, &linger, sizeof linger);
    CHECK_INT (zmq_connect (s_dealer, h->workers), 0);
    //  A name longer than the broker keeps, of three-byte characters: cut on a character boundary
    char ready [256];
    snprintf (ready, sizeof ready, "{\"name\":\"批处理工人批处理工人批处理工人批处理工人批处理工人批处理工人\","
              "\"pid\":%d,\"capacity\":8}", (int) getpid ());
    s_send ("READY", NULL, ready);
    kf_frames_t frames;
    s_expect ("FEATURES", &frames);
    CHECK_INT (frames.count, 3);
    msgpack_unpacked features;
    CHECK (kf_mp_unpack_one (kf_frames_data (&frames, 2), kf_frames_size (&frames, 2), &features));
    CHECK (kf_mp_get_bool (&features.data, "partial_batch", false));
    msgpack_unpacked_destroy (&features);
    kf_frames_close (&frames);
    h_wait_workers (h, 1, true);
    kf_client_t *client = h_client (h);
    kf_reply_t *reply = h_call (client, "stats", "{}");
    const msgpack_object *workers = kf_mp_get (reply->result, "workers");
    CHECK (workers && workers->type == MSGPACK_OBJECT_ARRAY && workers->via.array.size >= 1);
    const char *name;
    size_t name_len;
    CHECK (kf_mp_str (kf_mp_get (&workers->via.array.ptr [0], "name"), &name, &name_len));
    CHECK (name_len > 0 && name_len <= 63 && name_len % 3 == 0 && kf_utf8_is_valid (name, name_len));
    kf_reply_destroy (&reply);
    kf_client_destroy (&client);
}

//  The next JOB: its id into `job_id`, its message into `message`
static void
s_expect_job (char *job_id, size_t id_size, char *message, size_t message_size)
{
    kf_frames_t frames;
    s_expect ("JOB", &frames);
    CHECK_INT (frames.count, 4);
    snprintf (job_id, id_size, "%.*s", (int) kf_frames_size (&frames, 2), kf_frames_data (&frames, 2));
    msgpack_unpacked body;
    CHECK (kf_mp_unpack_one (kf_frames_data (&frames, 3), kf_frames_size (&frames, 3), &body));
    snprintf (message, message_size, "%s", h_str (kf_mp_get (&body.data, "params"), "message"));
    msgpack_unpacked_destroy (&body);
    kf_frames_close (&frames);
}

//  Sends FINAL {ok: true, result} with `reply`
static void
s_final (const char *job_id, const char *reply)
{
    char json [512];
    snprintf (json, sizeof json, "{\"ok\":true,\"result\":{\"reply\":\"%s\",\"response_type\":\"text\","
              "\"response_content\":null,\"intent\":\"knowledge_qa\",\"confidence\":0.9,"
              "\"sources\":[],\"suggestions\":[],\"escalate_to_human\":false,\"failed_attempts\":0,"
              "\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0}}}", reply);
    s_send ("FINAL", job_id, json);
}

#define S_META "{\"event\":\"meta\",\"intent\":\"knowledge_qa\",\"confidence\":0.9,\"sources\":[]," \
               "\"suggestions\":[],\"escalate_to_human\":false}"
#define S_TOKEN(text) "{\"event\":\"token\",\"content\":\"" text "\"}"

//  --- The client's view ------------------------------------------------------------------------

//  Reads stream events until every topic of `ids` (NULL-terminated) has had its done, then 300 ms
//  more: each topic's events as "seq event[ content]" joined with "|", into texts [i]
static void
s_collect (h_raw_t *raw, const char *const *ids, char texts [][512])
{
    int count = 0, done = 0;
    while (ids [count])
        texts [count++][0] = 0;
    int64_t quiet_until = 0;
    while (done < count || kf_mono_us () < quiet_until) {
        int wait_ms = done < count ? 5000 : (int) ((quiet_until - kf_mono_us ()) / 1000) + 1;
        char topic [64];
        msgpack_unpacked event;
        if (!h_raw_event (raw, wait_ms, topic, sizeof topic, &event)) {
            if (done < count)
                fprintf (stderr, "a stream did not end: %d of %d done\n", done, count);
            CHECK (done == count);
            break;
        }
        int i = 0;
        while (i < count && strcmp (ids [i], topic) != 0)
            i++;
        if (i == count)
            fprintf (stderr, "an event on %s\n", topic);
        CHECK (i < count);
        char line [128];
        const msgpack_object *content = kf_mp_get (&event.data, "content");
        snprintf (line, sizeof line, "%s%lld %s%s%s", texts [i][0] ? "|" : "",
                  (long long) kf_mp_get_int (&event.data, "seq", -1), h_str (&event.data, "event"),
                  content ? " " : "", content ? h_str (&event.data, "content") : "");
        CHECK (strlen (texts [i]) + strlen (line) < 512);
        strcat (texts [i], line);
        if (kf_mp_str_eq (&event.data, "event", "done") && ++done == count)
            quiet_until = kf_mono_us () + 300000;
        msgpack_unpacked_destroy (&event);
    }
}

static void
s_subscribe (h_raw_t *raw, const char *id)
{
    zmq_setsockopt (raw->sub, ZMQ_SUBSCRIBE, id, strlen (id));
}

static void
s_expect_reply (h_raw_t *raw, const char *id, const char *reply_text)
{
    kf_reply_t *reply = h_raw_reply_for (raw, id);
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "reply"), reply_text);
    kf_reply_destroy (&reply);
}

//  --- Tests ------------------------------------------------------------------------------------

//  One job: the old PARTIAL, then arrays with bad elements, an empty one, bodies that are not
//  events; after FINAL, tokens for the finished job in both forms
static void
s_test_one_job (h_raw_t *raw)
{
    s_subscribe (raw, "pa-1");
    h_sleep_ms (100);
    h_raw_send (raw, "pa-1", "chat", "{\"message\":\"第一个问题\",\"stream\":true}");
    char job [32], message [64];
    s_expect_job (job, sizeof job, message, sizeof message);
    CHECK_STR (message, "第一个问题");
    s_send ("PARTIAL", job, S_META);                                    //  The old form
    s_send ("PARTIAL", job, "[" S_TOKEN ("你") "," S_TOKEN ("好") "]");
    s_send ("PARTIAL", job, "[]");
    //  Not relayed: a second meta (and a meta after a token), a token whose content is no text
    s_send ("PARTIAL", job, "[" S_META ",{\"event\":\"token\",\"content\":{\"a\":1}},"
            "{\"event\":\"token\",\"content\":7},{\"event\":\"token\"}]");
    s_send ("PARTIAL", job, "[" S_TOKEN ("，") ",42,{\"content\":\"没名字\"},[],"
            "{\"event\":\"done\",\"reply\":\"假的\"},{\"event\":\"tokenized\",\"content\":\"长名\"},"
            "{\"event\":7}," S_TOKEN ("世") ",{\"event\":\"token\",\"content\":\"界\",\"seq\":99}]");
    s_send ("PARTIAL", job, "\"一个字符串\"");
    s_send_bytes ("PARTIAL", job, "\x92\x81", 2);                        //  Truncated
    s_send_bytes ("PARTIAL", job, "", 0);
    s_send ("PARTIAL", job, S_TOKEN ("！"));
    s_final (job, "你好，世界！");
    //  Late: the job has finished, nothing more reaches its stream
    s_send ("PARTIAL", job, "[" S_TOKEN ("迟") "]");
    char pairs [128];
    snprintf (pairs, sizeof pairs, "[[\"%s\",[" S_TOKEN ("迟") "]]]", job);
    s_send ("PARTIALS", NULL, pairs);
    const char *ids [] = { "pa-1", NULL };
    char texts [1][512];
    s_collect (raw, ids, texts);
    CHECK_STR (texts [0], "0 meta|1 token 你|2 token 好|3 token ，|4 token 世|5 token 界|6 token ！|7 done");
    s_expect_reply (raw, "pa-1", "你好，世界！");
}

//  Several jobs in one PARTIALS, interleaved, with a job nobody has, a non-streamed job, and
//  pairs that are not pairs; bodies that are not arrays
static void
s_test_several_jobs (h_raw_t *raw)
{
    s_subscribe (raw, "pb-1");
    s_subscribe (raw, "pb-2");
    h_sleep_ms (100);
    h_raw_send (raw, "pb-1", "chat", "{\"message\":\"乙\",\"stream\":true}");
    h_raw_send (raw, "pb-2", "chat", "{\"message\":\"丙\",\"stream\":true}");
    h_raw_send (raw, "pb-3", "chat", "{\"message\":\"丁\"}");
    char jobs [3][32], message [64];
    for (int i = 0; i < 3; i++) {
        char job [32];
        s_expect_job (job, sizeof job, message, sizeof message);
        int at = strcmp (message, "乙") == 0 ? 0 : strcmp (message, "丙") == 0 ? 1 : 2;
        snprintf (jobs [at], sizeof jobs [at], "%s", job);
    }
    const char *b = jobs [0], *c = jobs [1], *d = jobs [2];
    char body [2048];
    snprintf (body, sizeof body,
              "[[\"%s\"," S_META "],[\"%s\",[" S_META "," S_TOKEN ("c1") "]],"
              "[\"%s\",[" S_TOKEN ("b1") "," S_TOKEN ("b2") "]],"
              "[\"999999\",[" S_TOKEN ("无主") "]],[\"%s\",[" S_TOKEN ("不流") "]],"
              "[\"%s\"," S_TOKEN ("c2") "],\"不是一对\",[\"%s\"],[123,[" S_TOKEN ("数") "]],"
              "[\"%s\",[]],[\"%s\",[" S_TOKEN ("b3") "],\"多余\"],"
              "[\"%s\",[" S_TOKEN ("b3") "]]]", b, c, b, d, c, b, c, b, b);
    s_send ("PARTIALS", NULL, body);
    s_send ("PARTIALS", NULL, "{\"不是\":\"数组\"}");
    s_send ("PARTIALS", NULL, "[]");
    s_send_bytes ("PARTIALS", b, "[]", 2);         //  Four frames only: ignored as a whole
    s_send ("PARTIAL", c, S_TOKEN ("c3"));
    s_final (b, "b1b2b3");
    s_final (c, "c1c2c3");
    s_final (d, "丁的回答");
    const char *ids [] = { "pb-1", "pb-2", NULL };
    char texts [2][512];
    s_collect (raw, ids, texts);
    CHECK_STR (texts [0], "0 meta|1 token b1|2 token b2|3 token b3|4 done");
    CHECK_STR (texts [1], "0 meta|1 token c1|2 token c2|3 token c3|4 done");
    s_expect_reply (raw, "pb-1", "b1b2b3");
    s_expect_reply (raw, "pb-2", "c1c2c3");
    s_expect_reply (raw, "pb-3", "丁的回答");
}

//  Sends KB_GET as [KFW1, KB_GET, frames...] (`count` frames of `bytes`/`lens` after the command)
//  and reads the broker's answer: KB_VERSION, or KB_DATA chunks up to the snapshot's end. Returns
//  the version it names; *is_data says which it was.
static int64_t
s_kb_get (int count, const char *const *bytes, const size_t *lens, bool *is_data)
{
    const void *data [4] = { "KFW1", "KB_GET" };
    size_t size [4] = { 4, 6 };
    for (int i = 0; i < count; i++) {
        data [2 + i] = bytes [i];
        size [2 + i] = lens [i];
    }
    CHECK_INT (kf_frames_send (s_dealer, 2 + count, data, size, 0), 0);
    int64_t deadline = kf_mono_us () + 15000000, version = -1, offset = 0, total = 1;
    *is_data = false;
    while (offset < total) {
        zmq_pollitem_t item = { s_dealer, 0, ZMQ_POLLIN, 0 };
        int64_t left = (deadline - kf_mono_us ()) / 1000;
        s_send ("HEARTBEAT", NULL, NULL);
        if (left <= 0)
            fprintf (stderr, "no answer to KB_GET\n");
        CHECK (left > 0);
        if (zmq_poll (&item, 1, left < 200 ? left : 200) <= 0)
            continue;
        kf_frames_t frames;
        CHECK_INT (kf_frames_recv (&frames, s_dealer, 0), 0);
        bool is_version = kf_frames_is (&frames, 1, "KB_VERSION");
        if (is_version || kf_frames_is (&frames, 1, "KB_DATA")) {
            msgpack_unpacked header;
            CHECK (frames.count >= 3);
            CHECK (kf_mp_unpack_one (kf_frames_data (&frames, 2), kf_frames_size (&frames, 2), &header));
            version = kf_mp_get_int (&header.data, "version", -1);
            if (is_version)
                offset = total;
            else {
                CHECK_INT (frames.count, 4);
                CHECK_INT (kf_mp_get_int (&header.data, "offset", -1), offset);
                total = kf_mp_get_int (&header.data, "size", 0);
                offset += (int64_t) kf_frames_size (&frames, 3);
                *is_data = true;
            }
            msgpack_unpacked_destroy (&header);
        }
        kf_frames_close (&frames);
    }
    return version;
}

//  KB_GET bodies that are not {version: int} (none, undecodable, the wrong types, an extra frame)
//  read as "has none": the whole snapshot, like {version: 0}; the broker goes on
static void
s_test_kb_get (void)
{
    msgpack_sbuffer body;
    bool is_data;
    h_pack_json (&body, "{\"version\":0}");
    const char *bytes [2] = { body.data, "extra" };
    size_t lens [2] = { body.size, 5 };
    int64_t version = s_kb_get (1, bytes, lens, &is_data);
    msgpack_sbuffer_destroy (&body);
    CHECK (is_data);
    CHECK (version > 0);
    const char *bad [] = { "\"7\"", "{\"version\":\"7\"}", "{\"version\":-5}", "{\"version\":0.5}",
                           "[1]", "{\"versions\":7}", NULL };
    for (int i = 0; bad [i]; i++) {
        h_pack_json (&body, "%s", bad [i]);
        bytes [0] = body.data;
        lens [0] = body.size;
        CHECK_INT (s_kb_get (1, bytes, lens, &is_data), version);
        if (!is_data)
            fprintf (stderr, "KB_GET %s: KB_VERSION\n", bad [i]);
        CHECK (is_data);
        msgpack_sbuffer_destroy (&body);
    }
    const char *raw [] = { "\x92\x81", "", "\xc1" };
    for (int i = 0; i < 3; i++) {
        bytes [0] = raw [i];
        lens [0] = strlen (raw [i]);
        CHECK_INT (s_kb_get (1, bytes, lens, &is_data), version);
        CHECK (is_data);
    }
    CHECK_INT (s_kb_get (0, bytes, lens, &is_data), version);          //  No body
    CHECK (is_data);
    char good [64];
    snprintf (good, sizeof good, "{\"version\":%lld}", (long long) version);
    h_pack_json (&body, "%s", good);
    bytes [0] = body.data;
    lens [0] = body.size;
    CHECK_INT (s_kb_get (2, bytes, lens, &is_data), version);          //  An extra frame
    CHECK (is_data);
    CHECK_INT (s_kb_get (1, bytes, lens, &is_data), version);          //  Current: KB_VERSION
    CHECK (!is_data);
    msgpack_sbuffer_destroy (&body);
}

//  ACQUIRE (9.2) with bodies that are not {upstream: name}: each is granted as for an upstream the
//  broker does not know; a name that is not text never reaches stats; a job the worker does not
//  hold gets nothing; the broker goes on
static void
s_test_acquire (h_raw_t *raw)
{
    h_raw_send (raw, "acq-1", "chat", "{\"message\":\"慢一点的问题\"}");
    char job [32], message [64];
    s_expect_job (job, sizeof job, message, sizeof message);
    //  {"upstream": "\xff\xfe"} and {"upstream": "a\0b"}, packed by hand (JSON cannot say them)
    static const char bad_utf8 [] = "\x81\xa8upstream\xa2\xff\xfe";
    static const char with_nul [] = "\x81\xa8upstream\xa3" "a\0b";
    const struct { const char *bytes; size_t len; } raw_bodies [] = {
        { "", 0 }, { "\xc1", 1 }, { "\x92\x81", 2 }, { bad_utf8, sizeof bad_utf8 - 1 },
        { with_nul, sizeof with_nul - 1 }
    };
    for (size_t i = 0; i < sizeof raw_bodies / sizeof raw_bodies [0]; i++) {
        s_send_bytes ("ACQUIRE", job, raw_bodies [i].bytes, raw_bodies [i].len);
        kf_frames_t frames;
        s_expect ("GRANT", &frames);
        CHECK (kf_frames_is (&frames, 2, job));
        kf_frames_close (&frames);
    }
    char long_name [200];
    snprintf (long_name, sizeof long_name, "{\"upstream\":\"%0100d\"}", 7);
    const char *bodies [] = { "[1]", "{\"upstream\":7}", "{\"upstreams\":\"x\"}", long_name, NULL };
    for (int i = 0; bodies [i]; i++) {
        s_send ("ACQUIRE", job, bodies [i]);
        kf_frames_t frames;
        s_expect ("GRANT", &frames);
        kf_frames_close (&frames);
    }
    //  Jobs it does not hold: no GRANT (the next message is the FINAL's reply)
    s_send ("ACQUIRE", "999999", "{\"upstream\":\"x\"}");
    s_send ("ACQUIRE", "0123456789012345678901234567890123", "{\"upstream\":\"x\"}");
    zmq_pollitem_t item = { s_dealer, 0, ZMQ_POLLIN, 0 };
    while (zmq_poll (&item, 1, 300) > 0) {
        kf_frames_t frames;
        CHECK_INT (kf_frames_recv (&frames, s_dealer, 0), 0);
        CHECK (!kf_frames_is (&frames, 1, "GRANT"));
        kf_frames_close (&frames);
    }
    s_final (job, "好的");
    s_expect_reply (raw, "acq-1", "好的");
    //  stats.upstreams: every name is text, none of the hand-packed ones
    kf_reply_t *reply = NULL;
    h_raw_send (raw, "acq-stats", "stats", "{}");
    reply = h_raw_reply_for (raw, "acq-stats");
    CHECK (reply && reply->ok);
    const msgpack_object *upstreams = kf_mp_get (reply->result, "upstreams");
    for (uint32_t i = 0; upstreams && upstreams->type == MSGPACK_OBJECT_ARRAY && i < upstreams->via.array.size; i++) {
        const msgpack_object *name = kf_mp_get (&upstreams->via.array.ptr [i], "name");
        CHECK (name && name->type == MSGPACK_OBJECT_STR);
        CHECK (kf_utf8_is_valid (name->via.str.ptr, name->via.str.size));
        CHECK (!memchr (name->via.str.ptr, 0, name->via.str.size));
    }
    kf_reply_destroy (&reply);
}

int
main (void)
{
    kf_harness_t h;
    h_init (&h, "batched-partials");
    const char *args [] = { "--liveness", "60", NULL };
    h_start_broker (&h, 0, args);
    h_raw_t raw;
    h_raw_open (&raw, &h);
    s_worker_open (&h, raw.ctx);
    s_test_one_job (&raw);
    s_test_several_jobs (&raw);
    s_test_kb_get ();
    s_test_acquire (&raw);
    //  The broker is still well: health answers, the worker is still registered
    kf_client_t *client = h_client (&h);
    kf_reply_t *reply = h_call (client, "health", "{}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    kf_client_destroy (&client);
    zmq_close (s_dealer);
    h_raw_close (&raw);
    h_cleanup (&h);
    printf ("test_batched_partials: ok\n");
    return 0;
}
