/*  broker.c - the broker's event loop. One zmq_poll over three sockets; each iteration drains
    subscriptions, requests and worker messages (bounded batches), runs the timers, dispatches ready
    jobs, commits the database once (group commit), and only then sends replies and stream events:
    whatever a client is told is already on disk. */
#include "broker/answer_quality.h"
#include "broker/broker.h"
#include "broker/bots.h"
#include "broker/checkpointer.h"
#include "broker/conversations.h"
#include "broker/answer_cache.h"
#include "broker/escalations.h"
#include "broker/kb_items.h"
#include "broker/history.h"
#include "broker/stop_method.h"
#include "broker/supervisor.h"
#include "broker/zap.h"
#include "common/clock.h"
#include "common/curve.h"
#include "common/frames.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_BATCH 512             //  Messages per socket per iteration: bounds latency under load
#define S_COMMIT_AGE_US 20000   //  Longest a write waits for its commit with nothing to send
#define S_SESSIONS_MAX 100000   //  Sessions cached in memory (each a few hundred bytes to a few KB)

static volatile sig_atomic_t s_interrupted = 0;

static void
s_on_signal (int signum)
{
    (void) signum;
    s_interrupted = 1;
}

void
kf_broker_config_defaults (kf_broker_config_t *config)
{
    memset (config, 0, sizeof *config);
    config->requests = "tcp://127.0.0.1:7700";
    config->streams = "tcp://127.0.0.1:7701";
    config->workers = "tcp://127.0.0.1:7702";
    config->db_path = "kefu.db";
    config->heartbeat_ms = 1000;
    config->liveness = 3;
    config->job_timeout_ms = 30000;
    config->max_pending = 10000;
    config->max_message_chars = 4000;
    config->stream_wait_ms = 2000;
    config->stream_retention_ms = 60000;
    config->max_attempts = 3;
    config->idle_close_ms = 1800000;
    config->cache_mb = 64;
}

//  --- Outbox -----------------------------------------------------------------------------------

static void
s_outbox_add (kf_broker_t *self, const char *routing, size_t routing_len, const char *id,
              size_t id_len, msgpack_sbuffer *body)
{
    if (self->outbox_count == self->outbox_capacity) {
        self->outbox_capacity = self->outbox_capacity ? self->outbox_capacity * 2 : 256;
        self->outbox = kf_realloc (self->outbox, self->outbox_capacity * sizeof (kf_outbox_entry_t));
    }
    kf_outbox_entry_t *entry = &self->outbox [self->outbox_count++];
    entry->routing = kf_strndup (routing, routing_len);
    entry->routing_len = routing_len;
    entry->body_len = body->size;
    entry->body = msgpack_sbuffer_release (body);
    entry->request_id = id ? kf_strndup (id, id_len) : NULL;
    entry->request_id_len = id_len;
}

void
kf_broker_reply_ok (kf_broker_t *self, const char *routing, size_t routing_len, const char *id,
                    size_t id_len, const char *result, size_t result_len)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    kf_reply_pack_ok_head (&pk, id, id_len);
    pk.callback (pk.data, result, result_len);
    s_outbox_add (self, routing, routing_len, id, id_len, &body);
}

void
kf_broker_reply_error (kf_broker_t *self, const char *routing, size_t routing_len, const char *id,
                       size_t id_len, const kf_error_t *err)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    kf_reply_pack_error (&pk, id, id_len, err);
    s_outbox_add (self, routing, routing_len, id, id_len, &body);
}

void
kf_result_init (kf_result_t *result)
{
    msgpack_sbuffer_init (&result->buffer);
    msgpack_packer_init (&result->pk, &result->buffer, msgpack_sbuffer_write);
}

void
kf_broker_send_result (kf_broker_t *self, const char *routing, size_t routing_len,
                       kf_request_t *req, kf_result_t *result)
{
    kf_broker_reply_ok (self, routing, routing_len, req->id, req->id_len, result->buffer.data,
                        result->buffer.size);
    msgpack_sbuffer_destroy (&result->buffer);
}

void
kf_broker_send_error (kf_broker_t *self, const char *routing, size_t routing_len,
                      kf_request_t *req, const kf_error_t *err)
{
    self->counters.errors++;
    kf_broker_reply_error (self, routing, routing_len, req->id, req->id_len, err);
}

//  Commits, then publishes the queued stream events, then sends every queued reply: a stream's
//  done or error event leaves before its reply. The commit happens only when something is about to
//  leave that depends on it (a reply, a stream event naming a stored message) or the batch is old:
//  writes made while dispatching ride along with the commit of their answer, one commit per chat
//  instead of two. If the commit failed, nothing queued since the last commit is true any more:
//  every reply becomes a 500 so no client believes a lost write.
static void
s_commit_and_send (kf_broker_t *self)
{
    int64_t now = kf_mono_us ();
    bool has_output = self->outbox_count > 0 || kf_stream_hub_backlog (self->hub) > 0;
    if (kf_store_is_dirty (self->store) && !self->dirty_since_us)
        self->dirty_since_us = now;
    bool is_lost = false;
    if (self->dirty_since_us && (has_output || now - self->dirty_since_us >= S_COMMIT_AGE_US)) {
        self->dirty_since_us = 0;
        uint64_t batch = kf_store_batch (self->store);
        is_lost = kf_store_flush (self->store) != 0;
        self->counters.commits++;
        if (is_lost) {
            //  Topic events of the lost batch (escalations, agent messages) did not happen
            kf_stream_hub_discard_notices (self->hub);
            kf_chat_on_batch_lost (self, batch);
        }
        else
            kf_chat_on_batch_committed (self);
    }
    if (!self->dirty_since_us)
        kf_stream_hub_flush (self->hub, now);
    for (size_t i = 0; i < self->outbox_count; i++) {
        kf_outbox_entry_t *entry = &self->outbox [i];
        if (is_lost) {
            kf_error_t err;
            kf_error_set (&err, KF_E_INTERNAL, "the database write failed; nothing was stored");
            msgpack_sbuffer body;
            msgpack_sbuffer_init (&body);
            msgpack_packer pk;
            msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
            kf_reply_pack_error (&pk, entry->request_id, entry->request_id_len, &err);
            free (entry->body);
            entry->body_len = body.size;
            entry->body = msgpack_sbuffer_release (&body);
        }
        const void *data [3] = { entry->routing, KF_SIGNATURE, entry->body };
        size_t size [3] = { entry->routing_len, KF_SIGNATURE_LEN, entry->body_len };
        if (kf_frames_send (self->requests, 3, data, size, ZMQ_DONTWAIT) == -1)
            kf_debug ("reply dropped: client gone (%s)", zmq_strerror (errno));
        free (entry->routing);
        free (entry->body);
        free (entry->request_id);
    }
    self->outbox_count = 0;
}

//  --- Client requests --------------------------------------------------------------------------

//  Decodes a request received on the ROUTER (routing id first). Returns like kf_request_decode.
static int
s_decode (kf_frames_t *frames, kf_request_t *req, kf_error_t *err)
{
    int count = frames->total - 1;
    return kf_request_decode (req, count, count >= 1 ? kf_frames_data (frames, 1) : "",
                              count >= 1 ? kf_frames_size (frames, 1) : 0,
                              count >= 2 ? kf_frames_data (frames, 2) : "",
                              count >= 2 ? kf_frames_size (frames, 2) : 0, err);
}

static void
s_on_request (kf_broker_t *self, kf_frames_t *frames)
{
    self->counters.requests++;
    const char *routing = kf_frames_data (frames, 0);
    size_t routing_len = kf_frames_size (frames, 0);
    kf_request_t req;
    kf_error_t err;
    if (s_decode (frames, &req, &err) == 0)
        kf_methods_dispatch (self, routing, routing_len, &req);
    else {
        kf_warn ("bad request (%s): %s", kf_errc_name (err.errc), err.message);
        self->counters.errors++;
        kf_broker_reply_error (self, routing, routing_len, req.id, req.id_len, &err);
    }
    kf_request_release (&req);
}

//  --- Workers ----------------------------------------------------------------------------------

static void
s_send_to_worker (kf_broker_t *self, kf_worker_t *worker, const char *identity, size_t len,
                  const char *command)
{
    if (worker) {
        identity = worker->identity;
        len = worker->identity_len;
    }
    const void *data [3] = { identity, "KFW1", command };
    size_t size [3] = { len, 4, strlen (command) };
    kf_frames_send (self->workers, 3, data, size, ZMQ_DONTWAIT);
}

static void
s_worker_lost (kf_broker_t *self, kf_worker_t *worker, const char *why)
{
    kf_warn ("worker %s (pid %lld) %s with %d jobs", worker->name, (long long) worker->pid, why,
             worker->active);
    self->counters.workers_lost++;
    kf_chat_on_worker_lost (self, worker);
    kf_calls_on_worker_lost (self, worker);
    kf_worker_pool_remove (self->pool, worker);
}

static void
s_on_ready (kf_broker_t *self, kf_worker_t *worker, kf_frames_t *frames)
{
    const char *identity = kf_frames_data (frames, 0);
    size_t len = kf_frames_size (frames, 0);
    if (worker)
        s_worker_lost (self, worker, "sent READY again");
    msgpack_unpacked unpacked;
    bool is_decoded = frames->count == 4
                   && kf_mp_unpack_one (kf_frames_data (frames, 3), kf_frames_size (frames, 3), &unpacked);
    const msgpack_object *info = is_decoded ? &unpacked.data : NULL;
    char name [64] = "worker";
    const char *s;
    size_t s_len;
    //  A name of valid UTF-8, cut at a character boundary (stats returns it)
    if (kf_mp_str (kf_mp_get (info, "name"), &s, &s_len) && kf_utf8_is_valid (s, s_len)) {
        size_t keep = kf_utf8_complete_prefix (s, s_len < 63 ? s_len : 63);
        snprintf (name, sizeof name, "%.*s", (int) keep, s);
    }
    int64_t capacity = kf_mp_get_int (info, "capacity", 64);
    worker = kf_worker_pool_add (self->pool, identity, len, name, kf_mp_get_int (info, "pid", 0),
                                 capacity < 1 ? 1 : capacity > 100000 ? 100000 : (int) capacity);
    kf_worker_pool_touch (self->pool, worker, kf_mono_us ());
    kf_info ("worker %s (pid %lld) ready, capacity %d", worker->name, (long long) worker->pid,
             worker->capacity);
    //  What this broker accepts beyond the first protocol: batched PARTIALs (9.6). A worker that
    //  does not know FEATURES ignores it (9.10: unknown commands are ignored)
    msgpack_sbuffer features;
    msgpack_sbuffer_init (&features);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &features, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    kf_mp_pack_kv_bool (&pk, "partial_batch", true);
    const void *data [4] = { identity, "KFW1", "FEATURES", features.data };
    size_t size [4] = { len, 4, 8, features.size };
    kf_frames_send (self->workers, 4, data, size, ZMQ_DONTWAIT);
    msgpack_sbuffer_destroy (&features);
    if (is_decoded)
        msgpack_unpacked_destroy (&unpacked);
}

static void
s_on_worker_message (kf_broker_t *self, kf_frames_t *frames)
{
    if (frames->count < 3 || !kf_frames_is (frames, 1, "KFW1")) {
        kf_warn ("ignoring a malformed worker message (%d frames)", frames->total);
        return;
    }
    const char *identity = kf_frames_data (frames, 0);
    size_t len = kf_frames_size (frames, 0);
    kf_worker_t *worker = kf_worker_pool_lookup (self->pool, identity, len);
    if (kf_frames_is (frames, 2, "READY")) {
        s_on_ready (self, worker, frames);
        return;
    }
    if (!worker) {
        //  A worker we declared lost, or from before a restart: make it start over
        if (!kf_frames_is (frames, 2, "DISCONNECT"))
            s_send_to_worker (self, NULL, identity, len, "DISCONNECT");
        return;
    }
    kf_worker_pool_touch (self->pool, worker, kf_mono_us ());
    if (kf_frames_is (frames, 2, "PARTIAL") && frames->count == 5)
        kf_chat_on_partial (self, worker, kf_frames_data (frames, 3), kf_frames_size (frames, 3),
                            kf_frames_data (frames, 4), kf_frames_size (frames, 4));
    else
    if (kf_frames_is (frames, 2, "PARTIALS") && frames->count == 4)
        kf_chat_on_partials (self, worker, kf_frames_data (frames, 3), kf_frames_size (frames, 3));
    else
    if (kf_frames_is (frames, 2, "FINAL") && frames->count == 5) {
        if (!kf_calls_on_final (self, worker, kf_frames_data (frames, 3), kf_frames_size (frames, 3),
                                kf_frames_data (frames, 4), kf_frames_size (frames, 4)))
            kf_chat_on_final (self, worker, kf_frames_data (frames, 3), kf_frames_size (frames, 3),
                              kf_frames_data (frames, 4), kf_frames_size (frames, 4));
    }
    else
    if (kf_frames_is (frames, 2, "ACQUIRE") && frames->count == 5)
        kf_llm_on_acquire (self, worker, kf_frames_data (frames, 3), kf_frames_size (frames, 3),
                           kf_frames_data (frames, 4), kf_frames_size (frames, 4));
    else
    if (kf_frames_is (frames, 2, "KB_GET"))
        kf_kb_transfer_on_get (self, worker, frames->count == 4 ? kf_frames_data (frames, 3) : NULL,
                               frames->count == 4 ? kf_frames_size (frames, 3) : 0);
    else
    if (kf_frames_is (frames, 2, "QUALITY") && frames->count == 4) {
        int bad = kf_answer_quality_on_report (self->quality, kf_frames_data (frames, 3),
                                               kf_frames_size (frames, 3),
                                               kf_store_kb_version (self->store));
        //  At most one line a minute: a worker reports at each version and connection
        int64_t now_ms = kf_mono_ms ();
        if (bad != 0 && now_ms >= self->quality_warned_ms + 60000) {
            self->quality_warned_ms = now_ms;
            if (bad < 0)
                kf_warn ("ignoring a QUALITY from %s: malformed, too large, or of a knowledge-base"
                         " version not current", worker->name);
            else
                kf_warn ("QUALITY from %s: %d bot entries malformed and left out", worker->name, bad);
        }
    }
    else
    if (kf_frames_is (frames, 2, "DISCONNECT"))
        s_worker_lost (self, worker, "disconnected");
    else
    if (!kf_frames_is (frames, 2, "HEARTBEAT"))
        kf_warn ("ignoring unknown worker command from %s", worker->name);
}

static void
s_heartbeat (kf_broker_t *self, int64_t now_us)
{
    kf_worker_t *worker;
    while ((worker = kf_worker_pool_expired (self->pool, now_us)))
        s_worker_lost (self, worker, "missed its heartbeats");
    if (now_us < self->heartbeat_at_us)
        return;
    size_t cursor = 0;
    while ((worker = kf_worker_pool_next (self->pool, &cursor)))
        s_send_to_worker (self, worker, NULL, 0, "HEARTBEAT");
    self->heartbeat_at_us = now_us + self->config->heartbeat_ms * 1000LL;
}

//  --- Setup ------------------------------------------------------------------------------------

//  Binds a socket of `type`; with `curve`, a CURVE server whose peers ZAP checks under `domain`
static void *
s_bind (kf_broker_t *self, int type, const char *endpoint, const kf_curve_t *curve,
        const char *domain)
{
    void *socket = zmq_socket (self->ctx, type);
    if (curve && kf_curve_server_setup (socket, curve, domain)) {
        kf_error ("cannot make %s a CURVE server: %s", endpoint, zmq_strerror (errno));
        zmq_close (socket);
        return NULL;
    }
    int on = 1, linger = 1000, hwm = 1000000;
    zmq_setsockopt (socket, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (socket, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (socket, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (type == ZMQ_ROUTER)
        zmq_setsockopt (socket, ZMQ_ROUTER_MANDATORY, &on, sizeof on);
    if (type == ZMQ_XPUB) {
        //  Not VERBOSE: the XPUB reports a topic's first subscription and its last unsubscription
        //  (or the subscriber's disconnect), exactly the set of topics with someone listening
        zmq_setsockopt (socket, ZMQ_XPUB_NODROP, &on, sizeof on);
    }
    if (zmq_bind (socket, endpoint) == -1) {
        kf_error ("cannot bind %s: %s", endpoint, zmq_strerror (errno));
        zmq_close (socket);
        return NULL;
    }
    return socket;
}

//  The endpoint local workers connect to: a wildcard bind becomes loopback
static void
s_connect_endpoint (const char *bind, char *out, size_t size)
{
    const char *star = strstr (bind, "://*:");
    const char *any = strstr (bind, "://0.0.0.0:");
    if (star)
        snprintf (out, size, "%.*s://127.0.0.1:%s", (int) (star - bind), bind, star + 5);
    else
    if (any)
        snprintf (out, size, "%.*s://127.0.0.1:%s", (int) (any - bind), bind, any + 11);
    else
        snprintf (out, size, "%s", bind);
}

//  Local workers under CURVE: a key pair made for them at start (let in by ZAP), handed over in
//  their environment with the broker's public key (never on a command line: ps shows those)
static int
s_local_worker_keys (kf_zap_t *zap, const kf_curve_t *curve)
{
    kf_curve_t local;
    if (kf_curve_keypair (&local))
        return -1;
    kf_zap_allow_key (zap, KF_ZAP_WORKERS, local.public_key);
    int rc = setenv ("KEFU_WORKER_SECRET", local.secret_key, 1) || setenv ("KEFU_BROKER_KEY", curve->public_key, 1)
           || unsetenv ("KEFU_CURVE_KEY");
    kf_curve_wipe (&local);
    return rc ? -1 : 0;
}

static kf_supervisor_t *
s_start_workers (const kf_broker_config_t *config)
{
    char binary [PATH_MAX], endpoint [512], heartbeat [16], liveness [16], pace [16];
    if (config->worker_bin)
        snprintf (binary, sizeof binary, "%s", config->worker_bin);
    else {
        char self_path [PATH_MAX];
        ssize_t n = readlink ("/proc/self/exe", self_path, sizeof self_path - 1);
        self_path [n > 0 ? n : 0] = 0;
        snprintf (binary, sizeof binary, "%s/kefu-worker", dirname (self_path));
    }
    s_connect_endpoint (config->workers, endpoint, sizeof endpoint);
    if (!config->curve_key_path) {
        //  Plain sockets: keys in the broker's own environment must not turn its workers to CURVE
        unsetenv ("KEFU_BROKER_KEY");
        unsetenv ("KEFU_CURVE_KEY");
        unsetenv ("KEFU_WORKER_SECRET");
    }
    snprintf (heartbeat, sizeof heartbeat, "%d", config->heartbeat_ms);
    snprintf (liveness, sizeof liveness, "%d", config->liveness);
    snprintf (pace, sizeof pace, "%d", config->worker_pace_ms);
    const char *args [] = { "--broker", endpoint, "--db", config->db_path, "--heartbeat-ms",
                            heartbeat, "--liveness", liveness, "--pace-ms", pace,
                            config->config_path ? "--config" : NULL, config->config_path, NULL };
    return kf_supervisor_new (binary, config->local_workers, args);
}

//  At shutdown: requests that arrived but were not read yet, and those still on their way, are
//  answered too (503, or their own decoding error), so no client waits for a reply that will never
//  come. Reads until no request has come for 100 ms, for at most a second; a request sent after
//  that meets the client's own timeout.
static void
s_drain_requests (kf_broker_t *self)
{
    int64_t deadline = kf_mono_us () + 1000000, quiet_until = kf_mono_us () + 100000;
    kf_frames_t frames;
    while (kf_mono_us () < deadline && kf_mono_us () < quiet_until) {
        zmq_pollitem_t item = { self->requests, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 10) <= 0 || kf_frames_recv (&frames, self->requests, ZMQ_DONTWAIT))
            continue;
        quiet_until = kf_mono_us () + 100000;
        kf_request_t req;
        kf_error_t err;
        if (s_decode (&frames, &req, &err) == 0)
            kf_error_set (&err, KF_E_UNAVAILABLE, "the broker is shutting down; send it again later");
        kf_broker_reply_error (self, kf_frames_data (&frames, 0), kf_frames_size (&frames, 0),
                               req.id, req.id_len, &err);
        kf_request_release (&req);
        kf_frames_close (&frames);
        s_commit_and_send (self);
    }
}

static long
s_min_timeout (long a, long b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

//  Drains up to S_BATCH messages from one socket
typedef void (s_handler_fn) (kf_broker_t *self, kf_frames_t *frames);

static void
s_drain (kf_broker_t *self, void *socket, s_handler_fn *handler)
{
    kf_frames_t frames;
    for (int i = 0; i < S_BATCH && kf_frames_recv (&frames, socket, ZMQ_DONTWAIT) == 0; i++) {
        handler (self, &frames);
        kf_frames_close (&frames);
    }
}

static void
s_on_subscription (kf_broker_t *self, kf_frames_t *frames)
{
    kf_stream_hub_on_subscription (self->hub, kf_frames_data (frames, 0), kf_frames_size (frames, 0));
}

static void
s_loop (kf_broker_t *self, kf_supervisor_t *supervisor)
{
    int64_t supervise_at = 0, evict_at = kf_mono_us () + 60000000, idle_at = 0;
    while (!s_interrupted) {
        int64_t now = kf_mono_us ();
        long timeout = (self->heartbeat_at_us - now) / 1000 + 1;
        timeout = s_min_timeout (timeout, kf_chat_timeout (self, now));
        timeout = s_min_timeout (timeout, kf_calls_timeout (self, now));
        timeout = s_min_timeout (timeout, kf_stop_timeout (self, now));
        timeout = s_min_timeout (timeout, kf_stream_hub_timeout (self->hub, now));
        timeout = s_min_timeout (timeout, kf_kb_transfer_timeout (self));
        if (supervisor)
            timeout = s_min_timeout (timeout, 200);
        if (self->dirty_since_us)
            timeout = s_min_timeout (timeout, (S_COMMIT_AGE_US - (now - self->dirty_since_us)) / 1000 + 1);
        zmq_pollitem_t items [4] = {
            { self->streams, 0, ZMQ_POLLIN, 0 },
            { self->requests, 0, ZMQ_POLLIN, 0 },
            { self->workers, 0, ZMQ_POLLIN, 0 },
            { self->zap ? kf_zap_socket (self->zap) : NULL, 0, ZMQ_POLLIN, 0 },
        };
        if (zmq_poll (items, self->zap ? 4 : 3, timeout < 0 ? 0 : timeout) == -1 && errno != EINTR)
            break;
        if (self->zap && (items [3].revents & ZMQ_POLLIN))
            kf_zap_on_readable (self->zap);
        if (items [0].revents & ZMQ_POLLIN)
            s_drain (self, self->streams, s_on_subscription);
        if (items [1].revents & ZMQ_POLLIN)
            s_drain (self, self->requests, s_on_request);
        if (items [2].revents & ZMQ_POLLIN)
            s_drain (self, self->workers, s_on_worker_message);
        now = kf_mono_us ();
        s_heartbeat (self, now);
        kf_chat_sweep_deadlines (self, now);
        kf_calls_sweep (self, now);
        kf_stop_sweep (self, now);
        kf_chat_dispatch (self);
        if (supervisor && now >= supervise_at) {
            kf_supervisor_check (supervisor, now);
            supervise_at = now + 200000;
        }
        if (now >= idle_at) {
            kf_lifecycle_close_idle (self);
            idle_at = now + (self->config->idle_close_ms > 0 && self->config->idle_close_ms < 600000
                             ? self->config->idle_close_ms / 10 + 1000 : 60000) * 1000LL;
        }
        if (now >= evict_at) {
            kf_sessions_evict (self->sessions, now, 600000000LL);
            kf_lifecycle_purge (self);
            evict_at = now + 60000000;
        }
        //  Bounded whatever the rate of new sessions (they reload from the database when needed)
        if (kf_sessions_cached (self->sessions) > S_SESSIONS_MAX + S_SESSIONS_MAX / 8)
            kf_sessions_trim (self->sessions, now, S_SESSIONS_MAX);
        s_commit_and_send (self);
        kf_kb_transfer_tick (self, kf_mono_us ());
    }
}

//  CURVE on: the broker's key pair read, the ZAP handler bound (before any CURVE socket, so no
//  handshake goes unchecked) with the keys each domain lets in. Returns 0 or -1 (logged)
static int
s_secure (kf_broker_t *self, kf_curve_t *curve)
{
    const kf_broker_config_t *config = self->config;
    char why [512];
    if (kf_curve_read_keypair (curve, config->curve_key_path, why, sizeof why)) {
        kf_error ("%s", why);
        return -1;
    }
    if (!(self->zap = kf_zap_new (self->ctx))) {
        kf_error ("cannot start the ZAP handler: %s", zmq_strerror (errno));
        return -1;
    }
    const char *clients = config->authorized_clients, *workers = config->authorized_workers;
    if (!clients || strcmp (clients, "any") == 0) {
        kf_zap_allow_any (self->zap, KF_ZAP_CLIENTS);
        kf_warn ("CURVE: any client key is let in (encrypted, not authenticated); "
                 "--authorized-clients FILE lets in only the keys listed");
    }
    else
    if (kf_zap_allow_file (self->zap, KF_ZAP_CLIENTS, clients, why, sizeof why)) {
        kf_error ("%s", why);
        return -1;
    }
    if (workers && strcmp (workers, "any") == 0)
        kf_zap_allow_any (self->zap, KF_ZAP_WORKERS);
    else
    if (workers && kf_zap_allow_file (self->zap, KF_ZAP_WORKERS, workers, why, sizeof why)) {
        kf_error ("%s", why);
        return -1;
    }
    if (!workers && config->local_workers == 0)
        kf_warn ("CURVE: no worker can connect (no local workers, no --authorized-workers)");
    if (config->local_workers > 0 && s_local_worker_keys (self->zap, curve)) {
        kf_error ("cannot make the local workers' key pair");
        return -1;
    }
    kf_info ("CURVE on, broker public key %s", curve->public_key);
    return 0;
}

int
kf_broker_run (const kf_broker_config_t *config)
{
    kf_broker_t self = { .config = config };
    struct sigaction action = { .sa_handler = s_on_signal };
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    signal (SIGPIPE, SIG_IGN);
    //  A write past the file-size limit fails (EFBIG) instead of killing the process: the batch is
    //  rolled back and its chats get 500, as on a full disk
    signal (SIGXFSZ, SIG_IGN);
    struct rlimit fsize;
    if (getrlimit (RLIMIT_FSIZE, &fsize) == 0 && fsize.rlim_cur != RLIM_INFINITY)
        kf_warn ("file size limit %llu bytes (ulimit -f): the database cannot grow past it",
                 (unsigned long long) fsize.rlim_cur);
    char err [512];
    int rc = 1;
    kf_supervisor_t *supervisor = NULL;
    kf_checkpointer_t *checkpointer = NULL;
    //  Keys first: a bad key file or authorized-keys file is a configuration error (status 2),
    //  found before the database is touched
    self.ctx = zmq_ctx_new ();
    kf_curve_t curve, *secure = config->curve_key_path ? &curve : NULL;
    if (secure && s_secure (&self, secure)) {
        rc = 2;
        goto done;
    }
    self.store = kf_store_open (config->db_path, config->is_synchronous_full, err, sizeof err);
    if (!self.store) {
        kf_error ("database %s: %s", config->db_path, err);
        goto done;
    }
    self.requests = s_bind (&self, ZMQ_ROUTER, config->requests, secure, KF_ZAP_CLIENTS);
    self.streams = s_bind (&self, ZMQ_XPUB, config->streams, secure, KF_ZAP_CLIENTS);
    self.workers = s_bind (&self, ZMQ_ROUTER, config->workers, secure, KF_ZAP_WORKERS);
    if (secure)
        kf_curve_wipe (secure);
    if (!self.requests || !self.streams || !self.workers)
        goto done;
    checkpointer = kf_checkpointer_new (config->db_path, 200);
    kf_store_set_autocheckpoint (self.store, checkpointer == NULL);
    if (!(self.sessions = kf_sessions_new (self.store))
    ||  !(self.conversations = kf_conversations_new (self.store))
    ||  !(self.bots = kf_bots_new (self.store))
    ||  !(self.history = kf_history_new (self.store))
    ||  !(self.escalations = kf_escalations_new (self.store))
    ||  !(self.kb_catalog = kf_kb_catalog_new (self.store))
    ||  !(self.kb_items = kf_kb_items_new (self.store, self.kb_catalog)))
        goto done;
    self.cache = kf_answer_cache_new ((size_t) config->cache_mb << 20);
    self.quality = kf_answer_quality_new ();
    self.pool = kf_worker_pool_new (config->heartbeat_ms, config->liveness);
    self.hub = kf_stream_hub_new (self.streams, config->stream_wait_ms, config->stream_retention_ms);
    self.jobs = kf_dict_new ();
    kf_llm_jobs_init (&self);
    kf_kb_transfer_init (&self);
    self.started_us = kf_mono_us ();
    if (config->local_workers > 0 && !(supervisor = s_start_workers (config)))
        goto done;
    kf_info ("listening%s: requests %s, streams %s, workers %s, database %s",
             self.zap ? " (CURVE)" : "", config->requests, config->streams, config->workers,
             config->db_path);
    s_loop (&self, supervisor);
    kf_info ("shutting down");
    s_drain_requests (&self);
    kf_chat_destroy_all (&self);
    kf_calls_destroy_all (&self);
    s_commit_and_send (&self);
    size_t unsent = kf_stream_hub_drain (self.hub, 1000);
    if (unsent)
        kf_warn ("%zu stream events could not be delivered before shutdown", unsent);
    rc = 0;
done:
    if (kf_supervisor_destroy (&supervisor) > 0)
        rc = 1;
    kf_checkpointer_destroy (&checkpointer);
    size_t cursor = 0;
    kf_worker_t *worker;
    while (self.pool && (worker = kf_worker_pool_next (self.pool, &cursor)))
        s_send_to_worker (&self, worker, NULL, 0, "DISCONNECT");
    kf_stream_hub_destroy (&self.hub);
    kf_worker_pool_destroy (&self.pool);
    kf_history_destroy (&self.history);
    kf_escalations_destroy (&self.escalations);
    kf_kb_items_destroy (&self.kb_items);
    kf_answer_cache_destroy (&self.cache);
    kf_answer_quality_destroy (&self.quality);
    kf_kb_catalog_destroy (&self.kb_catalog);
    kf_bots_destroy (&self.bots);
    kf_conversations_destroy (&self.conversations);
    kf_sessions_destroy (&self.sessions);
    kf_llm_jobs_destroy (&self);
    kf_kb_transfer_destroy (&self);
    if (self.jobs)
        kf_dict_destroy (&self.jobs);
    free (self.outbox);
    kf_chat_forget_ended (&self);
    free (self.ended);
    msgpack_sbuffer_destroy (&self.event_buffer);
    if (self.requests) zmq_close (self.requests);
    if (self.streams) zmq_close (self.streams);
    if (self.workers) zmq_close (self.workers);
    kf_zap_destroy (&self.zap);
    zmq_ctx_term (self.ctx);
    kf_store_destroy (&self.store);
    return rc;
}
