/*  harness.h - integration tests start the real kefu-broker, kefu-worker and kefuctl as processes on
    ipc:// endpoints in a temporary directory, with a real SQLite file, and talk to them over real
    ZeroMQ sockets through the client library. */
#ifndef KF_HARNESS_H
#define KF_HARNESS_H
#include <stdbool.h>
#include <sys/types.h>
#include <zmq.h>
#include "common/kefu_client.h"
#include "common/mpack.h"
#include "testutil.h"

typedef struct {
    char dir [256];             //  Temporary directory
    char requests [300], streams [300], workers [300], db [300];
    pid_t broker;               //  Broker process, 0 when not running
    pid_t workers_pids [8];     //  Workers started outside the broker
    int worker_count;
} kf_harness_t;

//  Makes the temporary directory and endpoint names.
void h_init (kf_harness_t *h, const char *name);

//  Starts the broker with extra arguments (NULL-terminated list) and waits until it answers health
//  with at least `workers` workers. The hot-answer cache is off unless `args` sets --cache-mb. Aborts the test when it does not within 10 s.
void h_start_broker (kf_harness_t *h, int workers, const char *const *args);

//  Starts one kefu-worker outside the broker with extra arguments; returns its pid.
pid_t h_start_worker (kf_harness_t *h, const char *const *args);

//  Waits until health reports `workers` workers (at least when `at_least`).
void h_wait_workers (kf_harness_t *h, int workers, bool at_least);

//  Sends `signum` to the broker and reaps it.
void h_kill_broker (kf_harness_t *h, int signum);

//  Runs kefuctl with arguments against this broker; returns its exit code.
int h_kefuctl (kf_harness_t *h, const char *const *args);

//  Runs kefuctl like h_kefuctl and returns what it printed on stdout (heap, caller frees).
char *h_kefuctl_output (kf_harness_t *h, const char *const *args, int *status);

//  Same, and when `errors` is not NULL also what it printed on stderr, in *errors (heap, caller
//  frees; without it, stderr is the test's).
char *h_kefuctl_outputs (kf_harness_t *h, const char *const *args, int *status, char **errors);

//  Imports the sample knowledge base and waits until workers answer from it.
void h_import_sample (kf_harness_t *h);

//  Stops every process and removes the directory.
void h_cleanup (kf_harness_t *h);

//  A client on this broker.
kf_client_t *h_client (kf_harness_t *h);

//  Calls `method` with params given as JSON (printf format). Fails the test when no reply comes.
kf_reply_t *h_call (kf_client_t *client, const char *method, const char *json_format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Packs JSON text (printf format) into `buffer` (initialised here; caller destroys).
void h_pack_json (msgpack_sbuffer *buffer, const char *json_format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  The string under `key` of a result ("" when missing), NUL-terminated. Borrowed: kept until the
//  test exits, so it can be used inline in checks.
const char *h_str (const msgpack_object *map, const char *key);

//  Raw sockets for tests that need control over every frame: a DEALER on the requests and a SUB
//  on the streams.
typedef struct {
    void *ctx, *dealer, *sub;
    kf_reply_t *stash [16];     //  Replies received while waiting for another (h_raw_reply_for)
} h_raw_t;

void h_raw_open (h_raw_t *raw, kf_harness_t *h);
void h_raw_close (h_raw_t *raw);

//  Sends {id, method, params} with params from JSON (printf format).
void h_raw_send (h_raw_t *raw, const char *id, const char *method, const char *json_format, ...)
    __attribute__ ((format (printf, 4, 5)));

//  Receives one reply within `timeout_ms`; NULL on timeout. Caller destroys.
kf_reply_t *h_raw_reply (h_raw_t *raw, int timeout_ms);

//  The reply to request `id`, within 10 s (fails the test otherwise). Replies arrive in any order:
//  those to other requests wait in the raw's stash until asked for. Caller destroys.
kf_reply_t *h_raw_reply_for (h_raw_t *raw, const char *id);

//  The id of a reply ("" when none). Borrowed from the reply.
const char *h_reply_id (kf_reply_t *reply, char *buffer, size_t size);

//  Receives one stream event within `timeout_ms`: copies the topic, returns the decoded event
//  in `event` (caller destroys). False on timeout.
bool h_raw_event (h_raw_t *raw, int timeout_ms, char *topic, size_t topic_size,
                  msgpack_unpacked *event);

//  Milliseconds sleep.
void h_sleep_ms (int ms);

//  Starts the fake LLM upstream (tests/fake/fake_upstream, killed when the test dies) and returns
//  the port it listens on (127.0.0.1); its pid in *pid when `pid` is not NULL.
int h_start_fake_upstream (pid_t *pid);

//  Starts the fake shop API (tests/fake/fake_business.c) the same way; returns its port.
int h_start_fake_business (pid_t *pid);

//  The fake's GET /stats body (JSON text, heap, caller frees), and one number from it (a key such
//  as "requests"; fails the test when absent).
char *h_fake_stats (int port);
long long h_fake_stat (const char *stats, const char *key);
#endif
