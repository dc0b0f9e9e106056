/*  test_store.c - the broker's SQLite store on a real file: migrations, sessions, turns (pending,
    completed, failed), history pages, knowledge-item upserts, and what a reopen finds. */
#include "broker/history.h"
#include "broker/kb_items.h"
#include "broker/sessions.h"
#include "broker/store.h"
#include "common/clock.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include "testutil.h"
#include <sqlite3.h>
#include <unistd.h>

//  Unpacks what `pk` wrote into `buffer`
static void
s_unpack (msgpack_sbuffer *buffer, msgpack_unpacked *out)
{
    CHECK (kf_mp_unpack_one (buffer->data, buffer->size, out));
    msgpack_sbuffer_clear (buffer);
}

static void
s_pack_json (msgpack_sbuffer *buffer, const char *json)
{
    msgpack_sbuffer_clear (buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    char err [128];
    CHECK_INT (kf_json_to_msgpack (json, strlen (json), &pk, err, sizeof err), 0);
}

int
main (void)
{
    char dir [] = "/tmp/kefu-store-XXXXXX", path [64];
    CHECK (mkdtemp (dir));
    snprintf (path, sizeof path, "%s/kefu.db", dir);
    char err [256];
    kf_store_t *store = kf_store_open (path, false, err, sizeof err);
    CHECK (store);
    kf_history_t *history = kf_history_new (store);
    CHECK (history);

    //  Migration 9 seeds the default bot's six intents from deploy/sample-intents.jsonl, whole
    sqlite3_stmt *seeded;
    CHECK_INT (sqlite3_prepare_v2 (kf_store_db (store), "SELECT count (*), min (json_array_length"
               " (examples)), sum (name = 'transfer_to_human') FROM intents WHERE bot_id = 'default'",
               -1, &seeded, NULL), SQLITE_OK);
    CHECK_INT (sqlite3_step (seeded), SQLITE_ROW);
    CHECK_INT (sqlite3_column_int (seeded, 0), 6);
    CHECK (sqlite3_column_int (seeded, 1) >= 30);
    CHECK_INT (sqlite3_column_int (seeded, 2), 1);
    sqlite3_finalize (seeded);

    //  A session and a turn, pending then completed
    kf_session_row_t row = { .id = "s_test1", .user_id = "u1", .channel = "web", .bot_id = "default",
                             .state = "open", .created_at = kf_now_ms (), .updated_at = kf_now_ms () };
    CHECK_INT (kf_store_session_insert (store, &row), 0);
    int64_t question = kf_store_next_message_id (store), answer = kf_store_next_message_id (store);
    CHECK (answer > question);
    kf_turn_row_t turn = { .id = question, .session_id = "s_test1", .role = "user", .content = "怎么申请退货？",
                           .content_len = strlen ("怎么申请退货？"), .confidence = -1, .latency_ms = -1,
                           .created_at = kf_now_ms () };
    CHECK_INT (kf_store_turn_insert (store, &turn), 0);
    kf_turn_row_t pending = { .id = answer, .session_id = "s_test1", .role = "assistant", .content = "",
                              .status = "pending", .confidence = -1, .latency_ms = -1,
                              .created_at = kf_now_ms () };
    CHECK_INT (kf_store_turn_insert (store, &pending), 0);
    CHECK (kf_store_is_dirty (store));
    CHECK_INT (kf_store_flush (store), 0);
    CHECK (!kf_store_is_dirty (store));

    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_unpacked unpacked;
    CHECK_INT (kf_history_message_pack (history, answer, &pk), 1);
    s_unpack (&buffer, &unpacked);
    CHECK (kf_mp_str_eq (&unpacked.data, "status", "pending"));
    msgpack_unpacked_destroy (&unpacked);

    s_pack_json (&buffer, "[{\"id\":1,\"external_id\":\"faq-001\"}]");
    msgpack_unpacked sources;
    s_unpack (&buffer, &sources);
    kf_turn_row_t done = { .id = answer, .session_id = "s_test1", .role = "assistant",
                           .content = "您可以在订单页申请售后。", .content_len = strlen ("您可以在订单页申请售后。"),
                           .response_type = "text", .intent = "knowledge_qa", .confidence = 0.93,
                           .sources = &sources.data, .status = "ok", .latency_ms = 3,
                           .created_at = kf_now_ms () };
    CHECK_INT (kf_store_turn_complete (store, &done), 0);
    msgpack_unpacked_destroy (&sources);
    CHECK_INT (kf_store_session_update (store, "s_test1", 1, 0, "{\"vip\":\"true\"}", kf_now_ms ()), 0);
    CHECK_INT (kf_store_flush (store), 0);

    //  History: both turns, the answer complete with its sources decoded back
    CHECK_INT (kf_history_page_pack (history, "s_test1", 20, 0, &pk), 0);
    s_unpack (&buffer, &unpacked);
    CHECK_INT (kf_mp_get_int (&unpacked.data, "total", 0), 2);
    CHECK (!kf_mp_get_bool (&unpacked.data, "has_more", true));
    const msgpack_object *data = kf_mp_get (&unpacked.data, "data");
    CHECK_INT (data->via.array.size, 2);
    CHECK (kf_mp_str_eq (&data->via.array.ptr [1], "status", "ok"));
    CHECK (kf_mp_str_eq (&data->via.array.ptr [1], "intent", "knowledge_qa"));
    const msgpack_object *stored = kf_mp_get (&data->via.array.ptr [1], "sources");
    CHECK (stored && stored->type == MSGPACK_OBJECT_ARRAY && stored->via.array.size == 1);
    CHECK (kf_mp_str_eq (&stored->via.array.ptr [0], "external_id", "faq-001"));
    msgpack_unpacked_destroy (&unpacked);
    //  Page edges: offset at the end, limit 1
    CHECK_INT (kf_history_page_pack (history, "s_test1", 1, 1, &pk), 0);
    s_unpack (&buffer, &unpacked);
    CHECK_INT (kf_mp_get (&unpacked.data, "data")->via.array.size, 1);
    CHECK (!kf_mp_get_bool (&unpacked.data, "has_more", true));
    msgpack_unpacked_destroy (&unpacked);
    CHECK_INT (kf_history_page_pack (history, "s_test1", 5, 2, &pk), 0);
    s_unpack (&buffer, &unpacked);
    CHECK_INT (kf_mp_get (&unpacked.data, "data")->via.array.size, 0);
    msgpack_unpacked_destroy (&unpacked);
    CHECK_INT (kf_history_message_pack (history, 999999, &pk), 0);

    //  Knowledge items: created, then updated by external_id; invalid ones rejected with a reason
    s_pack_json (&buffer, "{\"external_id\":\"faq-9\",\"question\":\"发票怎么开\",\"answer\":\"结算页选择发票。\","
                          "\"similar_questions\":[\"怎么开票\",\"要发票\"],\"category\":\"发票\"}");
    msgpack_unpacked item;
    s_unpack (&buffer, &item);
    int64_t id1 = 0, id2 = 0;
    kf_error_t item_err;
    kf_kb_catalog_t *catalog = kf_kb_catalog_new (store);
    kf_kb_items_t *items = kf_kb_items_new (store, catalog);
    CHECK (catalog && items);
    CHECK_INT (kf_kb_items_put (items, "default", &item.data, false, &id1, &item_err), 1);
    CHECK_INT (kf_kb_items_put (items, "default", &item.data, false, &id2, &item_err), 2);
    CHECK_INT (id1, id2);
    CHECK_INT (kf_kb_items_put (items, "other-bot", &item.data, false, &id2, &item_err), 1);
    CHECK (id2 != id1);
    msgpack_unpacked_destroy (&item);
    char category [256];
    kf_kb_category_path (catalog, 1, category, sizeof category);
    CHECK_STR (category, "发票");
    s_pack_json (&buffer, "{\"question\":\"没有答案\"}");
    s_unpack (&buffer, &item);
    CHECK_INT (kf_kb_items_put (items, "default", &item.data, false, &id2, &item_err), -1);
    CHECK_STR (kf_errc_name (item_err.errc), "missing_argument");
    msgpack_unpacked_destroy (&item);
    //  A partial update keeps what it does not name; a rich type needs its content
    s_pack_json (&buffer, "{\"external_id\":\"faq-9\",\"response_type\":\"form_show\"}");
    s_unpack (&buffer, &item);
    CHECK_INT (kf_kb_items_put (items, "default", &item.data, true, &id2, &item_err), -1);
    CHECK_STR (kf_errc_name (item_err.errc), "invalid_param");
    msgpack_unpacked_destroy (&item);
    s_pack_json (&buffer, "{\"external_id\":\"faq-9\",\"status\":0}");
    s_unpack (&buffer, &item);
    CHECK_INT (kf_kb_items_put (items, "default", &item.data, true, &id2, &item_err), 2);
    CHECK_INT (id2, id1);
    msgpack_unpacked_destroy (&item);
    kf_kb_filter_t filter = { .category_id = -1, .status = 0, .page = 1, .page_size = 10 };
    CHECK_INT (kf_kb_items_query_pack (items, "default", &filter, &pk), 0);
    s_unpack (&buffer, &unpacked);
    CHECK_INT (kf_mp_get_int (&unpacked.data, "total", 0), 1);
    const msgpack_object *found = &kf_mp_get (&unpacked.data, "data")->via.array.ptr [0];
    CHECK (kf_mp_str_eq (found, "answer", "结算页选择发票。"));
    CHECK (kf_mp_str_eq (found, "category", "发票"));
    CHECK_INT (kf_mp_get (found, "similar_questions")->via.array.size, 2);
    msgpack_unpacked_destroy (&unpacked);
    //  A deleted last item's id is not given again (old sources and feedback name it)
    s_pack_json (&buffer, "{\"question\":\"最后一个\",\"answer\":\"删掉\"}");
    s_unpack (&buffer, &item);
    int64_t last_item = 0, next_item = 0;
    CHECK_INT (kf_kb_items_put (items, "default", &item.data, false, &last_item, &item_err), 1);
    CHECK_INT (kf_kb_items_delete (items, "default", last_item), 1);
    CHECK_INT (kf_kb_items_put (items, "default", &item.data, false, &next_item, &item_err), 1);
    CHECK (next_item > last_item);
    CHECK_INT (kf_kb_items_delete (items, "default", next_item), 1);
    msgpack_unpacked_destroy (&item);
    kf_kb_items_destroy (&items);
    kf_kb_catalog_destroy (&catalog);
    int64_t version = kf_store_kb_bump_version (store);
    CHECK (version >= 2);
    CHECK_INT (kf_store_count (store, "kb_items"), 2);

    //  A turn left pending when the broker dies is marked failed on the next open
    int64_t orphan = kf_store_next_message_id (store);
    pending.id = orphan;
    CHECK_INT (kf_store_turn_insert (store, &pending), 0);
    kf_history_destroy (&history);
    kf_store_destroy (&store);          //  Commits what is pending
    store = kf_store_open (path, false, err, sizeof err);
    CHECK (store);
    history = kf_history_new (store);
    CHECK (kf_store_next_message_id (store) > orphan);
    CHECK_INT (kf_history_message_pack (history, orphan, &pk), 1);
    s_unpack (&buffer, &unpacked);
    CHECK (kf_mp_str_eq (&unpacked.data, "status", "error"));
    msgpack_unpacked_destroy (&unpacked);
    kf_session_row_t loaded;
    CHECK_INT (kf_store_session_load (store, "s_test1", 7, &loaded), 1);
    CHECK_STR (loaded.user_id, "u1");
    CHECK_INT (loaded.turn_count, 1);
    kf_session_row_free (&loaded);
    CHECK_INT (kf_store_session_load (store, "s_nope", 6, &loaded), 0);
    CHECK_INT (kf_store_kb_bump_version (store), version + 1);

    //  The session cache: trimmed to its bound, busy sessions kept, evicted ones reload with their
    //  counters and recent turns
    kf_sessions_t *sessions = kf_sessions_new (store);
    kf_session_t *first = NULL, *busy = NULL;
    for (int i = 0; i < 50; i++) {
        kf_session_t *session = kf_sessions_create (sessions, "u9", 2, "app", NULL, 0);
        CHECK (session && strncmp (session->id, "s_", 2) == 0 && strlen (session->id) == 22);
        if (i == 0)
            first = session;
        if (i == 1)
            busy = session;
    }
    char first_id [32];
    snprintf (first_id, sizeof first_id, "%s", first->id);
    busy->active = (kf_job_t *) busy;       //  Stands for a job in flight
    CHECK_INT (kf_store_flush (store), 0);
    CHECK_INT (kf_sessions_cached (sessions), 50);
    kf_sessions_trim (sessions, kf_mono_us () + 3600000000LL, 10);
    CHECK (kf_sessions_cached (sessions) <= 10);
    CHECK (kf_sessions_find (sessions, busy->id, strlen (busy->id), "u9", 2) == busy);
    busy->active = NULL;
    kf_session_t *again = kf_sessions_find (sessions, first_id, strlen (first_id), "u9", 2);
    CHECK (again && strcmp (again->user_id, "u9") == 0 && strcmp (again->channel, "app") == 0);
    CHECK (kf_sessions_find (sessions, first_id, strlen (first_id), "someone-else", 12) == NULL);
    kf_session_t *reloaded = kf_sessions_get (sessions, "s_test1", 7);
    CHECK (reloaded && reloaded->turn_count == 1 && reloaded->recent_count == 2);
    const char *role, *content;
    kf_session_recent (reloaded, 0, &role, &content);
    CHECK_STR (role, "user");
    CHECK_STR (content, "怎么申请退货？");
    kf_sessions_destroy (&sessions);
    kf_history_destroy (&history);

    //  Ids handed out stay taken when their rows are purged: a reopen starts past them
    int64_t last = kf_store_next_message_id (store);
    pending.id = last;
    CHECK_INT (kf_store_turn_insert (store, &pending), 0);
    CHECK_INT (kf_store_keep_message_ids (store), 0);
    CHECK_INT (sqlite3_exec (kf_store_db (store), "DELETE FROM turns", NULL, NULL, NULL), SQLITE_OK);
    kf_store_destroy (&store);
    store = kf_store_open (path, false, err, sizeof err);
    CHECK (store);
    CHECK_INT (kf_store_count (store, "turns"), 0);
    CHECK (kf_store_next_message_id (store) > last);
    kf_store_destroy (&store);
    msgpack_sbuffer_destroy (&buffer);

    //  A path that cannot be opened is an error with a reason, not a crash
    CHECK (kf_store_open ("/nonexistent-dir/kefu.db", false, err, sizeof err) == NULL);
    CHECK (strlen (err) > 0);
    char command [128];
    snprintf (command, sizeof command, "rm -rf %s", dir);
    CHECK_INT (system (command), 0);
    TEST_PASS ("test_store");
    return 0;
}
