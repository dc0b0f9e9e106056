/*  test_llm.c - LLM upstreams end to end: a broker with local workers reads a config file that
    points its upstreams at the fake (tests/fake/fake_upstream.c), each upstream picking the
    fake's behaviour with its headers key, and bots mapped onto them. Covers OpenAI-compatible
    and Dify answers streamed through the PUB socket, byte-at-a-time chunking, 429 then success,
    errors before and during the stream, an idle stall, knowledge-base answers without the LLM
    under llm = fallback, llm = always, the reference material in the prompt, Dify's
    conversation kept per session, bots without an LLM, and the API key kept out of every log. */
#include "harness.h"
#include "common/clock.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_KEY "sk-kefu-test-SECRET-4711"
#define S_ANSWER "您好，这里是测试回答：退货请在订单页申请售后。"

static int s_port;
static pid_t s_fake;

typedef struct {
    unsigned long long requests;
    char conversation [128];
    int references, messages;
} s_stats_t;

//  The fake's GET /stats
static void
s_fake_stats (s_stats_t *stats)
{
    char *json = h_fake_stats (s_port);
    memset (stats, 0, sizeof *stats);
    stats->requests = (unsigned long long) h_fake_stat (json, "requests");
    stats->references = (int) h_fake_stat (json, "last_references");
    stats->messages = (int) h_fake_stat (json, "last_messages");
    const char *at = strstr (json, "\"last_conversation_id\":\"");
    if (at)
        sscanf (at, "\"last_conversation_id\":\"%127[^\"]\"", stats->conversation);
    free (json);
}

static void
s_write_config (const char *path)
{
    FILE *file = fopen (path, "w");
    CHECK (file);
    const char *upstreams [][3] = {
        //  name, kind, headers
        { "oai", "openai", "X-Fake-Chunk: 40 | X-Fake-Delay-Ms: 5" },
        { "bytes", "openai", "X-Fake-Chunk: 1" },
        { "rate", "openai", "X-Fake-Scenario: rate-limit | X-Fake-Retry-After: 1 | X-Fake-Id: r1"
                            " | X-Fake-Fail-Times: 1" },
        { "before", "openai", "X-Fake-Scenario: error-before | X-Fake-Status: 400" },
        { "mid", "openai", "X-Fake-Scenario: error-mid" },
        { "stall", "openai", "X-Fake-Scenario: stall" },
        { "dify", "dify", "X-Fake-Chunk: 25" },
    };
    for (size_t i = 0; i < sizeof upstreams / sizeof upstreams [0]; i++) {
        fprintf (file, "[upstream %s]\nkind = %s\nbase_url = http://127.0.0.1:%d/v1\n"
                 "api_key = ${KEFU_TEST_KEY}\nheaders = X-Fake-Auth: %s | %s\nidle_timeout_ms = 300\n"
                 "max_retries = 1\n", upstreams [i][0], upstreams [i][1], s_port, S_KEY,
                 upstreams [i][2]);
        if (strcmp (upstreams [i][1], "openai") == 0)
            fprintf (file, "model = fake-model\ninclude_usage = true\n");
        fprintf (file, "[bot %s]\nupstream = %s\nllm = %s\n\n",
                 strcmp (upstreams [i][0], "oai") == 0 ? "default" : upstreams [i][0],
                 upstreams [i][0], "fallback");
    }
    fprintf (file, "[bot always]\nupstream = oai\nllm = always\n\n[bot plain]\nllm = off\n");
    fclose (file);
}

typedef struct {
    char text [4096];
    int tokens;
    bool has_meta, has_done;
    int sources;                //  In meta
} s_stream_t;

static void
s_on_event (void *arg, const msgpack_object *event)
{
    s_stream_t *stream = arg;
    const char *name = h_str (event, "event");
    if (strcmp (name, "token") == 0) {
        const char *content;
        size_t len;
        CHECK (kf_mp_str (kf_mp_get (event, "content"), &content, &len));
        CHECK (strlen (stream->text) + len < sizeof stream->text);
        strncat (stream->text, content, len);
        stream->tokens++;
    }
    else
    if (strcmp (name, "meta") == 0) {
        stream->has_meta = true;
        const msgpack_object *sources = kf_mp_get (event, "sources");
        stream->sources = sources ? (int) sources->via.array.size : -1;
    }
    else
    if (strcmp (name, "done") == 0)
        stream->has_done = true;
}

//  A streamed chat; returns the reply (caller destroys)
static kf_reply_t *
s_stream (kf_client_t *client, s_stream_t *stream, const char *json_format, const char *bot,
          const char *message, const char *session)
{
    (void) json_format;
    memset (stream, 0, sizeof *stream);
    msgpack_sbuffer params;
    if (session)
        h_pack_json (&params, "{\"message\":\"%s\",\"bot_id\":\"%s\",\"user_id\":\"u1\","
                     "\"session_id\":\"%s\"}", message, bot, session);
    else
        h_pack_json (&params, "{\"message\":\"%s\",\"bot_id\":\"%s\",\"user_id\":\"u1\"}",
                     message, bot);
    kf_reply_t *reply = NULL;
    CHECK_INT (kf_client_chat_stream (client, params.data, params.size, s_on_event, stream, &reply), 0);
    msgpack_sbuffer_destroy (&params);
    CHECK (reply && reply->ok);
    CHECK (stream->has_meta && stream->has_done);
    CHECK_STR (stream->text, h_str (reply->result, "reply"));
    return reply;
}

//  The stored answer of the last turn of `session`
static void
s_check_history (kf_client_t *client, const char *session, const char *expected)
{
    kf_reply_t *reply = h_call (client, "history", "{\"session_id\":\"%s\"}", session);
    CHECK (reply->ok);
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    CHECK (data && data->via.array.size >= 2);
    const msgpack_object *last = &data->via.array.ptr [data->via.array.size - 1];
    CHECK_STR (h_str (last, "role"), "assistant");
    CHECK_STR (h_str (last, "content"), expected);
    kf_reply_destroy (&reply);
}

static bool
s_file_has (const char *path, const char *text)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return false;
    char line [8192];
    bool has = false;
    while (!has && fgets (line, sizeof line, file))
        has = strstr (line, text) != NULL;
    fclose (file);
    return has;
}

int
main (void)
{
    s_port = h_start_fake_upstream (&s_fake);
    kf_harness_t h;
    h_init (&h, "llm");
    char config [320];
    snprintf (config, sizeof config, "%s/kefu.ini", h.dir);
    s_write_config (config);
    setenv ("KEFU_TEST_KEY", S_KEY, 1);
    const char *args [] = { "--config", config, NULL };
    h_start_broker (&h, 2, args);
    h_import_sample (&h);
    kf_client_t *client = h_client (&h);
    s_stats_t before, after;
    s_stream_t stream;
    char session [64];

    //  A knowledge-base hit under llm = fallback: answered from the knowledge base, no call
    s_fake_stats (&before);
    kf_reply_t *reply = s_stream (client, &stream, NULL, "default", "怎么申请退货？", NULL);
    CHECK (strstr (h_str (reply->result, "reply"), "申请售后"));
    CHECK (kf_mp_get_double (reply->result, "confidence", 0) > 0.9);
    kf_reply_destroy (&reply);
    s_fake_stats (&after);
    CHECK_INT (after.requests, before.requests);

    //  No answer in the knowledge base: OpenAI-compatible upstream, streamed in several events,
    //  with the near items as reference material and sources, usage in the result
    reply = s_stream (client, &stream, NULL, "default", "优惠券", NULL);
    CHECK_STR (h_str (reply->result, "reply"), S_ANSWER);
    CHECK (stream.tokens >= 3);
    CHECK (stream.sources >= 1);
    CHECK_INT (kf_mp_get (reply->result, "sources")->via.array.size, stream.sources);
    CHECK_INT (kf_mp_get_int (reply->result, "failed_attempts", -1), 0);
    CHECK_INT (kf_mp_get_int (kf_mp_get (reply->result, "usage"), "total_tokens", 0), 32);
    CHECK (!kf_mp_get (reply->result, "upstream_error"));
    s_fake_stats (&after);
    CHECK_INT (after.requests, before.requests + 1);
    CHECK_INT (after.references, stream.sources);
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    s_check_history (client, session, S_ANSWER);
    //  The second turn carries the first as context: system, 2 recent turns, the message
    reply = s_stream (client, &stream, NULL, "default", "今天天气怎么样", session);
    CHECK_STR (h_str (reply->result, "reply"), S_ANSWER);
    kf_reply_destroy (&reply);
    s_fake_stats (&after);
    CHECK (after.messages >= 4);

    //  llm = always: asked even when the knowledge base knows
    s_fake_stats (&before);
    reply = s_stream (client, &stream, NULL, "always", "怎么申请退货？", NULL);
    CHECK_STR (h_str (reply->result, "reply"), S_ANSWER);
    kf_reply_destroy (&reply);
    s_fake_stats (&after);
    CHECK_INT (after.requests, before.requests + 1);

    //  One byte at a time: UTF-8 characters split across writes still arrive whole
    reply = s_stream (client, &stream, NULL, "bytes", "你们几点下班", NULL);
    CHECK_STR (h_str (reply->result, "reply"), S_ANSWER);
    CHECK (stream.tokens >= 10);
    kf_reply_destroy (&reply);

    //  429 with Retry-After, then success
    int64_t started = kf_mono_ms ();
    reply = s_stream (client, &stream, NULL, "rate", "你们几点下班", NULL);
    CHECK_STR (h_str (reply->result, "reply"), S_ANSWER);
    CHECK (kf_mono_ms () - started >= 900);
    kf_reply_destroy (&reply);

    //  An error before the stream: the fallback reply, failed_attempts grows, nothing internal
    //  reaches the client
    reply = s_stream (client, &stream, NULL, "before", "你们几点下班", NULL);
    CHECK_STR (h_str (reply->result, "reply"),
               "抱歉，智能助手暂时无法回答，您可以稍后再试或输入“转人工”。");
    CHECK_INT (kf_mp_get_int (reply->result, "failed_attempts", 0), 1);
    CHECK (!kf_mp_get (reply->result, "upstream_error"));
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    reply = s_stream (client, &stream, NULL, "before", "你们几点下班", session);
    CHECK_INT (kf_mp_get_int (reply->result, "failed_attempts", 0), 2);
    kf_reply_destroy (&reply);

    //  An error mid-stream: the partial answer is the reply, and is stored
    reply = s_stream (client, &stream, NULL, "mid", "你们几点下班", NULL);
    const char *partial = h_str (reply->result, "reply");
    CHECK (*partial && strncmp (S_ANSWER, partial, strlen (partial)) == 0);
    CHECK (strlen (partial) < strlen (S_ANSWER));
    CHECK_INT (kf_mp_get_int (reply->result, "failed_attempts", 0), 1);
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    s_check_history (client, session, partial);
    kf_reply_destroy (&reply);

    //  A stall after three tokens: the idle timeout ends it, the partial answer stands
    started = kf_mono_ms ();
    reply = s_stream (client, &stream, NULL, "stall", "你们几点下班", NULL);
    partial = h_str (reply->result, "reply");
    CHECK (*partial && strncmp (S_ANSWER, partial, strlen (partial)) == 0);
    CHECK (strlen (partial) < strlen (S_ANSWER));
    CHECK (kf_mono_ms () - started < 5000);
    kf_reply_destroy (&reply);

    //  Dify: streamed, its retriever resources as sources, its conversation kept per session
    s_fake_stats (&before);
    reply = s_stream (client, &stream, NULL, "dify", "退货运费谁出", NULL);
    CHECK_STR (h_str (reply->result, "reply"), S_ANSWER);
    CHECK (stream.tokens >= 2);
    const msgpack_object *sources = kf_mp_get (reply->result, "sources");
    CHECK (sources && sources->via.array.size >= 1);
    CHECK_STR (h_str (&sources->via.array.ptr [sources->via.array.size - 1], "question"), "售后.md");
    CHECK (!kf_mp_get (reply->result, "upstream_conversation_id"));
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    s_fake_stats (&after);
    CHECK_STR (after.conversation, "");
    reply = s_stream (client, &stream, NULL, "dify", "那多久到账", session);
    CHECK_STR (h_str (reply->result, "reply"), S_ANSWER);
    kf_reply_destroy (&reply);
    s_fake_stats (&after);
    CHECK_STR (after.conversation, "conv-1");
    CHECK_INT (after.requests, before.requests + 2);

    //  A bot without an LLM: as before, no call (a question the knowledge base cannot answer;
    //  small talk would get the chit-chat table's reply)
    s_fake_stats (&before);
    reply = s_stream (client, &stream, NULL, "plain", "你们支持比特币付款吗", NULL);
    CHECK (strstr (h_str (reply->result, "reply"), "抱歉"));
    CHECK_INT (kf_mp_get_int (reply->result, "failed_attempts", 0), 1);
    kf_reply_destroy (&reply);
    s_fake_stats (&after);
    CHECK_INT (after.requests, before.requests);

    //  Not streamed: the same answer in the reply
    reply = h_call (client, "chat", "{\"message\":\"优惠券\"}");
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "reply"), S_ANSWER);
    kf_reply_destroy (&reply);

    kf_client_destroy (&client);
    h_kill_broker (&h, SIGTERM);
    //  The key reached the fake (X-Fake-Auth checked it) and never a log
    char log [320];
    snprintf (log, sizeof log, "%s/broker.log", h.dir);
    CHECK (s_file_has (log, "upstream"));
    CHECK (!s_file_has (log, S_KEY));
    CHECK (!s_file_has (log, "SECRET"));
    //  Workers stopped cleanly (a sanitizer build would report leaks and errors here)
    CHECK (!s_file_has (log, "Sanitizer"));
    CHECK (!s_file_has (log, "at shutdown"));
    h_cleanup (&h);
    kill (s_fake, SIGKILL);
    waitpid (s_fake, NULL, 0);
    TEST_PASS ("test_llm");
    return 0;
}
