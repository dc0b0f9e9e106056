/*  stream_hub.h - token streams on the XPUB socket without silent loss. The hub sees subscriptions
    (the XPUB reports which topics have a subscriber) and holds a stream's events until its topic has a subscriber, or until a bounded
    wait passes; XPUB_NODROP turns high-water-mark drops into retries; every event keeps its sequence
    number and stays fetchable (stream.fetch) for a retention period after the stream ends. */
#ifndef KF_STREAM_HUB_H
#define KF_STREAM_HUB_H
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _kf_stream_hub_t kf_stream_hub_t;
typedef struct _kf_stream_t kf_stream_t;

//  Creates a hub publishing on `xpub` (an XPUB socket with NODROP set). Streams wait
//  at most `wait_ms` for their subscriber; ended streams stay fetchable for `retention_ms`.
kf_stream_hub_t *kf_stream_hub_new (void *xpub, int wait_ms, int retention_ms);

//  A subscriber that stops reading would hold every stream back (NODROP turns its full queue into
//  push-back for all). After `stall_ms` of push-back the hub publishes lossy until the socket takes
//  messages again: the stalled subscriber loses its share (and can fetch it), the others get theirs.
//  The default is 1000 ms.
void kf_stream_hub_set_stall (kf_stream_hub_t *self, int stall_ms);

//  Destroys the hub and every stream; nulls *self_p.
void kf_stream_hub_destroy (kf_stream_hub_t **self_p);

//  Feeds one message received on the XPUB socket (a subscribe or unsubscribe).
void kf_stream_hub_on_subscription (kf_stream_hub_t *self, const char *data, size_t len);

//  True when a stream with this topic is open (not yet ended).
bool kf_stream_hub_is_open (kf_stream_hub_t *self, const char *topic, size_t len);

//  Opens a stream on `topic`, replacing an ended one with the same topic. Returns NULL when a stream
//  with that topic is still open. The hub owns the stream.
kf_stream_t *kf_stream_hub_open (kf_stream_hub_t *self, const char *topic, size_t len);

//  Sequence number the next event of `stream` gets (0 for the first).
int64_t kf_stream_next_seq (kf_stream_t *stream);

//  Queues one event (a packed msgpack map that already carries its seq). The hub copies it and sends
//  it at the next kf_stream_hub_flush. `is_last` ends the stream: the caller must not use the
//  stream pointer after that.
void kf_stream_publish (kf_stream_hub_t *self, kf_stream_t *stream, const char *body, size_t len,
                        bool is_last);

//  The topic of `stream` (owned by the hub), its length in *len.
const char *kf_stream_topic (const kf_stream_t *stream, size_t *len);

//  Finds the stream on `topic`, open or ended and still retained; NULL when there is none.
kf_stream_t *kf_stream_hub_find (kf_stream_hub_t *self, const char *topic, size_t len);

//  The store batch the events published from now on depend on: a rollback of it takes them back.
void kf_stream_hub_set_batch (kf_stream_hub_t *self, uint64_t batch);

//  Takes back the events of `stream` published in store batch `batch` or later and not handed to
//  the socket yet: that batch was rolled back, so they tell of a turn that was not stored (events
//  of earlier, committed batches stay, sent or held). Returns the seq the next event gets. An open
//  stream goes on as before (kf_stream_next_seq is that seq); an ended one whose last event was
//  taken back is ended again by kf_stream_put_last. Returns -1 when nothing was taken back.
int64_t kf_stream_take_back (kf_stream_hub_t *self, kf_stream_t *stream, uint64_t batch);

//  Queues `body` (a packed event carrying the seq kf_stream_take_back returned) as the last event
//  of an ended stream whose unsent events were taken back: its done gives way to an error.
void kf_stream_put_last (kf_stream_hub_t *self, kf_stream_t *stream, const char *body, size_t len);

//  Queues one notification: a packed msgpack map published once on `topic` (any topic, e.g.
//  "agent.escalations") at the next kf_stream_hub_flush, after the events queued before it. No
//  hold, no seq and no retention: whoever is subscribed when it is sent gets it (with the same
//  NODROP retry and stall rule as streams), nobody can fetch it later; the caller's ids and its
//  list methods are the repair path. The hub copies `topic` and `body`.
void kf_stream_hub_notify (kf_stream_hub_t *self, const char *topic, size_t topic_len,
                           const char *body, size_t body_len);

//  Drops the notifications queued since the last kf_stream_hub_flush: the batch whose changes they
//  announce was rolled back, so they would tell of things that did not happen. Those queued
//  before (committed, waiting for the socket) stay. Returns how many went.
size_t kf_stream_hub_discard_notices (kf_stream_hub_t *self);

//  Sends what can be sent now, releases the wait of streams whose wait passed, and forgets ended
//  streams past retention. Call once per loop iteration, after the database commit.
void kf_stream_hub_flush (kf_stream_hub_t *self, int64_t now_us);

//  Ends every hold and tries for up to `timeout_ms` to send everything queued: for shutdown, so
//  the last events (errors of cancelled chats) are not left behind. Returns events still unsent.
size_t kf_stream_hub_drain (kf_stream_hub_t *self, int timeout_ms);

//  Milliseconds until the hub needs kf_stream_hub_flush again (-1 when nothing waits).
long kf_stream_hub_timeout (kf_stream_hub_t *self, int64_t now_us);

//  Packs {"data": [events with seq >= from_seq], "has_more": false, "total": n, "ended": bool} for a
//  stream. Returns 0, or -1 when no stream with that topic is known (never opened or forgotten).
int kf_stream_hub_fetch_pack (kf_stream_hub_t *self, const char *topic, size_t len, int64_t from_seq,
                              msgpack_packer *pk);

//  Open streams, and events (notifications included) waiting to be sent.
size_t kf_stream_hub_open_count (kf_stream_hub_t *self);
size_t kf_stream_hub_backlog (kf_stream_hub_t *self);
#endif
