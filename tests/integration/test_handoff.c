/*  test_handoff.c - handing a conversation to people (PROTOCOL.md 13) over real processes.
    Part 1 runs the broker with a scripted worker on the worker socket (this test speaks KFW1), so
    it sees exactly what the broker sends (slots, repeat_count, the bot's handoff thresholds) and
    decides what the worker answers: a handoff with a reason (the escalation card, the events), a
    ticket (form_show), what the hot-answer cache may not answer. Part 2 runs the real worker: the
    customer asks for a person (reason 1), the bot is silent while people have the session (the
    customer's messages stored and published on agent.messages), an agent takes it, writes (history
    shows role agent), resolves, and the bot answers again; the keyword (reason 2) and the reasons
    the worker decides from thresholds (3, 4, 5); escalations.list filters and pages;
    session.close with reason 2; deletion; bad input for every method. Part 3: an idle session
    closes its escalation. */
#include "harness.h"
#include "common/clock.h"
#include "common/frames.h"
#include "common/json_codec.h"
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

//  --- Topic events: read from the SUB, kept until a check asks for them ------------------------

#define S_EVENTS_MAX 128

static struct {
    char topic [96];
    msgpack_unpacked event;
    bool is_used;
} s_events [S_EVENTS_MAX];
static int s_event_count;

static bool
s_event_is (int i, const char *topic, const char *name)
{
    return !s_events [i].is_used && strcmp (s_events [i].topic, topic) == 0
        && kf_mp_str_eq (&s_events [i].event.data, "event", name);
}

//  The next event named `name` on `topic` within `timeout_ms` (NULL when none); others wait.
//  Borrowed until the test ends.
static const msgpack_object *
s_event_wait (h_raw_t *raw, const char *topic, const char *name, int timeout_ms)
{
    for (int i = 0; i < s_event_count; i++)
        if (s_event_is (i, topic, name)) {
            s_events [i].is_used = true;
            return &s_events [i].event.data;
        }
    int64_t deadline = kf_mono_us () + timeout_ms * 1000LL;
    int64_t left;
    while ((left = (deadline - kf_mono_us ()) / 1000) > 0) {
        CHECK (s_event_count < S_EVENTS_MAX);
        int i = s_event_count;
        if (!h_raw_event (raw, (int) left, s_events [i].topic, sizeof s_events [i].topic,
                          &s_events [i].event))
            break;
        s_event_count++;
        if (s_event_is (i, topic, name)) {
            s_events [i].is_used = true;
            return &s_events [i].event.data;
        }
    }
    return NULL;
}

static const msgpack_object *
s_expect_event (h_raw_t *raw, const char *topic, const char *name)
{
    const msgpack_object *event = s_event_wait (raw, topic, name, 5000);
    if (!event)
        fprintf (stderr, "no %s event on %s\n", name, topic);
    CHECK (event);
    return event;
}

static void
s_subscribe (h_raw_t *raw, const char *topic)
{
    zmq_setsockopt (raw->sub, ZMQ_SUBSCRIBE, topic, strlen (topic));
    h_sleep_ms (100);               //  Topic events are not held for subscribers (13.3)
}

//  --- Replies ----------------------------------------------------------------------------------

static void
s_expect_error (kf_reply_t *reply, const char *name)
{
    if (reply->ok || strcmp (kf_errc_name (reply->error.errc), name) != 0)
        fprintf (stderr, "expected %s, got %s (%s)\n", name, reply->ok ? "ok"
                 : kf_errc_name (reply->error.errc), reply->ok ? "" : reply->error.message);
    CHECK (!reply->ok);
    CHECK_STR (kf_errc_name (reply->error.errc), name);
    kf_reply_destroy (&reply);
}

static bool
s_is_nil (const msgpack_object *map, const char *key)
{
    const msgpack_object *value = kf_mp_get (map, key);
    return value && value->type == MSGPACK_OBJECT_NIL;
}

//  --- The database, read and changed behind the broker's back -----------------------------------

static const char *s_db_path;       //  The running broker's database

//  Runs `sql` on the broker's database (a trigger that makes its writes fail, and back)
static void
s_db_exec (const char *sql)
{
    sqlite3 *db;
    CHECK (sqlite3_open (s_db_path, &db) == SQLITE_OK);
    sqlite3_busy_timeout (db, 5000);
    char *message = NULL;
    if (sqlite3_exec (db, sql, NULL, NULL, &message) != SQLITE_OK)
        fprintf (stderr, "%s: %s\n", sql, message);
    CHECK (message == NULL);
    sqlite3_close (db);
}

//  The stored slots of `session` (JSON text) into `out`
static const char *
s_db_slots (const char *session, char *out, size_t size)
{
    sqlite3 *db;
    CHECK (sqlite3_open_v2 (s_db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    sqlite3_busy_timeout (db, 5000);
    sqlite3_stmt *stmt;
    CHECK (sqlite3_prepare_v2 (db, "SELECT slots FROM sessions WHERE id = ?", -1, &stmt, NULL)
           == SQLITE_OK);
    sqlite3_bind_text (stmt, 1, session, -1, SQLITE_STATIC);
    CHECK (sqlite3_step (stmt) == SQLITE_ROW);
    snprintf (out, size, "%s", sqlite3_column_text (stmt, 0));
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    return out;
}

//  --- A scripted worker on the worker socket (KFW1) ---------------------------------------------

typedef struct {
    void *dealer;
} s_worker_t;

static void
s_worker_send (s_worker_t *worker, int count, const char *const *frames, const msgpack_sbuffer *body)
{
    const void *data [5];
    size_t size [5];
    for (int i = 0; i < count; i++) {
        data [i] = frames [i];
        size [i] = strlen (frames [i]);
    }
    if (body) {
        data [count] = body->data;
        size [count] = body->size;
    }
    CHECK_INT (kf_frames_send (worker->dealer, count + (body != NULL), data, size, 0), 0);
}

static void
s_worker_open (s_worker_t *worker, h_raw_t *raw, kf_harness_t *h)
{
    worker->dealer = zmq_socket (raw->ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (worker->dealer, ZMQ_LINGER, &linger, sizeof linger);
    CHECK_INT (zmq_connect (worker->dealer, h->workers), 0);
    msgpack_sbuffer body;
    h_pack_json (&body, "{\"name\":\"scripted\",\"pid\":%d,\"capacity\":8}", (int) getpid ());
    const char *frames [] = { "KFW1", "READY" };
    s_worker_send (worker, 2, frames, &body);
    msgpack_sbuffer_destroy (&body);
    h_wait_workers (h, 1, true);
}

//  The next JOB within `timeout_ms`: its id and body (caller destroys). False when none came.
static bool
s_worker_job (s_worker_t *worker, int timeout_ms, char *job_id, size_t id_size,
              msgpack_unpacked *body)
{
    int64_t deadline = kf_mono_us () + timeout_ms * 1000LL;
    while (true) {
        const char *beat [] = { "KFW1", "HEARTBEAT" };
        s_worker_send (worker, 2, beat, NULL);
        int64_t left = (deadline - kf_mono_us ()) / 1000;
        zmq_pollitem_t item = { worker->dealer, 0, ZMQ_POLLIN, 0 };
        if (left <= 0 || zmq_poll (&item, 1, left) <= 0)
            return false;
        kf_frames_t frames;
        CHECK_INT (kf_frames_recv (&frames, worker->dealer, 0), 0);
        bool is_job = frames.count == 4 && kf_frames_is (&frames, 1, "JOB");
        if (is_job) {
            snprintf (job_id, id_size, "%.*s", (int) kf_frames_size (&frames, 2), kf_frames_data (&frames, 2));
            CHECK (kf_mp_unpack_one (kf_frames_data (&frames, 3), kf_frames_size (&frames, 3), body));
        }
        kf_frames_close (&frames);
        if (is_job)
            return true;
    }
}

static void
s_worker_expect_job (s_worker_t *worker, char *job_id, size_t id_size, msgpack_unpacked *body)
{
    CHECK (s_worker_job (worker, 5000, job_id, id_size, body));
}

//  Sends FINAL {ok: true, result: JSON}
static void
s_worker_final (s_worker_t *worker, const char *job_id, const char *json_format, ...)
{
    va_list args;
    va_start (args, json_format);
    char *json = NULL;
    CHECK (vasprintf (&json, json_format, args) >= 0);
    va_end (args);
    msgpack_sbuffer body;
    h_pack_json (&body, "{\"ok\":true,\"result\":%s}", json);
    free (json);
    const char *frames [] = { "KFW1", "FINAL", job_id };
    s_worker_send (worker, 3, frames, &body);
    msgpack_sbuffer_destroy (&body);
}

//  A plain answer's result fields, for s_worker_final
#define S_PLAIN "\"response_type\":\"text\",\"response_content\":null,\"confidence\":0.9," \
    "\"sources\":[],\"suggestions\":[],\"failed_attempts\":0," \
    "\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0}"

//  --- Part 1: the broker's side, with the scripted worker ---------------------------------------

static void
s_test_thresholds (kf_client_t *client)
{
    //  Defaults until edited; a partial edit keeps the rest
    kf_reply_t *reply = h_call (client, "bot.update", "{\"bot_id\":\"fw\",\"name\":\"脚本\"}");
    CHECK (reply->ok);
    const msgpack_object *handoff = kf_mp_get (reply->result, "handoff");
    CHECK_INT (kf_mp_get_int (handoff, "failed_attempts", -1), 2);
    CHECK (kf_mp_get_double (handoff, "emotion_below", -1) == 0.30);
    CHECK_INT (kf_mp_get_int (handoff, "repeated_question", -1), 3);
    kf_reply_destroy (&reply);
    reply = h_call (client, "bot.update", "{\"bot_id\":\"fw\",\"handoff\":{\"failed_attempts\":4,"
                    "\"repeated_question\":0}}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "bot.update", "{\"bot_id\":\"fw\",\"handoff\":{\"emotion_below\":0.25}}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "bot.get", "{\"bot_id\":\"fw\"}");
    handoff = kf_mp_get (reply->result, "handoff");
    CHECK_INT (kf_mp_get_int (handoff, "failed_attempts", -1), 4);
    CHECK (kf_mp_get_double (handoff, "emotion_below", -1) == 0.25);
    CHECK_INT (kf_mp_get_int (handoff, "repeated_question", -1), 0);
    CHECK_STR (h_str (reply->result, "name"), "脚本");
    kf_reply_destroy (&reply);
    //  Every bad threshold is refused, and nothing of the update is stored
    const char *bad [] = {
        "\"x\"", "[]", "{\"failed_attempts\":101}", "{\"failed_attempts\":-1}",
        "{\"failed_attempts\":2.5}", "{\"failed_attempts\":\"2\"}", "{\"emotion_below\":1.5}",
        "{\"emotion_below\":-0.1}", "{\"emotion_below\":\"low\"}", "{\"repeated_question\":1}",
        "{\"repeated_question\":101}", "{\"max_wait\":3}", NULL
    };
    for (int i = 0; bad [i]; i++)
        s_expect_error (h_call (client, "bot.update", "{\"bot_id\":\"fw\",\"name\":\"改了\","
                                "\"handoff\":%s}", bad [i]), "invalid_param");
    reply = h_call (client, "bot.get", "{\"bot_id\":\"fw\"}");
    CHECK_STR (h_str (reply->result, "name"), "脚本");
    kf_reply_destroy (&reply);
    reply = h_call (client, "bot.update", "{\"bot_id\":\"fw\",\"handoff\":{\"repeated_question\":3,"
                    "\"emotion_below\":0,\"failed_attempts\":null}}");
    CHECK (reply->ok);
    handoff = kf_mp_get (reply->result, "handoff");
    CHECK_INT (kf_mp_get_int (handoff, "failed_attempts", -1), 4);
    CHECK (kf_mp_get_double (handoff, "emotion_below", -1) == 0);
    CHECK_INT (kf_mp_get_int (handoff, "repeated_question", -1), 3);
    kf_reply_destroy (&reply);
}

//  A repeated question: the JOB carries slots and repeat_count; the worker hands over (reason 5);
//  the card, the events, and the bot silent afterwards
static void
s_test_scripted_handoff (h_raw_t *raw, s_worker_t *worker, kf_client_t *client)
{
    kf_reply_t *reply = h_call (client, "user.login", "{\"user_id\":\"fw-user\",\"name\":\"李雷\","
                                "\"mobile\":\"13900001111\",\"email\":\"ll@example.com\"}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "session.create", "{\"user_id\":\"fw-user\",\"bot_id\":\"fw\",\"channel\":\"web\"}");
    char session [64];
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    char job [32];
    msgpack_unpacked body;
    //  First time: empty slots, repeat_count 1, the bot's thresholds
    h_raw_send (raw, "fw-1", "chat", "{\"message\":\"我的快递到哪了\",\"session_id\":\"%s\"}", session);
    s_worker_expect_job (worker, job, sizeof job, &body);
    const msgpack_object *context = kf_mp_get (&body.data, "context");
    CHECK (kf_mp_get (context, "slots")->type == MSGPACK_OBJECT_MAP);
    CHECK_INT (kf_mp_get (context, "slots")->via.map.size, 0);
    CHECK_INT (kf_mp_get_int (context, "repeat_count", -1), 1);
    const msgpack_object *handoff = kf_mp_get (context, "handoff");
    CHECK_INT (kf_mp_get_int (handoff, "failed_attempts", -1), 4);
    CHECK_INT (kf_mp_get_int (handoff, "repeated_question", -1), 3);
    //  The broker scores only messages its answer cache holds (9.5): the worker scores this one
    CHECK (!kf_mp_get (context, "emotion_score"));
    msgpack_unpacked_destroy (&body);
    s_worker_final (worker, job, "{\"reply\":\"请提供订单号\",\"intent\":\"business_query\","
                    "\"intent_confidence\":0.82,\"sub_tasks\":[],\"emotion_score\":0.55,"
                    "\"escalate_to_human\":false,\"handoff_reason\":0,"
                    "\"slots\":{\"awaiting\":\"order_no\",\"entities\":{\"phone\":\"13900001111\"}},"
                    S_PLAIN "}");
    reply = h_raw_reply_for (raw, "fw-1");
    CHECK (reply->ok);
    CHECK (kf_mp_get_double (reply->result, "intent_confidence", 0) == 0.82);
    CHECK (kf_mp_get_double (reply->result, "emotion_score", 0) == 0.55);
    CHECK_INT (kf_mp_get (reply->result, "sub_tasks")->via.array.size, 0);
    CHECK_INT (kf_mp_get_int (reply->result, "handoff_reason", -1), 0);
    CHECK_STR (h_str (reply->result, "handoff_state"), "bot");
    CHECK (s_is_nil (reply->result, "escalation_card"));
    CHECK (s_is_nil (reply->result, "escalation_id"));
    CHECK (s_is_nil (reply->result, "agent_id"));
    CHECK (s_is_nil (reply->result, "ticket"));
    CHECK (!kf_mp_get_bool (reply->result, "to_agent", true));
    kf_reply_destroy (&reply);
    char slots [256];
    CHECK (strstr (s_db_slots (session, slots, sizeof slots), "\"order_no\""));
    //  The same question twice more (written differently): 2, then 3
    for (int round = 2; round <= 3; round++) {
        char id [16];
        snprintf (id, sizeof id, "fw-%d", round);
        h_raw_send (raw, id, "chat", "{\"message\":\"我的快递，到哪了？\",\"session_id\":\"%s\"}", session);
        s_worker_expect_job (worker, job, sizeof job, &body);
        context = kf_mp_get (&body.data, "context");
        CHECK_INT (kf_mp_get_int (context, "repeat_count", -1), round);
        CHECK_STR (h_str (kf_mp_get (kf_mp_get (context, "slots"), "entities"), "phone"), "13900001111");
        CHECK_STR (h_str (kf_mp_get (context, "slots"), "awaiting"), "order_no");
        msgpack_unpacked_destroy (&body);
        if (round == 2) {
            s_worker_final (worker, job, "{\"reply\":\"请提供订单号哦\",\"intent\":\"business_query\","
                            "\"intent_confidence\":0.8,\"sub_tasks\":[],\"emotion_score\":0.5,"
                            "\"escalate_to_human\":false,\"handoff_reason\":0,"
                            "\"slots\":{\"awaiting\":\"order_no\",\"entities\":{\"phone\":\"13900001111\"}},"
                            S_PLAIN "}");
            reply = h_raw_reply_for (raw, id);
            CHECK (reply->ok);
            kf_reply_destroy (&reply);
            //  The same slots again: the row keeps them (not rewritten, not lost)
            CHECK (strstr (s_db_slots (session, slots, sizeof slots), "\"13900001111\""));
            continue;
        }
        s_worker_final (worker, job, "{\"reply\":\"这个问题我帮您转给人工客服\",\"intent\":\"business_query\","
                        "\"intent_confidence\":0.8,\"sub_tasks\":[],\"emotion_score\":0.45,"
                        "\"escalate_to_human\":true,\"handoff_reason\":5,\"slots\":{}," S_PLAIN "}");
    }
    reply = h_raw_reply_for (raw, "fw-3");
    CHECK (reply->ok);
    CHECK_STR (s_db_slots (session, slots, sizeof slots), "{}");
    CHECK_STR (h_str (reply->result, "handoff_state"), "pending");
    CHECK_INT (kf_mp_get_int (reply->result, "handoff_reason", 0), 5);
    const msgpack_object *card = kf_mp_get (reply->result, "escalation_card");
    CHECK (card && card->type == MSGPACK_OBJECT_MAP);
    int64_t escalation = kf_mp_get_int (card, "escalation_id", 0);
    CHECK (escalation > 0);
    CHECK_INT (kf_mp_get_int (reply->result, "escalation_id", 0), escalation);
    CHECK_STR (h_str (card, "session_id"), session);
    CHECK_STR (h_str (card, "bot_id"), "fw");
    CHECK_STR (h_str (card, "channel"), "web");
    CHECK_INT (kf_mp_get_int (card, "reason", 0), 5);
    CHECK_STR (h_str (card, "reason_name"), "repeated_question");
    CHECK_STR (h_str (card, "intent"), "business_query");
    CHECK (kf_mp_get_double (card, "emotion_score", 0) == 0.45);
    CHECK_STR (h_str (card, "status"), "pending");
    CHECK (kf_mp_get_int (card, "created_at", 0) > 1700000000000LL);
    const msgpack_object *user = kf_mp_get (card, "user");
    CHECK_STR (h_str (user, "user_id"), "fw-user");
    CHECK_STR (h_str (user, "name"), "李雷");
    CHECK_STR (h_str (user, "mobile"), "13900001111");
    CHECK_STR (h_str (user, "email"), "ll@example.com");
    const msgpack_object *summary = kf_mp_get (card, "summary");
    CHECK_INT (summary->via.array.size, 6);                 //  The last 3 turns, this one included
    CHECK_STR (h_str (&summary->via.array.ptr [0], "content"), "我的快递到哪了");
    CHECK_STR (h_str (&summary->via.array.ptr [4], "role"), "user");
    CHECK_STR (h_str (&summary->via.array.ptr [4], "content"), "我的快递，到哪了？");
    CHECK_STR (h_str (&summary->via.array.ptr [5], "role"), "assistant");
    CHECK_STR (h_str (&summary->via.array.ptr [5], "content"), "这个问题我帮您转给人工客服");
    //  The desk hears of it
    const msgpack_object *event = s_expect_event (raw, "agent.escalations", "escalation");
    CHECK_INT (kf_mp_get_int (event, "escalation_id", 0), escalation);
    CHECK_STR (h_str (kf_mp_get (event, "user"), "name"), "李雷");
    CHECK_INT (kf_mp_get (event, "summary")->via.array.size, 6);
    kf_reply_destroy (&reply);
    //  People have it now: the next message never reaches the worker
    h_raw_send (raw, "fw-4", "chat", "{\"message\":\"人呢\",\"session_id\":\"%s\"}", session);
    reply = h_raw_reply_for (raw, "fw-4");
    CHECK (reply->ok);
    CHECK (kf_mp_get_bool (reply->result, "to_agent", false));
    CHECK_STR (h_str (reply->result, "reply"), "");
    CHECK_STR (h_str (reply->result, "handoff_state"), "pending");
    CHECK (s_is_nil (reply->result, "intent"));
    event = s_expect_event (raw, "agent.messages", "user_message");
    CHECK_STR (h_str (event, "content"), "人呢");
    CHECK_INT (kf_mp_get_int (event, "message_id", 0), kf_mp_get_int (reply->result, "message_id", -1));
    kf_reply_destroy (&reply);
    CHECK (!s_worker_job (worker, 300, job, sizeof job, &body));
    //  The dialog state was stored: after the agent resolves, the worker gets the slots it sent
    reply = h_call (client, "agent.resolve", "{\"session_id\":\"%s\",\"agent_id\":\"a1\"}", session);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    h_raw_send (raw, "fw-5", "chat", "{\"message\":\"我的快递到哪了\",\"session_id\":\"%s\"}", session);
    s_worker_expect_job (worker, job, sizeof job, &body);
    context = kf_mp_get (&body.data, "context");
    CHECK_INT (kf_mp_get (context, "slots")->via.map.size, 0);
    CHECK_INT (kf_mp_get_int (context, "repeat_count", -1), 1);     //  Counting starts again
    CHECK_INT (kf_mp_get_int (context, "failed_attempts", -1), 0);
    const msgpack_object *turns = kf_mp_get (context, "turns");
    CHECK_STR (h_str (&turns->via.array.ptr [turns->via.array.size - 1], "content"), "人呢");
    msgpack_unpacked_destroy (&body);
    s_worker_final (worker, job, "{\"reply\":\"您好\",\"intent\":\"chitchat\",\"intent_confidence\":0.9,"
                    "\"sub_tasks\":[],\"emotion_score\":0.6,\"escalate_to_human\":false,"
                    "\"handoff_reason\":0,\"slots\":{}," S_PLAIN "}");
    reply = h_raw_reply_for (raw, "fw-5");
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "handoff_state"), "bot");
    kf_reply_destroy (&reply);
    //  A chit-chat answer resets the count: the same message again counts 1
    h_raw_send (raw, "fw-6", "chat", "{\"message\":\"我的快递到哪了\",\"session_id\":\"%s\"}", session);
    s_worker_expect_job (worker, job, sizeof job, &body);
    CHECK_INT (kf_mp_get_int (kf_mp_get (&body.data, "context"), "repeat_count", -1), 1);
    msgpack_unpacked_destroy (&body);
    s_worker_final (worker, job, "{\"reply\":\"好的\",\"intent\":\"business_query\",\"slots\":{}," S_PLAIN "}");
    reply = h_raw_reply_for (raw, "fw-6");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    printf ("handoff: a repeated question handed over (escalation %lld), the bot silent after\n",
            (long long) escalation);
}

//  The worker's result asks for a ticket: the broker creates it and answers with form_show,
//  streamed as one token before done
static void
s_test_ticket (h_raw_t *raw, s_worker_t *worker)
{
    s_subscribe (raw, "tk-stream-0001");
    h_raw_send (raw, "tk-stream-0001", "chat", "{\"message\":\"描述是空调不制冷\",\"bot_id\":\"fw\","
                "\"stream\":true}");
    char job [32];
    msgpack_unpacked body;
    s_worker_expect_job (worker, job, sizeof job, &body);
    msgpack_unpacked_destroy (&body);
    s_worker_final (worker, job, "{\"reply\":\"\",\"intent\":\"ticket\",\"intent_confidence\":0.9,"
                    "\"sub_tasks\":[],\"emotion_score\":0.5,\"escalate_to_human\":false,"
                    "\"handoff_reason\":0,\"slots\":{},\"ticket\":{\"type\":\"报修\",\"fields\":"
                    "{\"address\":\"北京市海淀区中关村大街1号\",\"phone\":\"13800138000\","
                    "\"description\":\"空调不制冷\"}}," S_PLAIN "}");
    kf_reply_t *reply = h_raw_reply_for (raw, "tk-stream-0001");
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "response_type"), "form_show");
    const char *text = h_str (reply->result, "reply");
    CHECK (strlen (text) > 0);
    const msgpack_object *ticket = kf_mp_get (reply->result, "ticket");
    CHECK (ticket && ticket->type == MSGPACK_OBJECT_MAP);
    CHECK (h_str (ticket, "ticket_no") [0] == 'T');
    CHECK_STR (h_str (ticket, "type"), "报修");
    CHECK (kf_mp_get (reply->result, "response_content")->type == MSGPACK_OBJECT_MAP);
    const msgpack_object *token = s_expect_event (raw, "tk-stream-0001", "token");
    CHECK_STR (h_str (token, "content"), text);
    const msgpack_object *done = s_expect_event (raw, "tk-stream-0001", "done");
    CHECK_STR (h_str (done, "response_type"), "form_show");
    CHECK_STR (h_str (kf_mp_get (done, "ticket"), "ticket_no"), h_str (ticket, "ticket_no"));
    kf_reply_destroy (&reply);
}

//  Chats in one session: the first goes to the worker, which answers and offers it to the cache;
//  returns after the reply
static void
s_cache_round (h_raw_t *raw, s_worker_t *worker, const char *id, const char *session,
               const char *message, bool expect_job, const char *slots)
{
    if (*session)
        h_raw_send (raw, id, "chat", "{\"message\":\"%s\",\"session_id\":\"%s\"}", message, session);
    else
        h_raw_send (raw, id, "chat", "{\"message\":\"%s\",\"bot_id\":\"fw\"}", message);
    char job [32];
    msgpack_unpacked body;
    bool has_job = s_worker_job (worker, expect_job ? 5000 : 300, job, sizeof job, &body);
    if (has_job != expect_job)
        fprintf (stderr, "%s: a job %s\n", message, expect_job ? "expected" : "not expected");
    CHECK (has_job == expect_job);
    if (has_job) {
        msgpack_unpacked_destroy (&body);
        s_worker_final (worker, job, "{\"reply\":\"七天无理由退货\",\"intent\":\"knowledge_qa\","
                        "\"intent_confidence\":0.7,\"sub_tasks\":[],\"emotion_score\":0.6,"
                        "\"escalate_to_human\":false,\"handoff_reason\":0,\"slots\":%s,"
                        "\"cache\":{\"question\":\"退货政策\",\"kb_version\":1,\"answers\":"
                        "[{\"labels\":{},\"answer\":\"七天无理由退货\"}]}," S_PLAIN "}", slots);
    }
    kf_reply_t *reply = h_raw_reply_for (raw, id);
    CHECK (reply->ok);
    CHECK (kf_mp_get_bool (reply->result, "cached", false) == !expect_job);
    if (!expect_job) {
        CHECK_INT (kf_mp_get (reply->result, "sub_tasks")->via.array.size, 0);
        CHECK_INT (kf_mp_get_int (reply->result, "handoff_reason", -1), 0);
        CHECK (kf_mp_get_double (reply->result, "intent_confidence", 0) == 0.7);
        CHECK (kf_mp_get_double (reply->result, "emotion_score", -1) >= 0.4);
    }
    kf_reply_destroy (&reply);
}

//  The hot-answer cache does not answer a question repeated as often as the bot's threshold, an
//  upset customer or a dialog waiting for the customer's answer: the worker must see those
static void
s_test_cache_bypass (h_raw_t *raw, s_worker_t *worker, kf_client_t *client)
{
    s_cache_round (raw, worker, "c-1", "", "退货政策", true, "{}");
    s_cache_round (raw, worker, "c-2", "", "退货政策", false, "{}");          //  Cached
    kf_reply_t *reply = h_call (client, "session.create", "{\"bot_id\":\"fw\"}");
    char session [64];
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    //  Bot fw hands over at the third time in a row: the second is still an ordinary question
    s_cache_round (raw, worker, "c-3", session, "退货政策", false, "{}");
    s_cache_round (raw, worker, "c-4", session, "退货政策?", false, "{}");   //  Asked twice
    s_cache_round (raw, worker, "c-4b", session, "退货政策。", true, "{}");  //  The third time
    s_cache_round (raw, worker, "c-5", "", "退货政策！！！", true, "{}");    //  Upset
    reply = h_call (client, "session.create", "{\"bot_id\":\"fw\"}");
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    s_cache_round (raw, worker, "c-6", session, "我要退货", true, "{\"awaiting\":\"order_no\"}");
    s_cache_round (raw, worker, "c-7", session, "退货政策", true, "{}");      //  Dialog open
    s_cache_round (raw, worker, "c-8", session, "退货啊", true, "{}");
    s_cache_round (raw, worker, "c-9", session, "退货政策", false, "{}");     //  Closed again
}

//  A batch that fails to commit takes back the handoff with it: the session is the bot's again
//  (its next message goes to the worker), nothing of it is listed, and the topic events of the
//  lost batch never leave (a customer message agents were told of but that was never stored)
static void
s_test_lost_batch (h_raw_t *raw, s_worker_t *worker, kf_client_t *client)
{
    char session [64], sql [512];
    kf_reply_t *reply = h_call (client, "session.create", "{\"bot_id\":\"fw\"}");
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    //  The escalation row is written, the session's row fails: the batch is lost
    snprintf (sql, sizeof sql, "CREATE TRIGGER test_fail BEFORE UPDATE OF handoff_state ON sessions"
              " WHEN NEW.id = '%s' AND NEW.handoff_state = 'pending'"
              " BEGIN SELECT RAISE (ABORT, 'injected'); END", session);
    s_db_exec (sql);
    s_expect_error (h_call (client, "handoff.request", "{\"session_id\":\"%s\"}", session),
                    "internal");
    s_db_exec ("DROP TRIGGER test_fail");
    CHECK (!s_event_wait (raw, "agent.escalations", "escalation", 300));
    reply = h_call (client, "escalations.list", "{\"session_id\":\"%s\"}", session);
    CHECK_INT (kf_mp_get_int (reply->result, "total", -1), 0);
    kf_reply_destroy (&reply);
    //  The bot still has the session: the message goes to the worker
    char job [32];
    msgpack_unpacked body;
    h_raw_send (raw, "lb-1", "chat", "{\"message\":\"还在吗\",\"session_id\":\"%s\"}", session);
    s_worker_expect_job (worker, job, sizeof job, &body);
    msgpack_unpacked_destroy (&body);
    s_worker_final (worker, job, "{\"reply\":\"在的\",\"intent\":\"chitchat\",\"slots\":{}," S_PLAIN "}");
    reply = h_raw_reply_for (raw, "lb-1");
    CHECK (reply->ok);
    CHECK (!kf_mp_get_bool (reply->result, "to_agent", true));
    CHECK_STR (h_str (reply->result, "handoff_state"), "bot");
    kf_reply_destroy (&reply);
    //  With people: a customer message whose turn cannot be stored is not announced to them
    reply = h_call (client, "handoff.request", "{\"session_id\":\"%s\"}", session);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    s_expect_event (raw, "agent.escalations", "escalation");
    snprintf (sql, sizeof sql, "CREATE TRIGGER test_fail BEFORE INSERT ON turns"
              " WHEN NEW.session_id = '%s' BEGIN SELECT RAISE (ABORT, 'injected'); END", session);
    s_db_exec (sql);
    h_raw_send (raw, "lb-2", "chat", "{\"message\":\"没存上的话\",\"session_id\":\"%s\"}", session);
    reply = h_raw_reply_for (raw, "lb-2");
    CHECK (!reply->ok);
    CHECK_STR (kf_errc_name (reply->error.errc), "internal");
    kf_reply_destroy (&reply);
    s_db_exec ("DROP TRIGGER test_fail");
    CHECK (!s_event_wait (raw, "agent.messages", "user_message", 300));
    h_raw_send (raw, "lb-3", "chat", "{\"message\":\"存上的话\",\"session_id\":\"%s\"}", session);
    reply = h_raw_reply_for (raw, "lb-3");
    CHECK (reply->ok);
    CHECK (kf_mp_get_bool (reply->result, "to_agent", false));
    kf_reply_destroy (&reply);
    const msgpack_object *event = s_expect_event (raw, "agent.messages", "user_message");
    CHECK_STR (h_str (event, "content"), "存上的话");
    reply = h_call (client, "agent.resolve", "{\"session_id\":\"%s\",\"agent_id\":\"a1\"}",
                    session);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    s_expect_event (raw, "agent.escalations", "resolved");
    printf ("handoff: a lost batch takes its handoff and its topic events back\n");
}

//  A streamed chat whose answer cannot be stored ends with an error event, never done: nothing is
//  announced that was not stored (the events the lost batch held are taken back)
static void
s_test_lost_stream (h_raw_t *raw, s_worker_t *worker, kf_client_t *client)
{
    char session [64], sql [512];
    kf_reply_t *reply = h_call (client, "session.create", "{\"bot_id\":\"fw\"}");
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    snprintf (sql, sizeof sql, "CREATE TRIGGER test_fail BEFORE UPDATE ON turns"
              " WHEN NEW.session_id = '%s' AND NEW.status = 'ok'"
              " BEGIN SELECT RAISE (ABORT, 'injected'); END", session);
    s_db_exec (sql);
    s_subscribe (raw, "ls-stream-0001");
    h_raw_send (raw, "ls-stream-0001", "chat", "{\"message\":\"还在吗\",\"session_id\":\"%s\","
                "\"stream\":true}", session);
    char job [32];
    msgpack_unpacked body;
    s_worker_expect_job (worker, job, sizeof job, &body);
    msgpack_unpacked_destroy (&body);
    msgpack_sbuffer event;
    h_pack_json (&event, "{\"event\":\"token\",\"content\":\"在的\"}");
    const char *frames [] = { "KFW1", "PARTIAL", job };
    s_worker_send (worker, 3, frames, &event);
    msgpack_sbuffer_destroy (&event);
    //  The token leaves once the batch holding the turn's rows committed: the answer row is pending
    s_expect_event (raw, "ls-stream-0001", "token");
    s_worker_final (worker, job, "{\"reply\":\"在的\",\"intent\":\"chitchat\",\"slots\":{}," S_PLAIN "}");
    reply = h_raw_reply_for (raw, "ls-stream-0001");
    CHECK (!reply->ok);
    CHECK_STR (kf_errc_name (reply->error.errc), "internal");
    kf_reply_destroy (&reply);
    const msgpack_object *error = s_expect_event (raw, "ls-stream-0001", "error");
    CHECK_STR (h_str (kf_mp_get (error, "error"), "name"), "internal");
    CHECK (!s_event_wait (raw, "ls-stream-0001", "done", 300));
    s_db_exec ("DROP TRIGGER test_fail");
    //  The answer's row, stored pending by the committed batch before, fails: no one waits forever
    const char *status = "";
    for (int tries = 0; tries < 50 && strcmp (status, "error") != 0; tries++) {
        reply = h_call (client, "history", "{\"session_id\":\"%s\"}", session);
        CHECK (reply->ok);
        const msgpack_object *data = kf_mp_get (reply->result, "data");
        CHECK (data && data->type == MSGPACK_OBJECT_ARRAY);
        for (uint32_t i = 0; i < data->via.array.size; i++)
            if (strcmp (h_str (&data->via.array.ptr [i], "role"), "assistant") == 0)
                status = h_str (&data->via.array.ptr [i], "status");
        kf_reply_destroy (&reply);
        if (strcmp (status, "error") != 0)
            h_sleep_ms (20);
    }
    CHECK_STR (status, "error");
    printf ("handoff: a stream whose answer was not stored ends with error, not done\n");
}

//  A worker's token counts cannot overflow the broker's sums: clamped when read, the answer and
//  the history stay readable
static void
s_test_hostile_usage (h_raw_t *raw, s_worker_t *worker, kf_client_t *client)
{
    h_raw_send (raw, "hu-1", "chat", "{\"message\":\"你好\",\"bot_id\":\"fw\"}");
    char job [32];
    msgpack_unpacked body;
    s_worker_expect_job (worker, job, sizeof job, &body);
    msgpack_unpacked_destroy (&body);
    s_worker_final (worker, job, "{\"reply\":\"您好\",\"intent\":\"chitchat\",\"slots\":{},"
                    "\"upstream\":\"unused\",\"usage\":{\"prompt_tokens\":9223372036854775807,"
                    "\"completion_tokens\":1,\"total_tokens\":0}}");
    kf_reply_t *reply = h_raw_reply_for (raw, "hu-1");
    CHECK (reply->ok);
    char session [64];
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    reply = h_call (client, "history", "{\"session_id\":\"%s\"}", session);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    //  A reply of invalid UTF-8 is not stored or returned: the chat fails
    h_raw_send (raw, "hu-2", "chat", "{\"message\":\"你好\",\"bot_id\":\"fw\"}");
    s_worker_expect_job (worker, job, sizeof job, &body);
    msgpack_unpacked_destroy (&body);
    msgpack_sbuffer final;
    msgpack_sbuffer_init (&final);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &final, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_bool (&pk, "ok", true);
    kf_mp_pack_cstr (&pk, "result");
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_cstr (&pk, "reply");
    kf_mp_pack_str (&pk, "\xff\xfe", 2);
    kf_mp_pack_kv_str (&pk, "intent", "chitchat");
    const char *frames [] = { "KFW1", "FINAL", job };
    s_worker_send (worker, 3, frames, &final);
    msgpack_sbuffer_destroy (&final);
    reply = h_raw_reply_for (raw, "hu-2");
    CHECK (!reply->ok);
    CHECK_STR (kf_errc_name (reply->error.errc), "internal");
    kf_reply_destroy (&reply);
    printf ("handoff: a worker's huge token counts are clamped, its invalid text refused\n");
}

static void
s_part_scripted (void)
{
    kf_harness_t h;
    h_init (&h, "handoff-scripted");
    //  Bot fw has an LLM upstream (never called: the worker is this test's), so its jobs
    //  carry the session's recent turns
    char config [320];
    snprintf (config, sizeof config, "%s/kefu.ini", h.dir);
    FILE *file = fopen (config, "w");
    CHECK (file);
    fprintf (file, "[upstream unused]\nkind = openai\nbase_url = http://127.0.0.1:9/v1\n"
                   "model = none\n\n[bot fw]\nupstream = unused\nllm = fallback\n");
    fclose (file);
    const char *args [] = { "--liveness", "60", "--cache-mb", "8", "--config", config, NULL };
    h_start_broker (&h, 0, args);
    kf_client_t *client = h_client (&h);
    s_db_path = h.db;
    h_raw_t raw;
    h_raw_open (&raw, &h);
    s_subscribe (&raw, "agent.");
    s_worker_t worker;
    s_worker_open (&worker, &raw, &h);
    s_test_thresholds (client);
    s_test_scripted_handoff (&raw, &worker, client);
    s_test_ticket (&raw, &worker);
    s_test_cache_bypass (&raw, &worker, client);
    s_test_lost_batch (&raw, &worker, client);
    s_test_lost_stream (&raw, &worker, client);
    s_test_hostile_usage (&raw, &worker, client);
    zmq_close (worker.dealer);
    h_raw_close (&raw);
    kf_client_destroy (&client);
    h_cleanup (&h);
}

//  --- Part 2: the real worker -------------------------------------------------------------------

//  A chat through the client; returns the reply (caller destroys)
static kf_reply_t *
s_chat (kf_client_t *client, const char *session, const char *message)
{
    kf_reply_t *reply = h_call (client, "chat", "{\"message\":\"%s\",\"session_id\":\"%s\"}",
                                message, session);
    if (!reply->ok)
        fprintf (stderr, "chat %s: %s\n", message, reply->error.message);
    CHECK (reply->ok);
    return reply;
}

static void
s_new_session (kf_client_t *client, const char *user, const char *bot, char *session, size_t size)
{
    kf_reply_t *reply = h_call (client, "session.create", "{\"user_id\":\"%s\",\"bot_id\":\"%s\"}",
                                user, bot);
    CHECK (reply->ok);
    snprintf (session, size, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
}

//  The customer asks for a person; an agent takes the session, writes, resolves; the bot is back
static void
s_test_lifecycle (h_raw_t *raw, kf_client_t *client)
{
    kf_reply_t *reply = h_call (client, "user.login", "{\"user_id\":\"hu-1\",\"name\":\"韩梅梅\","
                                "\"photo_url\":\"https://img.example.com/hmm.png\"}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    char session [64], topic [96];
    s_new_session (client, "hu-1", "default", session, sizeof session);
    snprintf (topic, sizeof topic, "session.%s", session);
    s_subscribe (raw, topic);
    reply = s_chat (client, session, "你好");
    CHECK_STR (h_str (reply->result, "handoff_state"), "bot");
    CHECK (strlen (h_str (reply->result, "reply")) > 0);
    kf_reply_destroy (&reply);
    //  Someone else's session is not found; then the customer's own request
    s_expect_error (h_call (client, "handoff.request", "{\"session_id\":\"%s\",\"user_id\":\"hu-2\"}",
                            session), "not_found");
    reply = h_call (client, "handoff.request", "{\"session_id\":\"%s\",\"user_id\":\"hu-1\","
                    "\"reason_text\":\"机器人听不懂，我要找人\"}", session);
    CHECK (reply->ok);
    int64_t escalation = kf_mp_get_int (reply->result, "escalation_id", 0);
    CHECK (escalation > 0);
    CHECK_INT (kf_mp_get_int (reply->result, "reason", 0), 1);
    CHECK_STR (h_str (reply->result, "reason_name"), "user_request");
    CHECK_STR (h_str (reply->result, "reason_text"), "机器人听不懂，我要找人");
    CHECK_STR (h_str (kf_mp_get (reply->result, "user"), "name"), "韩梅梅");
    CHECK_STR (h_str (kf_mp_get (reply->result, "user"), "photo_url"), "https://img.example.com/hmm.png");
    CHECK_INT (kf_mp_get (reply->result, "summary")->via.array.size, 2);
    CHECK_STR (h_str (reply->result, "status"), "pending");
    kf_reply_destroy (&reply);
    const msgpack_object *event = s_expect_event (raw, "agent.escalations", "escalation");
    CHECK_INT (kf_mp_get_int (event, "escalation_id", 0), escalation);
    event = s_expect_event (raw, topic, "handoff");
    CHECK_STR (h_str (event, "state"), "pending");
    s_expect_error (h_call (client, "handoff.request", "{\"session_id\":\"%s\"}", session), "conflict");
    //  The bot is silent: the message is stored and goes to the agents
    reply = s_chat (client, session, "怎么申请退货？");
    CHECK (kf_mp_get_bool (reply->result, "to_agent", false));
    CHECK_STR (h_str (reply->result, "reply"), "");
    CHECK_STR (h_str (reply->result, "handoff_state"), "pending");
    CHECK_INT (kf_mp_get_int (reply->result, "escalation_id", 0), escalation);
    CHECK (s_is_nil (reply->result, "agent_id"));
    int64_t user_message = kf_mp_get_int (reply->result, "message_id", 0);
    kf_reply_destroy (&reply);
    event = s_expect_event (raw, "agent.messages", "user_message");
    CHECK_STR (h_str (event, "session_id"), session);
    CHECK_STR (h_str (event, "content"), "怎么申请退货？");
    CHECK_INT (kf_mp_get_int (event, "message_id", 0), user_message);
    CHECK_INT (kf_mp_get_int (event, "escalation_id", 0), escalation);
    CHECK (s_is_nil (event, "agent_id"));
    //  Streamed: meta and done, no token
    s_subscribe (raw, "held-stream-0001");
    h_raw_send (raw, "held-stream-0001", "chat", "{\"message\":\"在吗\",\"session_id\":\"%s\","
                "\"stream\":true}", session);
    reply = h_raw_reply_for (raw, "held-stream-0001");
    CHECK (reply->ok);
    CHECK_INT (kf_mp_get_int (reply->result, "last_seq", -1), 1);
    const msgpack_object *meta = s_expect_event (raw, "held-stream-0001", "meta");
    CHECK_INT (kf_mp_get_int (meta, "seq", -1), 0);
    CHECK (kf_mp_get_bool (meta, "to_agent", false));
    CHECK_STR (h_str (meta, "handoff_state"), "pending");
    const msgpack_object *done = s_expect_event (raw, "held-stream-0001", "done");
    CHECK_INT (kf_mp_get_int (done, "seq", -1), 1);
    CHECK (kf_mp_get_bool (done, "to_agent", false));
    CHECK (!s_event_wait (raw, "held-stream-0001", "token", 100));
    kf_reply_destroy (&reply);
    s_expect_event (raw, "agent.messages", "user_message");
    //  Only an assigned agent writes
    s_expect_error (h_call (client, "agent.reply", "{\"session_id\":\"%s\",\"agent_id\":\"agent-7\","
                            "\"content\":\"您好\"}", session), "conflict");
    reply = h_call (client, "agent.assign", "{\"escalation_id\":%lld,\"agent_id\":\"agent-7\"}",
                    (long long) escalation);
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "status"), "assigned");
    CHECK_STR (h_str (reply->result, "agent_id"), "agent-7");
    CHECK (kf_mp_get_int (reply->result, "assigned_at", 0) > 0);
    CHECK_STR (h_str (reply->result, "session_id"), session);
    kf_reply_destroy (&reply);
    event = s_expect_event (raw, topic, "handoff");
    CHECK_STR (h_str (event, "state"), "assigned");
    CHECK_STR (h_str (event, "agent_id"), "agent-7");
    event = s_expect_event (raw, "agent.escalations", "assigned");
    CHECK_STR (h_str (event, "agent_id"), "agent-7");
    s_expect_error (h_call (client, "agent.reply", "{\"session_id\":\"%s\",\"agent_id\":\"agent-8\","
                            "\"content\":\"您好\"}", session), "conflict");
    reply = h_call (client, "agent.reply", "{\"session_id\":\"%s\",\"agent_id\":\"agent-7\","
                    "\"content\":\"您好，我是人工客服小李，退货请在订单页申请售后。\"}", session);
    CHECK (reply->ok);
    int64_t agent_message = kf_mp_get_int (reply->result, "message_id", 0);
    CHECK (agent_message > user_message);
    kf_reply_destroy (&reply);
    event = s_expect_event (raw, topic, "agent_message");
    CHECK_INT (kf_mp_get_int (event, "message_id", 0), agent_message);
    CHECK_STR (h_str (event, "agent_id"), "agent-7");
    CHECK_STR (h_str (event, "content"), "您好，我是人工客服小李，退货请在订单页申请售后。");
    //  A rich agent message is checked like a knowledge answer
    s_expect_error (h_call (client, "agent.reply", "{\"session_id\":\"%s\",\"agent_id\":\"agent-7\","
                            "\"content\":\"看图\",\"response_type\":\"image_text\"}", session),
                    "invalid_param");
    //  History and message.get show the agent's turn
    reply = h_call (client, "history", "{\"session_id\":\"%s\",\"limit\":100}", session);
    CHECK (reply->ok);
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    const msgpack_object *last = &data->via.array.ptr [data->via.array.size - 1];
    CHECK_STR (h_str (last, "role"), "agent");
    CHECK_STR (h_str (last, "sender_id"), "agent-7");
    CHECK_STR (h_str (&data->via.array.ptr [data->via.array.size - 2], "role"), "user");
    CHECK_STR (h_str (&data->via.array.ptr [data->via.array.size - 2], "content"), "在吗");
    kf_reply_destroy (&reply);
    reply = h_call (client, "message.get", "{\"message_id\":%lld}", (long long) agent_message);
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "role"), "agent");
    kf_reply_destroy (&reply);
    //  While assigned, the customer's messages name the agent
    reply = s_chat (client, session, "好的谢谢");
    CHECK_STR (h_str (reply->result, "agent_id"), "agent-7");
    CHECK_STR (h_str (reply->result, "handoff_state"), "assigned");
    kf_reply_destroy (&reply);
    event = s_expect_event (raw, "agent.messages", "user_message");
    CHECK_STR (h_str (event, "agent_id"), "agent-7");
    //  Another agent takes it over; only the one assigned resolves
    reply = h_call (client, "agent.assign", "{\"session_id\":\"%s\",\"agent_id\":\"agent-9\"}", session);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    event = s_expect_event (raw, "agent.escalations", "assigned");
    CHECK_STR (h_str (event, "previous_agent_id"), "agent-7");
    s_expect_error (h_call (client, "agent.resolve", "{\"session_id\":\"%s\",\"agent_id\":\"agent-7\"}",
                            session), "conflict");
    reply = h_call (client, "agent.resolve", "{\"session_id\":\"%s\",\"agent_id\":\"agent-9\","
                    "\"note\":\"已指导退货\"}", session);
    CHECK (reply->ok);
    CHECK_STR (h_str (reply->result, "status"), "resolved");
    CHECK_STR (h_str (reply->result, "note"), "已指导退货");
    CHECK (kf_mp_get_int (reply->result, "resolved_at", 0) > 0);
    kf_reply_destroy (&reply);
    event = s_expect_event (raw, topic, "handoff");
    CHECK_STR (h_str (event, "state"), "assigned");
    event = s_expect_event (raw, topic, "handoff");
    CHECK_STR (h_str (event, "state"), "resolved");
    s_expect_event (raw, "agent.escalations", "resolved");
    s_expect_error (h_call (client, "agent.resolve", "{\"session_id\":\"%s\",\"agent_id\":\"agent-9\"}",
                            session), "conflict");
    //  The bot answers again
    reply = s_chat (client, session, "你好");
    CHECK (!kf_mp_get_bool (reply->result, "to_agent", true));
    CHECK_STR (h_str (reply->result, "handoff_state"), "bot");
    CHECK (strlen (h_str (reply->result, "reply")) > 0);
    CHECK (s_is_nil (reply->result, "escalation_id"));
    kf_reply_destroy (&reply);
    //  Closing with reason 2 records why the bot handed over: the escalation's reason
    reply = h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":2}", session);
    CHECK (reply->ok);
    CHECK_INT (kf_mp_get_int (reply->result, "bot2human_reason", 0), 1);
    kf_reply_destroy (&reply);
    printf ("handoff: requested, assigned, answered by an agent, resolved, the bot back\n");
}

//  The keyword: the worker hands over (reason 2); closing the session closes the escalation
static void
s_test_keyword (h_raw_t *raw, kf_client_t *client)
{
    kf_reply_t *reply = h_call (client, "chat", "{\"message\":\"我要转人工\",\"user_id\":\"kw-1\"}");
    CHECK (reply->ok);
    CHECK (kf_mp_get_bool (reply->result, "escalate_to_human", false));
    CHECK_INT (kf_mp_get_int (reply->result, "handoff_reason", 0), 2);
    CHECK_STR (h_str (reply->result, "handoff_state"), "pending");
    const msgpack_object *card = kf_mp_get (reply->result, "escalation_card");
    CHECK_STR (h_str (card, "reason_name"), "keyword");
    CHECK_STR (h_str (card, "intent"), "transfer_to_human");
    int64_t escalation = kf_mp_get_int (card, "escalation_id", 0);
    char session [64];
    snprintf (session, sizeof session, "%s", h_str (reply->result, "session_id"));
    kf_reply_destroy (&reply);
    s_expect_event (raw, "agent.escalations", "escalation");
    reply = s_chat (client, session, "怎么申请退货？");
    CHECK (kf_mp_get_bool (reply->result, "to_agent", false));
    kf_reply_destroy (&reply);
    reply = h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":1,\"satisfaction\":2}", session);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    const msgpack_object *event = s_expect_event (raw, "agent.escalations", "closed");
    CHECK_INT (kf_mp_get_int (event, "escalation_id", 0), escalation);
    reply = h_call (client, "escalations.list", "{\"session_id\":\"%s\"}", session);
    CHECK (reply->ok);
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 1);
    CHECK_STR (h_str (&kf_mp_get (reply->result, "data")->via.array.ptr [0], "status"), "closed");
    kf_reply_destroy (&reply);
    s_expect_error (h_call (client, "agent.assign", "{\"escalation_id\":%lld,\"agent_id\":\"a\"}",
                            (long long) escalation), "conflict");
}

//  Set to 1 once the worker decides reasons 3, 4 and 5 from context.handoff (pipeline, issue 5)
#ifndef S_WORKER_DECIDES_REASONS
#define S_WORKER_DECIDES_REASONS 1
#endif

//  Sends `message` up to `times` times in a new session of `bot`; returns the turn that handed
//  over (1-based) and its reason, 0 when none did
static int
s_until_handoff (kf_client_t *client, const char *bot, const char *message, int times, int *reason)
{
    char session [64];
    s_new_session (client, "th-1", bot, session, sizeof session);
    for (int turn = 1; turn <= times; turn++) {
        kf_reply_t *reply = s_chat (client, session, message);
        bool is_handed = kf_mp_get (reply->result, "escalation_card")->type == MSGPACK_OBJECT_MAP;
        *reason = (int) kf_mp_get_int (reply->result, "handoff_reason", 0);
        kf_reply_destroy (&reply);
        if (is_handed)
            return turn;
    }
    return 0;
}

//  The reasons the worker decides from the bot's thresholds
static void
s_test_worker_reasons (kf_client_t *client)
{
    kf_reply_t *reply = h_call (client, "bot.update", "{\"bot_id\":\"th\",\"name\":\"阈值\","
                                "\"handoff\":{\"failed_attempts\":2,\"repeated_question\":0}}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "bot.update", "{\"bot_id\":\"rq\",\"name\":\"重复\","
                    "\"handoff\":{\"failed_attempts\":0,\"repeated_question\":3}}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    int reason = 0, turn;
    if (!S_WORKER_DECIDES_REASONS) {
        printf ("handoff: reasons 3, 4, 5 NOT CHECKED (the worker does not decide them yet)\n");
        return;
    }
    //  3: no answer twice (the bot "th" has no knowledge base of its own)
    turn = s_until_handoff (client, "th", "积分能兑换什么礼品", 3, &reason);
    CHECK_INT (turn, 2);
    CHECK_INT (reason, 3);
    //  4: an upset customer
    turn = s_until_handoff (client, "default", "你们这什么垃圾服务，骗子！我要投诉你们！！！", 1, &reason);
    CHECK_INT (turn, 1);
    CHECK_INT (reason, 4);
    //  5: the same question a third time (failed attempts disabled for "rq")
    turn = s_until_handoff (client, "rq", "积分能兑换什么礼品", 4, &reason);
    CHECK_INT (turn, 3);
    CHECK_INT (reason, 5);
    //  0 disables: the bot "th" with failed_attempts 0 never hands over for that
    reply = h_call (client, "bot.update", "{\"bot_id\":\"th\",\"handoff\":{\"failed_attempts\":0}}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    CHECK_INT (s_until_handoff (client, "th", "积分能兑换什么礼品", 2, &reason), 0);
    printf ("handoff: reasons 3, 4 and 5 fire from the bot's thresholds\n");
}

//  escalations.list: filters, newest first, pages
static void
s_test_list (kf_client_t *client)
{
    char sessions [3][64];
    for (int i = 0; i < 3; i++) {
        s_new_session (client, "pg-user", "pg", sessions [i], sizeof sessions [i]);
        kf_reply_t *reply = h_call (client, "handoff.request", "{\"session_id\":\"%s\"}", sessions [i]);
        CHECK (reply->ok);
        kf_reply_destroy (&reply);
    }
    kf_reply_t *reply = h_call (client, "agent.assign", "{\"session_id\":\"%s\",\"agent_id\":\"pg-agent\"}",
                                sessions [1]);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "escalations.list", "{\"bot_id\":\"pg\",\"page_size\":2}");
    CHECK (reply->ok);
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 3);
    CHECK (kf_mp_get_bool (reply->result, "has_more", false));
    const msgpack_object *data = kf_mp_get (reply->result, "data");
    CHECK_INT (data->via.array.size, 2);
    CHECK_STR (h_str (&data->via.array.ptr [0], "session_id"), sessions [2]);      //  Newest first
    CHECK_STR (h_str (&data->via.array.ptr [1], "session_id"), sessions [1]);
    CHECK_STR (h_str (&data->via.array.ptr [1], "status"), "assigned");
    CHECK_STR (h_str (&data->via.array.ptr [1], "agent_id"), "pg-agent");
    CHECK (s_is_nil (&data->via.array.ptr [0], "agent_id"));
    CHECK (s_is_nil (&data->via.array.ptr [0], "resolved_at"));
    kf_reply_destroy (&reply);
    reply = h_call (client, "escalations.list", "{\"bot_id\":\"pg\",\"page_size\":2,\"page\":2}");
    data = kf_mp_get (reply->result, "data");
    CHECK_INT (data->via.array.size, 1);
    CHECK_STR (h_str (&data->via.array.ptr [0], "session_id"), sessions [0]);
    CHECK (!kf_mp_get_bool (reply->result, "has_more", true));
    kf_reply_destroy (&reply);
    reply = h_call (client, "escalations.list", "{\"bot_id\":\"pg\",\"status\":\"pending\"}");
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 2);
    kf_reply_destroy (&reply);
    reply = h_call (client, "escalations.list", "{\"agent_id\":\"pg-agent\"}");
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 1);
    kf_reply_destroy (&reply);
    reply = h_call (client, "escalations.list", "{\"bot_id\":\"pg\",\"page\":9}");
    CHECK_INT (kf_mp_get (reply->result, "data")->via.array.size, 0);
    kf_reply_destroy (&reply);
    //  A deleted conversation's escalation closes and leaves the list
    reply = h_call (client, "conversations.delete", "{\"session_id\":\"%s\"}", sessions [0]);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "escalations.list", "{\"bot_id\":\"pg\"}");
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 2);
    kf_reply_destroy (&reply);
    //  Closing with reason 2 and a code of the caller's keeps that code
    reply = h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":2,\"bot2human_reason\":4}",
                    sessions [2]);
    CHECK (reply->ok);
    CHECK_INT (kf_mp_get_int (reply->result, "bot2human_reason", 0), 4);
    kf_reply_destroy (&reply);
    reply = h_call (client, "escalations.list", "{\"bot_id\":\"pg\",\"status\":\"closed\"}");
    CHECK_INT (kf_mp_get_int (reply->result, "total", 0), 1);
    kf_reply_destroy (&reply);
}

static void
s_test_bad_input (h_raw_t *raw, kf_client_t *client)
{
    char session [64], closed [64];
    s_new_session (client, "bad-1", "default", session, sizeof session);
    s_new_session (client, "bad-1", "default", closed, sizeof closed);
    kf_reply_t *reply = h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":1}", closed);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    //  handoff.request
    s_expect_error (h_call (client, "handoff.request", "{}"), "missing_argument");
    s_expect_error (h_call (client, "handoff.request", "{\"session_id\":7}"), "invalid_param");
    s_expect_error (h_call (client, "handoff.request", "{\"session_id\":\"s_nope\"}"), "not_found");
    s_expect_error (h_call (client, "handoff.request", "{\"session_id\":\"%s\"}", closed), "session_closed");
    s_expect_error (h_call (client, "handoff.request", "{\"session_id\":\"%s\",\"reason_text\":[]}",
                            session), "invalid_param");
    //  agent.assign
    s_expect_error (h_call (client, "agent.assign", "{\"session_id\":\"%s\"}", session), "missing_argument");
    s_expect_error (h_call (client, "agent.assign", "{\"agent_id\":\"a\"}"), "missing_argument");
    s_expect_error (h_call (client, "agent.assign", "{\"agent_id\":\"\",\"session_id\":\"%s\"}", session),
                    "missing_argument");
    s_expect_error (h_call (client, "agent.assign", "{\"agent_id\":\"%065d\",\"session_id\":\"%s\"}", 0,
                            session), "too_large");
    s_expect_error (h_call (client, "agent.assign", "{\"agent_id\":\"a\",\"escalation_id\":0}"),
                    "invalid_param");
    s_expect_error (h_call (client, "agent.assign", "{\"agent_id\":\"a\",\"escalation_id\":\"1\"}"),
                    "invalid_param");
    s_expect_error (h_call (client, "agent.assign", "{\"agent_id\":\"a\",\"escalation_id\":999999}"),
                    "not_found");
    s_expect_error (h_call (client, "agent.assign", "{\"agent_id\":\"a\",\"session_id\":\"%s\"}", session),
                    "conflict");             //  With the bot
    s_expect_error (h_call (client, "agent.assign", "{\"agent_id\":\"a\",\"session_id\":\"s_nope\"}"),
                    "not_found");
    //  agent.reply
    s_expect_error (h_call (client, "agent.reply", "{\"session_id\":\"%s\",\"agent_id\":\"a\"}", session),
                    "missing_argument");
    s_expect_error (h_call (client, "agent.reply", "{\"session_id\":\"%s\",\"agent_id\":\"a\","
                            "\"content\":\"\"}", session), "missing_argument");
    s_expect_error (h_call (client, "agent.reply", "{\"session_id\":\"%s\",\"agent_id\":\"a\","
                            "\"content\":\"hi\",\"response_type\":\"video\"}", session), "invalid_param");
    s_expect_error (h_call (client, "agent.reply", "{\"session_id\":\"%s\",\"agent_id\":\"a\","
                            "\"content\":\"hi\"}", session), "conflict");
    s_expect_error (h_call (client, "agent.reply", "{\"session_id\":\"%s\",\"agent_id\":\"a\","
                            "\"content\":\"hi\"}", closed), "session_closed");
    s_expect_error (h_call (client, "agent.reply", "{\"agent_id\":\"a\",\"content\":\"hi\"}"),
                    "missing_argument");
    //  agent.resolve
    s_expect_error (h_call (client, "agent.resolve", "{\"session_id\":\"%s\"}", session), "missing_argument");
    s_expect_error (h_call (client, "agent.resolve", "{\"session_id\":\"%s\",\"agent_id\":\"a\"}", session),
                    "conflict");
    s_expect_error (h_call (client, "agent.resolve", "{\"session_id\":\"%s\",\"agent_id\":\"a\","
                            "\"note\":5}", session), "invalid_param");
    //  escalations.list
    s_expect_error (h_call (client, "escalations.list", "{\"status\":\"open\"}"), "invalid_param");
    s_expect_error (h_call (client, "escalations.list", "{\"page_size\":101}"), "invalid_param");
    s_expect_error (h_call (client, "escalations.list", "{\"page\":0}"), "invalid_param");
    s_expect_error (h_call (client, "escalations.list", "{\"bot_id\":1}"), "invalid_param");
    //  session.close with reason 2 needs a code when the session was never handed over
    s_expect_error (h_call (client, "session.close", "{\"session_id\":\"%s\",\"reason\":2}", session),
                    "missing_argument");
    //  Streamed chats may not take the handoff's topics as ids
    const char *ids [] = { "agent.escalations", "session.x", "agent.", NULL };
    for (int i = 0; ids [i]; i++) {
        h_raw_send (raw, ids [i], "chat", "{\"message\":\"hi\",\"stream\":true}");
        s_expect_error (h_raw_reply_for (raw, ids [i]), "invalid_param");
    }
    h_raw_send (raw, "agent.plain", "chat", "{\"message\":\"你好\"}");    //  Not streamed: fine
    reply = h_raw_reply_for (raw, "agent.plain");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
}

//  History total of `session`, and stats.handoff.agent_replies
static void
s_counts (kf_client_t *client, const char *session, int64_t *turns, int64_t *replies)
{
    kf_reply_t *reply = h_call (client, "history", "{\"session_id\":\"%s\"}", session);
    CHECK (reply->ok);
    *turns = kf_mp_get_int (reply->result, "total", -1);
    kf_reply_destroy (&reply);
    reply = h_call (client, "stats", "{}");
    CHECK (reply->ok);
    *replies = kf_mp_get_int (kf_mp_get (reply->result, "handoff"), "agent_replies", -1);
    kf_reply_destroy (&reply);
}

//  Limits on what people write, on a session a person holds: each refused with its code, and
//  nothing stored, published or counted
static void
s_test_limits (h_raw_t *raw, kf_client_t *client)
{
    char session [64], other [64];
    s_new_session (client, "lim-1", "default", session, sizeof session);
    s_new_session (client, "lim-2", "default", other, sizeof other);
    kf_reply_t *reply = h_call (client, "handoff.request", "{\"session_id\":\"%s\"}", session);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    reply = h_call (client, "agent.assign", "{\"agent_id\":\"a\",\"session_id\":\"%s\"}", session);
    CHECK (reply->ok);
    int64_t escalation = kf_mp_get_int (reply->result, "escalation_id", -1);
    kf_reply_destroy (&reply);
    reply = h_call (client, "handoff.request", "{\"session_id\":\"%s\"}", other);
    CHECK (reply->ok);
    int64_t others = kf_mp_get_int (reply->result, "escalation_id", -1);
    kf_reply_destroy (&reply);
    CHECK (escalation > 0 && others > 0 && others != escalation);
    //  Everything published so far read; then the session's own topic watched too
    char topic [64];
    msgpack_unpacked event;
    while (h_raw_event (raw, 300, topic, sizeof topic, &event))
        msgpack_unpacked_destroy (&event);
    char session_topic [80];
    snprintf (session_topic, sizeof session_topic, "session.%s", session);
    s_subscribe (raw, session_topic);
    int64_t turns, replies;
    s_counts (client, session, &turns, &replies);
    char *long_text = malloc (4 * 4001 + 1);
    CHECK (long_text);
    for (int i = 0; i < 4001; i++)
        memcpy (long_text + 3 * i, "字", 3);
    long_text [3 * 4001] = 0;
    s_expect_error (h_call (client, "agent.reply", "{\"session_id\":\"%s\",\"agent_id\":\"a\","
                            "\"content\":\"%s\"}", session, long_text), "too_large");
    long_text [3 * 501] = 0;
    s_expect_error (h_call (client, "agent.resolve", "{\"session_id\":\"%s\",\"agent_id\":\"a\","
                            "\"note\":\"%s\"}", session, long_text), "too_large");
    s_expect_error (h_call (client, "handoff.request", "{\"session_id\":\"%s\",\"reason_text\":\"%s\"}",
                            other, long_text), "too_large");
    free (long_text);
    //  Bytes that are not UTF-8 (JSON cannot say them): packed by hand
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &params, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    kf_mp_pack_kv_str (&pk, "session_id", session);
    kf_mp_pack_kv_str (&pk, "agent_id", "a");
    kf_mp_pack_cstr (&pk, "content");
    kf_mp_pack_str (&pk, "\xff\xfe", 2);
    CHECK_INT (kf_client_call (client, "agent.reply", params.data, params.size, &reply), 0);
    s_expect_error (reply, "invalid_utf8");
    msgpack_sbuffer_destroy (&params);
    //  Another session's escalation
    s_expect_error (h_call (client, "agent.assign", "{\"agent_id\":\"a\",\"session_id\":\"%s\","
                            "\"escalation_id\":%lld}", session, (long long) others), "invalid_param");
    int64_t turns_after, replies_after;
    s_counts (client, session, &turns_after, &replies_after);
    CHECK_INT (turns_after, turns);
    CHECK_INT (replies_after, replies);
    //  No event on the session's topic or the agents' topics for any of them
    bool has_event = h_raw_event (raw, 300, topic, sizeof topic, &event);
    if (has_event) {
        fprintf (stderr, "unexpected event on %s\n", topic);
        msgpack_unpacked_destroy (&event);
    }
    CHECK (!has_event);
    //  The session still works: a good reply goes through
    reply = h_call (client, "agent.reply", "{\"session_id\":\"%s\",\"agent_id\":\"a\","
                    "\"content\":\"您好\"}", session);
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    s_counts (client, session, &turns_after, &replies_after);
    CHECK_INT (turns_after, turns + 1);
    CHECK_INT (replies_after, replies + 1);
}

static void
s_part_real (void)
{
    kf_harness_t h;
    h_init (&h, "handoff-real");
    h_start_broker (&h, 1, NULL);
    kf_client_t *client = h_client (&h);
    h_raw_t raw;
    h_raw_open (&raw, &h);
    s_subscribe (&raw, "agent.");
    s_test_lifecycle (&raw, client);
    s_test_keyword (&raw, client);
    s_test_list (client);
    s_test_bad_input (&raw, client);
    s_test_limits (&raw, client);
    s_test_worker_reasons (client);
    h_raw_close (&raw);
    kf_client_destroy (&client);
    h_cleanup (&h);
}

//  --- Part 3: an idle session closes its escalation ----------------------------------------------

static void
s_part_idle (void)
{
    kf_harness_t h;
    h_init (&h, "handoff-idle");
    const char *args [] = { "--idle-close-ms", "1000", NULL };
    h_start_broker (&h, 0, args);
    kf_client_t *client = h_client (&h);
    h_raw_t raw;
    h_raw_open (&raw, &h);
    s_subscribe (&raw, "agent.escalations");
    char session [64];
    s_new_session (client, "idle-1", "default", session, sizeof session);
    kf_reply_t *reply = h_call (client, "handoff.request", "{\"session_id\":\"%s\"}", session);
    CHECK (reply->ok);
    int64_t escalation = kf_mp_get_int (reply->result, "escalation_id", 0);
    kf_reply_destroy (&reply);
    const msgpack_object *event = s_event_wait (&raw, "agent.escalations", "closed", 8000);
    CHECK (event);
    CHECK_INT (kf_mp_get_int (event, "escalation_id", 0), escalation);
    reply = h_call (client, "escalations.list", "{\"session_id\":\"%s\"}", session);
    CHECK_STR (h_str (&kf_mp_get (reply->result, "data")->via.array.ptr [0], "status"), "closed");
    kf_reply_destroy (&reply);
    h_raw_close (&raw);
    kf_client_destroy (&client);
    h_cleanup (&h);
}

int
main (void)
{
    s_part_scripted ();
    s_part_real ();
    s_part_idle ();
    TEST_PASS ("handoff");
    return 0;
}
