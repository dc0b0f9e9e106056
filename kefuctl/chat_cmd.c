/*  chat_cmd.c - `kefuctl chat`: one message from the arguments, or an interactive session; tokens are
    printed as they stream. */
#include "kefuctl/kefuctl.h"
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
        printf ("\n");
        char *session = kf_mp_dup_str (reply->result, "session_id");
        if (session)
            snprintf (chat->session_id, sizeof chat->session_id, "%s", session);
        free (session);
    }
    kf_reply_destroy (&reply);
    return rc;
}

int
kefuctl_chat (kf_client_t *client, int argc, char **argv)
{
    s_chat_t chat = { .channel = "api", .is_stream = true, .is_tty = isatty (0) && isatty (1) };
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
        printf ("kefu 智能客服 — 输入问题后回车，Ctrl-D 退出。试试：怎么申请退货？\n");
    char line [16384];
    while (true) {
        if (chat.is_tty) {
            printf ("你: ");
            fflush (stdout);
        }
        if (!fgets (line, sizeof line, stdin))
            break;
        line [strcspn (line, "\r\n")] = 0;
        if (*line == 0)
            continue;
        if (s_send (client, &chat, line) == 3)
            return 3;
    }
    if (chat.is_tty)
        printf ("\n");
    return 0;
}
