/*  export_cmd.c - `kefuctl sessions USER` (a user's conversations) and `kefuctl export` (every
    message of a conversation, or of all a user's conversations, as JSON lines for audits and
    offline replay). Both page through the protocol's list methods to the end. */
#include "kefuctl/kefuctl.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Calls `fn` for every conversation of a user, newest first. Returns 0 or an exit code.
typedef int (s_each_fn) (kf_client_t *client, const msgpack_object *conversation, void *arg);

static int
s_each_conversation (kf_client_t *client, const char *user_id, s_each_fn *fn, void *arg)
{
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    char last [80] = "";
    int rc = 0;
    while (rc == 0) {
        msgpack_packer pk;
        msgpack_packer_init (&pk, &params, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, *last ? 3 : 2);
        kf_mp_pack_kv_str (&pk, "user_id", user_id);
        kf_mp_pack_kv_int (&pk, "limit", 100);
        if (*last)
            kf_mp_pack_kv_str (&pk, "last_id", last);
        kf_reply_t *reply = kefuctl_call (client, "conversations.list", &params);
        if (!reply) {
            rc = 3;
            break;
        }
        const msgpack_object *data = kf_mp_get (reply->result, "data");
        for (uint32_t i = 0; rc == 0 && data && i < data->via.array.size; i++) {
            rc = fn (client, &data->via.array.ptr [i], arg);
            const char *id;
            size_t len;
            if (kf_mp_str (kf_mp_get (&data->via.array.ptr [i], "session_id"), &id, &len))
                snprintf (last, sizeof last, "%.*s", (int) len, id);
        }
        bool has_more = kf_mp_get_bool (reply->result, "has_more", false) && data && data->via.array.size;
        kf_reply_destroy (&reply);
        if (!has_more)
            break;
    }
    msgpack_sbuffer_destroy (&params);
    return rc;
}

static int
s_print_conversation (kf_client_t *client, const msgpack_object *conversation, void *arg)
{
    (void) client, (void) arg;
    char *json = kf_json_from_msgpack (conversation);
    printf ("%s\n", json);
    free (json);
    return 0;
}

//  Prints every message of a session as one JSON line each, oldest first
static int
s_export_session (kf_client_t *client, const char *session_id, size_t len)
{
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    int rc = 0;
    for (int64_t offset = 0;; offset += 100) {
        msgpack_packer pk;
        msgpack_packer_init (&pk, &params, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 3);
        kf_mp_pack_cstr (&pk, "session_id");
        kf_mp_pack_str (&pk, session_id, len);
        kf_mp_pack_kv_int (&pk, "limit", 100);
        kf_mp_pack_kv_int (&pk, "offset", offset);
        kf_reply_t *reply = kefuctl_call (client, "history", &params);
        if (!reply) {
            rc = 3;
            break;
        }
        const msgpack_object *data = kf_mp_get (reply->result, "data");
        for (uint32_t i = 0; data && i < data->via.array.size; i++) {
            char *json = kf_json_from_msgpack (&data->via.array.ptr [i]);
            printf ("%s\n", json);
            free (json);
        }
        bool has_more = kf_mp_get_bool (reply->result, "has_more", false);
        kf_reply_destroy (&reply);
        if (!has_more)
            break;
    }
    msgpack_sbuffer_destroy (&params);
    return rc;
}

static int
s_export_conversation (kf_client_t *client, const msgpack_object *conversation, void *arg)
{
    (void) arg;
    const char *id;
    size_t len;
    if (!kf_mp_str (kf_mp_get (conversation, "session_id"), &id, &len))
        return 0;
    return s_export_session (client, id, len);
}

int
kefuctl_sessions (kf_client_t *client, int argc, char **argv)
{
    if (argc < 1) {
        fprintf (stderr, "usage: kefuctl sessions USER_ID   (one JSON line per conversation, newest first)\n");
        return 2;
    }
    return s_each_conversation (client, argv [0], s_print_conversation, NULL);
}

int
kefuctl_export (kf_client_t *client, int argc, char **argv)
{
    if (argc == 2 && strcmp (argv [0], "--session") == 0)
        return s_export_session (client, argv [1], strlen (argv [1]));
    if (argc == 2 && strcmp (argv [0], "--user") == 0) {
        //  The profile first, when there is one: {"user": {...}}
        msgpack_sbuffer params;
        msgpack_sbuffer_init (&params);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &params, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 1);
        kf_mp_pack_kv_str (&pk, "user_id", argv [1]);
        kf_reply_t *reply = NULL;
        if (kf_client_call (client, "user.get", params.data, params.size, &reply) == 0 && reply->ok) {
            char *json = kf_json_from_msgpack (reply->result);
            printf ("{\"user\":%s}\n", json);
            free (json);
        }
        kf_reply_destroy (&reply);
        msgpack_sbuffer_destroy (&params);
        return s_each_conversation (client, argv [1], s_export_conversation, NULL);
    }
    fprintf (stderr, "usage: kefuctl export --session SESSION_ID | --user USER_ID\n"
                     "       (one JSON line per message, oldest first, for audits and replay; with\n"
                     "       --user, a first line {\"user\": profile} when the user has one)\n");
    return 2;
}
