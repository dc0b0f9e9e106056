/*  test_partial_batch.c - the worker's batch of PARTIAL events (partial_batch.h): the three message
    forms of PROTOCOL.md 9.6, order kept, the size bounds, clearing, and job ids that do not fit. */
#include "workers/partial_batch.h"
#include "common/mpack.h"
#include "testutil.h"
#include <stdio.h>
#include <string.h>

#define S_SENT_MAX 8

//  What the batch sent
static struct {
    char command [16];
    char job_id [64];           //  "-" when none
    char body [1 << 18];
    size_t body_len;
} s_sent [S_SENT_MAX];
static int s_sent_count;

static void
s_send (void *arg, const char *command, const char *job_id, const char *body, size_t body_len)
{
    CHECK (arg == (void *) s_sent);
    CHECK (s_sent_count < S_SENT_MAX);
    CHECK (body_len <= sizeof s_sent [0].body);
    snprintf (s_sent [s_sent_count].command, sizeof s_sent [0].command, "%s", command);
    snprintf (s_sent [s_sent_count].job_id, sizeof s_sent [0].job_id, "%s", job_id ? job_id : "-");
    memcpy (s_sent [s_sent_count].body, body, body_len);
    s_sent [s_sent_count].body_len = body_len;
    s_sent_count++;
}

//  Packs {event: token, content: text} into `buffer` (initialised here)
static void
s_token (msgpack_sbuffer *buffer, const char *text)
{
    msgpack_sbuffer_init (buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_str (&pk, "event", "token");
    kf_mp_pack_kv_str (&pk, "content", text);
}

static void
s_add (kf_partial_batch_t *batch, const char *job_id, const char *text)
{
    msgpack_sbuffer event;
    s_token (&event, text);
    CHECK (kf_partial_batch_add (batch, job_id, event.data, event.size));
    msgpack_sbuffer_destroy (&event);
}

//  The contents of an events value (one map or an array of maps) joined with ","
static void
s_contents (const msgpack_object *events, char *out, size_t size)
{
    out [0] = 0;
    uint32_t count = events->type == MSGPACK_OBJECT_ARRAY ? events->via.array.size : 1;
    for (uint32_t i = 0; i < count; i++) {
        const msgpack_object *event = events->type == MSGPACK_OBJECT_ARRAY
                                    ? &events->via.array.ptr [i] : events;
        CHECK (kf_mp_str_eq (event, "event", "token"));
        const char *text;
        size_t len;
        CHECK (kf_mp_str (kf_mp_get (event, "content"), &text, &len));
        size_t used = strlen (out);
        snprintf (out + used, size - used, "%s%.*s", i ? "," : "", (int) len, text);
    }
}

//  Sent message `i` as text: "PARTIAL 7 a,b" or "PARTIALS 7:a,b 8:c"; "PARTIAL 7 =a" for a single
//  event map (not an array)
static const char *
s_describe (int i, char *out, size_t size)
{
    msgpack_unpacked body;
    CHECK (kf_mp_unpack_one (s_sent [i].body, s_sent [i].body_len, &body));
    char contents [4096];
    if (strcmp (s_sent [i].command, "PARTIAL") == 0) {
        s_contents (&body.data, contents, sizeof contents);
        snprintf (out, size, "PARTIAL %s %s%s", s_sent [i].job_id,
                  body.data.type == MSGPACK_OBJECT_MAP ? "=" : "", contents);
    }
    else {
        CHECK_STR (s_sent [i].command, "PARTIALS");
        CHECK_STR (s_sent [i].job_id, "-");
        CHECK (body.data.type == MSGPACK_OBJECT_ARRAY);
        snprintf (out, size, "PARTIALS");
        for (uint32_t g = 0; g < body.data.via.array.size; g++) {
            const msgpack_object *pair = &body.data.via.array.ptr [g];
            CHECK (pair->type == MSGPACK_OBJECT_ARRAY && pair->via.array.size == 2);
            CHECK (pair->via.array.ptr [1].type == MSGPACK_OBJECT_ARRAY);
            const char *id;
            size_t id_len;
            CHECK (kf_mp_str (&pair->via.array.ptr [0], &id, &id_len));
            s_contents (&pair->via.array.ptr [1], contents, sizeof contents);
            size_t used = strlen (out);
            snprintf (out + used, size - used, " %.*s:%s", (int) id_len, id, contents);
        }
    }
    msgpack_unpacked_destroy (&body);
    return out;
}

static void
s_test_forms (kf_partial_batch_t *batch)
{
    char text [8192];
    //  Nothing held, nothing sent
    kf_partial_batch_flush (batch);
    CHECK_INT (s_sent_count, 0);
    //  One event: the plain PARTIAL, its bytes as given
    s_add (batch, "7", "你好");
    CHECK_INT (kf_partial_batch_count (batch), 1);
    CHECK_INT (s_sent_count, 0);                    //  Nothing leaves before the flush
    kf_partial_batch_flush (batch);
    CHECK_INT (s_sent_count, 1);
    CHECK_STR (s_describe (0, text, sizeof text), "PARTIAL 7 =你好");
    CHECK_INT (kf_partial_batch_count (batch), 0);
    kf_partial_batch_flush (batch);
    CHECK_INT (s_sent_count, 1);
    //  One job's events: a PARTIAL array, in order
    s_add (batch, "7", "a");
    s_add (batch, "7", "b");
    s_add (batch, "7", "c");
    kf_partial_batch_flush (batch);
    CHECK_INT (s_sent_count, 2);
    CHECK_STR (s_describe (1, text, sizeof text), "PARTIAL 7 a,b,c");
    //  Several jobs: PARTIALS, runs of one job kept apart where others came between
    s_add (batch, "7", "d");
    s_add (batch, "7", "e");
    s_add (batch, "12", "x");
    s_add (batch, "7", "f");
    s_add (batch, "3", "y");
    kf_partial_batch_flush (batch);
    CHECK_INT (s_sent_count, 3);
    CHECK_STR (s_describe (2, text, sizeof text), "PARTIALS 7:d,e 12:x 7:f 3:y");
    //  Cleared: its events never leave
    s_add (batch, "9", "lost");
    s_add (batch, "10", "lost");
    kf_partial_batch_clear (batch);
    CHECK_INT (kf_partial_batch_count (batch), 0);
    kf_partial_batch_flush (batch);
    CHECK_INT (s_sent_count, 3);
    //  A job id that does not fit is refused, and nothing of it is kept
    msgpack_sbuffer event;
    s_token (&event, "long");
    CHECK (!kf_partial_batch_add (batch, "12345678901234567890123456789012", event.data, event.size));
    CHECK (kf_partial_batch_add (batch, "1234567890123456789012345678901", event.data, event.size));
    msgpack_sbuffer_destroy (&event);
    kf_partial_batch_flush (batch);
    CHECK_INT (s_sent_count, 4);
    CHECK_STR (s_describe (3, text, sizeof text), "PARTIAL 1234567890123456789012345678901 =long");
}

static void
s_test_bounds (kf_partial_batch_t *batch)
{
    char text [8192];
    s_sent_count = 0;
    //  The event bound: the full batch leaves by itself, the rest waits for the flush
    for (int i = 0; i < KF_PARTIAL_BATCH_EVENTS + 3; i++)
        s_add (batch, i % 2 ? "1" : "2", "t");
    CHECK_INT (s_sent_count, 1);
    CHECK_STR (s_sent [0].command, "PARTIALS");
    msgpack_unpacked body;
    CHECK (kf_mp_unpack_one (s_sent [0].body, s_sent [0].body_len, &body));
    CHECK_INT (body.data.via.array.size, KF_PARTIAL_BATCH_EVENTS);
    msgpack_unpacked_destroy (&body);
    CHECK_INT (kf_partial_batch_count (batch), 3);
    kf_partial_batch_flush (batch);
    CHECK_INT (s_sent_count, 2);
    CHECK_STR (s_describe (1, text, sizeof text), "PARTIALS 2:t 1:t 2:t");
    //  The byte bound: the event that passes it sends the batch at once, itself included
    static char big [KF_PARTIAL_BATCH_BYTES + 100];
    memset (big, 'x', sizeof big - 1);
    s_add (batch, "5", "small");
    CHECK_INT (s_sent_count, 2);
    s_add (batch, "5", big);
    CHECK_INT (s_sent_count, 3);
    CHECK_STR (s_sent [2].command, "PARTIAL");
    CHECK_STR (s_sent [2].job_id, "5");
    CHECK (kf_mp_unpack_one (s_sent [2].body, s_sent [2].body_len, &body));
    CHECK (body.data.type == MSGPACK_OBJECT_ARRAY);
    CHECK_INT (body.data.via.array.size, 2);
    CHECK_INT (kf_mp_get (&body.data.via.array.ptr [1], "content")->via.str.size, sizeof big - 1);
    msgpack_unpacked_destroy (&body);
    CHECK_INT (kf_partial_batch_count (batch), 0);
    //  And the batch goes on afterwards
    s_add (batch, "6", "after");
    kf_partial_batch_flush (batch);
    CHECK_INT (s_sent_count, 4);
    CHECK_STR (s_describe (3, text, sizeof text), "PARTIAL 6 =after");
}

int
main (void)
{
    kf_partial_batch_t *batch = kf_partial_batch_new (s_send, s_sent);
    s_test_forms (batch);
    s_test_bounds (batch);
    s_add (batch, "8", "held");                     //  Destroyed with an event held: not sent
    int sent = s_sent_count;
    kf_partial_batch_destroy (&batch);
    CHECK (batch == NULL);
    CHECK_INT (s_sent_count, sent);
    kf_partial_batch_destroy (&batch);              //  A second destroy is harmless
    TEST_PASS ("test_partial_batch");
    return 0;
}
