/*  test_upstream_events.c - OpenAI-compatible and Dify streams, fed through the SSE parser at every
    split, decode to the same answer, usage, sources and errors; error bodies and retry policy. */
#include "common/log.h"
#include "common/mpack.h"
#include "workers/sse_parser.h"
#include "workers/upstream_events.h"
#include "testutil.h"

typedef struct {
    bool is_dify;
    char out [8192];            //  Normalized events, one per line
    char answer [4096];
} s_run_t;

static void
s_on_up (void *arg, const kf_up_event_t *event)
{
    s_run_t *run = arg;
    size_t used = strlen (run->out);
    char *line = run->out + used;
    size_t room = sizeof run->out - used;
    switch (event->kind) {
        case KF_UP_TOKEN:
            strncat (run->answer, event->text, event->text_len);
            snprintf (line, room, "token %.*s\n", (int) event->text_len, event->text);
            break;
        case KF_UP_FINISH:
            snprintf (line, room, "finish %.*s\n", (int) event->text_len, event->text);
            break;
        case KF_UP_USAGE:
            snprintf (line, room, "usage %lld %lld %lld\n", (long long) event->prompt_tokens,
                      (long long) event->completion_tokens, (long long) event->total_tokens);
            break;
        case KF_UP_REPLACE:
            snprintf (line, room, "replace %.*s\n", (int) event->text_len, event->text);
            break;
        case KF_UP_CONVERSATION:
            snprintf (line, room, "conversation %.*s\n", (int) event->text_len, event->text);
            break;
        case KF_UP_SOURCES:
            snprintf (line, room, "sources %u\n", event->sources->via.array.size);
            break;
        case KF_UP_ERROR:
            snprintf (line, room, "error %d %s %s\n", event->status, event->code, event->message);
            break;
        case KF_UP_DONE:
            snprintf (line, room, "done\n");
            break;
    }
}

static int
s_on_sse (void *arg, const kf_sse_event_t *sse)
{
    s_run_t *run = arg;
    if (run->is_dify)
        kf_dify_decode (sse, s_on_up, run);
    else
        kf_openai_decode (sse, s_on_up, run);
    return 0;
}

static void
s_run (const char *stream, bool is_dify, size_t cut, s_run_t *run)
{
    memset (run, 0, sizeof *run);
    run->is_dify = is_dify;
    kf_sse_parser_t *parser = kf_sse_parser_new (s_on_sse, run);
    size_t len = strlen (stream);
    if (cut > len)
        cut = len;
    CHECK_INT (kf_sse_parser_feed (parser, stream, cut), 0);
    CHECK_INT (kf_sse_parser_feed (parser, stream + cut, len - cut), 0);
    CHECK_INT (kf_sse_parser_finish (parser), 0);
    kf_sse_parser_destroy (&parser);
}

//  The same events at every split point
static void
s_check_splits (const char *stream, bool is_dify, const char *expected)
{
    s_run_t run;
    for (size_t cut = 0; cut <= strlen (stream); cut++) {
        s_run (stream, is_dify, cut, &run);
        CHECK_STR (run.out, expected);
    }
}

static const char s_openai [] =
    ": OPENROUTER PROCESSING\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"您好，\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"退货请在订单页申请😀\"},\"finish_reason\":null}]}\r\n\r\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\"思考\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":15,\"total_tokens\":25}}\n\n"
    "data: [DONE]\n\n";

static const char s_dify [] =
    "event: ping\n\n"
    "data: {\"event\":\"message\",\"task_id\":\"t\",\"id\":\"m\",\"message_id\":\"m\",\"conversation_id\":\"c9\","
    "\"answer\":\"您好\",\"created_at\":1705398420}\n\n"
    "data: {\"event\":\"workflow_started\",\"task_id\":\"t\"}\n\n"
    "data: {\"event\":\"message_replace\",\"task_id\":\"t\",\"message_id\":\"m\",\"conversation_id\":\"c9\","
    "\"answer\":\"该内容无法显示\"}\n\n"
    "data: {\"event\":\"message_end\",\"task_id\":\"t\",\"message_id\":\"m\",\"conversation_id\":\"c9\",\"metadata\":"
    "{\"usage\":{\"prompt_tokens\":1033,\"completion_tokens\":135,\"total_tokens\":1168,\"latency\":1.38},"
    "\"retriever_resources\":[{\"position\":1,\"dataset_name\":\"售后\",\"document_name\":\"退货.md\","
    "\"segment_id\":\"s1\",\"score\":0.98,\"content\":\"七天无理由\"}]}}\n\n";

int
main (void)
{
    s_check_splits (s_openai, false,
        "token 您好，\n"
        "token 退货请在订单页申请😀\n"
        "finish stop\n"
        "usage 10 15 25\n"
        "done\n");
    s_run_t run;
    s_run (s_openai, false, 0, &run);
    CHECK_STR (run.answer, "您好，退货请在订单页申请😀");

    s_check_splits (s_dify, true,
        "conversation c9\n"
        "token 您好\n"
        "replace 该内容无法显示\n"
        "conversation c9\n"
        "usage 1033 135 1168\n"
        "sources 1\n"
        "done\n");

    //  Errors after HTTP 200: an error object in a data line, event: error, Dify's error event
    s_check_splits ("data: {\"choices\":[{\"delta\":{\"content\":\"部分\"}}]}\n\n"
                    "data: {\"error\":{\"message\":\"上游过载\",\"type\":\"server_error\",\"code\":503}}\n\n", false,
                    "token 部分\nerror 502 503 上游过载\n");
    s_check_splits ("event: error\ndata: {\"message\":\"stream broke\",\"code\":\"internal\"}\n\n", false,
                    "error 502 internal stream broke\n");
    s_check_splits ("data: {\"event\":\"error\",\"task_id\":\"t\",\"message_id\":\"m\",\"status\":400,"
                    "\"code\":\"completion_request_error\",\"message\":\"模型不可用\"}\n\n", true,
                    "error 400 completion_request_error 模型不可用\n");
    s_check_splits ("data: {not json\n\n", false, "error 502 bad_stream the upstream sent data that is not JSON\n");

    //  Error bodies of non-200 replies: code as a string, as an integer, Dify's shape, not JSON
    kf_up_event_t event;
    const char *openai_429 = "{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\",\"param\":null,"
                             "\"code\":\"rate_limit_exceeded\"}}";
    kf_upstream_error_body (429, openai_429, strlen (openai_429), &event);
    CHECK_INT (event.status, 429);
    CHECK_STR (event.code, "rate_limit_exceeded");
    CHECK_STR (event.message, "Rate limit reached");
    const char *numeric = "{\"error\":{\"message\":\"Insufficient Balance\",\"code\":402}}";
    kf_upstream_error_body (402, numeric, strlen (numeric), &event);
    CHECK_STR (event.code, "402");
    const char *dify = "{\"code\":\"invalid_param\",\"message\":\"Conversation Not Exists.\",\"status\":404}";
    kf_upstream_error_body (404, dify, strlen (dify), &event);
    CHECK_STR (event.code, "invalid_param");
    CHECK_INT (event.status, 404);
    const char *html = "<html><body>502 Bad Gateway 网关错误</body></html>";
    kf_upstream_error_body (502, html, strlen (html), &event);
    CHECK_INT (event.status, 502);
    CHECK (strstr (event.message, "HTTP 502"));
    kf_upstream_error_body (503, NULL, 0, &event);
    CHECK_STR (event.message, "HTTP 503 from the upstream");

    //  Retry policy: before the first token only (the caller's part), and only for these
    int retryable [] = { 0, 408, 409, 429, 500, 502, 503, 504 };
    int final [] = { 400, 401, 402, 403, 404, 422 };
    for (size_t i = 0; i < sizeof retryable / sizeof retryable [0]; i++)
        CHECK (kf_upstream_is_retryable (retryable [i]));
    for (size_t i = 0; i < sizeof final / sizeof final [0]; i++)
        CHECK (!kf_upstream_is_retryable (final [i]));
    TEST_PASS ("test_upstream_events");
    return 0;
}
