/*  escalations.h - the record of conversations handed to people (issue 5, PROTOCOL.md 13): one
    row per handoff in the `escalations` table with the escalation card as it was published, its
    status (pending, assigned, resolved, closed), the agent and the times; the cards themselves
    (session, customer profile, reason, the last turns), the agent's messages stored as turns, and
    the paged list agents read. Keeps its own statements on the broker's connection; writes join
    the store's open batch like every broker write. The broker is the only writer, so ids are
    allocated in memory (never reused, a rolled-back batch leaves a gap) and the card can carry its
    own id. The state machine around these rows is handoff.c's. */
#ifndef KF_ESCALATIONS_H
#define KF_ESCALATIONS_H
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "broker/sessions.h"
#include "broker/store.h"

#define KF_AGENT_ID_MAX 64      //  Characters of an agent id

typedef struct _kf_escalations_t kf_escalations_t;

//  What an escalation is made from. Pointers are borrowed for the call.
typedef struct {
    kf_session_t *session;      //  Id, bot, channel, user, counters and the recent-turn ring
    int reason;                 //  1 asked, 2 keyword, 3 no answer, 4 emotion, 5 repeated
    const char *intent;         //  Intent of the turn that escalated, NULL: none
    double emotion_score;       //  Of that turn's message, < 0: none
    const char *reason_text;    //  The customer's words (handoff.request), NULL: none
    size_t reason_text_len;
    int64_t created_at;         //  Unix ms
} kf_escalation_in_t;

//  One stored escalation's state (kf_escalations_get).
typedef struct {
    int64_t id;
    char session_id [32];
    char status [16];           //  pending, assigned, resolved, closed
    char agent_id [KF_AGENT_ID_MAX * 4 + 1];   //  "" when none
    int reason;
} kf_escalation_row_t;

//  Prepares the statements on `store` (borrowed). NULL (logged) on failure.
kf_escalations_t *kf_escalations_new (kf_store_t *store);

//  Frees the statements; nulls *self_p.
void kf_escalations_destroy (kf_escalations_t **self_p);

//  The name of a reason: "user_request", "keyword", "failed_attempts", "negative_emotion",
//  "repeated_question"; "unknown" for anything else.
const char *kf_escalation_reason_name (int reason);

//  Stores a new pending escalation and packs its card into `card` (initialised by the caller):
//  {escalation_id, session_id, bot_id, channel, user {user_id, name, email, mobile, photo_url},
//  reason, reason_name, reason_text, intent, emotion_score, failed_attempts, turn_count,
//  summary [{role, content}] (the session's recent turns, oldest first), created_at, status}.
//  Returns the new id, or -1 when the write failed (`card` then holds nothing useful).
int64_t kf_escalations_create (kf_escalations_t *self, const kf_escalation_in_t *in,
                               msgpack_sbuffer *card);

//  Reads escalation `id`. Returns 1 and fills `row`, 0 when it does not exist, -1 on error.
int kf_escalations_get (kf_escalations_t *self, int64_t id, kf_escalation_row_t *row);

//  Marks escalation `id` assigned to `agent_id` at `at`. Returns 0 or -1.
int kf_escalations_assign (kf_escalations_t *self, int64_t id, const char *agent_id, size_t len,
                           int64_t at);

//  Ends escalation `id` with `status` ("resolved" or "closed") at `at`, with the agent who did it
//  (NULL keeps the stored one) and a note (NULL: none). Returns 0 or -1.
int kf_escalations_finish (kf_escalations_t *self, int64_t id, const char *status,
                           const char *agent_id, size_t agent_len, const char *note,
                           size_t note_len, int64_t at);

//  The reason of the session's latest escalation (any status): 1-5, 0 when it has none, -1 on error.
int kf_escalations_latest_reason (kf_escalations_t *self, const char *session_id);

//  Packs the entry of escalation `id`: its card with status, agent_id, assigned_at, resolved_at
//  and note as they are now. Returns 1, 0 when it does not exist, -1 on error (nothing packed).
int kf_escalations_pack (kf_escalations_t *self, int64_t id, msgpack_packer *pk);

//  Filters of kf_escalations_list_pack: NULL / 0 length means any.
typedef struct {
    const char *status, *session_id, *bot_id, *agent_id;
    size_t status_len, session_id_len, bot_id_len, agent_id_len;
    int64_t page, page_size;    //  From 1; 1..100
} kf_escalation_filter_t;

//  Packs the paged result {data: [entries], total, page, page_size, has_more}, newest first,
//  leaving out escalations of deleted conversations. Returns 0 or -1 (nothing packed).
int kf_escalations_list_pack (kf_escalations_t *self, const kf_escalation_filter_t *filter,
                              msgpack_packer *pk);

//  Calls `fn` for up to 100 open (pending or assigned) escalations whose session is closed, deleted
//  or gone, so the caller can close them. Returns how many (a read error counts as none found).
typedef void (kf_escalation_fn) (void *arg, int64_t id, const char *session_id);
int kf_escalations_stale (kf_escalations_t *self, kf_escalation_fn *fn, void *arg);

//  An agent's message, stored as a turn (role "agent", status ok, sender_id the agent).
//  `response_content` is a map or NULL. Returns 0 or -1.
typedef struct {
    int64_t id;                 //  Message id from kf_store_next_message_id
    const char *session_id;
    const char *agent_id;
    size_t agent_len;
    const char *content;
    size_t content_len;
    const char *response_type;  //  "text" or a rich type (PROTOCOL.md 12.4)
    const msgpack_object *response_content;
    int64_t created_at;
} kf_agent_turn_t;
int kf_escalations_agent_turn (kf_escalations_t *self, const kf_agent_turn_t *turn);

//  Packs stats.handoff: {pending, assigned (escalations in each state now; -1 when unreadable),
//  escalated {user_request, keyword, failed_attempts, negative_emotion, repeated_question},
//  resolved, closed, agent_replies (counts since the broker started)}.
void kf_escalations_stats_pack (kf_escalations_t *self, msgpack_packer *pk);
#endif
