/*  kefu_client.c - blocking calls and streamed chats over DEALER and SUB. */
#include "common/kefu_client.h"
#include "common/clock.h"
#include "common/frames.h"
#include "common/log.h"
#include "common/mpack.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct _kf_client_t {
    void *ctx;
    void *dealer;               //  Requests
    void *sub;                  //  Streams, or NULL
    char *requests, *streams;   //  Endpoints, to connect again after a refused handshake
    void *monitor;              //  Failed CURVE handshakes of the dealer, or NULL
    int refused, mismatched, failed;    //  Handshakes so, since the last reply
    int timeout_ms;
    char prefix [24];           //  Random per client: ids are unique across clients too
    unsigned long counter;
    unsigned long repaired;     //  Events obtained through stream.fetch
};

kf_client_t *
kf_client_new (const char *requests, const char *streams)
{
    return kf_client_new_curve (requests, streams, NULL);
}

kf_client_t *
kf_client_new_curve (const char *requests, const char *streams, const kf_curve_t *curve)
{
    kf_client_t *self = kf_calloc (1, sizeof *self);
    self->ctx = zmq_ctx_new ();
    self->timeout_ms = 35000;
    self->dealer = zmq_socket (self->ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (self->dealer, ZMQ_LINGER, &linger, sizeof linger);
    //  Plain clients watch their handshakes too: a broker using CURVE fails them
    if ((curve && kf_curve_client_setup (self->dealer, curve))
    ||  !(self->monitor = kf_curve_monitor (self->ctx, self->dealer)))
        goto failed;
    if (zmq_connect (self->dealer, requests) == -1)
        goto failed;
    self->requests = kf_strdup (requests);
    self->streams = streams ? kf_strdup (streams) : NULL;
    if (streams) {
        self->sub = zmq_socket (self->ctx, ZMQ_SUB);
        zmq_setsockopt (self->sub, ZMQ_LINGER, &linger, sizeof linger);
        if ((curve && kf_curve_client_setup (self->sub, curve)) || zmq_connect (self->sub, streams) == -1)
            goto failed;
    }
    unsigned char bytes [6] = { 0 };
    int fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read (fd, bytes, sizeof bytes) != sizeof bytes) {
        uint64_t fallback = (uint64_t) kf_mono_us () ^ (uint64_t) getpid ();
        memcpy (bytes, &fallback, sizeof bytes);
    }
    if (fd >= 0)
        close (fd);
    snprintf (self->prefix, sizeof self->prefix, "c%02x%02x%02x%02x%02x%02x", bytes [0], bytes [1],
              bytes [2], bytes [3], bytes [4], bytes [5]);
    return self;
failed:
    kf_client_destroy (&self);
    return NULL;
}

void
kf_client_destroy (kf_client_t **self_p)
{
    kf_client_t *self = *self_p;
    if (!self)
        return;
    if (self->monitor)
        zmq_close (self->monitor);
    if (self->dealer)
        zmq_close (self->dealer);
    free (self->requests);
    free (self->streams);
    if (self->sub)
        zmq_close (self->sub);
    zmq_ctx_term (self->ctx);
    free (self);
    *self_p = NULL;
}

void
kf_client_set_timeout (kf_client_t *self, int timeout_ms)
{
    self->timeout_ms = timeout_ms;
}

unsigned long
kf_client_repaired (kf_client_t *self)
{
    return self->repaired;
}

void
kf_reply_destroy (kf_reply_t **reply_p)
{
    kf_reply_t *reply = *reply_p;
    if (!reply)
        return;
    msgpack_unpacked_destroy (&reply->unpacked);
    free (reply);
    *reply_p = NULL;
}

static int s_timed_out (kf_client_t *self);
static bool s_handshake_failed (kf_client_t *self);
static void s_reconnect (kf_client_t *self);

//  Sends [KEFU1, {id, method, params}]; `extra` adds "stream": true to params
static int
s_send (kf_client_t *self, const char *id, const char *method, const char *params,
        size_t params_len, bool is_stream)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    kf_mp_pack_kv_str (&pk, "id", id);
    kf_mp_pack_kv_str (&pk, "method", method);
    kf_mp_pack_cstr (&pk, "params");
    msgpack_unpacked unpacked;
    bool is_map = params && kf_mp_unpack_one (params, params_len, &unpacked)
               && unpacked.data.type == MSGPACK_OBJECT_MAP;
    if (!is_stream && params && is_map)
        pk.callback (pk.data, params, params_len);
    else {
        const msgpack_object_map *map = is_map ? &unpacked.data.via.map : NULL;
        uint32_t kept = 0;
        for (uint32_t i = 0; map && i < map->size; i++)
            kept += !kf_mp_str_eq_key (&map->ptr [i].key, "stream");
        msgpack_pack_map (&pk, kept + (is_stream ? 1 : 0));
        for (uint32_t i = 0; map && i < map->size; i++)
            if (!kf_mp_str_eq_key (&map->ptr [i].key, "stream")) {
                msgpack_pack_object (&pk, map->ptr [i].key);
                msgpack_pack_object (&pk, map->ptr [i].val);
            }
        if (is_stream)
            kf_mp_pack_kv_bool (&pk, "stream", true);
    }
    if (is_map || params)
        msgpack_unpacked_destroy (&unpacked);
    const void *data [2] = { KF_SIGNATURE, body.data };
    size_t size [2] = { KF_SIGNATURE_LEN, body.size };
    //  ZeroMQ does not retry a handshake the broker refused (nor one whose mechanism differed):
    //  connect again, so a key the operator has since authorized gets in. The connection that
    //  failed may still take this send and lose it, so the failure seen, not the send, decides
    s_handshake_failed (self);
    if (self->refused)
        s_reconnect (self);
    //  A DEALER without a peer would block for ever: wait for one as long as a call waits
    int rc = kf_frames_send (self->dealer, 2, data, size, ZMQ_DONTWAIT);
    if (rc == -1 && errno == EAGAIN) {
        s_reconnect (self);
        zmq_pollitem_t item = { self->dealer, 0, ZMQ_POLLOUT, 0 };
        if (zmq_poll (&item, 1, self->timeout_ms) == 1)
            rc = kf_frames_send (self->dealer, 2, data, size, ZMQ_DONTWAIT);
        if (rc == -1)
            s_timed_out (self);
    }
    msgpack_sbuffer_destroy (&body);
    return rc;
}

//  Decodes a reply frame set; NULL when it is not a well-formed reply
static kf_reply_t *
s_decode_reply (kf_frames_t *frames)
{
    if (frames->count != 2 || !kf_frames_is (frames, 0, KF_SIGNATURE))
        return NULL;
    kf_reply_t *reply = kf_calloc (1, sizeof *reply);
    if (!kf_mp_unpack_one (kf_frames_data (frames, 1), kf_frames_size (frames, 1), &reply->unpacked)
    ||  reply->unpacked.data.type != MSGPACK_OBJECT_MAP) {
        kf_reply_destroy (&reply);
        return NULL;
    }
    const msgpack_object *root = &reply->unpacked.data;
    reply->ok = kf_mp_get_bool (root, "ok", false);
    reply->result = kf_mp_get (root, "result");
    if (!reply->ok && !kf_error_unpack (kf_mp_get (root, "error"), &reply->error))
        kf_error_set (&reply->error, KF_E_INTERNAL, "malformed error reply");
    return reply;
}

//  Receives one reply on the dealer; keeps it only when its id is `id` (stale replies of timed-out
//  calls are dropped). Returns NULL when the message was something else.
static kf_reply_t *
s_recv_reply (kf_client_t *self, const char *id)
{
    kf_frames_t frames;
    if (kf_frames_recv (&frames, self->dealer, ZMQ_DONTWAIT) == -1)
        return NULL;
    kf_reply_t *reply = s_decode_reply (&frames);
    kf_frames_close (&frames);
    self->refused = self->mismatched = self->failed = 0;    //  The broker answers: it held
    if (reply && !kf_mp_str_eq (&reply->unpacked.data, "id", id))
        kf_reply_destroy (&reply);
    return reply;
}

static void
s_next_id (kf_client_t *self, char *id, size_t size)
{
    snprintf (id, size, "%s-%lu", self->prefix, ++self->counter);
}

//  Reads the handshake events that came; true when one is final (refused, or the mechanisms
//  differ: nothing will answer this call), with errno set for it
static bool
s_handshake_failed (kf_client_t *self)
{
    int refused, mismatched, failed;
    kf_curve_monitor_failures (self->monitor, &refused, &mismatched, &failed);
    self->refused += refused;
    self->mismatched += mismatched;
    self->failed += failed;
    errno = self->refused ? EACCES : self->mismatched ? EPROTO : self->failed ? ECONNRESET : ETIMEDOUT;
    return self->refused || self->mismatched;
}

//  A new connection: only its own refusals and failures will count. A mechanism mismatch stays
//  known until a reply comes (a new connection to the same broker only breaks off, unexplained)
static void
s_handshake_reset (kf_client_t *self)
{
    s_handshake_failed (self);
    self->refused = self->failed = 0;
}

//  Connects both sockets again; only the new connection's handshakes count from here
static void
s_reconnect (kf_client_t *self)
{
    s_handshake_reset (self);
    zmq_disconnect (self->dealer, self->requests);
    zmq_connect (self->dealer, self->requests);
    if (self->sub) {
        zmq_disconnect (self->sub, self->streams);
        zmq_connect (self->sub, self->streams);
    }
}

//  Why no reply came: a refused or failed CURVE handshake since the connection began, else time
static int
s_timed_out (kf_client_t *self)
{
    s_handshake_failed (self);
    return -1;
}

int
kf_client_call (kf_client_t *self, const char *method, const char *params, size_t params_len,
                kf_reply_t **reply_p)
{
    char id [48];
    s_next_id (self, id, sizeof id);
    *reply_p = NULL;
    if (s_send (self, id, method, params, params_len, false) == -1)
        return -1;
    int64_t deadline = kf_mono_ms () + self->timeout_ms;
    while (!*reply_p) {
        int64_t left = deadline - kf_mono_ms ();
        if (left <= 0)
            return s_timed_out (self);
        //  The monitor too: a refused handshake fails the call at once, not at its timeout
        zmq_pollitem_t items [2] = { { self->dealer, 0, ZMQ_POLLIN, 0 }, { self->monitor, 0, ZMQ_POLLIN, 0 } };
        if (zmq_poll (items, 2, left) == -1 && errno != EINTR)
            return -1;
        if (items [0].revents & ZMQ_POLLIN)
            *reply_p = s_recv_reply (self, id);
        if (!*reply_p && (items [1].revents & ZMQ_POLLIN) && s_handshake_failed (self))
            return -1;
    }
    return 0;
}

//  --- Streams ----------------------------------------------------------------------------------

//  Events that arrived ahead of a gap, kept until the gap is filled
typedef struct {
    kf_event_fn *fn;
    void *arg;
    int64_t next_seq;           //  Next seq to deliver
    msgpack_unpacked *held;     //  Out-of-order events
    int held_count;
} s_stream_state_t;

//  Delivers an event if it is the next one, holds it if it is ahead, drops it if already seen.
//  Takes ownership of `event`.
static void
s_offer (s_stream_state_t *state, msgpack_unpacked *event)
{
    int64_t seq = kf_mp_get_int (&event->data, "seq", -1);
    if (seq < state->next_seq) {
        msgpack_unpacked_destroy (event);
        return;
    }
    if (seq > state->next_seq) {
        state->held = kf_realloc (state->held, (state->held_count + 1) * sizeof (msgpack_unpacked));
        state->held [state->held_count++] = *event;
        return;
    }
    state->fn (state->arg, &event->data);
    msgpack_unpacked_destroy (event);
    state->next_seq++;
    //  Held events that are now in order
    for (int i = 0; i < state->held_count; i++) {
        if (kf_mp_get_int (&state->held [i].data, "seq", -1) != state->next_seq)
            continue;
        msgpack_unpacked next = state->held [i];
        state->held [i] = state->held [--state->held_count];
        s_offer (state, &next);
        return;
    }
}

static void
s_on_stream_message (kf_client_t *self, const char *id, s_stream_state_t *state)
{
    kf_frames_t frames;
    if (kf_frames_recv (&frames, self->sub, ZMQ_DONTWAIT) == -1)
        return;
    //  SUB filters by prefix: "abc" also receives "abcd"; keep exact matches only
    if (frames.count == 2 && kf_frames_size (&frames, 0) == strlen (id)
    &&  memcmp (kf_frames_data (&frames, 0), id, strlen (id)) == 0) {
        msgpack_unpacked event;
        if (kf_mp_unpack_one (kf_frames_data (&frames, 1), kf_frames_size (&frames, 1), &event))
            s_offer (state, &event);
    }
    kf_frames_close (&frames);
}

//  Fetches the events from next_seq on with stream.fetch and offers them
static void
s_repair (kf_client_t *self, const char *id, s_stream_state_t *state)
{
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &params, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_str (&pk, "stream_id", id);
    kf_mp_pack_kv_int (&pk, "from_seq", state->next_seq);
    kf_reply_t *reply = NULL;
    if (kf_client_call (self, "stream.fetch", params.data, params.size, &reply) == 0 && reply->ok) {
        const msgpack_object *data = kf_mp_get (reply->result, "data");
        for (uint32_t i = 0; data && data->type == MSGPACK_OBJECT_ARRAY && i < data->via.array.size; i++) {
            //  Re-pack each event into its own unpacked so s_offer can own it
            msgpack_sbuffer one;
            msgpack_sbuffer_init (&one);
            msgpack_packer one_pk;
            msgpack_packer_init (&one_pk, &one, msgpack_sbuffer_write);
            msgpack_pack_object (&one_pk, data->via.array.ptr [i]);
            msgpack_unpacked event;
            int64_t before = state->next_seq;
            if (kf_mp_unpack_one (one.data, one.size, &event))
                s_offer (state, &event);
            self->repaired += state->next_seq > before;
            msgpack_sbuffer_destroy (&one);
        }
    }
    kf_reply_destroy (&reply);
    msgpack_sbuffer_destroy (&params);
}

int
kf_client_chat_stream (kf_client_t *self, const char *params, size_t params_len,
                       kf_event_fn *fn, void *arg, kf_reply_t **reply_p)
{
    *reply_p = NULL;
    if (!self->sub) {
        errno = EINVAL;
        return -1;
    }
    char id [48];
    s_next_id (self, id, sizeof id);
    zmq_setsockopt (self->sub, ZMQ_SUBSCRIBE, id, strlen (id));
    s_stream_state_t state = { fn, arg, 0, NULL, 0 };
    int rc = s_send (self, id, "chat", params, params_len, true);
    int64_t deadline = kf_mono_ms () + self->timeout_ms;
    int64_t last_seq = -1, grace_until = 0;
    while (rc == 0) {
        int64_t now = kf_mono_ms ();
        if (*reply_p && (last_seq < 0 ? 0 : state.next_seq > last_seq))
            break;                      //  Every event delivered
        if (*reply_p && now >= grace_until) {
            if (last_seq >= 0)
                s_repair (self, id, &state);
            break;
        }
        if (!*reply_p && now >= deadline) {
            rc = s_timed_out (self);
            break;
        }
        long wait = (long) ((*reply_p ? grace_until : deadline) - now);
        zmq_pollitem_t items [3] = { { self->sub, 0, ZMQ_POLLIN, 0 }, { self->dealer, 0, ZMQ_POLLIN, 0 },
                                     { self->monitor, 0, ZMQ_POLLIN, 0 } };
        if (zmq_poll (items, 3, wait) == -1 && errno != EINTR) {
            rc = -1;
            break;
        }
        if (!*reply_p && (items [2].revents & ZMQ_POLLIN) && s_handshake_failed (self)) {
            rc = -1;
            break;
        }
        if (items [0].revents & ZMQ_POLLIN)
            s_on_stream_message (self, id, &state);
        if ((items [1].revents & ZMQ_POLLIN) && !*reply_p && (*reply_p = s_recv_reply (self, id))) {
            //  The reply can overtake the last events (another socket): wait a little for them
            last_seq = (*reply_p)->ok ? kf_mp_get_int ((*reply_p)->result, "last_seq", -1) : -1;
            grace_until = kf_mono_ms () + ((*reply_p)->ok ? 500 : 50);
        }
    }
    zmq_setsockopt (self->sub, ZMQ_UNSUBSCRIBE, id, strlen (id));
    for (int i = 0; i < state.held_count; i++)
        msgpack_unpacked_destroy (&state.held [i]);
    free (state.held);
    return rc;
}
