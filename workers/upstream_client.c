/*  upstream_client.c - LLM upstream calls over libcurl's multi-socket interface, driven by the
    owner's zmq_poll loop: the fd set and timer libcurl asks for, per-request timeouts of our own,
    retries before anything was delivered, cancellation at any time.

    Rules that keep it safe: libcurl forbids most of its calls from inside its callbacks, and the
    caller may cancel or start from inside ours (which run inside libcurl's). So nothing is freed
    or removed from libcurl while on_poll / on_timer run: an ended request is marked closed (its
    write callback then aborts the transfer, which closes the connection at once) and freed when
    the outermost call returns; a start from a callback is launched on the next on_timer.

    Sockets and libcurl's timer are the poller's (http_poller.h): the owner polls its one
    descriptor, and a wake-up costs what is ready, not what is open.

    Timeouts: each request keeps its own deadline, moved on every chunk; the client keeps only a
    lower bound of them, and walks every request when that bound passes. A chunk moving a deadline
    later costs nothing, and with streams alive the walk happens about once per idle timeout,
    not once per loop turn (a heap would cost a log-time update per chunk instead). */
#include "workers/upstream_client.h"
#include "workers/http_poller.h"
#include "common/clock.h"
#include "common/log.h"
#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define S_NEVER INT64_MAX
#define S_ERROR_BODY_MAX (64 * 1024)    //  A non-200 body kept beyond this is cut: it is only read
                                        //  for its error message
#define S_DRAIN_US (2 * 1000000LL)      //  After KF_UP_DONE, how long the transfer may take to end
                                        //  cleanly (its connection then goes back to the cache)
#define S_UPLOAD_BUFFER 16384L          //  libcurl's smallest: only TLS over HTTP/1.1 allocates it

typedef enum {
    S_WAITING,                  //  For its first attempt (started from a callback) or a retry
    S_RUNNING,                  //  An attempt in progress
    S_DRAINING                  //  KF_UP_DONE delivered; the transfer ends on its own, silently
} s_state_t;

typedef struct s_request_t {
    kf_upstream_client_t *client;
    uint64_t handle;            //  The caller's name for it; 0 once the caller cannot see it
    uint32_t slot;              //  Index in the client's slots while the handle lives
    kf_upstream_kind_t kind;
    s_state_t state;
    CURL *easy;                 //  Reused by every attempt
    struct curl_slist *headers; //  Holds the API key: wiped before it is freed
    const char *key;            //  The key inside `headers` (to keep it out of logs), or NULL
    char *url;
    char *body;                 //  JSON, sent by libcurl without a copy
    size_t body_len;
    kf_sse_parser_t *parser;    //  This attempt's, made at its first byte of a 200
    char *error_body;           //  This attempt's non-200 body, at most S_ERROR_BODY_MAX
    size_t error_len, error_cap;
    long status;                //  This attempt's HTTP status, 0 before the first body byte
    int64_t retry_after_ms;     //  This attempt's Retry-After, -1 when none
    int attempts;               //  Attempts made so far
    int max_retries;
    int first_byte_ms, idle_ms; //  0: none
    int64_t total_deadline_us;  //  S_NEVER: none
    int64_t attempt_us;         //  When this attempt started
    int64_t last_byte_us;       //  When the last body byte came
    int64_t retry_at_us;        //  When a waiting request launches
    int64_t deadline_us;        //  The earliest of the above that applies in this state
    bool is_attached;           //  In the multi handle
    bool has_first_byte;        //  This attempt received body bytes
    bool is_delivered;          //  An event reached the caller: no retry from now on
    bool has_finish;            //  A finish reason came (a stream cut after it still counts)
    bool is_closed;             //  Ended; freed when the outermost call returns
    struct s_request_t *prev, *next;    //  Every request not yet freed
    struct s_request_t *zombie_next;    //  Closed requests waiting to be freed
} s_request_t;

struct _kf_upstream_client_t {
    kf_upstream_client_config_t config;
    kf_upstream_client_fn *fn;
    void *arg;
    kf_http_poller_t *poller;   //  libcurl's multi handle, sockets and timer
    s_request_t **slots;        //  Live requests by slot, max_requests of them
    uint32_t *generations;      //  Per slot, the high half of its handles
    uint32_t *free_slots;       //  Stack of free slot indexes
    int free_count;
    int open;                   //  Live requests (the caller holds their handles)
    s_request_t *requests;      //  Every request not yet freed
    s_request_t *zombies;       //  Closed, to free
    int64_t next_deadline_us;   //  No request's deadline is earlier (may be early: then a scan)
    int depth;                  //  Inside on_poll / on_timer: frees wait until it is 0
    uint64_t rng;               //  Backoff jitter
    kf_upstream_stats_t stats;
};

//  ---------------------------------------------------------------------------------------------
//  Request life: handles, deadlines, the end

static int64_t
s_min (int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static s_request_t *
s_lookup (kf_upstream_client_t *self, uint64_t handle)
{
    uint64_t slot = (handle & 0xFFFFFFFFu) - 1;
    if (handle == 0 || slot >= (uint64_t) self->config.max_requests)
        return NULL;
    s_request_t *req = self->slots [slot];
    return req && req->handle == handle ? req : NULL;
}

//  Gives the request a slot and a handle
static void
s_remember (kf_upstream_client_t *self, s_request_t *req)
{
    assert (self->free_count > 0);
    req->slot = self->free_slots [--self->free_count];
    req->handle = ((uint64_t) ++self->generations [req->slot] << 32) | (req->slot + 1);
    self->slots [req->slot] = req;
    self->open++;
}

//  The caller no longer sees the request: its handle dies, its slot is free
static void
s_forget (kf_upstream_client_t *self, s_request_t *req)
{
    if (!req->handle)
        return;
    self->slots [req->slot] = NULL;
    self->free_slots [self->free_count++] = req->slot;
    req->handle = 0;
    self->open--;
}

static int64_t
s_deadline (const s_request_t *req)
{
    if (req->state == S_WAITING)
        return req->retry_at_us;
    if (req->state == S_DRAINING)
        return req->last_byte_us + S_DRAIN_US;
    int64_t deadline = req->total_deadline_us;
    if (!req->has_first_byte && req->first_byte_ms > 0)
        deadline = s_min (deadline, req->attempt_us + req->first_byte_ms * 1000LL);
    if (req->has_first_byte && req->idle_ms > 0)
        deadline = s_min (deadline, req->last_byte_us + req->idle_ms * 1000LL);
    return deadline;
}

//  Recomputes the request's deadline after a change; the client's next deadline stays a lower bound
static void
s_touch (kf_upstream_client_t *self, s_request_t *req)
{
    req->deadline_us = s_deadline (req);
    self->next_deadline_us = s_min (self->next_deadline_us, req->deadline_us);
}

static void
s_detach (kf_upstream_client_t *self, s_request_t *req)
{
    if (!req->is_attached)
        return;
    kf_http_poller_remove (self->poller, req->easy);
    req->is_attached = false;
    self->stats.transfers--;
}

//  Ends the request for good: no more events, freed when no call of ours is running
static void
s_close (kf_upstream_client_t *self, s_request_t *req)
{
    if (req->is_closed)
        return;
    s_forget (self, req);
    req->is_closed = true;
    req->zombie_next = self->zombies;
    self->zombies = req;
}

static void
s_request_free (kf_upstream_client_t *self, s_request_t *req)
{
    s_detach (self, req);
    if (req->prev)
        req->prev->next = req->next;
    else
        self->requests = req->next;
    if (req->next)
        req->next->prev = req->prev;
    curl_easy_cleanup (req->easy);
    kf_upstream_headers_free (req->headers);
    kf_sse_parser_destroy (&req->parser);
    free (req->url);
    free (req->body);
    free (req->error_body);
    free (req);
}

//  Frees the closed requests; only when no call of ours is on the stack
static void
s_reap (kf_upstream_client_t *self)
{
    assert (self->depth == 0);
    while (self->zombies) {
        s_request_t *req = self->zombies;
        self->zombies = req->zombie_next;
        s_request_free (self, req);
    }
}

//  Delivers the request's terminal event: the handle dies first, so a cancel from inside the
//  callback is a no-op
static void
s_end (kf_upstream_client_t *self, s_request_t *req, const kf_up_event_t *event)
{
    uint64_t handle = req->handle;
    s_forget (self, req);
    if (event->kind == KF_UP_DONE)
        self->stats.done++;
    else {
        self->stats.failed++;
        if (strncmp (event->code, "timeout_", 8) == 0)
            self->stats.timed_out++;
    }
    self->fn (self->arg, handle, event);
}

//  Delay before attempt `attempts` + 1: Retry-After when the upstream gave one, else doubling from
//  backoff_ms, both capped; the doubling gets +-25% jitter so a burst of failures spreads out
static int64_t
s_retry_delay_ms (kf_upstream_client_t *self, s_request_t *req)
{
    int64_t cap = self->config.max_backoff_ms;
    if (req->retry_after_ms >= 0)
        return s_min (req->retry_after_ms, cap);
    int shift = req->attempts - 1 < 16 ? req->attempts - 1 : 16;
    int64_t base = s_min ((int64_t) self->config.backoff_ms << shift, cap);
    self->rng ^= self->rng << 13;
    self->rng ^= self->rng >> 7;
    self->rng ^= self->rng << 17;
    return base * 3 / 4 + (int64_t) (self->rng % (uint64_t) (base / 2 + 1));
}

//  Upstreams quote keys back in their error messages ("Incorrect API key provided: sk-..."): the
//  message goes to the caller, and maybe to a customer, with the key starred out
static void
s_redact (char *message, const char *key)
{
    size_t key_len = key ? strlen (key) : 0;
    char *at;
    while (key_len && (at = strstr (message, key)))
        memset (at, '*', key_len);
}

//  An attempt failed (its transfer already out of libcurl, or about to be aborted): tries again
//  later when it may, else delivers the error and ends the request
static void
s_fail (kf_upstream_client_t *self, s_request_t *req, kf_up_event_t *event, bool is_retryable,
        int64_t now)
{
    s_redact (event->message, req->key);
    char url [256];
    kf_upstream_url_for_log (req->url, url, sizeof url);
    if (is_retryable && !req->is_delivered && req->attempts <= req->max_retries && !req->is_attached) {
        int64_t at = now + s_retry_delay_ms (self, req) * 1000;
        if (at < req->total_deadline_us) {
            kf_debug ("upstream %s: %s (%d), attempt %d of %d again in %lld ms", url, event->code,
                      event->status, req->attempts + 1, req->max_retries + 1,
                      (long long) ((at - now) / 1000));
            req->state = S_WAITING;
            req->retry_at_us = at;
            self->stats.retried++;
            s_touch (self, req);
            return;
        }
    }
    //  Upstream messages may quote what was sent: only at debug level
    kf_warn ("upstream %s: failed: %s (%d) after %d attempt%s%s", url, event->code, event->status,
             req->attempts, req->attempts == 1 ? "" : "s", req->is_delivered ? ", mid-stream" : "");
    kf_debug ("upstream %s: %s", url, event->message);
    s_end (self, req, event);
    s_close (self, req);
}

//  s_fail with an error of the client's own
static void
s_fail_with (kf_upstream_client_t *self, s_request_t *req, int status, const char *code,
             const char *message, bool is_retryable, int64_t now)
{
    kf_up_event_t event = { .kind = KF_UP_ERROR, .status = status };
    snprintf (event.code, sizeof event.code, "%s", code);
    snprintf (event.message, sizeof event.message, "%s", message);
    s_fail (self, req, &event, is_retryable, now);
}

//  ---------------------------------------------------------------------------------------------
//  libcurl callbacks: body bytes through the SSE parser and the decoders, headers, sockets, timer

//  One decoded event of a 200 stream
static void
s_on_decoded (void *arg, const kf_up_event_t *event)
{
    s_request_t *req = arg;
    kf_upstream_client_t *self = req->client;
    if (req->is_closed || req->state == S_DRAINING)
        return;                         //  Ended: whatever the stream says after is not heard
    if (event->kind == KF_UP_DONE) {
        s_end (self, req, event);
        req->state = S_DRAINING;
        s_touch (self, req);
    }
    else
    if (event->kind == KF_UP_ERROR) {
        //  After a 200 the upstream started answering: an error now ends the request
        kf_up_event_t error = *event;
        req->is_delivered = true;
        s_fail (self, req, &error, false, kf_mono_us ());
    }
    else {
        req->has_finish |= event->kind == KF_UP_FINISH;
        req->is_delivered = true;
        self->fn (self->arg, req->handle, event);
    }
}

static int
s_on_sse (void *arg, const kf_sse_event_t *sse)
{
    s_request_t *req = arg;
    if (req->kind == KF_UPSTREAM_DIFY)
        kf_dify_decode (sse, s_on_decoded, req);
    else
        kf_openai_decode (sse, s_on_decoded, req);
    return req->is_closed || req->state == S_DRAINING;     //  Non-zero stops the parse
}

static void
s_keep_error_body (s_request_t *req, const char *data, size_t len)
{
    if (len > S_ERROR_BODY_MAX - req->error_len)
        len = S_ERROR_BODY_MAX - req->error_len;
    if (len == 0)
        return;
    if (req->error_len + len > req->error_cap) {
        req->error_cap = req->error_len + len > 1024 ? S_ERROR_BODY_MAX : 1024;
        req->error_body = kf_realloc (req->error_body, req->error_cap);
    }
    memcpy (req->error_body + req->error_len, data, len);
    req->error_len += len;
}

//  CURLOPT_WRITEFUNCTION: returning less than `len` aborts the transfer (and closes its connection)
static size_t
s_on_body (char *data, size_t size, size_t count, void *arg)
{
    s_request_t *req = arg;
    kf_upstream_client_t *self = req->client;
    size_t len = size * count;
    if (req->is_closed)
        return 0;
    req->last_byte_us = kf_mono_us ();
    if (req->state == S_DRAINING)
        return len;
    if (!req->has_first_byte) {
        req->has_first_byte = true;
        curl_easy_getinfo (req->easy, CURLINFO_RESPONSE_CODE, &req->status);
    }
    s_touch (self, req);
    if (req->status != 200) {
        s_keep_error_body (req, data, len);
        return len;
    }
    if (!req->parser)
        req->parser = kf_sse_parser_new (s_on_sse, req);
    if (kf_sse_parser_feed (req->parser, data, len) == -1 && !req->is_closed && req->state != S_DRAINING)
        s_fail_with (self, req, 502, "bad_stream", "the upstream sent a line longer than kefu accepts",
                     false, req->last_byte_us);
    return req->is_closed ? 0 : len;
}

//  Retry-After: delay-seconds or an HTTP-date; -1 when it is neither
static int64_t
s_parse_retry_after (const char *value, size_t len)
{
    char text [64];
    while (len && (*value == ' ' || *value == '\t')) {
        value++;
        len--;
    }
    while (len && strchr (" \t\r\n", value [len - 1]))
        len--;
    if (len == 0 || len >= sizeof text)
        return -1;
    memcpy (text, value, len);
    text [len] = 0;
    if (strspn (text, "0123456789") == len)
        return len > 6 ? 999999000 : atoll (text) * 1000;
    time_t when = curl_getdate (text, NULL);
    if (when == -1)
        return -1;
    time_t now = time (NULL);
    return when > now ? (int64_t) (when - now) * 1000 : 0;
}

//  CURLOPT_HEADERFUNCTION: one header line at a time; a status line starts a new response
static size_t
s_on_header (char *data, size_t size, size_t count, void *arg)
{
    s_request_t *req = arg;
    size_t len = size * count;
    if (len >= 5 && memcmp (data, "HTTP/", 5) == 0)
        req->retry_after_ms = -1;
    else
    if (len > 12 && strncasecmp (data, "Retry-After:", 12) == 0)
        req->retry_after_ms = s_parse_retry_after (data + 12, len - 12);
    return len;
}

//  ---------------------------------------------------------------------------------------------
//  Attempts: launch, completion, timeouts

static void
s_launch (kf_upstream_client_t *self, s_request_t *req, int64_t now)
{
    req->attempts++;
    req->state = S_RUNNING;
    req->attempt_us = now;
    req->has_first_byte = false;
    req->has_finish = false;
    req->status = 0;
    req->retry_after_ms = -1;
    req->error_len = 0;
    kf_sse_parser_destroy (&req->parser);
    kf_http_poller_add (self->poller, req->easy);  //  Never from inside a libcurl callback
    req->is_attached = true;
    self->stats.transfers++;
    s_touch (self, req);
}

//  What a transfer failure means: our code for it, and whether another attempt may help
static const char *
s_transport_code (CURLcode result, bool *is_retryable)
{
    *is_retryable = true;
    switch (result) {
        case CURLE_OPERATION_TIMEDOUT:
            return "timeout_connect";   //  The only libcurl timeout we set
        case CURLE_COULDNT_CONNECT:
            return "connect_failed";
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
            return "resolve_failed";
        case CURLE_GOT_NOTHING:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
            return "connection_lost";
        default:
            *is_retryable = false;      //  Certificates, bad URLs, protocols: the same next time
            return "transport_error";
    }
}

//  A transfer ended (out of libcurl already)
static void
s_on_complete (kf_upstream_client_t *self, s_request_t *req, CURLcode result, int64_t now)
{
    curl_easy_getinfo (req->easy, CURLINFO_RESPONSE_CODE, &req->status);
    if (result == CURLE_OK && req->status == 200) {
        if (req->parser)
            kf_sse_parser_finish (req->parser);     //  A last event without its blank line
        if (req->is_closed || req->state == S_DRAINING)
            s_close (self, req);
        else
        if (req->has_finish) {
            kf_up_event_t done = { .kind = KF_UP_DONE };    //  Servers that never send [DONE]
            s_end (self, req, &done);
            s_close (self, req);
        }
        else
            s_fail_with (self, req, 502, "incomplete_stream", "the upstream's stream ended before the answer",
                         true, now);
    }
    else
    if (result == CURLE_OK) {
        kf_up_event_t event;
        kf_upstream_error_body ((int) req->status, req->error_body, req->error_len, &event);
        s_fail (self, req, &event, kf_upstream_is_retryable ((int) req->status), now);
    }
    else {
        bool is_retryable;
        const char *code = s_transport_code (result, &is_retryable);
        s_fail_with (self, req, result == CURLE_OPERATION_TIMEDOUT ? 504 : 502, code,
                     curl_easy_strerror (result), is_retryable, now);
    }
}

//  kf_http_poller_done_fn: a transfer ended
static void
s_on_done (void *arg, CURL *easy, CURLcode result)
{
    kf_upstream_client_t *self = arg;
    char *private;
    curl_easy_getinfo (easy, CURLINFO_PRIVATE, &private);
    s_request_t *req = (s_request_t *) private;
    s_detach (self, req);
    if (req->is_closed)
        return;                         //  Aborted by us: already ended
    if (req->state == S_DRAINING)
        s_close (self, req);
    else
        s_on_complete (self, req, result, kf_mono_us ());
}

//  The request's deadline passed: launch it, drop it, or time it out
static void
s_on_deadline (kf_upstream_client_t *self, s_request_t *req, int64_t now)
{
    if (req->state == S_WAITING) {
        s_launch (self, req, now);
        return;
    }
    if (req->state == S_DRAINING) {
        s_close (self, req);            //  Done long ago; the connection is not worth keeping
        return;
    }
    const char *code = "timeout_idle", *message = "the upstream went silent mid-answer";
    if (now >= req->total_deadline_us) {
        code = "timeout_total";
        message = "the upstream took longer than the request's total time";
    }
    else
    if (!req->has_first_byte) {
        code = "timeout_first_byte";
        message = "the upstream did not start answering in time";
    }
    s_detach (self, req);
    s_fail_with (self, req, 504, code, message, strcmp (code, "timeout_total") != 0, now);
}

//  Every request whose deadline passed; the next deadline recomputed exactly
static void
s_scan (kf_upstream_client_t *self, int64_t now)
{
    self->next_deadline_us = S_NEVER;
    //  Requests started from callbacks go to the head, out of this walk; none is unlinked here
    for (s_request_t *req = self->requests; req; req = req->next) {
        if (req->is_closed)
            continue;
        if (req->deadline_us <= now)
            s_on_deadline (self, req, now);
        if (!req->is_closed)
            self->next_deadline_us = s_min (self->next_deadline_us, req->deadline_us);
    }
}

//  ---------------------------------------------------------------------------------------------
//  Public interface

void
kf_upstream_client_config_defaults (kf_upstream_client_config_t *config)
{
    config->max_requests = 256;
    config->buffer_size = 4096;         //  An SSE event is a few hundred bytes; libcurl's
                                        //  minimum is 1024, its default 16 KB per transfer
    config->backoff_ms = 200;
    config->max_backoff_ms = 10000;
}

kf_upstream_client_t *
kf_upstream_client_new (const kf_upstream_client_config_t *config, kf_upstream_client_fn *fn, void *arg)
{
    assert (fn);
    kf_upstream_client_t *self = kf_calloc (1, sizeof *self);
    if (config)
        self->config = *config;
    else
        kf_upstream_client_config_defaults (&self->config);
    assert (self->config.max_requests > 0);
    self->fn = fn;
    self->arg = arg;
    self->poller = kf_http_poller_new ("upstream", s_on_done, self);
    int max = self->config.max_requests;
    self->slots = kf_calloc (max, sizeof *self->slots);
    self->generations = kf_calloc (max, sizeof *self->generations);
    self->free_slots = kf_calloc (max, sizeof *self->free_slots);
    for (int i = 0; i < max; i++)
        self->free_slots [i] = max - 1 - i;
    self->free_count = max;
    self->next_deadline_us = S_NEVER;
    self->rng = (uint64_t) kf_mono_us () ^ ((uint64_t) getpid () << 32) ^ (uintptr_t) self;
    self->rng |= 1;
    return self;
}

void
kf_upstream_client_destroy (kf_upstream_client_t **self_p)
{
    kf_upstream_client_t *self = *self_p;
    if (!self)
        return;
    assert (self->depth == 0);          //  Not from inside a callback
    while (self->requests) {
        s_forget (self, self->requests);
        s_request_free (self, self->requests);
    }
    self->zombies = NULL;
    kf_http_poller_destroy (&self->poller);
    free (self->slots);
    free (self->generations);
    free (self->free_slots);
    free (self);
    *self_p = NULL;
}

//  The easy handle every attempt of `req` reuses
static CURL *
s_easy_new (kf_upstream_client_t *self, s_request_t *req, const kf_upstream_request_t *request)
{
    CURL *easy = curl_easy_init ();
    if (!easy)
        kf_oom ();
    curl_easy_setopt (easy, CURLOPT_URL, req->url);
    curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (easy, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER, req->headers);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, req);
    curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (easy, CURLOPT_HEADERDATA, req);
    curl_easy_setopt (easy, CURLOPT_PRIVATE, req);
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (easy, CURLOPT_BUFFERSIZE, self->config.buffer_size);
    curl_easy_setopt (easy, CURLOPT_UPLOAD_BUFFERSIZE, S_UPLOAD_BUFFER);
    //  Removing a transfer whose name is still being resolved would otherwise wait for the
    //  resolver thread (seconds, with a slow DNS); with this the thread is left to finish and
    //  free its own data
    curl_easy_setopt (easy, CURLOPT_QUICK_EXIT, 1L);
    //  Over HTTPS, streams started together wait for the first connection's ALPN and share it
    //  when it is HTTP/2, rather than each paying a TLS connection (tens of KB and a handshake).
    //  Not over plain http://, which is always HTTP/1.1 here: there libcurl 7.88 keeps a waiting
    //  transfer pending until a connection to the host is released, so a worker streamed one
    //  answer per upstream at a time (found by tests/bench/llm_bench.c)
    if (strncmp (req->url, "https:", 6) == 0)
        curl_easy_setopt (easy, CURLOPT_PIPEWAIT, 1L);
    if (request->connect_timeout_ms > 0)
        curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, (long) request->connect_timeout_ms);
    //  No Accept-Encoding: a compressed stream would cost an inflate window per stream and hold
    //  tokens back; no redirects: an upstream that moves is a configuration error
    return easy;
}

uint64_t
kf_upstream_client_start (kf_upstream_client_t *self, const kf_upstream_request_t *request)
{
    assert (self && request && request->base_url && *request->base_url);
    if (self->open >= self->config.max_requests)
        return 0;
    s_request_t *req = kf_calloc (1, sizeof *req);
    req->client = self;
    req->kind = request->kind;
    req->url = kf_upstream_request_url (request);
    req->body = kf_upstream_request_body (request, &req->body_len);
    req->headers = kf_upstream_request_headers (request, &req->key);
    req->easy = s_easy_new (self, req, request);
    req->max_retries = request->max_retries > 0 ? request->max_retries : 0;
    req->first_byte_ms = request->first_byte_timeout_ms;
    req->idle_ms = request->idle_timeout_ms;
    int64_t now = kf_mono_us ();
    req->total_deadline_us = request->total_timeout_ms > 0 ? now + request->total_timeout_ms * 1000LL
                                                            : S_NEVER;
    s_remember (self, req);
    req->next = self->requests;
    if (req->next)
        req->next->prev = req;
    self->requests = req;
    self->stats.started++;
    if (self->depth == 0)
        s_launch (self, req, now);
    else {
        req->state = S_WAITING;         //  libcurl refuses new transfers from its callbacks
        req->retry_at_us = now;
        s_touch (self, req);
    }
    return req->handle;
}

void
kf_upstream_client_cancel (kf_upstream_client_t *self, uint64_t handle)
{
    s_request_t *req = s_lookup (self, handle);
    if (!req)
        return;
    self->stats.cancelled++;
    s_close (self, req);
    if (self->depth == 0)
        s_reap (self);
}

bool
kf_upstream_client_is_full (kf_upstream_client_t *self)
{
    return self->open >= self->config.max_requests;
}

int
kf_upstream_client_pollitem_count (kf_upstream_client_t *self)
{
    return kf_http_poller_pollitem_count (self->poller);
}

int
kf_upstream_client_pollitems (kf_upstream_client_t *self, zmq_pollitem_t *items, int max)
{
    return kf_http_poller_pollitems (self->poller, items, max);
}

void
kf_upstream_client_on_poll (kf_upstream_client_t *self, const zmq_pollitem_t *items, int count)
{
    self->depth++;
    kf_http_poller_on_poll (self->poller, items, count);
    if (--self->depth == 0)
        s_reap (self);
}

long
kf_upstream_client_timeout_ms (kf_upstream_client_t *self, int64_t now_us)
{
    long curl_ms = kf_http_poller_timeout_ms (self->poller, now_us);
    if (self->next_deadline_us == S_NEVER)
        return curl_ms;
    long own_ms = self->next_deadline_us <= now_us ? 0
                : (long) ((self->next_deadline_us - now_us + 999) / 1000);
    return curl_ms >= 0 && curl_ms < own_ms ? curl_ms : own_ms;
}

void
kf_upstream_client_on_timer (kf_upstream_client_t *self, int64_t now_us)
{
    self->depth++;
    kf_http_poller_on_timer (self->poller, now_us);
    if (self->next_deadline_us <= now_us)
        s_scan (self, now_us);
    if (--self->depth == 0)
        s_reap (self);
}

void
kf_upstream_client_stats (kf_upstream_client_t *self, kf_upstream_stats_t *stats)
{
    *stats = self->stats;
    stats->open = (uint64_t) self->open;
}
