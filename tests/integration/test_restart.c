/*  test_restart.c - the broker is killed with SIGKILL while clients chat: every turn a client was
    told about (an ok reply) is on disk after the restart, and the sessions go on where they were. */
#include "harness.h"
#include "common/clock.h"
#include "common/log.h"
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>

#define S_MAX_ACKED 100000

static kf_harness_t s_h;
static int64_t s_acked [S_MAX_ACKED];   //  Message ids of answers acknowledged to the client
static int s_acked_count;
static volatile int s_stop;
static char s_session [64];

//  Chats as fast as it can until the broker disappears, recording each acknowledged answer. The
//  question alternates between two wordings: the same one asked a third time in a row would hand
//  the session to people (a repeated question, PROTOCOL.md 13.1), and the bot would go silent
static void *
s_chatter (void *arg)
{
    (void) arg;
    kf_client_t *client = h_client (&s_h);
    kf_client_set_timeout (client, 1000);
    while (!s_stop && s_acked_count < S_MAX_ACKED) {
        msgpack_sbuffer params;
        h_pack_json (&params, "{\"message\":\"%s\",\"session_id\":\"%s\"}",
                     s_acked_count % 2 ? "怎么开发票" : "发票怎么开", s_session);
        kf_reply_t *reply = NULL;
        int rc = kf_client_call (client, "chat", params.data, params.size, &reply);
        msgpack_sbuffer_destroy (&params);
        if (rc)
            break;                      //  The broker is gone
        if (reply->ok)
            s_acked [s_acked_count++] = kf_mp_get_int (reply->result, "message_id", 0);
        kf_reply_destroy (&reply);
    }
    kf_client_destroy (&client);
    return NULL;
}

int
main (void)
{
    h_init (&s_h, "restart");
    h_start_broker (&s_h, 2, NULL);
    h_import_sample (&s_h);
    kf_client_t *client = h_client (&s_h);
    kf_reply_t *reply = h_call (client, "session.create", "{\"user_id\":\"restart-user\"}");
    const char *session = h_str (reply->result, "session_id");
    snprintf (s_session, sizeof s_session, "%s", session);
    kf_reply_destroy (&reply);
    kf_client_destroy (&client);

    pthread_t thread;
    CHECK_INT (pthread_create (&thread, NULL, s_chatter, NULL), 0);
    h_sleep_ms (700);
    h_kill_broker (&s_h, SIGKILL);     //  Mid-flight: replies, commits and jobs in progress
    pthread_join (thread, NULL);
    s_stop = 1;
    CHECK (s_acked_count > 10);
    printf ("restart: %d answers acknowledged before SIGKILL\n", s_acked_count);

    //  The local workers die with the broker; a new broker on the same database
    h_sleep_ms (200);
    h_start_broker (&s_h, 2, NULL);
    client = h_client (&s_h);
    for (int i = 0; i < s_acked_count; i++) {
        reply = h_call (client, "message.get", "{\"message_id\":%lld}", (long long) s_acked [i]);
        CHECK (reply->ok);
        CHECK_STR (h_str (reply->result, "status"), "ok");
        CHECK_STR (h_str (reply->result, "session_id"), s_session);
        CHECK (strstr (h_str (reply->result, "content"), "发票"));
        kf_reply_destroy (&reply);
    }
    //  The session goes on: its counter continues past every acknowledged turn
    reply = h_call (client, "chat", "{\"message\":\"怎么申请退货？\",\"session_id\":\"%s\",\"user_id\":\"restart-user\"}", s_session);
    CHECK (reply->ok);
    CHECK (kf_mp_get_int (reply->result, "turn_count", 0) >= s_acked_count + 1);
    CHECK (kf_mp_get_int (reply->result, "message_id", 0) > s_acked [s_acked_count - 1]);
    kf_reply_destroy (&reply);
    reply = h_call (client, "history", "{\"session_id\":\"%s\",\"limit\":100}", s_session);
    int64_t total = kf_mp_get_int (reply->result, "total", 0);
    CHECK (total >= 2 * (s_acked_count + 1));
    kf_reply_destroy (&reply);
    //  An answer that was in progress at the SIGKILL is marked failed, never left pending
    for (int64_t offset = 0; offset < total; offset += 100) {
        reply = h_call (client, "history", "{\"session_id\":\"%s\",\"limit\":100,\"offset\":%lld}",
                        s_session, (long long) offset);
        const msgpack_object *data = kf_mp_get (reply->result, "data");
        for (uint32_t i = 0; i < data->via.array.size; i++)
            CHECK (strcmp (h_str (&data->via.array.ptr [i], "status"), "pending") != 0);
        kf_reply_destroy (&reply);
    }
    //  The database refuses writes (another connection holds the lock): the chat gets a 500, never
    //  an ok for a turn that is not stored, and the broker answers again once the lock is gone
    sqlite3 *db;
    CHECK_INT (sqlite3_open (s_h.db, &db), SQLITE_OK);
    CHECK_INT (sqlite3_exec (db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    reply = h_call (client, "chat", "{\"message\":\"发票怎么开\",\"session_id\":\"%s\"}", s_session);
    CHECK (!reply->ok);
    CHECK_STR (kf_errc_name (reply->error.errc), "internal");
    kf_reply_destroy (&reply);
    reply = h_call (client, "chat", "{\"message\":\"你好\"}");         //  A new session, too
    CHECK (!reply->ok);
    kf_reply_destroy (&reply);
    CHECK_INT (sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close (db);
    reply = h_call (client, "chat", "{\"message\":\"发票怎么开\",\"session_id\":\"%s\"}", s_session);
    CHECK (reply->ok);
    int64_t message_id = kf_mp_get_int (reply->result, "message_id", 0);
    kf_reply_destroy (&reply);
    reply = h_call (client, "message.get", "{\"message_id\":%lld}", (long long) message_id);
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "status"), "ok");
    kf_reply_destroy (&reply);
    kf_client_destroy (&client);
    h_cleanup (&s_h);
    TEST_PASS ("test_restart");
    return 0;
}
