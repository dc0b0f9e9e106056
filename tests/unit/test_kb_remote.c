/*  test_kb_remote.c - the worker's side of the knowledge base over KFW1 (workers/kb_remote.h), fed
    bad input from the broker: KB_DATA with missing frames, an undecodable header, a header of the
    wrong types, a size past the 1 GiB bound, chunks out of order or too long; KB_VERSION with no
    body, an undecodable one, a version of the wrong type or not positive. A bad chunk drops the
    transfer and asks again after a delay (never at once, never crashing); a bad KB_VERSION is
    ignored. Last, a good two-chunk transfer still reaches the loader. */
#include "workers/kb_remote.h"
#include "common/json_codec.h"
#include "common/mpack.h"
#include "testutil.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int s_asks;              //  KB_GET sent
static int64_t s_asked;         //  The version the last one named

static void
s_send (void *arg, const char *command, const char *job_id, const msgpack_sbuffer *body)
{
    (void) arg;
    CHECK_STR (command, "KB_GET");
    CHECK (job_id == NULL);
    msgpack_unpacked unpacked;
    CHECK (kf_mp_unpack_one (body->data, body->size, &unpacked));
    s_asked = kf_mp_get_int (&unpacked.data, "version", -1);
    msgpack_unpacked_destroy (&unpacked);
    s_asks++;
}

//  Frames [KFW1, command, parts...]: `count` parts of `lens` bytes (the caller closes them)
static void
s_frames (kf_frames_t *frames, const char *command, int count, const char *const *parts,
          const size_t *lens)
{
    const char *data [KF_FRAMES_MAX] = { "KFW1", command };
    size_t size [KF_FRAMES_MAX] = { 4, strlen (command) };
    for (int i = 0; i < count; i++) {
        data [2 + i] = parts [i];
        size [2 + i] = lens [i];
    }
    frames->count = frames->total = 2 + count;
    for (int i = 0; i < frames->count; i++) {
        zmq_msg_init_size (&frames->part [i], size [i]);
        if (size [i])
            memcpy (zmq_msg_data (&frames->part [i]), data [i], size [i]);
    }
}

//  Feeds [KFW1, command, header packed from JSON (NULL: `raw` as is), chunk?]
static void
s_feed (kf_kb_remote_t *remote, const char *command, const char *json, const char *raw,
        size_t raw_len, const char *chunk, size_t chunk_len, int64_t now_us)
{
    msgpack_sbuffer header;
    msgpack_sbuffer_init (&header);
    if (json) {
        msgpack_packer pk;
        msgpack_packer_init (&pk, &header, msgpack_sbuffer_write);
        CHECK_INT (kf_json_to_msgpack (json, strlen (json), &pk, NULL, 0), 0);
        raw = header.data;
        raw_len = header.size;
    }
    const char *parts [2] = { raw, chunk };
    size_t lens [2] = { raw_len, chunk_len };
    kf_frames_t frames;
    s_frames (&frames, command, raw ? (chunk ? 2 : 1) : 0, parts, lens);
    CHECK (kf_kb_remote_on_message (remote, &frames, 0, now_us));
    kf_frames_close (&frames);
    msgpack_sbuffer_destroy (&header);
}

//  After a bad chunk: no KB_GET at once, one when the retry is due
static void
s_expect_retry (kf_kb_remote_t *remote, int64_t *now_us, const char *what)
{
    int asks = s_asks;
    kf_kb_remote_on_timer (remote, 0, *now_us);
    if (s_asks != asks)
        fprintf (stderr, "%s: asked again at once\n", what);
    CHECK_INT (s_asks, asks);
    int64_t due = kf_kb_remote_due_us (remote);
    if (due <= *now_us || due == INT64_MAX)
        fprintf (stderr, "%s: no retry scheduled\n", what);
    CHECK (due > *now_us && due < INT64_MAX);
    *now_us = due;
    kf_kb_remote_on_timer (remote, 0, *now_us);
    CHECK_INT (s_asks, asks + 1);
    CHECK_INT (s_asked, 0);
}

int
main (void)
{
    kf_kb_loader_t *loader = kf_kb_loader_new (NULL, 1000);
    kf_kb_remote_t *remote = kf_kb_remote_new (loader, s_send, NULL);
    int64_t now = 1000000;
    kf_kb_remote_on_connect (remote, 0, now);
    CHECK_INT (s_asks, 1);
    CHECK_INT (s_asked, 0);

    //  Bad chunks, each alone: the transfer is dropped and asked for again later
    char chunk [8] = "abcdefg";
    static const char *headers [] = {
        "{\"version\":\"7\",\"offset\":0,\"size\":8}",
        "{\"version\":7,\"offset\":\"0\",\"size\":8}",
        "{\"version\":7,\"offset\":0,\"size\":-8}",
        "{\"version\":-7,\"offset\":0,\"size\":8}",
        "{\"version\":7,\"offset\":0,\"size\":1099511627776}",       //  Past 1 GiB
        "{\"version\":7,\"offset\":4,\"size\":8}",                   //  No transfer to continue
        "{\"version\":7,\"offset\":0,\"size\":4}",                   //  Chunk longer than size
        "[7,0,8]",
        NULL
    };
    for (int i = 0; headers [i]; i++) {
        s_feed (remote, "KB_DATA", headers [i], NULL, 0, chunk, 8, now);
        s_expect_retry (remote, &now, headers [i]);
    }
    s_feed (remote, "KB_DATA", NULL, "\x93\x01", 2, chunk, 8, now);       //  Undecodable
    s_expect_retry (remote, &now, "undecodable header");
    s_feed (remote, "KB_DATA", "{\"version\":7,\"offset\":0,\"size\":8}", NULL, 0, NULL, 0, now);
    s_expect_retry (remote, &now, "no chunk frame");
    s_feed (remote, "KB_DATA", NULL, NULL, 0, NULL, 0, now);
    s_expect_retry (remote, &now, "no header");
    //  A good first chunk, then one of another version, then one at the wrong offset
    s_feed (remote, "KB_DATA", "{\"version\":7,\"offset\":0,\"size\":8}", NULL, 0, chunk, 4, now);
    CHECK_INT (s_asks, 12);
    s_feed (remote, "KB_DATA", "{\"version\":8,\"offset\":4,\"size\":8}", NULL, 0, chunk + 4, 4, now);
    s_expect_retry (remote, &now, "another version");
    s_feed (remote, "KB_DATA", "{\"version\":7,\"offset\":0,\"size\":8}", NULL, 0, chunk, 4, now);
    s_feed (remote, "KB_DATA", "{\"version\":7,\"offset\":2,\"size\":8}", NULL, 0, chunk + 2, 6, now);
    s_expect_retry (remote, &now, "wrong offset");

    //  Bad KB_VERSION bodies: ignored, nothing asked, nothing scheduled
    int asks = s_asks;
    static const char *versions [] = { "{\"version\":\"9\"}", "{\"version\":0}", "{\"version\":-9}",
                                       "[9]", "9", NULL };
    for (int i = 0; versions [i]; i++)
        s_feed (remote, "KB_VERSION", versions [i], NULL, 0, NULL, 0, now);
    s_feed (remote, "KB_VERSION", NULL, "\xc1", 1, NULL, 0, now);
    s_feed (remote, "KB_VERSION", NULL, NULL, 0, NULL, 0, now);
    kf_kb_remote_on_timer (remote, 0, now + 1000);
    CHECK_INT (s_asks, asks);
    //  A good one: noted, but the last request is still unanswered, so nothing more is sent
    s_feed (remote, "KB_VERSION", "{\"version\":9}", NULL, 0, NULL, 0, now);
    CHECK_INT (s_asks, asks);

    //  Another command is not this module's
    kf_frames_t frames;
    s_frames (&frames, "JOB", 0, NULL, NULL);
    CHECK (!kf_kb_remote_on_message (remote, &frames, 0, now));
    kf_frames_close (&frames);

    //  A good transfer in two chunks reaches the loader (which rejects bytes that are no
    //  snapshot: counted, and the worker asks again)
    s_feed (remote, "KB_DATA", "{\"version\":9,\"offset\":0,\"size\":8}", NULL, 0, chunk, 4, now);
    s_feed (remote, "KB_DATA", "{\"version\":9,\"offset\":4,\"size\":8}", NULL, 0, chunk + 4, 4, now);
    for (int i = 0; i < 200 && kf_kb_loader_rejected (loader) == 0; i++)
        usleep (10000);
    CHECK_INT (kf_kb_loader_rejected (loader), 1);

    kf_kb_remote_destroy (&remote);
    CHECK (remote == NULL);
    kf_kb_loader_destroy (&loader);
    TEST_PASS ("test_kb_remote");
    return 0;
}
