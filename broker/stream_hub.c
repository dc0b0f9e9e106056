/*  stream_hub.c - held, sequenced, retried and retained token streams on an XPUB socket, and
    one-off notifications on other topics. */
#include "broker/stream_hub.h"
#include "common/clock.h"
#include "common/dict.h"
#include "common/frames.h"
#include "common/log.h"
#include "common/mpack.h"
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_RETAINED_MAX 20000    //  Ended streams kept for fetch, whatever the retention time

typedef struct {
    char *data;
    size_t size;
    uint64_t batch;             //  The hub's batch when it was published (kf_stream_hub_set_batch)
} s_event_t;

struct _kf_stream_t {
    char *topic;
    size_t topic_len;
    s_event_t *events;          //  Every event, in seq order
    size_t count, capacity;
    size_t sent;                //  Events handed to the socket
    bool is_live;               //  Subscriber seen, or the wait passed
    bool is_ended;              //  Last event published
    bool is_pending;            //  On the pending list
    bool is_waiting;            //  On the waiting list
    int64_t wait_until_us;      //  Publish anyway after this
    int64_t forget_at_us;       //  Ended: drop after this
    kf_stream_t *pending_next;  //  Streams with unsent events
    kf_stream_t *retired_next;  //  Ended streams, oldest first
    kf_stream_t *waiting_next;  //  Streams waiting for their subscriber
};

//  A notification waiting to be sent (kf_stream_hub_notify)
typedef struct s_notice_t {
    char *topic;
    size_t topic_len;
    char *body;
    size_t body_len;
    struct s_notice_t *next;
} s_notice_t;

struct _kf_stream_hub_t {
    void *xpub;
    int64_t wait_us, retention_us;
    kf_dict_t *streams;         //  Topic -> stream (open and retained)
    kf_dict_t *subscriptions;   //  Topics with at least one subscriber
    kf_stream_t *pending;       //  Streams with unsent events
    kf_stream_t *waiting;       //  Streams not yet live
    kf_stream_t *retired_head, *retired_tail;
    s_notice_t *notices_head, *notices_tail;    //  Notifications, oldest first
    size_t notices_unflushed;   //  Queued since the last flush: the last ones, not committed yet
    size_t open_count, retired_count, backlog;
    int64_t stall_us;           //  Push-back tolerated before publishing lossy
    int64_t blocked_since_us;   //  When the socket started pushing back, 0 when it is not
    bool is_lossy_logged;       //  Said so once for this stall
    uint64_t batch;             //  Store batch the events published now depend on
};

kf_stream_hub_t *
kf_stream_hub_new (void *xpub, int wait_ms, int retention_ms)
{
    kf_stream_hub_t *self = kf_calloc (1, sizeof *self);
    self->xpub = xpub;
    self->wait_us = wait_ms * 1000LL;
    self->retention_us = retention_ms * 1000LL;
    self->streams = kf_dict_new ();
    self->subscriptions = kf_dict_new ();
    self->stall_us = 1000000;
    return self;
}

void
kf_stream_hub_set_stall (kf_stream_hub_t *self, int stall_ms)
{
    self->stall_us = stall_ms * 1000LL;
}

static void
s_stream_free (kf_stream_t *stream)
{
    for (size_t i = 0; i < stream->count; i++)
        free (stream->events [i].data);
    free (stream->events);
    free (stream->topic);
    free (stream);
}

static void
s_notice_free (s_notice_t *notice)
{
    free (notice->topic);
    free (notice->body);
    free (notice);
}

void
kf_stream_hub_destroy (kf_stream_hub_t **self_p)
{
    kf_stream_hub_t *self = *self_p;
    if (!self)
        return;
    //  Retired streams replaced by a newer one with the same topic are only on the retired list
    for (kf_stream_t *stream = self->retired_head, *next; stream; stream = next) {
        next = stream->retired_next;
        if (kf_dict_get (self->streams, stream->topic, stream->topic_len) != stream)
            s_stream_free (stream);
    }
    size_t cursor = 0;
    void *value;
    while (kf_dict_next (self->streams, &cursor, NULL, &value))
        s_stream_free (value);
    for (s_notice_t *notice = self->notices_head, *next; notice; notice = next) {
        next = notice->next;
        s_notice_free (notice);
    }
    kf_dict_destroy (&self->streams);
    kf_dict_destroy (&self->subscriptions);
    free (self);
    *self_p = NULL;
}

//  True when `topic` itself has a subscriber. Only the exact topic counts: a monitor subscribed to
//  everything ("") or to a prefix must not release a stream before its own client is there.
static bool
s_is_subscribed (kf_stream_hub_t *self, const char *topic, size_t len)
{
    return kf_dict_get (self->subscriptions, topic, len) != NULL;
}

static void
s_make_pending (kf_stream_hub_t *self, kf_stream_t *stream)
{
    if (stream->is_pending || stream->sent == stream->count)
        return;
    stream->is_pending = true;
    stream->pending_next = self->pending;
    self->pending = stream;
}

void
kf_stream_hub_on_subscription (kf_stream_hub_t *self, const char *data, size_t len)
{
    if (len < 1 || (data [0] != 0 && data [0] != 1))
        return;
    const char *topic = data + 1;
    size_t topic_len = len - 1;
    if (data [0] == 1) {
        kf_dict_put (self->subscriptions, topic, topic_len, (void *) 1);
        //  Release the stream waiting for exactly this topic
        kf_stream_t *stream = kf_dict_get (self->streams, topic, topic_len);
        if (stream && !stream->is_live) {
            stream->is_live = true;
            s_make_pending (self, stream);
        }
    }
    else
        kf_dict_remove (self->subscriptions, topic, topic_len);
}

bool
kf_stream_hub_is_open (kf_stream_hub_t *self, const char *topic, size_t len)
{
    kf_stream_t *stream = kf_dict_get (self->streams, topic, len);
    //  Ended but still delivering counts as open: a new stream must not mix into it
    return stream && (!stream->is_ended || stream->sent < stream->count);
}

kf_stream_t *
kf_stream_hub_open (kf_stream_hub_t *self, const char *topic, size_t len)
{
    kf_stream_t *old = kf_dict_get (self->streams, topic, len);
    if (kf_stream_hub_is_open (self, topic, len))
        return NULL;
    if (old)
        old->forget_at_us = 0;          //  Retired entry is replaced: let the sweep skip it
    kf_stream_t *stream = kf_calloc (1, sizeof *stream);
    stream->topic = kf_strndup (topic, len);
    stream->topic_len = len;
    stream->is_live = s_is_subscribed (self, topic, len);
    stream->wait_until_us = kf_mono_us () + self->wait_us;
    if (!stream->is_live) {
        stream->is_waiting = true;
        stream->waiting_next = self->waiting;
        self->waiting = stream;
    }
    kf_dict_put (self->streams, topic, len, stream);
    self->open_count++;
    return stream;
}

int64_t
kf_stream_next_seq (kf_stream_t *stream)
{
    return (int64_t) stream->count;
}

//  Queues a copy of `body` as the stream's next event, tagged with the hub's batch
static void
s_append (kf_stream_hub_t *self, kf_stream_t *stream, const char *body, size_t len)
{
    if (stream->count == stream->capacity) {
        stream->capacity = stream->capacity ? stream->capacity * 2 : 16;
        stream->events = kf_realloc (stream->events, stream->capacity * sizeof (s_event_t));
    }
    stream->events [stream->count].data = kf_strndup (body, len);
    stream->events [stream->count].size = len;
    stream->events [stream->count].batch = self->batch;
    stream->count++;
    self->backlog++;
    if (stream->is_live)
        s_make_pending (self, stream);
}

void
kf_stream_publish (kf_stream_hub_t *self, kf_stream_t *stream, const char *body, size_t len,
                   bool is_last)
{
    if (stream->is_ended)
        return;
    s_append (self, stream, body, len);
    if (is_last) {
        stream->is_ended = true;
        self->open_count--;
        stream->forget_at_us = kf_mono_us () + self->retention_us;
        if (self->retired_tail)
            self->retired_tail->retired_next = stream;
        else
            self->retired_head = stream;
        self->retired_tail = stream;
        self->retired_count++;
    }
}

const char *
kf_stream_topic (const kf_stream_t *stream, size_t *len)
{
    *len = stream->topic_len;
    return stream->topic;
}

kf_stream_t *
kf_stream_hub_find (kf_stream_hub_t *self, const char *topic, size_t len)
{
    return kf_dict_get (self->streams, topic, len);
}

void
kf_stream_hub_set_batch (kf_stream_hub_t *self, uint64_t batch)
{
    self->batch = batch;
}

int64_t
kf_stream_take_back (kf_stream_hub_t *self, kf_stream_t *stream, uint64_t batch)
{
    size_t count = stream->count;
    while (count > stream->sent && stream->events [count - 1].batch >= batch)
        count--;
    if (count == stream->count)
        return -1;
    for (size_t e = count; e < stream->count; e++) {
        free (stream->events [e].data);
        self->backlog--;
    }
    stream->count = count;
    return (int64_t) stream->count;
}

void
kf_stream_put_last (kf_stream_hub_t *self, kf_stream_t *stream, const char *body, size_t len)
{
    if (!stream->is_ended) {
        kf_stream_publish (self, stream, body, len, true);
        return;
    }
    s_append (self, stream, body, len);
}

void
kf_stream_hub_notify (kf_stream_hub_t *self, const char *topic, size_t topic_len, const char *body,
                      size_t body_len)
{
    s_notice_t *notice = kf_calloc (1, sizeof *notice);
    notice->topic = kf_strndup (topic, topic_len);
    notice->topic_len = topic_len;
    notice->body = kf_calloc (1, body_len + 1);
    memcpy (notice->body, body, body_len);
    notice->body_len = body_len;
    if (self->notices_tail)
        self->notices_tail->next = notice;
    else
        self->notices_head = notice;
    self->notices_tail = notice;
    self->notices_unflushed++;
    self->backlog++;
}

size_t
kf_stream_hub_discard_notices (kf_stream_hub_t *self)
{
    size_t discarded = self->notices_unflushed;
    if (discarded == 0)
        return 0;
    //  The kept ones are those queued before: walk past them (a rare path: a lost batch)
    size_t kept = 0;
    for (s_notice_t *notice = self->notices_head; notice; notice = notice->next)
        kept++;
    assert (kept >= discarded);
    kept -= discarded;
    s_notice_t **link = &self->notices_head;
    s_notice_t *last = NULL;
    for (size_t i = 0; i < kept; i++) {
        last = *link;
        link = &last->next;
    }
    while (*link) {
        s_notice_t *notice = *link;
        *link = notice->next;
        s_notice_free (notice);
    }
    self->notices_tail = last;
    self->notices_unflushed = 0;
    self->backlog -= discarded;
    return discarded;
}

//  Sends the queued notifications in order. Returns false when the socket pushed back.
static bool
s_send_notices (kf_stream_hub_t *self)
{
    while (self->notices_head) {
        s_notice_t *notice = self->notices_head;
        if (zmq_send (self->xpub, notice->topic, notice->topic_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1) {
            if (errno != EAGAIN)
                kf_warn ("topic %s: publish failed: %s", notice->topic, zmq_strerror (errno));
            return false;
        }
        zmq_send (self->xpub, notice->body, notice->body_len, 0);
        self->notices_head = notice->next;
        if (!self->notices_head)
            self->notices_tail = NULL;
        self->backlog--;
        s_notice_free (notice);
    }
    return true;
}

//  Sends a live stream's unsent events. Returns false when the socket pushed back (EAGAIN).
static bool
s_send_events (kf_stream_hub_t *self, kf_stream_t *stream)
{
    while (stream->sent < stream->count) {
        s_event_t *event = &stream->events [stream->sent];
        if (zmq_send (self->xpub, stream->topic, stream->topic_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1) {
            if (errno != EAGAIN)
                kf_warn ("stream %s: publish failed: %s", stream->topic, zmq_strerror (errno));
            return false;
        }
        zmq_send (self->xpub, event->data, event->size, 0);
        stream->sent++;
        self->backlog--;
    }
    return true;
}

//  Forgets retired streams past retention, or beyond the count bound
static void
s_sweep_retired (kf_stream_hub_t *self, int64_t now_us)
{
    while (self->retired_head) {
        kf_stream_t *stream = self->retired_head;
        if (stream->forget_at_us > now_us && self->retired_count <= S_RETAINED_MAX)
            break;
        if ((stream->is_pending || stream->is_waiting) && stream->forget_at_us > 0)
            break;                      //  Still delivering: keep it a little longer
        self->retired_head = stream->retired_next;
        if (!self->retired_head)
            self->retired_tail = NULL;
        self->retired_count--;
        if (kf_dict_get (self->streams, stream->topic, stream->topic_len) == stream)
            kf_dict_remove (self->streams, stream->topic, stream->topic_len);
        self->backlog -= stream->count - stream->sent;
        if (stream->is_waiting) {
            for (kf_stream_t **link = &self->waiting; *link; link = &(*link)->waiting_next)
                if (*link == stream) {
                    *link = stream->waiting_next;
                    break;
                }
        }
        if (stream->is_pending) {
            for (kf_stream_t **link = &self->pending; *link; link = &(*link)->pending_next)
                if (*link == stream) {
                    *link = stream->pending_next;
                    break;
                }
        }
        s_stream_free (stream);
    }
}

void
kf_stream_hub_flush (kf_stream_hub_t *self, int64_t now_us)
{
    self->notices_unflushed = 0;        //  Their batch is committed: they may leave
    //  Release streams whose subscriber did not come in time: they publish anyway, and the
    //  client can fetch what it missed
    for (kf_stream_t **link = &self->waiting; *link;) {
        kf_stream_t *stream = *link;
        if (!stream->is_live && now_us >= stream->wait_until_us) {
            kf_debug ("stream %s: no subscriber after the wait, publishing anyway", stream->topic);
            stream->is_live = true;
            s_make_pending (self, stream);
        }
        if (stream->is_live) {
            stream->is_waiting = false;
            *link = stream->waiting_next;
        }
        else
            link = &stream->waiting_next;
    }
    bool is_lossy = self->blocked_since_us && now_us - self->blocked_since_us >= self->stall_us;
    if (self->pending || self->notices_head) {
        //  Lets libzmq process its queued commands: a subscriber that drained its pipe is only
        //  writable again after that (an XPUB that is never read from would stay blocked)
        int events;
        size_t size = sizeof events;
        zmq_getsockopt (self->xpub, ZMQ_EVENTS, &events, &size);
        if (is_lossy) {
            int off = 0;
            zmq_setsockopt (self->xpub, ZMQ_XPUB_NODROP, &off, sizeof off);
            if (!self->is_lossy_logged)
                kf_warn ("a subscriber has not read for %lld ms: publishing past it (it can repair"
                         " with stream.fetch)", (long long) ((now_us - self->blocked_since_us) / 1000));
            self->is_lossy_logged = true;
        }
    }
    bool is_blocked = false;
    kf_stream_t **link = &self->pending;
    while (*link) {
        kf_stream_t *stream = *link;
        if (s_send_events (self, stream)) {
            stream->is_pending = false;
            *link = stream->pending_next;
        }
        else {
            is_blocked = true;
            link = &stream->pending_next;
        }
    }
    if (!s_send_notices (self))
        is_blocked = true;
    if (is_lossy) {
        int on = 1;
        zmq_setsockopt (self->xpub, ZMQ_XPUB_NODROP, &on, sizeof on);
    }
    if (!is_blocked) {
        self->blocked_since_us = 0;
        self->is_lossy_logged = false;
    }
    else
    if (!self->blocked_since_us)
        self->blocked_since_us = now_us;
    s_sweep_retired (self, now_us);
}

size_t
kf_stream_hub_drain (kf_stream_hub_t *self, int timeout_ms)
{
    //  Holds end within the drain, not at once: a subscription still on its way (the client
    //  subscribed just before the stop) is read and honoured meanwhile
    int64_t now = kf_mono_us ();
    int64_t deadline = now + timeout_ms * 1000LL;
    for (kf_stream_t *stream = self->waiting; stream; stream = stream->waiting_next)
        if (stream->wait_until_us > deadline - timeout_ms * 200LL)
            stream->wait_until_us = deadline - timeout_ms * 200LL;
    self->blocked_since_us = 0;
    self->stall_us = timeout_ms * 500LL;        //  Past a stalled subscriber halfway through
    while (self->backlog > 0 && (now = kf_mono_us ()) < deadline) {
        kf_frames_t frames;
        while (kf_frames_recv (&frames, self->xpub, ZMQ_DONTWAIT) == 0) {
            kf_stream_hub_on_subscription (self, kf_frames_data (&frames, 0), kf_frames_size (&frames, 0));
            kf_frames_close (&frames);
        }
        kf_stream_hub_flush (self, now);
        if (self->backlog > 0) {
            zmq_pollitem_t item = { self->xpub, 0, ZMQ_POLLIN | ZMQ_POLLOUT, 0 };
            zmq_poll (&item, 1, 1);
        }
    }
    return self->backlog;
}

long
kf_stream_hub_timeout (kf_stream_hub_t *self, int64_t now_us)
{
    if (self->pending || self->notices_head)
        return 1;                       //  Pushed back by the socket: retry soon
    long timeout = -1;
    for (kf_stream_t *stream = self->waiting; stream; stream = stream->waiting_next) {
        long ms = stream->is_live || stream->wait_until_us <= now_us ? 0
                : (long) ((stream->wait_until_us - now_us) / 1000 + 1);
        if (timeout < 0 || ms < timeout)
            timeout = ms;
    }
    if (self->retired_head && !self->retired_head->is_pending && !self->retired_head->is_waiting) {
        int64_t due = self->retired_head->forget_at_us;
        long ms = due <= now_us ? 0 : (long) ((due - now_us) / 1000 + 1);
        if (timeout < 0 || ms < timeout)
            timeout = ms;
    }
    return timeout;
}

int
kf_stream_hub_fetch_pack (kf_stream_hub_t *self, const char *topic, size_t len, int64_t from_seq,
                          msgpack_packer *pk)
{
    kf_stream_t *stream = kf_dict_get (self->streams, topic, len);
    if (!stream)
        return -1;
    size_t from = from_seq < 0 ? 0 : (size_t) from_seq;
    size_t count = from < stream->count ? stream->count - from : 0;
    msgpack_pack_map (pk, 4);
    kf_mp_pack_cstr (pk, "data");
    msgpack_pack_array (pk, count);
    for (size_t i = from; i < stream->count; i++)
        pk->callback (pk->data, stream->events [i].data, stream->events [i].size);
    kf_mp_pack_kv_bool (pk, "has_more", false);
    kf_mp_pack_kv_int (pk, "total", (int64_t) count);
    kf_mp_pack_kv_bool (pk, "ended", stream->is_ended);
    return 0;
}

size_t
kf_stream_hub_open_count (kf_stream_hub_t *self)
{
    return self->open_count;
}

size_t
kf_stream_hub_backlog (kf_stream_hub_t *self)
{
    return self->backlog;
}
