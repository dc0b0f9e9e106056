/*  main.c - kefu-broker: parses the command line and runs the broker loop. */
#include "broker/broker.h"
#include "common/config.h"
#include "common/log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: kefu-broker [options]\n"
        "  --requests ENDPOINT        client requests, ROUTER (default tcp://127.0.0.1:7700)\n"
        "  --streams ENDPOINT         token streams, XPUB (default tcp://127.0.0.1:7701)\n"
        "  --workers-endpoint EP      workers, ROUTER (default tcp://127.0.0.1:7702)\n"
        "  --db PATH                  SQLite database (default ./kefu.db)\n"
        "  --workers N                start and supervise N local workers (default 0)\n"
        "  --worker-bin PATH          kefu-worker binary (default: beside kefu-broker)\n"
        "  --config PATH              LLM upstreams and bots (INI, see README), passed to local workers\n"
        "  --pace-ms N                delay between streamed tokens in local workers (default 0)\n"
        "  --heartbeat-ms N           worker heartbeat interval (default 1000)\n"
        "  --liveness N               missed heartbeats before a worker is lost (default 3)\n"
        "  --job-timeout-ms N         deadline of a chat job (default 30000)\n"
        "  --max-pending N            chat jobs queued or running before 429 busy (default 10000)\n"
        "  --max-message-chars N      longest chat message (default 4000)\n"
        "  --stream-wait-ms N         how long a stream waits for its subscriber (default 2000)\n"
        "  --stream-retention-ms N    how long an ended stream stays fetchable (default 60000)\n"
        "  --idle-close-ms N          close sessions untouched this long (default 1800000; 0: never)\n"
        "  --cache-mb N               hot-answer cache size in MB (default 64; 0: off)\n"
        "  --sync-full                fsync every commit (survives power loss; slower)\n"
        "  --curve-key FILE           CURVE-encrypt every socket with this key pair (kefuctl keygen)\n"
        "  --authorized-clients FILE  client public keys let in, one a line (default with\n"
        "                             --curve-key: any key; \"any\" says so)\n"
        "  --authorized-workers FILE  worker public keys let in (default: the local workers only;\n"
        "                             \"any\": any key)\n");
}

//  Parses a positive integer option; exits with a message when it is not one
static int
s_int (const char *option, const char *value, int min)
{
    char *end;
    long n = strtol (value, &end, 10);
    if (*end || n < min || n > 1000000000) {
        fprintf (stderr, "kefu-broker: %s needs an integer >= %d\n", option, min);
        exit (2);
    }
    return (int) n;
}

int
main (int argc, char *argv [])
{
    kf_broker_config_t config;
    kf_broker_config_defaults (&config);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i];
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0) {
            s_usage ();
            return 0;
        }
        if (strcmp (arg, "--sync-full") == 0) {
            config.is_synchronous_full = true;
            continue;
        }
        const char *value = i + 1 < argc ? argv [++i] : NULL;
        if (!value) {
            fprintf (stderr, "kefu-broker: %s needs a value\n", arg);
            return 2;
        }
        if (strcmp (arg, "--requests") == 0)                 config.requests = value;
        else if (strcmp (arg, "--streams") == 0)             config.streams = value;
        else if (strcmp (arg, "--workers-endpoint") == 0)    config.workers = value;
        else if (strcmp (arg, "--db") == 0)                  config.db_path = value;
        else if (strcmp (arg, "--workers") == 0)             config.local_workers = s_int (arg, value, 0);
        else if (strcmp (arg, "--worker-bin") == 0)          config.worker_bin = value;
        else if (strcmp (arg, "--config") == 0)              config.config_path = value;
        else if (strcmp (arg, "--pace-ms") == 0)             config.worker_pace_ms = s_int (arg, value, 0);
        else if (strcmp (arg, "--heartbeat-ms") == 0)        config.heartbeat_ms = s_int (arg, value, 10);
        else if (strcmp (arg, "--liveness") == 0)            config.liveness = s_int (arg, value, 1);
        else if (strcmp (arg, "--job-timeout-ms") == 0)      config.job_timeout_ms = s_int (arg, value, 1);
        else if (strcmp (arg, "--max-pending") == 0)         config.max_pending = s_int (arg, value, 1);
        else if (strcmp (arg, "--max-message-chars") == 0)   config.max_message_chars = s_int (arg, value, 1);
        else if (strcmp (arg, "--stream-wait-ms") == 0)      config.stream_wait_ms = s_int (arg, value, 0);
        else if (strcmp (arg, "--stream-retention-ms") == 0) config.stream_retention_ms = s_int (arg, value, 0);
        else if (strcmp (arg, "--idle-close-ms") == 0)       config.idle_close_ms = s_int (arg, value, 0);
        else if (strcmp (arg, "--cache-mb") == 0)            config.cache_mb = s_int (arg, value, 0);
        else if (strcmp (arg, "--curve-key") == 0)           config.curve_key_path = value;
        else if (strcmp (arg, "--authorized-clients") == 0)  config.authorized_clients = value;
        else if (strcmp (arg, "--authorized-workers") == 0)  config.authorized_workers = value;
        else {
            fprintf (stderr, "kefu-broker: unknown option %s\n", arg);
            s_usage ();
            return 2;
        }
    }
    if ((config.authorized_clients || config.authorized_workers) && !config.curve_key_path) {
        fprintf (stderr, "kefu-broker: --authorized-clients and --authorized-workers need "
                 "--curve-key (the broker's own key pair: kefuctl keygen NAME)\n");
        return 2;
    }
    //  The broker enforces the upstreams' limits (the workers call them): a bad file stops it
    //  before anything starts. Messages name keys and lines, never values.
    char err [512];
    kf_config_t *llm = kf_config_load (config.config_path, err, sizeof err);
    if (!llm) {
        fprintf (stderr, "kefu-broker: bad configuration: %s\n", err);
        return 2;
    }
    config.llm = llm;
    kf_log_set_component ("broker");
    int rc = kf_broker_run (&config);
    kf_config_destroy (&llm);
    return rc;
}
