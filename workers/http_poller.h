/*  http_poller.h - libcurl's multi-socket interface driven by the owner's zmq_poll loop, for the
    clients that make HTTP calls from a worker (upstream_client.h for LLM streams, business_client.h
    for business APIs). It keeps the sockets libcurl asks for in an epoll set of its own and gives
    the owner one descriptor to poll (readable when any of them is ready) and the time libcurl
    next needs; a wake-up costs the sockets that are ready, not every open transfer's. What a
    transfer does with its bytes, its own timeouts and retries are the client's: this module only
    moves libcurl and reports transfers that ended.

    The owner's loop:

        int count = kf_http_poller_pollitems (poller, items + 1, 1);
        long timeout = min (own_timeout, kf_http_poller_timeout_ms (poller, kf_mono_us ()));
        zmq_poll (items, 1 + count, timeout);
        kf_http_poller_on_poll (poller, items + 1, count);
        kf_http_poller_on_timer (poller, kf_mono_us ());

    Not thread-safe: one poller belongs to one loop. */
#ifndef KF_HTTP_POLLER_H
#define KF_HTTP_POLLER_H
#include <curl/curl.h>
#include <stdint.h>
#include <zmq.h>

typedef struct _kf_http_poller_t kf_http_poller_t;

//  A transfer ended with `result` (CURLE_OK: the whole response arrived, whatever its status). It is
//  still in the poller, and reported once: the callback removes it with kf_http_poller_remove.
//  Called outside libcurl's own callbacks, from on_poll and on_timer only.
typedef void (kf_http_poller_done_fn) (void *arg, CURL *easy, CURLcode result);

//  Creates a poller; `name` prefixes its log lines ("upstream", "business"; borrowed, a literal).
//  Never NULL (aborts when libcurl or its epoll set cannot start: out of memory or of file
//  descriptors). Holds one descriptor (the epoll set, close-on-exec). Warns once when libcurl
//  resolves names in the caller's thread (a slow DNS would stall the loop).
kf_http_poller_t *kf_http_poller_new (const char *name, kf_http_poller_done_fn *done, void *arg);

//  Frees the poller and nulls *self_p. Every transfer must have been removed first.
void kf_http_poller_destroy (kf_http_poller_t **self_p);

//  Starts transfer `easy` (the caller's, set up). Not from inside a libcurl callback (a write or
//  header function); from the done callback is fine. Asserts that libcurl took it (aborts on OOM).
void kf_http_poller_add (kf_http_poller_t *self, CURL *easy);

//  Takes transfer `easy` out: its connection goes back to the cache when the transfer ended,
//  else is closed. Not from inside a libcurl callback.
void kf_http_poller_remove (kf_http_poller_t *self, CURL *easy);

//  Number of poll items wanted now: 1 while libcurl has sockets open, else 0.
int kf_http_poller_pollitem_count (kf_http_poller_t *self);

//  Writes the poll item (socket NULL, fd the epoll set, events ZMQ_POLLIN) into `items`, at most
//  `max`; returns how many (0 or 1). Fill it again before each zmq_poll.
int kf_http_poller_pollitems (kf_http_poller_t *self, zmq_pollitem_t *items, int max);

//  When an item of the poller is readable, takes the ready sockets from the epoll set (asked
//  again now, so sockets closed since the poll are not acted on), lets libcurl read and write
//  them (its write callbacks run here) and reports the transfers that ended. Items that are not
//  the poller's, or not ready, are skipped. A burst beyond 4,096 ready sockets waits a turn.
void kf_http_poller_on_poll (kf_http_poller_t *self, const zmq_pollitem_t *items, int count);

//  Milliseconds from `now_us` (kf_mono_us) until libcurl's timer is due: 0 when due, -1 none.
long kf_http_poller_timeout_ms (kf_http_poller_t *self, int64_t now_us);

//  Runs libcurl's timer when it is due at `now_us` and reports the transfers that ended.
void kf_http_poller_on_timer (kf_http_poller_t *self, int64_t now_us);

//  Number of transfers in the poller.
int kf_http_poller_transfers (kf_http_poller_t *self);
#endif
