/*  fake_upstream.c - a stand-in for the LLM providers kefu talks to, for tests and benchmarks only.
    Serves POST /v1/chat/completions (OpenAI-compatible) and POST /v1/chat-messages (Dify) as
    server-sent events over HTTP/1.1, and misbehaves on request. Each request picks its behaviour
    with headers:
        X-Fake-Scenario: ok | error-before | rate-limit | error-mid | stall | slow-start
        X-Fake-Chunk:    bytes per write (default: whole events; 1 splits every UTF-8 character)
        X-Fake-Delay-Ms: pause between writes (default 0)
        X-Fake-Status:   the HTTP status of error-before (default 500)
        X-Fake-Retry-After: the Retry-After of rate-limit, sent as is (default "1"; "none": absent)
        X-Fake-Id, X-Fake-Fail-Times: only the first N requests carrying this id get the
                         scenario; later ones get "ok" (a failure that a retry gets past)
        X-Fake-Auth:     the key expected as "Authorization: Bearer KEY"; any other gets 401
                         with the key it got quoted in the message
        X-Fake-Stamp:    N (1..FAKE_STAMP_MAX_TOKENS): the answer is N tokens of fake_stamp.h,
                         each ending in a marker with the time (CLOCK_MONOTONIC microseconds) the
                         fake wrote it; the stream is written one event per write, every
                         X-Fake-Delay-Ms, each marker stamped just before its write (for latency
                         benchmarks)
    GET /stats answers {"accepted", "requests", "client_closes", "open", "last_conversation_id",
    "last_references", "last_messages"} as JSON: client_closes counts connections the client
    closed before the answer was all sent (a cancelled stream); last_conversation_id is the
    conversation_id of the last Dify request ("" when it had none); last_references counts the
    【参考资料N】 blocks of the last request body and last_messages its "role" keys. A Dify
    request with a conversation_id is answered in that conversation; one without starts
    "conv-1".
    One epoll loop, many connections at once (a wake-up reads only the connections that sent
    something; one walk over the connections writes what is due); every connection closes after
    its answer.
        fake_upstream [--port N]      (0 or absent: any free port, printed on stdout) */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "fake_stamp.h"

#define S_MAX_CONNECTIONS 8192
#define S_ANSWER "您好，这里是测试回答：退货请在订单页申请售后。"

typedef struct {
    int fd;
    int index;                  //  In s_conns
    char request [16384];       //  Headers and body as received
    size_t request_len;
    bool is_answering;
    char *response;             //  Everything to send
    size_t response_len, sent;
    size_t chunk;               //  Bytes per write
    int delay_ms;
    int64_t next_write_ms;
    bool is_stalled;            //  Never sends the rest
    bool is_stamped;            //  X-Fake-Stamp: one event per write, markers stamped at write
} s_conn_t;

static s_conn_t *s_conns [S_MAX_CONNECTIONS];
static int s_count;

//  What GET /stats reports
static uint64_t s_accepted, s_requests, s_client_closes;
static char s_last_conversation [128];
static int s_last_references, s_last_messages;
static char s_conversation [128];      //  Of the request being answered

//  Requests seen per X-Fake-Id, for X-Fake-Fail-Times
#define S_MAX_IDS 1024
static struct { char id [64]; int seen; } s_ids [S_MAX_IDS];
static int s_id_count;

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_append (char **buffer, size_t *len, const char *text, size_t text_len)
{
    *buffer = realloc (*buffer, *len + text_len + 1);
    memcpy (*buffer + *len, text, text_len);
    *len += text_len;
    (*buffer) [*len] = 0;
}

//  A header's value from the request, "" when absent (case-sensitive names, as kefu sends them)
static void
s_header (const char *request, const char *name, char *value, size_t size)
{
    *value = 0;
    const char *at = strstr (request, name);
    if (!at)
        return;
    at += strlen (name);
    while (*at == ' ' || *at == ':')
        at++;
    size_t n = strcspn (at, "\r\n");
    snprintf (value, size, "%.*s", (int) (n < size ? n : size - 1), at);
}

//  The answer split in two-character tokens (whole UTF-8 characters)
static int
s_tokens (const char *text, const char **starts, size_t *lens, int max)
{
    int count = 0;
    for (size_t i = 0; text [i] && count < max;) {
        size_t start = i;
        for (int chars = 0; text [i] && chars < 2; chars++) {
            unsigned char c = (unsigned char) text [i];
            i += c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        }
        starts [count] = text + start;
        lens [count++] = i - start;
    }
    return count;
}

//  A JSON reply with this status (no stream)
static void
s_build_reply (s_conn_t *conn, int status, const char *extra_headers, const char *body)
{
    char line [2048];
    int n = snprintf (line, sizeof line, "HTTP/1.1 %d Fake\r\nContent-Type: application/json\r\n%s"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                      status, extra_headers, strlen (body), body);
    s_append (&conn->response, &conn->response_len, line, n);
}

//  The error answers: before the stream (any status), rate limits, a wrong key (quoted back, as
//  providers do: kefu must keep it out of logs and messages)
static void
s_build_error (s_conn_t *conn, bool is_dify, const char *scenario, int status, const char *retry_after,
               const char *sent_key)
{
    char body [512], headers [160] = "";
    if (strcmp (scenario, "auth") == 0)
        snprintf (body, sizeof body, is_dify
            ? "{\"code\":\"unauthorized\",\"message\":\"Access token is invalid: %.100s\",\"status\":401}"
            : "{\"error\":{\"message\":\"Incorrect API key provided: %.100s\",\"type\":\"invalid_request_error\","
              "\"code\":\"invalid_api_key\"}}", strpbrk (sent_key, "\"\\") ? "?" : sent_key);
    else
    if (strcmp (scenario, "rate-limit") == 0) {
        snprintf (body, sizeof body, "%s", is_dify
            ? "{\"code\":\"too_many_requests\",\"message\":\"请求过多\",\"status\":429}"
            : "{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}");
        if (strcmp (retry_after, "none") != 0)
            snprintf (headers, sizeof headers, "Retry-After: %s\r\n", *retry_after ? retry_after : "1");
    }
    else
    if (status == 500)
        snprintf (body, sizeof body, "%s", is_dify
            ? "{\"code\":\"internal_server_error\",\"message\":\"服务异常\",\"status\":500}"
            : "{\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\",\"code\":500}}");
    else
    if (is_dify)
        snprintf (body, sizeof body, "{\"code\":\"fake_error\",\"message\":\"请求错误\",\"status\":%d}", status);
    else
        snprintf (body, sizeof body, "{\"error\":{\"message\":\"Fake error %d\",\"type\":"
                  "\"invalid_request_error\",\"code\":\"fake_error\"}}", status);
    s_build_reply (conn, status, headers, body);
}

static void
s_build (s_conn_t *conn, bool is_dify, const char *scenario, int status, const char *retry_after,
         const char *sent_key, int stamps)
{
    char *out = NULL;
    size_t len = 0;
    char line [1024];
    if (strcmp (scenario, "error-before") == 0 || strcmp (scenario, "rate-limit") == 0
    ||  strcmp (scenario, "auth") == 0) {
        bool is_rate = strcmp (scenario, "rate-limit") == 0, is_auth = strcmp (scenario, "auth") == 0;
        s_build_error (conn, is_dify, scenario, is_rate ? 429 : is_auth ? 401 : status > 0 ? status : 500,
                       retry_after, sent_key);
        return;
    }
    const char *head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                       "Connection: close\r\n\r\n: fake upstream\n\n";
    s_append (&out, &len, head, strlen (head));
    const char *starts [64];
    size_t lens [64];
    int count = stamps > 0 ? stamps : s_tokens (S_ANSWER, starts, lens, 64);
    int upto = strcmp (scenario, "error-mid") == 0 || strcmp (scenario, "stall") == 0 ? 3 : count;
    for (int t = 0; t < upto; t++) {
        char piece [FAKE_STAMP_PAIR_LEN + FAKE_STAMP_MARKER_LEN + 1];
        const char *text = piece;
        int text_len;
        if (stamps > 0)             //  The marker's digits are filled in when the event is written
            text_len = snprintf (piece, sizeof piece, "%.*s" FAKE_STAMP_OPEN "%0*d" FAKE_STAMP_CLOSE,
                                 FAKE_STAMP_PAIR_LEN, fake_stamp_pair (t), FAKE_STAMP_DIGITS, 0);
        else {
            text = starts [t];
            text_len = (int) lens [t];
        }
        int n = is_dify
            ? snprintf (line, sizeof line, "data: {\"event\":\"message\",\"task_id\":\"t1\",\"message_id\":\"m1\","
                        "\"conversation_id\":\"%s\",\"answer\":\"%.*s\",\"created_at\":1}\n\n", s_conversation, text_len, text)
            : snprintf (line, sizeof line, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":"
                        "[{\"index\":0,\"delta\":{\"content\":\"%.*s\"},\"finish_reason\":null}]}\n\n", text_len, text);
        s_append (&out, &len, line, n);
    }
    if (strcmp (scenario, "stall") == 0)
        conn->is_stalled = true;
    else
    if (strcmp (scenario, "error-mid") == 0) {
        const char *error = is_dify
            ? "data: {\"event\":\"error\",\"task_id\":\"t1\",\"status\":500,\"code\":\"completion_request_error\",\"message\":\"上游中断\"}\n\n"
            : "data: {\"error\":{\"message\":\"上游中断\",\"type\":\"server_error\",\"code\":\"stream_broken\"}}\n\n";
        s_append (&out, &len, error, strlen (error));
    }
    else
    if (is_dify) {
        char end [1024];
        snprintf (end, sizeof end, "data: {\"event\":\"message_end\",\"task_id\":\"t1\",\"message_id\":\"m1\",\"conversation_id\":"
                          "\"%s\",\"metadata\":{\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":12,"
                          "\"total_tokens\":32},\"retriever_resources\":[{\"position\":1,\"document_name\":\"售后.md\","
                          "\"score\":0.9,\"content\":\"退货\"}]}}\n\n", s_conversation);
        s_append (&out, &len, end, strlen (end));
    }
    else {
        const char *end = "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
                          "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":12,"
                          "\"total_tokens\":32}}\n\n"
                          "data: [DONE]\n\n";
        s_append (&out, &len, end, strlen (end));
    }
    conn->response = out;
    conn->response_len = len;
}

//  True when the request carries X-Fake-Id and X-Fake-Fail-Times and its id was already seen that
//  many times: the scenario is over, answer normally
static bool
s_is_past_failures (const char *request)
{
    char id [64], times [16];
    s_header (request, "X-Fake-Id", id, sizeof id);
    s_header (request, "X-Fake-Fail-Times", times, sizeof times);
    if (!*id || !*times)
        return false;
    int i = 0;
    while (i < s_id_count && strcmp (s_ids [i].id, id) != 0)
        i++;
    if (i == s_id_count) {
        if (s_id_count == S_MAX_IDS)
            return false;
        snprintf (s_ids [s_id_count++].id, sizeof s_ids [0].id, "%s", id);
    }
    return s_ids [i].seen++ >= atoi (times);
}

//  The answer to GET /stats
static void
s_build_stats (s_conn_t *conn)
{
    char body [512];
    snprintf (body, sizeof body, "{\"accepted\":%llu,\"requests\":%llu,\"client_closes\":%llu,\"open\":%d,"
              "\"last_conversation_id\":\"%s\",\"last_references\":%d,\"last_messages\":%d}",
              (unsigned long long) s_accepted, (unsigned long long) s_requests,
              (unsigned long long) s_client_closes, s_count, s_last_conversation, s_last_references,
              s_last_messages);
    s_build_reply (conn, 200, "", body);
}

//  Starts answering once the request (headers and body) is complete
static void
s_on_request (s_conn_t *conn)
{
    char *end = strstr (conn->request, "\r\n\r\n");
    if (!end)
        return;
    char value [64];
    s_header (conn->request, "Content-Length", value, sizeof value);
    size_t body = (size_t) atol (value);
    if (conn->request_len < (size_t) (end + 4 - conn->request) + body)
        return;
    *end = 0;                           //  Headers are looked up in the headers only
    char scenario [64], chunk [32], delay [32], status [16], retry_after [64], key [128], auth [160];
    char stamp [16];
    s_header (conn->request, "X-Fake-Stamp", stamp, sizeof stamp);
    int stamps = atoi (stamp);
    stamps = stamps < 0 ? 0 : stamps > FAKE_STAMP_MAX_TOKENS ? FAKE_STAMP_MAX_TOKENS : stamps;
    s_header (conn->request, "X-Fake-Scenario", scenario, sizeof scenario);
    s_header (conn->request, "X-Fake-Chunk", chunk, sizeof chunk);
    s_header (conn->request, "X-Fake-Delay-Ms", delay, sizeof delay);
    s_header (conn->request, "X-Fake-Status", status, sizeof status);
    s_header (conn->request, "X-Fake-Retry-After", retry_after, sizeof retry_after);
    s_header (conn->request, "X-Fake-Auth", key, sizeof key);
    s_header (conn->request, "Authorization", auth, sizeof auth);
    bool is_dify = strstr (conn->request, "POST /v1/chat-messages") == conn->request;
    bool is_stats = strstr (conn->request, "GET /stats ") == conn->request;
    if (is_stats) {
        s_build_stats (conn);
        conn->chunk = conn->response_len;
        conn->is_answering = true;
        return;
    }
    s_requests++;
    //  What the body asked: references, messages, the Dify conversation
    const char *payload = end + 4;
    s_last_references = s_last_messages = 0;
    for (const char *at = payload; (at = strstr (at, "结束】")); at++)
        s_last_references++;
    for (const char *at = payload; (at = strstr (at, "\"role\"")); at++)
        s_last_messages++;
    *s_last_conversation = 0;
    const char *conversation = strstr (payload, "\"conversation_id\":\"");
    if (conversation) {
        conversation += 19;
        size_t n = strcspn (conversation, "\"");
        snprintf (s_last_conversation, sizeof s_last_conversation, "%.*s",
                  (int) (n < 100 ? n : 100), conversation);
    }
    if (*s_last_conversation)
        snprintf (s_conversation, sizeof s_conversation, "%s", s_last_conversation);
    else
        snprintf (s_conversation, sizeof s_conversation, "conv-1");
    if (s_is_past_failures (conn->request))
        snprintf (scenario, sizeof scenario, "ok");
    if (*key && (strncmp (auth, "Bearer ", 7) != 0 || strcmp (auth + 7, key) != 0))
        snprintf (scenario, sizeof scenario, "auth");
    s_build (conn, is_dify, *scenario ? scenario : "ok", atoi (status), retry_after,
             strncmp (auth, "Bearer ", 7) == 0 ? auth + 7 : auth, stamps);
    conn->is_stamped = stamps > 0;
    conn->chunk = atol (chunk) > 0 ? (size_t) atol (chunk) : conn->response_len;
    conn->delay_ms = atoi (delay);
    conn->next_write_ms = s_now_ms () + (strcmp (scenario, "slow-start") == 0 ? 1000 : 0);
    conn->is_answering = true;
}

//  The bytes of the next write of a stamped answer: up to the end of the next event (the first
//  write is the HTTP head with the comment after it); every marker starting in them gets the time
//  now
static size_t
s_stamp_next (s_conn_t *conn)
{
    const char *from = conn->response + conn->sent;
    const char *end = strstr (from, "\n\n");
    size_t n = end ? (size_t) (end + 2 - from) : conn->response_len - conn->sent;
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    char digits [FAKE_STAMP_DIGITS + 1];
    snprintf (digits, sizeof digits, "%0*lld", FAKE_STAMP_DIGITS,
              (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
    char *at = conn->response + conn->sent, *limit = at + n;
    while ((at = memmem (at, limit - at, FAKE_STAMP_OPEN, 3))
    &&     at + FAKE_STAMP_MARKER_LEN <= conn->response + conn->response_len) {
        memcpy (at + 3, digits, FAKE_STAMP_DIGITS);
        at += FAKE_STAMP_MARKER_LEN;
    }
    return n;
}

//  Closing the fd also takes it out of the epoll set
static void
s_close (s_conn_t *conn)
{
    int index = conn->index;
    close (conn->fd);
    free (conn->response);
    free (conn);
    if (index < --s_count) {
        s_conns [index] = s_conns [s_count];
        s_conns [index]->index = index;
    }
}

//  Reads what the client sent; false when it went away (or sent too much) and was closed
static bool
s_on_readable (s_conn_t *conn)
{
    ssize_t n = read (conn->fd, conn->request + conn->request_len,
                      sizeof conn->request - conn->request_len - 1);
    bool is_nothing_yet = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (n <= 0 && !is_nothing_yet) {
        if (conn->is_answering)
            s_client_closes++;          //  Before the answer was all sent
        s_close (conn);
        return false;
    }
    if (n > 0) {
        conn->request_len += n;
        conn->request [conn->request_len] = 0;
        if (!conn->is_answering)
            s_on_request (conn);
    }
    return true;
}

int
main (int argc, char *argv [])
{
    int port = argc > 2 && strcmp (argv [1], "--port") == 0 ? atoi (argv [2]) : 0;
    signal (SIGPIPE, SIG_IGN);
    struct rlimit files;                //  One descriptor per connection: as many as allowed
    if (getrlimit (RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit (RLIMIT_NOFILE, &files);
    }
    int listener = socket (AF_INET, SOCK_STREAM, 0);
    int on = 1;
    setsockopt (listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons (port),
                                   .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t size = sizeof address;
    if (bind (listener, (struct sockaddr *) &address, sizeof address) || listen (listener, 4096)
    ||  getsockname (listener, (struct sockaddr *) &address, &size)) {
        perror ("fake_upstream");
        return 1;
    }
    fcntl (listener, F_SETFL, O_NONBLOCK);
    printf ("%d\n", ntohs (address.sin_port));
    fflush (stdout);
    int epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
    struct epoll_event listen_event = { .events = EPOLLIN, .data.ptr = NULL };
    if (epoll_fd < 0 || epoll_ctl (epoll_fd, EPOLL_CTL_ADD, listener, &listen_event)) {
        perror ("fake_upstream");
        return 1;
    }
    static struct epoll_event events [1024];
    int timeout = -1;                   //  Until the next write due, from the last walk
    while (true) {
        int ready = epoll_wait (epoll_fd, events, 1024, timeout);
        if (ready < 0 && errno != EINTR)
            return 1;
        for (int i = 0; i < ready; i++) {
            s_conn_t *conn = events [i].data.ptr;
            if (conn) {
                s_on_readable (conn);   //  Closes only this connection, seen once per batch
                continue;
            }
            //  Every waiting connection at once (the listener does not block): a burst of
            //  thousands must not wait one wake-up each
            while (s_count < S_MAX_CONNECTIONS) {
                int fd = accept (listener, NULL, NULL);
                if (fd < 0)
                    break;
                fcntl (fd, F_SETFL, O_NONBLOCK);
                conn = calloc (1, sizeof (s_conn_t));
                conn->fd = fd;
                conn->index = s_count;
                struct epoll_event event = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = conn };
                if (epoll_ctl (epoll_fd, EPOLL_CTL_ADD, fd, &event)) {
                    close (fd);
                    free (conn);
                    continue;
                }
                s_conns [s_count++] = conn;
                s_accepted++;
            }
        }
        //  Writes what is due and finds when the next one is
        int64_t now = s_now_ms ();
        timeout = -1;
        for (int i = s_count - 1; i >= 0; i--) {
            s_conn_t *conn = s_conns [i];
            if (!conn->is_answering || conn->sent == conn->response_len)
                continue;               //  Waiting for its request, or stalled for good
            if (conn->next_write_ms <= now) {
                size_t n = conn->response_len - conn->sent < conn->chunk ? conn->response_len - conn->sent
                                                                         : conn->chunk;
                if (conn->is_stamped)
                    n = s_stamp_next (conn);
                ssize_t wrote = write (conn->fd, conn->response + conn->sent, n);
                if (wrote > 0)
                    conn->sent += wrote;
                //  Stamped answers keep their pace even when a write comes late (a benchmark's rate)
                conn->next_write_ms = conn->is_stamped && conn->sent > 0 ? conn->next_write_ms + conn->delay_ms
                                                                         : now + conn->delay_ms;
                if (conn->sent == conn->response_len) {
                    if (!conn->is_stalled)
                        s_close (conn); //  The last of s_conns moves here: walked already
                    continue;
                }
            }
            int wait = conn->next_write_ms <= now ? 0 : (int) (conn->next_write_ms - now);
            timeout = timeout < 0 || wait < timeout ? wait : timeout;
        }
    }
}
