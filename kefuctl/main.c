/*  main.c - kefuctl: the command line for people (chat, call, kb import and export, stats, history,
    bench). */
#include "kefuctl/kefuctl.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include <errno.h>
#include <zmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: kefuctl [--requests EP] [--streams EP] [--timeout MS] COMMAND [ARGS]\n"
        "commands:\n"
        "  chat [--session ID] [--user ID] [--bot ID] [--channel C] [--no-stream] [MESSAGE...]\n"
        "                         chat with kefu; without MESSAGE, an interactive session\n"
        "  call METHOD [JSON]     send any method with JSON params, print the reply as JSON\n"
        "  kb import FILE [--bot ID] [--format jsonl|csv]\n"
        "                         import knowledge items (batches of 500, idempotent by external_id);\n"
        "                         the format comes from a .csv or .jsonl name; FILE - is stdin\n"
        "  kb export [--bot ID] [--format jsonl|csv] [--output FILE]\n"
        "                         every knowledge item, in the format kb import reads\n"
        "  history SESSION_ID [LIMIT [OFFSET]]\n"
        "  sessions USER_ID       a user's conversations, one JSON line each, newest first\n"
        "  export --session ID | --user ID   every message as a JSON line (audits, replay)\n"
        "  agent list|take|reply|resolve|watch   a human agent's desk (kefuctl agent for usage)\n"
        "  stats | health\n"
        "  bench [--help]         measure throughput and latency (see BENCHMARKS.md)\n"
        "  keygen NAME            a CURVE key pair: NAME.key (private) and NAME.pub\n"
        "endpoints default to tcp://127.0.0.1:7700 and :7701, or $KEFU_REQUESTS / $KEFU_STREAMS\n"
        "CURVE: --broker-key KEY|FILE (or $KEFU_BROKER_KEY) the broker's public key, --curve-key FILE\n"
        "(or $KEFU_CURVE_KEY) this client's key pair; without one a fresh pair is made\n");
}

int
kefuctl_print_reply (kf_reply_t *reply)
{
    if (!reply->ok) {
        fprintf (stderr, "error %d %s: %s\n", kf_errc_code (reply->error.errc),
                 kf_errc_name (reply->error.errc), reply->error.message);
        return 1;
    }
    char *json = reply->result ? kf_json_from_msgpack_pretty (reply->result) : kf_strdup ("null");
    printf ("%s\n", json);
    free (json);
    return 0;
}

kf_reply_t *
kefuctl_call (kf_client_t *client, const char *method, msgpack_sbuffer *params)
{
    kf_reply_t *reply = NULL;
    int rc = kf_client_call (client, method, params->data, params->size, &reply);
    msgpack_sbuffer_clear (params);
    if (rc) {
        fprintf (stderr, "kefuctl: no reply from the broker (%s)\n", zmq_strerror (errno));
        return NULL;
    }
    if (!reply->ok) {
        kefuctl_print_reply (reply);
        kf_reply_destroy (&reply);
    }
    return reply;
}

int
kefuctl_json_params (const char *json, msgpack_sbuffer *buffer)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    char err [256];
    if (kf_json_to_msgpack (json, strlen (json), &pk, err, sizeof err)) {
        fprintf (stderr, "kefuctl: invalid JSON: %s\n", err);
        return -1;
    }
    return 0;
}

//  Sends packed params (may be empty) and prints the reply. Returns the exit code.
static int
s_call_packed (kf_client_t *client, const char *method, msgpack_sbuffer *params)
{
    kf_reply_t *reply = NULL;
    int rc = kf_client_call (client, method, params->size ? params->data : NULL, params->size, &reply);
    msgpack_sbuffer_destroy (params);
    if (rc) {
        fprintf (stderr, "kefuctl: no reply from the broker (%s)\n",
                 errno == ETIMEDOUT ? "timed out; is kefu-broker running?" : zmq_strerror (errno));
        return 3;
    }
    rc = kefuctl_print_reply (reply);
    kf_reply_destroy (&reply);
    return rc;
}

static int
s_call (kf_client_t *client, const char *method, const char *json)
{
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    if (json && kefuctl_json_params (json, &params)) {
        msgpack_sbuffer_destroy (&params);
        return 2;
    }
    return s_call_packed (client, method, &params);
}

//  Prints a page of a session's history; the id goes in as given, whatever characters it holds
static int
s_history (kf_client_t *client, const char *session_id, int limit, int offset)
{
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &params, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    kf_mp_pack_kv_str (&pk, "session_id", session_id);
    kf_mp_pack_kv_int (&pk, "limit", limit);
    kf_mp_pack_kv_int (&pk, "offset", offset);
    return s_call_packed (client, "history", &params);
}

int
main (int argc, char *argv [])
{
    kefuctl_options_t options = {
        getenv ("KEFU_REQUESTS") ? getenv ("KEFU_REQUESTS") : "tcp://127.0.0.1:7700",
        getenv ("KEFU_STREAMS") ? getenv ("KEFU_STREAMS") : "tcp://127.0.0.1:7701",
        35000, NULL
    };
    const char *broker_key = NULL, *curve_key = NULL;
    int i = 1;
    for (; i + 1 < argc && strncmp (argv [i], "--", 2) == 0; i += 2) {
        if (strcmp (argv [i], "--requests") == 0)     options.requests = argv [i + 1];
        else if (strcmp (argv [i], "--streams") == 0) options.streams = argv [i + 1];
        else if (strcmp (argv [i], "--timeout") == 0) options.timeout_ms = atoi (argv [i + 1]);
        else if (strcmp (argv [i], "--broker-key") == 0) broker_key = argv [i + 1];
        else if (strcmp (argv [i], "--curve-key") == 0)  curve_key = argv [i + 1];
        else break;
    }
    if (i >= argc || strcmp (argv [i], "--help") == 0 || strcmp (argv [i], "help") == 0) {
        s_usage ();
        return i >= argc ? 2 : 0;
    }
    const char *command = argv [i++];
    if (strcmp (command, "keygen") == 0)        //  Needs no keys of its own
        return kefuctl_keygen (argc - i, argv + i);
    static kf_curve_t curve;
    char why [512];
    int secure = kf_curve_client_config (&curve, broker_key, curve_key, why, sizeof why);
    if (secure < 0) {
        fprintf (stderr, "kefuctl: %s\n", why);
        return 2;
    }
    options.curve = secure ? &curve : NULL;
    const char *own_key = curve_key ? curve_key : getenv ("KEFU_CURVE_KEY");
    bool is_key_made = secure && !(own_key && *own_key);   //  A pair for this run: no broker knows it
    if (strcmp (command, "bench") == 0)
        return kefuctl_bench (&options, argc - i, argv + i);
    kf_client_t *client = kf_client_new_curve (options.requests, options.streams, options.curve);
    if (!client) {
        fprintf (stderr, "kefuctl: invalid endpoint %s or %s\n", options.requests, options.streams);
        return 2;
    }
    //  A missing broker should say so at once, not after a chat's full timeout
    kf_client_set_timeout (client, options.timeout_ms < 1500 ? options.timeout_ms : 1500);
    kf_reply_t *probe = NULL;
    if (kf_client_call (client, "health", NULL, 0, &probe) == -1) {
        if (errno == EACCES && is_key_made)
            fprintf (stderr, "kefuctl: the broker at %s refused this client's CURVE key, made for"
                             " this run only (make one with kefuctl keygen NAME, give it with"
                             " --curve-key or KEFU_CURVE_KEY, and add NAME.pub to the broker's"
                             " --authorized-clients file)\n", options.requests);
        else
        if (errno == EACCES)
            fprintf (stderr, "kefuctl: the broker at %s refused this client's CURVE key %s (add it"
                             " to the broker's --authorized-clients file)\n", options.requests,
                     curve.public_key);
        else
        if (errno == EPROTO)
            fprintf (stderr, options.curve
                     ? "kefuctl: the broker at %s does not use CURVE (drop --broker-key and"
                       " KEFU_BROKER_KEY)\n"
                     : "kefuctl: the handshake with %s failed: the broker uses CURVE (give its"
                       " public key: --broker-key or KEFU_BROKER_KEY)\n", options.requests);
        else
        if (errno == ECONNRESET)
            fprintf (stderr, options.curve
                     ? "kefuctl: the CURVE handshake with %s broke off (is the broker's public"
                       " key right, and is it a kefu broker?)\n"
                     : "kefuctl: the handshake with %s broke off (is it a kefu broker?)\n",
                     options.requests);
        else
            fprintf (stderr, "kefuctl: kefu-broker is not answering at %s (is it running? start it"
                             " with deploy/quickstart.sh or kefu-broker --workers 2)\n",
                     options.requests);
        kf_client_destroy (&client);
        return 3;
    }
    kf_reply_destroy (&probe);
    kf_client_set_timeout (client, options.timeout_ms);
    int rc = 2;
    if (strcmp (command, "chat") == 0)
        rc = kefuctl_chat (&options, client, argc - i, argv + i);
    else
    if (strcmp (command, "call") == 0 && i < argc)
        rc = s_call (client, argv [i], i + 1 < argc ? argv [i + 1] : NULL);
    else
    if (strcmp (command, "kb") == 0 && i < argc && strcmp (argv [i], "import") == 0)
        rc = kefuctl_kb_import (client, argc - i - 1, argv + i + 1);
    else
    if (strcmp (command, "kb") == 0 && i < argc && strcmp (argv [i], "export") == 0)
        rc = kefuctl_kb_export (client, argc - i - 1, argv + i + 1);
    else
    if (strcmp (command, "sessions") == 0)
        rc = kefuctl_sessions (client, argc - i, argv + i);
    else
    if (strcmp (command, "export") == 0)
        rc = kefuctl_export (client, argc - i, argv + i);
    else
    if (strcmp (command, "agent") == 0)
        rc = kefuctl_agent (&options, client, argc - i, argv + i);
    else
    if (strcmp (command, "stats") == 0 || strcmp (command, "health") == 0)
        rc = s_call (client, command, NULL);
    else
    if (strcmp (command, "history") == 0 && i < argc)
        rc = s_history (client, argv [i], i + 1 < argc ? atoi (argv [i + 1]) : 20,
                        i + 2 < argc ? atoi (argv [i + 2]) : 0);
    else
        s_usage ();
    kf_client_destroy (&client);
    return rc;
}

//  kefuctl keygen NAME: a key pair for a broker, a worker or a client
int
kefuctl_keygen (int argc, char **argv)
{
    if (argc != 1 || !*argv [0] || argv [0][0] == '-') {
        fprintf (stderr, "usage: kefuctl keygen NAME   (writes NAME.key, private, and NAME.pub)\n");
        return 2;
    }
    kf_curve_t curve;
    char why [512];
    if (kf_curve_keypair (&curve)) {
        fprintf (stderr, "kefuctl: this libzmq has no CURVE support\n");
        return 1;
    }
    int rc = kf_curve_write (&curve, argv [0], why, sizeof why);
    kf_curve_wipe (&curve);
    if (rc) {
        fprintf (stderr, "kefuctl: %s\n", why);
        return 1;
    }
    printf ("%s\n", curve.public_key);
    fprintf (stderr, "wrote %s.key (keep it private) and %s.pub\n", argv [0], argv [0]);
    return 0;
}
