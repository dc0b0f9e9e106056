/*  test_stream_hub.c - the stream hub over real XPUB/SUB sockets (inproc): events are held until
    their subscriber is there, released after the wait, never dropped at the high-water mark, and
    fetchable after the end; notifications on other topics go out once, in order, unheld. */
#include "broker/stream_hub.h"
#include "common/clock.h"
#include "common/frames.h"
#include "common/log.h"
#include "common/mpack.h"
#include "testutil.h"
#include <time.h>
#include <zmq.h>

static void *s_xpub;

static void
s_sleep_ms (int ms)
{
    struct timespec ts = { 0, ms * 1000000L };
    nanosleep (&ts, NULL);
}

//  Reads subscription messages from the XPUB into the hub
static void
s_pump_subscriptions (kf_stream_hub_t *hub)
{
    kf_frames_t frames;
    while (kf_frames_recv (&frames, s_xpub, ZMQ_DONTWAIT) == 0) {
        kf_stream_hub_on_subscription (hub, kf_frames_data (&frames, 0), kf_frames_size (&frames, 0));
        kf_frames_close (&frames);
    }
}

static void
s_publish (kf_stream_hub_t *hub, kf_stream_t *stream, const char *event, bool is_last)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_int (&pk, "seq", kf_stream_next_seq (stream));
    kf_mp_pack_kv_str (&pk, "event", event);
    kf_stream_publish (hub, stream, buffer.data, buffer.size, is_last);
    msgpack_sbuffer_destroy (&buffer);
}

//  Receives events for `topic` until `count` arrived or 1 s passed; checks seq order
static int
s_receive (void *sub, const char *topic, int count, int64_t *next_seq)
{
    int got = 0;
    int64_t deadline = kf_mono_ms () + 1000;
    while (got < count && kf_mono_ms () < deadline) {
        kf_frames_t frames;
        if (kf_frames_recv (&frames, sub, ZMQ_DONTWAIT) == -1) {
            s_sleep_ms (1);
            continue;
        }
        CHECK_INT (frames.count, 2);
        CHECK (kf_frames_is (&frames, 0, topic));
        msgpack_unpacked event;
        CHECK (kf_mp_unpack_one (kf_frames_data (&frames, 1), kf_frames_size (&frames, 1), &event));
        CHECK_INT (kf_mp_get_int (&event.data, "seq", -1), *next_seq);
        (*next_seq)++;
        msgpack_unpacked_destroy (&event);
        kf_frames_close (&frames);
        got++;
    }
    return got;
}

int
main (void)
{
    void *ctx = zmq_ctx_new ();
    s_xpub = zmq_socket (ctx, ZMQ_XPUB);
    int on = 1, hwm = 10;
    zmq_setsockopt (s_xpub, ZMQ_XPUB_NODROP, &on, sizeof on);
    zmq_setsockopt (s_xpub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    CHECK_INT (zmq_bind (s_xpub, "inproc://streams"), 0);
    void *sub = zmq_socket (ctx, ZMQ_SUB);
    zmq_setsockopt (sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    CHECK_INT (zmq_connect (sub, "inproc://streams"), 0);
    kf_stream_hub_t *hub = kf_stream_hub_new (s_xpub, 200, 60000);

    //  Held: nothing is sent before the subscription, then everything in order
    kf_stream_t *stream = kf_stream_hub_open (hub, "req-1", 5);
    CHECK (stream);
    CHECK (kf_stream_hub_open (hub, "req-1", 5) == NULL);          //  Still open: conflict
    s_publish (hub, stream, "meta", false);
    s_publish (hub, stream, "token", false);
    kf_stream_hub_flush (hub, kf_mono_us ());
    CHECK_INT (kf_stream_hub_backlog (hub), 2);
    //  A prefix subscription ("req-") from someone else must not release it
    zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "req-", 4);
    s_sleep_ms (20);
    s_pump_subscriptions (hub);
    kf_stream_hub_flush (hub, kf_mono_us ());
    CHECK_INT (kf_stream_hub_backlog (hub), 2);
    zmq_setsockopt (sub, ZMQ_UNSUBSCRIBE, "req-", 4);
    zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "req-1", 5);
    s_sleep_ms (20);
    s_pump_subscriptions (hub);
    s_publish (hub, stream, "done", true);
    kf_stream_hub_flush (hub, kf_mono_us ());
    int64_t next_seq = 0;
    CHECK_INT (s_receive (sub, "req-1", 3, &next_seq), 3);
    CHECK_INT (kf_stream_hub_backlog (hub), 0);

    //  Fetch after the end: all three, or from a seq
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    CHECK_INT (kf_stream_hub_fetch_pack (hub, "req-1", 5, 1, &pk), 0);
    msgpack_unpacked fetched;
    CHECK (kf_mp_unpack_one (buffer.data, buffer.size, &fetched));
    CHECK_INT (kf_mp_get_int (&fetched.data, "total", 0), 2);
    CHECK (kf_mp_get_bool (&fetched.data, "ended", false));
    msgpack_unpacked_destroy (&fetched);
    msgpack_sbuffer_destroy (&buffer);
    CHECK (kf_stream_hub_fetch_pack (hub, "nope", 4, 0, &pk) == -1);

    //  The wait passes without a subscriber: published anyway (and fetchable)
    stream = kf_stream_hub_open (hub, "req-2", 5);
    s_publish (hub, stream, "meta", true);
    CHECK (kf_stream_hub_timeout (hub, kf_mono_us ()) >= 0);
    s_sleep_ms (250);
    kf_stream_hub_flush (hub, kf_mono_us ());
    CHECK_INT (kf_stream_hub_backlog (hub), 0);

    //  High-water mark: 500 events into a HWM of 10 with a slow reader; none lost
    stream = kf_stream_hub_open (hub, "req-1", 5);                 //  Reuses the ended topic
    CHECK (stream);
    for (int i = 0; i < 500; i++)
        s_publish (hub, stream, "token", i == 499);
    int received = 0;
    next_seq = 0;
    //  The wait-passed stream req-2 was published to nobody: only req-1 frames arrive
    int64_t deadline = kf_mono_ms () + 5000;
    while (received < 500 && kf_mono_ms () < deadline) {
        kf_stream_hub_flush (hub, kf_mono_us ());
        received += s_receive (sub, "req-1", 7, &next_seq);
    }
    CHECK_INT (received, 500);
    CHECK_INT (kf_stream_hub_backlog (hub), 0);

    //  Taken back: the unsent events of a lost batch go, those of earlier batches stay (sent or
    //  held), an open stream goes on from the first taken back, an ended one gets a new last event
    //  in place of its done
    stream = kf_stream_hub_open (hub, "req-3", 5);
    zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "req-3", 5);
    s_sleep_ms (20);
    s_pump_subscriptions (hub);
    kf_stream_hub_set_batch (hub, 1);
    s_publish (hub, stream, "meta", false);
    kf_stream_hub_flush (hub, kf_mono_us ());
    next_seq = 0;
    CHECK_INT (s_receive (sub, "req-3", 1, &next_seq), 1);
    CHECK_INT (kf_stream_take_back (hub, stream, 1), -1);          //  Nothing unsent
    s_publish (hub, stream, "token", false);                       //  Batch 1, held
    kf_stream_hub_set_batch (hub, 2);
    s_publish (hub, stream, "token", false);
    CHECK_INT (kf_stream_take_back (hub, stream, 2), 2);           //  Batch 1's token stays
    CHECK_INT (kf_stream_next_seq (stream), 2);
    CHECK_INT (kf_stream_hub_backlog (hub), 1);
    kf_stream_hub_set_batch (hub, 3);
    s_publish (hub, stream, "token", false);
    s_publish (hub, stream, "done", true);
    CHECK (kf_stream_hub_find (hub, "req-3", 5) == stream);
    CHECK_INT (kf_stream_take_back (hub, stream, 3), 2);
    static const char error [] = "\x82\xa3" "seq" "\x02\xa5" "event" "\xa5" "error";
    kf_stream_put_last (hub, stream, error, sizeof error - 1);
    CHECK_INT (kf_stream_hub_backlog (hub), 2);
    kf_stream_hub_flush (hub, kf_mono_us ());
    CHECK_INT (s_receive (sub, "req-3", 2, &next_seq), 2);
    CHECK_INT (next_seq, 3);
    CHECK (!kf_stream_hub_is_open (hub, "req-3", 5));
    zmq_setsockopt (sub, ZMQ_UNSUBSCRIBE, "req-3", 5);

    //  Notifications: nothing leaves before the flush; with nobody subscribed they are not held;
    //  300 into a HWM of 10 with a slow reader arrive all, in order
    for (int i = 0; i < 2; i++)
        kf_stream_hub_notify (hub, "agent.escalations", 17, "\x81\xa3seq\x00", 6);
    CHECK_INT (kf_stream_hub_backlog (hub), 2);
    CHECK (kf_stream_hub_timeout (hub, kf_mono_us ()) == 1);
    kf_stream_hub_flush (hub, kf_mono_us ());
    CHECK_INT (kf_stream_hub_backlog (hub), 0);
    zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "agent.", 6);
    s_sleep_ms (20);
    for (int i = 0; i < 300; i++) {
        msgpack_sbuffer body;
        msgpack_sbuffer_init (&body);
        msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 1);
        kf_mp_pack_kv_int (&pk, "seq", i);
        kf_stream_hub_notify (hub, "agent.messages", 14, body.data, body.size);
        msgpack_sbuffer_destroy (&body);
    }
    received = 0;
    next_seq = 0;
    deadline = kf_mono_ms () + 5000;
    while (received < 300 && kf_mono_ms () < deadline) {
        kf_stream_hub_flush (hub, kf_mono_us ());
        received += s_receive (sub, "agent.messages", 7, &next_seq);
    }
    CHECK_INT (received, 300);
    CHECK_INT (kf_stream_hub_backlog (hub), 0);
    zmq_setsockopt (sub, ZMQ_UNSUBSCRIBE, "agent.", 6);
    kf_stream_hub_notify (hub, "agent.messages", 14, "\x80", 1);     //  Freed by destroy

    //  A subscriber to everything that never reads: once it is full the socket pushes back for
    //  everyone; after the stall limit a reader with room still gets every event
    void *stalled = zmq_socket (ctx, ZMQ_SUB);
    zmq_setsockopt (stalled, ZMQ_RCVHWM, &hwm, sizeof hwm);
    CHECK_INT (zmq_connect (stalled, "inproc://streams"), 0);
    zmq_setsockopt (stalled, ZMQ_SUBSCRIBE, "", 0);
    void *reader = zmq_socket (ctx, ZMQ_SUB);
    int roomy = 1000;
    zmq_setsockopt (reader, ZMQ_RCVHWM, &roomy, sizeof roomy);
    CHECK_INT (zmq_connect (reader, "inproc://streams"), 0);
    zmq_setsockopt (reader, ZMQ_SUBSCRIBE, "req-3", 5);
    s_sleep_ms (20);
    s_pump_subscriptions (hub);
    kf_stream_hub_set_stall (hub, 100);
    stream = kf_stream_hub_open (hub, "req-3", 5);
    CHECK (stream);
    for (int i = 0; i < 500; i++)
        s_publish (hub, stream, "token", i == 499);
    int64_t started = kf_mono_ms ();
    while (kf_stream_hub_backlog (hub) > 0 && kf_mono_ms () < started + 5000) {
        kf_stream_hub_flush (hub, kf_mono_us ());
        s_sleep_ms (5);
    }
    CHECK_INT (kf_stream_hub_backlog (hub), 0);
    next_seq = 0;
    CHECK_INT (s_receive (reader, "req-3", 500, &next_seq), 500);
    zmq_close (stalled);
    zmq_close (reader);

    kf_stream_hub_destroy (&hub);
    zmq_close (sub);
    zmq_close (s_xpub);
    zmq_ctx_term (ctx);
    TEST_PASS ("test_stream_hub");
    return 0;
}
