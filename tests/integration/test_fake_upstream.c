/*  test_fake_upstream.c - the fake LLM upstream, over real HTTP with libcurl, through the SSE
    parser and the OpenAI / Dify decoders: whole answers even when every byte arrives alone, usage,
    Dify's conversation id and sources, 429 with Retry-After, errors before and during the stream,
    and a stall that only an idle timeout ends. */
#include "common/log.h"
#include "workers/sse_parser.h"
#include "workers/upstream_events.h"
#include "testutil.h"
#include <curl/curl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_ANSWER "您好，这里是测试回答：退货请在订单页申请售后。"

typedef struct {
    bool is_dify;
    kf_sse_parser_t *parser;
    char answer [1024];
    char conversation [64];
    int64_t total_tokens;
    int sources, errors, done;
    char error_code [64];
    long status;
    char retry_after [16];
    kf_up_event_t body_error;   //  From a non-200 body
    char body [1024];
    size_t body_len;
} s_call_t;

static void
s_on_up (void *arg, const kf_up_event_t *event)
{
    s_call_t *call = arg;
    if (event->kind == KF_UP_TOKEN)
        strncat (call->answer, event->text, event->text_len);
    else if (event->kind == KF_UP_CONVERSATION)
        snprintf (call->conversation, sizeof call->conversation, "%.*s", (int) event->text_len, event->text);
    else if (event->kind == KF_UP_USAGE)
        call->total_tokens = event->total_tokens;
    else if (event->kind == KF_UP_SOURCES)
        call->sources++;
    else if (event->kind == KF_UP_ERROR) {
        call->errors++;
        snprintf (call->error_code, sizeof call->error_code, "%s", event->code);
    }
    else if (event->kind == KF_UP_DONE)
        call->done++;
}

static int
s_on_sse (void *arg, const kf_sse_event_t *event)
{
    s_call_t *call = arg;
    if (call->is_dify)
        kf_dify_decode (event, s_on_up, call);
    else
        kf_openai_decode (event, s_on_up, call);
    return 0;
}

static size_t
s_on_body (char *data, size_t size, size_t count, void *arg)
{
    s_call_t *call = arg;
    size_t len = size * count;
    if (call->status == 200)
        CHECK_INT (kf_sse_parser_feed (call->parser, data, len), 0);
    else
    if (call->body_len + len < sizeof call->body) {
        memcpy (call->body + call->body_len, data, len);
        call->body_len += len;
    }
    return len;
}

static size_t
s_on_header (char *data, size_t size, size_t count, void *arg)
{
    s_call_t *call = arg;
    size_t len = size * count;
    if (len > 9 && strncmp (data, "HTTP/1.1 ", 9) == 0)
        call->status = atol (data + 9);
    if (len > 12 && strncasecmp (data, "Retry-After:", 12) == 0)
        snprintf (call->retry_after, sizeof call->retry_after, "%.*s", (int) strcspn (data + 12, "\r\n") - 1, data + 13);
    return len;
}

static CURLcode
s_call (int port, bool is_dify, const char *scenario, int chunk, s_call_t *call)
{
    memset (call, 0, sizeof *call);
    call->is_dify = is_dify;
    call->parser = kf_sse_parser_new (s_on_sse, call);
    char url [128], scenario_header [96], chunk_header [64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/v1/%s", port, is_dify ? "chat-messages" : "chat/completions");
    snprintf (scenario_header, sizeof scenario_header, "X-Fake-Scenario: %s", scenario);
    snprintf (chunk_header, sizeof chunk_header, "X-Fake-Chunk: %d", chunk);
    struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/json");
    headers = curl_slist_append (headers, scenario_header);
    headers = curl_slist_append (headers, chunk_header);
    CURL *curl = curl_easy_init ();
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (curl, CURLOPT_POSTFIELDS, "{\"model\":\"m\",\"stream\":true}");
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, call);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, call);
    //  The idle timeout between chunks: under 1 byte/s for 1 s ends the transfer
    curl_easy_setopt (curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt (curl, CURLOPT_LOW_SPEED_TIME, 1L);
    CURLcode rc = curl_easy_perform (curl);
    if (rc == CURLE_OK && call->status == 200)
        kf_sse_parser_finish (call->parser);
    if (call->status != 200)
        kf_upstream_error_body ((int) call->status, call->body, call->body_len, &call->body_error);
    curl_easy_cleanup (curl);
    curl_slist_free_all (headers);
    kf_sse_parser_destroy (&call->parser);
    return rc;
}

int
main (void)
{
    int fds [2];
    CHECK_INT (pipe (fds), 0);
    pid_t server = fork ();
    if (server == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        dup2 (fds [1], 1);
        execl (KEFU_BIN_DIR "/tests/fake_upstream", "fake_upstream", (char *) NULL);
        _exit (127);
    }
    close (fds [1]);
    char line [16] = "";
    CHECK (read (fds [0], line, sizeof line - 1) > 0);
    int port = atoi (line);
    CHECK (port > 0);
    curl_global_init (CURL_GLOBAL_DEFAULT);
    s_call_t call;

    //  Every byte alone, so every UTF-8 character arrives split: the answer is whole
    CHECK_INT (s_call (port, false, "ok", 1, &call), CURLE_OK);
    CHECK_INT (call.status, 200);
    CHECK_STR (call.answer, S_ANSWER);
    CHECK_INT (call.total_tokens, 32);
    CHECK_INT (call.done, 1);
    CHECK_INT (s_call (port, true, "ok", 5, &call), CURLE_OK);
    CHECK_STR (call.answer, S_ANSWER);
    CHECK_STR (call.conversation, "conv-1");
    CHECK_INT (call.sources, 1);
    CHECK_INT (call.done, 1);

    //  429 with Retry-After, 500 before the stream: error bodies, both retryable
    CHECK_INT (s_call (port, false, "rate-limit", 0, &call), CURLE_OK);
    CHECK_INT (call.status, 429);
    CHECK_STR (call.retry_after, "1");
    CHECK_STR (call.body_error.code, "rate_limit_exceeded");
    CHECK (kf_upstream_is_retryable ((int) call.status));
    CHECK_INT (s_call (port, true, "error-before", 0, &call), CURLE_OK);
    CHECK_INT (call.status, 500);
    CHECK_STR (call.body_error.code, "internal_server_error");

    //  An error after HTTP 200, mid-answer: the tokens so far, then the error, never done
    CHECK_INT (s_call (port, false, "error-mid", 3, &call), CURLE_OK);
    CHECK (strlen (call.answer) > 0 && strncmp (S_ANSWER, call.answer, strlen (call.answer)) == 0);
    CHECK_INT (call.errors, 1);
    CHECK_STR (call.error_code, "stream_broken");
    CHECK_INT (call.done, 0);

    //  A stall: some tokens, then silence that only the idle timeout ends
    CHECK_INT (s_call (port, true, "stall", 0, &call), CURLE_OPERATION_TIMEDOUT);
    CHECK (strlen (call.answer) > 0);
    CHECK_INT (call.done, 0);

    curl_global_cleanup ();
    kill (server, SIGTERM);
    waitpid (server, NULL, 0);
    TEST_PASS ("test_fake_upstream");
    return 0;
}
