/*  chat_cmd.c - `kefuctl chat`: one message from the arguments, or an interactive session; tokens are
    printed as they stream. An interactive session also watches its session topic, so when the bot
    hands the conversation to a person, the agent's replies appear as they are sent. */
#include "kefuctl/kefuctl.h"
#include "common/kefu_watch.h"
#include "common/log.h"
#include "common/mpack.h"
#include <errno.h>
#include <zmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *user_id, *bot_id, *channel;
    char session_id [64];
    bool is_stream;
    bool is_tty;
    const char *streams;        //  Stream endpoint, for the session's watch
    const kf_curve_t *curve;    //  Its CURVE keys, or NULL
    kf_watch_t *watch;          //  session.<id> in an interactive session, once the id is known
} s_chat_t;

static void
s_on_event (void *arg, const msgpack_object *event)
{
    (void) arg;
    const char *text;
    size_t len;
    if (kf_mp_str_eq (event, "event", "token") && kf_mp_str (kf_mp_get (event, "content"), &text, &len)) {
        fwrite (text, 1, len, stdout);
        fflush (stdout);
    }
}

//  Sends one message; prints the answer. Returns 0 when answered.
static int
s_send (kf_client_t *client, s_chat_t *chat, const char *message)
{
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &params, msgpack_sbuffer_write);
    int count = 2 + (chat->user_id != NULL) + (chat->bot_id != NULL) + (*chat->session_id != 0);
    msgpack_pack_map (&pk, count);
    kf_mp_pack_kv_str (&pk, "message", message);
    kf_mp_pack_kv_str (&pk, "channel", chat->channel);
    if (chat->user_id)
        kf_mp_pack_kv_str (&pk, "user_id", chat->user_id);
    if (chat->bot_id)
        kf_mp_pack_kv_str (&pk, "bot_id", chat->bot_id);
    if (*chat->session_id)
        kf_mp_pack_kv_str (&pk, "session_id", chat->session_id);
    kf_reply_t *reply = NULL;
    if (chat->is_tty)
        printf ("客服: ");
    fflush (stdout);
    int rc = chat->is_stream
           ? kf_client_chat_stream (client, params.data, params.size, s_on_event, NULL, &reply)
           : kf_client_call (client, "chat", params.data, params.size, &reply);
    msgpack_sbuffer_destroy (&params);
    if (rc) {
        fprintf (stderr, "\nkefuctl: no answer (%s)\n",
                 errno == ETIMEDOUT ? "timed out; is kefu-broker running?" : zmq_strerror (errno));
        return 3;
    }
    if (!reply->ok) {
        printf ("\n");
        rc = kefuctl_print_reply (reply);
    }
    else {
        const char *text;
        size_t len;
        if (!chat->is_stream && kf_mp_str (kf_mp_get (reply->result, "reply"), &text, &len))
            fwrite (text, 1, len, stdout);
        //  A person has the conversation: the bot said nothing, the message went to them
        if (kf_mp_get_bool (reply->result, "to_agent", false))
            printf ("[人工客服处理中，消息已转给人工客服]");
        printf ("\n");
        char *session = kf_mp_dup_str (reply->result, "session_id");
        if (session)
            snprintf (chat->session_id, sizeof chat->session_id, "%s", session);
        free (session);
        if (kf_mp_get_bool (reply->result, "escalate_to_human", false))
            printf ("[已转接人工客服，请稍候；人工客服的回复会显示在这里]\n");
    }
    kf_reply_destroy (&reply);
    return rc;
}

//  Prints one event of the session topic: an agent's reply or a change of hands
static void
s_print_session_event (s_chat_t *chat, const msgpack_object *event)
{
    const char *text;
    size_t len;
    if (kf_mp_str_eq (event, "event", "agent_message")
    &&  kf_mp_str (kf_mp_get (event, "content"), &text, &len)) {
        char *agent = kf_mp_dup_str (event, "agent_id");
        printf ("%s人工客服 %s: %.*s\n", chat->is_tty ? "\r" : "", agent ? agent : "", (int) len, text);
        free (agent);
    }
    else
    if (kf_mp_str_eq (event, "event", "handoff")) {
        char *state = kf_mp_dup_str (event, "state");
        if (state && strcmp (state, "assigned") == 0)
            printf ("%s[人工客服已接入]\n", chat->is_tty ? "\r" : "");
        else
        if (state && strcmp (state, "resolved") == 0)
            printf ("%s[人工客服已结束服务，智能客服继续为您服务]\n", chat->is_tty ? "\r" : "");
        free (state);
    }
    else
        return;
    if (chat->is_tty)
        printf ("你: ");
    fflush (stdout);
}

//  Waits until stdin has a line, printing the session's events meanwhile. -1 when interrupted.
static int
s_wait_input (s_chat_t *chat)
{
    while (chat->watch) {
        zmq_pollitem_t items [2] = {
            { NULL, 0, ZMQ_POLLIN, 0 },
            { kf_watch_socket (chat->watch), 0, ZMQ_POLLIN, 0 }
        };
        if (zmq_poll (items, 2, -1) == -1)
            return errno == EINTR ? 0 : -1;
        if (items [0].revents & ZMQ_POLLIN)
            return 0;
        msgpack_unpacked event;
        char topic [96];
        while (kf_watch_next (chat->watch, 0, topic, sizeof topic, &event) == 1) {
            s_print_session_event (chat, &event.data);
            msgpack_unpacked_destroy (&event);
        }
    }
    return 0;
}

int
kefuctl_chat (const kefuctl_options_t *options, kf_client_t *client, int argc, char **argv)
{
    s_chat_t chat = { .channel = "api", .is_stream = true, .is_tty = isatty (0) && isatty (1),
                      .streams = options->streams, .curve = options->curve };
    int i = 0;
    for (; i < argc && strncmp (argv [i], "--", 2) == 0; i++) {
        const char *value = i + 1 < argc ? argv [i + 1] : NULL;
        if (strcmp (argv [i], "--no-stream") == 0)
            chat.is_stream = false;
        else if (strcmp (argv [i], "--session") == 0 && value)
            snprintf (chat.session_id, sizeof chat.session_id, "%s", argv [++i]);
        else if (strcmp (argv [i], "--user") == 0 && value)
            chat.user_id = argv [++i];
        else if (strcmp (argv [i], "--bot") == 0 && value)
            chat.bot_id = argv [++i];
        else if (strcmp (argv [i], "--channel") == 0 && value)
            chat.channel = argv [++i];
        else {
            fprintf (stderr, "kefuctl chat: unknown option %s\n", argv [i]);
            return 2;
        }
    }
    if (i < argc) {
        //  One message from the arguments, words joined by spaces
        size_t size = 1;
        for (int j = i; j < argc; j++)
            size += strlen (argv [j]) + 1;
        char *message = kf_calloc (1, size);
        for (int j = i; j < argc; j++) {
            strcat (message, argv [j]);
            if (j + 1 < argc)
                strcat (message, " ");
        }
        int rc = s_send (client, &chat, message);
        free (message);
        return rc;
    }
    if (chat.is_tty)
        printf ("kefu 智能客服 — 输入问题后回车，Ctrl-D 退出。试试：怎么申请退货？ 空调坏了要报修 转人工\n");
    char line [16384];
    int rc = 0;
    while (true) {
        if (chat.is_tty) {
            printf ("你: ");
            fflush (stdout);
        }
        if (s_wait_input (&chat) == -1 || !fgets (line, sizeof line, stdin))
            break;
        line [strcspn (line, "\r\n")] = 0;
        if (*line == 0)
            continue;
        if (s_send (client, &chat, line) == 3) {
            rc = 3;
            break;
        }
        //  On a terminal only: stdin is read a line at a time there, so polling its descriptor
        //  says truly whether a line waits (a pipe's lines may sit in stdio's buffer)
        if (!chat.watch && chat.is_tty && *chat.session_id && chat.streams) {
            char topic [96];
            snprintf (topic, sizeof topic, "session.%s", chat.session_id);
            const char *topics [] = { topic };
            chat.watch = kf_watch_new_curve (chat.streams, topics, 1, chat.curve);
        }
    }
    if (chat.is_tty && rc == 0)
        printf ("\n");
    kf_watch_destroy (&chat.watch);
    return rc;
}
