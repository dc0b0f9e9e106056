/*  test_entities.c - order and phone numbers found in real customer messages: Chinese around
    them, full-width forms, phones that look like long order numbers, digit runs too long to be
    either, a bot's own pattern, spans back into the original text. */
#include "workers/entities.h"
#include "testutil.h"

static kf_entities_t s_out;

//  Extracts with `pattern` (NULL: the default) and checks the two values ("" for none)
static void
s_expect (const char *pattern, const char *text, const char *order_no, const char *phone)
{
    kf_entity_rules_t rules = { pattern };
    int found = kf_entities_extract (&rules, text, strlen (text), &s_out);
    if (strcmp (s_out.order_no, order_no) != 0 || strcmp (s_out.phone, phone) != 0)
        fprintf (stderr, "in: %s\n", text);
    CHECK_STR (s_out.order_no, order_no);
    CHECK_STR (s_out.phone, phone);
    CHECK (s_out.has_order_no == (*order_no != 0));
    CHECK (s_out.has_phone == (*phone != 0));
    CHECK_INT (found, (*order_no != 0) + (*phone != 0));
}

//  The span of the order number in `text` is `original`
static void
s_expect_span (const char *text, const char *original)
{
    kf_entities_extract (NULL, text, strlen (text), &s_out);
    CHECK (s_out.has_order_no);
    CHECK_INT (s_out.order_len, strlen (original));
    CHECK (memcmp (text + s_out.order_start, original, s_out.order_len) == 0);
}

int
main (void)
{
    //  The default pattern
    s_expect (NULL, "订单号是 ORD-2024-001", "ORD-2024-001", "");
    s_expect (NULL, "订单号是ORD-2024-001，帮我看看到哪了", "ORD-2024-001", "");
    s_expect (NULL, "帮我查下20240315001", "20240315001", "");
    s_expect (NULL, "我的手机13812345678", "", "13812345678");
    s_expect (NULL, "我的手机是13812345678，订单ORD-2024-002还没发货", "ORD-2024-002", "13812345678");
    s_expect (NULL, "my order is ord-2024-001, phone +86 139 1234 5678", "ORD-2024-001",
              "13912345678");
    s_expect (NULL, "Order ORD-2024-001 where is it?", "ORD-2024-001", "");
    s_expect (NULL, "ＯＲＤ－２０２４－００１这个单子呢", "ORD-2024-001", "");
    s_expect (NULL, "单号：ORD—2024—001", "ORD-2024-001", "");
    s_expect (NULL, "手机号１３８１２３４５６７８", "", "13812345678");
    s_expect (NULL, "电话 138-1234-5678 订单 20240315001", "20240315001", "13812345678");
    s_expect (NULL, "+8613812345678", "", "13812345678");
    s_expect (NULL, "手机13812345678 或者 13912345678", "", "13812345678");
    s_expect (NULL, "你好，我想问一下物流", "", "");
    s_expect (NULL, "", "", "");
    //  Runs too long for either are neither
    s_expect (NULL, "编号1234567890123456789012345", "", "");
    s_expect (NULL, "卡号 138123456789", "138123456789", "");  //  12 digits: an order number
    s_expect (NULL, "12812345678", "12812345678", "");     //  Not a mobile: 11 digits of order
    //  Order numbers first, phone later: each the first of its kind
    s_expect (NULL, "ORD-2024-001 和 ORD-2024-002", "ORD-2024-001", "");
    //  A bot's own pattern
    s_expect ("VIP[0-9]{6}", "会员单vip123456请查", "VIP123456", "");
    s_expect ("VIP[0-9]{6}", "订单号是 ORD-2024-001", "", "");
    s_expect ("[0-9]{8}", "单号12345678，手机13812345678", "12345678", "13812345678");
    //  A bad pattern finds the phone only
    kf_entity_rules_t bad = { "ORD-([0-9]+" };
    CHECK_INT (kf_entities_extract (&bad, "ORD-123 13812345678", 19, &s_out), -1);
    CHECK (s_out.has_phone && !s_out.has_order_no);
    //  Spans point into the original text, full-width forms included
    s_expect_span ("订单号是 ORD-2024-001 谢谢", "ORD-2024-001");
    s_expect_span ("查ＯＲＤ－２０２４－００１", "ＯＲＤ－２０２４－００１");
    kf_entities_extract (NULL, "我的手机１３８１２３４５６７８", strlen ("我的手机１３８１２３４５６７８"), &s_out);
    CHECK_INT (s_out.phone_start, strlen ("我的手机"));
    CHECK_INT (s_out.phone_len, 33);
    //  A NUL inside and invalid UTF-8 do not stop it
    const char odd [] = "\xff\xfe订单\0ORD-2024-001";
    kf_entities_extract (NULL, odd, sizeof odd - 1, &s_out);
    CHECK_STR (s_out.order_no, "ORD-2024-001");
    //  Cut multi-byte characters at the end
    const char *cut = "订单ORD-2024-001\xEF\xBC";
    kf_entities_extract (NULL, cut, strlen (cut), &s_out);
    CHECK_STR (s_out.order_no, "ORD-2024-001");
    //  The cache holds many patterns; more still work
    for (int i = 0; i < 40; i++) {
        char pattern [32];
        snprintf (pattern, sizeof pattern, "X%d-[0-9]{3}", i);
        char text [32];
        snprintf (text, sizeof text, "单号 x%d-123", i);
        char want [32];
        snprintf (want, sizeof want, "X%d-123", i);
        s_expect (pattern, text, want, "");
    }
    TEST_PASS ("test_entities");
    return 0;
}
