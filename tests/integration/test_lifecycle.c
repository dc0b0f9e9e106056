/*  test_lifecycle.c - after the answers: feedback on an answer (stored, shown in history, counted in
    stats, revocable, only on answers, only by their user), closing a session with a satisfaction
    score (a closed session refuses chat), and idle sessions closing themselves. */
#include "harness.h"
#include "common/json_codec.h"
#include "common/log.h"
#include <signal.h>

static void
s_chat_as (kf_client_t *client, const char *session, const char *user, const char *message)
{
    kf_reply_t *reply = h_call (client, "chat", "{\"message\":\"%s\",\"session_id\":\"%s\",\"user_id\":\"%s\"}",
                                message, session, user);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
}

static int64_t
s_chat (kf_client_t *client, const char *session, const char *message)
{
    kf_reply_t *reply = h_call (client, "chat", "{\"message\":\"%s\",\"session_id\":\"%s\",\"user_id\":\"life-1\"}",
                                message, session);
    CHECK (reply->ok);
    int64_t id = kf_mp_get_int (reply->result, "message_id", 0);
    kf_reply_destroy (&reply);
    return id;
}

static void
s_expect_error (kf_reply_t *reply, int code, const char *name)
{
    CHECK (!reply->ok);
    CHECK_INT (kf_errc_code (reply->error.errc), code);
    CHECK_STR (kf_errc_name (reply->error.errc), name);
    kf_reply_destroy (&reply);
}


static void
s_test_profiles (kf_client_t *client)
{
    kf_reply_t *reply = h_call (client, "user.login", "{\"user_id\":\"list-1\",\"name\":\"王小明\","
                                "\"email\":\"xm@example.com\",\"mobile\":\"13800000000\"}");
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "name"), "王小明");
    CHECK (kf_mp_get_bool (reply->result, "is_logged_in", false));
    kf_reply_destroy (&reply);
    //  A later login changes what it names and keeps the rest
    reply = h_call (client, "user.login", "{\"user_id\":\"list-1\",\"photo_url\":\"https://img.example.com/a.png\"}");
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "email"), "xm@example.com");
    CHECK_STR (h_str (reply->result, "photo_url"), "https://img.example.com/a.png");
    kf_reply_destroy (&reply);
    s_expect_error (h_call (client, "user.login", "{\"user_id\":\"list-1\",\"email\":\"not-an-email\"}"),
                    400, "invalid_param");
    s_expect_error (h_call (client, "user.login", "{\"name\":\"无名\"}"), 400, "missing_argument");
    reply = h_call (client, "user.logout", "{\"user_id\":\"list-1\"}");
    CHECK (reply->ok && !kf_mp_get_bool (reply->result, "is_logged_in", true));
    kf_reply_destroy (&reply);
    s_expect_error (h_call (client, "user.logout", "{\"user_id\":\"nobody\"}"), 404, "not_found");
    reply = h_call (client, "user.get", "{\"user_id\":\"list-1\"}");
    CHECK (reply->ok && !kf_mp_get_bool (reply->result, "is_logged_in", true));
    CHECK_STR (h_str (reply->result, "mobile"), "13800000000");
    kf_reply_destroy (&reply);
    s_expect_error (h_call (client, "user.get", "{\"user_id\":\"nobody\"}"), 404, "not_found");
}

//  Pages a user's conversations with last_id and returns how many were seen; checks newest first
static int
s_page_all (kf_client_t *client, const char *user, int limit, char ids [][32], int max)
{
    char last [32] = "";
    int seen = 0;
    while (true) {
        kf_reply_t *reply = *last
            ? h_call (client, "conversations.list", "{\"user_id\":\"%s\",\"limit\":%d,\"last_id\":\"%s\"}", user, limit, last)
            : h_call (client, "conversations.list", "{\"user_id\":\"%s\",\"limit\":%d}", user, limit);
        CHECK (reply->ok);
        const msgpack_object *data = kf_mp_get (reply->result, "data");
        CHECK ((int) data->via.array.size <= limit);
        for (uint32_t i = 0; i < data->via.array.size && seen < max; i++)
            snprintf (ids [seen++], 32, "%s", h_str (&data->via.array.ptr [i], "session_id"));
        bool has_more = kf_mp_get_bool (reply->result, "has_more", false);
        if (data->via.array.size)
            snprintf (last, sizeof last, "%s", ids [seen - 1]);
        kf_reply_destroy (&reply);
        if (!has_more)
            return seen;
    }
}

static void
s_test_conversations (kf_client_t *client)
{
    kf_reply_t *reply = h_call (client, "conversations.list", "{\"user_id\":\"list-1\"}");
    CHECK (reply->ok);
    CHECK_INT (kf_mp_get (reply->result, "data")->via.array.size, 0);
    CHECK (!kf_mp_get_bool (reply->result, "has_more", true));
    CHECK_INT (kf_mp_get_int (reply->result, "total", -1), 0);
    kf_reply_destroy (&reply);
    char created [5][32];
    for (int i = 0; i < 5; i++) {
        reply = h_call (client, "session.create", "{\"user_id\":\"list-1\"}");
        snprintf (created [i], 32, "%s", h_str (reply->result, "session_id"));
        kf_reply_destroy (&reply);
    }
    //  Newest first, every page boundary: 5 in pages of 1, 2, 4, 5 and 100
    int limits [] = { 1, 2, 4, 5, 100 };
    for (int l = 0; l < 5; l++) {
        char ids [10][32];
        CHECK_INT (s_page_all (client, "list-1", limits [l], ids, 10), 5);
        for (int i = 0; i < 5; i++)
            CHECK_STR (ids [i], created [4 - i]);
    }
    reply = h_call (client, "conversations.list", "{\"user_id\":\"list-1\",\"limit\":5}");
    CHECK (!kf_mp_get_bool (reply->result, "has_more", true));
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 5);
    kf_reply_destroy (&reply);
    //  A conversation started while a client pages does not shift the pages after its cursor
    reply = h_call (client, "conversations.list", "{\"user_id\":\"list-1\",\"limit\":2}");
    kf_reply_destroy (&reply);
    reply = h_call (client, "session.create", "{\"user_id\":\"list-1\"}");
    kf_reply_destroy (&reply);
    reply = h_call (client, "conversations.list", "{\"user_id\":\"list-1\",\"limit\":2,\"last_id\":\"%s\"}",
                    created [3]);
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    CHECK_INT (data->via.array.size, 2);
    CHECK_STR (h_str (&data->via.array.ptr [0], "session_id"), created [2]);
    kf_reply_destroy (&reply);
    s_expect_error (h_call (client, "conversations.list", "{\"user_id\":\"list-1\",\"last_id\":\"s_nope\"}"),
                    404, "not_found");
    s_expect_error (h_call (client, "conversations.list", "{\"user_id\":\"list-1\",\"limit\":101}"),
                    400, "invalid_param");

    //  Names: given, or made from the first question
    reply = h_call (client, "conversations.rename", "{\"session_id\":\"%s\",\"name\":\"退货咨询\"}", created [0]);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    s_chat_as (client, created [1], "list-1", "怎么申请退货？我买的鞋子尺码不合适，想换成大一号的可以吗");
    reply = h_call (client, "conversations.rename", "{\"session_id\":\"%s\",\"auto_generate\":true,"
                    "\"user_id\":\"list-1\"}", created [1]);
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "name"), "怎么申请退货？我买的鞋子尺码不合适，想换…");
    kf_reply_destroy (&reply);
    s_expect_error (h_call (client, "conversations.rename", "{\"session_id\":\"%s\",\"auto_generate\":true}",
                            created [2]), 409, "conflict");
    s_expect_error (h_call (client, "conversations.rename", "{\"session_id\":\"%s\"}", created [2]),
                    400, "missing_argument");
    s_expect_error (h_call (client, "conversations.rename", "{\"session_id\":\"%s\",\"name\":\"x\","
                            "\"auto_generate\":true}", created [2]), 400, "invalid_param");
    s_expect_error (h_call (client, "conversations.rename", "{\"session_id\":\"%s\",\"name\":\"x\","
                            "\"user_id\":\"intruder\"}", created [2]), 404, "not_found");
    reply = h_call (client, "conversations.list", "{\"user_id\":\"list-1\",\"limit\":100}");
    data = kf_mp_get (reply->result, "data");
    CHECK_STR (h_str (&data->via.array.ptr [data->via.array.size - 1], "name"), "退货咨询");
    kf_reply_destroy (&reply);

    //  Deleted: gone from every method
    reply = h_call (client, "history", "{\"session_id\":\"%s\"}", created [1]);
    int64_t answer = kf_mp_get_int (&kf_mp_get (reply->result, "data")->via.array.ptr [1], "id", 0);
    kf_reply_destroy (&reply);
    reply = h_call (client, "conversations.delete", "{\"session_id\":\"%s\",\"user_id\":\"list-1\"}", created [1]);
    CHECK (reply->ok && kf_mp_get_bool (reply->result, "deleted", false));
    kf_reply_destroy (&reply);
    reply = h_call (client, "conversations.list", "{\"user_id\":\"list-1\",\"limit\":100}");
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 5);
    data = kf_mp_get (reply->result, "data");
    for (uint32_t i = 0; i < data->via.array.size; i++)
        CHECK (strcmp (h_str (&data->via.array.ptr [i], "session_id"), created [1]) != 0);
    kf_reply_destroy (&reply);
    s_expect_error (h_call (client, "history", "{\"session_id\":\"%s\"}", created [1]), 404, "not_found");
    s_expect_error (h_call (client, "chat", "{\"message\":\"你好\",\"session_id\":\"%s\"}", created [1]),
                    404, "not_found");
    s_expect_error (h_call (client, "message.get", "{\"message_id\":%lld}", (long long) answer), 404, "not_found");
    s_expect_error (h_call (client, "feedback", "{\"message_id\":%lld,\"rating\":\"like\"}", (long long) answer),
                    404, "not_found");
    s_expect_error (h_call (client, "conversations.delete", "{\"session_id\":\"%s\"}", created [1]),
                    404, "not_found");
}

//  Pages a session's history backwards with first_id; fills ids oldest first; returns the count
static int
s_page_back (kf_client_t *client, const char *session, int limit, int64_t *ids, int max)
{
    int64_t cursor = 0;
    int64_t pages [64][100];
    int sizes [64], page_count = 0;
    while (page_count < 64) {
        kf_reply_t *reply = cursor
            ? h_call (client, "history", "{\"session_id\":\"%s\",\"limit\":%d,\"first_id\":%lld}",
                      session, limit, (long long) cursor)
            : h_call (client, "history", "{\"session_id\":\"%s\",\"limit\":%d,\"first_id\":null}", session, limit);
        CHECK (reply->ok);
        const msgpack_object *data = kf_mp_get (reply->result, "data");
        CHECK ((int) data->via.array.size <= limit);
        sizes [page_count] = (int) data->via.array.size;
        for (uint32_t i = 0; i < data->via.array.size; i++) {
            pages [page_count][i] = kf_mp_get_int (&data->via.array.ptr [i], "id", 0);
            if (i > 0)
                CHECK (pages [page_count][i] > pages [page_count][i - 1]);      //  Oldest first
        }
        bool has_more = kf_mp_get_bool (reply->result, "has_more", false);
        kf_reply_destroy (&reply);
        if (sizes [page_count] > 0)
            cursor = pages [page_count][0];
        page_count++;
        if (!has_more)
            break;
    }
    int count = 0;
    for (int p = page_count - 1; p >= 0; p--)
        for (int i = 0; i < sizes [p] && count < max; i++)
            ids [count++] = pages [p][i];
    return count;
}

static void
s_test_history_cursor (kf_client_t *client)
{
    kf_reply_t *reply = h_call (client, "session.create", "{\"user_id\":\"page-1\"}");
    char session [32];
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    //  Empty session
    reply = h_call (client, "history", "{\"session_id\":\"%s\",\"first_id\":null}", session);
    CHECK (reply->ok);
    CHECK_INT (kf_mp_get (reply->result, "data")->via.array.size, 0);
    CHECK (!kf_mp_get_bool (reply->result, "has_more", true));
    kf_reply_destroy (&reply);
    const char *questions [] = { "怎么申请退货？", "发票怎么开", "运费多少钱", "你好", "你是谁" };
    for (int i = 0; i < 5; i++)
        s_chat_as (client, session, "page-1", questions [i]);
    //  Every page size, including the exact boundaries 5 and 10: the same 10 messages in order
    int64_t all [20], ids [20];
    CHECK_INT (s_page_back (client, session, 100, all, 20), 10);
    int limits [] = { 1, 3, 4, 5, 10 };
    for (int l = 0; l < 5; l++) {
        CHECK_INT (s_page_back (client, session, limits [l], ids, 20), 10);
        for (int i = 0; i < 10; i++)
            CHECK_INT (ids [i], all [i]);
    }
    reply = h_call (client, "history", "{\"session_id\":\"%s\",\"limit\":10,\"first_id\":null}", session);
    CHECK (!kf_mp_get_bool (reply->result, "has_more", true));
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 10);
    kf_reply_destroy (&reply);
    //  New messages while a client pages back do not disturb the older pages
    reply = h_call (client, "history", "{\"session_id\":\"%s\",\"limit\":4,\"first_id\":null}", session);
    int64_t cursor = kf_mp_get_int (&kf_mp_get (reply->result, "data")->via.array.ptr [0], "id", 0);
    kf_reply_destroy (&reply);
    s_chat_as (client, session, "page-1", "还有别的问题吗");
    reply = h_call (client, "history", "{\"session_id\":\"%s\",\"limit\":4,\"first_id\":%lld}",
                    session, (long long) cursor);
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    CHECK_INT (data->via.array.size, 4);
    CHECK_INT (kf_mp_get_int (&data->via.array.ptr [3], "id", 0), all [5]);
    kf_reply_destroy (&reply);
    //  A cursor that names no message (purged, or another session's) is still a position
    reply = h_call (client, "history", "{\"session_id\":\"%s\",\"limit\":2,\"first_id\":%lld}",
                    session, (long long) all [4] + 1000000);
    CHECK (reply->ok);
    CHECK_INT (kf_mp_get (reply->result, "data")->via.array.size, 2);
    kf_reply_destroy (&reply);
    reply = h_call (client, "history", "{\"session_id\":\"%s\",\"first_id\":%lld}", session, (long long) all [0]);
    CHECK_INT (kf_mp_get (reply->result, "data")->via.array.size, 0);
    CHECK (!kf_mp_get_bool (reply->result, "has_more", true));
    kf_reply_destroy (&reply);
    s_expect_error (h_call (client, "history", "{\"session_id\":\"%s\",\"first_id\":5,\"offset\":0}", session),
                    400, "invalid_param");
    s_expect_error (h_call (client, "history", "{\"session_id\":\"%s\",\"first_id\":-1}", session),
                    400, "invalid_param");
}

static void
s_test_bots (kf_client_t *client)
{
    //  The sample bot's window: a Chinese profile, common questions, switches on
    kf_reply_t *reply = h_call (client, "session.init", "{\"user_id\":\"life-1\",\"channel\":\"wxmini\"}");
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "name"), "小快");
    CHECK (strstr (h_str (reply->result, "welcome"), "您好"));
    CHECK_INT (kf_mp_get (reply->result, "common_questions")->via.array.size, 5);
    CHECK (kf_mp_get_bool (kf_mp_get (reply->result, "switches"), "satisfaction_survey", false));
    kf_reply_destroy (&reply);
    s_expect_error (h_call (client, "session.init", "{\"bot_id\":\"nobody\"}"), 404, "not_found");
    s_expect_error (h_call (client, "session.init", "{\"channel\":\"fax\"}"), 400, "invalid_param");
    reply = h_call (client, "parameters", "{}");
    CHECK (reply->ok);
    CHECK_STR (h_str (&kf_mp_get (reply->result, "data")->via.array.ptr [0], "name"), "order_no");
    kf_reply_destroy (&reply);
    //  A partial update keeps the rest
    reply = h_call (client, "bot.update", "{\"bot_id\":\"default\",\"welcome\":\"欢迎光临！\","
                    "\"switches\":{\"predictive_input\":false}}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "bot.get", "{\"bot_id\":\"default\"}");
    CHECK_STR (h_str (reply->result, "welcome"), "欢迎光临！");
    CHECK_STR (h_str (reply->result, "name"), "小快");
    CHECK (!kf_mp_get_bool (kf_mp_get (reply->result, "switches"), "predictive_input", true));
    CHECK (kf_mp_get_bool (kf_mp_get (reply->result, "switches"), "suggestions", false));
    kf_reply_destroy (&reply);
    //  A new bot with inputs that chat checks
    reply = h_call (client, "bot.update", "{\"bot_id\":\"shop-2\",\"name\":\"二号店\",\"parameters\":["
                    "{\"name\":\"city\",\"label\":\"城市\",\"type\":\"select\",\"required\":true,"
                    "\"options\":[\"北京\",\"上海\"]},{\"name\":\"vip\",\"type\":\"boolean\"}]}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    s_expect_error (h_call (client, "chat", "{\"message\":\"你好\",\"bot_id\":\"shop-2\"}"), 400, "missing_argument");
    s_expect_error (h_call (client, "chat", "{\"message\":\"你好\",\"bot_id\":\"shop-2\",\"inputs\":{\"city\":\"广州\"}}"),
                    400, "invalid_param");
    s_expect_error (h_call (client, "chat", "{\"message\":\"你好\",\"bot_id\":\"shop-2\",\"inputs\":"
                            "{\"city\":\"北京\",\"vip\":\"yes\"}}"), 400, "invalid_param");
    reply = h_call (client, "chat", "{\"message\":\"你好\",\"bot_id\":\"shop-2\",\"inputs\":"
                    "{\"city\":\"北京\",\"vip\":true,\"source\":\"banner\"}}");
    CHECK (reply->ok);
    const char *session = h_str (reply->result, "session_id");
    kf_reply_destroy (&reply);
    //  The session keeps its bot: the check applies to later messages too
    s_expect_error (h_call (client, "chat", "{\"message\":\"在吗\",\"session_id\":\"%s\"}", session),
                    400, "missing_argument");
    //  Definitions are checked when stored
    s_expect_error (h_call (client, "bot.update", "{\"bot_id\":\"shop-2\",\"parameters\":[{\"name\":\"d\","
                            "\"type\":\"date\"}]}"), 400, "invalid_param");
    s_expect_error (h_call (client, "bot.update", "{\"bot_id\":\"shop-2\",\"parameters\":[{\"name\":\"a\","
                            "\"type\":\"text\"},{\"name\":\"a\",\"type\":\"number\"}]}"), 400, "invalid_param");
    s_expect_error (h_call (client, "bot.update", "{\"bot_id\":\"shop-2\",\"parameters\":[{\"name\":\"s\","
                            "\"type\":\"select\"}]}"), 400, "invalid_param");
    s_expect_error (h_call (client, "bot.update", "{\"bot_id\":\"shop-2\",\"switches\":{\"dark_mode\":true}}"),
                    400, "invalid_param");
    s_expect_error (h_call (client, "bot.update", "{\"bot_id\":\"shop-2\",\"name\":\"%s\"}",
                            "一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三"), 413, "too_large");
    s_expect_error (h_call (client, "bot.update", "{\"name\":\"无主\"}"), 400, "missing_argument");
}

static void
s_test_records (kf_client_t *client)
{
    kf_reply_t *reply = h_call (client, "session.create", "{\"user_id\":\"rec-1\",\"channel\":\"wechat\"}");
    char session [32];
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    const char *batch =
        "[{\"record_id\":\"r1\",\"role\":\"user\",\"content\":\"我的快递三天没动了\",\"send_time\":1763700000000,"
        "\"sender_id\":\"rec-1\"},"
        "{\"record_id\":\"r2\",\"role\":\"agent\",\"content\":\"您好，我帮您催一下快递公司\",\"send_time\":1763700060000,"
        "\"sender_id\":\"agent-7\",\"title\":\"人工客服 小李\"},"
        "{\"record_id\":\"r3\",\"role\":\"user\",\"type\":\"image\",\"content\":[\"https://img.example.com/1.jpg\","
        "\"https://img.example.com/2.jpg\"],\"send_time\":1763700120000},"
        "{\"record_id\":\"r4\",\"role\":\"user\",\"type\":\"voice\",\"content\":\"https://voice.example.com/a.amr\","
        "\"send_time\":1763700180000}]";
    reply = h_call (client, "records.save", "{\"session_id\":\"%s\",\"user_id\":\"rec-1\",\"records\":%s}", session, batch);
    CHECK (reply->ok);
    CHECK_INT (kf_mp_get_int (reply->result, "created", 0), 4);
    int64_t first_id = kf_mp_get_int (&kf_mp_get (reply->result, "data")->via.array.ptr [0], "message_id", 0);
    kf_reply_destroy (&reply);
    //  Saving the same records again stores nothing new and reports the same ids
    reply = h_call (client, "records.save", "{\"session_id\":\"%s\",\"records\":%s}", session, batch);
    CHECK_INT (kf_mp_get_int (reply->result, "created", -1), 0);
    CHECK_INT (kf_mp_get_int (reply->result, "duplicates", 0), 4);
    CHECK_INT (kf_mp_get_int (&kf_mp_get (reply->result, "data")->via.array.ptr [0], "message_id", 0), first_id);
    kf_reply_destroy (&reply);
    reply = h_call (client, "history", "{\"session_id\":\"%s\"}", session);
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    CHECK_INT (data->via.array.size, 4);
    CHECK_STR (h_str (&data->via.array.ptr [1], "role"), "agent");
    CHECK_STR (h_str (&data->via.array.ptr [1], "title"), "人工客服 小李");
    CHECK_STR (h_str (&data->via.array.ptr [1], "sender_id"), "agent-7");
    CHECK_INT (kf_mp_get_int (&data->via.array.ptr [1], "created_at", 0), 1763700060000LL);
    CHECK_STR (h_str (&data->via.array.ptr [2], "type"), "image");
    const msgpack_object *images = kf_mp_get (&data->via.array.ptr [2], "content");
    CHECK (images->type == MSGPACK_OBJECT_ARRAY && images->via.array.size == 2);
    CHECK_STR (h_str (&data->via.array.ptr [3], "type"), "voice");
    CHECK_STR (h_str (&data->via.array.ptr [3], "content"), "https://voice.example.com/a.amr");
    kf_reply_destroy (&reply);
    //  A bad record is rejected with its reason; the good ones of the same batch are stored
    reply = h_call (client, "records.save", "{\"session_id\":\"%s\",\"records\":["
                    "{\"record_id\":\"r5\",\"role\":\"bot\",\"content\":\"x\",\"send_time\":1},"
                    "{\"record_id\":\"r6\",\"role\":\"user\",\"type\":\"image\",\"content\":[\"ftp://x\"],\"send_time\":1},"
                    "{\"record_id\":\"r7\",\"role\":\"user\",\"content\":\"没有时间\"},"
                    "{\"record_id\":\"r8\",\"role\":\"user\",\"content\":\"好的，谢谢\",\"send_time\":1763700240000}]}",
                    session);
    CHECK (reply->ok);
    CHECK_INT (kf_mp_get_int (reply->result, "created", 0), 1);
    data = kf_mp_get (reply->result, "data");
    for (int i = 0; i < 3; i++)
        CHECK_STR (h_str (&data->via.array.ptr [i], "status"), "rejected");
    CHECK_STR (h_str (kf_mp_get (&data->via.array.ptr [2], "error"), "name"), "missing_argument");
    kf_reply_destroy (&reply);
    //  A name made from the first question skips images and voice
    reply = h_call (client, "session.create", "{\"user_id\":\"rec-1\"}");
    char pictures [32];
    snprintf (pictures, sizeof pictures, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    reply = h_call (client, "records.save", "{\"session_id\":\"%s\",\"records\":[{\"record_id\":\"p1\","
                    "\"role\":\"user\",\"type\":\"image\",\"content\":[\"https://a/b.png\"],\"send_time\":1},"
                    "{\"record_id\":\"p2\",\"role\":\"user\",\"content\":\"这个颜色有货吗\",\"send_time\":2}]}", pictures);
    kf_reply_destroy (&reply);
    reply = h_call (client, "conversations.rename", "{\"session_id\":\"%s\",\"auto_generate\":true}", pictures);
    CHECK_STR (h_str (reply->result, "name"), "这个颜色有货吗");
    kf_reply_destroy (&reply);
    //  Batch bound, ownership, required list
    char *big = kf_malloc (501 * 80 + 16);
    strcpy (big, "[");
    for (int i = 0; i < 501; i++)
        sprintf (big + strlen (big), "%s{\"record_id\":\"b%d\",\"role\":\"user\",\"content\":\"x\",\"send_time\":1}",
                 i ? "," : "", i);
    strcat (big, "]");
    s_expect_error (h_call (client, "records.save", "{\"session_id\":\"%s\",\"records\":%s}", session, big),
                    413, "too_large");
    free (big);
    s_expect_error (h_call (client, "records.save", "{\"session_id\":\"%s\",\"user_id\":\"intruder\",\"records\":%s}",
                            session, batch), 404, "not_found");
    s_expect_error (h_call (client, "records.save", "{\"session_id\":\"%s\"}", session), 400, "missing_argument");
}

//  Counts lines that parse as JSON objects
static int
s_json_lines (const char *text)
{
    int count = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr (line, '\n');
        size_t len = end ? (size_t) (end - line) : strlen (line);
        if (len) {
            msgpack_sbuffer buffer;
            msgpack_sbuffer_init (&buffer);
            msgpack_packer pk;
            msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
            CHECK_INT (kf_json_to_msgpack (line, len, &pk, NULL, 0), 0);
            CHECK (buffer.size > 0 && (((unsigned char) buffer.data [0] & 0xf0) == 0x80
                                       || (unsigned char) buffer.data [0] == 0xde));
            msgpack_sbuffer_destroy (&buffer);
            count++;
        }
        line += len + (end ? 1 : 0);
    }
    return count;
}

//  The whole life of a conversation, as a chat window and an operator see it
static void
s_test_end_to_end (kf_harness_t *h, kf_client_t *client)
{
    kf_reply_t *reply = h_call (client, "user.login", "{\"user_id\":\"e2e-1\",\"name\":\"李雷\"}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "session.init", "{\"user_id\":\"e2e-1\",\"channel\":\"app\"}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "chat", "{\"message\":\"怎么申请退货？\",\"user_id\":\"e2e-1\",\"channel\":\"app\"}");
    char session [32];
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    int64_t answer = kf_mp_get_int (reply->result, "message_id", 0);
    kf_reply_destroy (&reply);
    s_chat_as (client, session, "e2e-1", "退款多久到账");
    s_chat_as (client, session, "e2e-1", "谢谢");
    reply = h_call (client, "feedback", "{\"message_id\":%lld,\"rating\":\"like\",\"user_id\":\"e2e-1\"}",
                    (long long) answer);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":1,\"satisfaction\":1,"
                    "\"user_id\":\"e2e-1\"}", session);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "conversations.list", "{\"user_id\":\"e2e-1\"}");
    const msgpack_object *first = &kf_mp_get (reply->result, "data")->via.array.ptr [0];
    CHECK_STR (h_str (first, "session_id"), session);
    CHECK_STR (h_str (first, "state"), "closed");
    CHECK_INT (kf_mp_get_int (first, "turn_count", 0), 3);
    kf_reply_destroy (&reply);
    int64_t forward [10], backward [10];
    CHECK_INT (s_page_back (client, session, 4, backward, 10), 6);
    for (int i = 0; i < 6; i++) {
        reply = h_call (client, "history", "{\"session_id\":\"%s\",\"limit\":1,\"offset\":%d}", session, i);
        forward [i] = kf_mp_get_int (&kf_mp_get (reply->result, "data")->via.array.ptr [0], "id", 0);
        kf_reply_destroy (&reply);
        CHECK_INT (forward [i], backward [i]);
    }
    //  Exported for audit: one JSON line per message, per conversation or for the user
    int status;
    const char *by_session [] = { "export", "--session", session, NULL };
    char *out = h_kefuctl_output (h, by_session, &status);
    CHECK_INT (status, 0);
    CHECK_INT (s_json_lines (out), 6);
    CHECK (strstr (out, "\"rating\":\"like\""));
    free (out);
    const char *by_user [] = { "export", "--user", "e2e-1", NULL };
    out = h_kefuctl_output (h, by_user, &status);
    CHECK_INT (status, 0);
    CHECK_INT (s_json_lines (out), 7);
    CHECK (strncmp (out, "{\"user\":{\"user_id\":\"e2e-1\",\"name\":\"李雷\"", 40) == 0);
    free (out);
    const char *sessions [] = { "sessions", "e2e-1", NULL };
    out = h_kefuctl_output (h, sessions, &status);
    CHECK_INT (status, 0);
    CHECK_INT (s_json_lines (out), 1);
    CHECK (strstr (out, session));
    free (out);
}

//  Every method of the conversation lifecycle, given params of the wrong types or nothing at all:
//  a 4xx error each time with a name and a message, and the broker keeps answering
static void
s_test_wrong_types (kf_harness_t *h, kf_client_t *client)
{
    static const char *methods [] = {
        "session.close", "feedback", "user.login", "user.get", "user.logout", "conversations.list",
        "conversations.rename", "conversations.delete", "records.save", "session.init", "bot.get",
        "bot.update", "parameters", NULL
    };
    static const char *params [] = {
        "{}",
        "{\"session_id\":1,\"user_id\":2,\"message_id\":\"x\",\"rating\":5,\"reason\":\"x\","
        "\"records\":\"x\",\"bot_id\":3,\"limit\":\"a\",\"name\":4,\"last_id\":6,\"channel\":7,"
        "\"parameters\":\"x\",\"switches\":[1],\"common_questions\":{},\"auto_generate\":\"yes\"}",
        "{\"session_id\":\"s_nope\",\"user_id\":\"uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu\",\"message_id\":-1,\"bot_id\":\"\",\"limit\":0}",
        NULL
    };
    for (int m = 0; methods [m]; m++)
        for (int p = 0; params [p]; p++) {
            kf_reply_t *reply = h_call (client, methods [m], "%s", params [p]);
            if (reply->ok) {
                //  Only lookups with a default bot may succeed on empty params
                CHECK (strcmp (methods [m], "session.init") == 0 || strcmp (methods [m], "bot.get") == 0
                       || strcmp (methods [m], "parameters") == 0);
            }
            else {
                int code = kf_errc_code (reply->error.errc);
                CHECK (code >= 400 && code < 500);
                CHECK (strlen (reply->error.message) > 0);
            }
            kf_reply_destroy (&reply);
        }
    CHECK_INT (kill (h->broker, 0), 0);
    kf_reply_t *reply = h_call (client, "health", NULL);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
}

static void
s_test_feedback (kf_client_t *client, const char *session)
{
    int64_t answer = s_chat (client, session, "怎么申请退货？");
    kf_reply_t *reply = h_call (client, "feedback", "{\"message_id\":%lld,\"rating\":\"like\",\"user_id\":\"life-1\"}",
                                (long long) answer);
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "rating"), "like");
    kf_reply_destroy (&reply);
    //  Changing one's mind: dislike with a reason replaces the like
    reply = h_call (client, "feedback", "{\"message_id\":%lld,\"rating\":\"dislike\",\"content\":\"没说清楚运费谁出\"}",
                    (long long) answer);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "message.get", "{\"message_id\":%lld}", (long long) answer);
    const msgpack_object *feedback = kf_mp_get (reply->result, "feedback");
    CHECK (feedback && feedback->type == MSGPACK_OBJECT_MAP);
    CHECK_STR (h_str (feedback, "rating"), "dislike");
    CHECK_STR (h_str (feedback, "content"), "没说清楚运费谁出");
    kf_reply_destroy (&reply);
    //  Counted per bot and per knowledge item
    reply = h_call (client, "stats", NULL);
    const msgpack_object *stats = kf_mp_get (reply->result, "feedback");
    const msgpack_object *by_bot = kf_mp_get (stats, "by_bot");
    CHECK_INT (by_bot->via.array.size, 1);
    CHECK_STR (h_str (&by_bot->via.array.ptr [0], "bot_id"), "default");
    CHECK_INT (kf_mp_get_int (&by_bot->via.array.ptr [0], "dislikes", 0), 1);
    const msgpack_object *by_item = kf_mp_get (stats, "by_item");
    CHECK_INT (by_item->via.array.size, 1);
    CHECK_STR (h_str (&by_item->via.array.ptr [0], "external_id"), "faq-001");
    kf_reply_destroy (&reply);
    //  Revoked with null: gone from history
    reply = h_call (client, "feedback", "{\"message_id\":%lld,\"rating\":null}", (long long) answer);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "history", "{\"session_id\":\"%s\"}", session);
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    CHECK (kf_mp_get (&data->via.array.ptr [1], "feedback")->type == MSGPACK_OBJECT_NIL);
    kf_reply_destroy (&reply);
    //  Only answers, only existing ones, only by their user, only known ratings
    s_expect_error (h_call (client, "feedback", "{\"message_id\":%lld,\"rating\":\"like\"}", (long long) answer - 1),
                    400, "invalid_param");
    s_expect_error (h_call (client, "feedback", "{\"message_id\":99999999,\"rating\":\"like\"}"), 404, "not_found");
    s_expect_error (h_call (client, "feedback", "{\"message_id\":%lld,\"rating\":\"like\",\"user_id\":\"intruder\"}",
                            (long long) answer), 404, "not_found");
    s_expect_error (h_call (client, "feedback", "{\"message_id\":%lld,\"rating\":\"love\"}", (long long) answer),
                    400, "invalid_param");
    s_expect_error (h_call (client, "feedback", "{\"message_id\":%lld}", (long long) answer), 400, "missing_argument");
    s_expect_error (h_call (client, "feedback", "{\"message_id\":%lld,\"rating\":\"%s\"}", (long long) answer,
                            "a-rating-much-longer-than-sixteen"), 400, "invalid_param");
    //  The owner check compares whole ids, however long (128 characters of Chinese)
    char long_user [4 * 128 + 1] = "";
    for (int i = 0; i < 128; i++)
        strcat (long_user, "用");
    reply = h_call (client, "chat", "{\"message\":\"你好\",\"user_id\":\"%s\"}", long_user);
    int64_t theirs = kf_mp_get_int (reply->result, "message_id", 0);
    kf_reply_destroy (&reply);
    reply = h_call (client, "feedback", "{\"message_id\":%lld,\"rating\":\"like\",\"user_id\":\"%s\"}",
                    (long long) theirs, long_user);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    long_user [159] = 0;                //  53 characters: a different user who shares the start
    s_expect_error (h_call (client, "feedback", "{\"message_id\":%lld,\"rating\":\"dislike\",\"user_id\":\"%.159s\"}",
                            (long long) theirs, long_user), 404, "not_found");
}

static void
s_test_close (kf_client_t *client, const char *session)
{
    s_expect_error (h_call (client, "session.close", "{\"session_id\":\"%s\"}", session), 400, "missing_argument");
    s_expect_error (h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":2}", session),
                    400, "missing_argument");
    s_expect_error (h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":3}", session),
                    400, "invalid_param");
    s_expect_error (h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":1,\"user_id\":\"intruder\"}",
                            session), 404, "not_found");
    kf_reply_t *reply = h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":1,\"satisfaction\":1}",
                                session);
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "state"), "closed");
    CHECK_INT (kf_mp_get_int (reply->result, "satisfaction", 0), 1);
    kf_reply_destroy (&reply);
    s_expect_error (h_call (client, "chat", "{\"message\":\"还在吗\",\"session_id\":\"%s\"}", session),
                    409, "session_closed");
    s_expect_error (h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":1}", session),
                    409, "session_closed");
    //  Its history stays readable; a new session is one call away
    reply = h_call (client, "history", "{\"session_id\":\"%s\"}", session);
    CHECK (reply->ok && kf_mp_get_int (reply->result, "total", 0) == 2);
    kf_reply_destroy (&reply);
    reply = h_call (client, "chat", "{\"message\":\"你好\",\"user_id\":\"life-1\"}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    //  Transferred to a person, with the reason
    reply = h_call (client, "session.create", "{\"user_id\":\"life-1\"}");
    const char *other = h_str (reply->result, "session_id");
    kf_reply_destroy (&reply);
    reply = h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":2,\"bot2human_reason\":3,"
                    "\"satisfaction\":3}", other);
    CHECK (reply->ok);
    CHECK_INT (kf_mp_get_int (reply->result, "bot2human_reason", 0), 3);
    kf_reply_destroy (&reply);
}

int
main (void)
{
    kf_harness_t h;
    h_init (&h, "lifecycle");
    h_start_broker (&h, 1, NULL);
    h_import_sample (&h);
    kf_client_t *client = h_client (&h);
    kf_reply_t *reply = h_call (client, "session.create", "{\"user_id\":\"life-1\",\"channel\":\"wxmini\"}");
    const char *session = h_str (reply->result, "session_id");
    kf_reply_destroy (&reply);
    s_test_feedback (client, session);
    s_test_close (client, session);
    s_test_profiles (client);
    s_test_conversations (client);
    s_test_history_cursor (client);
    s_test_bots (client);
    s_test_records (client);
    s_test_end_to_end (&h, client);
    s_test_wrong_types (&h, client);
    kf_client_destroy (&client);
    h_cleanup (&h);

    //  Idle sessions close themselves (and stay closed after a restart: it is stored)
    h_init (&h, "idle");
    const char *args [] = { "--idle-close-ms", "300", "--pace-ms", "150", NULL };
    h_start_broker (&h, 1, args);
    client = h_client (&h);
    reply = h_call (client, "chat", "{\"message\":\"你好\"}");
    session = h_str (reply->result, "session_id");
    kf_reply_destroy (&reply);
    h_sleep_ms (1800);
    s_expect_error (h_call (client, "chat", "{\"message\":\"你好\",\"session_id\":\"%s\"}", session),
                    409, "session_closed");
    //  A session whose answer is still streaming when the sweep runs is not closed under it
    reply = h_call (client, "session.create", "{\"user_id\":\"busy-1\"}");
    const char *busy = h_str (reply->result, "session_id");
    kf_reply_destroy (&reply);
    h_sleep_ms (400);                   //  Already idle by the clock when its chat begins
    reply = h_call (client, "chat", "{\"message\":\"你是谁\",\"session_id\":\"%s\",\"stream\":true}", busy);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "conversations.list", "{\"user_id\":\"busy-1\"}");
    CHECK_STR (h_str (&kf_mp_get (reply->result, "data")->via.array.ptr [0], "state"), "open");
    kf_reply_destroy (&reply);
    kf_client_destroy (&client);
    h_cleanup (&h);
    TEST_PASS ("test_lifecycle");
    return 0;
}
