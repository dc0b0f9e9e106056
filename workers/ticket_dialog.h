/*  ticket_dialog.h - collects a ticket over several turns (issue 5, intent `ticket`). The draft
    lives in the session's slots (dialog_slots.h); each turn this module reads one message, fills
    what it can, and either asks for the next missing field (its kf_ticket_field_t.prompt, and
    `awaiting` names it) or says the ticket is complete (the caller hands it to the broker, which
    creates it). Ticket types and fields: common/ticket_types.h.

    Starting (intent ticket, no draft): the type is guessed from the message (kf_ticket_type_guess)
    or asked for; fields the message already holds are taken: the phone and order number found
    by the entity extractor, an address (a clause with address words: 省 市 区 县 路 街 号 栋 幢
    单元 室 小区 大厦 ... at least two, one of them a street-level word), and a description (the
    message's other clauses, when they say more than "I want a ticket": three characters or more
    besides request words such as 我要 报修 提交 工单).
    Continuing (a draft awaits a field): the message answers it, and any other field it holds is
    taken as at the start. An awaited phone is the mobile the entity extractor found, else a
    landline among the words ("电话是 021-12345678": a run of digits, '-' and spaces with at least
    7 digits, full-width folded, not part of an order number or a latin word), else the message
    without spaces. The value is checked with
    kf_ticket_field_check (a phone must be a phone, an address must look like one); a bad value is
    asked again with a short reason, unless the message is plainly something else (the caller says
    so: another confident intent), in which case the draft waits while the caller answers that
    (KF_TICKET_SIDE) and reminds the customer (kf_ticket_dialog_reminder). Short messages with
    取消 / 算了 / 不用了 / 不要了 cancel the draft.

    Replies are heap strings the caller frees. No state outside the slots; thread-safe. */
#ifndef KF_TICKET_DIALOG_H
#define KF_TICKET_DIALOG_H
#include <stdbool.h>
#include <stddef.h>
#include "workers/dialog_slots.h"
#include "workers/entities.h"

#define KF_TICKET_ASK_TYPE "请问您要提交哪类工单：报修、投诉、售后还是咨询？"
#define KF_TICKET_CANCELLED_REPLY "好的，已为您取消本次工单的填写。还有其他问题随时问我。"

typedef enum {
    KF_TICKET_ASK = 0,          //  *reply asks for the field `awaiting` names
    KF_TICKET_COMPLETE,         //  Every field is in the draft; no reply
    KF_TICKET_CANCELLED,        //  The draft is gone; *reply says so
    KF_TICKET_SIDE              //  Awaiting, but the message is another request: no reply, the
                                //  draft is unchanged
} kf_ticket_step_t;

//  Runs one turn of the dialog over `slots` with message `text` (`len` bytes of UTF-8) and the
//  entities found in it (`found`, may be NULL). Starts a draft when there is none. `is_other` is
//  true when the message is confidently another request (see above). Sets *reply (heap) for ASK
//  and CANCELLED, NULL otherwise.
kf_ticket_step_t kf_ticket_dialog_step (kf_slots_t *slots, const char *text, size_t len,
                                        const kf_entities_t *found, bool is_other, char **reply);

//  True when `text` (`len` bytes) cancels a draft: a short message with a cancel word.
bool kf_ticket_dialog_is_cancel (const char *text, size_t len);

//  A reminder of what the draft still waits for, to put after another answer (heap), or NULL when
//  nothing is awaited.
char *kf_ticket_dialog_reminder (const kf_slots_t *slots);

//  Packs the complete draft as the result's `ticket`: {type, fields: {name: value}} (the fields
//  its type needs).
void kf_ticket_dialog_pack (const kf_slots_t *slots, msgpack_packer *pk);
#endif
