/*  agent_cmd.c - `kefuctl agent`: a human agent's desk on the command line. Lists the conversations
    handed over to people, takes one, replies in it and hands it back to the bot; `watch` prints
    escalation cards and customers' messages as they arrive (PROTOCOL.md section 13). */
#include "kefuctl/kefuctl.h"
#include "common/json_codec.h"
#include "common/kefu_watch.h"
#include "common/log.h"
#include "common/mpack.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *s_usage_text =
    "usage: kefuctl agent list [--status pending|assigned|resolved] [--bot ID] [--agent ID] [--page N]\n"
    "       kefuctl agent take SESSION_ID --agent ID\n"
    "       kefuctl agent reply SESSION_ID --agent ID TEXT...\n"
    "       kefuctl agent resolve SESSION_ID --agent ID [--note TEXT]\n"
    "       kefuctl agent watch     escalation cards and customers' messages as they come\n";

//  Options after the subcommand: --name value pairs, and the words left over
typedef struct {
    const char *status, *bot, *agent, *note;
    int page;
    const char *words [64];
    int word_count;
} s_args_t;

static int
s_parse (int argc, char **argv, s_args_t *args)
{
    memset (args, 0, sizeof *args);
    args->page = 1;
    for (int i = 0; i < argc; i++) {
        const char *value = i + 1 < argc ? argv [i + 1] : NULL;
        if (strncmp (argv [i], "--", 2) != 0) {
            if (args->word_count == 64)
                return -1;
            args->words [args->word_count++] = argv [i];
            continue;
        }
        if (!value)
            return -1;
        if (strcmp (argv [i], "--status") == 0)     args->status = value;
        else if (strcmp (argv [i], "--bot") == 0)   args->bot = value;
        else if (strcmp (argv [i], "--agent") == 0) args->agent = value;
        else if (strcmp (argv [i], "--note") == 0)  args->note = value;
        else if (strcmp (argv [i], "--page") == 0)  args->page = atoi (value);
        else
            return -1;
        i++;
    }
    return 0;
}

//  "2026-11-21 15:30" in local time from Unix ms
static void
s_format_time (int64_t ms, char *out, size_t size)
{
    time_t seconds = (time_t) (ms / 1000);
    struct tm tm;
    localtime_r (&seconds, &tm);
    strftime (out, size, "%Y-%m-%d %H:%M", &tm);
}

//  The text of the last customer turn in a card's summary ("" when none)
static void
s_last_user_text (const msgpack_object *card, char *out, size_t size)
{
    *out = 0;
    const msgpack_object *summary = kf_mp_get (card, "summary");
    if (!summary || summary->type != MSGPACK_OBJECT_ARRAY)
        return;
    for (uint32_t i = 0; i < summary->via.array.size; i++) {
        const msgpack_object *turn = &summary->via.array.ptr [i];
        const char *text;
        size_t len;
        if (kf_mp_str_eq (turn, "role", "user") && kf_mp_str (kf_mp_get (turn, "content"), &text, &len))
            snprintf (out, size, "%.*s", (int) (len < size - 1 ? len : size - 1), text);
    }
}

static void
s_print_card (const msgpack_object *card)
{
    char when [32], last [160], *session = kf_mp_dup_str (card, "session_id");
    char *reason = kf_mp_dup_str (card, "reason_name"), *status = kf_mp_dup_str (card, "status");
    char *agent = kf_mp_dup_str (card, "agent_id");
    s_format_time (kf_mp_get_int (card, "created_at", 0), when, sizeof when);
    s_last_user_text (card, last, sizeof last);
    printf ("#%-5lld %s  %-24s %-18s %-9s %-10s %s\n",
            (long long) kf_mp_get_int (card, "escalation_id", 0), when, session ? session : "",
            reason ? reason : "", status ? status : "", agent ? agent : "-", last);
    free (session), free (reason), free (status), free (agent);
}

static int
s_list (kf_client_t *client, const s_args_t *args)
{
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &params, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2 + !!args->status + !!args->bot + !!args->agent);
    kf_mp_pack_kv_int (&pk, "page", args->page > 0 ? args->page : 1);
    kf_mp_pack_kv_int (&pk, "page_size", 50);
    if (args->status)
        kf_mp_pack_kv_str (&pk, "status", args->status);
    if (args->bot)
        kf_mp_pack_kv_str (&pk, "bot_id", args->bot);
    if (args->agent)
        kf_mp_pack_kv_str (&pk, "agent_id", args->agent);
    kf_reply_t *reply = kefuctl_call (client, "escalations.list", &params);
    msgpack_sbuffer_destroy (&params);
    if (!reply)
        return 1;
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    uint32_t count = data && data->type == MSGPACK_OBJECT_ARRAY ? data->via.array.size : 0;
    if (count == 0)
        printf ("no conversations waiting for people\n");
    for (uint32_t i = 0; i < count; i++)
        s_print_card (&data->via.array.ptr [i]);
    if (kf_mp_get_bool (reply->result, "has_more", false))
        printf ("(more: --page %d)\n", args->page + 1);
    kf_reply_destroy (&reply);
    return 0;
}

//  agent.assign / agent.reply / agent.resolve on one session
static int
s_session_call (kf_client_t *client, const char *method, const s_args_t *args, const char *content)
{
    if (args->word_count < 1 || !args->agent) {
        fputs (s_usage_text, stderr);
        return 2;
    }
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &params, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2 + (content != NULL) + (args->note != NULL));
    kf_mp_pack_kv_str (&pk, "session_id", args->words [0]);
    kf_mp_pack_kv_str (&pk, "agent_id", args->agent);
    if (content)
        kf_mp_pack_kv_str (&pk, "content", content);
    if (args->note)
        kf_mp_pack_kv_str (&pk, "note", args->note);
    kf_reply_t *reply = kefuctl_call (client, method, &params);
    msgpack_sbuffer_destroy (&params);
    if (!reply)
        return 1;
    int rc = kefuctl_print_reply (reply);
    kf_reply_destroy (&reply);
    return rc;
}

static volatile sig_atomic_t s_stop = 0;

static void
s_on_signal (int signum)
{
    (void) signum;
    s_stop = 1;
}

//  Prints every event on the agent topics as one JSON line, topic first, until Ctrl-C
static int
s_watch (const kefuctl_options_t *options)
{
    const char *topics [] = { "agent." };
    kf_watch_t *watch = kf_watch_new_curve (options->streams, topics, 1, options->curve);
    if (!watch) {
        fprintf (stderr, "kefuctl: invalid stream endpoint %s\n", options->streams);
        return 2;
    }
    struct sigaction action = { .sa_handler = s_on_signal };
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    fprintf (stderr, "watching agent.escalations and agent.messages on %s (Ctrl-C stops)\n",
             options->streams);
    while (!s_stop) {
        char topic [160];
        msgpack_unpacked event;
        int rc = kf_watch_next (watch, 500, topic, sizeof topic, &event);
        if (rc == -1 && errno != EINTR)
            break;
        if (rc != 1)
            continue;
        char *json = kf_json_from_msgpack (&event.data);
        printf ("%s %s\n", topic, json);
        fflush (stdout);
        free (json);
        msgpack_unpacked_destroy (&event);
    }
    kf_watch_destroy (&watch);
    return 0;
}

int
kefuctl_agent (const kefuctl_options_t *options, kf_client_t *client, int argc, char **argv)
{
    s_args_t args;
    if (argc < 1 || s_parse (argc - 1, argv + 1, &args)) {
        fputs (s_usage_text, stderr);
        return 2;
    }
    const char *command = argv [0];
    if (strcmp (command, "list") == 0)
        return s_list (client, &args);
    if (strcmp (command, "watch") == 0)
        return s_watch (options);
    if (strcmp (command, "take") == 0)
        return s_session_call (client, "agent.assign", &args, NULL);
    if (strcmp (command, "resolve") == 0)
        return s_session_call (client, "agent.resolve", &args, NULL);
    if (strcmp (command, "reply") == 0 && args.word_count >= 2) {
        //  The words after the session id, joined by spaces
        size_t size = 1;
        for (int i = 1; i < args.word_count; i++)
            size += strlen (args.words [i]) + 1;
        char *text = kf_calloc (1, size);
        for (int i = 1; i < args.word_count; i++) {
            strcat (text, args.words [i]);
            if (i + 1 < args.word_count)
                strcat (text, " ");
        }
        int rc = s_session_call (client, "agent.reply", &args, text);
        free (text);
        return rc;
    }
    fputs (s_usage_text, stderr);
    return 2;
}
