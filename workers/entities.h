/*  entities.h - the entities a business_query turn needs, found in a customer's message: an order
    number (by the bot's order_pattern, config.h) and a mainland mobile phone number. Full-width
    letters, digits and punctuation (ＯＲＤ－２０２４－００１) and the other dashes (－ – — −) are folded
    to ASCII first; spans point into the original text. The caller keeps them across turns (the
    session's slots): this module only reads one message. */
#ifndef KF_ENTITIES_H
#define KF_ENTITIES_H
#include <stdbool.h>
#include <stddef.h>

#define KF_ENTITY_VALUE_MAX 64  //  Bytes of a value with its NUL; a longer order number is skipped

//  How to find them. Borrowed.
typedef struct {
    const char *order_pattern;  //  POSIX ERE, matched ignoring case (kf_bot_llm_t.order_pattern);
                                //  NULL: KF_CONFIG_DEFAULT_ORDER_PATTERN
} kf_entity_rules_t;

//  What one message holds: the first order number and the first phone number.
typedef struct {
    bool has_order_no;
    char order_no [KF_ENTITY_VALUE_MAX];    //  ASCII, letters upper-cased; "" when none
    size_t order_start, order_len;          //  Its bytes in the original text
    bool has_phone;
    char phone [16];                        //  11 digits, without +86 or separators; "" when none
    size_t phone_start, phone_len;          //  Its bytes in the original text
} kf_entities_t;

//  Finds the entities of `text` (`len` bytes of UTF-8; invalid bytes are kept as they are) into
//  `out`. An order-number match must not continue a longer run of letters or digits on either
//  side (so 25 digits are no 20-digit order number), and digits that form a phone number are a
//  phone number, not an order number. Phone numbers: 1[3-9] and 9 more digits, not inside a longer
//  run of digits; also written +86 13812345678, +8613812345678, 138-1234-5678 and 138 1234 5678.
//  Patterns are compiled once and cached (for any thread). Returns how many entities were found
//  (0..2), or -1 when the pattern does not compile (then only the phone is looked for; config.c
//  checks patterns at load, so this is a programmer's mistake).
int kf_entities_extract (const kf_entity_rules_t *rules, const char *text, size_t len,
                         kf_entities_t *out);
#endif
