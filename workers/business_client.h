/*  business_client.h - calls to a business's own HTTP API ([business] in config.h: order status,
    logistics) from inside the worker's zmq_poll loop, many at once, never blocking: connecting,
    name resolution (libcurl's threaded resolver), sending and receiving all happen on the
    http_poller's descriptor. Each call is one GET or POST with the section's headers, its whole
    answer buffered (at most 1 MB), parsed as JSON and turned into the customer's reply by the
    section's templates (business_reply.h). One result per call, whatever happens: answered,
    not found (404), timeout (timeout_ms, connection included) or failed (another status, a
    transport error, an answer that is not JSON or too large). No retries: the customer is
    waiting, and a timeout already took the time a retry would need. Headers (keys) and URLs
    (which may hold keys in their query, and the customer's order number in their path) are
    never logged above debug level, and keys never at all. The poll wiring is http_poller.h's:

        int count = kf_business_client_pollitems (client, items + n, 1);
        ... zmq_poll, then kf_business_client_on_poll (client, items + n, count) and
        kf_business_client_on_timer (client, kf_mono_us ()) every turn.

    Not thread-safe: one client belongs to one loop. */
#ifndef KF_BUSINESS_CLIENT_H
#define KF_BUSINESS_CLIENT_H
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>
#include "common/config.h"
#include "workers/business_reply.h"

#define KF_BUSINESS_ANSWER_MAX (1024 * 1024)   //  Bytes of an API's answer kept; more fails

typedef struct _kf_business_client_t kf_business_client_t;

//  How a business_query turn ended (the stage adds the last two).
typedef enum {
    KF_BUSINESS_ANSWERED,       //  2xx with a JSON answer: the reply template, filled
    KF_BUSINESS_NOT_FOUND,      //  404: not_found_reply. The customer's data, not a failure
    KF_BUSINESS_TIMEOUT,        //  timeout_ms passed: error_reply. A failure
    KF_BUSINESS_FAILED,         //  Another status, a transport error, an answer that is not JSON
                                //  or over KF_BUSINESS_ANSWER_MAX: error_reply. A failure
    KF_BUSINESS_ASKED,          //  No entity the API requires is known: ask_reply, no call made
    KF_BUSINESS_STOPPED         //  chat.stop before the answer: reply "", the call ended
} kf_business_status_t;

//  A call's result; everything borrowed for the callback.
typedef struct {
    kf_business_status_t status;
    int http_status;            //  0 when no response came
    const char *code;           //  For logs and tests: "ok", "not_found", "timeout", "http_500",
                                //  "bad_json", "too_large", "connect_failed", "transport_error"
    const char *reply;          //  What the customer reads
} kf_business_result_t;

//  Receives the result of call `handle`; the handle is dead afterwards. The callback may start
//  and cancel calls (not destroy the client).
typedef void (kf_business_client_fn) (void *arg, uint64_t handle, const kf_business_result_t *result);

//  Creates a client with at most `max_calls` calls open, calling `fn` with `arg`. Never NULL
//  (aborts when libcurl cannot start). Holds one descriptor (its poller's epoll set).
kf_business_client_t *kf_business_client_new (int max_calls, kf_business_client_fn *fn, void *arg);

//  Ends every call silently (no results), frees the client and nulls *self_p. Not from a callback.
void kf_business_client_destroy (kf_business_client_t **self_p);

//  Starts a call to `api` (borrowed: outlives the call) with `vars` (copied). Returns its handle
//  (never 0), or 0 when max_calls are open. The result never comes from inside this call.
uint64_t kf_business_client_start (kf_business_client_t *self, const kf_business_config_t *api,
                                   const kf_business_vars_t *vars);

//  Ends call `handle` at once: its connection is closed, no result comes. An unknown or ended
//  handle is ignored. Safe from the callback.
void kf_business_client_cancel (kf_business_client_t *self, uint64_t handle);

//  Whether another start would be refused.
bool kf_business_client_is_full (kf_business_client_t *self);

//  Calls open.
int kf_business_client_calls (kf_business_client_t *self);

//  The poll wiring, as http_poller.h's functions of the same names.
int kf_business_client_pollitem_count (kf_business_client_t *self);
int kf_business_client_pollitems (kf_business_client_t *self, zmq_pollitem_t *items, int max);
void kf_business_client_on_poll (kf_business_client_t *self, const zmq_pollitem_t *items, int count);
long kf_business_client_timeout_ms (kf_business_client_t *self, int64_t now_us);
void kf_business_client_on_timer (kf_business_client_t *self, int64_t now_us);
#endif
