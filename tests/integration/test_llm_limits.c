/*  test_llm_limits.c - the broker's limits on LLM upstreams, end to end against the fake
    (tests/fake/fake_upstream.c): a concurrency cap of 2 with a queue of 1 over slow answers (two
    run, one waits and completes, the fourth gets 429 busy with retry_after_ms; stats show open
    and queued), the circuit breaker (opens after 2 failures, answers with the fallback without a
    request, lets one probe through after its cool-down and closes on its success), usage totals
    per bot and upstream in stats, and the slots of a worker killed mid-stream freed. */
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

#define S_ANSWER "您好，这里是测试回答：退货请在订单页申请售后。"
#define S_FALLBACK "抱歉，智能助手暂时无法回答，您可以稍后再试或输入“转人工”。"

static int s_port;
static pid_t s_fake;

//  The fake's request count (GET /stats)
static unsigned long long
s_fake_requests (void)
{
    char *json = h_fake_stats (s_port);
    unsigned long long requests = (unsigned long long) h_fake_stat (json, "requests");
    free (json);
    return requests;
}

static void
s_write_config (const char *path)
{
    FILE *file = fopen (path, "w");
    CHECK (file);
    const char *common = "kind = openai\nmodel = fake-model\ninclude_usage = true\nmax_retries = 0\n";
    fprintf (file, "[upstream cap]\n%sbase_url = http://127.0.0.1:%d/v1\n"
             "headers = X-Fake-Scenario: slow-start\nmax_concurrency = 2\nqueue = 1\n\n",
             common, s_port);
    fprintf (file, "[upstream brk]\n%sbase_url = http://127.0.0.1:%d/v1\n"
             "headers = X-Fake-Scenario: error-before | X-Fake-Status: 400 | X-Fake-Id: brk1"
             " | X-Fake-Fail-Times: 2\nbreaker_failures = 2\nbreaker_cooldown_ms = 1500\n\n",
             common, s_port);
    fprintf (file, "[upstream use]\n%sbase_url = http://127.0.0.1:%d/v1\n\n", common, s_port);
    fprintf (file, "[upstream hang]\n%sbase_url = http://127.0.0.1:%d/v1\n"
             "headers = X-Fake-Scenario: stall\nidle_timeout_ms = 60000\n\n", common, s_port);
    fprintf (file, "[bot cap]\nupstream = cap\n\n[bot brk]\nupstream = brk\n\n"
             "[bot default]\nupstream = use\n\n[bot hang]\nupstream = hang\n");
    fclose (file);
}

//  The stats entry of upstream `name` (borrowed from `reply`)
static const msgpack_object *
s_upstream (kf_reply_t *reply, const char *name)
{
    const msgpack_object *upstreams = kf_mp_get (reply->result, "upstreams");
    CHECK (upstreams && upstreams->type == MSGPACK_OBJECT_ARRAY);
    for (uint32_t i = 0; i < upstreams->via.array.size; i++)
        if (strcmp (h_str (&upstreams->via.array.ptr [i], "name"), name) == 0)
            return &upstreams->via.array.ptr [i];
    CHECK (!"upstream not in stats");
    return NULL;
}

static kf_reply_t *
s_stats (kf_client_t *client)
{
    kf_reply_t *reply = h_call (client, "stats", "{}");
    CHECK (reply->ok);
    return reply;
}

//  Waits until upstream `name` has `open` slots in use and `queued` waiting
static void
s_wait_open (kf_client_t *client, const char *name, int open, int queued)
{
    for (int i = 0; i < 200; i++) {
        kf_reply_t *reply = s_stats (client);
        const msgpack_object *upstream = s_upstream (reply, name);
        bool is_there = kf_mp_get_int (upstream, "open", -1) == open
                     && kf_mp_get_int (upstream, "queued", -1) == queued;
        kf_reply_destroy (&reply);
        if (is_there)
            return;
        h_sleep_ms (50);
    }
    fprintf (stderr, "upstream %s never had %d open, %d queued\n", name, open, queued);
    CHECK (false);
}

//  The usage entry of (bot, upstream) in stats: `turns` that called the upstream, `answers` of
//  them answered with the fake's usage
static void
s_check_usage (kf_client_t *client, const char *bot, const char *upstream, int turns, int answers)
{
    kf_reply_t *reply = s_stats (client);
    const msgpack_object *usage = kf_mp_get (reply->result, "usage");
    CHECK (usage && usage->type == MSGPACK_OBJECT_ARRAY);
    bool is_found = false;
    for (uint32_t i = 0; i < usage->via.array.size; i++) {
        const msgpack_object *entry = &usage->via.array.ptr [i];
        if (strcmp (h_str (entry, "bot_id"), bot) || strcmp (h_str (entry, "upstream"), upstream))
            continue;
        is_found = true;
        //  The fake's usage: 20 prompt, 12 completion, 32 in all per answer
        CHECK_INT (kf_mp_get_int (entry, "turns", 0), turns);
        CHECK_INT (kf_mp_get_int (entry, "prompt_tokens", 0), 20 * answers);
        CHECK_INT (kf_mp_get_int (entry, "completion_tokens", 0), 12 * answers);
        CHECK_INT (kf_mp_get_int (entry, "total_tokens", 0), 32 * answers);
    }
    CHECK (is_found);
    kf_reply_destroy (&reply);
}

static void
s_test_cap (kf_harness_t *h, kf_client_t *client)
{
    h_raw_t raw;
    h_raw_open (&raw, h);
    for (int i = 0; i < 4; i++) {
        char id [16];
        snprintf (id, sizeof id, "cap-%d", i);
        h_raw_send (&raw, id, "chat", "{\"message\":\"你们几点下班\",\"bot_id\":\"cap\"}");
        //  In order, so the fourth is the one past the queue
        if (i < 2)
            s_wait_open (client, "cap", i + 1, 0);
        else
        if (i == 2)
            s_wait_open (client, "cap", 2, 1);
    }
    //  The fourth is turned away at once, with a hint
    kf_reply_t *reply = h_raw_reply (&raw, 5000);
    CHECK (reply);
    char id [32];
    CHECK_STR (h_reply_id (reply, id, sizeof id), "cap-3");
    CHECK (!reply->ok);
    CHECK_INT (reply->error.errc, KF_E_BUSY);
    CHECK (reply->error.retry_after_ms > 0);
    kf_reply_destroy (&reply);
    kf_reply_t *stats = s_stats (client);
    const msgpack_object *cap = s_upstream (stats, "cap");
    CHECK_INT (kf_mp_get_int (cap, "open", -1), 2);
    CHECK_INT (kf_mp_get_int (cap, "queued", -1), 1);
    CHECK_INT (kf_mp_get_int (cap, "max_concurrency", -1), 2);
    CHECK_INT (kf_mp_get_int (cap, "rejected_busy", -1), 1);
    kf_reply_destroy (&stats);
    //  The two running ones answer, then the queued one gets its slot and answers too
    int64_t started = kf_mono_ms ();
    for (int i = 0; i < 3; i++) {
        reply = h_raw_reply (&raw, 10000);
        CHECK (reply && reply->ok);
        CHECK_STR (h_str (reply->result, "reply"), S_ANSWER);
        if (i == 2) {
            CHECK_STR (h_reply_id (reply, id, sizeof id), "cap-2");
            CHECK (kf_mono_ms () - started >= 500);     //  It waited for a slow answer
        }
        kf_reply_destroy (&reply);
    }
    s_wait_open (client, "cap", 0, 0);
    h_raw_close (&raw);
    s_check_usage (client, "cap", "cap", 3, 3);
}

static void
s_test_breaker (kf_client_t *client)
{
    //  The same question in one session, over and over: no handoff for repeating it here (issue 5,
    //  reason 5; test_intents)
    kf_reply_t *update = h_call (client, "bot.update", "{\"bot_id\":\"brk\",\"handoff\":{\"repeated_question\":0}}");
    CHECK (update->ok);
    kf_reply_destroy (&update);
    //  Two failures in a row open it: fallback replies, failed_attempts growing
    char session [64] = "";
    for (int i = 0; i < 2; i++) {
        kf_reply_t *reply = *session
            ? h_call (client, "chat", "{\"message\":\"你们几点下班\",\"bot_id\":\"brk\","
                      "\"session_id\":\"%s\"}", session)
            : h_call (client, "chat", "{\"message\":\"你们几点下班\",\"bot_id\":\"brk\"}");
        CHECK (reply->ok);
        CHECK_STR (h_str (reply->result, "reply"), S_FALLBACK);
        CHECK_INT (kf_mp_get_int (reply->result, "failed_attempts", 0), i + 1);
        snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
        kf_reply_destroy (&reply);
    }
    kf_reply_t *stats = s_stats (client);
    const msgpack_object *brk = s_upstream (stats, "brk");
    CHECK_STR (h_str (brk, "breaker"), "open");
    CHECK_INT (kf_mp_get_int (brk, "consecutive_failures", 0), 2);
    CHECK_INT (kf_mp_get_int (brk, "failures", 0), 2);
    kf_reply_destroy (&stats);
    //  Open: the fallback at once, nothing reaches the fake
    unsigned long long before = s_fake_requests ();
    int64_t started = kf_mono_ms ();
    kf_reply_t *reply = h_call (client, "chat", "{\"message\":\"你们几点下班\",\"bot_id\":\"brk\","
                                "\"session_id\":\"%s\"}", session);
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "reply"), S_FALLBACK);
    CHECK_INT (kf_mp_get_int (reply->result, "failed_attempts", 0), 3);
    CHECK (!kf_mp_get (reply->result, "upstream_error"));
    CHECK (kf_mono_ms () - started < 1000);
    kf_reply_destroy (&reply);
    CHECK_INT (s_fake_requests (), before);
    stats = s_stats (client);
    brk = s_upstream (stats, "brk");
    CHECK_INT (kf_mp_get_int (brk, "fallbacks", 0), 1);
    kf_reply_destroy (&stats);
    //  After the cool-down: half-open, one probe goes through (the fake answers now), closed
    h_sleep_ms (1600);
    stats = s_stats (client);
    CHECK_STR (h_str (s_upstream (stats, "brk"), "breaker"), "half_open");
    kf_reply_destroy (&stats);
    reply = h_call (client, "chat", "{\"message\":\"你们几点下班\",\"bot_id\":\"brk\","
                    "\"session_id\":\"%s\"}", session);
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "reply"), S_ANSWER);
    CHECK_INT (kf_mp_get_int (reply->result, "failed_attempts", -1), 0);
    kf_reply_destroy (&reply);
    CHECK_INT (s_fake_requests (), before + 1);
    stats = s_stats (client);
    brk = s_upstream (stats, "brk");
    CHECK_STR (h_str (brk, "breaker"), "closed");
    CHECK_INT (kf_mp_get_int (brk, "consecutive_failures", -1), 0);
    kf_reply_destroy (&stats);
}

//  Workers with open streams killed: their slots are free once the broker knows
static void
s_test_worker_lost (kf_harness_t *h, kf_client_t *client)
{
    h_raw_t raw;
    h_raw_open (&raw, h);
    h_raw_send (&raw, "hang-1", "chat", "{\"message\":\"你们几点下班\",\"bot_id\":\"hang\"}");
    h_raw_send (&raw, "hang-2", "chat", "{\"message\":\"你们几点下班\",\"bot_id\":\"hang\"}");
    s_wait_open (client, "hang", 2, 0);
    kf_reply_t *stats = s_stats (client);
    const msgpack_object *workers = kf_mp_get (stats->result, "workers");
    int killed = 0;
    for (uint32_t i = 0; i < workers->via.array.size; i++) {
        const msgpack_object *worker = &workers->via.array.ptr [i];
        if (kf_mp_get_int (worker, "active", 0) > 0) {
            CHECK_INT (kill ((pid_t) kf_mp_get_int (worker, "pid", 0), SIGKILL), 0);
            killed++;
        }
    }
    kf_reply_destroy (&stats);
    CHECK (killed >= 1);
    //  The jobs go to the restarted workers and take their slots again; what matters is that the
    //  dead workers' slots were freed: never more than two open, and the fake saw new requests
    unsigned long long before = s_fake_requests ();
    for (int i = 0; i < 200 && s_fake_requests () < before + 2; i++)
        h_sleep_ms (50);
    CHECK (s_fake_requests () >= before + 2);
    s_wait_open (client, "hang", 2, 0);
    h_raw_close (&raw);
}

int
main (void)
{
    s_port = h_start_fake_upstream (&s_fake);
    kf_harness_t h;
    h_init (&h, "llm_limits");
    char config [320];
    snprintf (config, sizeof config, "%s/kefu.ini", h.dir);
    s_write_config (config);
    const char *args [] = { "--config", config, "--heartbeat-ms", "200", NULL };
    h_start_broker (&h, 2, args);
    kf_client_t *client = h_client (&h);

    s_test_cap (&h, client);
    s_test_breaker (client);

    //  Usage totals per bot and upstream match the fake's numbers
    for (int i = 0; i < 3; i++) {
        kf_reply_t *reply = h_call (client, "chat", "{\"message\":\"你们几点下班\"}");
        CHECK (reply->ok);
        CHECK_STR (h_str (reply->result, "reply"), S_ANSWER);
        kf_reply_destroy (&reply);
    }
    s_check_usage (client, "default", "use", 3, 3);
    //  Two failed calls (no usage) and one answer; the fallback of the open breaker called nothing
    s_check_usage (client, "brk", "brk", 3, 1);

    s_test_worker_lost (&h, client);

    kf_client_destroy (&client);
    h_kill_broker (&h, SIGTERM);
    //  Broker and workers stopped cleanly (a sanitizer build reports leaks and errors there)
    char log [320], line [4096];
    snprintf (log, sizeof log, "%s/broker.log", h.dir);
    FILE *file = fopen (log, "r");
    CHECK (file);
    while (fgets (line, sizeof line, file))
        CHECK (!strstr (line, "Sanitizer") && !strstr (line, "runtime error"));
    fclose (file);
    h_cleanup (&h);
    kill (s_fake, SIGKILL);
    waitpid (s_fake, NULL, 0);
    TEST_PASS ("test_llm_limits");
    return 0;
}
