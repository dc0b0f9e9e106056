/*  dialog_slots.h - the dialog state of a session as the worker keeps it (issue 5): entities
    remembered across turns (order number, phone) and a ticket being collected. The broker stores
    it opaquely (sessions.slots, JSON) and sends it back as the JOB's `context.slots`; the worker
    returns the new state as the result's `slots`. On the wire, a map:

        order_no        str     the last order number the customer gave (absent: none)
        phone           str     the last phone number the customer gave
        ticket_draft    map     {type: str ("" until chosen), fields: {name: str}}: a ticket
                                being collected (absent: none)
        awaiting        str     what the bot asked for last: "type" or a field name of
                                ticket_draft (absent: nothing; then no dialog is in progress)

    Other keys are kept as they came (another stage's state survives this one). Values of the wrong
    type or too long are dropped, so a state edited by hand cannot break a turn. */
#ifndef KF_DIALOG_SLOTS_H
#define KF_DIALOG_SLOTS_H
#include <msgpack.h>
#include <stdbool.h>
#include "common/ticket_types.h"

#define KF_SLOTS_ORDER_MAX 260          //  Bytes of an order number, NUL included
#define KF_SLOTS_PHONE_MAX 24

//  The ticket fields a draft can hold, in this order (common/ticket_types.h)
#define KF_SLOTS_FIELD_COUNT 4
extern const char *const kf_slots_field_names [KF_SLOTS_FIELD_COUNT];   //  address, phone, ...

typedef struct {
    char order_no [KF_SLOTS_ORDER_MAX];     //  "" when none
    char phone [KF_SLOTS_PHONE_MAX];        //  "" when none
    bool has_draft;                         //  A ticket is being collected
    char ticket_type [16];                  //  Its type, "" until chosen
    char *fields [KF_SLOTS_FIELD_COUNT];    //  Its values by kf_slots_field_names, heap or NULL
    char awaiting [16];                     //  "type", a field name, or "" when nothing
    const msgpack_object *others;           //  The map read, for its other keys (borrowed)
} kf_slots_t;

//  Reads `map` (context.slots; NULL or not a map: empty) into `slots`, which borrows `map` for
//  its other keys until packed. Never fails.
void kf_slots_read (kf_slots_t *slots, const msgpack_object *map);

//  Packs `slots` as one map.
void kf_slots_pack (const kf_slots_t *slots, msgpack_packer *pk);

//  The draft's value of field `name`, or NULL (borrowed).
const char *kf_slots_field (const kf_slots_t *slots, const char *name);

//  Sets the draft's field `name` to `value` (`len` bytes, copied); ignored for an unknown name.
void kf_slots_set_field (kf_slots_t *slots, const char *name, const char *value, size_t len);

//  Drops the ticket draft and what was awaited; keeps the entities.
void kf_slots_clear_draft (kf_slots_t *slots);

//  True while a dialog waits for an answer (`awaiting` set).
bool kf_slots_is_awaiting (const kf_slots_t *slots);

//  Frees the draft's values. The slots can be read again afterwards.
void kf_slots_release (kf_slots_t *slots);
#endif
