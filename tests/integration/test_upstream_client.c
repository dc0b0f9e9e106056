/*  test_upstream_client.c - the non-blocking upstream client inside a zmq_poll loop (a zmq socket
    and the client's fds in one array, as in the worker) against the real fake upstream: both wire
    formats streamed whole even a byte at a time, tokens as they arrive, errors before and during
    the stream, retries with and without Retry-After, no retry on 4xx, idle / first-byte /
    connect / total timeouts with their codes, cancel (from the callback too) closing the
    connection, a slow name resolution that never holds the loop, 300 streams at once from one
    loop, and no API key in any log line.
        test_upstream_client                run the checks
        test_upstream_client --memory N     RSS per open stream with N stalled streams */
#include "common/clock.h"
#include "common/log.h"
#include "common/utf8.h"
#include "workers/upstream_client.h"
#include "harness.h"
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_ANSWER "您好，这里是测试回答：退货请在订单页申请售后。"
#define S_FIRST_THREE "您好，这里是"        //  What error-mid and stall send before failing
#define S_KEY "sk-kefu-TEST-SECRET-7f3a9c"
#define S_WRONG_KEY "sk-kefu-WRONG-SECRET-41d2"
#define S_URL_SECRET "URLSECRET-99e1"
#define S_MAX_CALLS 4096
#define S_MAX_ITEMS 4096

//  What one request delivered
typedef struct {
    uint64_t handle;
    char answer [2048];
    char conversation [64];
    char finish [32];
    int64_t total_tokens;
    int tokens, sources, done, errors, after_end;
    bool is_bad_utf8;           //  A token that is not whole UTF-8
    char code [64];
    char message [256];
    int status;
    int64_t started_us, first_token_us, ended_us;
    bool cancel_on_first_token; //  Cancels itself from inside the callback
    bool cancel_at_end;         //  Cancels itself (a no-op) inside its terminal event
    bool start_next_at_end;     //  Starts s_test.next_request from inside its terminal event
} s_call_t;

static struct {
    int port;
    char base [128];
    pid_t server;
    kf_upstream_client_t *client;
    void *ctx, *pair;           //  A zmq socket in the poll array, like the worker's broker socket
    s_call_t calls [S_MAX_CALLS];
    int call_count;
    int64_t max_call_us;        //  Longest on_poll + on_timer
    kf_upstream_request_t next_request;
    s_call_t *next_call;
    char log_path [64];
    int saved_stderr;
    bool is_passed;
} s_test;

//  Name resolution as libcurl's resolver thread calls it, with one slow name (1.5 s, then
//  unknown): the executable's definition comes before libc's
#define S_SLOW_HOST "slow.kefu.test"
static int (*s_real_getaddrinfo) (const char *, const char *, const struct addrinfo *, struct addrinfo **);

int
getaddrinfo (const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
    if (node && strcmp (node, S_SLOW_HOST) == 0) {
        usleep (1500 * 1000);
        return EAI_NONAME;
    }
    return s_real_getaddrinfo (node, service, hints, res);
}

static s_call_t *
s_find (uint64_t handle)
{
    for (int i = s_test.call_count - 1; i >= 0; i--)
        if (s_test.calls [i].handle == handle)
            return &s_test.calls [i];
    return NULL;
}

static s_call_t *
s_new_call (void)
{
    CHECK (s_test.call_count < S_MAX_CALLS);
    s_call_t *call = &s_test.calls [s_test.call_count++];
    memset (call, 0, sizeof *call);
    return call;
}

static void
s_on_event (void *arg, uint64_t handle, const kf_up_event_t *event)
{
    (void) arg;
    s_call_t *call = s_find (handle);
    CHECK (call);
    if (call->ended_us) {
        call->after_end++;
        return;
    }
    switch (event->kind) {
        case KF_UP_TOKEN:
            if (!kf_utf8_is_valid (event->text, event->text_len))
                call->is_bad_utf8 = true;
            strncat (call->answer, event->text, event->text_len);
            if (call->tokens++ == 0)
                call->first_token_us = kf_mono_us ();
            if (call->cancel_on_first_token)
                kf_upstream_client_cancel (s_test.client, handle);
            break;
        case KF_UP_FINISH:
            snprintf (call->finish, sizeof call->finish, "%.*s", (int) event->text_len, event->text);
            break;
        case KF_UP_USAGE:
            call->total_tokens = event->total_tokens;
            break;
        case KF_UP_CONVERSATION:
            snprintf (call->conversation, sizeof call->conversation, "%.*s", (int) event->text_len, event->text);
            break;
        case KF_UP_SOURCES:
            call->sources++;
            break;
        case KF_UP_REPLACE:
            break;
        case KF_UP_ERROR:
        case KF_UP_DONE:
            if (event->kind == KF_UP_DONE)
                call->done++;
            else {
                call->errors++;
                call->status = event->status;
                snprintf (call->code, sizeof call->code, "%s", event->code);
                snprintf (call->message, sizeof call->message, "%s", event->message);
            }
            call->ended_us = kf_mono_us ();
            if (call->cancel_at_end)
                kf_upstream_client_cancel (s_test.client, handle);
            if (call->start_next_at_end) {
                s_test.next_call->handle = kf_upstream_client_start (s_test.client, &s_test.next_request);
                s_test.next_call->started_us = kf_mono_us ();
                CHECK (s_test.next_call->handle);
            }
            break;
    }
}

//  One turn of the owner's loop: the zmq socket and the client's fds in one zmq_poll
static void
s_turn (long max_ms)
{
    static zmq_pollitem_t items [S_MAX_ITEMS];
    items [0] = (zmq_pollitem_t) { s_test.pair, 0, ZMQ_POLLIN, 0 };
    int count = kf_upstream_client_pollitems (s_test.client, items + 1, S_MAX_ITEMS - 1);
    CHECK_INT (count, kf_upstream_client_pollitem_count (s_test.client));
    long timeout = kf_upstream_client_timeout_ms (s_test.client, kf_mono_us ());
    if (timeout < 0 || timeout > max_ms)
        timeout = max_ms;
    CHECK (zmq_poll (items, 1 + count, timeout) >= 0);
    int64_t start = kf_mono_us ();
    kf_upstream_client_on_poll (s_test.client, items + 1, count);
    kf_upstream_client_on_timer (s_test.client, kf_mono_us ());
    int64_t spent = kf_mono_us () - start;
    if (spent > s_test.max_call_us)
        s_test.max_call_us = spent;
}

//  Runs the loop until every call in calls [0 .. count) ended, at most max_ms; returns the ms taken
static int64_t
s_wait (s_call_t **calls, int count, int max_ms)
{
    int64_t start = kf_mono_us (), end = start + max_ms * 1000LL;
    while (kf_mono_us () < end) {
        int ended = 0;
        while (ended < count && calls [ended]->ended_us)
            ended++;
        if (ended == count)
            break;
        s_turn (50);
    }
    for (int i = 0; i < count; i++)
        CHECK (calls [i]->ended_us);
    return (kf_mono_us () - start) / 1000;
}

//  Runs the loop for `ms`
static void
s_spin (int ms)
{
    int64_t end = kf_mono_us () + ms * 1000LL;
    while (kf_mono_us () < end)
        s_turn (20);
}

//  A request to the fake with test defaults; `headers` as given
static kf_upstream_request_t
s_request (bool is_dify, const char *const *headers, int count)
{
    static const kf_upstream_message_t messages [] = {
        { "user", "你好" }, { "assistant", "您好，请问有什么可以帮您？" }, { "user", "怎么退货？" }
    };
    kf_upstream_request_t request;
    kf_upstream_request_defaults (&request);
    request.kind = is_dify ? KF_UPSTREAM_DIFY : KF_UPSTREAM_OPENAI;
    request.base_url = s_test.base;
    request.api_key = S_KEY;
    request.model = "fake-model";
    request.include_usage = true;
    request.system_prompt = "你是客服。";
    request.messages = messages;
    request.message_count = 3;
    request.query = "怎么退货？";
    request.user = "customer-1";
    request.headers = headers;
    request.header_count = count;
    request.connect_timeout_ms = 2000;
    request.first_byte_timeout_ms = 5000;
    request.idle_timeout_ms = 5000;
    request.total_timeout_ms = 20000;
    return request;
}

static s_call_t *
s_start (const kf_upstream_request_t *request)
{
    s_call_t *call = s_new_call ();
    call->started_us = kf_mono_us ();
    call->handle = kf_upstream_client_start (s_test.client, request);
    CHECK (call->handle != 0);
    return call;
}

//  Starts one request and waits for its end
static s_call_t *
s_call (const kf_upstream_request_t *request, int max_ms)
{
    s_call_t *call = s_start (request);
    s_wait (&call, 1, max_ms);
    CHECK_INT (call->after_end, 0);
    CHECK_INT (call->done + call->errors, 1);
    return call;
}

static int64_t
s_elapsed_ms (const s_call_t *call)
{
    return (call->ended_us - call->started_us) / 1000;
}

static void
s_stats (kf_upstream_stats_t *stats)
{
    kf_upstream_client_stats (s_test.client, stats);
}

//  The fake's GET /stats, over a plain blocking socket (the test's, not the loop's)
typedef struct { unsigned long long accepted, requests, client_closes; int open; } s_fake_stats_t;

static void
s_fake_stats (s_fake_stats_t *stats)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons (s_test.port),
                                   .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    CHECK (connect (fd, (struct sockaddr *) &address, sizeof address) == 0);
    const char *request = "GET /stats HTTP/1.1\r\nHost: fake\r\n\r\n";
    CHECK (write (fd, request, strlen (request)) == (ssize_t) strlen (request));
    char reply [1024];
    size_t len = 0;
    ssize_t n;
    while ((n = read (fd, reply + len, sizeof reply - 1 - len)) > 0)
        len += n;
    close (fd);
    reply [len] = 0;
    const char *body = strstr (reply, "\r\n\r\n");
    CHECK (body);
    CHECK_INT (sscanf (body + 4, "{\"accepted\":%llu,\"requests\":%llu,\"client_closes\":%llu,\"open\":%d}",
                       &stats->accepted, &stats->requests, &stats->client_closes, &stats->open), 4);
}

//  Waits until the fake has counted `closes` client closes
static bool
s_fake_wait_closes (unsigned long long closes)
{
    s_fake_stats_t stats;
    for (int i = 0; i < 100; i++) {
        s_fake_stats (&stats);
        if (stats.client_closes >= closes)
            return stats.client_closes == closes;
        usleep (20000);
    }
    return false;
}

static void
s_start_fake (void)
{
    s_test.port = h_start_fake_upstream (&s_test.server);
    snprintf (s_test.base, sizeof s_test.base, "http://127.0.0.1:%d/v1/", s_test.port);
}

static void
s_stop_fake (void)
{
    kill (s_test.server, SIGTERM);
    waitpid (s_test.server, NULL, 0);
}

//  ---------------------------------------------------------------------------------------------

//  Whole answers in both formats, every byte alone; tokens as they arrive; a start from a callback
static void
s_check_streams (void)
{
    const char *byte_headers [] = { "X-Fake-Scenario: ok", "X-Fake-Chunk: 1" };
    kf_upstream_request_t request = s_request (false, byte_headers, 2);
    s_call_t *call = s_call (&request, 10000);
    CHECK_STR (call->answer, S_ANSWER);
    CHECK (!call->is_bad_utf8);
    CHECK (call->tokens >= 10);
    CHECK_STR (call->finish, "stop");
    CHECK_INT (call->total_tokens, 32);
    CHECK_INT (call->done, 1);

    //  Dify; at its end a new request starts from inside the callback
    kf_upstream_stats_t before, after;
    s_stats (&before);
    request = s_request (true, byte_headers, 2);
    request.conversation_id = "conv-1";
    call = s_start (&request);
    call->start_next_at_end = true;
    call->cancel_at_end = true;         //  A no-op: the handle is dead in its terminal event
    const char *ok_headers [] = { "X-Fake-Scenario: ok" };
    s_test.next_request = s_request (false, ok_headers, 1);
    s_test.next_call = s_new_call ();
    s_wait (&call, 1, 10000);
    CHECK_STR (call->answer, S_ANSWER);
    CHECK (!call->is_bad_utf8);
    CHECK_STR (call->conversation, "conv-1");
    CHECK_INT (call->sources, 1);
    CHECK_INT (call->total_tokens, 32);
    CHECK_INT (call->done, 1);
    CHECK_INT (call->after_end, 0);
    s_wait (&s_test.next_call, 1, 10000);
    CHECK_STR (s_test.next_call->answer, S_ANSWER);
    CHECK_INT (s_test.next_call->done, 1);
    s_stats (&after);
    CHECK_INT (after.cancelled, before.cancelled);

    //  Paced writes: the first token arrives long before the end, not all at once
    const char *paced [] = { "X-Fake-Scenario: ok", "X-Fake-Chunk: 40", "X-Fake-Delay-Ms: 15" };
    request = s_request (false, paced, 3);
    call = s_call (&request, 10000);
    CHECK_STR (call->answer, S_ANSWER);
    CHECK (call->ended_us - call->first_token_us > 400 * 1000);
}

//  Errors before the stream: 4xx never retried, 5xx and 429 retried, Retry-After honoured
static void
s_check_errors_before (void)
{
    kf_upstream_stats_t before, after;
    s_fake_stats_t fake_before, fake_after;
    const char *bad [] = { "X-Fake-Scenario: error-before", "X-Fake-Status: 400" };
    for (int dify = 0; dify < 2; dify++) {
        s_stats (&before);
        s_fake_stats (&fake_before);
        kf_upstream_request_t request = s_request (dify, bad, 2);
        s_call_t *call = s_call (&request, 5000);
        CHECK_INT (call->status, 400);
        CHECK_STR (call->code, "fake_error");
        CHECK_INT (call->tokens, 0);
        s_stats (&after);
        s_fake_stats (&fake_after);
        CHECK_INT (after.retried, before.retried);
        CHECK_INT (fake_after.requests, fake_before.requests + 1);
    }
    //  A wrong key: 401, not retried; the right one passes
    const char *auth [] = { "X-Fake-Auth: " S_KEY };
    kf_upstream_request_t request = s_request (false, auth, 1);
    request.api_key = S_WRONG_KEY;
    s_stats (&before);
    s_call_t *call = s_call (&request, 5000);
    CHECK_INT (call->status, 401);
    CHECK_STR (call->code, "invalid_api_key");
    //  The fake quotes the key back: starred out in the message the caller gets
    CHECK_STR (call->message, "Incorrect API key provided: *************************");
    request.kind = KF_UPSTREAM_DIFY;
    call = s_call (&request, 5000);
    CHECK_STR (call->message, "Access token is invalid: *************************");
    request.kind = KF_UPSTREAM_OPENAI;
    s_stats (&after);
    CHECK_INT (after.retried, before.retried);
    request.api_key = S_KEY;
    call = s_call (&request, 5000);
    CHECK_STR (call->answer, S_ANSWER);
    //  A key in the URL's user part stays out of the logs as well
    char base [160];
    snprintf (base, sizeof base, "http://kefu:" S_URL_SECRET "@127.0.0.1:%d/v1", s_test.port);
    request = s_request (false, bad, 2);
    request.base_url = base;
    call = s_call (&request, 5000);
    CHECK_INT (call->status, 400);

    //  500: retried twice with backoff, then the error of the last attempt
    const char *server [] = { "X-Fake-Scenario: error-before" };
    request = s_request (false, server, 1);
    s_stats (&before);
    s_fake_stats (&fake_before);
    call = s_call (&request, 10000);
    CHECK_INT (call->status, 500);
    CHECK_STR (call->code, "500");
    CHECK (s_elapsed_ms (call) >= 300);         //  200 ms and 400 ms, less a quarter each
    s_stats (&after);
    s_fake_stats (&fake_after);
    CHECK_INT (after.retried, before.retried + 2);
    CHECK_INT (fake_after.requests, fake_before.requests + 3);

    //  429 with Retry-After: 1, once: the retry waits a second and succeeds
    const char *rate [] = { "X-Fake-Scenario: rate-limit", "X-Fake-Id: rate-1", "X-Fake-Fail-Times: 1" };
    request = s_request (true, rate, 3);
    s_stats (&before);
    call = s_call (&request, 10000);
    CHECK_STR (call->answer, S_ANSWER);
    CHECK_INT (call->done, 1);
    CHECK (s_elapsed_ms (call) >= 950 && s_elapsed_ms (call) < 3000);
    s_stats (&after);
    CHECK_INT (after.retried, before.retried + 1);

    //  Retry-After as an HTTP-date two seconds ahead: a wait of one to two seconds
    char date [96], date_header [128];
    time_t when = time (NULL) + 2;
    struct tm tm;
    strftime (date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r (&when, &tm));
    snprintf (date_header, sizeof date_header, "X-Fake-Retry-After: %s", date);
    const char *dated [] = { "X-Fake-Scenario: rate-limit", "X-Fake-Id: rate-2", "X-Fake-Fail-Times: 1",
                             date_header };
    request = s_request (false, dated, 4);
    call = s_call (&request, 10000);
    CHECK_STR (call->answer, S_ANSWER);
    CHECK (s_elapsed_ms (call) >= 900 && s_elapsed_ms (call) < 3000);

    //  Retry-After: 30 is capped (this client: 1.5 s)
    const char *long_wait [] = { "X-Fake-Scenario: rate-limit", "X-Fake-Id: rate-3", "X-Fake-Fail-Times: 1",
                                 "X-Fake-Retry-After: 30" };
    request = s_request (false, long_wait, 4);
    call = s_call (&request, 10000);
    CHECK_STR (call->answer, S_ANSWER);
    CHECK (s_elapsed_ms (call) >= 1400 && s_elapsed_ms (call) < 3000);

    //  Always 429: three attempts, then the upstream's error
    const char *always [] = { "X-Fake-Scenario: rate-limit", "X-Fake-Retry-After: 0" };
    request = s_request (false, always, 2);
    s_stats (&before);
    call = s_call (&request, 10000);
    CHECK_INT (call->status, 429);
    CHECK_STR (call->code, "rate_limit_exceeded");
    s_stats (&after);
    CHECK_INT (after.retried, before.retried + 2);

    //  Cancelled while waiting for its retry: never heard of again, never retried
    const char *held [] = { "X-Fake-Scenario: rate-limit", "X-Fake-Id: rate-4", "X-Fake-Fail-Times: 5" };
    request = s_request (false, held, 3);
    s_stats (&before);
    s_fake_stats (&fake_before);
    call = s_start (&request);
    while (s_stats (&after), after.retried == before.retried)
        s_turn (20);
    kf_upstream_client_cancel (s_test.client, call->handle);
    s_spin (1500);
    CHECK (!call->ended_us);
    s_fake_stats (&fake_after);
    CHECK_INT (fake_after.requests, fake_before.requests + 1);
    s_stats (&after);
    CHECK_INT (after.open, 0);
    CHECK_INT (after.transfers, 0);
}

//  Errors after the stream started: terminal, tokens before them delivered, no retry
static void
s_check_errors_mid (void)
{
    kf_upstream_stats_t before, after;
    s_stats (&before);
    const char *mid [] = { "X-Fake-Scenario: error-mid", "X-Fake-Chunk: 3" };
    kf_upstream_request_t request = s_request (false, mid, 2);
    s_call_t *call = s_call (&request, 5000);
    CHECK_STR (call->answer, S_FIRST_THREE);
    CHECK_STR (call->code, "stream_broken");
    CHECK_INT (call->done, 0);
    request = s_request (true, mid, 2);
    call = s_call (&request, 5000);
    CHECK_STR (call->answer, S_FIRST_THREE);
    CHECK_STR (call->code, "completion_request_error");
    CHECK_INT (call->status, 500);
    s_stats (&after);
    CHECK_INT (after.retried, before.retried);
    CHECK_INT (after.failed, before.failed + 2);
}

//  Our timeouts, each with its code; none of them blocks the loop
static void
s_check_timeouts (void)
{
    kf_upstream_stats_t before, after;
    //  A stall after three tokens: the idle timeout, no retry (tokens were delivered)
    const char *stall [] = { "X-Fake-Scenario: stall" };
    kf_upstream_request_t request = s_request (true, stall, 1);
    request.idle_timeout_ms = 300;
    s_stats (&before);
    s_call_t *call = s_call (&request, 5000);
    CHECK_STR (call->answer, S_FIRST_THREE);
    CHECK_STR (call->code, "timeout_idle");
    CHECK_INT (call->status, 504);
    CHECK (s_elapsed_ms (call) >= 300 && s_elapsed_ms (call) < 1500);
    s_stats (&after);
    CHECK_INT (after.retried, before.retried);
    CHECK_INT (after.timed_out, before.timed_out + 1);

    //  A slow start (the fake waits 1 s): the first-byte timeout, retried once, then the error
    const char *slow [] = { "X-Fake-Scenario: slow-start" };
    request = s_request (false, slow, 1);
    request.first_byte_timeout_ms = 300;
    request.max_retries = 1;
    s_stats (&before);
    call = s_call (&request, 5000);
    CHECK_STR (call->code, "timeout_first_byte");
    CHECK_INT (call->tokens, 0);
    CHECK (s_elapsed_ms (call) >= 600 && s_elapsed_ms (call) < 2000);
    s_stats (&after);
    CHECK_INT (after.retried, before.retried + 1);
    //  ... and with time enough, the same slow start answers
    request.first_byte_timeout_ms = 3000;
    call = s_call (&request, 5000);
    CHECK_STR (call->answer, S_ANSWER);
    CHECK (s_elapsed_ms (call) >= 950);

    //  The total timeout ends a stream that is still alive by the idle measure
    request = s_request (false, stall, 1);
    request.total_timeout_ms = 500;
    call = s_call (&request, 5000);
    CHECK_STR (call->answer, S_FIRST_THREE);
    CHECK_STR (call->code, "timeout_total");
    CHECK (s_elapsed_ms (call) >= 480 && s_elapsed_ms (call) < 1500);

    //  Connection refused (a port bound, not listening): retried twice, then connect_failed
    int refuser = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t size = sizeof address;
    CHECK (bind (refuser, (struct sockaddr *) &address, sizeof address) == 0);
    CHECK (getsockname (refuser, (struct sockaddr *) &address, &size) == 0);
    char base [96];
    snprintf (base, sizeof base, "http://127.0.0.1:%d/v1", ntohs (address.sin_port));
    request = s_request (false, NULL, 0);
    request.base_url = base;
    s_stats (&before);
    call = s_call (&request, 5000);
    CHECK_STR (call->code, "connect_failed");
    CHECK_INT (call->status, 502);
    CHECK (s_elapsed_ms (call) >= 400);         //  Two backoffs
    s_stats (&after);
    CHECK_INT (after.retried, before.retried + 2);

    //  A listener whose accept queue is full drops SYNs: the connect timeout
    CHECK (listen (refuser, 0) == 0);
    int filler = socket (AF_INET, SOCK_STREAM, 0);
    CHECK (connect (filler, (struct sockaddr *) &address, sizeof address) == 0);
    request.connect_timeout_ms = 300;
    request.max_retries = 1;
    call = s_call (&request, 5000);
    CHECK_STR (call->code, "timeout_connect");
    CHECK_INT (call->status, 504);
    CHECK (s_elapsed_ms (call) >= 600 && s_elapsed_ms (call) < 2500);
    close (filler);
    close (refuser);
    //  Nothing above held the loop: a blocking call would have taken the fake's whole second
    CHECK (s_test.max_call_us < 250 * 1000);
}

//  A name that takes 1.5 s to resolve: a cancel and a first-byte timeout while libcurl's resolver
//  thread is still at it both return at once (libcurl would wait for the thread without
//  CURLOPT_QUICK_EXIT)
static void
s_check_slow_dns (void)
{
    kf_upstream_request_t request = s_request (false, NULL, 0);
    request.base_url = "http://" S_SLOW_HOST "/v1";
    s_call_t *call = s_start (&request);
    s_spin (100);
    int64_t start = kf_mono_us ();
    kf_upstream_client_cancel (s_test.client, call->handle);
    CHECK ((kf_mono_us () - start) < 100 * 1000);
    request.first_byte_timeout_ms = 200;
    request.max_retries = 0;
    s_test.max_call_us = 0;
    call = s_call (&request, 3000);
    CHECK_STR (call->code, "timeout_first_byte");
    CHECK (s_elapsed_ms (call) < 1000);
    CHECK (s_test.max_call_us < 100 * 1000);
}

//  Cancel mid-stream, from inside the callback and from the loop: no more events, and the fake
//  sees its connection closed
static void
s_check_cancel (void)
{
    s_fake_stats_t fake;
    s_fake_stats (&fake);
    kf_upstream_stats_t before, after;
    s_stats (&before);
    const char *stall [] = { "X-Fake-Scenario: stall", "X-Fake-Chunk: 7" };
    kf_upstream_request_t request = s_request (false, stall, 2);
    s_call_t *call = s_start (&request);
    call->cancel_on_first_token = true;
    while (!call->tokens)
        s_turn (20);
    s_spin (300);
    CHECK_INT (call->tokens, 1);        //  The same chunk's later bytes were not heard
    CHECK (!call->ended_us);
    CHECK (s_fake_wait_closes (fake.client_closes + 1));

    request = s_request (true, stall, 2);
    call = s_start (&request);
    while (strcmp (call->answer, S_FIRST_THREE) != 0)
        s_turn (20);
    kf_upstream_client_cancel (s_test.client, call->handle);
    kf_upstream_client_cancel (s_test.client, call->handle);     //  Twice: ignored
    s_spin (300);
    CHECK (!call->ended_us);
    CHECK (s_fake_wait_closes (fake.client_closes + 2));
    s_stats (&after);
    CHECK_INT (after.cancelled, before.cancelled + 2);
    CHECK_INT (after.open, 0);
    CHECK_INT (after.transfers, 0);
    CHECK_INT (kf_upstream_client_pollitem_count (s_test.client), 0);
}

//  300 streams at once from one loop, both formats, some a byte at a time; the 301st is refused
static void
s_check_concurrency (void)
{
    const char *whole [] = { "X-Fake-Scenario: ok" };
    const char *bytes [] = { "X-Fake-Scenario: ok", "X-Fake-Chunk: 1" };
    const char *small [] = { "X-Fake-Scenario: ok", "X-Fake-Chunk: 5", "X-Fake-Delay-Ms: 2" };
    s_call_t *calls [300];
    for (int i = 0; i < 300; i++) {
        kf_upstream_request_t request = i % 3 == 0 ? s_request (i % 2, bytes, 2)
                                      : i % 3 == 1 ? s_request (i % 2, small, 3)
                                      : s_request (i % 2, whole, 1);
        calls [i] = s_start (&request);
    }
    CHECK (kf_upstream_client_is_full (s_test.client));
    kf_upstream_request_t extra = s_request (false, whole, 1);
    CHECK_INT (kf_upstream_client_start (s_test.client, &extra), 0);
    int64_t ms = s_wait (calls, 300, 60000);
    for (int i = 0; i < 300; i++) {
        CHECK_STR (calls [i]->answer, S_ANSWER);
        CHECK_INT (calls [i]->done, 1);
        CHECK_INT (calls [i]->errors, 0);
        CHECK_INT (calls [i]->after_end, 0);
        CHECK (!calls [i]->is_bad_utf8);
        CHECK_INT (calls [i]->total_tokens, 32);
        if (i % 2)
            CHECK_STR (calls [i]->conversation, "conv-1");
    }
    kf_upstream_stats_t stats;
    s_stats (&stats);
    CHECK_INT (stats.open, 0);
    CHECK (!kf_upstream_client_is_full (s_test.client));
    printf ("300 concurrent streams in %lld ms, longest on_poll + on_timer %lld us\n", (long long) ms,
            (long long) s_test.max_call_us);
}

//  Every captured log line: no key, whatever happened
static void
s_check_logs (void)
{
    fflush (stderr);
    FILE *file = fopen (s_test.log_path, "r");
    CHECK (file);
    static char log [4 * 1024 * 1024];
    size_t len = fread (log, 1, sizeof log - 1, file);
    fclose (file);
    log [len] = 0;
    CHECK (strstr (log, "upstream http://127.0.0.1:"));     //  The client did log (retries, failures)
    CHECK (strstr (log, "again in"));
    CHECK (!strstr (log, S_KEY));
    CHECK (!strstr (log, S_WRONG_KEY));
    CHECK (!strstr (log, S_URL_SECRET));
    CHECK (!strstr (log, "Authorization"));
    CHECK (!strstr (log, "sk-kefu"));
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += log [i] == '\n';
    printf ("%d log lines at debug level, no key in any\n", lines);
}

//  Stderr goes to a file for the key check; a failed check shows it after all
static void
s_restore_stderr (void)
{
    fflush (stderr);
    dup2 (s_test.saved_stderr, 2);
    if (!s_test.is_passed) {
        FILE *file = fopen (s_test.log_path, "r");
        char line [4096];
        while (file && fgets (line, sizeof line, file))
            fputs (line, stderr);
        if (file)
            fclose (file);
    }
    unlink (s_test.log_path);
}

static void
s_capture_stderr (void)
{
    snprintf (s_test.log_path, sizeof s_test.log_path, "/tmp/kefu-upstream-log-XXXXXX");
    int fd = mkstemp (s_test.log_path);
    CHECK (fd >= 0);
    s_test.saved_stderr = dup (2);
    dup2 (fd, 2);
    close (fd);
    atexit (s_restore_stderr);
}

static long
s_rss_kb (void)
{
    FILE *file = fopen ("/proc/self/status", "r");
    char line [256];
    long kb = 0;
    while (file && fgets (line, sizeof line, file))
        if (strncmp (line, "VmRSS:", 6) == 0)
            kb = atol (line + 6);
    if (file)
        fclose (file);
    return kb;
}

//  --memory N: RSS per stream with N streams open (each stalled after three tokens)
static int
s_measure (int count)
{
    CHECK (count > 0 && count < S_MAX_CALLS);
    const char *ok [] = { "X-Fake-Scenario: ok" };
    const char *stall [] = { "X-Fake-Scenario: stall" };
    kf_upstream_request_t request = s_request (false, ok, 1);
    s_call (&request, 5000);            //  libcurl's one-time setup out of the measure
    long before = s_rss_kb ();
    s_call_t *first = &s_test.calls [s_test.call_count];
    for (int i = 0; i < count; i++) {
        request = s_request (i % 2, stall, 1);
        request.idle_timeout_ms = 120000;
        s_start (&request);
    }
    int64_t end = kf_mono_us () + 60 * 1000000LL;
    int streaming = 0;
    while (streaming < count && kf_mono_us () < end) {
        s_turn (50);
        streaming = 0;
        for (int i = 0; i < count; i++)
            streaming += strcmp (first [i].answer, S_FIRST_THREE) == 0;
    }
    CHECK_INT (streaming, count);
    long after = s_rss_kb ();
    kf_upstream_stats_t stats;
    s_stats (&stats);
    printf ("%d open streams (%llu transfers): RSS %ld KB -> %ld KB, %.1f KB per stream\n", count,
            (unsigned long long) stats.transfers, before, after, (double) (after - before) / count);
    for (int i = 0; i < count; i++)
        kf_upstream_client_cancel (s_test.client, first [i].handle);
    return 0;
}

int
main (int argc, char *argv [])
{
    int memory = argc > 2 && strcmp (argv [1], "--memory") == 0 ? atoi (argv [2]) : 0;
    s_real_getaddrinfo = dlsym (RTLD_NEXT, "getaddrinfo");
    CHECK (s_real_getaddrinfo);
    s_start_fake ();
    s_test.ctx = zmq_ctx_new ();
    s_test.pair = zmq_socket (s_test.ctx, ZMQ_PAIR);
    CHECK (zmq_bind (s_test.pair, "inproc://owner") == 0);
    kf_upstream_client_config_t config;
    kf_upstream_client_config_defaults (&config);
    config.max_requests = memory ? memory + 1 : 300;
    config.max_backoff_ms = 1500;
    s_test.client = kf_upstream_client_new (&config, s_on_event, NULL);
    if (memory) {
        s_measure (memory);
        s_test.is_passed = true;
    }
    else {
        s_capture_stderr ();
        kf_log_set_component ("test");
        kf_log_set_level (KF_LOG_DEBUG);
        s_check_slow_dns ();
        s_check_streams ();
        s_check_errors_before ();
        s_check_errors_mid ();
        s_check_timeouts ();
        s_check_cancel ();
        s_check_concurrency ();
        s_check_logs ();
    }
    kf_upstream_client_destroy (&s_test.client);
    CHECK (s_test.client == NULL);
    zmq_close (s_test.pair);
    zmq_ctx_term (s_test.ctx);
    s_stop_fake ();
    s_test.is_passed = true;
    if (!memory)
        TEST_PASS ("test_upstream_client");
    return 0;
}
