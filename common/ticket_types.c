/*  ticket_types.c - the built-in ticket types and the checks of their fields. */
#include "common/ticket_types.h"
#include "common/utf8.h"
#include <string.h>

static const kf_ticket_field_t s_fields [] = {
    { "address",     "地址",     "请提供需要上门处理的详细地址（例如：XX市XX区XX路XX号X栋X单元XXX室）。", 4, 200 },
    { "phone",       "联系电话", "请留下您的联系电话，方便工作人员与您联系。", 7, 20 },
    { "description", "问题描述", "请简单描述一下您遇到的问题。", 2, 1000 },
    { "order_no",    "订单号",   "请提供相关的订单号（例如：ORD-2024-001）。", 4, 64 },
};
#define S_FIELD_COUNT (int) (sizeof s_fields / sizeof s_fields [0])

static const char *const s_repair_words [] = {
    "报修", "维修", "坏了", "修一下", "修理", "漏水", "不制冷", "不工作", "故障", "停电", "堵了", NULL
};
static const char *const s_complaint_words [] = { "投诉", "举报", NULL };
static const char *const s_after_sale_words [] = {
    "售后", "退换", "换货", "退货", "质量问题", "破损", "少发", "发错", NULL
};
static const char *const s_inquiry_words [] = { "咨询", "建议", "反馈", NULL };

static const kf_ticket_type_t s_types [] = {
    { "报修", "设备或房屋需要上门维修", s_repair_words,
      { "address", "phone", "description" }, 3 },
    { "投诉", "对服务或商品的投诉", s_complaint_words,
      { "phone", "description" }, 2 },
    { "售后", "订单的退换货、破损、错发漏发", s_after_sale_words,
      { "order_no", "phone", "description" }, 3 },
    { "咨询", "需要人工回复的其他咨询或建议", s_inquiry_words,
      { "phone", "description" }, 2 },
};
#define S_TYPE_COUNT (int) (sizeof s_types / sizeof s_types [0])

int
kf_ticket_type_count (void)
{
    return S_TYPE_COUNT;
}

const kf_ticket_type_t *
kf_ticket_type_at (int index)
{
    return index >= 0 && index < S_TYPE_COUNT ? &s_types [index] : NULL;
}

const kf_ticket_type_t *
kf_ticket_type_find (const char *name, size_t len)
{
    for (int i = 0; i < S_TYPE_COUNT; i++)
        if (strlen (s_types [i].type) == len && memcmp (s_types [i].type, name, len) == 0)
            return &s_types [i];
    return NULL;
}

const kf_ticket_type_t *
kf_ticket_type_guess (const char *text, size_t len)
{
    const kf_ticket_type_t *best = NULL;
    const char *best_at = NULL;
    for (int i = 0; i < S_TYPE_COUNT; i++)
        for (const char *const *word = s_types [i].keywords; *word; word++) {
            const char *at = memmem (text, len, *word, strlen (*word));
            if (at && (!best_at || at < best_at)) {
                best = &s_types [i];
                best_at = at;
            }
        }
    return best;
}

const kf_ticket_field_t *
kf_ticket_field_find (const char *name, size_t len)
{
    for (int i = 0; i < S_FIELD_COUNT; i++)
        if (strlen (s_fields [i].name) == len && memcmp (s_fields [i].name, name, len) == 0)
            return &s_fields [i];
    return NULL;
}

bool
kf_ticket_type_needs (const kf_ticket_type_t *type, const char *name)
{
    for (int i = 0; i < type->field_count; i++)
        if (strcmp (type->fields [i], name) == 0)
            return true;
    return false;
}

//  A mainland mobile (11 digits, 1[3-9]) or a landline: digits with at most two '-'
static bool
s_is_phone (const char *value, size_t len)
{
    size_t digits = 0, dashes = 0;
    for (size_t i = 0; i < len; i++) {
        if (value [i] >= '0' && value [i] <= '9')
            digits++;
        else
        if (value [i] == '-' && i > 0 && i + 1 < len)
            dashes++;
        else
            return false;
    }
    if (dashes > 2 || digits < 7)
        return false;
    if (value [0] == '1' && dashes == 0)
        return len == 11 && value [1] >= '3' && value [1] <= '9';
    return true;
}

static bool
s_is_order_no (const char *value, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = value [i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        ||    c == '-' || c == '_'))
            return false;
    }
    return true;
}

//  Whether `cp` says something: a letter, a digit or a character of a script; punctuation,
//  symbols, spaces and emoji do not
static bool
s_is_word_char (uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z');
    if (cp < 0xC0 || (cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F)
    ||  (cp >= 0xE000 && cp <= 0xF8FF) || (cp >= 0xFE10 && cp <= 0xFE6F) || cp >= 0x1F000)
        return false;
    if (cp >= 0xFF00 && cp <= 0xFFEF)       //  Full-width: its digits and letters only
        return (cp >= 0xFF10 && cp <= 0xFF19) || (cp >= 0xFF21 && cp <= 0xFF3A)
            || (cp >= 0xFF41 && cp <= 0xFF5A);
    return cp != 0xFFFD;
}

//  Number of word characters (s_is_word_char) in valid UTF-8 `value`
static size_t
s_word_chars (const char *value, size_t len)
{
    size_t count = 0;
    for (size_t i = 0; i < len; ) {
        uint32_t cp;
        int n = kf_utf8_decode (value + i, len - i, &cp);
        if (n <= 0)
            break;
        count += s_is_word_char (cp);
        i += (size_t) n;
    }
    return count;
}

const char *
kf_ticket_field_check (const kf_ticket_field_t *field, const char *value, size_t len)
{
    if (!kf_utf8_is_valid (value, len))
        return "must be valid UTF-8";
    size_t chars = kf_utf8_count (value, len);
    if ((int) chars < field->min_chars || (int) chars > field->max_chars)
        return strcmp (field->name, "phone") == 0 ? "must be a mobile or landline number"
                                                  : "is too short or too long";
    if (strcmp (field->name, "phone") == 0 && !s_is_phone (value, len))
        return "must be a mobile or landline number";
    if (strcmp (field->name, "order_no") == 0 && !s_is_order_no (value, len))
        return "must be letters, digits, '-' and '_'";
    //  "？？？" or "😡😡" describes nothing and locates nothing
    if (s_word_chars (value, len) < (size_t) (field->min_chars < 2 ? field->min_chars : 2))
        return "must say something in words, not only punctuation or symbols";
    return NULL;
}
