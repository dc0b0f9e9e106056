/*  test_failover.c - workers die and nothing is lost: a supervised worker killed with SIGKILL is
    restarted; a job whose worker stops answering before publishing anything is requeued to another
    worker; a worker killed mid-stream ends that stream with an error event and a worker_lost reply. */
#include "harness.h"
#include "common/clock.h"
#include "common/log.h"
#include <signal.h>
#include <sys/wait.h>

static int64_t
s_first_worker_pid (kf_client_t *client)
{
    kf_reply_t *reply = h_call (client, "stats", NULL);
    const msgpack_object *workers = kf_mp_get (reply->result, "workers");
    int64_t pid = workers->via.array.size ? kf_mp_get_int (&workers->via.array.ptr [0], "pid", 0) : 0;
    kf_reply_destroy (&reply);
    return pid;
}

//  The broker restarts a local worker that was killed
static void
s_test_supervised_restart (void)
{
    kf_harness_t h;
    h_init (&h, "supervise");
    const char *args [] = { "--heartbeat-ms", "100", NULL };
    h_start_broker (&h, 1, args);
    kf_client_t *client = h_client (&h);
    int64_t pid = s_first_worker_pid (client);
    CHECK (pid > 0);
    CHECK_INT (kill ((pid_t) pid, SIGKILL), 0);
    int64_t deadline = kf_mono_ms () + 10000;
    int64_t replacement = 0;
    while ((replacement = s_first_worker_pid (client)) == 0 || replacement == pid) {
        CHECK (kf_mono_ms () < deadline);
        h_sleep_ms (50);
    }
    kf_reply_t *reply = h_call (client, "chat", "{\"message\":\"你好\"}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    kf_client_destroy (&client);
    h_cleanup (&h);
}

static int64_t
s_stat (kf_client_t *client, const char *name)
{
    kf_reply_t *reply = h_call (client, "stats", NULL);
    int64_t value = kf_mp_get_int (kf_mp_get (reply->result, "jobs"), name, -1);
    kf_reply_destroy (&reply);
    return value;
}

//  A worker that stops (SIGSTOP) holding a job: the broker notices the missed heartbeats and gives
//  the job to another worker; the client just gets its answer
static void
s_test_requeue (kf_harness_t *h)
{
    const char *worker_args [] = { "--heartbeat-ms", "100", NULL };
    pid_t first = h_start_worker (h, worker_args);
    h_wait_workers (h, 1, false);
    CHECK_INT (kill (first, SIGSTOP), 0);
    h_raw_t raw;
    h_raw_open (&raw, h);
    h_raw_send (&raw, "requeue-1", "chat", "{\"message\":\"怎么申请退货？\"}");
    h_sleep_ms (100);
    h_start_worker (h, worker_args);
    kf_reply_t *reply = h_raw_reply (&raw, 10000);
    CHECK (reply);
    CHECK (reply->ok);
    CHECK (strstr (h_str (reply->result, "reply"), "申请售后"));
    kf_reply_destroy (&reply);
    kf_client_t *client = h_client (h);
    CHECK (s_stat (client, "requeued") >= 1);
    CHECK (s_stat (client, "workers_lost") >= 1);
    kf_client_destroy (&client);
    kill (first, SIGKILL);
    h_raw_close (&raw);
}

//  A worker killed while streaming: error event, then a 500 worker_lost reply; the answer's
//  message is marked as failed in history
static void
s_test_lost_mid_stream (kf_harness_t *h)
{
    //  Only a slow worker is left, so the stream takes seconds
    for (int i = 0; i < h->worker_count; i++)
        kill (h->workers_pids [i], SIGKILL);
    h_wait_workers (h, 0, false);
    const char *slow_args [] = { "--heartbeat-ms", "100", "--pace-ms", "100", NULL };
    pid_t slow = h_start_worker (h, slow_args);
    h_wait_workers (h, 1, false);
    h_raw_t raw;
    h_raw_open (&raw, h);
    zmq_setsockopt (raw.sub, ZMQ_SUBSCRIBE, "midstream-1", 11);
    h_sleep_ms (100);
    h_raw_send (&raw, "midstream-1", "chat", "{\"message\":\"怎么申请退货？\",\"stream\":true}");
    //  Wait for meta and one token, then kill the worker
    char topic [64];
    msgpack_unpacked event;
    int64_t message_id = 0;
    for (int seen = 0; seen < 2; seen++) {
        CHECK (h_raw_event (&raw, 5000, topic, sizeof topic, &event));
        if (seen == 0) {
            CHECK (kf_mp_str_eq (&event.data, "event", "meta"));
            message_id = kf_mp_get_int (&event.data, "message_id", 0);
        }
        msgpack_unpacked_destroy (&event);
    }
    CHECK_INT (kill (slow, SIGKILL), 0);
    bool has_error_event = false;
    while (!has_error_event) {
        CHECK (h_raw_event (&raw, 5000, topic, sizeof topic, &event));
        if (kf_mp_str_eq (&event.data, "event", "error")) {
            has_error_event = true;
            CHECK (kf_mp_str_eq (kf_mp_get (&event.data, "error"), "name", "worker_lost"));
        }
        msgpack_unpacked_destroy (&event);
    }
    kf_reply_t *reply = h_raw_reply (&raw, 5000);
    CHECK (reply && !reply->ok);
    CHECK_INT (kf_errc_code (reply->error.errc), 500);
    CHECK_STR (kf_errc_name (reply->error.errc), "worker_lost");
    kf_reply_destroy (&reply);
    kf_client_t *client = h_client (h);
    reply = h_call (client, "message.get", "{\"message_id\":%lld}", (long long) message_id);
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "status"), "error");
    kf_reply_destroy (&reply);
    //  A new worker, and chat works again
    const char *fast_args [] = { "--heartbeat-ms", "100", NULL };
    h_start_worker (h, fast_args);
    h_wait_workers (h, 1, true);
    reply = h_call (client, "chat", "{\"message\":\"你好\"}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    kf_client_destroy (&client);
    h_raw_close (&raw);
}

int
main (void)
{
    s_test_supervised_restart ();
    kf_harness_t h;
    h_init (&h, "failover");
    const char *args [] = { "--heartbeat-ms", "100", "--liveness", "3", NULL };
    h_start_broker (&h, 0, args);
    //  The knowledge base, through a first worker that then goes away
    const char *worker_args [] = { "--heartbeat-ms", "100", NULL };
    pid_t first = h_start_worker (&h, worker_args);
    h_wait_workers (&h, 1, false);
    h_import_sample (&h);
    kill (first, SIGKILL);
    h_wait_workers (&h, 0, false);
    s_test_requeue (&h);
    s_test_lost_mid_stream (&h);
    h_cleanup (&h);
    TEST_PASS ("test_failover");
    return 0;
}
