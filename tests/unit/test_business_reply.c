/*  test_business_reply.c - business API templates: placeholders and their defaults, {{, JSON
    braces left alone, URL and JSON escaping, paths into a JSON answer (objects, arrays, numbers,
    booleans, null, missing), Chinese text, the length cap at a whole character. */
#include "common/json_codec.h"
#include "common/text_template.h"
#include "workers/business_reply.h"
#include "testutil.h"

static msgpack_sbuffer s_buffer;
static msgpack_unpacked s_unpacked;

static const msgpack_object *
s_json (const char *json)
{
    msgpack_sbuffer_destroy (&s_buffer);
    msgpack_sbuffer_init (&s_buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &s_buffer, msgpack_sbuffer_write);
    CHECK_INT (kf_json_to_msgpack (json, strlen (json), &pk, NULL, 0), 0);
    msgpack_unpacked_destroy (&s_unpacked);
    msgpack_unpacked_init (&s_unpacked);
    size_t offset = 0;
    CHECK (msgpack_unpack_next (&s_unpacked, s_buffer.data, s_buffer.size, &offset)
           == MSGPACK_UNPACK_SUCCESS);
    return &s_unpacked.data;
}

static void
s_expect_reply (const char *template, const msgpack_object *answer, const kf_business_vars_t *vars,
                const char *want)
{
    char *reply = kf_business_reply (template, answer, vars);
    CHECK_STR (reply, want);
    free (reply);
}

static int
s_count_name (void *arg, const char *name, size_t len)
{
    (void) name;
    (void) len;
    (*(int *) arg)++;
    return 0;
}

int
main (void)
{
    msgpack_sbuffer_init (&s_buffer);
    msgpack_unpacked_init (&s_unpacked);
    const msgpack_object *order = s_json (
        "{\"order_no\":\"ORD-2024-001\",\"status\":\"已发货\",\"amount\":299.5,\"count\":3,"
        "\"paid\":true,\"note\":null,\"logistics\":{\"company\":\"顺丰速运\",\"tracking_no\":"
        "\"SF1234567890\",\"latest\":\"【深圳市】快件已到达深圳转运中心\"},"
        "\"items\":[{\"name\":\"无线蓝牙耳机\",\"qty\":1},{\"name\":\"保护套\",\"qty\":2}],"
        "\"tags\":[\"a\",\"b\"],\"odd key\":1}");
    kf_business_vars_t vars = { "ORD-2024-001", "13812345678", "u 1", "s/1", "shop" };

    //  Paths, entities, defaults
    s_expect_reply ("您的订单 {order_no} 状态：{status}，{logistics.company}（运单号 "
                    "{logistics.tracking_no}）：{logistics.latest}",
                    order, &vars, "您的订单 ORD-2024-001 状态：已发货，顺丰速运（运单号 SF1234567890）："
                    "【深圳市】快件已到达深圳转运中心");
    s_expect_reply ("{items.0.name}×{items.0.qty}，{items.1.name}×{items.1.qty}", order, &vars,
                    "无线蓝牙耳机×1，保护套×2");
    s_expect_reply ("{amount}|{count}|{paid}|{tags}|{items.1}", order, &vars,
                    "299.5|3|true|[\"a\",\"b\"]|{\"name\":\"保护套\",\"qty\":2}");
    s_expect_reply ("[{note}][{missing}][{items.9.name}][{status.x}][{items.x}]", order, &vars,
                    "[][][][][]");
    s_expect_reply ("{note|无备注}/{logistics.latest|暂无物流}/{x.y|默认 值}", order, &vars,
                    "无备注/【深圳市】快件已到达深圳转运中心/默认 值");
    s_expect_reply ("{phone}/{user_id}/{session_id}/{bot_id}", order, &vars,
                    "13812345678/u 1/s/1/shop");
    //  The answer wins over an entity of the same name
    const msgpack_object *other = s_json ("{\"order_no\":\"ORD-2024-009\"}");
    s_expect_reply ("{order_no}", other, &vars, "ORD-2024-009");
    //  Unknown entities render as nothing, or the default; no answer at all
    kf_business_vars_t none = { NULL, "", NULL, NULL, NULL };
    s_expect_reply ("没有找到订单{order_no|（未提供）}，电话{phone}", NULL, &none,
                    "没有找到订单（未提供），电话");
    //  Text that is no placeholder stays; {{ is a literal {
    s_expect_reply ("{\"a\": 1} { x} {} {a b} {{order_no} {-x} {中文}", NULL, &vars,
                    "{\"a\": 1} { x} {} {a b} {order_no} {-x} {中文}");
    s_expect_reply ("unterminated {status", order, &vars, "unterminated {status");
    s_expect_reply ("{status|unterminated", order, &vars, "{status|unterminated");
    //  The odd key is not reachable (names are letters, digits, _ . -), and the answer's text
    //  is taken as it is, not filled again
    const msgpack_object *sneaky = s_json ("{\"status\":\"{order_no}\"}");
    s_expect_reply ("{status}", sneaky, &vars, "{order_no}");
    //  A top-level array answer
    const msgpack_object *list = s_json ("[{\"status\":\"已签收\"}]");
    s_expect_reply ("{0.status}", list, &vars, "已签收");

    //  The cap, at a whole character
    char big [20000];
    size_t len = 0;
    while (len + 3 < sizeof big - 1) {
        memcpy (big + len, "订", 3);
        len += 3;
    }
    big [len] = 0;
    char *reply = kf_business_reply (big, NULL, &vars);
    CHECK (strlen (reply) <= KF_BUSINESS_REPLY_MAX);
    CHECK (strlen (reply) % 3 == 0 && strlen (reply) > KF_BUSINESS_REPLY_MAX - 3);
    free (reply);

    //  URL and body templates escape the entities
    kf_business_config_t api = {
        .url = "https://shop/api/orders/{order_no}?user={user_id}&s={session_id}&x={{y}",
        .body = "{\"order_no\":\"{order_no}\",\"user\":\"{user_id}\",\"note\":\"{phone}\"}",
        .requires = KF_BUSINESS_NEEDS_ORDER_NO
    };
    kf_business_vars_t odd = { "ORD 1/中", "a\"b\\c\n", "u&1=2", "s?#", NULL };
    char *url = kf_business_url (&api, &odd);
    CHECK_STR (url, "https://shop/api/orders/ORD%201%2F%E4%B8%AD?user=u%261%3D2&s=s%3F%23&x={y}");
    free (url);
    char *body = kf_business_body (&api, &odd);
    CHECK_STR (body, "{\"order_no\":\"ORD 1/中\",\"user\":\"u&1=2\",\"note\":\"a\\\"b\\\\c\\u000a\"}");
    CHECK (s_json (body));              //  Still JSON
    free (body);

    //  Which entities a call needs
    kf_business_vars_t order_only = { "ORD-1", NULL, "u", NULL, NULL };
    kf_business_vars_t phone_only = { "", "13812345678", "u", NULL, NULL };
    CHECK (kf_business_has_required (&api, &order_only));
    CHECK (!kf_business_has_required (&api, &phone_only));
    api.requires = KF_BUSINESS_NEEDS_ORDER_NO | KF_BUSINESS_NEEDS_PHONE;
    CHECK (kf_business_has_required (&api, &phone_only));
    CHECK (!kf_business_has_required (&api, &none));
    api.requires = 0;
    CHECK (kf_business_has_required (&api, &none));

    //  Placeholders listed
    int count = 0;
    CHECK_INT (kf_template_each ("{a}{{b}{c|d}{\"e\"}{f.g.0}", s_count_name, &count), 0);
    CHECK_INT (count, 3);
    //  Paths directly (s_json keeps one answer at a time)
    order = s_json ("{\"items\":[{\"name\":\"a\"},{\"qty\":2}]}");
    CHECK (kf_business_path (order, "", 0) == order);
    CHECK (kf_business_path (order, "items.1.qty", 11)->via.u64 == 2);
    CHECK (!kf_business_path (order, "items.-1", 8));
    CHECK (!kf_business_path (order, "items.99999999999", 17));

    msgpack_unpacked_destroy (&s_unpacked);
    msgpack_sbuffer_destroy (&s_buffer);
    TEST_PASS ("test_business_reply");
    return 0;
}
