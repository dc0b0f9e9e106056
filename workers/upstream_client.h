/*  upstream_client.h - streaming calls to LLM upstreams (OpenAI-compatible chat completions, Dify
    chat messages) from inside the worker's zmq_poll loop, many at once, never blocking. Built on
    libcurl's multi-socket interface: the client keeps libcurl's sockets in an epoll set of its
    own and gives the owner one descriptor to poll (readable when any of them is ready) and the
    time it next needs; the owner polls it with its own sockets and hands back the result. A
    wake-up costs the sockets that are ready, not every open stream's. Requests are described in upstream_request.h. Each request's stream goes through the
    SSE parser and the decoders of upstream_events.h and comes out as events as soon as each is
    whole, ending with exactly one terminal event (KF_UP_DONE or KF_UP_ERROR). Failures before
    anything reached the caller are retried. An open stream costs about 19 KB (measured over
    plain HTTP with 1,000 and 2,000 streams; TLS adds its own per connection, shared by the
    streams of one HTTP/2 connection).

    A loop that owns a client looks like this:

        zmq_pollitem_t items [2];
        items [0] = (zmq_pollitem_t) { broker_socket, 0, ZMQ_POLLIN, 0 };
        int count = kf_upstream_client_pollitems (client, items + 1, 1);
        long timeout = min (own_timeout, kf_upstream_client_timeout_ms (client, kf_mono_us ()));
        zmq_poll (items, 1 + count, timeout);
        kf_upstream_client_on_poll (client, items + 1, count);
        kf_upstream_client_on_timer (client, kf_mono_us ());

    Not thread-safe: one client belongs to one loop. */
#ifndef KF_UPSTREAM_CLIENT_H
#define KF_UPSTREAM_CLIENT_H
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>
#include "workers/upstream_events.h"
#include "workers/upstream_request.h"

typedef struct _kf_upstream_client_t kf_upstream_client_t;

//  Settings of a client; kf_upstream_client_config_defaults gives the values in brackets.
typedef struct {
    int max_requests;           //  Requests open at once (256); start refuses beyond it
    long buffer_size;           //  libcurl's receive buffer per transfer, bytes (4096)
    int backoff_ms;             //  First retry delay without Retry-After, doubling each time (200)
    int max_backoff_ms;         //  Longest delay between attempts, Retry-After included (10000)
} kf_upstream_client_config_t;

//  Counters since the client was made, for stats.
typedef struct {
    uint64_t open;              //  Requests started and not yet ended (waiting retries included)
    uint64_t transfers;         //  HTTP transfers in progress right now
    uint64_t started;           //  Requests started
    uint64_t retried;           //  Attempts after the first
    uint64_t done;              //  Requests that ended with KF_UP_DONE
    uint64_t failed;            //  Requests that ended with KF_UP_ERROR (timeouts included)
    uint64_t timed_out;         //  Of those, ended by one of our timeouts
    uint64_t cancelled;         //  Requests cancelled by the caller
} kf_upstream_stats_t;

//  Receives the events of request `handle`, in order. `event` and what it points to are borrowed for
//  the call. The last event of a request is KF_UP_DONE or KF_UP_ERROR; after it the handle is dead.
//  Error codes of the client's own: timeout_connect, timeout_first_byte, timeout_idle, timeout_total
//  (status 504); connect_failed, resolve_failed, connection_lost, incomplete_stream, transport_error
//  (status 502); other codes come from the upstream (its error body or an error in the stream).
//  The callback may call kf_upstream_client_start and kf_upstream_client_cancel (any handle,
//  this one included), not kf_upstream_client_destroy.
typedef void (kf_upstream_client_fn) (void *arg, uint64_t handle, const kf_up_event_t *event);

//  Fills `config` with the defaults.
void kf_upstream_client_config_defaults (kf_upstream_client_config_t *config);

//  Creates a client calling `fn` with `arg` for every event; `config` NULL: the defaults (it is
//  copied). Never NULL (aborts when libcurl or its epoll set cannot start: out of memory or of
//  file descriptors). Holds one descriptor of its own (the epoll set, close-on-exec).
kf_upstream_client_t *kf_upstream_client_new (const kf_upstream_client_config_t *config,
                                              kf_upstream_client_fn *fn, void *arg);

//  Ends every request at once, silently (no events), frees the client and nulls *self_p.
void kf_upstream_client_destroy (kf_upstream_client_t **self_p);

//  Starts a request. Returns its handle (never 0), or 0 when max_requests are already open: the
//  caller queues it and tries again after a terminal event. No event comes from inside this call;
//  the first attempt starts at once, or right after the current callback returns when called from
//  one. Asserts on a request without a base URL.
uint64_t kf_upstream_client_start (kf_upstream_client_t *self, const kf_upstream_request_t *request);

//  Ends request `handle` at once: its connection is closed (the upstream sees the client gone and
//  stops generating; over HTTP/2 the stream is reset), its memory freed, no further events, no
//  terminal event. Safe from inside the callback, for this request or any other. An unknown or
//  ended handle is ignored.
void kf_upstream_client_cancel (kf_upstream_client_t *self, uint64_t handle);

//  Whether another start would be refused.
bool kf_upstream_client_is_full (kf_upstream_client_t *self);

//  Number of poll items the client wants now: 1 while libcurl has sockets open, else 0.
int kf_upstream_client_pollitem_count (kf_upstream_client_t *self);

//  Writes the client's poll item into `items` (socket NULL, fd its epoll set, events ZMQ_POLLIN),
//  at most `max`; returns how many (0 or 1). Whether there is one changes after every on_poll /
//  on_timer, so fill it again before each zmq_poll.
int kf_upstream_client_pollitems (kf_upstream_client_t *self, zmq_pollitem_t *items, int max);

//  Acts on the items filled by kf_upstream_client_pollitems and polled since: when the epoll set is
//  readable, takes the ready sockets from it (asked again now, so sockets closed since the poll are
//  not acted on), reads and writes what they allow and delivers the events that completes. Items
//  with no revents are skipped. A burst beyond 4,096 ready sockets is finished on later turns.
void kf_upstream_client_on_poll (kf_upstream_client_t *self, const zmq_pollitem_t *items, int count);

//  Milliseconds from `now_us` (kf_mono_us) until the client needs on_timer: libcurl's own timer,
//  our timeouts, retries due. 0 when something is due, -1 when nothing is pending.
long kf_upstream_client_timeout_ms (kf_upstream_client_t *self, int64_t now_us);

//  Runs what is due at `now_us`: libcurl's timeouts, our timeouts (ending their requests with an
//  error or a retry), retries and deferred starts. Cheap when nothing is due: call it every turn.
void kf_upstream_client_on_timer (kf_upstream_client_t *self, int64_t now_us);

//  Copies the counters into `stats`.
void kf_upstream_client_stats (kf_upstream_client_t *self, kf_upstream_stats_t *stats);
#endif
