/*  main.c - kefu-worker: parses the command line and runs the worker loop. */
#include "common/log.h"
#include "workers/worker.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: kefu-worker [options]\n"
        "  --broker ENDPOINT     broker's worker endpoint (default tcp://127.0.0.1:7702)\n"
        "  --kb SOURCE           where the knowledge base comes from: db (the --db file) or broker\n"
        "                        (sent over the worker connection); default: db with --db, else broker\n"
        "  --db PATH             database file to read the knowledge base from (with --kb db)\n"
        "  --name NAME           name shown in stats (default worker-PID)\n"
        "  --heartbeat-ms N      heartbeat interval (default 1000)\n"
        "  --liveness N          missed heartbeats before reconnecting (default 3)\n"
        "  --capacity N          concurrent jobs (default 256)\n"
        "  --pace-ms N           delay between streamed tokens (default 0)\n"
        "  --chunk-chars N       characters per streamed token (default 2)\n"
        "  --config PATH         LLM upstreams and bots (INI, see README; KEFU_LLM_* also count)\n"
        "  --max-llm N           LLM streams open at once (default 256)\n"
        "  --broker-key KEY      the broker's CURVE public key (the key, or its .pub file): encrypts\n"
        "                        the connection (also KEFU_BROKER_KEY)\n"
        "  --curve-key FILE      this worker's key pair (kefuctl keygen; also KEFU_CURVE_KEY); its\n"
        "                        public key must be in the broker's --authorized-workers\n");
}

//  Parses an integer option; exits with a message when it is not one
static int
s_int (const char *option, const char *value)
{
    char *end;
    long n = strtol (value, &end, 10);
    if (end == value || *end || n < 0 || n > 1000000000) {
        fprintf (stderr, "kefu-worker: %s needs a non-negative integer\n", option);
        exit (2);
    }
    return (int) n;
}

//  CURVE keys from the options or the environment; a worker the broker started gets its key pair
//  in KEFU_WORKER_SECRET (taken out of the environment at once). Returns 0, or -1 (said why)
static int
s_curve (kf_curve_t *curve, const char *broker_key, const char *curve_key, kf_worker_config_t *config)
{
    char why [512];
    const char *secret = getenv ("KEFU_WORKER_SECRET");
    bool is_local = secret && kf_curve_is_key (secret) && !curve_key;
    if (kf_curve_client_config (curve, broker_key, curve_key, why, sizeof why) < 0) {
        fprintf (stderr, "kefu-worker: %s\n", why);
        return -1;
    }
    if (is_local && *curve->server) {
        memcpy (curve->secret_key, secret, sizeof curve->secret_key);
        zmq_curve_public (curve->public_key, curve->secret_key);
    }
    const char *own = curve_key ? curve_key : getenv ("KEFU_CURVE_KEY");
    config->is_curve_key_made = *curve->server && !is_local && !(own && *own);
    if (secret) {
        //  Wiped where it lies (the environment block /proc/PID/environ shows), then dropped
        explicit_bzero ((char *) secret, strlen (secret));
        unsetenv ("KEFU_WORKER_SECRET");
    }
    return 0;
}

int
main (int argc, char *argv [])
{
    kf_worker_config_t config;
    kf_worker_config_defaults (&config);
    static char name [64];
    snprintf (name, sizeof name, "worker-%d", (int) getpid ());
    config.name = name;
    const char *config_path = NULL, *kb = NULL, *broker_key = NULL, *curve_key = NULL;
    bool has_db = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i], *value = i + 1 < argc ? argv [i + 1] : NULL;
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0) {
            s_usage ();
            return 0;
        }
        if (!value) {
            fprintf (stderr, "kefu-worker: %s needs a value\n", arg);
            return 2;
        }
        i++;
        if (strcmp (arg, "--broker") == 0)            config.broker = value;
        else if (strcmp (arg, "--db") == 0)           config.db_path = value, has_db = true;
        else if (strcmp (arg, "--kb") == 0)           kb = value;
        else if (strcmp (arg, "--name") == 0)         config.name = value;
        else if (strcmp (arg, "--heartbeat-ms") == 0) config.heartbeat_ms = s_int (arg, value);
        else if (strcmp (arg, "--liveness") == 0)     config.liveness = s_int (arg, value);
        else if (strcmp (arg, "--capacity") == 0)     config.capacity = s_int (arg, value);
        else if (strcmp (arg, "--pace-ms") == 0)      config.pace_ms = s_int (arg, value);
        else if (strcmp (arg, "--chunk-chars") == 0)  config.chunk_chars = s_int (arg, value);
        else if (strcmp (arg, "--config") == 0)       config_path = value;
        else if (strcmp (arg, "--max-llm") == 0)      config.max_llm_requests = s_int (arg, value);
        else if (strcmp (arg, "--broker-key") == 0)   broker_key = value;
        else if (strcmp (arg, "--curve-key") == 0)    curve_key = value;
        else {
            fprintf (stderr, "kefu-worker: unknown option %s\n", arg);
            s_usage ();
            return 2;
        }
    }
    if (config.heartbeat_ms < 10 || config.liveness < 1 || config.capacity < 1
    ||  config.pace_ms < 0 || config.chunk_chars < 1 || config.max_llm_requests < 1) {
        fprintf (stderr, "kefu-worker: invalid option value\n");
        return 2;
    }
    if (kb && strcmp (kb, "db") != 0 && strcmp (kb, "broker") != 0) {
        fprintf (stderr, "kefu-worker: --kb takes db or broker\n");
        return 2;
    }
    //  Without a database file named, the worker needs none: the broker sends the knowledge base
    config.is_kb_remote = kb ? strcmp (kb, "broker") == 0 : !has_db;
    char component [80];
    snprintf (component, sizeof component, "worker %s", config.name);
    kf_log_set_component (component);
    //  A bad file stops the worker: the message names keys and lines, never values
    char err [512];
    kf_config_t *llm = kf_config_load (config_path, err, sizeof err);
    if (!llm) {
        fprintf (stderr, "kefu-worker: bad configuration: %s\n", err);
        return 2;
    }
    config.llm = llm;
    static kf_curve_t curve;
    if (s_curve (&curve, broker_key, curve_key, &config) < 0) {
        kf_config_destroy (&llm);
        return 2;
    }
    config.curve = *curve.server ? &curve : NULL;
    int rc = kf_worker_run (&config);
    kf_curve_wipe (&curve);
    kf_config_destroy (&llm);
    return rc;
}
