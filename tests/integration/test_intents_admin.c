/*  test_intents_admin.c - editing what a bot understands, over real sockets: intents and chit-chat
    (the default bot's rows inherited until a bot's first edit copies them, every edit bumping the
    knowledge-base version, an edited chit-chat reply reaching the workers), every validation error
    of the new methods, intent.execute submitting tickets, tickets.query with its filters and
    paging, tickets.update, and a sweep of wrong types over every new method. */
#include "harness.h"
#include "common/clock.h"
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kf_harness_t s_h;

//  Calls `method` with params from JSON (printf format) and checks it fails with error `name`
//  whose message contains `contains` (NULL: anything)
static void
s_fails (kf_client_t *client, const char *method, const char *name, const char *contains,
         const char *json_format, ...) __attribute__ ((format (printf, 5, 6)));

static void
s_fails (kf_client_t *client, const char *method, const char *name, const char *contains,
         const char *json_format, ...)
{
    va_list args;
    va_start (args, json_format);
    char *json = NULL;
    CHECK (vasprintf (&json, json_format, args) >= 0);
    va_end (args);
    kf_reply_t *reply = h_call (client, method, "%s", json);
    if (reply->ok || strcmp (kf_errc_name (reply->error.errc), name) != 0
    ||  (contains && !strstr (reply->error.message, contains))) {
        fprintf (stderr, "%s %s: want %s (\"%s\"), got %s \"%s\"\n", method, json, name,
                 contains ? contains : "", reply->ok ? "ok" : kf_errc_name (reply->error.errc),
                 reply->ok ? "" : reply->error.message);
        exit (1);
    }
    kf_reply_destroy (&reply);
    free (json);
}

//  Calls and checks success; the caller destroys the reply
static kf_reply_t *
s_ok (kf_client_t *client, const char *method, const char *json_format, ...)
    __attribute__ ((format (printf, 3, 4)));

static kf_reply_t *
s_ok (kf_client_t *client, const char *method, const char *json_format, ...)
{
    va_list args;
    va_start (args, json_format);
    char *json = NULL;
    CHECK (vasprintf (&json, json_format, args) >= 0);
    va_end (args);
    kf_reply_t *reply = h_call (client, method, "%s", json);
    if (!reply->ok) {
        fprintf (stderr, "%s %s: %s %s\n", method, json, kf_errc_name (reply->error.errc),
                 reply->error.message);
        exit (1);
    }
    free (json);
    return reply;
}

//  The knowledge-base version as committed (read from the database file beside the broker)
static int64_t
s_kb_version (void)
{
    sqlite3 *db;
    CHECK (sqlite3_open_v2 (s_h.db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    sqlite3_stmt *stmt;
    CHECK (sqlite3_prepare_v2 (db, "SELECT version FROM kb_meta WHERE id = 1", -1, &stmt, NULL)
           == SQLITE_OK);
    CHECK (sqlite3_step (stmt) == SQLITE_ROW);
    int64_t version = sqlite3_column_int64 (stmt, 0);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    return version;
}

//  Entry `index` of result.data
static const msgpack_object *
s_row (kf_reply_t *reply, uint32_t index)
{
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    CHECK (data && data->type == MSGPACK_OBJECT_ARRAY && index < data->via.array.size);
    return &data->via.array.ptr [index];
}

static uint32_t
s_rows (kf_reply_t *reply)
{
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    CHECK (data && data->type == MSGPACK_OBJECT_ARRAY);
    return data->via.array.size;
}

//  The id of the row named `name` (key `key`) among result.data, 0 when absent
static int64_t
s_find (kf_reply_t *reply, const char *key, const char *name)
{
    for (uint32_t i = 0; i < s_rows (reply); i++)
        if (kf_mp_str_eq (s_row (reply, i), key, name))
            return kf_mp_get_int (s_row (reply, i), "id", 0);
    return 0;
}

//  A JSON list of `count` strings "prefix0", "prefix1"... each padded to `chars` characters
static char *
s_list (const char *prefix, int count, int chars)
{
    size_t size = (size_t) count * ((size_t) chars + 16) + 16;
    char *json = malloc (size), *at = json;
    at += sprintf (at, "[");
    for (int i = 0; i < count; i++) {
        int n = sprintf (at, "%s\"%s%d", i ? "," : "", prefix, i);
        int written = n - (i ? 2 : 1);
        at += n;
        for (; written < chars; written++)
            *at++ = 'x';
        *at++ = '"';
    }
    sprintf (at, "]");
    return json;
}

//  --- Intents ---------------------------------------------------------------------------------

static void
s_test_intent_reads (kf_client_t *client)
{
    kf_reply_t *reply = s_ok (client, "intent.query", "{}");
    const char *names [] = { "chitchat", "knowledge_qa", "business_query", "emotion_sensitive",
                             "transfer_to_human", "ticket" };
    CHECK_INT (s_rows (reply), 6);
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 6);
    CHECK (!kf_mp_get_bool (reply->result, "inherited", true));
    for (int i = 0; i < 6; i++) {
        const msgpack_object *row = s_row (reply, (uint32_t) i);
        CHECK (kf_mp_str_eq (row, "name", names [i]));
        CHECK (kf_mp_str_eq (row, "bot_id", "default"));
        CHECK (kf_mp_get_bool (row, "builtin", false));
        CHECK (kf_mp_get_bool (row, "enabled", false));
        CHECK (kf_mp_get_bool (row, "executable", true)
               == (strcmp (names [i], "ticket") == 0 || strcmp (names [i], "transfer_to_human") == 0));
        //  The sample bot: at least 30 examples each
        CHECK (kf_mp_get (row, "examples")->via.array.size >= 30);
    }
    kf_reply_destroy (&reply);
    //  A bot with none of its own shows the default's
    reply = s_ok (client, "intent.query", "{\"bot_id\":\"shop\",\"page_size\":2,\"page\":2}");
    CHECK (kf_mp_get_bool (reply->result, "inherited", false));
    CHECK (kf_mp_str_eq (reply->result, "bot_id", "shop"));
    CHECK_INT (s_rows (reply), 2);
    CHECK (kf_mp_str_eq (s_row (reply, 0), "name", "business_query"));
    CHECK (kf_mp_str_eq (s_row (reply, 0), "bot_id", "default"));
    CHECK (kf_mp_get_bool (reply->result, "has_more", false));
    kf_reply_destroy (&reply);
    reply = s_ok (client, "intent.query", "{\"name\":\"ticket\"}");
    CHECK_INT (s_rows (reply), 1);
    CHECK (kf_mp_str_eq (s_row (reply, 0), "name", "ticket"));
    kf_reply_destroy (&reply);
}

static void
s_test_intent_edits (kf_client_t *client)
{
    //  The first edit of "shop" copies the six, in the same commit as the new intent
    int64_t version = s_kb_version ();
    kf_reply_t *reply = s_ok (client, "intent.create", "{\"bot_id\":\"shop\",\"name\":\"refund_fast\","
        "\"description\":\"极速退款\",\"examples\":[\"极速退款怎么申请\",\"退款能快点吗\"],"
        "\"keywords\":[\"极速退款\"],\"patterns\":[\"退款*多久\",\"秒退\"]}");
    CHECK (kf_mp_str_eq (reply->result, "bot_id", "shop"));
    CHECK (kf_mp_str_eq (reply->result, "name", "refund_fast"));
    CHECK (kf_mp_str_eq (reply->result, "description", "极速退款"));
    CHECK_INT (kf_mp_get (reply->result, "patterns")->via.array.size, 2);
    CHECK (!kf_mp_get_bool (reply->result, "builtin", true));
    CHECK (kf_mp_get_bool (reply->result, "enabled", false));
    int64_t refund = kf_mp_get_int (reply->result, "id", 0);
    kf_reply_destroy (&reply);
    CHECK_INT (s_kb_version (), version + 1);
    reply = s_ok (client, "intent.query", "{\"bot_id\":\"shop\"}");
    CHECK (!kf_mp_get_bool (reply->result, "inherited", true));
    CHECK_INT (s_rows (reply), 7);
    CHECK (kf_mp_str_eq (s_row (reply, 0), "bot_id", "shop"));
    CHECK (kf_mp_str_eq (s_row (reply, 0), "name", "chitchat"));
    CHECK (kf_mp_get (s_row (reply, 0), "examples")->via.array.size >= 30);
    kf_reply_destroy (&reply);
    reply = s_ok (client, "intent.query", "{}");
    CHECK_INT (s_rows (reply), 6);          //  The default bot keeps its six
    kf_reply_destroy (&reply);
    s_fails (client, "intent.create", "conflict", "already exists",
             "{\"bot_id\":\"shop\",\"name\":\"refund_fast\",\"examples\":[\"x\"]}");
    s_fails (client, "intent.create", "conflict", "already exists",
             "{\"bot_id\":\"shop\",\"name\":\"chitchat\",\"examples\":[\"x\"]}");
    //  A failed edit takes its copy back: "shop4" still inherits
    s_fails (client, "intent.create", "conflict", NULL,
             "{\"bot_id\":\"shop4\",\"name\":\"ticket\",\"examples\":[\"x\"]}");
    reply = s_ok (client, "intent.query", "{\"bot_id\":\"shop4\"}");
    CHECK (kf_mp_get_bool (reply->result, "inherited", false));
    kf_reply_destroy (&reply);
    //  16 at most
    for (int i = 0; i < 9; i++) {
        reply = s_ok (client, "intent.create", "{\"bot_id\":\"shop\",\"name\":\"extra_%d\","
                      "\"examples\":[\"例子%d\"],\"enabled\":false}", i, i);
        CHECK (!kf_mp_get_bool (reply->result, "enabled", true));
        kf_reply_destroy (&reply);
    }
    s_fails (client, "intent.create", "too_large", "16",
             "{\"bot_id\":\"shop\",\"name\":\"extra_9\",\"examples\":[\"x\"]}");

    //  Updates: by name, lists replace, the others stay
    version = s_kb_version ();
    reply = s_ok (client, "intent.update", "{\"bot_id\":\"shop\",\"name\":\"refund_fast\","
                  "\"examples\":[\"退款要几天\"],\"enabled\":false}");
    CHECK_INT (kf_mp_get_int (reply->result, "id", 0), refund);
    CHECK_INT (kf_mp_get (reply->result, "examples")->via.array.size, 1);
    CHECK_INT (kf_mp_get (reply->result, "keywords")->via.array.size, 1);
    CHECK (!kf_mp_get_bool (reply->result, "enabled", true));
    CHECK (kf_mp_str_eq (reply->result, "description", "极速退款"));
    kf_reply_destroy (&reply);
    CHECK_INT (s_kb_version (), version + 1);
    //  A rename, by id
    reply = s_ok (client, "intent.update", "{\"bot_id\":\"shop\",\"id\":%lld,\"name\":\"refund_vip\","
                  "\"keywords\":[]}", (long long) refund);
    CHECK (kf_mp_str_eq (reply->result, "name", "refund_vip"));
    CHECK_INT (kf_mp_get (reply->result, "keywords")->via.array.size, 0);
    kf_reply_destroy (&reply);
    s_fails (client, "intent.update", "conflict", "already exists",
             "{\"bot_id\":\"shop\",\"id\":%lld,\"name\":\"extra_1\"}", (long long) refund);
    reply = s_ok (client, "intent.query", "{\"bot_id\":\"shop\",\"name\":\"chitchat\"}");
    int64_t shop_chitchat = kf_mp_get_int (s_row (reply, 0), "id", 0);
    kf_reply_destroy (&reply);
    s_fails (client, "intent.update", "invalid_param", "cannot be renamed",
             "{\"bot_id\":\"shop\",\"id\":%lld,\"name\":\"smalltalk\"}", (long long) shop_chitchat);
    s_fails (client, "intent.update", "not_found", "does not exist",
             "{\"bot_id\":\"shop\",\"name\":\"nope\",\"enabled\":true}");
    s_fails (client, "intent.update", "not_found", "does not exist",
             "{\"bot_id\":\"shop\",\"id\":999999,\"enabled\":true}");
    s_fails (client, "intent.update", "invalid_param", "nothing to change",
             "{\"bot_id\":\"shop\",\"name\":\"refund_vip\"}");
    s_fails (client, "intent.update", "missing_argument", "params.id or params.name",
             "{\"bot_id\":\"shop\",\"enabled\":true}");

    //  An update of a bot that inherits, by a default row's id, changes that intent's copy
    reply = s_ok (client, "intent.query", "{\"name\":\"ticket\"}");
    int64_t default_ticket = kf_mp_get_int (s_row (reply, 0), "id", 0);
    kf_reply_destroy (&reply);
    reply = s_ok (client, "intent.update", "{\"bot_id\":\"shop3\",\"id\":%lld,\"keywords\":[\"开工单\"]}",
                  (long long) default_ticket);
    CHECK (kf_mp_str_eq (reply->result, "bot_id", "shop3"));
    CHECK (kf_mp_str_eq (reply->result, "name", "ticket"));
    CHECK (kf_mp_get_int (reply->result, "id", 0) != default_ticket);
    CHECK (kf_mp_get (reply->result, "examples")->via.array.size >= 30);
    kf_reply_destroy (&reply);
    reply = s_ok (client, "intent.query", "{\"name\":\"ticket\"}");
    const msgpack_object *keywords = kf_mp_get (s_row (reply, 0), "keywords");
    for (uint32_t i = 0; i < keywords->via.array.size; i++)
        CHECK (!kf_mp_str_eq_key (&keywords->via.array.ptr [i], "开工单"));
    kf_reply_destroy (&reply);
    reply = s_ok (client, "intent.query", "{\"bot_id\":\"shop3\"}");
    CHECK (!kf_mp_get_bool (reply->result, "inherited", true));
    CHECK_INT (s_rows (reply), 6);
    kf_reply_destroy (&reply);

    //  Deletes: built-ins refused (by name or id), nothing deleted then
    s_fails (client, "intent.delete", "invalid_param", "built in",
             "{\"bot_id\":\"shop\",\"names\":[\"extra_0\",\"ticket\"]}");
    s_fails (client, "intent.delete", "invalid_param", "built in",
             "{\"bot_id\":\"shop\",\"ids\":[%lld]}", (long long) shop_chitchat);
    s_fails (client, "intent.delete", "missing_argument", NULL, "{\"bot_id\":\"shop\"}");
    s_fails (client, "intent.delete", "invalid_param", NULL, "{\"bot_id\":\"shop\",\"ids\":[0]}");
    s_fails (client, "intent.delete", "invalid_param", NULL, "{\"bot_id\":\"shop\",\"names\":[]}");
    s_fails (client, "intent.delete", "invalid_param", NULL, "{\"bot_id\":\"shop\",\"names\":[\"a b\"]}");
    version = s_kb_version ();
    reply = s_ok (client, "intent.delete", "{\"bot_id\":\"shop\",\"ids\":[%lld,888888],"
                  "\"names\":[\"extra_0\",\"ghost\"]}", (long long) refund);
    CHECK_INT (kf_mp_get_int (reply->result, "deleted", 0), 2);
    const msgpack_object *missing = kf_mp_get (reply->result, "not_found");
    CHECK_INT (missing->via.array.size, 2);
    CHECK_INT (missing->via.array.ptr [0].via.u64, 888888);
    CHECK (kf_mp_str_eq_key (&missing->via.array.ptr [1], "ghost"));
    kf_reply_destroy (&reply);
    CHECK_INT (s_kb_version (), version + 1);
    reply = s_ok (client, "intent.delete", "{\"bot_id\":\"shop\",\"names\":[\"ghost\"]}");
    CHECK_INT (kf_mp_get_int (reply->result, "deleted", 1), 0);
    kf_reply_destroy (&reply);
    CHECK_INT (s_kb_version (), version + 1);   //  Nothing deleted, no bump
    reply = s_ok (client, "intent.query", "{\"bot_id\":\"shop\"}");
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 14);
    kf_reply_destroy (&reply);
}

static void
s_test_intent_validation (kf_client_t *client)
{
    const char *m = "intent.create";
    s_fails (client, m, "missing_argument", "params.name", "{\"examples\":[\"x\"]}");
    s_fails (client, m, "missing_argument", "params.name", "{\"name\":\"\",\"examples\":[\"x\"]}");
    s_fails (client, m, "invalid_param", "params.name", "{\"name\":7,\"examples\":[\"x\"]}");
    s_fails (client, m, "invalid_param", "letters", "{\"name\":\"退款\",\"examples\":[\"x\"]}");
    s_fails (client, m, "invalid_param", "letters", "{\"name\":\"a-b\",\"examples\":[\"x\"]}");
    s_fails (client, m, "too_large", "64", "{\"name\":\"%065d\",\"examples\":[\"x\"]}", 0);
    s_fails (client, m, "missing_argument", "params.examples", "{\"name\":\"n1\"}");
    s_fails (client, m, "invalid_param", "params.examples", "{\"name\":\"n1\",\"examples\":[]}");
    s_fails (client, m, "invalid_param", "params.examples", "{\"name\":\"n1\",\"examples\":\"x\"}");
    s_fails (client, m, "invalid_param", "params.examples[1]", "{\"name\":\"n1\",\"examples\":[\"x\",\"\"]}");
    s_fails (client, m, "invalid_param", "params.examples[0]", "{\"name\":\"n1\",\"examples\":[5]}");
    char *list = s_list ("e", 501, 3);
    s_fails (client, m, "too_large", "500", "{\"name\":\"n1\",\"examples\":%s}", list);
    free (list);
    list = s_list ("e", 2, 201);
    s_fails (client, m, "too_large", "200 characters", "{\"name\":\"n1\",\"examples\":%s}", list);
    free (list);
    list = s_list ("k", 51, 3);
    s_fails (client, m, "too_large", "params.keywords", "{\"name\":\"n1\",\"examples\":[\"x\"],"
             "\"keywords\":%s}", list);
    s_fails (client, m, "too_large", "params.patterns", "{\"name\":\"n1\",\"examples\":[\"x\"],"
             "\"patterns\":%s}", list);
    free (list);
    s_fails (client, m, "invalid_param", "params.keywords", "{\"name\":\"n1\",\"examples\":[\"x\"],"
             "\"keywords\":{}}");
    const char *bad_patterns [] = { "*退款", "退款*", "退*款*慢", "*" };
    for (int i = 0; i < 4; i++)
        s_fails (client, m, "invalid_param", "A*B", "{\"name\":\"n1\",\"examples\":[\"x\"],"
                 "\"patterns\":[\"ok\",\"%s\"]}", bad_patterns [i]);
    s_fails (client, m, "invalid_param", "params.enabled", "{\"name\":\"n1\",\"examples\":[\"x\"],"
             "\"enabled\":\"yes\"}");
    s_fails (client, m, "invalid_param", "params.description", "{\"name\":\"n1\",\"examples\":[\"x\"],"
             "\"description\":[]}");
    list = s_list ("d", 1, 501);
    list [strlen (list) - 1] = 0;
    s_fails (client, m, "too_large", "params.description", "{\"name\":\"n1\",\"examples\":[\"x\"],"
             "\"description\":%s}", list + 1);
    free (list);
    s_fails (client, m, "invalid_param", "params.bot_id", "{\"bot_id\":3,\"name\":\"n1\","
             "\"examples\":[\"x\"]}");
    //  Update: the same checks on what is given
    s_fails (client, "intent.update", "invalid_param", "params.examples",
             "{\"name\":\"chitchat\",\"examples\":[]}");
    s_fails (client, "intent.update", "invalid_param", "A*B",
             "{\"name\":\"chitchat\",\"patterns\":[\"**\"]}");
    s_fails (client, "intent.update", "invalid_param", "params.id", "{\"id\":\"7\",\"enabled\":true}");
    s_fails (client, "intent.update", "invalid_param", "params.id", "{\"id\":0,\"enabled\":true}");
    s_fails (client, "intent.query", "invalid_param", "params.page_size", "{\"page_size\":101}");
    s_fails (client, "intent.query", "invalid_param", "params.page", "{\"page\":0}");
    //  Text that is not UTF-8 (packed by hand: JSON cannot carry it)
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &params, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_str (&pk, "name", "n1");
    kf_mp_pack_cstr (&pk, "examples");
    msgpack_pack_array (&pk, 1);
    kf_mp_pack_str (&pk, "\xe9\x80", 2);
    kf_reply_t *reply;
    CHECK_INT (kf_client_call (client, m, params.data, params.size, &reply), 0);
    CHECK (!reply->ok);
    CHECK_STR (kf_errc_name (reply->error.errc), "invalid_utf8");
    kf_reply_destroy (&reply);
    msgpack_sbuffer_destroy (&params);
    //  None of it was stored
    reply = s_ok (client, "intent.query", "{\"name\":\"n1\"}");
    CHECK_INT (s_rows (reply), 0);
    kf_reply_destroy (&reply);
}

//  --- Chit-chat -------------------------------------------------------------------------------

static bool
s_chat_says (kf_client_t *client, const char *session, const char *message, const char *expected,
             int ms)
{
    int64_t deadline = kf_mono_ms () + ms;
    while (true) {
        kf_reply_t *reply = s_ok (client, "chat", "{\"session_id\":\"%s\",\"message\":\"%s\"}",
                                  session, message);
        bool is_said = strstr (h_str (reply->result, "reply"), expected) != NULL;
        kf_reply_destroy (&reply);
        if (is_said)
            return true;
        if (kf_mono_ms () > deadline)
            return false;
        h_sleep_ms (50);
    }
}

static void
s_test_chitchat (kf_client_t *client)
{
    kf_reply_t *reply = s_ok (client, "chitchat.query", "{}");
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 10);
    CHECK (!kf_mp_get_bool (reply->result, "inherited", true));
    int64_t hello = s_find (reply, "reply", "您好，我是智能客服小快，请问有什么可以帮您？");
    CHECK (hello > 0);
    kf_reply_destroy (&reply);
    reply = s_ok (client, "chitchat.query", "{\"bot_id\":\"cc\",\"keyword\":\"再见\"}");
    CHECK (kf_mp_get_bool (reply->result, "inherited", false));
    CHECK_INT (s_rows (reply), 1);
    CHECK (kf_mp_str_eq (s_row (reply, 0), "bot_id", "default"));
    kf_reply_destroy (&reply);

    //  The bot answers greetings from the default table until its own edit
    reply = s_ok (client, "session.create", "{\"bot_id\":\"cc\",\"user_id\":\"u-cc\"}");
    char session [64];
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    bool is_chitchat_live = s_chat_says (client, session, "你好", "小快", 3000);
    int64_t version = s_kb_version ();
    reply = s_ok (client, "chitchat.update", "{\"bot_id\":\"cc\",\"id\":%lld,"
                  "\"reply\":\"您好呀，这里是CC商城，有什么可以帮您？\"}", (long long) hello);
    CHECK (kf_mp_str_eq (reply->result, "bot_id", "cc"));
    CHECK (kf_mp_get_int (reply->result, "id", 0) != hello);
    CHECK (kf_mp_get (reply->result, "questions")->via.array.size == 7);
    int64_t cc_hello = kf_mp_get_int (reply->result, "id", 0);
    kf_reply_destroy (&reply);
    CHECK_INT (s_kb_version (), version + 1);
    reply = s_ok (client, "chitchat.query", "{\"bot_id\":\"cc\"}");
    CHECK (!kf_mp_get_bool (reply->result, "inherited", true));
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 10);
    kf_reply_destroy (&reply);
    //  Workers reload on the version bump: the edited reply within a second or so
    if (is_chitchat_live)
        CHECK (s_chat_says (client, session, "你好", "CC商城", 3000));
    else
        fprintf (stderr, "test_intents_admin: workers do not answer chit-chat from the table yet;"
                         " skipping the live check\n");
    //  The default bot is untouched
    reply = s_ok (client, "chitchat.query", "{\"keyword\":\"CC商城\"}");
    CHECK_INT (s_rows (reply), 0);
    kf_reply_destroy (&reply);

    //  Create, update (lists replace), delete
    reply = s_ok (client, "chitchat.create", "{\"bot_id\":\"cc\",\"questions\":[\"你们几点下班\","
                  "\"客服几点下班\"],\"reply\":\"人工客服工作时间为每天9:00-21:00。\"}");
    int64_t hours = kf_mp_get_int (reply->result, "id", 0);
    CHECK_INT (kf_mp_get (reply->result, "questions")->via.array.size, 2);
    kf_reply_destroy (&reply);
    reply = s_ok (client, "chitchat.update", "{\"bot_id\":\"cc\",\"id\":%lld,\"questions\":[\"几点下班\"]}",
                  (long long) hours);
    CHECK_INT (kf_mp_get (reply->result, "questions")->via.array.size, 1);
    CHECK (strstr (h_str (reply->result, "reply"), "9:00-21:00"));
    kf_reply_destroy (&reply);
    reply = s_ok (client, "chitchat.query", "{\"bot_id\":\"cc\",\"keyword\":\"下班\"}");
    CHECK_INT (s_rows (reply), 1);
    kf_reply_destroy (&reply);
    version = s_kb_version ();
    reply = s_ok (client, "chitchat.delete", "{\"bot_id\":\"cc\",\"ids\":[%lld,777777]}",
                  (long long) hours);
    CHECK_INT (kf_mp_get_int (reply->result, "deleted", 0), 1);
    CHECK_INT (kf_mp_get (reply->result, "not_found")->via.array.size, 1);
    CHECK (!kf_mp_get_bool (reply->result, "inherited", true));
    kf_reply_destroy (&reply);
    CHECK_INT (s_kb_version (), version + 1);
    //  A delete on a bot that inherits, by the default's ids, copies first
    reply = s_ok (client, "chitchat.delete", "{\"bot_id\":\"cc2\",\"ids\":[%lld]}", (long long) hello);
    CHECK_INT (kf_mp_get_int (reply->result, "deleted", 0), 1);
    kf_reply_destroy (&reply);
    reply = s_ok (client, "chitchat.query", "{\"bot_id\":\"cc2\"}");
    CHECK (!kf_mp_get_bool (reply->result, "inherited", true));
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 9);
    uint32_t rows = s_rows (reply);
    char ids [512] = "";
    for (uint32_t i = 0; i < rows; i++)
        snprintf (ids + strlen (ids), sizeof ids - strlen (ids), "%s%lld", i ? "," : "",
                  (long long) kf_mp_get_int (s_row (reply, i), "id", 0));
    kf_reply_destroy (&reply);
    //  Deleting all its rows: the bot uses the default's again
    reply = s_ok (client, "chitchat.delete", "{\"bot_id\":\"cc2\",\"ids\":[%s]}", ids);
    CHECK_INT (kf_mp_get_int (reply->result, "deleted", 0), 9);
    CHECK (kf_mp_get_bool (reply->result, "inherited", false));
    kf_reply_destroy (&reply);
    reply = s_ok (client, "chitchat.query", "{\"bot_id\":\"cc2\"}");
    CHECK (kf_mp_get_bool (reply->result, "inherited", false));
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 10);
    kf_reply_destroy (&reply);

    //  Validation
    const char *m = "chitchat.create";
    s_fails (client, m, "missing_argument", "params.questions", "{\"reply\":\"r\"}");
    s_fails (client, m, "invalid_param", "params.questions", "{\"questions\":[],\"reply\":\"r\"}");
    s_fails (client, m, "invalid_param", "params.questions[0]", "{\"questions\":[\"\"],\"reply\":\"r\"}");
    s_fails (client, m, "invalid_param", "params.questions", "{\"questions\":\"hi\",\"reply\":\"r\"}");
    char *list = s_list ("q", 51, 2);
    s_fails (client, m, "too_large", "params.questions", "{\"questions\":%s,\"reply\":\"r\"}", list);
    free (list);
    list = s_list ("q", 1, 101);
    s_fails (client, m, "too_large", "100 characters", "{\"questions\":%s,\"reply\":\"r\"}", list);
    free (list);
    s_fails (client, m, "missing_argument", "params.reply", "{\"questions\":[\"q\"]}");
    s_fails (client, m, "missing_argument", "params.reply", "{\"questions\":[\"q\"],\"reply\":\"\"}");
    s_fails (client, m, "invalid_param", "params.reply", "{\"questions\":[\"q\"],\"reply\":7}");
    list = s_list ("r", 1, 2001);
    list [strlen (list) - 1] = 0;
    s_fails (client, m, "too_large", "params.reply", "{\"questions\":[\"q\"],\"reply\":%s}", list + 1);
    free (list);
    m = "chitchat.update";
    s_fails (client, m, "missing_argument", "params.id", "{\"reply\":\"r\"}");
    s_fails (client, m, "invalid_param", "params.id", "{\"id\":0,\"reply\":\"r\"}");
    s_fails (client, m, "invalid_param", "nothing to change", "{\"id\":%lld}", (long long) cc_hello);
    s_fails (client, m, "not_found", "does not exist", "{\"id\":999999,\"reply\":\"r\"}");
    s_fails (client, m, "not_found", "does not exist", "{\"bot_id\":\"cc\",\"id\":%lld,\"reply\":\"r\"}",
             (long long) hello);        //  cc has its own rows now: the default's ids are not its
    s_fails (client, m, "invalid_param", "params.questions", "{\"id\":%lld,\"questions\":[]}",
             (long long) cc_hello);
    m = "chitchat.delete";
    s_fails (client, m, "missing_argument", "params.ids", "{}");
    s_fails (client, m, "invalid_param", "params.ids", "{\"ids\":[]}");
    s_fails (client, m, "invalid_param", "params.ids[1]", "{\"ids\":[1,\"2\"]}");
    s_fails (client, "chitchat.query", "too_large", "params.keyword", "{\"keyword\":\"%0101d\"}", 0);
}

//  --- Tickets ---------------------------------------------------------------------------------

#define S_REPAIR "\"type\":\"报修\",\"address\":\"上海市浦东新区世纪大道100号\",\"phone\":\"13800138000\"," \
                 "\"description\":\"空调不制冷\""

static void
s_test_execute (kf_client_t *client, char *session, size_t size)
{
    //  Without a session
    kf_reply_t *reply = s_ok (client, "intent.execute", "{\"intent\":\"ticket\",\"user_id\":\"u9\","
                              "\"params\":{" S_REPAIR "}}");
    const msgpack_object *ticket = kf_mp_get (reply->result, "ticket");
    CHECK (ticket && ticket->type == MSGPACK_OBJECT_MAP);
    const char *no = h_str (ticket, "ticket_no");
    CHECK (strlen (no) == 15 && no [0] == 'T');
    CHECK (kf_mp_str_eq (ticket, "type", "报修"));
    CHECK (kf_mp_str_eq (ticket, "status", "open"));
    CHECK (kf_mp_str_eq (ticket, "source", "execute"));
    CHECK (kf_mp_str_eq (ticket, "user_id", "u9"));
    CHECK (kf_mp_get (ticket, "session_id")->type == MSGPACK_OBJECT_NIL);
    CHECK (kf_mp_str_eq (kf_mp_get (ticket, "fields"), "phone", "13800138000"));
    CHECK (kf_mp_str_eq (reply->result, "response_type", "form_show"));
    char expected [256];
    snprintf (expected, sizeof expected, "您的报修工单已提交成功，工单编号：%s。工作人员会尽快与您联系。", no);
    CHECK_STR (h_str (reply->result, "reply"), expected);
    const msgpack_object *card = kf_mp_get (reply->result, "response_content");
    CHECK (kf_mp_str_eq (card, "title", "工单已创建"));
    const msgpack_object *rows = kf_mp_get (card, "params");
    CHECK_INT (rows->via.array.size, 7);
    CHECK (kf_mp_str_eq (&rows->via.array.ptr [0], "value", no));
    CHECK (kf_mp_str_eq (&rows->via.array.ptr [2], "value", "报修"));
    CHECK (kf_mp_str_eq (&rows->via.array.ptr [3], "key", "地址"));
    CHECK (kf_mp_str_eq (&rows->via.array.ptr [6], "value", "待处理"));
    kf_reply_destroy (&reply);
    //  With a session (the ticket is the session's user's), by intent id
    reply = s_ok (client, "session.create", "{\"user_id\":\"u-t\"}");
    snprintf (session, size, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    reply = s_ok (client, "intent.query", "{\"name\":\"ticket\"}");
    int64_t ticket_id = kf_mp_get_int (s_row (reply, 0), "id", 0);
    kf_reply_destroy (&reply);
    reply = s_ok (client, "intent.execute", "{\"intent_id\":%lld,\"session_id\":\"%s\",\"user_id\":"
                  "\"u-t\",\"params\":{\"type\":\"售后\",\"order_no\":\"ORD-2024-001\",\"phone\":"
                  "\"13900139000\",\"description\":\"收到的杯子碎了\"}}", (long long) ticket_id, session);
    ticket = kf_mp_get (reply->result, "ticket");
    CHECK (kf_mp_str_eq (ticket, "session_id", session));
    CHECK (kf_mp_str_eq (ticket, "user_id", "u-t"));
    CHECK (kf_mp_str_eq (ticket, "type", "售后"));
    CHECK_INT (kf_mp_get (kf_mp_get (reply->result, "response_content"), "params")->via.array.size, 7);
    //  The confirmation is the session's answer: history shows the card, under the message id
    int64_t message_id = kf_mp_get_int (reply->result, "message_id", 0);
    CHECK (message_id > 0);
    CHECK_INT (kf_mp_get_int (ticket, "message_id", 0), message_id);
    char ticket_no [32];
    snprintf (ticket_no, sizeof ticket_no, "%s", h_str (ticket, "ticket_no"));
    kf_reply_destroy (&reply);
    reply = s_ok (client, "message.get", "{\"message_id\":%lld}", (long long) message_id);
    CHECK (kf_mp_str_eq (reply->result, "role", "assistant"));
    CHECK (kf_mp_str_eq (reply->result, "response_type", "form_show"));
    CHECK (strstr (h_str (reply->result, "content"), ticket_no));
    CHECK (kf_mp_str_eq (reply->result, "session_id", session));
    kf_reply_destroy (&reply);
    reply = s_ok (client, "intent.execute", "{\"intent\":\"ticket\",\"session_id\":\"%s\",\"params\":"
                  "{\"type\":\"投诉\",\"phone\":\"021-12345678\",\"description\":\"发货太慢了\"}}", session);
    kf_reply_destroy (&reply);
    reply = s_ok (client, "history", "{\"session_id\":\"%s\"}", session);
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 2);
    kf_reply_destroy (&reply);

    //  Each bad input
    const char *m = "intent.execute";
    s_fails (client, m, "missing_argument", "params.intent", "{\"params\":{" S_REPAIR "}}");
    s_fails (client, m, "not_found", "does not exist", "{\"intent\":\"nope\",\"params\":{}}");
    s_fails (client, m, "not_found", "does not exist", "{\"intent_id\":999999,\"params\":{}}");
    s_fails (client, m, "invalid_param", "ticket and transfer_to_human",
             "{\"intent\":\"knowledge_qa\",\"params\":{}}");
    s_fails (client, m, "missing_argument", "params.params", "{\"intent\":\"ticket\"}");
    s_fails (client, m, "invalid_param", "params.params", "{\"intent\":\"ticket\",\"params\":[1]}");
    s_fails (client, m, "missing_argument", "params.params.type", "{\"intent\":\"ticket\",\"params\":{}}");
    s_fails (client, m, "invalid_param", "params.params.type", "{\"intent\":\"ticket\",\"params\":{\"type\":1}}");
    s_fails (client, m, "invalid_param", "报修, 投诉, 售后, 咨询",
             "{\"intent\":\"ticket\",\"params\":{\"type\":\"维修\"}}");
    s_fails (client, m, "missing_argument", "params.params.address",
             "{\"intent\":\"ticket\",\"params\":{\"type\":\"报修\",\"phone\":\"13800138000\","
             "\"description\":\"空调不制冷\"}}");
    s_fails (client, m, "invalid_param", "params.params.phone",
             "{\"intent\":\"ticket\",\"params\":{\"type\":\"投诉\",\"phone\":\"123\",\"description\":\"差评\"}}");
    s_fails (client, m, "invalid_param", "not only punctuation",
             "{\"intent\":\"ticket\",\"params\":{\"type\":\"投诉\",\"phone\":\"13800138000\","
             "\"description\":\"？？？！\"}}");
    s_fails (client, m, "invalid_param", "not a field",
             "{\"intent\":\"ticket\",\"params\":{" S_REPAIR ",\"order_no\":\"ORD-1\"}}");
    s_fails (client, m, "invalid_param", "not a field",
             "{\"intent\":\"ticket\",\"params\":{" S_REPAIR ",\"email\":\"a@b.c\"}}");
    s_fails (client, m, "not_found", "does not exist",
             "{\"intent\":\"ticket\",\"session_id\":\"%s\",\"user_id\":\"someone-else\",\"params\":{"
             S_REPAIR "}}", session);
    s_fails (client, m, "not_found", "does not exist",
             "{\"intent\":\"ticket\",\"session_id\":\"s_00000000000000000000\",\"params\":{" S_REPAIR "}}");
    s_fails (client, m, "invalid_param", "belongs to bot",
             "{\"intent\":\"ticket\",\"bot_id\":\"shop\",\"session_id\":\"%s\",\"params\":{" S_REPAIR "}}",
             session);
    //  A disabled intent does not run
    kf_reply_t *off = s_ok (client, "intent.update", "{\"bot_id\":\"shop2\",\"name\":\"ticket\","
                            "\"enabled\":false}");
    kf_reply_destroy (&off);
    s_fails (client, m, "invalid_param", "disabled",
             "{\"intent\":\"ticket\",\"bot_id\":\"shop2\",\"params\":{" S_REPAIR "}}");
    //  An operator's own intent is not executable
    s_fails (client, m, "invalid_param", "not executable",
             "{\"intent\":\"extra_1\",\"bot_id\":\"shop\",\"params\":{}}");
}

//  transfer_to_human hands a session to people, as handoff.request does
static void
s_test_execute_transfer (kf_client_t *client)
{
    kf_reply_t *reply = s_ok (client, "session.create", "{\"user_id\":\"u-h\"}");
    char session [64];
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    const char *m = "intent.execute";
    s_fails (client, m, "missing_argument", "params.session_id",
             "{\"intent\":\"transfer_to_human\",\"params\":{}}");
    s_fails (client, m, "invalid_param", "params.params.reason_text",
             "{\"intent\":\"transfer_to_human\",\"session_id\":\"%s\",\"params\":{\"reason_text\":1}}",
             session);
    s_fails (client, m, "not_found", "does not exist",
             "{\"intent\":\"transfer_to_human\",\"session_id\":\"%s\",\"user_id\":\"u-x\"}", session);
    reply = s_ok (client, m, "{\"intent\":\"transfer_to_human\",\"session_id\":\"%s\",\"user_id\":"
                  "\"u-h\",\"params\":{\"reason_text\":\"我要找人工客服\"}}", session);
    CHECK (kf_mp_str_eq (reply->result, "intent", "transfer_to_human"));
    CHECK (kf_mp_str_eq (reply->result, "handoff_state", "pending"));
    CHECK (kf_mp_get_int (reply->result, "escalation_id", 0) > 0);
    const msgpack_object *card = kf_mp_get (reply->result, "escalation_card");
    CHECK (card && card->type == MSGPACK_OBJECT_MAP);
    CHECK (kf_mp_str_eq (card, "session_id", session));
    CHECK (kf_mp_str_eq (card, "intent", "transfer_to_human"));
    CHECK_INT (kf_mp_get_int (card, "reason", 0), 1);
    kf_reply_destroy (&reply);
    //  Once people have it, again is a conflict
    s_fails (client, m, "conflict", NULL, "{\"intent\":\"transfer_to_human\",\"session_id\":\"%s\"}",
             session);
    //  A closed session cannot be handed over
    reply = s_ok (client, "session.create", "{\"user_id\":\"u-h\"}");
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    reply = s_ok (client, "session.close", "{\"session_id\":\"%s\",\"reason\":1}", session);
    kf_reply_destroy (&reply);
    s_fails (client, m, "session_closed", NULL,
             "{\"intent\":\"transfer_to_human\",\"session_id\":\"%s\"}", session);
}

static void
s_test_tickets_query (kf_client_t *client, const char *session)
{
    kf_reply_t *reply = s_ok (client, "tickets.query", "{}");
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 3);
    int64_t newest = kf_mp_get_int (s_row (reply, 0), "id", 0);
    CHECK (newest > kf_mp_get_int (s_row (reply, 1), "id", 0));
    CHECK (kf_mp_get_int (s_row (reply, 1), "id", 0) > kf_mp_get_int (s_row (reply, 2), "id", 0));
    char first_no [32];
    snprintf (first_no, sizeof first_no, "%s", h_str (s_row (reply, 2), "ticket_no"));
    kf_reply_destroy (&reply);
    reply = s_ok (client, "tickets.query", "{\"page\":2,\"page_size\":2}");
    CHECK_INT (s_rows (reply), 1);
    CHECK (!kf_mp_get_bool (reply->result, "has_more", true));
    CHECK (kf_mp_str_eq (s_row (reply, 0), "ticket_no", first_no));
    kf_reply_destroy (&reply);
    reply = s_ok (client, "tickets.query", "{\"session_id\":\"%s\",\"user_id\":\"u-t\"}", session);
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 2);
    kf_reply_destroy (&reply);
    reply = s_ok (client, "tickets.query", "{\"session_id\":\"%s\",\"type\":\"投诉\"}", session);
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 1);
    kf_reply_destroy (&reply);
    reply = s_ok (client, "tickets.query", "{\"user_id\":\"u9\"}");
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 1);
    CHECK (kf_mp_str_eq (s_row (reply, 0), "ticket_no", first_no));
    kf_reply_destroy (&reply);
    reply = s_ok (client, "tickets.query", "{\"ticket_no\":\"%s\"}", first_no);
    CHECK_INT (s_rows (reply), 1);
    kf_reply_destroy (&reply);
    reply = s_ok (client, "tickets.query", "{\"bot_id\":\"default\",\"status\":\"open\"}");
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 3);
    kf_reply_destroy (&reply);
    reply = s_ok (client, "tickets.query", "{\"bot_id\":\"shop\"}");
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 0);
    kf_reply_destroy (&reply);
    s_fails (client, "tickets.query", "not_found", "does not exist",
             "{\"session_id\":\"%s\",\"user_id\":\"intruder\"}", session);
    s_fails (client, "tickets.query", "invalid_param", "params.status", "{\"status\":\"done\"}");
    s_fails (client, "tickets.query", "invalid_param", "params.page_size", "{\"page_size\":101}");
    s_fails (client, "tickets.query", "invalid_param", "params.type", "{\"type\":[]}");

    //  Status changes
    reply = s_ok (client, "tickets.update", "{\"ticket_no\":\"%s\",\"status\":\"processing\"}", first_no);
    CHECK (kf_mp_str_eq (reply->result, "status", "processing"));
    kf_reply_destroy (&reply);
    reply = s_ok (client, "tickets.update", "{\"id\":%lld,\"status\":\"closed\"}", (long long) newest);
    CHECK (kf_mp_str_eq (reply->result, "status", "closed"));
    CHECK (kf_mp_get_int (reply->result, "updated_at", 0) >= kf_mp_get_int (reply->result, "created_at", 0));
    kf_reply_destroy (&reply);
    reply = s_ok (client, "tickets.query", "{\"status\":\"open\"}");
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 1);
    kf_reply_destroy (&reply);
    s_fails (client, "tickets.update", "missing_argument", "params.status", "{\"id\":1}");
    s_fails (client, "tickets.update", "invalid_param", "params.status", "{\"id\":1,\"status\":\"gone\"}");
    s_fails (client, "tickets.update", "missing_argument", "params.id or params.ticket_no",
             "{\"status\":\"open\"}");
    s_fails (client, "tickets.update", "not_found", "does not exist", "{\"id\":999999,\"status\":\"open\"}");
    s_fails (client, "tickets.update", "not_found", "does not exist",
             "{\"ticket_no\":\"T20000101999999\",\"status\":\"open\"}");
}

//  The totals the listing methods report, to show a sweep stored nothing
static void
s_totals (kf_client_t *client, int64_t totals [4])
{
    static const char *lists [] = { "intent.query", "chitchat.query", "tickets.query",
                                    "escalations.list" };
    for (int i = 0; i < 4; i++) {
        kf_reply_t *reply = s_ok (client, lists [i], "{\"page_size\":1}");
        totals [i] = kf_mp_get_int (reply->result, "total", -1);
        CHECK (totals [i] >= 0);
        kf_reply_destroy (&reply);
    }
}

//  Every new method (issue 5: intents, chit-chat, tickets, the handoff, chat.stop), given params
//  of the wrong types, empty or absurd: a 4xx with a message each time (queries and lists may
//  succeed), nothing stored, and the broker keeps answering
static void
s_test_wrong_types (kf_client_t *client)
{
    static const char *methods [] = {
        "intent.create", "intent.query", "intent.update", "intent.delete", "intent.execute",
        "chitchat.create", "chitchat.query", "chitchat.update", "chitchat.delete", "tickets.query",
        "tickets.update", "chat.stop", "handoff.request", "agent.assign", "agent.reply",
        "agent.resolve", "escalations.list", NULL
    };
    static const char *params [] = {
        "{}",
        "{\"bot_id\":3,\"name\":[],\"examples\":\"x\",\"keywords\":7,\"patterns\":{},\"enabled\":1,"
        "\"id\":\"1\",\"ids\":\"1\",\"names\":3,\"page\":\"a\",\"page_size\":-3,\"questions\":{},"
        "\"reply\":[],\"intent\":5,\"intent_id\":\"t\",\"params\":\"p\",\"session_id\":9,"
        "\"user_id\":{},\"ticket_no\":1,\"type\":2,\"status\":true,\"keyword\":8,\"description\":1,"
        "\"message_id\":\"1\",\"request_id\":7,\"agent_id\":5,\"escalation_id\":\"1\",\"content\":[],"
        "\"reason_text\":{},\"note\":5}",
        "{\"name\":\"x y\",\"examples\":[null,1,[]],\"keywords\":[\"\"],\"patterns\":[\"a**\"],"
        "\"id\":-1,\"ids\":[0,1.5,\"x\"],\"names\":[\"\",null],\"page\":0,\"page_size\":1000000,"
        "\"questions\":[[]],\"reply\":\"\",\"intent\":\"\",\"intent_id\":0,\"params\":{\"type\":[]},"
        "\"session_id\":\"\",\"ticket_no\":\"\",\"status\":\"\",\"keyword\":\"\"}",
        "{\"bot_id\":\"\",\"name\":\"%0200d\",\"id\":1e300,\"ids\":[1e300],\"intent\":\"ticket\","
        "\"params\":{\"type\":\"报修\",\"address\":{},\"phone\":[],\"description\":null},"
        "\"status\":\"%0200d\"}",
        NULL
    };
    int64_t before [4], after [4];
    s_totals (client, before);
    for (int m = 0; methods [m]; m++)
        for (int p = 0; params [p]; p++) {
            kf_reply_t *reply = h_call (client, methods [m], params [p], 0, 0);
            if (reply->ok && !strstr (methods [m], "query") && !strstr (methods [m], "list"))
                fprintf (stderr, "%s %s: ok\n", methods [m], params [p]);
            if (reply->ok)
                CHECK (strstr (methods [m], "query") || strstr (methods [m], "list"));
            else {
                int code = kf_errc_code (reply->error.errc);
                if (code < 400 || code >= 500)
                    fprintf (stderr, "%s %s: %d %s\n", methods [m], params [p], code,
                             reply->error.message);
                CHECK (code >= 400 && code < 500);
                CHECK (strlen (reply->error.message) > 0);
            }
            kf_reply_destroy (&reply);
        }
    CHECK_INT (kill (s_h.broker, 0), 0);
    s_totals (client, after);
    for (int i = 0; i < 4; i++)
        CHECK_INT (after [i], before [i]);
    kf_reply_t *reply = h_call (client, "health", NULL);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
}

int
main (void)
{
    h_init (&s_h, "intents_admin");
    h_start_broker (&s_h, 1, NULL);
    kf_client_t *client = h_client (&s_h);
    s_test_intent_reads (client);
    s_test_intent_edits (client);
    s_test_intent_validation (client);
    s_test_chitchat (client);
    char session [64];
    s_test_execute (client, session, sizeof session);
    s_test_tickets_query (client, session);
    s_test_execute_transfer (client);
    s_test_wrong_types (client);
    kf_client_destroy (&client);
    h_cleanup (&s_h);
    printf ("test_intents_admin: all checks passed\n");
    return 0;
}
