/*  llm_bench.c - LLM streaming at scale (BENCHMARKS.md, "LLM streaming (issue 6)"): how many
    streamed chats a broker with 2 workers holds open at once against a paced upstream, with
    correct output, what an open stream costs in memory, and how much latency a token gains on its
    way from the upstream to the client.

        llm_bench [--streams N] [--tokens T] [--delay-ms D] [--rate R] [--workers W]
                  [--port BASE] [--bin-dir DIR] [--keep]

    Starts the fake upstream (tests/fake/fake_upstream.c, tcp on 127.0.0.1), a kefu-broker on
    tcp ports BASE..BASE+2 (default 27800) and W kefu-workers (default 2) started by the bench
    itself with --capacity and --max-llm N, from DIR (default: the build directory). The config
    file sends every chat of bot "bench" to the fake (llm = always), which answers with T tokens
    (default 300) one every D ms (default 50: 20 tokens/s per stream), each token stamped with
    the time the fake wrote it (X-Fake-Stamp, tests/fake/fake_stamp.h).

    One client thread with raw ZeroMQ sockets (a DEALER for requests, a SUB subscribed to each
    request id just before its chat is sent) sends N streamed chats (default 5,000) at R per
    second (default 1,000; 0: all at once), reads every event, and checks:
      - correct output: meta first, seqs without gaps, the token texts concatenated equal the
        expected answer byte for byte (stamps aside), done's reply and the chat's reply equal
        the streamed text (stamps included);
      - token latency: its arrival (CLOCK_MONOTONIC) minus the fake's stamp, every token; also
        for the steady window alone (all N open, none ended yet);
      - memory: VmRSS of the broker and of each worker after a warm-up and again while all N
        streams are open; per stream = the sum of the deltas / N (the fake's and the client's are
        shown apart, for information); CPU of every process over the steady window.
    Also measures the floor: a raw DEALER -> ROUTER echo round trip on tcp loopback in this
    process. Exits 0 when every stream was correct, 1 otherwise. Diagnostics: LLM_BENCH_DEBUG=1
    names slow first tokens and mismatched streams; LLM_BENCH_TRACE=FILE writes every token's
    arrival (µs), latency (µs) and stream. */
#include "common/clock.h"
#include "common/hash.h"
#include "common/frames.h"
#include "common/mpack.h"
#include "common/wire.h"
#include "tests/fake/fake_stamp.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#ifndef KEFU_BIN_DIR
#   error "KEFU_BIN_DIR must name the build directory"
#endif

#define S_TOKEN_LEN     (FAKE_STAMP_PAIR_LEN + FAKE_STAMP_MARKER_LEN)
#define S_WARM_STREAMS  20
#define S_WARM_TOKENS   4
#define S_MAX_WORKERS   8

typedef struct {
    int streams, tokens, delay_ms, rate, workers, port;
    const char *bin_dir;
    bool is_keep;
} s_options_t;

//  One streamed chat, checked as its events arrive
typedef struct {
    int64_t sent_us, meta_us, first_us, end_us;     //  Sent, meta, first token byte, terminal event
    int next_seq;                       //  The seq expected next
    int events;                         //  Token events
    size_t pos;                         //  Bytes of the expected answer matched so far
    int64_t stamp;                      //  Digits of the marker being read
    uint64_t hash;                      //  FNV-1a of the streamed text
    bool is_bad;                        //  A byte that was not the expected one
    bool has_meta, has_gap, has_done, has_error, has_reply, is_reply_ok;
    bool is_done_same;                  //  done's reply equals the streamed text
    uint64_t reply_hash;                //  FNV-1a of the reply's text
    int last_seq, done_seq;
    size_t done_len;                    //  Bytes of done's reply
    char error [48];                    //  Error name (event or reply)
} s_stream_t;

typedef struct {
    pid_t pid;
    char name [32];
    long rss_before_kb, rss_open_kb;
    long ticks_from, ticks_to;          //  utime + stime over the steady window
} s_proc_t;

//  The run
typedef struct {
    s_options_t opt;
    char dir [256], prefix [16];
    char requests [64], streams [64], workers_ep [64], echo [64];
    int fake_port;
    s_proc_t procs [3 + S_MAX_WORKERS];     //  fake, broker, client (self), workers
    int proc_count;
    void *ctx, *dealer, *sub;
    s_stream_t *all;                        //  opt.streams bench streams, then the warm-up ones
    int total;
    int32_t *latencies, *steady;            //  Microseconds per token
    size_t latency_count, steady_count;
    int64_t steady_from, steady_to;         //  All open, none ended: [from, to)
    int open_now, opened, ended;
} s_bench_t;

static FILE *s_trace;                   //  LLM_BENCH_TRACE=FILE: every token's arrival and latency

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
s_sleep_ms (int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep (&ts, NULL);
}

static int
s_compare_int32 (const void *a, const void *b)
{
    int32_t x = *(const int32_t *) a, y = *(const int32_t *) b;
    return x < y ? -1 : x > y;
}

static int
s_compare_int64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

//  Percentile `p` of sorted microseconds, in milliseconds
static double
s_pct (const int32_t *sorted, size_t count, double p)
{
    return count ? sorted [(size_t) (p / 100 * (count - 1) + 0.5)] / 1000.0 : 0;
}


//  --- Processes ---------------------------------------------------------------------------------

//  VmRSS in KB, -1 when the process is gone
static long
s_rss_kb (pid_t pid)
{
    char path [64], line [256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *file = fopen (path, "r");
    long kb = -1;
    while (file && fgets (line, sizeof line, file))
        if (strncmp (line, "VmRSS:", 6) == 0)
            kb = atol (line + 6);
    if (file)
        fclose (file);
    return kb;
}

//  utime + stime in clock ticks
static long
s_ticks (pid_t pid)
{
    char path [64], line [1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return 0;
    size_t n = fread (line, 1, sizeof line - 1, file);
    fclose (file);
    line [n] = 0;
    const char *at = strrchr (line, ')');
    unsigned long utime = 0, stime = 0;
    if (!at || sscanf (at + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                       &utime, &stime) != 2)
        return 0;
    return (long) (utime + stime);
}

//  Forks `argv`, stderr (and stdout unless `out_fd` >= 0 takes it) into `log`
static pid_t
s_spawn (char *const argv [], const char *log, int out_fd)
{
    fflush (stdout);
    pid_t pid = fork ();
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        FILE *file = freopen (log, "a", stderr);
        (void) file;
        dup2 (out_fd >= 0 ? out_fd : 2, 1);
        execv (argv [0], argv);
        fprintf (stderr, "llm_bench: cannot run %s\n", argv [0]);
        _exit (127);
    }
    return pid;
}

static s_proc_t *
s_add_proc (s_bench_t *self, pid_t pid, const char *name)
{
    s_proc_t *proc = &self->procs [self->proc_count++];
    memset (proc, 0, sizeof *proc);
    proc->pid = pid;
    snprintf (proc->name, sizeof proc->name, "%s", name);
    return proc;
}

static void
s_start_fake (s_bench_t *self)
{
    int fds [2];
    if (pipe (fds)) {
        perror ("llm_bench");
        exit (1);
    }
    char binary [300], log [300];
    snprintf (binary, sizeof binary, "%s/tests/fake_upstream", self->opt.bin_dir);
    snprintf (log, sizeof log, "%s/fake.log", self->dir);
    char *argv [] = { binary, NULL };
    pid_t pid = s_spawn (argv, log, fds [1]);
    close (fds [1]);
    char line [16] = "";
    ssize_t n = read (fds [0], line, sizeof line - 1);
    close (fds [0]);
    self->fake_port = n > 0 ? atoi (line) : 0;
    if (self->fake_port <= 0) {
        fprintf (stderr, "llm_bench: the fake upstream did not start (%s)\n", binary);
        exit (1);
    }
    s_add_proc (self, pid, "fake upstream");
}

//  The fake's count of open connections (GET /stats), -1 when it does not answer
static int
s_fake_open (s_bench_t *self)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons (self->fake_port),
                                   .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    int open = -1;
    const char *request = "GET /stats HTTP/1.1\r\nHost: fake\r\n\r\n";
    if (connect (fd, (struct sockaddr *) &address, sizeof address) == 0
    &&  write (fd, request, strlen (request)) == (ssize_t) strlen (request)) {
        char reply [2048];
        size_t len = 0;
        ssize_t n;
        while (len < sizeof reply - 1 && (n = read (fd, reply + len, sizeof reply - 1 - len)) > 0)
            len += n;
        reply [len] = 0;
        const char *at = strstr (reply, "\"open\":");
        if (at)
            open = atoi (at + 7) - 1;       //  Not counting this request's own connection
    }
    close (fd);
    return open;
}

static void
s_write_config (s_bench_t *self, const char *path)
{
    FILE *file = fopen (path, "w");
    if (!file) {
        perror (path);
        exit (1);
    }
    const char *names [2] = { "fake", "warm" };
    int tokens [2] = { self->opt.tokens, S_WARM_TOKENS };
    for (int i = 0; i < 2; i++)
        fprintf (file, "[upstream %s]\nkind = openai\nbase_url = http://127.0.0.1:%d/v1\n"
                 "model = fake-model\nheaders = X-Fake-Stamp: %d | X-Fake-Delay-Ms: %d\n"
                 "max_concurrency = 100000\nqueue = 1000000\nconnect_timeout_ms = 30000\n"
                 "first_byte_timeout_ms = 60000\nidle_timeout_ms = 60000\ntotal_timeout_ms = 0\n"
                 "max_retries = 0\nbreaker_failures = 0\n\n",
                 names [i], self->fake_port, tokens [i], self->opt.delay_ms);
    fprintf (file, "[bot bench]\nupstream = fake\nllm = always\n\n"
                   "[bot warm]\nupstream = warm\nllm = always\n");
    fclose (file);
}

static void
s_start_kefu (s_bench_t *self)
{
    char binary [300], log [300], config [300], db [300], capacity [16], pending [16];
    snprintf (config, sizeof config, "%s/bench.ini", self->dir);
    snprintf (db, sizeof db, "%s/bench.db", self->dir);
    snprintf (log, sizeof log, "%s/kefu.log", self->dir);
    snprintf (capacity, sizeof capacity, "%d", self->opt.streams + S_WARM_STREAMS);
    snprintf (pending, sizeof pending, "%d", 2 * (self->opt.streams + S_WARM_STREAMS));
    s_write_config (self, config);
    snprintf (binary, sizeof binary, "%s/kefu-broker", self->opt.bin_dir);
    char *broker [] = { binary, "--requests", self->requests, "--streams", self->streams,
                        "--workers-endpoint", self->workers_ep, "--db", db, "--config", config,
                        "--max-pending", pending, "--job-timeout-ms", "3600000",
                        "--cache-mb", "0", NULL };
    s_add_proc (self, s_spawn (broker, log, -1), "broker");
    s_sleep_ms (300);               //  The broker creates the database the workers read
    snprintf (binary, sizeof binary, "%s/kefu-worker", self->opt.bin_dir);
    for (int i = 0; i < self->opt.workers; i++) {
        char name [32];
        snprintf (name, sizeof name, "worker-%d", i + 1);
        char *worker [] = { binary, "--broker", self->workers_ep, "--db", db, "--config", config,
                            "--name", name, "--capacity", capacity, "--max-llm", capacity, NULL };
        s_add_proc (self, s_spawn (worker, log, -1), name);
    }
}


//  --- Requests ----------------------------------------------------------------------------------

static void
s_send_body (void *dealer, msgpack_sbuffer *body)
{
    const void *data [2] = { KF_SIGNATURE, body->data };
    size_t size [2] = { KF_SIGNATURE_LEN, body->size };
    if (kf_frames_send (dealer, 2, data, size, 0)) {
        fprintf (stderr, "llm_bench: send failed: %s\n", zmq_strerror (errno));
        exit (1);
    }
}

//  A reply's body, decoded; false when it is none
static bool
s_decode_reply (kf_frames_t *frames, msgpack_unpacked *body)
{
    return frames->count == 2 && kf_frames_is (frames, 0, KF_SIGNATURE)
        && kf_mp_unpack_one (kf_frames_data (frames, 1), kf_frames_size (frames, 1), body)
        && body->data.type == MSGPACK_OBJECT_MAP;
}

//  The workers the broker counts (health), -1 without a reply within a second
static int
s_health_workers (s_bench_t *self)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_str (&pk, "id", "health");
    kf_mp_pack_kv_str (&pk, "method", "health");
    s_send_body (self->dealer, &body);
    msgpack_sbuffer_destroy (&body);
    int64_t deadline = s_now_us () + 1000000;
    while (s_now_us () < deadline) {
        zmq_pollitem_t item = { self->dealer, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 100) <= 0)
            continue;
        kf_frames_t frames;
        if (kf_frames_recv (&frames, self->dealer, 0))
            continue;
        msgpack_unpacked reply;
        int workers = -2;
        if (s_decode_reply (&frames, &reply) && kf_mp_str_eq (&reply.data, "id", "health"))
            workers = (int) kf_mp_get_int (kf_mp_get (&reply.data, "result"), "workers", -1);
        msgpack_unpacked_destroy (&reply);
        kf_frames_close (&frames);
        if (workers != -2)
            return workers;
    }
    return -1;
}

//  Subscribes to stream `index`'s id and sends its chat
static void
s_send_chat (s_bench_t *self, int index)
{
    char id [32];
    snprintf (id, sizeof id, "%s%06d", self->prefix, index);
    zmq_setsockopt (self->sub, ZMQ_SUBSCRIBE, id, strlen (id));
    bool is_warm = index >= self->opt.streams;
    char message [96];
    //  A knowledge question (llm = always asks the upstream only for knowledge_qa turns; an order
    //  question is a business query and never reaches it)
    snprintf (message, sizeof message, "请问一般几天能发货？第%d位", index);
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    kf_mp_pack_kv_str (&pk, "id", id);
    kf_mp_pack_kv_str (&pk, "method", "chat");
    kf_mp_pack_cstr (&pk, "params");
    msgpack_pack_map (&pk, 4);
    kf_mp_pack_kv_str (&pk, "message", message);
    kf_mp_pack_kv_str (&pk, "bot_id", is_warm ? "warm" : "bench");
    kf_mp_pack_kv_str (&pk, "user_id", "bench");
    kf_mp_pack_kv_bool (&pk, "stream", true);
    self->all [index].sent_us = s_now_us ();
    s_send_body (self->dealer, &body);
    msgpack_sbuffer_destroy (&body);
}

//  Stream index of a topic or reply id, -1 when it is not one of ours
static int
s_index (s_bench_t *self, const char *id, size_t len)
{
    size_t prefix_len = strlen (self->prefix);
    if (len != prefix_len + 6 || memcmp (id, self->prefix, prefix_len) != 0)
        return -1;
    int index = 0;
    for (size_t i = prefix_len; i < len; i++)
        index = index * 10 + (id [i] - '0');
    return index < self->total ? index : -1;
}


//  --- Stream events -----------------------------------------------------------------------------

static int
s_tokens_of (s_bench_t *self, int index)
{
    return index < self->opt.streams ? self->opt.tokens : S_WARM_TOKENS;
}

//  Matches token text against the expected answer, byte by byte (tokens may split anywhere);
//  every marker completed gives one latency sample
static void
s_on_text (s_bench_t *self, int index, const char *text, size_t len, int64_t now)
{
    s_stream_t *stream = &self->all [index];
    if (stream->pos == 0 && len > 0) {
        stream->first_us = now;
        if (index < self->opt.streams) {
            self->opened++;
            self->open_now++;
        }
    }
    stream->hash = kf_fnv1a (stream->hash, text, len);
    size_t limit = (size_t) s_tokens_of (self, index) * S_TOKEN_LEN;
    for (size_t i = 0; i < len && !stream->is_bad; i++, stream->pos++) {
        if (stream->pos >= limit) {
            stream->is_bad = true;
            break;
        }
        size_t offset = stream->pos % S_TOKEN_LEN;
        int token = (int) (stream->pos / S_TOKEN_LEN);
        char c = text [i];
        if (offset < FAKE_STAMP_PAIR_LEN)
            stream->is_bad = c != fake_stamp_pair (token) [offset];
        else
        if (offset < FAKE_STAMP_PAIR_LEN + 3)
            stream->is_bad = c != FAKE_STAMP_OPEN [offset - FAKE_STAMP_PAIR_LEN];
        else
        if (offset < FAKE_STAMP_PAIR_LEN + 3 + FAKE_STAMP_DIGITS) {
            stream->is_bad = c < '0' || c > '9';
            stream->stamp = (offset == FAKE_STAMP_PAIR_LEN + 3 ? 0 : stream->stamp * 10) + (c - '0');
        }
        else {
            stream->is_bad = c != FAKE_STAMP_CLOSE [offset - FAKE_STAMP_PAIR_LEN - 3 - FAKE_STAMP_DIGITS];
            if (offset == S_TOKEN_LEN - 1 && !stream->is_bad && index < self->opt.streams) {
                int64_t latency = now - stream->stamp;
                if (s_trace)
                    fprintf (s_trace, "%lld %lld %d\n", (long long) now, (long long) latency, index);
                self->latencies [self->latency_count++] = (int32_t) latency;
                if (self->steady_from && !self->steady_to)
                    self->steady [self->steady_count++] = (int32_t) latency;
            }
        }
    }
}

static void
s_on_end (s_bench_t *self, int index, int64_t now)
{
    s_stream_t *stream = &self->all [index];
    stream->end_us = now;
    char id [32];
    snprintf (id, sizeof id, "%s%06d", self->prefix, index);
    zmq_setsockopt (self->sub, ZMQ_UNSUBSCRIBE, id, strlen (id));
    if (index < self->opt.streams) {
        self->ended++;
        if (stream->pos > 0)
            self->open_now--;
        if (self->steady_from && !self->steady_to)
            self->steady_to = now;
    }
}

//  One message from the SUB socket
static void
s_on_event (s_bench_t *self, kf_frames_t *frames, int64_t now)
{
    if (frames->count != 2)
        return;
    int index = s_index (self, kf_frames_data (frames, 0), kf_frames_size (frames, 0));
    if (index < 0)
        return;
    s_stream_t *stream = &self->all [index];
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    if (msgpack_unpack_next (&unpacked, kf_frames_data (frames, 1), kf_frames_size (frames, 1), &offset)
        != MSGPACK_UNPACK_SUCCESS || unpacked.data.type != MSGPACK_OBJECT_MAP) {
        stream->is_bad = true;
        msgpack_unpacked_destroy (&unpacked);
        return;
    }
    const msgpack_object *event = &unpacked.data;
    int64_t seq = kf_mp_get_int (event, "seq", -1);
    if (seq != stream->next_seq)
        stream->has_gap = true;
    stream->next_seq = (int) seq + 1;
    const char *text;
    size_t len;
    if (kf_mp_str_eq (event, "event", "token")
    &&  kf_mp_str (kf_mp_get (event, "content"), &text, &len)) {
        stream->events++;
        s_on_text (self, index, text, len, now);
    }
    else
    if (kf_mp_str_eq (event, "event", "meta")) {
        stream->has_meta = seq == 0;
        stream->meta_us = now;
    }
    else
    if (kf_mp_str_eq (event, "event", "done")) {
        stream->has_done = true;
        stream->done_seq = (int) seq;
        stream->is_done_same = kf_mp_str (kf_mp_get (event, "reply"), &text, &len)
                            && kf_fnv1a (KF_FNV1A_BASIS, text, len) == stream->hash;
        stream->done_len = stream->is_done_same || kf_mp_str (kf_mp_get (event, "reply"), &text, &len) ? len : 0;
        s_on_end (self, index, now);
    }
    else
    if (kf_mp_str_eq (event, "event", "error")) {
        stream->has_error = true;
        if (kf_mp_str (kf_mp_get (kf_mp_get (event, "error"), "name"), &text, &len))
            snprintf (stream->error, sizeof stream->error, "%.*s", (int) len, text);
        s_on_end (self, index, now);
    }
    msgpack_unpacked_destroy (&unpacked);
}

//  One message from the DEALER: a chat's reply
static void
s_on_reply (s_bench_t *self, kf_frames_t *frames)
{
    msgpack_unpacked reply;
    if (s_decode_reply (frames, &reply)) {
        const char *id, *text;
        size_t len;
        int index = kf_mp_str (kf_mp_get (&reply.data, "id"), &id, &len) ? s_index (self, id, len) : -1;
        if (index >= 0) {
            s_stream_t *stream = &self->all [index];
            stream->has_reply = true;
            stream->is_reply_ok = kf_mp_get_bool (&reply.data, "ok", false);
            const msgpack_object *result = kf_mp_get (&reply.data, "result");
            stream->last_seq = (int) kf_mp_get_int (result, "last_seq", -1);
            //  The reply may come before the last events (3.4): compared once all are in
            if (kf_mp_str (kf_mp_get (result, "reply"), &text, &len))
                stream->reply_hash = kf_fnv1a (KF_FNV1A_BASIS, text, len);
            if (!stream->is_reply_ok
            &&  kf_mp_str (kf_mp_get (kf_mp_get (&reply.data, "error"), "name"), &text, &len))
                snprintf (stream->error, sizeof stream->error, "%.*s", (int) len, text);
        }
    }
    msgpack_unpacked_destroy (&reply);
}

//  Reads what waits on both sockets, up to `timeout_ms` for the first message
static void
s_pump (s_bench_t *self, long timeout_ms)
{
    zmq_pollitem_t items [2] = { { self->sub, 0, ZMQ_POLLIN, 0 }, { self->dealer, 0, ZMQ_POLLIN, 0 } };
    if (zmq_poll (items, 2, timeout_ms) <= 0)
        return;
    kf_frames_t frames;
    for (int i = 0; i < 20000 && kf_frames_recv (&frames, self->sub, ZMQ_DONTWAIT) == 0; i++) {
        s_on_event (self, &frames, s_now_us ());
        kf_frames_close (&frames);
    }
    for (int i = 0; i < 20000 && kf_frames_recv (&frames, self->dealer, ZMQ_DONTWAIT) == 0; i++) {
        s_on_reply (self, &frames);
        kf_frames_close (&frames);
    }
}

//  True when stream `index` ended and its reply came
static bool
s_is_finished (s_stream_t *stream)
{
    return stream->end_us && stream->has_reply;
}


//  --- The floor: raw echo ----------------------------------------------------------------------

static void *
s_echo (void *arg)
{
    void *router = arg;
    kf_frames_t frames;
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

//  Round trips of a token-sized message through an echo ROUTER in this process, p50 and p99 in ms
static void
s_measure_floor (s_bench_t *self, double *p50, double *p99)
{
    void *echo_ctx = zmq_ctx_new ();
    void *router = zmq_socket (echo_ctx, ZMQ_ROUTER);
    zmq_bind (router, self->echo);
    pthread_t thread;
    pthread_create (&thread, NULL, s_echo, router);
    void *dealer = zmq_socket (self->ctx, ZMQ_DEALER);
    zmq_connect (dealer, self->echo);
    enum { COUNT = 5000 };
    static int64_t samples [COUNT];
    const char *token = "{\"seq\":12,\"event\":\"token\",\"content\":\"感谢⟦0000014678512632⟧\"}";
    for (int i = -200; i < COUNT; i++) {
        const void *data [2] = { KF_SIGNATURE, token };
        size_t size [2] = { KF_SIGNATURE_LEN, strlen (token) };
        int64_t start = s_now_us ();
        kf_frames_send (dealer, 2, data, size, 0);
        kf_frames_t frames;
        if (kf_frames_recv (&frames, dealer, 0) == 0)
            kf_frames_close (&frames);
        if (i >= 0)
            samples [i] = s_now_us () - start;
    }
    qsort (samples, COUNT, sizeof (int64_t), s_compare_int64);
    *p50 = samples [COUNT / 2] / 1000.0;
    *p99 = samples [COUNT * 99 / 100] / 1000.0;
    int linger = 0;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close (dealer);
    zmq_ctx_shutdown (echo_ctx);
    pthread_join (thread, NULL);
    zmq_ctx_term (echo_ctx);
}


//  --- The run -----------------------------------------------------------------------------------

static void
s_usage (void)
{
    fprintf (stderr, "usage: llm_bench [--streams N] [--tokens T] [--delay-ms D] [--rate R] [--workers W]\n"
                     "                 [--port BASE] [--bin-dir DIR] [--keep]\n");
    exit (2);
}

static void
s_parse (s_options_t *opt, int argc, char *argv [])
{
    *opt = (s_options_t) { .streams = 5000, .tokens = 300, .delay_ms = 50, .rate = 1000,
                           .workers = 2, .port = 27800, .bin_dir = KEFU_BIN_DIR };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i], *value = i + 1 < argc ? argv [i + 1] : NULL;
        if (strcmp (arg, "--keep") == 0) {
            opt->is_keep = true;
            continue;
        }
        if (!value)
            s_usage ();
        i++;
        if (strcmp (arg, "--streams") == 0)         opt->streams = atoi (value);
        else if (strcmp (arg, "--tokens") == 0)     opt->tokens = atoi (value);
        else if (strcmp (arg, "--delay-ms") == 0)   opt->delay_ms = atoi (value);
        else if (strcmp (arg, "--rate") == 0)       opt->rate = atoi (value);
        else if (strcmp (arg, "--workers") == 0)    opt->workers = atoi (value);
        else if (strcmp (arg, "--port") == 0)       opt->port = atoi (value);
        else if (strcmp (arg, "--bin-dir") == 0)    opt->bin_dir = value;
        else
            s_usage ();
    }
    if (opt->streams < 1 || opt->streams > 999999 - S_WARM_STREAMS || opt->tokens < 1
    ||  opt->tokens > FAKE_STAMP_MAX_TOKENS || opt->delay_ms < 0 || opt->rate < 0
    ||  opt->workers < 1 || opt->workers > S_MAX_WORKERS || opt->port < 1)
        s_usage ();
}

static void
s_open_sockets (s_bench_t *self)
{
    self->ctx = zmq_ctx_new ();
    self->dealer = zmq_socket (self->ctx, ZMQ_DEALER);
    self->sub = zmq_socket (self->ctx, ZMQ_SUB);
    //  Thousands of subscriptions and chats at once: no high-water mark may drop one (3.2)
    int zero = 0;
    zmq_setsockopt (self->sub, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt (self->sub, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_setsockopt (self->dealer, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt (self->dealer, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_setsockopt (self->sub, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (self->dealer, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect (self->dealer, self->requests);
    zmq_connect (self->sub, self->streams);
}

//  Sends streams [from, to) at the configured rate while reading; waits until they have all
//  finished or `deadline_us`. Marks the steady window (bench streams only) and samples memory
//  and CPU in it.
static void
s_run_streams (s_bench_t *self, int from, int to, int64_t deadline_us, bool is_measured)
{
    int64_t start = s_now_us (), sample_at = 0;
    int sent = from;
    int finished = 0;
    bool is_sampled = false;
    while (s_now_us () < deadline_us) {
        int64_t now = s_now_us ();
        while (sent < to && (self->opt.rate == 0
               || now >= start + (int64_t) (sent - from) * 1000000 / self->opt.rate)) {
            s_send_chat (self, sent++);
            if (self->opt.rate == 0 && (sent - from) % 256 == 0)
                break;                  //  Read between bursts
        }
        long timeout = sent < to && self->opt.rate > 0
                     ? (long) ((start + (int64_t) (sent - from) * 1000000 / self->opt.rate - now) / 1000)
                     : 10;
        s_pump (self, timeout < 0 ? 0 : timeout > 10 ? 10 : timeout);
        now = s_now_us ();
        if (is_measured && !self->steady_from && self->opened == to - from && self->ended == 0) {
            self->steady_from = now;
            //  Memory in the middle of the window, or one second in
            int64_t window = (int64_t) self->opt.tokens * self->opt.delay_ms * 1000 - (now - start);
            sample_at = now + (window / 2 < 1000000 ? window / 2 : 1000000);
            for (int i = 0; i < self->proc_count; i++)
                self->procs [i].ticks_from = s_ticks (self->procs [i].pid);
            printf ("  all %d streams open %.2f s after the first was sent\n", to - from,
                    (now - start) / 1e6);
        }
        if (is_measured && sample_at && !is_sampled && now >= sample_at) {
            is_sampled = true;
            for (int i = 0; i < self->proc_count; i++)
                self->procs [i].rss_open_kb = s_rss_kb (self->procs [i].pid);
            printf ("  sampled: %d open in the client, %d open at the fake\n", self->open_now,
                    s_fake_open (self));
        }
        if (is_measured && self->steady_from && self->steady_to && !self->procs [0].ticks_to)
            for (int i = 0; i < self->proc_count; i++)
                self->procs [i].ticks_to = s_ticks (self->procs [i].pid);
        while (finished < to - from && s_is_finished (&self->all [from + finished]))
            finished++;
        if (finished == to - from) {
            //  Every reply is in: any event still missing would have come by now
            bool is_all = true;
            for (int i = from; i < to && is_all; i++)
                is_all = s_is_finished (&self->all [i]);
            if (is_all)
                break;
        }
    }
}

int
main (int argc, char *argv [])
{
    s_bench_t self;
    memset (&self, 0, sizeof self);
    s_parse (&self.opt, argc, argv);
    signal (SIGPIPE, SIG_IGN);
    if (getenv ("LLM_BENCH_TRACE"))
        s_trace = fopen (getenv ("LLM_BENCH_TRACE"), "w");
    struct rlimit files;                //  Every process started inherits it
    if (getrlimit (RLIMIT_NOFILE, &files) == 0) {
        files.rlim_cur = files.rlim_max;
        setrlimit (RLIMIT_NOFILE, &files);
    }
    snprintf (self.dir, sizeof self.dir, "/tmp/kefu-llm-bench-XXXXXX");
    if (!mkdtemp (self.dir)) {
        perror ("llm_bench");
        return 1;
    }
    int port = self.opt.port;
    snprintf (self.requests, sizeof self.requests, "tcp://127.0.0.1:%d", port);
    snprintf (self.streams, sizeof self.streams, "tcp://127.0.0.1:%d", port + 1);
    snprintf (self.workers_ep, sizeof self.workers_ep, "tcp://127.0.0.1:%d", port + 2);
    snprintf (self.echo, sizeof self.echo, "tcp://127.0.0.1:%d", port + 3);
    snprintf (self.prefix, sizeof self.prefix, "lb%06x-", (unsigned) getpid () & 0xFFFFFF);
    self.total = self.opt.streams + S_WARM_STREAMS;
    self.all = calloc (self.total, sizeof (s_stream_t));
    for (int i = 0; i < self.total; i++)
        self.all [i].hash = KF_FNV1A_BASIS;
    self.latencies = malloc ((size_t) self.opt.streams * self.opt.tokens * sizeof (int32_t));
    self.steady = malloc ((size_t) self.opt.streams * self.opt.tokens * sizeof (int32_t));

    printf ("llm_bench: %d streams of %d tokens every %d ms, %d workers, sent at %d/s%s\n",
            self.opt.streams, self.opt.tokens, self.opt.delay_ms, self.opt.workers, self.opt.rate,
            self.opt.rate ? "" : " (all at once)");
    printf ("  RLIMIT_NOFILE %llu, directory %s\n", (unsigned long long) files.rlim_cur, self.dir);
    s_open_sockets (&self);
    double floor50, floor99;
    s_measure_floor (&self, &floor50, &floor99);
    s_start_fake (&self);
    s_add_proc (&self, getpid (), "client (bench)");
    s_start_kefu (&self);
    int64_t deadline = s_now_us () + 15000000;
    while (s_health_workers (&self) < self.opt.workers) {
        if (s_now_us () > deadline) {
            fprintf (stderr, "llm_bench: the workers did not join within 15 s (see %s/kefu.log)\n",
                     self.dir);
            return 1;
        }
        s_sleep_ms (100);
    }
    //  Warm-up: a few short streams through every process
    s_run_streams (&self, self.opt.streams, self.total, s_now_us () + 20000000, false);
    s_sleep_ms (500);
    for (int i = 0; i < self.proc_count; i++)
        self.procs [i].rss_before_kb = s_rss_kb (self.procs [i].pid);

    //  The ramp and the hold
    int64_t stream_us = (int64_t) self.opt.tokens * self.opt.delay_ms * 1000;
    int64_t ramp_us = self.opt.rate ? (int64_t) self.opt.streams * 1000000 / self.opt.rate : 0;
    int64_t started = s_now_us ();
    s_run_streams (&self, 0, self.opt.streams, started + ramp_us + 2 * stream_us + 60000000, true);
    int64_t finished = s_now_us ();
    s_pump (&self, 500);                //  Late events after the last reply

    //  What arrived
    int correct = 0, gaps = 0, bad_text = 0, no_meta = 0, not_done = 0, errors = 0, no_reply = 0,
        mismatched = 0, open_max_check = 0;
    char first_error [48] = "";
    int64_t *first_token = malloc (self.opt.streams * sizeof (int64_t));
    int first_count = 0;
    int64_t last_first = 0;
    for (int i = 0; i < self.opt.streams; i++) {
        s_stream_t *s = &self.all [i];
        bool is_text = !s->is_bad && s->pos == (size_t) self.opt.tokens * S_TOKEN_LEN;
        bool is_reply_same = s->reply_hash == s->hash;
        bool is_same = s->is_done_same && is_reply_same && s->last_seq == s->done_seq;
        gaps += s->has_gap;
        bad_text += !is_text;
        no_meta += !s->has_meta;
        not_done += !s->has_done;
        errors += s->has_error || (s->has_reply && !s->is_reply_ok);
        no_reply += !s->has_reply;
        mismatched += s->has_done && s->has_reply && !is_same;
        if (!*first_error && *s->error)
            snprintf (first_error, sizeof first_error, "%s", s->error);
        if (getenv ("LLM_BENCH_DEBUG") && s->has_done && s->has_reply && !is_same && mismatched <= 3)
            fprintf (stderr, "stream %d: done same %d, reply same %d, last_seq %d, done seq %d, events %d, "
                     "streamed %zu bytes, done reply %zu bytes\n", i, s->is_done_same, is_reply_same,
                     s->last_seq, s->done_seq, s->events, s->pos, s->done_len);
        if (is_text && is_same && !s->has_gap && s->has_meta && s->has_done && s->is_reply_ok)
            correct++;
        if (s->first_us) {
            if (getenv ("LLM_BENCH_DEBUG") && s->first_us - s->sent_us > 500000)
                fprintf (stderr, "slow first token: stream %d sent +%.3f s, meta after %.3f s, first token after %.3f s\n",
                         i, (s->sent_us - started) / 1e6, (s->meta_us - s->sent_us) / 1e6,
                         (s->first_us - s->sent_us) / 1e6);
            first_token [first_count++] = s->first_us - s->sent_us;
            last_first = s->first_us > last_first ? s->first_us : last_first;
        }
    }
    (void) open_max_check;
    qsort (first_token, first_count, sizeof (int64_t), s_compare_int64);
    qsort (self.latencies, self.latency_count, sizeof (int32_t), s_compare_int32);
    qsort (self.steady, self.steady_count, sizeof (int32_t), s_compare_int32);
    long tick = sysconf (_SC_CLK_TCK);
    double window_s = self.steady_to > self.steady_from ? (self.steady_to - self.steady_from) / 1e6 : 0;

    printf ("\n| measure | value |\n|---|---|\n");
    printf ("| streams sent / correct | %d / **%d** |\n", self.opt.streams, correct);
    printf ("| errors / no reply / no done / gaps / wrong text / done or reply differs | %d / %d / %d / %d / %d / %d%s%s |\n",
            errors, no_reply, not_done, gaps, bad_text, mismatched, *first_error ? " — first error: " : "",
            first_error);
    printf ("| held open at once (first token in, none ended) | %s |\n",
            self.steady_from ? "all" : "not all (some ended before the last started)");
    printf ("| ramp: first chat sent -> all streams open | %.2f s (sent over %.2f s) |\n",
            self.steady_from ? (self.steady_from - started) / 1e6 : (last_first - started) / 1e6,
            ramp_us / 1e6);
    if (first_count)
        printf ("| chat sent -> first token p50 / p99 / max | %.1f / %.1f / %.1f ms |\n",
                first_token [first_count / 2] / 1000.0, first_token [first_count * 99 / 100] / 1000.0,
                first_token [first_count - 1] / 1000.0);
    printf ("| all finished after | %.2f s |\n", (finished - started) / 1e6);
    printf ("| token latency, all %zu tokens: p50 / p99 / p99.9 / max | %.3f / **%.3f** / %.3f / %.3f ms |\n",
            self.latency_count, s_pct (self.latencies, self.latency_count, 50),
            s_pct (self.latencies, self.latency_count, 99), s_pct (self.latencies, self.latency_count, 99.9),
            s_pct (self.latencies, self.latency_count, 100));
    printf ("| token latency, steady window (%.1f s, %zu tokens): p50 / p99 / p99.9 / max | %.3f / **%.3f** / %.3f / %.3f ms |\n",
            window_s, self.steady_count, s_pct (self.steady, self.steady_count, 50),
            s_pct (self.steady, self.steady_count, 99), s_pct (self.steady, self.steady_count, 99.9),
            s_pct (self.steady, self.steady_count, 100));
    printf ("| tokens received per second in the steady window | %.0f (%d streams x %.0f/s asked) |\n",
            window_s > 0 ? self.steady_count / window_s : 0, self.opt.streams,
            self.opt.delay_ms ? 1000.0 / self.opt.delay_ms : 0);
    printf ("| floor: raw DEALER->ROUTER echo round trip p50 / p99 | %.3f / %.3f ms |\n", floor50, floor99);
    long kefu_delta = 0;
    for (int i = 0; i < self.proc_count; i++) {
        s_proc_t *p = &self.procs [i];
        bool is_kefu = strcmp (p->name, "broker") == 0 || strncmp (p->name, "worker", 6) == 0;
        if (is_kefu)
            kefu_delta += p->rss_open_kb - p->rss_before_kb;
        printf ("| %s RSS before / open / delta | %.1f / %.1f / %+.1f MB%s |\n", p->name,
                p->rss_before_kb / 1024.0, p->rss_open_kb / 1024.0,
                (p->rss_open_kb - p->rss_before_kb) / 1024.0, is_kefu ? "" : " (not counted)");
    }
    printf ("| memory per open stream (broker + workers) | **%.1f KB** |\n",
            (double) kefu_delta / self.opt.streams);
    for (int i = 0; i < self.proc_count && window_s > 0; i++) {
        s_proc_t *p = &self.procs [i];
        if (p->ticks_to)
            printf ("| %s CPU in the steady window | %.0f%% of a core |\n", p->name,
                    100.0 * (p->ticks_to - p->ticks_from) / tick / window_s);
    }

    //  Stop everything (workers and broker first: SIGTERM, then the fake)
    for (int i = self.proc_count - 1; i >= 0; i--)
        if (self.procs [i].pid != getpid ())
            kill (self.procs [i].pid, SIGTERM);
    for (int i = self.proc_count - 1; i >= 0; i--)
        if (self.procs [i].pid != getpid ())
            waitpid (self.procs [i].pid, NULL, 0);
    zmq_close (self.dealer);
    zmq_close (self.sub);
    zmq_ctx_term (self.ctx);
    if (!self.opt.is_keep) {
        char command [300];
        snprintf (command, sizeof command, "rm -rf '%s'", self.dir);
        if (system (command) != 0)
            fprintf (stderr, "llm_bench: could not remove %s\n", self.dir);
    }
    free (first_token);
    free (self.latencies);
    free (self.steady);
    free (self.all);
    return correct == self.opt.streams ? 0 : 1;
}
