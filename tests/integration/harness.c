/*  harness.c - process management and client helpers for the integration tests. */
#include "harness.h"
#include "common/clock.h"
#include "common/json_codec.h"
#include "common/frames.h"
#include "common/log.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef KEFU_BIN_DIR
#   error "KEFU_BIN_DIR must name the build directory"
#endif

void
h_sleep_ms (int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep (&ts, NULL);
}

void
h_init (kf_harness_t *h, const char *name)
{
    memset (h, 0, sizeof *h);
    snprintf (h->dir, sizeof h->dir, "/tmp/kefu-%s-XXXXXX", name);
    CHECK (mkdtemp (h->dir));
    snprintf (h->requests, sizeof h->requests, "ipc://%s/requests", h->dir);
    snprintf (h->streams, sizeof h->streams, "ipc://%s/streams", h->dir);
    snprintf (h->workers, sizeof h->workers, "ipc://%s/workers", h->dir);
    snprintf (h->db, sizeof h->db, "%s/kefu.db", h->dir);
    signal (SIGPIPE, SIG_IGN);
}

static pid_t
s_spawn (const char *binary, const char *const *fixed, const char *const *extra, const char *log)
{
    const char *argv [64];
    int argc = 0;
    argv [argc++] = binary;
    for (int i = 0; fixed && fixed [i]; i++)
        argv [argc++] = fixed [i];
    for (int i = 0; extra && extra [i] && argc < 62; i++)
        argv [argc++] = extra [i];
    argv [argc] = NULL;
    fflush (stdout);                    //  Or the child would print our buffered output again
    pid_t pid = fork ();
    CHECK (pid >= 0);
    if (pid == 0) {
        //  A test that fails exits at once: its processes must not outlive it (an orphan would
        //  also keep ctest's output pipe open)
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (log) {
            FILE *out = freopen (log, "a", stderr);
            out = freopen (log, "a", stdout);
            (void) out;
        }
        execv (binary, (char *const *) argv);
        fprintf (stderr, "cannot exec %s: %s\n", binary, strerror (errno));
        _exit (127);
    }
    return pid;
}

kf_client_t *
h_client (kf_harness_t *h)
{
    //  Over CURVE when the test set KEFU_BROKER_KEY (and KEFU_CURVE_KEY), as kefuctl does
    kf_curve_t curve;
    char why [512];
    int secure = kf_curve_client_config (&curve, NULL, NULL, why, sizeof why);
    CHECK (secure >= 0);
    kf_client_t *client = kf_client_new_curve (h->requests, h->streams, secure ? &curve : NULL);
    CHECK (client);
    kf_client_set_timeout (client, 20000);
    return client;
}

void
h_wait_workers (kf_harness_t *h, int workers, bool at_least)
{
    kf_client_t *client = h_client (h);
    kf_client_set_timeout (client, 500);
    int64_t deadline = kf_mono_ms () + 15000;
    while (true) {
        kf_reply_t *reply = NULL;
        if (kf_client_call (client, "health", NULL, 0, &reply) == 0 && reply->ok) {
            int64_t count = kf_mp_get_int (reply->result, "workers", -1);
            kf_reply_destroy (&reply);
            if (at_least ? count >= workers : count == workers)
                break;
        }
        kf_reply_destroy (&reply);
        if (kf_mono_ms () > deadline) {
            fprintf (stderr, "broker never reported %d workers\n", workers);
            exit (1);
        }
        h_sleep_ms (50);
    }
    kf_client_destroy (&client);
}

void
h_start_broker (kf_harness_t *h, int workers, const char *const *args)
{
    char count [16], log [320];
    snprintf (count, sizeof count, "%d", workers);
    snprintf (log, sizeof log, "%s/broker.log", h->dir);
    const char *fixed [] = { "--requests", h->requests, "--streams", h->streams,
                             "--workers-endpoint", h->workers, "--db", h->db, "--workers", count,
                             "--worker-bin", KEFU_BIN_DIR "/kefu-worker",
                             //  Tests of the worker path must reach workers; cache tests turn
                             //  the hot-answer cache back on with their own --cache-mb
                             "--cache-mb", "0", NULL };
    h->broker = s_spawn (KEFU_BIN_DIR "/kefu-broker", fixed, args, log);
    h_wait_workers (h, workers, true);
}

pid_t
h_start_worker (kf_harness_t *h, const char *const *args)
{
    char log [320];
    snprintf (log, sizeof log, "%s/worker.log", h->dir);
    const char *fixed [] = { "--broker", h->workers, "--db", h->db, NULL };
    pid_t pid = s_spawn (KEFU_BIN_DIR "/kefu-worker", fixed, args, log);
    if (h->worker_count < 8)
        h->workers_pids [h->worker_count++] = pid;
    return pid;
}

void
h_kill_broker (kf_harness_t *h, int signum)
{
    if (h->broker <= 0)
        return;
    kill (h->broker, signum);
    int status;
    waitpid (h->broker, &status, 0);
    h->broker = 0;
}

int
h_kefuctl (kf_harness_t *h, const char *const *args)
{
    const char *fixed [] = { "--requests", h->requests, "--streams", h->streams, NULL };
    pid_t pid = s_spawn (KEFU_BIN_DIR "/kefuctl", fixed, args, NULL);
    int status;
    waitpid (pid, &status, 0);
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

char *
h_kefuctl_output (kf_harness_t *h, const char *const *args, int *status)
{
    return h_kefuctl_outputs (h, args, status, NULL);
}

//  Reads a whole file (NUL-terminated heap copy)
static char *
s_slurp (const char *path)
{
    FILE *file = fopen (path, "r");
    CHECK (file);
    size_t size = 0, capacity = 4096;
    char *text = kf_malloc (capacity);
    size_t n;
    while ((n = fread (text + size, 1, capacity - size - 1, file)) > 0) {
        size += n;
        if (capacity - size < 1024)
            text = kf_realloc (text, capacity *= 2);
    }
    text [size] = 0;
    fclose (file);
    return text;
}

char *
h_kefuctl_outputs (kf_harness_t *h, const char *const *args, int *status, char **errors)
{
    //  stderr goes to a file: two pipes read one after the other could block the child
    char errors_path [320];
    snprintf (errors_path, sizeof errors_path, "%s/kefuctl.stderr", h->dir);
    int fds [2];
    CHECK_INT (pipe (fds), 0);
    fflush (stdout);
    pid_t pid = fork ();
    CHECK (pid >= 0);
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        dup2 (fds [1], 1);
        close (fds [0]);
        close (fds [1]);
        if (errors && !freopen (errors_path, "w", stderr))
            _exit (127);
        const char *argv [64] = { KEFU_BIN_DIR "/kefuctl", "--requests", h->requests, "--streams", h->streams };
        int argc = 5;
        for (int i = 0; args [i] && argc < 62; i++)
            argv [argc++] = args [i];
        argv [argc] = NULL;
        execv (argv [0], (char *const *) argv);
        _exit (127);
    }
    close (fds [1]);
    size_t size = 0, capacity = 4096;
    char *out = kf_malloc (capacity);
    ssize_t n;
    while ((n = read (fds [0], out + size, capacity - size - 1)) > 0) {
        size += n;
        if (capacity - size < 1024)
            out = kf_realloc (out, capacity *= 2);
    }
    out [size] = 0;
    close (fds [0]);
    int wstatus;
    waitpid (pid, &wstatus, 0);
    *status = WIFEXITED (wstatus) ? WEXITSTATUS (wstatus) : 128;
    if (errors)
        *errors = s_slurp (errors_path);
    return out;
}

void
h_import_sample (kf_harness_t *h)
{
    const char *args [] = { "kb", "import", KEFU_SOURCE_DIR "/deploy/sample-kb.jsonl", NULL };
    CHECK_INT (h_kefuctl (h, args), 0);
    //  Workers poll the knowledge-base version; wait until an answer comes from it
    kf_client_t *client = h_client (h);
    int64_t deadline = kf_mono_ms () + 10000;
    while (true) {
        kf_reply_t *reply = h_call (client, "chat", "{\"message\":\"怎么申请退货？\"}");
        bool is_loaded = reply->ok && kf_mp_get_double (reply->result, "confidence", 0) > 0.9;
        kf_reply_destroy (&reply);
        if (is_loaded)
            break;
        CHECK (kf_mono_ms () < deadline);
        h_sleep_ms (50);
    }
    kf_client_destroy (&client);
}

void
h_cleanup (kf_harness_t *h)
{
    for (int i = 0; i < h->worker_count; i++) {
        kill (h->workers_pids [i], SIGKILL);
        waitpid (h->workers_pids [i], NULL, 0);
    }
    if (h->broker > 0) {
        //  A clean shutdown exits 0; under the sanitizers a leak or an error makes it non-zero
        kill (h->broker, SIGTERM);
        int status;
        waitpid (h->broker, &status, 0);
        h->broker = 0;
        if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
            fprintf (stderr, "broker did not exit cleanly (status %d); see %s/broker.log\n", status, h->dir);
            exit (1);
        }
    }
    if (!getenv ("KEFU_KEEP_TEST_DIR")) {
        char command [320];
        snprintf (command, sizeof command, "rm -rf '%s'", h->dir);
        if (system (command) != 0)
            fprintf (stderr, "could not remove %s\n", h->dir);
    }
}

void
h_pack_json (msgpack_sbuffer *buffer, const char *json_format, ...)
{
    va_list args;
    va_start (args, json_format);
    char *json = NULL;
    CHECK (vasprintf (&json, json_format, args) >= 0);
    va_end (args);
    msgpack_sbuffer_init (buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    char err [256];
    if (kf_json_to_msgpack (json, strlen (json), &pk, err, sizeof err)) {
        fprintf (stderr, "bad test JSON %s: %s\n", json, err);
        exit (1);
    }
    free (json);
}

kf_reply_t *
h_call (kf_client_t *client, const char *method, const char *json_format, ...)
{
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    if (json_format) {
        va_list args;
        va_start (args, json_format);
        char *json = NULL;
        CHECK (vasprintf (&json, json_format, args) >= 0);
        va_end (args);
        msgpack_sbuffer_destroy (&params);
        h_pack_json (&params, "%s", json);
        free (json);
    }
    kf_reply_t *reply = NULL;
    int rc = kf_client_call (client, method, params.size ? params.data : NULL, params.size, &reply);
    msgpack_sbuffer_destroy (&params);
    if (rc) {
        fprintf (stderr, "no reply to %s: %s\n", method, strerror (errno));
        exit (1);
    }
    return reply;
}

static char **s_strings;         //  What h_str handed out, freed at exit
static size_t s_string_count;

static void
s_free_strings (void)
{
    for (size_t i = 0; i < s_string_count; i++)
        free (s_strings [i]);
    free (s_strings);
}

const char *
h_str (const msgpack_object *map, const char *key)
{
    static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;  //  Tests call this from threads
    char *s = kf_mp_dup_str (map, key);
    if (!s)
        s = kf_strdup ("");
    pthread_mutex_lock (&mutex);
    if (!s_strings)
        atexit (s_free_strings);
    s_strings = kf_realloc (s_strings, (s_string_count + 1) * sizeof (char *));
    s_strings [s_string_count++] = s;
    pthread_mutex_unlock (&mutex);
    return s;
}

void
h_raw_open (h_raw_t *raw, kf_harness_t *h)
{
    memset (raw, 0, sizeof *raw);
    raw->ctx = zmq_ctx_new ();
    raw->dealer = zmq_socket (raw->ctx, ZMQ_DEALER);
    raw->sub = zmq_socket (raw->ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt (raw->dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (raw->sub, ZMQ_LINGER, &linger, sizeof linger);
    CHECK_INT (zmq_connect (raw->dealer, h->requests), 0);
    CHECK_INT (zmq_connect (raw->sub, h->streams), 0);
}

void
h_raw_close (h_raw_t *raw)
{
    for (int i = 0; i < 16; i++)
        kf_reply_destroy (&raw->stash [i]);
    zmq_close (raw->dealer);
    zmq_close (raw->sub);
    zmq_ctx_term (raw->ctx);
}

void
h_raw_send (h_raw_t *raw, const char *id, const char *method, const char *json_format, ...)
{
    va_list args;
    va_start (args, json_format);
    char *json = NULL;
    CHECK (vasprintf (&json, json_format, args) >= 0);
    va_end (args);
    msgpack_sbuffer params;
    h_pack_json (&params, "%s", json);
    free (json);
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    kf_mp_pack_kv_str (&pk, "id", id);
    kf_mp_pack_kv_str (&pk, "method", method);
    kf_mp_pack_cstr (&pk, "params");
    pk.callback (pk.data, params.data, params.size);
    CHECK (zmq_send (raw->dealer, "KEFU1", 5, ZMQ_SNDMORE) == 5);
    CHECK (zmq_send (raw->dealer, body.data, body.size, 0) == (int) body.size);
    msgpack_sbuffer_destroy (&params);
    msgpack_sbuffer_destroy (&body);
}

kf_reply_t *
h_raw_reply (h_raw_t *raw, int timeout_ms)
{
    zmq_pollitem_t item = { raw->dealer, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) <= 0)
        return NULL;
    kf_frames_t frames;
    CHECK_INT (kf_frames_recv (&frames, raw->dealer, 0), 0);
    CHECK_INT (frames.count, 2);
    CHECK (kf_frames_is (&frames, 0, "KEFU1"));
    kf_reply_t *reply = kf_calloc (1, sizeof *reply);
    CHECK (kf_mp_unpack_one (kf_frames_data (&frames, 1), kf_frames_size (&frames, 1), &reply->unpacked));
    kf_frames_close (&frames);
    reply->ok = kf_mp_get_bool (&reply->unpacked.data, "ok", false);
    reply->result = kf_mp_get (&reply->unpacked.data, "result");
    if (!reply->ok)
        CHECK (kf_error_unpack (kf_mp_get (&reply->unpacked.data, "error"), &reply->error));
    return reply;
}

kf_reply_t *
h_raw_reply_for (h_raw_t *raw, const char *id)
{
    char buffer [128];
    for (int i = 0; i < 16; i++)
        if (raw->stash [i] && strcmp (h_reply_id (raw->stash [i], buffer, sizeof buffer), id) == 0) {
            kf_reply_t *reply = raw->stash [i];
            raw->stash [i] = NULL;
            return reply;
        }
    while (true) {
        kf_reply_t *reply = h_raw_reply (raw, 10000);
        CHECK (reply);
        if (strcmp (h_reply_id (reply, buffer, sizeof buffer), id) == 0)
            return reply;
        int i = 0;
        while (i < 16 && raw->stash [i])
            i++;
        CHECK (i < 16);
        raw->stash [i] = reply;
    }
}

const char *
h_reply_id (kf_reply_t *reply, char *buffer, size_t size)
{
    const char *id;
    size_t len;
    if (!kf_mp_str (kf_mp_get (&reply->unpacked.data, "id"), &id, &len))
        id = "", len = 0;
    snprintf (buffer, size, "%.*s", (int) len, id);
    return buffer;
}

bool
h_raw_event (h_raw_t *raw, int timeout_ms, char *topic, size_t topic_size, msgpack_unpacked *event)
{
    zmq_pollitem_t item = { raw->sub, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) <= 0)
        return false;
    kf_frames_t frames;
    CHECK_INT (kf_frames_recv (&frames, raw->sub, 0), 0);
    CHECK_INT (frames.count, 2);
    snprintf (topic, topic_size, "%.*s", (int) kf_frames_size (&frames, 0), kf_frames_data (&frames, 0));
    CHECK (kf_mp_unpack_one (kf_frames_data (&frames, 1), kf_frames_size (&frames, 1), event));
    kf_frames_close (&frames);
    return true;
}

//  Starts tests/<binary>, which prints its port on stdout, and returns that port
static int
s_start_fake (const char *path, const char *name, pid_t *pid)
{
    int fds [2];
    CHECK_INT (pipe (fds), 0);
    fflush (stdout);
    pid_t child = fork ();
    if (child == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        dup2 (fds [1], 1);
        execl (path, name, (char *) NULL);
        _exit (127);
    }
    close (fds [1]);
    char line [16] = "";
    CHECK (read (fds [0], line, sizeof line - 1) > 0);
    close (fds [0]);
    int port = atoi (line);
    CHECK (port > 0);
    if (pid)
        *pid = child;
    return port;
}

int
h_start_fake_upstream (pid_t *pid)
{
    return s_start_fake (KEFU_BIN_DIR "/tests/fake_upstream", "fake_upstream", pid);
}

int
h_start_fake_business (pid_t *pid)
{
    return s_start_fake (KEFU_BIN_DIR "/tests/fake_business", "fake_business", pid);
}

char *
h_fake_stats (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons (port),
                                   .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    CHECK (connect (fd, (struct sockaddr *) &address, sizeof address) == 0);
    const char *request = "GET /stats HTTP/1.1\r\nHost: fake\r\nConnection: close\r\n\r\n";
    CHECK (write (fd, request, strlen (request)) == (ssize_t) strlen (request));
    size_t capacity = 4096, len = 0;
    char *reply = kf_malloc (capacity);
    ssize_t n;
    while ((n = read (fd, reply + len, capacity - 1 - len)) > 0) {
        len += n;
        if (len + 1 == capacity)
            reply = kf_realloc (reply, capacity *= 2);
    }
    close (fd);
    reply [len] = 0;
    const char *body = strstr (reply, "\r\n\r\n");
    CHECK (body);
    char *stats = kf_strdup (body + 4);
    free (reply);
    return stats;
}

long long
h_fake_stat (const char *stats, const char *key)
{
    char quoted [64];
    snprintf (quoted, sizeof quoted, "\"%s\":", key);
    const char *at = strstr (stats, quoted);
    CHECK (at);
    return strtoll (at + strlen (quoted), NULL, 10);
}
