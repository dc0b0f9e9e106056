/*  tickets.h - tickets customers open (issue 5, intent `ticket`): created from a chat answer whose
    worker result carries `ticket` {type, fields}, or by intent.execute; listed by tickets.query.
    Stored in the `tickets` table (schemas/009_intents.sql); fields are checked against
    common/ticket_types.h. A ticket number is "T" + yyyymmdd in China time (UTC+8) + the row id
    zero-padded to 6 digits ("T20261121000001"): the broker is the only writer, so it knows the id
    before the insert. Writes go into the store's open batch (committed at the end of the loop
    iteration, like every broker write). */
#ifndef KF_TICKETS_H
#define KF_TICKETS_H
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include "broker/broker.h"
#include "common/ticket_types.h"

#define KF_TICKET_NO_MAX 32     //  "T" + 8 digits + the id (6 digits or more) + NUL

//  What a chat answer that created a ticket sends back instead of the worker's empty reply.
typedef struct {
    char *reply;                //  Chinese confirmation text, owned (the answer's text)
    msgpack_sbuffer content;    //  Packed form_show response_content (PROTOCOL.md 12.4.5)
    msgpack_sbuffer ticket;     //  Packed ticket map, as tickets.query lists it: {id, ticket_no,
                                //  bot_id, type, fields, status, source, session_id, user_id,
                                //  message_id, created_at, updated_at}
} kf_ticket_made_t;

//  Creates the ticket a worker result asked for: `ticket` is the result's {type, fields} map,
//  `message_id` the answer that carries it (0: none). Checks the type and every field it needs
//  (unknown fields refused), stores the row (source "chat", the session's bot and user) and fills
//  `made` (initialise nothing: this does; free it with kf_ticket_made_free). Returns 0, or -1 with
//  `err` set (400 invalid_param for a bad type or field, 500 when the write failed) and `made` left
//  empty (safe to free).
int kf_tickets_from_chat (kf_broker_t *self, kf_session_t *session, int64_t message_id,
                          const msgpack_object *ticket, kf_ticket_made_t *made, kf_error_t *err);

//  Frees what `made` holds; safe on an emptied or already freed one.
void kf_ticket_made_free (kf_ticket_made_t *made);

//  Where a ticket comes from. Pointers borrowed for the call.
typedef struct {
    const char *bot_id;         //  The bot it belongs to
    const char *session_id;     //  NULL: none (intent.execute without a session)
    const char *user_id;        //  "" when unknown
    int64_t message_id;         //  The answer that created it, 0: none
    const char *source;         //  "chat" or "execute"
} kf_ticket_origin_t;

//  Creates a ticket of type `type` (`type_len` bytes) with the fields of the map `fields` (see
//  kf_tickets_check; `where` names the map in messages: "params.params", "ticket.fields"), stored
//  in the open batch with status "open". Fills `made` as kf_tickets_from_chat does. Returns 0, or
//  -1 with `err` set and `made` empty.
int kf_tickets_create (kf_store_t *store, const kf_ticket_origin_t *origin, const char *type,
                       size_t type_len, const msgpack_object *fields, const char *where,
                       kf_ticket_made_t *made, kf_error_t *err);

//  Checks a ticket's type and fields: `fields` a map of field name -> string. Every field the type
//  needs must be present (missing_argument) and pass its checks after trimming spaces (too_large
//  over its length, invalid_param under it or badly formed, invalid_utf8); any other key is refused
//  (invalid_param), except "type", which must then equal `type`. Returns the type, or NULL with
//  `err` set. `where` names the map in messages.
const kf_ticket_type_t *kf_tickets_check (const char *type, size_t type_len,
                                          const msgpack_object *fields, const char *where,
                                          kf_error_t *err);

//  The ticket number of row `id` created at `created_ms` (Unix ms), in China time, into `out`
//  (at least KF_TICKET_NO_MAX bytes). Returns `out`.
char *kf_ticket_no_format (int64_t id, int64_t created_ms, char *out);

//  "2026-11-21 15:30:00" for `created_ms` (Unix ms) in China time, into `out` (at least 20 bytes).
//  Returns `out`.
char *kf_ticket_time_format (int64_t created_ms, char *out);

//  The Chinese label of a ticket status: open 待处理, processing 处理中, closed 已关闭 (else the
//  status itself).
const char *kf_ticket_status_label (const char *status);

//  What tickets.query filters on: each string NULL for "any" (not NUL-terminated: with its length).
typedef struct {
    const char *bot_id, *session_id, *user_id, *ticket_no, *type, *status;
    size_t bot_len, session_len, user_len, ticket_no_len, type_len, status_len;
    int64_t page, page_size;
} kf_ticket_filter_t;

//  Packs {data: [ticket...], total, page, page_size, has_more}, newest first. A ticket is {id,
//  ticket_no, bot_id, type, fields, status, source, session_id (nil: none), user_id, message_id
//  (nil: none), created_at, updated_at}. Returns 0, or -1 with nothing packed.
int kf_tickets_query_pack (kf_store_t *store, const kf_ticket_filter_t *filter, msgpack_packer *pk);

//  The id of the ticket numbered `ticket_no` (`len` bytes): 0 when there is none, -1 on error.
int64_t kf_tickets_find_id (kf_store_t *store, const char *ticket_no, size_t len);

//  Sets the status (open, processing, closed) of ticket `id` (or, when `ticket_no` is not NULL,
//  the ticket of that number) and packs the ticket. Returns 1, 0 when there is no such ticket
//  (nothing packed), -1 on a database error.
int kf_tickets_set_status (kf_store_t *store, int64_t id, const char *ticket_no, size_t no_len,
                           const char *status, msgpack_packer *pk);
#endif
