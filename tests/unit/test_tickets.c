/*  test_tickets.c - tickets on a real store: numbers and times in China time (day boundaries,
    ids past six digits), the checks of every field of every type, a ticket made from a chat result
    (reply text, a form_show card that passes the rich-content checks, the stored row), the list
    with its filters and paging, status changes. */
#include "broker/tickets.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/rich_content.h"
#include "testutil.h"
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

static msgpack_sbuffer s_buffer;
static msgpack_unpacked s_unpacked;

//  A msgpack object from JSON, valid until the next call
static const msgpack_object *
s_obj (const char *json)
{
    msgpack_sbuffer_clear (&s_buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &s_buffer, msgpack_sbuffer_write);
    char err [128];
    CHECK_INT (kf_json_to_msgpack (json, strlen (json), &pk, err, sizeof err), 0);
    msgpack_unpacked_destroy (&s_unpacked);
    CHECK (kf_mp_unpack_one (s_buffer.data, s_buffer.size, &s_unpacked));
    return &s_unpacked.data;
}

//  Unix ms of a UTC time
static int64_t
s_utc_ms (int year, int month, int day, int hour, int minute, int second)
{
    struct tm tm = { .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day,
                     .tm_hour = hour, .tm_min = minute, .tm_sec = second };
    return (int64_t) timegm (&tm) * 1000;
}

static void
s_test_formats (void)
{
    char no [KF_TICKET_NO_MAX], when [20];
    //  15:30 in China is 07:30 UTC the same day
    int64_t ms = s_utc_ms (2026, 11, 21, 7, 30, 0) + 999;
    CHECK_STR (kf_ticket_no_format (1, ms, no), "T20261121000001");
    CHECK_STR (kf_ticket_time_format (ms, when), "2026-11-21 15:30:00");
    //  China's day starts at 16:00 UTC the day before
    CHECK_STR (kf_ticket_no_format (42, s_utc_ms (2026, 11, 20, 16, 0, 0), no), "T20261121000042");
    CHECK_STR (kf_ticket_no_format (42, s_utc_ms (2026, 11, 20, 15, 59, 59), no), "T20261120000042");
    CHECK_STR (kf_ticket_time_format (s_utc_ms (2026, 12, 31, 16, 0, 0), when), "2027-01-01 00:00:00");
    //  Past six digits the number grows
    CHECK_STR (kf_ticket_no_format (1234567, ms, no), "T202611211234567");
    CHECK_STR (kf_ticket_status_label ("open"), "待处理");
    CHECK_STR (kf_ticket_status_label ("processing"), "处理中");
    CHECK_STR (kf_ticket_status_label ("closed"), "已关闭");
}

//  The error kf_tickets_check gives `fields` of `type`: its name, or "ok"
static const char *
s_check (const char *type, const char *fields_json)
{
    kf_error_t err;
    const kf_ticket_type_t *found = kf_tickets_check (type, strlen (type), s_obj (fields_json),
                                                      "ticket.fields", &err);
    if (found) {
        CHECK_STR (found->type, type);
        return "ok";
    }
    CHECK (strlen (err.message) > 0);
    CHECK (strstr (err.message, "ticket") != NULL);
    return kf_errc_name (err.errc);
}

static void
s_test_checks (void)
{
    CHECK_STR (s_check ("报修", "{\"address\":\"上海市浦东新区世纪大道100号\",\"phone\":\"13800138000\","
                        "\"description\":\"空调不制冷\"}"), "ok");
    CHECK_STR (s_check ("投诉", "{\"phone\":\"021-12345678\",\"description\":\"快递员态度差\"}"), "ok");
    CHECK_STR (s_check ("售后", "{\"order_no\":\"ORD-2024-001\",\"phone\":\"13800138000\","
                        "\"description\":\"收到的杯子碎了\",\"type\":\"售后\"}"), "ok");
    CHECK_STR (s_check ("咨询", "{\"phone\":\" 13800138000 \",\"description\":\"  能开专票吗  \"}"), "ok");
    //  Each way to get it wrong
    CHECK_STR (s_check ("维修", "{}"), "invalid_param");
    CHECK_STR (s_check ("", "{}"), "invalid_param");
    CHECK_STR (s_check ("投诉", "[]"), "invalid_param");
    CHECK_STR (s_check ("投诉", "{\"phone\":\"13800138000\"}"), "missing_argument");
    CHECK_STR (s_check ("报修", "{\"phone\":\"13800138000\",\"description\":\"坏了\"}"), "missing_argument");
    CHECK_STR (s_check ("投诉", "{\"phone\":\"12345\",\"description\":\"差评\"}"), "invalid_param");
    CHECK_STR (s_check ("投诉", "{\"phone\":\"12800138000\",\"description\":\"差评\"}"), "invalid_param");
    CHECK_STR (s_check ("投诉", "{\"phone\":13800138000,\"description\":\"差评\"}"), "invalid_param");
    CHECK_STR (s_check ("投诉", "{\"phone\":\"13800138000\",\"description\":\"   \"}"), "missing_argument");
    CHECK_STR (s_check ("投诉", "{\"phone\":\"13800138000\",\"description\":\"差\"}"), "invalid_param");
    CHECK_STR (s_check ("投诉", "{\"phone\":\"13800138000\",\"description\":\"差评\",\"order_no\":\"A1234\"}"),
               "invalid_param");
    CHECK_STR (s_check ("投诉", "{\"phone\":\"13800138000\",\"description\":\"差评\",\"color\":\"red\"}"),
               "invalid_param");
    CHECK_STR (s_check ("投诉", "{\"phone\":\"13800138000\",\"description\":\"差评\",\"type\":\"报修\"}"),
               "invalid_param");
    CHECK_STR (s_check ("售后", "{\"order_no\":\"ORD 2024\",\"phone\":\"13800138000\",\"description\":\"破损\"}"),
               "invalid_param");
    CHECK_STR (s_check ("报修", "{\"address\":\"上海\",\"phone\":\"13800138000\",\"description\":\"坏了\"}"),
               "invalid_param");
    char long_address [1200] = "{\"phone\":\"13800138000\",\"description\":\"坏了\",\"address\":\"";
    for (int i = 0; i < 201; i++)
        strcat (long_address, "a");
    strcat (long_address, "\"}");
    CHECK_STR (s_check ("报修", long_address), "too_large");
    //  A value that is not UTF-8 (packed by hand: JSON cannot carry it)
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_str (&pk, "phone", "13800138000");
    kf_mp_pack_cstr (&pk, "description");
    kf_mp_pack_str (&pk, "\xff\xfe\xfd", 3);
    msgpack_unpacked bad;
    CHECK (kf_mp_unpack_one (buffer.data, buffer.size, &bad));
    kf_error_t err;
    CHECK (kf_tickets_check ("投诉", strlen ("投诉"), &bad.data, "ticket.fields", &err) == NULL);
    CHECK_STR (kf_errc_name (err.errc), "invalid_utf8");
    msgpack_unpacked_destroy (&bad);
    msgpack_sbuffer_destroy (&buffer);
}

//  Row `key` of a form_show card: its value
static const char *
s_card_value (const msgpack_object *card, const char *key)
{
    const msgpack_object *params = kf_mp_get (card, "params");
    for (uint32_t i = 0; params && i < params->via.array.size; i++)
        if (kf_mp_str_eq (&params->via.array.ptr [i], "key", key)) {
            static char value [256];
            const char *s;
            size_t len;
            CHECK (kf_mp_str (kf_mp_get (&params->via.array.ptr [i], "value"), &s, &len));
            snprintf (value, sizeof value, "%.*s", (int) len, s);
            return value;
        }
    return "";
}

static void
s_test_made (kf_store_t *store)
{
    kf_broker_t broker;
    memset (&broker, 0, sizeof broker);
    broker.store = store;
    kf_session_t session;
    memset (&session, 0, sizeof session);
    snprintf (session.id, sizeof session.id, "s_0123456789abcdef0123");
    session.bot_id = "shop";
    session.user_id = "u1";
    kf_ticket_made_t made;
    kf_error_t err;
    const msgpack_object *ticket = s_obj ("{\"type\":\"报修\",\"fields\":{\"address\":\"  上海市浦东新区"
        "世纪大道100号 \",\"phone\":\"13800138000\",\"description\":\"空调不制冷\"}}");
    CHECK_INT (kf_tickets_from_chat (&broker, &session, 77, ticket, &made, &err), 0);
    CHECK (strstr (made.reply, "您的报修工单已提交成功，工单编号：T"));
    CHECK (strstr (made.reply, "000001。工作人员会尽快与您联系。"));
    //  The card: in its shape, every row in order
    msgpack_unpacked card, row;
    CHECK (kf_mp_unpack_one (made.content.data, made.content.size, &card));
    msgpack_object type = { .type = MSGPACK_OBJECT_STR, .via.str = { 9, "form_show" } };
    CHECK_INT (kf_rich_check (&type, &card.data, "ticket", &err), 0);
    CHECK (kf_mp_str_eq (&card.data, "title", "工单已创建"));
    const msgpack_object *params = kf_mp_get (&card.data, "params");
    CHECK_INT (params->via.array.size, 7);
    const char *keys [] = { "编号", "创建时间", "工单类型", "地址", "联系电话", "问题描述", "状态" };
    for (int i = 0; i < 7; i++)
        CHECK (kf_mp_str_eq (&params->via.array.ptr [i], "key", keys [i]));
    CHECK_STR (s_card_value (&card.data, "工单类型"), "报修");
    CHECK_STR (s_card_value (&card.data, "地址"), "上海市浦东新区世纪大道100号");
    CHECK_STR (s_card_value (&card.data, "状态"), "待处理");
    CHECK_INT (strlen (s_card_value (&card.data, "创建时间")), 19);
    //  The ticket as stored
    CHECK (kf_mp_unpack_one (made.ticket.data, made.ticket.size, &row));
    CHECK_INT (kf_mp_get_int (&row.data, "id", 0), 1);
    CHECK (kf_mp_str_eq (&row.data, "ticket_no", s_card_value (&card.data, "编号")));
    CHECK (kf_mp_str_eq (&row.data, "status", "open"));
    CHECK (kf_mp_str_eq (&row.data, "source", "chat"));
    CHECK (kf_mp_str_eq (&row.data, "session_id", session.id));
    CHECK (kf_mp_str_eq (&row.data, "user_id", "u1"));
    CHECK (kf_mp_str_eq (&row.data, "bot_id", "shop"));
    CHECK_INT (kf_mp_get_int (&row.data, "message_id", 0), 77);
    CHECK (kf_mp_str_eq (kf_mp_get (&row.data, "fields"), "address", "上海市浦东新区世纪大道100号"));
    CHECK_INT (kf_mp_get (&row.data, "fields")->via.map.size, 3);
    msgpack_unpacked_destroy (&card);
    msgpack_unpacked_destroy (&row);
    kf_ticket_made_free (&made);
    kf_ticket_made_free (&made);        //  Twice is fine
    //  A bad ticket: an error, nothing made, nothing stored
    CHECK_INT (kf_tickets_from_chat (&broker, &session, 78, s_obj ("{\"type\":\"报修\"}"), &made,
                                     &err), -1);
    CHECK_STR (kf_errc_name (err.errc), "invalid_param");
    CHECK (made.reply == NULL && made.content.size == 0 && made.ticket.size == 0);
    kf_ticket_made_free (&made);
    CHECK_INT (kf_tickets_from_chat (&broker, &session, 78, s_obj ("[1]"), &made, &err), -1);
    CHECK_INT (kf_tickets_from_chat (&broker, &session, 78, s_obj ("{\"type\":7,\"fields\":{}}"),
                                     &made, &err), -1);
    //  One without a session
    kf_ticket_origin_t origin = { .bot_id = "default", .user_id = "", .source = "execute" };
    const msgpack_object *fields = s_obj ("{\"type\":\"投诉\",\"phone\":\"13800138000\","
                                          "\"description\":\"发货太慢\"}");
    CHECK_INT (kf_tickets_create (store, &origin, "投诉", strlen ("投诉"), fields, "params.params",
                                  &made, &err), 0);
    CHECK (strstr (made.reply, "您的投诉工单已提交成功，工单编号：T"));
    CHECK (strstr (made.reply, "000002。"));
    kf_ticket_made_free (&made);
}

//  Lists with `filter` and returns {total, first id}
static void
s_query (kf_store_t *store, kf_ticket_filter_t *filter, int64_t *total, int64_t *first,
         uint32_t *shown)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    if (!filter->page)
        filter->page = 1;
    if (!filter->page_size)
        filter->page_size = 20;
    CHECK_INT (kf_tickets_query_pack (store, filter, &pk), 0);
    msgpack_unpacked result;
    CHECK (kf_mp_unpack_one (buffer.data, buffer.size, &result));
    *total = kf_mp_get_int (&result.data, "total", -1);
    const msgpack_object *data = kf_mp_get (&result.data, "data");
    *shown = data->via.array.size;
    *first = *shown ? kf_mp_get_int (&data->via.array.ptr [0], "id", 0) : 0;
    msgpack_unpacked_destroy (&result);
    msgpack_sbuffer_destroy (&buffer);
}

static void
s_test_query (kf_store_t *store)
{
    kf_ticket_filter_t f;
    int64_t total, first;
    uint32_t shown;
    memset (&f, 0, sizeof f);
    s_query (store, &f, &total, &first, &shown);
    CHECK_INT (total, 2);
    CHECK_INT (first, 2);               //  Newest first
    memset (&f, 0, sizeof f);
    f.bot_id = "shop", f.bot_len = 4;
    s_query (store, &f, &total, &first, &shown);
    CHECK_INT (total, 1);
    CHECK_INT (first, 1);
    memset (&f, 0, sizeof f);
    f.type = "投诉", f.type_len = strlen ("投诉");
    s_query (store, &f, &total, &first, &shown);
    CHECK_INT (total, 1);
    CHECK_INT (first, 2);
    memset (&f, 0, sizeof f);
    f.page = 2, f.page_size = 1;
    s_query (store, &f, &total, &first, &shown);
    CHECK_INT (total, 2);
    CHECK_INT (first, 1);
    memset (&f, 0, sizeof f);
    f.page = 3, f.page_size = 1;
    s_query (store, &f, &total, &first, &shown);
    CHECK_INT (shown, 0);
    //  Status changes
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    CHECK_INT (kf_tickets_set_status (store, 2, NULL, 0, "closed", &pk), 1);
    CHECK_INT (kf_tickets_set_status (store, 99, NULL, 0, "closed", &pk), 0);
    CHECK_INT (kf_tickets_set_status (store, 0, "T00000000000099", 15, "closed", &pk), 0);
    msgpack_sbuffer_destroy (&buffer);
    memset (&f, 0, sizeof f);
    f.status = "closed", f.status_len = 6;
    s_query (store, &f, &total, &first, &shown);
    CHECK_INT (total, 1);
    CHECK_INT (first, 2);
}

static int
s_on_progress (void *arg)
{
    (*(int *) arg)++;
    return 0;
}

//  A customer's tickets (by session, by user, by number) among many others: the list reads that
//  customer's rows through an index, not every ticket. Counted in SQLite VM steps (a progress
//  callback every 1,000), so the check does not depend on the machine's speed
static void
s_test_query_indexed (kf_store_t *store)
{
    CHECK_INT (kf_store_flush (store), 0);
    sqlite3 *db = kf_store_db (store);
    CHECK_INT (sqlite3_exec (db, "BEGIN;"
        " WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)"
        " INSERT INTO tickets (ticket_no, bot_id, session_id, user_id, type, fields, created_at,"
        " updated_at) SELECT 'B' || i, 'default', 's_bulk', 'u-bulk', '咨询', '{}', i, i FROM n;"
        " INSERT INTO tickets (ticket_no, bot_id, session_id, user_id, type, fields, created_at,"
        " updated_at) VALUES ('M1', 'default', 's_mine', 'u-mine', '咨询', '{}', 1, 1),"
        " ('M2', 'default', 's_mine', 'u-mine', '咨询', '{}', 2, 2);"
        " COMMIT", NULL, NULL, NULL), SQLITE_OK);
    int ticks = 0;
    sqlite3_progress_handler (db, 1000, s_on_progress, &ticks);
    kf_ticket_filter_t f;
    int64_t total, first;
    uint32_t shown;
    memset (&f, 0, sizeof f);
    f.session_id = "s_mine", f.session_len = 6;
    s_query (store, &f, &total, &first, &shown);
    CHECK_INT (total, 2);
    CHECK_INT (shown, 2);
    memset (&f, 0, sizeof f);
    f.user_id = "u-mine", f.user_len = 6;
    f.status = "open", f.status_len = 4;
    s_query (store, &f, &total, &first, &shown);
    CHECK_INT (total, 2);
    memset (&f, 0, sizeof f);
    f.ticket_no = "M1", f.ticket_no_len = 2;
    s_query (store, &f, &total, &first, &shown);
    CHECK_INT (total, 1);
    sqlite3_progress_handler (db, 0, NULL, NULL);
    if (ticks >= 20)
        fprintf (stderr, "three narrow lists took %d thousand VM steps\n", ticks);
    CHECK (ticks < 20);                 //  A scan of the 20,000 others takes hundreds
}

int
main (void)
{
    msgpack_sbuffer_init (&s_buffer);
    msgpack_unpacked_init (&s_unpacked);
    s_test_formats ();
    s_test_checks ();
    char dir [] = "/tmp/kefu-tickets-XXXXXX", path [64];
    CHECK (mkdtemp (dir));
    snprintf (path, sizeof path, "%s/kefu.db", dir);
    char err [256];
    kf_store_t *store = kf_store_open (path, false, err, sizeof err);
    CHECK (store);
    s_test_made (store);
    CHECK_INT (kf_store_flush (store), 0);
    s_test_query (store);
    s_test_query_indexed (store);
    kf_store_destroy (&store);
    unlink (path);
    char wal [80];
    snprintf (wal, sizeof wal, "%s-wal", path);
    unlink (wal);
    snprintf (wal, sizeof wal, "%s-shm", path);
    unlink (wal);
    rmdir (dir);
    msgpack_unpacked_destroy (&s_unpacked);
    msgpack_sbuffer_destroy (&s_buffer);
    TEST_PASS ("test_tickets");
    return 0;
}
