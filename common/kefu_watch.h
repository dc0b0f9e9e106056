/*  kefu_watch.h - the client library's watch on notification topics (PROTOCOL.md section 13): the
    events that belong to no request, such as escalation cards on `agent.escalations`, customers'
    messages to people on `agent.messages`, and an agent's replies on `session.<session_id>`. A
    watch is a SUB socket of its own, so its events never mix with a client's chat streams, and it
    delivers only topics it was asked for, compared exactly (SUB filters by prefix; a topic ending
    in '.' is taken as a prefix on purpose: "agent." watches both agent topics).
    Not thread-safe: one watch per thread. */
#ifndef KEFU_WATCH_H
#define KEFU_WATCH_H
#include <msgpack.h>
#include <stddef.h>
#include "common/curve.h"

#define KF_WATCH_TOPICS_MAX 8

typedef struct _kf_watch_t kf_watch_t;

//  Subscribes to `count` topics (at most KF_WATCH_TOPICS_MAX, each 1..128 bytes) on the broker's
//  stream endpoint. Returns NULL when the endpoint is malformed or a topic is invalid. ZeroMQ
//  sends subscriptions asynchronously: events published in the first milliseconds may be missed,
//  which is why every notification can be read back (history, escalations.list).
kf_watch_t *kf_watch_new (const char *streams, const char *const *topics, int count);

//  As kf_watch_new, over CURVE with `curve`'s keys; NULL: plain.
kf_watch_t *kf_watch_new_curve (const char *streams, const char *const *topics, int count,
                                const kf_curve_t *curve);

//  Closes the socket and frees the watch; nulls *self_p.
void kf_watch_destroy (kf_watch_t **self_p);

//  Waits up to `timeout_ms` (-1: forever) for the next event of a watched topic. Returns 1 with
//  the topic copied into `topic` (NUL-terminated, cut to `topic_size`) and the event decoded into
//  `event` (initialised here; the caller destroys it), 0 on timeout, -1 when interrupted or the
//  socket failed (errno says which).
int kf_watch_next (kf_watch_t *self, int timeout_ms, char *topic, size_t topic_size,
                   msgpack_unpacked *event);

//  The SUB socket, to poll together with other sockets or descriptors (ZMQ_POLLIN).
void *kf_watch_socket (kf_watch_t *self);
#endif
