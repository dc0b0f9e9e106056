/*  ticket_dialog.c - slot filling for tickets: what a message holds, what to ask next. */
#include "workers/ticket_dialog.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/text_norm.h"
#include "common/utf8.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_CLAUSES 16

//  Clause delimiters of raw text (a clause never holds one)
static const char *s_delimiters [] = {
    "，", "。", "；", "！", "？", "、", ",", ";", "!", "?", "\n", NULL
};
//  Address words: street level (one needed) and region level
static const char *s_street_words [] = {
    "路", "街", "巷", "弄", "栋", "幢", "单元", "室", "小区", "大厦", "花园", "公寓", "村", "楼", "号院", NULL
};
static const char *s_region_words [] = { "省", "市", "区", "县", "镇", "乡", "大道", "街道", NULL };
//  What a request for a ticket says besides its subject; removed before a description is judged
static const char *s_request_words [] = {
    "我要", "我想", "想要", "帮我", "给我", "麻烦", "提交", "提个", "提一个", "开个", "开一个",
    "申请", "一个", "一下", "工单", "报修单", "维修单", "投诉单", "单子", "报修", "投诉", "售后",
    "咨询", "维修", "需要", "请", "要", "我", "吧", "了", NULL
};
static const char *s_cancel_words [] = { "取消", "算了", "不用了", "不要了", "不提交了", "不填了", NULL };
static const char *s_address_prefixes [] = {
    "地址是", "地址为", "地址：", "地址:", "地址", "我家住在", "我家在", "我住在", "家住", "住在", NULL
};

typedef struct {
    size_t start, len;
} s_span_t;

//  Splits `text` into clauses at the delimiters; spans exclude them and outer spaces
static int
s_clauses (const char *text, size_t len, s_span_t *spans)
{
    int count = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; ) {
        size_t n = 0;
        for (int d = 0; i < len && s_delimiters [d] && !n; d++) {
            size_t dlen = strlen (s_delimiters [d]);
            if (dlen <= len - i && memcmp (text + i, s_delimiters [d], dlen) == 0)
                n = dlen;
        }
        if (i == len || n) {
            size_t from = start, to = i;
            while (from < to && (text [from] == ' ' || text [from] == '\t'))
                from++;
            while (to > from && (text [to - 1] == ' ' || text [to - 1] == '\t'))
                to--;
            if (to > from && count < S_MAX_CLAUSES)
                spans [count++] = (s_span_t) { from, to - from };
            else
            if (to > from)      //  Too many clauses: the last one takes the rest
                spans [count - 1].len = to - spans [count - 1].start;
            start = i + (n ? n : 1);
            i += n ? n : 1;
        }
        else
            i++;
    }
    return count;
}

static int
s_count_words (const char *s, size_t len, const char **words)
{
    int count = 0;
    for (int w = 0; words [w]; w++)
        if (memmem (s, len, words [w], strlen (words [w])))
            count++;
    return count;
}

//  True when a clause reads like an address: a street-level word and one more address word, or a
//  house number (digits then 号)
static bool
s_is_address (const char *s, size_t len)
{
    int street = s_count_words (s, len, s_street_words);
    int region = s_count_words (s, len, s_region_words);
    for (size_t i = 1; i + 3 <= len; i++)
        if (memcmp (s + i, "号", 3) == 0 && s [i - 1] >= '0' && s [i - 1] <= '9') {
            street++;
            break;
        }
    return street >= 1 && street + region >= 2;
}

//  True when a span overlaps [start, start + len)
static bool
s_overlaps (const s_span_t *span, size_t start, size_t len)
{
    return len && span->start < start + len && start < span->start + span->len;
}

//  Copies the address clause of `text` without a leading "地址是"; false when there is none
static bool
s_find_address (const char *text, size_t len, const kf_entities_t *found, char **out)
{
    s_span_t spans [S_MAX_CLAUSES];
    int count = s_clauses (text, len, spans);
    for (int c = 0; c < count; c++) {
        const char *s = text + spans [c].start;
        size_t n = spans [c].len;
        if (found && found->has_phone && s_overlaps (&spans [c], found->phone_start, found->phone_len))
            continue;
        if (!s_is_address (s, n))
            continue;
        for (int p = 0; s_address_prefixes [p]; p++) {
            size_t plen = strlen (s_address_prefixes [p]);
            if (plen < n && memcmp (s, s_address_prefixes [p], plen) == 0) {
                s += plen, n -= plen;
                break;
            }
        }
        *out = kf_strndup (s, n);
        return true;
    }
    return false;
}

//  Characters of a clause that say something besides the request words
static size_t
s_subject_chars (const char *s, size_t len)
{
    char *normal = kf_text_normalize (s, len);
    for (int w = 0; s_request_words [w]; w++) {
        size_t wlen = strlen (s_request_words [w]);
        char *hit;
        while ((hit = strstr (normal, s_request_words [w])))
            memmove (hit, hit + wlen, strlen (hit + wlen) + 1);
    }
    size_t chars = 0;
    for (const char *p = normal; *p; p++)
        chars += *p != ' ' && ((unsigned char) *p & 0xC0) != 0x80;
    free (normal);
    return chars;
}

//  The description a first message gives: its clauses that are not the address, the phone or the
//  order number, when they say more than the request itself. Heap, or NULL.
static char *
s_find_description (const char *text, size_t len, const kf_entities_t *found)
{
    s_span_t spans [S_MAX_CLAUSES];
    int count = s_clauses (text, len, spans);
    char *out = kf_malloc (3 * len + 4);    //  Clauses joined by "，" (3 bytes per delimiter)
    size_t used = 0, subject = 0;
    for (int c = 0; c < count; c++) {
        const char *s = text + spans [c].start;
        size_t n = spans [c].len;
        if ((found && found->has_phone && s_overlaps (&spans [c], found->phone_start, found->phone_len))
        ||  (found && found->has_order_no && s_overlaps (&spans [c], found->order_start, found->order_len))
        ||  s_is_address (s, n))
            continue;
        subject += s_subject_chars (s, n);
        if (used) {
            memcpy (out + used, "，", 3);
            used += 3;
        }
        memcpy (out + used, s, n);
        used += n;
    }
    out [used] = 0;
    if (subject >= 3)
        return out;
    free (out);
    return NULL;
}

bool
kf_ticket_dialog_is_cancel (const char *text, size_t len)
{
    char *normal = kf_text_normalize (text, len);
    size_t chars = kf_utf8_count (normal, strlen (normal));
    bool is_cancel = false;
    for (int w = 0; s_cancel_words [w] && !is_cancel; w++)
        is_cancel = strstr (normal, s_cancel_words [w])
                 && chars <= kf_utf8_count (s_cancel_words [w], strlen (s_cancel_words [w])) + 4;
    free (normal);
    return is_cancel;
}

//  Sets field `name` unless it is set, the type does not need it, or the value fails its check
static void
s_offer (kf_slots_t *slots, const kf_ticket_type_t *type, const char *name, const char *value,
         size_t len)
{
    const kf_ticket_field_t *field = kf_ticket_field_find (name, strlen (name));
    if (kf_slots_field (slots, name) || (type && !kf_ticket_type_needs (type, name))
    ||  !field || kf_ticket_field_check (field, value, len))
        return;
    kf_slots_set_field (slots, name, value, len);
}

//  Takes every field the message holds (description only when `with_description`)
static void
s_take_fields (kf_slots_t *slots, const char *text, size_t len, const kf_entities_t *found,
               bool with_description)
{
    const kf_ticket_type_t *type = kf_ticket_type_find (slots->ticket_type, strlen (slots->ticket_type));
    if (found && found->has_phone)
        s_offer (slots, type, "phone", found->phone, strlen (found->phone));
    if (found && found->has_order_no)
        s_offer (slots, type, "order_no", found->order_no, strlen (found->order_no));
    char *value;
    if (!kf_slots_field (slots, "address") && s_find_address (text, len, found, &value)) {
        s_offer (slots, type, "address", value, strlen (value));
        free (value);
    }
    if (with_description && !kf_slots_field (slots, "description")
    &&  (value = s_find_description (text, len, found))) {
        s_offer (slots, type, "description", value, strlen (value));
        free (value);
    }
}

//  Drops values the chosen type does not need (taken before the type was known)
static void
s_fit_type (kf_slots_t *slots)
{
    const kf_ticket_type_t *type = kf_ticket_type_find (slots->ticket_type, strlen (slots->ticket_type));
    for (int i = 0; type && i < KF_SLOTS_FIELD_COUNT; i++)
        if (slots->fields [i] && !kf_ticket_type_needs (type, kf_slots_field_names [i])) {
            free (slots->fields [i]);
            slots->fields [i] = NULL;
        }
}

//  Decides what comes next: asks for the type or the first missing field, or completes
static kf_ticket_step_t
s_next (kf_slots_t *slots, const char *intro, char **reply)
{
    const kf_ticket_type_t *type = kf_ticket_type_find (slots->ticket_type, strlen (slots->ticket_type));
    if (!type) {
        snprintf (slots->awaiting, sizeof slots->awaiting, "type");
        *reply = kf_strdup (KF_TICKET_ASK_TYPE);
        return KF_TICKET_ASK;
    }
    for (int f = 0; f < type->field_count; f++)
        if (!kf_slots_field (slots, type->fields [f])) {
            const kf_ticket_field_t *field = kf_ticket_field_find (type->fields [f], strlen (type->fields [f]));
            snprintf (slots->awaiting, sizeof slots->awaiting, "%s", type->fields [f]);
            size_t size = strlen (intro) + strlen (field->prompt) + 1;
            *reply = kf_malloc (size);
            snprintf (*reply, size, "%s%s", intro, field->prompt);
            return KF_TICKET_ASK;
        }
    *slots->awaiting = 0;
    return KF_TICKET_COMPLETE;
}

//  The ASCII of a character of a written phone number at `s` (`len` bytes left): a digit, '-' or
//  a space, full-width ones folded ('０'..'９', '－', the ideographic space); sets *bytes. 0 otherwise.
static char
s_phone_char (const char *s, size_t len, size_t *bytes)
{
    unsigned char c = s [0];
    *bytes = 1;
    if ((c >= '0' && c <= '9') || c == '-' || c == ' ')
        return (char) c;
    *bytes = 3;
    if (len >= 3 && c == 0xEF && (unsigned char) s [1] == 0xBC) {
        unsigned char d = s [2];
        if (d >= 0x90 && d <= 0x99)
            return (char) ('0' + d - 0x90);
        if (d == 0x8D)
            return '-';
    }
    if (len >= 3 && memcmp (s, "\xE3\x80\x80", 3) == 0)
        return ' ';
    return 0;
}

static bool
s_is_word_char (char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
        || c == '-';
}

//  A landline (or a mobile the entity extractor passed over) written among words: "电话是
//  021-12345678", "座机 0755 8888 1234". The first run of digits, '-' and spaces that starts with a
//  digit, holds at least 7 digits and is no part of a longer word of letters (ORD-2024-001) nor
//  the order number found (digits only, 11 to 20 by default; but a landline's area code starts
//  with 0: "02112345678" is the phone); spaces dropped, a trailing '-' too. Heap, or NULL.
static char *
s_phone_in_text (const char *text, size_t len, const kf_entities_t *found)
{
    char *value = kf_malloc (len + 1);
    for (size_t i = 0; i < len; ) {
        size_t bytes, j = i, used = 0, digits = 0;
        char c = s_phone_char (text + i, len - i, &bytes);
        if (c < '0' || c > '9' || (i > 0 && s_is_word_char (text [i - 1]))) {
            i += c ? bytes : 1;
            continue;
        }
        while (j < len && (c = s_phone_char (text + j, len - j, &bytes))) {
            if (c != ' ')
                value [used++] = c;
            digits += c >= '0' && c <= '9';
            j += bytes;
        }
        while (used && value [used - 1] == '-')
            used--;
        value [used] = 0;
        s_span_t run = { i, j - i };
        bool is_order = found && found->has_order_no && value [0] != '0'
                     && s_overlaps (&run, found->order_start, found->order_len);
        if (digits >= 7 && !is_order && !(j < len && s_is_word_char (text [j])))
            return value;
        i = j;
    }
    free (value);
    return NULL;
}

//  The value a message gives for the awaited field `name`: the entity (or a phone number written
//  among words), the address clause, or the message itself without outer spaces (heap)
static char *
s_answer_value (const char *name, const char *text, size_t len, const kf_entities_t *found)
{
    if (strcmp (name, "phone") == 0 && found && found->has_phone)
        return kf_strdup (found->phone);
    char *phone;
    if (strcmp (name, "phone") == 0 && (phone = s_phone_in_text (text, len, found)))
        return phone;
    if (strcmp (name, "order_no") == 0 && found && found->has_order_no)
        return kf_strdup (found->order_no);
    char *value;
    if (strcmp (name, "address") == 0 && s_find_address (text, len, found, &value))
        return value;
    while (len && (*text == ' ' || *text == '\n' || *text == '\t'))
        text++, len--;
    while (len && (text [len - 1] == ' ' || text [len - 1] == '\n' || text [len - 1] == '\t'))
        len--;
    if (strcmp (name, "phone") == 0 || strcmp (name, "order_no") == 0) {
        //  A number typed with spaces inside ("0755 8888 1234")
        value = kf_malloc (len + 1);
        size_t used = 0;
        for (size_t i = 0; i < len; i++)
            if (text [i] != ' ')
                value [used++] = text [i];
        value [used] = 0;
        return value;
    }
    return kf_strndup (text, len);
}

//  The short reason a value was refused, in the customer's language
static const char *
s_reason (const kf_ticket_field_t *field, const char *check)
{
    if (strcmp (field->name, "phone") == 0)
        return "抱歉，这个电话号码格式不正确。";
    if (strcmp (field->name, "order_no") == 0)
        return "抱歉，这个订单号格式不正确。";
    if (strcmp (field->name, "address") == 0)
        return "抱歉，地址不够详细。";
    return strstr (check, "short") ? "抱歉，描述太短或太长了。" : "抱歉，没能识别您的回答。";
}

//  The awaited field's answer: set, or asked again
static kf_ticket_step_t
s_fill_awaited (kf_slots_t *slots, const char *text, size_t len, const kf_entities_t *found,
                bool is_other, char **reply)
{
    if (strcmp (slots->awaiting, "type") == 0) {
        const kf_ticket_type_t *type = kf_ticket_type_guess (text, len);
        if (!type) {
            if (is_other)
                return KF_TICKET_SIDE;
            *reply = kf_strdup ("抱歉，没有识别出工单类型。" KF_TICKET_ASK_TYPE);
            return KF_TICKET_ASK;
        }
        snprintf (slots->ticket_type, sizeof slots->ticket_type, "%s", type->type);
        s_fit_type (slots);
        s_take_fields (slots, text, len, found, true);
        return s_next (slots, "", reply);
    }
    const kf_ticket_field_t *field = kf_ticket_field_find (slots->awaiting, strlen (slots->awaiting));
    char *value = s_answer_value (slots->awaiting, text, len, found);
    const char *check = kf_ticket_field_check (field, value, strlen (value));
    if (!check && strcmp (field->name, "address") == 0 && is_other && !s_is_address (value, strlen (value)))
        check = "does not look like an address";
    if (check) {
        free (value);
        if (is_other)
            return KF_TICKET_SIDE;
        const char *reason = s_reason (field, check);
        size_t size = strlen (reason) + strlen (field->prompt) + 1;
        *reply = kf_malloc (size);
        snprintf (*reply, size, "%s%s", reason, field->prompt);
        return KF_TICKET_ASK;
    }
    kf_slots_set_field (slots, field->name, value, strlen (value));
    free (value);
    //  Whatever else the answer holds ("北京市朝阳区建国路88号，电话13800138000")
    s_take_fields (slots, text, len, found, true);
    return s_next (slots, "", reply);
}

kf_ticket_step_t
kf_ticket_dialog_step (kf_slots_t *slots, const char *text, size_t len, const kf_entities_t *found,
                       bool is_other, char **reply)
{
    *reply = NULL;
    if (slots->has_draft && kf_ticket_dialog_is_cancel (text, len)) {
        kf_slots_clear_draft (slots);
        *reply = kf_strdup (KF_TICKET_CANCELLED_REPLY);
        return KF_TICKET_CANCELLED;
    }
    if (slots->has_draft && *slots->awaiting)
        return s_fill_awaited (slots, text, len, found, is_other, reply);
    if (!slots->has_draft) {
        kf_slots_clear_draft (slots);
        slots->has_draft = true;
        const kf_ticket_type_t *type = kf_ticket_type_guess (text, len);
        if (type)
            snprintf (slots->ticket_type, sizeof slots->ticket_type, "%s", type->type);
        s_take_fields (slots, text, len, found, true);
    }
    //  A new draft, or one that lost track of what it asked: ask for what is missing
    char intro [96] = "";
    if (*slots->ticket_type)
        snprintf (intro, sizeof intro, "好的，我来帮您提交%s工单。", slots->ticket_type);
    return s_next (slots, intro, reply);
}

char *
kf_ticket_dialog_reminder (const kf_slots_t *slots)
{
    if (!kf_slots_is_awaiting (slots))
        return NULL;
    const char *prompt = KF_TICKET_ASK_TYPE;
    const kf_ticket_field_t *field = kf_ticket_field_find (slots->awaiting, strlen (slots->awaiting));
    if (field)
        prompt = field->prompt;
    char buffer [512];
    snprintf (buffer, sizeof buffer, "（您的%s工单还未提交，继续填写：%s如不需要了，回复“取消”即可。）",
              slots->ticket_type, prompt);
    return kf_strdup (buffer);
}

void
kf_ticket_dialog_pack (const kf_slots_t *slots, msgpack_packer *pk)
{
    const kf_ticket_type_t *type = kf_ticket_type_find (slots->ticket_type, strlen (slots->ticket_type));
    assert (type);
    msgpack_pack_map (pk, 2);
    kf_mp_pack_kv_str (pk, "type", type->type);
    kf_mp_pack_cstr (pk, "fields");
    int count = 0;
    for (int f = 0; f < type->field_count; f++)
        count += kf_slots_field (slots, type->fields [f]) != NULL;
    msgpack_pack_map (pk, count);
    for (int f = 0; f < type->field_count; f++) {
        const char *value = kf_slots_field (slots, type->fields [f]);
        if (value)
            kf_mp_pack_kv_str (pk, type->fields [f], value);
    }
}
