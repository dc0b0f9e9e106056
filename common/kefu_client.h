/*  kefu_client.h - the C client library for services that talk to kefu: one call for a blocking
    request, one for a streamed chat with a callback per event (in order, gaps repaired). It speaks
    exactly what schemas/PROTOCOL.md describes: DEALER to the request endpoint, SUB to the streams.
    A client is not thread-safe: use one per thread. */
#ifndef KEFU_CLIENT_H
#define KEFU_CLIENT_H
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include "common/curve.h"
#include "common/wire.h"

typedef struct _kf_client_t kf_client_t;

//  A reply. `result` (when ok) points into the reply, which owns it.
typedef struct {
    msgpack_unpacked unpacked;  //  Owns the decoded reply
    bool ok;
    const msgpack_object *result;   //  The result value when ok
    kf_error_t error;           //  The error when not ok
} kf_reply_t;

//  Connects to a broker. `streams` may be NULL when no streamed chat is needed. Returns NULL when
//  an endpoint is malformed (connecting itself is asynchronous and retried by ZeroMQ).
kf_client_t *kf_client_new (const char *requests, const char *streams);

//  As kf_client_new, over CURVE with `curve`'s keys (common/curve.h; kf_curve_client_config reads
//  them from options or the environment); NULL: plain, as kf_client_new. A call the broker never
//  answers because it refused this client's key fails with errno EACCES; EPROTO when one side uses
//  CURVE and the other not; ECONNRESET when the handshake broke off without a reason (a wrong
//  broker key, or a peer that is no kefu broker); ETIMEDOUT otherwise. A refusal or a mechanism
//  mismatch fails the call as soon as the handshake does, not at the call's timeout.
kf_client_t *kf_client_new_curve (const char *requests, const char *streams, const kf_curve_t *curve);

//  Closes the sockets and frees the client; nulls *self_p.
void kf_client_destroy (kf_client_t **self_p);

//  Sets how long a call waits for its reply (default 35000 ms).
void kf_client_set_timeout (kf_client_t *self, int timeout_ms);

//  Sends `method` with `params` (a packed msgpack map of params_len bytes, or NULL for none) and waits
//  for its reply. Returns 0 with *reply_p set (check ok), or -1 when no reply came in time (errno
//  ETIMEDOUT; EACCES, EPROTO or ECONNRESET after a failed handshake, above) or the socket failed.
//  The caller destroys the reply.
int kf_client_call (kf_client_t *self, const char *method, const char *params, size_t params_len,
                    kf_reply_t **reply_p);

//  Called for each stream event, in seq order, exactly once each.
typedef void (kf_event_fn) (void *arg, const msgpack_object *event);

//  A streamed chat: `params` as for chat (stream is set for you). Subscribes, sends, calls `fn` for
//  every event (meta, token..., done or error), fetching any events the stream lost, and returns
//  the final reply like kf_client_call.
int kf_client_chat_stream (kf_client_t *self, const char *params, size_t params_len,
                           kf_event_fn *fn, void *arg, kf_reply_t **reply_p);

//  Events this client had to fetch with stream.fetch because they never arrived on its SUB socket
//  (0 on a healthy broker: it holds streams for their subscriber and never drops).
unsigned long kf_client_repaired (kf_client_t *self);

//  Frees a reply; nulls *reply_p.
void kf_reply_destroy (kf_reply_t **reply_p);
#endif
