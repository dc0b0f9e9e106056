/*  test_security.c - CURVE over real processes: keys made with kefuctl keygen, a broker with
    --curve-key and authorized-keys files, its local worker on the key pair it made, a remote
    worker with a key of its own, and clients with good, unknown and no keys.
        1. An authorized client chats (the reply streamed over the CURVE SUB socket); kefuctl with
           KEFU_BROKER_KEY / KEFU_CURVE_KEY works as without CURVE.
        2. An unknown key gets no answer, and the client library says so (EACCES; kefuctl names
           the key); a plain client and a client with the wrong broker key fail their handshake
           (EPROTO, ECONNRESET); a second call after a refusal returns instead of blocking; once the key is
           added to the file, the same client gets in.
        3. A worker with an authorized key serves; one with an unknown key is refused (the broker
           logs it, stats.security counts it) until its key is added to the file, which the
           broker reads again without a restart.
        4. A plain broker whose environment holds client keys keeps its local workers plain.
        5. Bad setups stop the broker before it listens: a .pub file as its key pair, an
           authorized-keys line that is no key, authorized keys without --curve-key. */
#include "harness.h"
#include "common/curve.h"
#include "common/mpack.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static kf_harness_t s_h;

static void
s_path (char *out, size_t size, const char *name)
{
    snprintf (out, size, "%s/%s", s_h.dir, name);
}

//  kefuctl keygen NAME in the test directory; returns the public key it printed
static void
s_keygen (const char *name, char *public_key)
{
    char base [320];
    s_path (base, sizeof base, name);
    const char *args [] = { "keygen", base, NULL };
    int status;
    char *out = h_kefuctl_output (&s_h, args, &status);
    CHECK_INT (status, 0);
    CHECK (strlen (out) == KF_CURVE_KEY_LEN + 1 && out [KF_CURVE_KEY_LEN] == '\n');
    memcpy (public_key, out, KF_CURVE_KEY_LEN);
    public_key [KF_CURVE_KEY_LEN] = 0;
    free (out);
    //  The pair reads back, the secret file private
    kf_curve_t curve;
    char path [330], why [512];
    snprintf (path, sizeof path, "%s.key", base);
    CHECK_INT (kf_curve_read_keypair (&curve, path, why, sizeof why), 0);
    CHECK_STR (curve.public_key, public_key);
    struct stat info;
    CHECK_INT (stat (path, &info), 0);
    CHECK_INT (info.st_mode & 0777, 0600);
    //  keygen never replaces a key
    CHECK_INT (h_kefuctl (&s_h, args), 1);
}

//  Reads the start of file `path` (at most size - 1 bytes, NUL-terminated)
static void
s_read (const char *path, char *out, size_t size)
{
    FILE *file = fopen (path, "r");
    CHECK (file);
    size_t n = fread (out, 1, size - 1, file);
    out [n] = 0;
    fclose (file);
}

static void
s_write (const char *name, const char *text, const char *mode)
{
    char path [320];
    s_path (path, sizeof path, name);
    FILE *file = fopen (path, mode);
    CHECK (file);
    fputs (text, file);
    fclose (file);
}

//  A client with the key pair in file `key_name` (NULL: a fresh pair) of broker key `server_name`
static kf_client_t *
s_client (const char *server_name, const char *key_name, int timeout_ms)
{
    char server [320], key [320], why [512];
    s_path (server, sizeof server, server_name);
    if (key_name)
        s_path (key, sizeof key, key_name);
    kf_curve_t curve;
    if (key_name)
        CHECK_INT (kf_curve_client_config (&curve, server, key, why, sizeof why), 1);
    else {                              //  Not KEFU_CURVE_KEY's pair: a fresh one
        CHECK_INT (kf_curve_read_public (curve.server, server, why, sizeof why), 0);
        CHECK_INT (kf_curve_keypair (&curve), 0);
    }
    kf_client_t *client = kf_client_new_curve (s_h.requests, s_h.streams, &curve);
    CHECK (client);
    kf_client_set_timeout (client, timeout_ms);
    return client;
}

//  A call that gets no reply, and why
static int
s_unanswered (kf_client_t *client)
{
    kf_reply_t *reply = NULL;
    CHECK_INT (kf_client_call (client, "health", NULL, 0, &reply), -1);
    CHECK (reply == NULL);
    return errno;
}

static int64_t s_security (const char *domain, const char *key);

static void
s_on_event (void *arg, const msgpack_object *event)
{
    (void) event;
    (*(int *) arg)++;
}

static void
s_test_clients (void)
{
    //  The harness's client takes KEFU_BROKER_KEY and KEFU_CURVE_KEY (alice's), like kefuctl
    kf_client_t *client = h_client (&s_h);
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    h_pack_json (&params, "{\"message\":\"怎么申请退货？\",\"user_id\":\"u-curve\"}");
    int events = 0;
    kf_reply_t *reply = NULL;
    CHECK_INT (kf_client_chat_stream (client, params.data, params.size, s_on_event, &events, &reply), 0);
    CHECK (reply->ok);
    CHECK (strstr (h_str (reply->result, "reply"), "申请售后"));
    CHECK (events >= 3);                //  meta, tokens, done over the CURVE SUB socket
    CHECK_INT (kf_client_repaired (client), 0);
    kf_reply_destroy (&reply);
    msgpack_sbuffer_destroy (&params);
    kf_client_destroy (&client);
    const char *health [] = { "health", NULL };
    CHECK_INT (h_kefuctl (&s_h, health), 0);

    //  Mallory's key is in no file: refused, and said so
    client = s_client ("broker.pub", "mallory.key", 1000);
    CHECK_INT (s_unanswered (client), EACCES);
    CHECK_INT (s_unanswered (client), EACCES);      //  Returns again: no peer, no blocking send
    kf_client_destroy (&client);
    char key [320];
    s_path (key, sizeof key, "mallory.key");
    const char *as_mallory [] = { "--curve-key", key, "--timeout", "1000", "health", NULL };
    int status;
    char *errors = NULL;
    char *out = h_kefuctl_outputs (&s_h, as_mallory, &status, &errors);
    CHECK_INT (status, 3);
    CHECK (strstr (errors, "refused this client's CURVE key"));
    free (out);
    free (errors);
    //  A fresh key pair (no KEFU_CURVE_KEY) is no better
    client = s_client ("broker.pub", NULL, 1000);
    CHECK_INT (s_unanswered (client), EACCES);
    kf_client_destroy (&client);

    //  Anyone may try a handshake: refusals are counted, but logged at most 10 a minute
    int64_t denied = s_security ("clients", "denied");
    for (int i = 0; i < 12; i++) {
        client = s_client ("broker.pub", NULL, 1000);
        CHECK_INT (s_unanswered (client), EACCES);
        kf_client_destroy (&client);
    }
    CHECK (s_security ("clients", "denied") >= denied + 12);
    char log_path [320];
    s_path (log_path, sizeof log_path, "broker.log");
    FILE *log = fopen (log_path, "r");
    CHECK (log);
    char line [1024];
    int logged = 0;
    while (fgets (line, sizeof line, log))
        logged += strstr (line, "refused the CURVE key") != NULL;
    fclose (log);
    CHECK (logged >= 1 && logged <= 10);

    //  No CURVE, or the wrong broker key: the handshake fails
    //  (a loaded machine may see the broker drop the connection before libzmq reports the
    //  protocol error: a reset says the same)
    client = kf_client_new (s_h.requests, s_h.streams);
    kf_client_set_timeout (client, 1000);
    for (int i = 0; i < 2; i++) {
        int failure = s_unanswered (client);
        CHECK (failure == EPROTO || failure == ECONNRESET);
    }
    kf_client_destroy (&client);
    client = s_client ("alice.pub", "alice.key", 1000);
    CHECK_INT (s_unanswered (client), ECONNRESET);      //  The broker cannot read its hello
    kf_client_destroy (&client);
}

//  stats.security.<domain>.<key>
static int64_t
s_security (const char *domain, const char *key)
{
    kf_client_t *client = h_client (&s_h);
    kf_reply_t *reply = h_call (client, "stats", "{}");
    CHECK (reply->ok);
    const msgpack_object *security = kf_mp_get (reply->result, "security");
    CHECK (security && security->type == MSGPACK_OBJECT_MAP);
    int64_t value = kf_mp_get_int (kf_mp_get (security, domain), key, -1);
    kf_reply_destroy (&reply);
    kf_client_destroy (&client);
    return value;
}

static void
s_test_workers (const char *mallory_key)
{
    char broker_pub [320], w1 [320], mallory [320];
    s_path (broker_pub, sizeof broker_pub, "broker.pub");
    s_path (w1, sizeof w1, "w1.key");
    s_path (mallory, sizeof mallory, "mallory.key");
    const char *good [] = { "--name", "remote-w1", "--broker-key", broker_pub, "--curve-key", w1,
                            "--heartbeat-ms", "300", NULL };
    h_start_worker (&s_h, good);
    h_wait_workers (&s_h, 2, false);
    int64_t denied = s_security ("workers", "denied");
    const char *bad [] = { "--name", "remote-mallory", "--broker-key", broker_pub, "--curve-key",
                           mallory, "--heartbeat-ms", "300", NULL };
    h_start_worker (&s_h, bad);
    for (int i = 0; i < 50 && s_security ("workers", "denied") == denied; i++)
        h_sleep_ms (100);
    CHECK (s_security ("workers", "denied") > denied);
    h_wait_workers (&s_h, 2, false);            //  Not let in
    //  Its key added to the file (as its .pub file, the way an operator would: cat mallory.pub
    //  >> workers.txt): let in at its next try, no restart
    char pub [330], text [256];
    s_path (pub, sizeof pub, "mallory.pub");
    s_read (pub, text, sizeof text);
    CHECK (strstr (text, mallory_key));
    s_write ("workers.txt", text, "a");
    h_wait_workers (&s_h, 3, false);
    CHECK_INT (s_security ("workers", "keys"), 3);  //  Two in the file, the local workers' one
    CHECK_INT (s_security ("clients", "keys"), 1);
    CHECK (s_security ("clients", "denied") >= 3);
    CHECK (s_security ("clients", "allowed") >= 1);
}

//  A refused client whose key the operator then authorizes gets in on its next call, without a
//  new client (ZeroMQ does not retry a refused handshake; the library connects again)
static void
s_test_client_added (const char *mallory_key)
{
    kf_client_t *client = s_client ("broker.pub", "mallory.key", 1000);
    CHECK_INT (s_unanswered (client), EACCES);
    char line [80];
    snprintf (line, sizeof line, "%s\n", mallory_key);
    s_write ("clients.txt", line, "a");
    kf_client_set_timeout (client, 5000);
    kf_reply_t *reply = h_call (client, "health", "{}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    kf_client_destroy (&client);
    CHECK_INT (s_security ("clients", "keys"), 2);
}

//  Starts kefu-broker with `argv` (NULL-terminated), its output into file `log`
static pid_t
s_spawn_broker (const char *const *argv, const char *log)
{
    pid_t pid = fork ();
    CHECK (pid >= 0);
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);     //  A failed check must not leave it running
        int fd = open (log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2 (fd, 1);
        dup2 (fd, 2);
        execv (argv [0], (char *const *) argv);
        _exit (127);
    }
    return pid;
}

//  An authorized-keys file broken while the broker runs (a line that is no key, the file deleted)
//  leaves the keys read before in force, and says so; a good file is read again
static void
s_test_file_broken (void)
{
    char clients [320], log_path [320], log [65536];
    s_path (clients, sizeof clients, "clients.txt");
    s_path (log_path, sizeof log_path, "broker.log");
    int64_t keys = s_security ("clients", "keys");
    s_write ("clients.txt", "not-a-key\n", "w");
    kf_client_t *client = s_client ("broker.pub", "alice.key", 5000);
    kf_reply_t *reply = h_call (client, "health", "{}");       //  Still let in
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    kf_client_destroy (&client);
    CHECK_INT (s_security ("clients", "keys"), keys);
    CHECK_INT (unlink (clients), 0);
    client = s_client ("broker.pub", "alice.key", 5000);
    reply = h_call (client, "health", "{}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    kf_client_destroy (&client);
    s_read (log_path, log, sizeof log);
    CHECK (strstr (log, "line 1: not a 40-character Z85 public key (keeping the keys read before)"));
    CHECK (strstr (log, "No such file or directory (keeping the keys read before)"));
    //  Written again with alice alone: mallory, let in before, is refused now
    char alice [48];
    kf_curve_t pair;
    char key_path [320], why [512], text [128];
    s_path (key_path, sizeof key_path, "alice.key");
    CHECK_INT (kf_curve_read_keypair (&pair, key_path, why, sizeof why), 0);
    snprintf (alice, sizeof alice, "%s", pair.public_key);
    snprintf (text, sizeof text, "%s\n", alice);
    s_write ("clients.txt", text, "w");
    client = s_client ("broker.pub", "mallory.key", 1000);
    CHECK_INT (s_unanswered (client), EACCES);
    kf_client_destroy (&client);
    CHECK_INT (s_security ("clients", "keys"), 1);
}

//  A plain broker started where KEFU_BROKER_KEY and KEFU_CURVE_KEY are set (this test sets
//  them) keeps its local workers plain too: they serve
static void
s_test_plain_broker_in_curve_environment (void)
{
    CHECK (getenv ("KEFU_BROKER_KEY") && getenv ("KEFU_CURVE_KEY"));
    char log [320], requests [320], workers [320], db [320];
    s_path (log, sizeof log, "plain.log");
    snprintf (requests, sizeof requests, "ipc://%s/plain-requests", s_h.dir);
    snprintf (workers, sizeof workers, "ipc://%s/plain-workers", s_h.dir);
    s_path (db, sizeof db, "plain.db");
    char streams [330];
    snprintf (streams, sizeof streams, "ipc://%s/plain-streams", s_h.dir);
    const char *argv [] = { KEFU_BIN_DIR "/kefu-broker", "--requests", requests, "--streams", streams,
                            "--workers-endpoint", workers, "--db", db, "--workers", "1", NULL };
    pid_t pid = s_spawn_broker (argv, log);
    kf_client_t *client = kf_client_new (requests, NULL);
    kf_client_set_timeout (client, 500);
    int64_t count = 0;
    for (int i = 0; i < 50 && count < 1; i++) {
        kf_reply_t *reply = NULL;
        if (kf_client_call (client, "health", NULL, 0, &reply) == 0) {
            count = kf_mp_get_int (reply->result, "workers", 0);
            kf_reply_destroy (&reply);
        }
        if (count < 1)
            h_sleep_ms (100);
    }
    CHECK_INT (count, 1);
    kf_client_destroy (&client);
    //  A CURVE client of this plain broker: the mechanisms differ (told as such, or as a
    //  handshake broken off when the broker closes first: either way, no wait for ever)
    kf_curve_t curve;
    char why [512];
    CHECK_INT (kf_curve_client_config (&curve, NULL, NULL, why, sizeof why), 1);
    client = kf_client_new_curve (requests, NULL, &curve);
    kf_client_set_timeout (client, 1000);
    int failure = s_unanswered (client);
    CHECK (failure == EPROTO || failure == ECONNRESET);
    kf_client_destroy (&client);
    kill (pid, SIGTERM);
    int status;
    CHECK_INT (waitpid (pid, &status, 0), pid);
}

//  Runs kefu-broker (or kefu-worker, `is_worker`) with `args`; it must exit with `code` before it
//  listens or connects, its output holding `text`
static void
s_refuses (bool is_worker, const char *const *args, int code, const char *text)
{
    char log [320];
    s_path (log, sizeof log, "refused.log");
    const char *broker [] = { KEFU_BIN_DIR "/kefu-broker", "--requests", "ipc:///tmp/kefu-refused-req",
                              "--streams", "ipc:///tmp/kefu-refused-str", "--workers-endpoint",
                              "ipc:///tmp/kefu-refused-wrk", "--db", "/tmp/kefu-refused.db", NULL };
    const char *worker [] = { KEFU_BIN_DIR "/kefu-worker", "--broker", "ipc:///tmp/kefu-refused-wrk",
                              "--db", "/tmp/kefu-refused.db", NULL };
    const char *const *fixed = is_worker ? worker : broker;
    const char *argv [32];
    int argc = 0;
    while (fixed [argc]) {
        argv [argc] = fixed [argc];
        argc++;
    }
    for (int i = 0; args [i] && argc < 30; i++)
        argv [argc++] = args [i];
    argv [argc] = NULL;
    pid_t pid = s_spawn_broker (argv, log);
    int status, waited = 0;
    while (waitpid (pid, &status, WNOHANG) == 0 && waited < 100) {
        h_sleep_ms (50);
        waited++;
    }
    if (waited == 100) {                //  It started instead of refusing: a failure, not a hang
        kill (pid, SIGKILL);
        waitpid (pid, &status, 0);
        fprintf (stderr, "%s did not refuse to start (%s)\n", argv [0], text);
    }
    CHECK (waited < 100);
    CHECK (WIFEXITED (status));
    CHECK_INT (WEXITSTATUS (status), code);
    char text_read [4096];
    s_read (log, text_read, sizeof text_read);
    if (!strstr (text_read, text))
        fprintf (stderr, "expected \"%s\" in: %s\n", text, text_read);
    CHECK (strstr (text_read, text));
}

static void
s_test_bad_setups (void)
{
    char pub [320], key [320], bad [320];
    s_path (pub, sizeof pub, "broker.pub");
    s_path (key, sizeof key, "broker.key");
    s_path (bad, sizeof bad, "bad-clients.txt");
    s_write ("bad-clients.txt", "# one good line, then one that is not a key\n"
                                "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\nnot-a-key\n", "w");
    const char *public_only [] = { "--curve-key", pub, NULL };
    s_refuses (false, public_only, 2, "has no secret key");
    const char *bad_file [] = { "--curve-key", key, "--authorized-clients", bad, NULL };
    s_refuses (false, bad_file, 2, "line 3: not a 40-character Z85 public key");
    const char *no_curve [] = { "--authorized-workers", bad, NULL };
    s_refuses (false, no_curve, 2, "need --curve-key");
    const char *no_key [] = { "--curve-key", "/nonexistent/broker.key", NULL };
    s_refuses (false, no_key, 2, "cannot read key file /nonexistent/broker.key");
    const char *no_list [] = { "--curve-key", key, "--authorized-clients", "/nonexistent/clients", NULL };
    s_refuses (false, no_list, 2, "cannot read authorized keys /nonexistent/clients");
    //  A worker: a broker key that is neither key nor file, its own key file missing or public only
    const char *garbage [] = { "--broker-key", "not-a-key", NULL };
    s_refuses (true, garbage, 2, "not-a-key");
    const char *missing [] = { "--broker-key", pub, "--curve-key", "/nonexistent/w.key", NULL };
    s_refuses (true, missing, 2, "cannot read key file /nonexistent/w.key");
    const char *public_pair [] = { "--broker-key", pub, "--curve-key", pub, NULL };
    s_refuses (true, public_pair, 2, "has no secret key");
    unlink ("/tmp/kefu-refused.db");
}

int
main (void)
{
    h_init (&s_h, "security");
    char broker [48], alice [48], mallory [48], w1 [48];
    s_keygen ("broker", broker);
    s_keygen ("alice", alice);
    s_keygen ("mallory", mallory);
    s_keygen ("w1", w1);
    char text [256];
    //  Comments, a key followed by a note, and a key that starts with '#' would still count
    snprintf (text, sizeof text, "# clients of the shop\n%s  order service\n", alice);
    s_write ("clients.txt", text, "w");
    snprintf (text, sizeof text, "%s\n", w1);
    s_write ("workers.txt", text, "w");
    char path [320];
    s_path (path, sizeof path, "broker.pub");
    setenv ("KEFU_BROKER_KEY", path, 1);
    s_path (path, sizeof path, "alice.key");
    setenv ("KEFU_CURVE_KEY", path, 1);

    char key [320], clients [320], workers [320];
    s_path (key, sizeof key, "broker.key");
    s_path (clients, sizeof clients, "clients.txt");
    s_path (workers, sizeof workers, "workers.txt");
    const char *args [] = { "--curve-key", key, "--authorized-clients", clients,
                            "--authorized-workers", workers, "--heartbeat-ms", "300", NULL };
    h_start_broker (&s_h, 1, args);     //  Its local worker, on the key pair it made, is ready
    h_import_sample (&s_h);
    h_sleep_ms (300);
    s_test_clients ();
    s_test_workers (mallory);
    s_test_client_added (mallory);
    s_test_file_broken ();
    s_test_plain_broker_in_curve_environment ();
    s_test_bad_setups ();
    h_cleanup (&s_h);
    TEST_PASS ("test_security");
    return 0;
}
