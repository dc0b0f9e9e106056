/*  ticket_types.h - the kinds of ticket a customer can open in a chat (issue 5, intent `ticket`) and
    the fields each needs. The worker collects the fields over several turns (asking for what is
    missing with each field's prompt); the broker checks them again when it creates the ticket, from
    a chat or from intent.execute. Built in, the same on every host:

        type    label   fields (in the order they are asked for)
        报修    报修     address, phone, description
        投诉    投诉     phone, description
        售后    售后     order_no, phone, description
        咨询    咨询     phone, description

    Field values are UTF-8 text: `phone` a mainland mobile number (11 digits, 1[3-9]...) or a landline
    (digits and at most two '-', 7 to 20 characters); `order_no` 4 to 64 characters of letters,
    digits, '-' and '_'; `address` 4 to 200 characters; `description` 2 to 1000 characters. The
    field `type` is the ticket's type itself. No allocation; thread-safe. */
#ifndef KF_TICKET_TYPES_H
#define KF_TICKET_TYPES_H
#include <stdbool.h>
#include <stddef.h>

#define KF_TICKET_FIELDS_MAX 4

typedef struct {
    const char *name;           //  address, phone, description, order_no
    const char *label;          //  Chinese label, the form_show card's row key: 地址, 联系电话 ...
    const char *prompt;         //  What the bot asks when it is missing
    int min_chars, max_chars;   //  Length limits in characters
} kf_ticket_field_t;

typedef struct {
    const char *type;           //  报修, 投诉, 售后, 咨询
    const char *description;    //  One line for people and prompts
    const char *const *keywords;    //  Words in a message that choose this type (NULL-terminated)
    const char *fields [KF_TICKET_FIELDS_MAX];  //  Field names, in asking order
    int field_count;
} kf_ticket_type_t;

//  Number of ticket types; the type at `index` (NULL when out of range).
int kf_ticket_type_count (void);
const kf_ticket_type_t *kf_ticket_type_at (int index);

//  The type named `name` (`len` bytes), or NULL.
const kf_ticket_type_t *kf_ticket_type_find (const char *name, size_t len);

//  The type whose keywords occur first in `text` (`len` bytes), or NULL when none does.
const kf_ticket_type_t *kf_ticket_type_guess (const char *text, size_t len);

//  The field named `name` (`len` bytes), or NULL. "type" is not a field of this table.
const kf_ticket_field_t *kf_ticket_field_find (const char *name, size_t len);

//  True when `type` needs the field `name`.
bool kf_ticket_type_needs (const kf_ticket_type_t *type, const char *name);

//  Checks one value of field `field`: NULL when it is acceptable, else a static English reason
//  ("must be a mobile or landline number" ...). `value` is UTF-8 of `len` bytes.
const char *kf_ticket_field_check (const kf_ticket_field_t *field, const char *value, size_t len);
#endif
