/*  test_business_client.c - business_query calls against the fake shop API
    (tests/fake/fake_business.c) over real HTTP, driven the way the worker drives them: the
    business stage in a zmq_poll loop, its FINAL and token messages caught by the test. The
    configuration is a real file read by kf_config_load, with the API key from the environment.
    Covers an order answered from the API (tokens add up to the reply, the key sent as a bearer
    token), paths with defaults, a body split in 3-byte writes, POST by phone number, 404, 500,
    an HTML 502, an answer that is not JSON, a connection refused, a timeout that another call
    overtakes (the loop keeps serving), ask_reply with no call made, cancel and stop closing the
    connection, a full client, keep-alive, failed_attempts for each, and the key in no log line. */
#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "common/mpack.h"
#include "workers/business_stage.h"
#include "harness.h"
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_KEY "shop-key-SECRET-8812"
#define S_INTENT "business_query"

//  What the stage sent for one job
typedef struct {
    char job_id [32];
    char tokens [8192];         //  Token contents, in order
    int token_count;
    bool has_final;
    char reply [8192];
    bool is_stopped;
    int64_t failed_attempts;
    char code [32];
    char intent [32];
    int64_t final_us;           //  When FINAL came
} s_job_t;

static struct {
    pid_t server;
    int port;
    char dir [256], config_path [300], log_path [300];
    kf_config_t *config;
    kf_business_stage_t *stage;
    s_job_t jobs [64];
    int job_count;
    int freed;                  //  Callback arguments freed by the stage
    const char *tail;           //  What the next turns put after the API's answer
} s_test;

static s_job_t *
s_job (const char *job_id)
{
    for (int i = 0; i < s_test.job_count; i++)
        if (strcmp (s_test.jobs [i].job_id, job_id) == 0)
            return &s_test.jobs [i];
    CHECK (s_test.job_count < 64);
    s_job_t *job = &s_test.jobs [s_test.job_count++];
    memset (job, 0, sizeof *job);
    snprintf (job->job_id, sizeof job->job_id, "%s", job_id);
    return job;
}

static void
s_copy_str (const msgpack_object *obj, char *out, size_t size)
{
    const char *s;
    size_t len;
    *out = 0;
    if (kf_mp_str (obj, &s, &len))
        snprintf (out, size, "%.*s", (int) len, s);
}

//  kf_business_send_fn: the broker's side
static void
s_send (void *arg, const char *command, const char *job_id, const msgpack_sbuffer *body)
{
    (void) arg;
    s_job_t *job = s_job (job_id);
    msgpack_unpacked msg;
    CHECK (kf_mp_unpack_one (body->data, body->size, &msg));
    if (strcmp (command, "PARTIAL") == 0) {
        CHECK (kf_mp_str_eq (&msg.data, "event", "token"));
        CHECK (!job->has_final);
        char content [1024];
        s_copy_str (kf_mp_get (&msg.data, "content"), content, sizeof content);
        CHECK (strlen (job->tokens) + strlen (content) < sizeof job->tokens);
        strcat (job->tokens, content);
        job->token_count++;
    }
    else {
        CHECK_STR (command, "FINAL");
        CHECK (!job->has_final);
        job->has_final = true;
        job->final_us = kf_mono_us ();
        CHECK (kf_mp_get_bool (&msg.data, "ok", false));
        const msgpack_object *result = kf_mp_get (&msg.data, "result");
        CHECK (result && result->type == MSGPACK_OBJECT_MAP);
        s_copy_str (kf_mp_get (result, "reply"), job->reply, sizeof job->reply);
        s_copy_str (kf_mp_get (result, "code"), job->code, sizeof job->code);
        s_copy_str (kf_mp_get (result, "intent"), job->intent, sizeof job->intent);
        job->is_stopped = kf_mp_get_bool (result, "stopped", false);
        job->failed_attempts = kf_mp_get_int (result, "failed_attempts", -1);
    }
    msgpack_unpacked_destroy (&msg);
}

//  kf_business_fields_fn: what the pipeline would pack
static int
s_fields (void *arg, const kf_business_outcome_t *outcome, msgpack_packer *pk)
{
    CHECK_STR ((const char *) arg, S_INTENT);
    kf_mp_pack_kv_str (pk, "intent", S_INTENT);
    kf_mp_pack_kv_int (pk, "failed_attempts", outcome->failed_attempts);
    kf_mp_pack_kv_str (pk, "code", outcome->code);
    return 3;
}

static void
s_free_arg (void *arg)
{
    CHECK_STR ((const char *) arg, S_INTENT);
    free (arg);
    s_test.freed++;
}

//  Runs the loop (the stage's descriptor and timer) until `job_id` has its FINAL or `ms` pass
static bool
s_run (const char *job_id, int ms)
{
    kf_business_client_t *client = kf_business_stage_client (s_test.stage);
    int64_t deadline = kf_mono_us () + ms * 1000LL;
    while (kf_mono_us () < deadline) {
        if (job_id && s_job (job_id)->has_final)
            return true;
        zmq_pollitem_t items [1];
        int count = kf_business_client_pollitems (client, items, 1);
        long timeout = kf_business_client_timeout_ms (client, kf_mono_us ());
        if (timeout < 0 || timeout > 20)
            timeout = 20;
        zmq_poll (items, count, timeout);
        kf_business_client_on_poll (client, items, count);
        kf_business_client_on_timer (client, kf_mono_us ());
    }
    return job_id && s_job (job_id)->has_final;
}

//  Starts a turn for `bot` with an order number and/or a phone
static kf_business_run_t
s_start (const char *job_id, const char *bot, const char *order_no, const char *phone,
         int64_t failed_before)
{
    kf_business_turn_t turn = {
        .job_id = job_id, .is_stream = true, .bot_id = bot,
        .vars = { order_no, phone, "user-1", "sess-1", bot },
        .failed_attempts = failed_before, .tail = s_test.tail,
        .fields = s_fields, .fields_arg = kf_strdup (S_INTENT), .free_arg = s_free_arg
    };
    return kf_business_stage_run (s_test.stage, &turn);
}

//  GET /stats of the fake, and one number of it
static size_t
s_on_stats (char *data, size_t size, size_t count, void *arg)
{
    strncat (arg, data, size * count < 4000 ? size * count : 4000);
    return size * count;
}

static void
s_stats (char *out)
{
    *out = 0;
    char url [64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/stats", s_test.port);
    CURL *easy = curl_easy_init ();
    curl_easy_setopt (easy, CURLOPT_URL, url);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_on_stats);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, out);
    CHECK_INT (curl_easy_perform (easy), CURLE_OK);
    curl_easy_cleanup (easy);
}

static long long
s_stat (const char *name)
{
    char stats [8192], key [64];
    s_stats (stats);
    snprintf (key, sizeof key, "\"%s\":", name);
    const char *at = strstr (stats, key);
    CHECK (at);
    return atoll (at + strlen (key));
}

static void
s_start_fake (void)
{
    s_test.port = h_start_fake_business (&s_test.server);
}

static void
s_write_config (void)
{
    FILE *file = fopen (s_test.config_path, "w");
    CHECK (file);
    fprintf (file,
        "[business orders]\n"
        "url = http://127.0.0.1:%d/orders/{order_no}\n"
        "headers = Authorization: Bearer ${KEFU_TEST_SHOP_KEY} | X-Fake-Auth: ${KEFU_TEST_SHOP_KEY}\n"
        "timeout_ms = 600\n"
        "reply = 您的订单 {order_no} {status}：{logistics.company|暂无物流信息} {logistics.latest|}"
        "（商品：{items.0.name}）\n"
        "not_found_reply = 没有查到订单 {order_no}，请核对后再试。\n"
        "error_reply = 抱歉，订单系统暂时无法查询，请稍后再试或输入“转人工”。\n"
        "\n"
        "[business query]\n"
        "url = http://127.0.0.1:%d/orders/query\n"
        "method = POST\n"
        "requires = order_no|phone\n"
        "headers = Authorization: Bearer ${KEFU_TEST_SHOP_KEY}\n"
        "reply = 手机 {phone} 的订单 {order_no}：{status}\n"
        "\n"
        "[business down]\n"
        "url = http://127.0.0.1:1/orders/{order_no}\n"
        "reply = never\n"
        "\n"
        "[bot *]\nbusiness = orders\n\n[bot post]\nbusiness = query\n\n[bot down]\nbusiness = down\n",
        s_test.port, s_test.port);
    fclose (file);
}

//  ---------------------------------------------------------------------------------------------

static void
s_check_answered (void)
{
    long long before = s_stat ("requests");
    CHECK_INT (s_start ("j-ok", "shop", "ORD-2024-001", NULL, 1), KF_BUSINESS_RUN_CALLING);
    CHECK (s_run ("j-ok", 5000));
    s_job_t *job = s_job ("j-ok");
    CHECK_STR (job->reply, "您的订单 ORD-2024-001 已发货：顺丰速运 【深圳市】快件已到达深圳转运中心"
                           "（商品：无线蓝牙耳机）");
    CHECK_STR (job->tokens, job->reply);
    CHECK (job->token_count > 5);
    CHECK_STR (job->code, "ok");
    CHECK_STR (job->intent, S_INTENT);
    CHECK_INT (job->failed_attempts, 0);
    CHECK (!job->is_stopped);
    CHECK_INT (s_stat ("requests"), before + 1);
    char stats [8192];
    s_stats (stats);
    CHECK (strstr (stats, "\"last_authorization\":\"Bearer " S_KEY "\""));
    CHECK (strstr (stats, "\"last_path\":\"/orders/ORD-2024-001\""));
    CHECK (strstr (stats, "\"last_method\":\"GET\""));

    //  No logistics yet: the default; a body written 3 bytes at a time
    s_start ("j-unshipped", "shop", "ORD-2024-002", NULL, 0);
    s_start ("j-split", "shop", "ORD-2024-888", NULL, 0);
    CHECK (s_run ("j-unshipped", 5000) && s_run ("j-split", 5000));
    CHECK_STR (s_job ("j-unshipped")->reply, "您的订单 ORD-2024-002 待发货：暂无物流信息 （商品：智能手环）");
    CHECK_STR (s_job ("j-split")->reply,
               "您的订单 ORD-2024-888 运输中：京东物流 【北京市】快件正在派送中，派送员：张师傅（商品：机械键盘）");
    //  A long digit order number, URL path as it is
    s_start ("j-digits", "shop", "20240315001", NULL, 0);
    CHECK (s_run ("j-digits", 5000));
    CHECK (strstr (s_job ("j-digits")->reply, "已签收"));

    //  The message's other answers follow the API's, a blank line between, streamed too
    s_test.tail = "退货请在App「我的订单」里申请售后。";
    s_start ("j-tail", "shop", "ORD-2024-002", NULL, 0);
    s_test.tail = NULL;             //  Copied: the call outlives the turn's text
    CHECK (s_run ("j-tail", 5000));
    CHECK_STR (s_job ("j-tail")->reply, "您的订单 ORD-2024-002 待发货：暂无物流信息 （商品：智能手环）"
                                        "\n\n退货请在App「我的订单」里申请售后。");
    CHECK_STR (s_job ("j-tail")->tokens, s_job ("j-tail")->reply);
}

static void
s_check_post_by_phone (void)
{
    s_start ("j-phone", "post", NULL, "13812345678", 0);
    CHECK (s_run ("j-phone", 5000));
    CHECK_STR (s_job ("j-phone")->reply, "手机 13812345678 的订单 ORD-2024-001：已发货");
    char stats [8192];
    s_stats (stats);
    CHECK (strstr (stats, "\"last_method\":\"POST\""));
    CHECK (strstr (stats, "\"last_path\":\"/orders/query\""));
    //  The default body, the unknown order number empty (quotes dropped by the fake's stats)
    CHECK (strstr (stats, "\"last_body\":\"{order_no:,phone:13812345678}\""));
}

static void
s_check_failures (void)
{
    //  404 is an answer (not a failure): failed_attempts back to 0
    s_start ("j-404", "shop", "ORD-2024-404", NULL, 1);
    CHECK (s_run ("j-404", 5000));
    CHECK_STR (s_job ("j-404")->reply, "没有查到订单 ORD-2024-404，请核对后再试。");
    CHECK_STR (s_job ("j-404")->code, "not_found");
    CHECK_INT (s_job ("j-404")->failed_attempts, 0);
    const char *error = "抱歉，订单系统暂时无法查询，请稍后再试或输入“转人工”。";
    const struct { const char *job, *order, *code; } cases [] = {
        { "j-500", "ORD-2024-500", "http_500" },
        { "j-502", "ORD-2024-502", "http_502" },
        { "j-bad", "ORD-2024-777", "bad_json" }
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        s_start (cases [i].job, "shop", cases [i].order, NULL, 1);
        CHECK (s_run (cases [i].job, 5000));
        s_job_t *job = s_job (cases [i].job);
        CHECK_STR (job->reply, error);
        CHECK_STR (job->tokens, error);
        CHECK_STR (job->code, cases [i].code);
        CHECK_INT (job->failed_attempts, 2);
    }
    //  Nobody listening: the default error reply, at once
    int64_t start = kf_mono_us ();
    s_start ("j-down", "down", "ORD-2024-001", NULL, 0);
    CHECK (s_run ("j-down", 5000));
    CHECK_STR (s_job ("j-down")->reply, KF_CONFIG_DEFAULT_ERROR_REPLY);
    CHECK_STR (s_job ("j-down")->code, "connect_failed");
    CHECK_INT (s_job ("j-down")->failed_attempts, 1);
    CHECK (kf_mono_us () - start < 500000);
}

//  A call slower than timeout_ms gets the error reply after about timeout_ms, and a call started
//  after it is answered meanwhile
static void
s_check_timeout (void)
{
    long long closes = s_stat ("client_closes");
    int64_t start = kf_mono_us ();
    s_start ("j-slow", "shop", "ORD-2024-999", NULL, 0);
    s_start ("j-fast", "shop", "ORD-2024-001", NULL, 0);
    CHECK (s_run ("j-fast", 5000));
    CHECK (!s_job ("j-slow")->has_final);
    CHECK (s_job ("j-fast")->final_us - start < 400000);
    CHECK (s_run ("j-slow", 5000));
    s_job_t *slow = s_job ("j-slow");
    int64_t took_ms = (slow->final_us - start) / 1000;
    CHECK (took_ms >= 550 && took_ms < 2000);
    CHECK_STR (slow->code, "timeout");
    CHECK_INT (slow->failed_attempts, 1);
    CHECK_STR (slow->reply, "抱歉，订单系统暂时无法查询，请稍后再试或输入“转人工”。");
    for (int i = 0; i < 50 && s_stat ("client_closes") == closes; i++)
        usleep (20000);
    CHECK_INT (s_stat ("client_closes"), closes + 1);
}

//  No order number: ask_reply at once, no request
static void
s_check_ask (void)
{
    long long before = s_stat ("requests");
    CHECK_INT (s_start ("j-ask", "shop", NULL, "13812345678", 2), KF_BUSINESS_RUN_ANSWERED);
    s_job_t *job = s_job ("j-ask");
    CHECK (job->has_final);
    CHECK_STR (job->reply, KF_CONFIG_DEFAULT_ASK_REPLY);
    CHECK_STR (job->tokens, KF_CONFIG_DEFAULT_ASK_REPLY);
    CHECK_STR (job->code, "ask");
    CHECK_INT (job->failed_attempts, 2);
    CHECK_INT (s_start ("j-ask2", "post", "", "", 0), KF_BUSINESS_RUN_ANSWERED);
    CHECK_STR (s_job ("j-ask2")->reply, KF_CONFIG_DEFAULT_ASK_REPLY);
    s_test.tail = "（您的报修工单还未提交）";
    CHECK_INT (s_start ("j-ask3", "post", "", "", 0), KF_BUSINESS_RUN_ANSWERED);
    s_test.tail = NULL;
    CHECK_STR (s_job ("j-ask3")->reply, KF_CONFIG_DEFAULT_ASK_REPLY "\n\n（您的报修工单还未提交）");
    s_run (NULL, 100);
    CHECK_INT (s_stat ("requests"), before);
}

//  CANCEL ends the call silently, STOP with FINAL stopped; both close the connection
static void
s_check_cancel_stop (void)
{
    long long closes = s_stat ("client_closes");
    s_start ("j-cancel", "shop", "ORD-2024-999", NULL, 0);
    s_start ("j-stop", "shop", "ORD-2024-999", NULL, 3);
    s_run (NULL, 150);
    CHECK_INT (kf_business_stage_jobs (s_test.stage), 2);
    CHECK (kf_business_stage_cancel (s_test.stage, "j-cancel"));
    CHECK (!kf_business_stage_cancel (s_test.stage, "j-cancel"));
    CHECK (kf_business_stage_stop (s_test.stage, "j-stop"));
    CHECK (!kf_business_stage_stop (s_test.stage, "j-stop"));
    CHECK (!kf_business_stage_stop (s_test.stage, "j-ok"));
    CHECK_INT (kf_business_stage_jobs (s_test.stage), 0);
    s_job_t *stopped = s_job ("j-stop");
    CHECK (stopped->has_final && stopped->is_stopped);
    CHECK_STR (stopped->reply, "");
    CHECK_INT (stopped->token_count, 0);
    CHECK_INT (stopped->failed_attempts, 3);
    s_run (NULL, 1000);
    CHECK (!s_job ("j-cancel")->has_final);
    for (int i = 0; i < 50 && s_stat ("client_closes") < closes + 2; i++)
        usleep (20000);
    CHECK_INT (s_stat ("client_closes"), closes + 2);
}

//  A full stage answers with the error reply at once; a connection serves many calls
static void
s_check_full_and_keepalive (void)
{
    kf_business_stage_t *wide = s_test.stage;
    s_test.stage = kf_business_stage_new (s_test.config, 1, 2, s_send, NULL);
    CHECK_INT (s_start ("j-first", "shop", "ORD-2024-999", NULL, 0), KF_BUSINESS_RUN_CALLING);
    CHECK_INT (s_start ("j-second", "shop", "ORD-2024-001", NULL, 0), KF_BUSINESS_RUN_ANSWERED);
    CHECK_STR (s_job ("j-second")->code, "busy");
    CHECK_INT (s_job ("j-second")->failed_attempts, 1);
    kf_business_stage_destroy (&s_test.stage);          //  j-first silently
    CHECK (!s_job ("j-first")->has_final);
    s_test.stage = wide;

    long long connections = s_stat ("connections"), requests = s_stat ("requests");
    for (int i = 0; i < 5; i++) {
        char job_id [16];
        snprintf (job_id, sizeof job_id, "j-keep-%d", i);
        s_start (job_id, "shop", "ORD-2024-001", NULL, 0);
        CHECK (s_run (job_id, 5000));
        CHECK_STR (s_job (job_id)->code, "ok");
    }
    CHECK_INT (s_stat ("requests"), requests + 5);
    //  Three connections are the stats' own (one each, counted as they open); without keep-alive
    //  the five calls would add five more
    CHECK (s_stat ("connections") - connections <= 4);
}

int
main (void)
{
    snprintf (s_test.dir, sizeof s_test.dir, "/tmp/kefu-test-business-XXXXXX");
    CHECK (mkdtemp (s_test.dir));
    snprintf (s_test.config_path, sizeof s_test.config_path, "%s/kefu.conf", s_test.dir);
    snprintf (s_test.log_path, sizeof s_test.log_path, "%s/stderr.log", s_test.dir);
    //  Every log line at debug level goes to a file, searched for the key at the end
    int saved = dup (2);
    int log_fd = open (s_test.log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK (log_fd >= 0 && dup2 (log_fd, 2) == 2);
    close (log_fd);
    kf_log_set_level (KF_LOG_DEBUG);
    signal (SIGPIPE, SIG_IGN);
    s_start_fake ();
    setenv ("KEFU_TEST_SHOP_KEY", S_KEY, 1);
    s_write_config ();
    char err [512];
    s_test.config = kf_config_load (s_test.config_path, err, sizeof err);
    if (!s_test.config)
        fprintf (stderr, "config: %s\n", err);
    CHECK (s_test.config);
    s_test.stage = kf_business_stage_new (s_test.config, 16, 2, s_send, NULL);
    CHECK (kf_business_stage_api (s_test.stage, "anyone") == kf_config_business (s_test.config, "orders"));
    CHECK_STR (kf_business_stage_rules (s_test.stage, "post").order_pattern,
               KF_CONFIG_DEFAULT_ORDER_PATTERN);

    s_check_answered ();
    s_check_post_by_phone ();
    s_check_failures ();
    s_check_timeout ();
    s_check_ask ();
    s_check_cancel_stop ();
    s_check_full_and_keepalive ();

    kf_business_stage_destroy (&s_test.stage);
    CHECK_INT (s_test.freed, s_test.job_count);         //  Every turn's argument, once
    kf_config_destroy (&s_test.config);
    kill (s_test.server, SIGTERM);
    waitpid (s_test.server, NULL, 0);
    fflush (stderr);
    dup2 (saved, 2);
    FILE *log = fopen (s_test.log_path, "r");
    CHECK (log);
    char line [2048];
    int lines = 0;
    while (fgets (line, sizeof line, log)) {
        lines++;
        if (strstr (line, "SECRET"))
            fprintf (stderr, "key in the log: %s", line);
        CHECK (!strstr (line, "SECRET"));
    }
    fclose (log);
    CHECK (lines > 0);
    unlink (s_test.log_path);
    unlink (s_test.config_path);
    rmdir (s_test.dir);
    TEST_PASS ("test_business_client");
    return 0;
}
