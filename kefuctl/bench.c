/*  bench.c - `kefuctl bench`: starts its own broker with local workers and full persistence on
    loopback tcp, loads the sample knowledge base, and measures in one run:
      1. the floor: a raw DEALER -> ROUTER echo round trip on the same transport, to an echo
         thread of the bench and to an echo process of its own (as clients and broker are);
      2. peak FAQ chats per second (pipelined, many sessions) and their latency;
      3. latency at half of that peak (paced, open loop), against the floor;
      4. the time from sending a streamed chat to its meta event;
      5. a hot-answer cache hit, one chat at a time, against the floor;
      6. new connections one after another: connect, handshake and a first health reply.
    Phases 2-4 run with the answer cache off (every chat goes through a worker); phases 5-6 restart
    the broker on the same database with the cache on.
    With --curve every connection to the broker is CURVE (common/curve.h): a broker key pair and a
    client key pair are made in the scratch directory, the broker runs with --curve-key and
    --authorized-clients listing the bench client's key only (its local workers get their own pair
    from the broker), and every bench socket is a CURVE client. The floor is then measured twice:
    plain (the baseline every ratio is to, as without --curve) and over CURVE.
    Machines here are noisy: ratios against the floor measured in the same run are what to compare. */
#include "kefuctl/kefuctl.h"
#include "common/clock.h"
#include "common/curve.h"
#include "common/frames.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int duration_s;             //  Per throughput phase
    int window;                 //  Requests in flight in the peak phase
    int sessions;               //  Sessions the chats are spread over
    int workers;
    int port;                   //  Base port: requests, streams, workers, echo
    char dir [256];             //  Scratch directory with the database
    pid_t broker;
    char requests [64], streams [64], echo [64];
    bool is_curve;              //  --curve: every connection to the broker over CURVE
    kf_curve_t server;          //  The broker's key pair (also the CURVE echo's)
    kf_curve_t client;          //  The bench client's key pair, and the broker's public key
    char broker_key [320];      //  The broker's key file
    char clients_file [320];    //  Its authorized client keys
} s_bench_t;

static const char *s_questions [] = {
    "怎么申请退货？", "发票怎么开", "运费多少钱", "优惠券在哪里领？", "App 登录不了怎么办",
    "支持 Apple Pay 吗", "退款多久到账", "怎么修改收货地址", "你好", "VIP 会员有什么权益？"
};
#define S_QUESTIONS 10

static int
s_compare (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

static double
s_percentile (int64_t *samples, size_t count, double p)
{
    if (count == 0)
        return 0;
    qsort (samples, count, sizeof (int64_t), s_compare);
    size_t index = (size_t) (p / 100 * (count - 1) + 0.5);
    return samples [index] / 1000.0;      //  Microseconds -> milliseconds
}

//  --- The floor: raw echo ----------------------------------------------------------------------

static void *
s_echo (void *arg)
{
    void *router = arg;
    kf_frames_t frames;
    //  Ends when the main thread shuts the echo's context down (ETERM)
    while (kf_frames_recv (&frames, router, 0) == 0) {
        const void *data [KF_FRAMES_MAX];
        size_t size [KF_FRAMES_MAX];
        for (int i = 0; i < frames.count; i++) {
            data [i] = kf_frames_data (&frames, i);
            size [i] = kf_frames_size (&frames, i);
        }
        kf_frames_send (router, frames.count, data, size, 0);
        kf_frames_close (&frames);
    }
    int linger = 0;
    zmq_setsockopt (router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close (router);
    return NULL;
}

//  Packs a chat request body; `session` may be NULL
static void
s_pack_chat (msgpack_sbuffer *body, const char *id, const char *message, const char *session,
             bool is_stream)
{
    msgpack_sbuffer_clear (body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    kf_mp_pack_kv_str (&pk, "id", id);
    kf_mp_pack_kv_str (&pk, "method", "chat");
    kf_mp_pack_cstr (&pk, "params");
    msgpack_pack_map (&pk, 1 + (session != NULL) + is_stream);
    kf_mp_pack_kv_str (&pk, "message", message);
    if (session)
        kf_mp_pack_kv_str (&pk, "session_id", session);
    if (is_stream)
        kf_mp_pack_kv_bool (&pk, "stream", true);
}

//  Packs a health request body (no params)
static void
s_pack_health (msgpack_sbuffer *body, const char *id)
{
    msgpack_sbuffer_clear (body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_str (&pk, "id", id);
    kf_mp_pack_kv_str (&pk, "method", "health");
}

static int
s_send (void *dealer, msgpack_sbuffer *body)
{
    const void *data [2] = { KF_SIGNATURE, body->data };
    size_t size [2] = { KF_SIGNATURE_LEN, body->size };
    return kf_frames_send (dealer, 2, data, size, 0);
}

//  Connects a bench socket to the broker: a CURVE client with the bench's keys under --curve
static void
s_connect (s_bench_t *bench, void *socket, const char *endpoint)
{
    if (bench->is_curve && kf_curve_client_setup (socket, &bench->client))
        fprintf (stderr, "kefuctl bench: cannot make a socket a CURVE client: %s\n", zmq_strerror (errno));
    zmq_connect (socket, endpoint);
}

//  The echo of the floor between two processes: a child with a context of its own, as the broker
//  is to its clients; it echoes until it is killed
static pid_t
s_start_echo_process (s_bench_t *bench)
{
    pid_t pid = fork ();
    if (pid != 0)
        return pid;
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    void *echo_ctx = zmq_ctx_new ();
    void *router = zmq_socket (echo_ctx, ZMQ_ROUTER);
    if (zmq_bind (router, bench->echo) != 0)
        _exit (1);
    s_echo (router);
    _exit (0);
}

//  Serial round trips of a chat-sized request through the echo: the floor. The echo is a thread
//  of this process with a context of its own, or (`is_process`) another process. With `is_curve`
//  the echo is a CURVE server with the broker's key pair and the dealer a client with the bench's
//  (no ZAP handler: the handshake lets any key in; it happens once, before the warm-up ends)
static void
s_measure_floor (s_bench_t *bench, void *ctx, bool is_curve, bool is_process, int count, double *p50,
                 double *p99)
{
    void *echo_ctx = NULL;
    pthread_t thread;
    pid_t echo = is_process ? s_start_echo_process (bench) : -1;
    if (!is_process) {
        echo_ctx = zmq_ctx_new ();
        void *router = zmq_socket (echo_ctx, ZMQ_ROUTER);
        if (is_curve) {
            int on = 1;
            zmq_setsockopt (router, ZMQ_CURVE_SERVER, &on, sizeof on);
            zmq_setsockopt (router, ZMQ_CURVE_SECRETKEY, bench->server.secret_key, KF_CURVE_KEY_LEN + 1);
        }
        zmq_bind (router, bench->echo);
        pthread_create (&thread, NULL, s_echo, router);
    }
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    if (is_curve)
        kf_curve_client_setup (dealer, &bench->client);
    zmq_connect (dealer, bench->echo);
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    int64_t *samples = kf_calloc (count, sizeof (int64_t));
    for (int i = -100; i < count; i++) {        //  100 warm-up trips
        char id [32];
        snprintf (id, sizeof id, "floor-%d", i);
        s_pack_chat (&body, id, s_questions [0], NULL, false);
        int64_t start = kf_mono_us ();
        s_send (dealer, &body);
        kf_frames_t frames;
        kf_frames_recv (&frames, dealer, 0);
        kf_frames_close (&frames);
        if (i >= 0)
            samples [i] = kf_mono_us () - start;
    }
    *p50 = s_percentile (samples, count, 50);
    *p99 = s_percentile (samples, count, 99);
    free (samples);
    msgpack_sbuffer_destroy (&body);
    int linger = 0;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close (dealer);
    if (is_process) {
        kill (echo, SIGKILL);
        waitpid (echo, NULL, 0);
        return;
    }
    zmq_ctx_shutdown (echo_ctx);
    pthread_join (thread, NULL);
    zmq_ctx_term (echo_ctx);
}

//  --- The broker under test ---------------------------------------------------------------------

static int
s_start_broker (s_bench_t *bench, int cache_mb)
{
    char self_path [PATH_MAX], broker [PATH_MAX], workers_ep [64], db [300], count [16];
    ssize_t n = readlink ("/proc/self/exe", self_path, sizeof self_path - 1);
    self_path [n > 0 ? n : 0] = 0;
    snprintf (broker, sizeof broker, "%s/kefu-broker", dirname (self_path));
    snprintf (workers_ep, sizeof workers_ep, "tcp://127.0.0.1:%d", bench->port + 2);
    snprintf (db, sizeof db, "%s/bench.db", bench->dir);
    snprintf (count, sizeof count, "%d", bench->workers);
    char cache [16];
    snprintf (cache, sizeof cache, "%d", cache_mb);
    bench->broker = fork ();
    if (bench->broker == 0) {
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        char log [320];
        snprintf (log, sizeof log, "%s/broker.log", bench->dir);
        FILE *out = freopen (log, "a", stderr);
        (void) out;
        //  The caller's CURVE settings are for its own broker, not this one: the broker gives its
        //  local workers the keys they need (or none, when plain)
        unsetenv ("KEFU_BROKER_KEY");
        unsetenv ("KEFU_CURVE_KEY");
        char *args [24] = { broker, "--requests", bench->requests, "--streams", bench->streams,
                            "--workers-endpoint", workers_ep, "--db", db, "--workers", count,
                            "--max-pending", "100000", "--cache-mb", cache };
        int argc = 15;
        if (bench->is_curve) {
            args [argc++] = "--curve-key";
            args [argc++] = bench->broker_key;
            args [argc++] = "--authorized-clients";
            args [argc++] = bench->clients_file;
        }
        args [argc] = NULL;
        execv (broker, args);
        _exit (127);
    }
    return bench->broker > 0 ? 0 : -1;
}

//  --curve: makes the broker's and the client's key pairs in the scratch directory as an operator
//  would (kefuctl keygen), lists the client's public key in the broker's authorized clients, and
//  reads the client's keys back as a client does (kf_curve_client_config). Returns 0, or -1 (said)
static int
s_make_keys (s_bench_t *bench)
{
    char why [512] = "", base [320], own [320], server [320];
    kf_curve_t client;
    if (kf_curve_keypair (&bench->server) || kf_curve_keypair (&client)) {
        fprintf (stderr, "kefuctl bench: this libzmq has no CURVE support\n");
        return -1;
    }
    snprintf (base, sizeof base, "%s/broker", bench->dir);
    int rc = kf_curve_write (&bench->server, base, why, sizeof why);
    snprintf (base, sizeof base, "%s/client", bench->dir);
    if (rc == 0)
        rc = kf_curve_write (&client, base, why, sizeof why);
    snprintf (bench->clients_file, sizeof bench->clients_file, "%s/authorized-clients", bench->dir);
    FILE *file = rc == 0 ? fopen (bench->clients_file, "w") : NULL;
    if (file) {
        fprintf (file, "# kefuctl bench: its client\n%s\n", client.public_key);
        if (fclose (file))
            file = NULL;
    }
    kf_curve_wipe (&client);
    if (rc == 0 && !file) {
        snprintf (why, sizeof why, "cannot write %s: %s", bench->clients_file, strerror (errno));
        rc = -1;
    }
    snprintf (bench->broker_key, sizeof bench->broker_key, "%s/broker.key", bench->dir);
    snprintf (server, sizeof server, "%s/broker.pub", bench->dir);
    snprintf (own, sizeof own, "%s/client.key", bench->dir);
    if (rc == 0 && kf_curve_client_config (&bench->client, server, own, why, sizeof why) != 1)
        rc = -1;
    if (rc)
        fprintf (stderr, "kefuctl bench: %s\n", why);
    return rc;
}

//  Waits for the workers, loads the sample knowledge base, creates the sessions
static char **
s_prepare (s_bench_t *bench, kf_client_t *client)
{
    int64_t deadline = kf_mono_ms () + 15000;
    while (true) {
        kf_reply_t *reply = NULL;
        if (kf_client_call (client, "health", NULL, 0, &reply) == 0 && reply->ok
        &&  kf_mp_get_int (reply->result, "workers", 0) >= bench->workers) {
            kf_reply_destroy (&reply);
            break;
        }
        kf_reply_destroy (&reply);
        if (kf_mono_ms () > deadline)
            return NULL;
        usleep (50000);
    }
    char *args [] = { "data/sample-kb.jsonl", NULL };
    char path [PATH_MAX];
    const char *candidates [] = { "deploy/sample-kb.jsonl", "../deploy/sample-kb.jsonl",
                                  KEFU_SOURCE_DIR "/deploy/sample-kb.jsonl", NULL };
    for (int i = 0; candidates [i]; i++)
        if (access (candidates [i], R_OK) == 0) {
            snprintf (path, sizeof path, "%s", candidates [i]);
            args [0] = path;
            break;
        }
    int saved = dup (1);                        //  Keep the import's summary out of the report
    int null = open ("/dev/null", O_WRONLY);
    dup2 (null, 1);
    int rc = kefuctl_kb_import (client, 1, args);
    fflush (stdout);
    dup2 (saved, 1);
    close (null);
    close (saved);
    if (rc)
        return NULL;
    //  Each session asks one question over and over (sessions are used in turn, questions too):
    //  the bot would hand such a session to people (repeated question, issue 5) and the rest of
    //  its chats would never reach a worker. The bench measures the bot: handoffs off.
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    kefuctl_json_params ("{\"bot_id\":\"default\",\"handoff\":{\"failed_attempts\":0,"
                         "\"emotion_below\":0,\"repeated_question\":0}}", &params);
    kf_reply_t *update = kefuctl_call (client, "bot.update", &params);
    msgpack_sbuffer_destroy (&params);
    if (!update)
        return NULL;
    kf_reply_destroy (&update);
    usleep (600000);                            //  Workers poll the knowledge-base version
    char **sessions = kf_calloc (bench->sessions, sizeof (char *));
    for (int i = 0; i < bench->sessions; i++) {
        kf_reply_t *reply = NULL;
        if (kf_client_call (client, "session.create", NULL, 0, &reply) || !reply->ok)
            return NULL;
        sessions [i] = kf_mp_dup_str (reply->result, "session_id");
        kf_reply_destroy (&reply);
    }
    return sessions;
}

//  --- Load ---------------------------------------------------------------------------------------

typedef struct {
    int64_t *latencies;         //  Microseconds
    size_t count, capacity;
    size_t errors;
    double seconds;
} s_run_t;

//  Runs chats for `seconds`: closed loop with `window` in flight when `rate` is 0, else open loop at
//  `rate` chats per second. Each in-flight chat uses its own session.
static void
s_run (s_bench_t *bench, void *ctx, char **sessions, int window, double rate, int seconds, s_run_t *run)
{
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    int hwm = 0;
    zmq_setsockopt (dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (dealer, ZMQ_RCVHWM, &hwm, sizeof hwm);
    s_connect (bench, dealer, bench->requests);
    memset (run, 0, sizeof *run);
    run->capacity = 1 << 20;
    run->latencies = kf_malloc (run->capacity * sizeof (int64_t));
    int64_t *sent_at = kf_calloc (bench->sessions, sizeof (int64_t));
    bool *is_busy = kf_calloc (bench->sessions, sizeof (bool));
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    int64_t start = kf_mono_us (), end = start + seconds * 1000000LL, next_send = start;
    int in_flight = 0, cursor = 0;
    uint64_t sent = 0;
    while (true) {
        int64_t now = kf_mono_us ();
        bool is_open = now < end;
        //  Send what the window or the rate allows, on a free session
        while (is_open && (rate > 0 ? now >= next_send && in_flight < bench->sessions : in_flight < window)) {
            int session = -1;
            for (int tries = 0; tries < bench->sessions && session < 0; tries++, cursor = (cursor + 1) % bench->sessions)
                if (!is_busy [cursor])
                    session = cursor;
            if (session < 0)
                break;
            char id [32];
            snprintf (id, sizeof id, "%d", session);
            s_pack_chat (&body, id, s_questions [sent % S_QUESTIONS], sessions [session], false);
            s_send (dealer, &body);
            is_busy [session] = true;
            sent_at [session] = kf_mono_us ();
            in_flight++;
            sent++;
            next_send += rate > 0 ? (int64_t) (1000000 / rate) : 0;
        }
        if (!is_open && in_flight == 0)
            break;
        //  Paced sends: sleep until the next one is due rather than spin (a spinning generator
        //  steals a core from the broker on a 2-core machine) or burst in 1 ms ticks
        long wait = 100;
        if (rate > 0 && is_open) {
            int64_t due_us = next_send - kf_mono_us ();
            if (due_us > 0 && due_us < 1000) {
                struct timespec ts = { 0, due_us * 1000 };
                nanosleep (&ts, NULL);
            }
            wait = due_us >= 1000 ? due_us / 1000 : 0;
        }
        zmq_pollitem_t item = { dealer, 0, ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, wait);
        kf_frames_t frames;
        while (kf_frames_recv (&frames, dealer, ZMQ_DONTWAIT) == 0) {
            msgpack_unpacked reply;
            if (frames.count == 2 && kf_mp_unpack_one (kf_frames_data (&frames, 1), kf_frames_size (&frames, 1), &reply)) {
                int session = -1;
                const char *id;
                size_t len;
                if (kf_mp_str (kf_mp_get (&reply.data, "id"), &id, &len) && len < 16) {
                    char buffer [16];
                    snprintf (buffer, sizeof buffer, "%.*s", (int) len, id);
                    session = atoi (buffer);
                }
                if (session >= 0 && session < bench->sessions && is_busy [session]) {
                    if (!kf_mp_get_bool (&reply.data, "ok", false))
                        run->errors++;
                    else
                    if (run->count < run->capacity)
                        run->latencies [run->count++] = kf_mono_us () - sent_at [session];
                    is_busy [session] = false;
                    in_flight--;
                }
                msgpack_unpacked_destroy (&reply);
            }
            kf_frames_close (&frames);
        }
    }
    run->seconds = (kf_mono_us () - start) / 1e6;
    msgpack_sbuffer_destroy (&body);
    free (sent_at);
    free (is_busy);
    int linger = 0;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close (dealer);
}

//  Serial streamed chats: time from send to the meta event
static void
s_measure_meta (s_bench_t *bench, void *ctx, char **sessions, int count, double *p50, double *p99)
{
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    void *sub = zmq_socket (ctx, ZMQ_SUB);
    s_connect (bench, dealer, bench->requests);
    s_connect (bench, sub, bench->streams);
    int64_t *samples = kf_calloc (count, sizeof (int64_t));
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    for (int i = 0; i < count; i++) {
        char id [32];
        snprintf (id, sizeof id, "meta-%d", i);
        s_pack_chat (&body, id, s_questions [i % S_QUESTIONS], sessions [i % bench->sessions], true);
        //  As a client does it: subscribe, then send at once. The time includes the broker
        //  waiting for the subscription when the request overtakes it.
        int64_t start = kf_mono_us ();
        zmq_setsockopt (sub, ZMQ_SUBSCRIBE, id, strlen (id));
        s_send (dealer, &body);
        //  Read the stream through to its end, so no stale events queue up ahead of the next meta
        bool has_reply = false, has_meta = false, has_end = false;
        while (!has_reply || !has_end) {
            zmq_pollitem_t items [2] = { { sub, 0, ZMQ_POLLIN, 0 }, { dealer, 0, ZMQ_POLLIN, 0 } };
            if (zmq_poll (items, 2, 5000) <= 0)
                break;
            kf_frames_t frames;
            while ((items [0].revents & ZMQ_POLLIN) && kf_frames_recv (&frames, sub, ZMQ_DONTWAIT) == 0) {
                if (kf_frames_is (&frames, 0, id)) {
                    if (!has_meta)
                        samples [i] = kf_mono_us () - start;
                    has_meta = true;
                    msgpack_unpacked event;
                    if (frames.count == 2
                    &&  kf_mp_unpack_one (kf_frames_data (&frames, 1), kf_frames_size (&frames, 1), &event)) {
                        has_end = kf_mp_str_eq (&event.data, "event", "done")
                               || kf_mp_str_eq (&event.data, "event", "error");
                        msgpack_unpacked_destroy (&event);
                    }
                }
                kf_frames_close (&frames);
            }
            if ((items [1].revents & ZMQ_POLLIN) && kf_frames_recv (&frames, dealer, 0) == 0) {
                has_reply = true;
                kf_frames_close (&frames);
            }
        }
        zmq_setsockopt (sub, ZMQ_UNSUBSCRIBE, id, strlen (id));
    }
    *p50 = s_percentile (samples, count, 50);
    *p99 = s_percentile (samples, count, 99);
    free (samples);
    msgpack_sbuffer_destroy (&body);
    int linger = 0;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (sub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close (dealer);
    zmq_close (sub);
}

//  Chats one at a time with a question whose answer the cache holds (after a first ask fills it);
//  the answer must come back marked cached. Returns the share of hits. With `is_health`, sends
//  health instead: the broker's round trip without a database write.
static double
s_measure_serial (s_bench_t *bench, void *ctx, char **sessions, int count, bool is_health,
                  double *p50, double *p99)
{
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    s_connect (bench, dealer, bench->requests);
    int64_t *samples = kf_calloc (count, sizeof (int64_t));
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    int hits = 0, measured = 0;
    for (int i = -50; i < count; i++) {         //  The first ones fill the cache and warm up
        char id [32];
        snprintf (id, sizeof id, "hit-%d", i);
        if (is_health)
            s_pack_health (&body, id);
        else
            s_pack_chat (&body, id, "怎么申请退货？", sessions [(i + 50) % bench->sessions], false);
        int64_t start = kf_mono_us ();
        s_send (dealer, &body);
        kf_frames_t frames;
        zmq_pollitem_t item = { dealer, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 5000) <= 0 || kf_frames_recv (&frames, dealer, 0))
            break;
        int64_t elapsed = kf_mono_us () - start;
        msgpack_unpacked reply;
        bool is_hit = frames.count == 2
                   && kf_mp_unpack_one (kf_frames_data (&frames, 1), kf_frames_size (&frames, 1), &reply);
        if (is_hit) {
            is_hit = kf_mp_get_bool (kf_mp_get (&reply.data, "result"), "cached", false);
            msgpack_unpacked_destroy (&reply);
        }
        kf_frames_close (&frames);
        if (i >= 0) {
            samples [measured++] = elapsed;
            hits += is_hit;
        }
    }
    *p50 = s_percentile (samples, measured, 50);
    *p99 = s_percentile (samples, measured, 99);
    free (samples);
    msgpack_sbuffer_destroy (&body);
    int linger = 0;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close (dealer);
    return measured ? (double) hits / measured : 0;
}

//  The broker's commit counter from stats, -1 when unavailable
static int64_t
s_commits (kf_client_t *client)
{
    kf_reply_t *reply = NULL;
    int64_t commits = -1;
    if (kf_client_call (client, "stats", NULL, 0, &reply) == 0 && reply->ok)
        commits = kf_mp_get_int (reply->result, "commits", -1);
    kf_reply_destroy (&reply);
    return commits;
}

//  CPU seconds (user + system) a process has used so far, from /proc; 0 when unreadable
static double
s_cpu_seconds (pid_t pid)
{
    char path [64], line [1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return 0;
    size_t n = fread (line, 1, sizeof line - 1, file);
    fclose (file);
    line [n] = 0;
    //  Fields after the command name (which may hold spaces) start past the last ')'
    char *rest = strrchr (line, ')');
    unsigned long utime = 0, stime = 0;
    if (rest && sscanf (rest + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) == 2)
        return (double) (utime + stime) / sysconf (_SC_CLK_TCK);
    return 0;
}

//  CPU seconds the children of `pid` (the broker's local workers) have used so far
static double
s_children_cpu_seconds (pid_t pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/task", (int) pid);
    DIR *tasks = opendir (path);
    double seconds = 0;
    struct dirent *task;
    while (tasks && (task = readdir (tasks))) {
        if (task->d_name [0] == '.')
            continue;
        char children [300];
        snprintf (children, sizeof children, "%s/%.32s/children", path, task->d_name);
        FILE *file = fopen (children, "r");
        int child;
        while (file && fscanf (file, "%d", &child) == 1)
            seconds += s_cpu_seconds (child);
        if (file)
            fclose (file);
    }
    if (tasks)
        closedir (tasks);
    return seconds;
}

//  New connections one after another: a fresh socket connects (with the CURVE handshake and the
//  broker's ZAP check under --curve), sends health and waits for its reply
static void
s_measure_connect (s_bench_t *bench, void *ctx, int count, double *p50, double *p99)
{
    int64_t *samples = kf_calloc (count, sizeof (int64_t));
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    int measured = 0;
    for (int i = -10; i < count; i++) {
        char id [32];
        snprintf (id, sizeof id, "connect-%d", i);
        s_pack_health (&body, id);
        int64_t start = kf_mono_us ();
        void *dealer = zmq_socket (ctx, ZMQ_DEALER);
        int linger = 0;
        zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
        s_connect (bench, dealer, bench->requests);
        s_send (dealer, &body);
        kf_frames_t frames;
        zmq_pollitem_t item = { dealer, 0, ZMQ_POLLIN, 0 };
        bool is_ok = zmq_poll (&item, 1, 5000) == 1 && kf_frames_recv (&frames, dealer, 0) == 0;
        int64_t elapsed = kf_mono_us () - start;
        if (is_ok)
            kf_frames_close (&frames);
        zmq_close (dealer);
        if (!is_ok)
            break;
        if (i >= 0)
            samples [measured++] = elapsed;
    }
    *p50 = s_percentile (samples, measured, 50);
    *p99 = s_percentile (samples, measured, 99);
    free (samples);
    msgpack_sbuffer_destroy (&body);
}

static void
s_machine (char *out, size_t size)
{
    char model [256] = "unknown CPU";
    FILE *file = fopen ("/proc/cpuinfo", "r");
    char line [512];
    while (file && fgets (line, sizeof line, file))
        if (strncmp (line, "model name", 10) == 0) {
            char *colon = strchr (line, ':');
            snprintf (model, sizeof model, "%.200s", colon ? colon + 2 : line);
            model [strcspn (model, "\n")] = 0;
            break;
        }
    if (file)
        fclose (file);
    snprintf (out, size, "%ld cores, %s", sysconf (_SC_NPROCESSORS_ONLN), model);
}

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: kefuctl bench [--duration S] [--window N] [--sessions N] [--workers N] [--port BASE]\n"
        "                     [--curve]\n"
        "Starts its own kefu-broker with N local workers (default 2) and a fresh database in a scratch\n"
        "directory, on tcp://127.0.0.1 ports BASE to BASE+3 (default 27700), and prints one run as a\n"
        "Markdown table: the raw echo floor; peak FAQ chats/s with --window chats in flight (default\n"
        "256) for --duration seconds (default 5), spread over --sessions sessions (default 2000);\n"
        "latency at half of peak; one chat at a time; a streamed chat to its meta event; then, with the\n"
        "answer cache on, cache hits and health one at a time, and new connections. See BENCHMARKS.md.\n"
        "  --curve   every connection to the broker over CURVE: a broker and a client key pair are made\n"
        "            in the scratch directory, the broker runs with --curve-key and --authorized-clients\n"
        "            (the bench client's key only; its local workers get their own pair from it), and\n"
        "            the floor is measured over CURVE too. Ratios stay to the plain floor.\n");
}

int
kefuctl_bench (const kefuctl_options_t *options, int argc, char **argv)
{
    (void) options;             //  The bench runs its own broker: kefuctl's endpoints and keys are not used
    s_bench_t bench = { .duration_s = 5, .window = 256, .sessions = 2000, .workers = 2, .port = 27700 };
    for (int i = 0; i < argc; i++) {
        const char *arg = argv [i];
        int *number = strcmp (arg, "--duration") == 0 ? &bench.duration_s
                    : strcmp (arg, "--window") == 0   ? &bench.window
                    : strcmp (arg, "--sessions") == 0 ? &bench.sessions
                    : strcmp (arg, "--workers") == 0  ? &bench.workers
                    : strcmp (arg, "--port") == 0     ? &bench.port : NULL;
        if (strcmp (arg, "--curve") == 0)
            bench.is_curve = true;
        else
        if (number && i + 1 < argc)
            *number = atoi (argv [++i]);
        else {
            bool is_help = strcmp (arg, "--help") == 0;
            s_usage (is_help ? stdout : stderr);
            return is_help ? 0 : 2;
        }
    }
    if (bench.duration_s < 1 || bench.window < 1 || bench.sessions < bench.window || bench.workers < 1) {
        fprintf (stderr, "kefuctl bench: sessions must be >= window, all values positive\n");
        return 2;
    }
    snprintf (bench.dir, sizeof bench.dir, "/tmp/kefu-bench-XXXXXX");
    if (!mkdtemp (bench.dir))
        return 2;
    snprintf (bench.requests, sizeof bench.requests, "tcp://127.0.0.1:%d", bench.port);
    snprintf (bench.streams, sizeof bench.streams, "tcp://127.0.0.1:%d", bench.port + 1);
    snprintf (bench.echo, sizeof bench.echo, "tcp://127.0.0.1:%d", bench.port + 3);
    if (bench.is_curve && s_make_keys (&bench)) {
        char command [320];
        snprintf (command, sizeof command, "rm -rf '%s'", bench.dir);
        if (system (command) != 0)
            fprintf (stderr, "kefuctl bench: could not remove %s\n", bench.dir);
        return 2;
    }
    const kf_curve_t *curve = bench.is_curve ? &bench.client : NULL;
    void *ctx = zmq_ctx_new ();
    double floor50, floor99, process50, process99, curve_floor50 = 0, curve_floor99 = 0;
    s_measure_floor (&bench, ctx, false, false, 20000, &floor50, &floor99);
    s_measure_floor (&bench, ctx, false, true, 20000, &process50, &process99);
    if (bench.is_curve)
        s_measure_floor (&bench, ctx, true, false, 20000, &curve_floor50, &curve_floor99);
    if (s_start_broker (&bench, 0))
        return 2;
    kf_client_t *client = kf_client_new_curve (bench.requests, bench.streams, curve);
    kf_client_set_timeout (client, 5000);
    char **sessions = s_prepare (&bench, client);
    int rc = 3;
    if (!sessions) {
        fprintf (stderr, "kefuctl bench: the broker did not come up (see %s/broker.log)\n", bench.dir);
        goto done;
    }
    s_run_t peak, half;
    s_run (&bench, ctx, sessions, bench.window, 0, 1, &peak);          //  Warm-up
    free (peak.latencies);
    double cpu_before = s_cpu_seconds (bench.broker);
    double workers_before = s_children_cpu_seconds (bench.broker), self_before = s_cpu_seconds (getpid ());
    int64_t commits_before = s_commits (client);
    s_run (&bench, ctx, sessions, bench.window, 0, bench.duration_s, &peak);
    int64_t peak_commits = s_commits (client) - commits_before;
    double broker_us_per_chat = peak.count ? (s_cpu_seconds (bench.broker) - cpu_before) * 1e6 / peak.count : 0;
    double workers_us_per_chat = peak.count ? (s_children_cpu_seconds (bench.broker) - workers_before) * 1e6 / peak.count : 0;
    double self_us_per_chat = peak.count ? (s_cpu_seconds (getpid ()) - self_before) * 1e6 / peak.count : 0;
    double peak_rate = peak.count / peak.seconds;
    double peak50 = s_percentile (peak.latencies, peak.count, 50);
    double peak99 = s_percentile (peak.latencies, peak.count, 99);
    commits_before = s_commits (client);
    cpu_before = s_cpu_seconds (bench.broker);
    s_run (&bench, ctx, sessions, 0, peak_rate / 2, bench.duration_s, &half);
    double half_cpu = s_cpu_seconds (bench.broker) - cpu_before;
    int64_t half_commits = s_commits (client) - commits_before;
    double inside50 = 0, inside99 = 0;          //  The broker's own view of the half-peak phase
    kf_reply_t *stats = NULL;
    if (kf_client_call (client, "stats", NULL, 0, &stats) == 0 && stats->ok) {
        inside50 = kf_mp_get_double (kf_mp_get (stats->result, "latency_ms"), "p50", 0);
        inside99 = kf_mp_get_double (kf_mp_get (stats->result, "latency_ms"), "p99", 0);
    }
    kf_reply_destroy (&stats);
    s_run_t serial;
    s_run (&bench, ctx, sessions, 1, 0, 2, &serial);
    double serial50 = s_percentile (serial.latencies, serial.count, 50);
    double serial99 = s_percentile (serial.latencies, serial.count, 99);
    double half50 = s_percentile (half.latencies, half.count, 50);
    double half99 = s_percentile (half.latencies, half.count, 99);
    double meta50, meta99;
    s_measure_meta (&bench, ctx, sessions, 2000, &meta50, &meta99);
    //  The same database, now with the hot-answer cache on
    kf_client_destroy (&client);
    kill (bench.broker, SIGTERM);
    waitpid (bench.broker, NULL, 0);
    double hit50 = 0, hit99 = 0, hit_rate = 0, health50 = 0, health99 = 0, connect50 = 0, connect99 = 0;
    if (s_start_broker (&bench, 64) == 0) {
        client = kf_client_new_curve (bench.requests, bench.streams, curve);
        kf_client_set_timeout (client, 5000);
        int64_t deadline = kf_mono_ms () + 15000;
        kf_reply_t *health = NULL;
        while (kf_mono_ms () < deadline) {
            kf_client_call (client, "health", NULL, 0, &health);
            bool is_up = health && health->ok && kf_mp_get_int (health->result, "workers", 0) >= bench.workers;
            kf_reply_destroy (&health);
            if (is_up)
                break;
            usleep (50000);
        }
        hit_rate = s_measure_serial (&bench, ctx, sessions, 5000, false, &hit50, &hit99);
        s_measure_serial (&bench, ctx, sessions, 5000, true, &health50, &health99);
        s_measure_connect (&bench, ctx, 500, &connect50, &connect99);
    }
    //  Under --curve, the broker's own count of the handshakes it let in: proof the run was CURVE
    int64_t clients_in = -1, clients_out = -1, workers_in = -1;
    kf_reply_t *security = NULL;
    if (bench.is_curve && client && kf_client_call (client, "stats", NULL, 0, &security) == 0 && security->ok) {
        const msgpack_object *zap = kf_mp_get (security->result, "security");
        clients_in = kf_mp_get_int (kf_mp_get (zap, "clients"), "allowed", -1);
        clients_out = kf_mp_get_int (kf_mp_get (zap, "clients"), "denied", -1);
        workers_in = kf_mp_get_int (kf_mp_get (zap, "workers"), "allowed", -1);
    }
    kf_reply_destroy (&security);
    char machine [320];
    s_machine (machine, sizeof machine);
    printf ("## kefuctl bench\n\n");
    printf ("- command: `kefuctl bench --duration %d --window %d --sessions %d --workers %d%s`\n",
            bench.duration_s, bench.window, bench.sessions, bench.workers, bench.is_curve ? " --curve" : "");
    printf ("- machine: %s\n", machine);
    printf ("- transport: tcp loopback%s; broker with %d local workers, SQLite WAL, every turn committed\n",
            bench.is_curve ? ", CURVE on every connection to the broker (clients and workers)" : "",
            bench.workers);
    if (bench.is_curve)
        printf ("- CURVE handshakes of the cache-on broker (stats.security): clients %lld let in, %lld refused;"
                " workers %lld let in\n", (long long) clients_in, (long long) clients_out, (long long) workers_in);
    printf ("\n");
    printf ("| measure | value | ratio to %sfloor p50 |\n|---|---|---|\n", bench.is_curve ? "plain " : "");
    printf ("| floor: raw DEALER->ROUTER echo round trip p50 / p99 | %.3f / %.3f ms | 1.0 |\n", floor50, floor99);
    printf ("| floor between two processes: the same echo in a process of its own p50 / p99 | %.3f / %.3f ms | %.2f |\n",
            process50, process99, process50 / floor50);
    if (bench.is_curve)
        printf ("| floor over CURVE: the same echo, CURVE server and client p50 / p99 | %.3f / %.3f ms | %.2f |\n",
                curve_floor50, curve_floor99, curve_floor50 / floor50);
    printf ("| peak FAQ chats/s (window %d) | %.0f/s (%zu chats, %zu errors) | |\n", bench.window,
            peak_rate, peak.count, peak.errors);
    printf ("| broker CPU per chat at peak / at half of peak | %.1f / %.1f µs | |\n", broker_us_per_chat,
            half.count ? half_cpu * 1e6 / half.count : 0);
    printf ("| workers (all) / bench client CPU per chat at peak | %.1f / %.1f µs | |\n",
            workers_us_per_chat, self_us_per_chat);
    printf ("| broker busy at half of peak | %.0f%% of a core | |\n", half.seconds > 0 ? half_cpu * 100 / half.seconds : 0);
    printf ("| chats per commit at peak / at half of peak | %.1f / %.1f | |\n",
            peak_commits > 0 ? (double) peak.count / peak_commits : 0,
            half_commits > 0 ? (double) half.count / half_commits : 0);
    printf ("| latency at peak p50 / p99 | %.3f / %.3f ms | %.1f |\n", peak50, peak99, peak50 / floor50);
    printf ("| latency at half of peak (%.0f/s, %zu chats) p50 / p99 | %.3f / %.3f ms | %.1f |\n",
            peak_rate / 2, half.count, half50, half99, half50 / floor50);
    printf ("| the same, inside the broker (accept to reply) p50 / p99 | %.3f / %.3f ms | %.1f |\n",
            inside50, inside99, inside50 / floor50);
    printf ("| one chat at a time p50 / p99 | %.3f / %.3f ms | %.1f |\n", serial50, serial99,
            serial50 / floor50);
    printf ("| streamed chat: send -> meta event p50 / p99 | %.3f / %.3f ms | %.1f |\n", meta50, meta99,
            meta50 / floor50);
    printf ("| health through the broker, one at a time (no database write) p50 / p99 | %.3f / %.3f ms | %.2f |\n",
            health50, health99, health50 / floor50);
    printf ("| hot-answer cache hit, one chat at a time (%.0f%% hits) p50 / p99 | %.3f / %.3f ms | %.2f |\n",
            hit_rate * 100, hit50, hit99, hit50 / floor50);
    printf ("| new connection, one at a time: connect, handshake, first health reply p50 / p99 | %.3f / %.3f ms | %.1f |\n",
            connect50, connect99, connect50 / floor50);
    free (peak.latencies);
    free (half.latencies);
    free (serial.latencies);
    for (int i = 0; i < bench.sessions; i++)
        free (sessions [i]);
    free (sessions);
    rc = 0;
done:
    kf_client_destroy (&client);
    zmq_ctx_term (ctx);
    if (bench.broker > 0) {
        kill (bench.broker, SIGTERM);
        waitpid (bench.broker, NULL, 0);
    }
    kf_curve_wipe (&bench.server);
    kf_curve_wipe (&bench.client);
    char command [320];
    snprintf (command, sizeof command, "rm -rf '%s'", bench.dir);
    if (system (command) != 0)
        fprintf (stderr, "kefuctl bench: could not remove %s\n", bench.dir);
    return rc;
}
