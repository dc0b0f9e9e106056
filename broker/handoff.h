/*  handoff.h - who answers a session, the bot or people (issue 5, PROTOCOL.md 13), and the topic
    events that tell agents and customers. The state machine:

        bot ──escalate──▶ pending ──assign──▶ assigned ──assign (another agent)──▶ assigned
         ▲                   │                    │
         └────resolve────────┴────────────────────┘      (session closed or deleted: closed)

    Each transition changes the session (cache and database, in the open batch), the escalation
    row (escalations.h) and queues its events, which leave after the commit like every reply:
    `agent.escalations` (new, assigned, resolved, closed), `agent.messages` (what customers write
    while people have their session) and `session.<session_id>` (what the customer's window sees:
    agent messages and state changes). Topic events carry no seq and are not retained: the ids in
    them and history / escalations.list are the repair path. */
#ifndef KF_HANDOFF_H
#define KF_HANDOFF_H
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include "broker/broker.h"
#include "broker/escalations.h"

#define KF_TOPIC_AGENT          "agent."        //  The prefix of the two below
#define KF_TOPIC_ESCALATIONS    KF_TOPIC_AGENT "escalations"
#define KF_TOPIC_MESSAGES       KF_TOPIC_AGENT "messages"
#define KF_TOPIC_SESSION        "session."      //  + session id

//  Whether a client's stream id (its topic) is one of the handoff's topics
bool kf_handoff_is_topic (const char *id, size_t len);

//  Hands `in->session` (with the bot, not closed) to people: stores the escalation, sets the session
//  pending, publishes {event: "escalation", card...} on agent.escalations and {event: "handoff",
//  state: "pending"} on the session's topic. Packs the card into `card` (initialised by the
//  caller). Returns the escalation id, or -1 with `err` set (409 conflict when people have the
//  session already, 500 when the write failed).
int64_t kf_handoff_escalate (kf_broker_t *self, const kf_escalation_in_t *in, msgpack_sbuffer *card,
                             kf_error_t *err);

//  Gives the session people have (pending, or assigned to someone else) to `agent_id`. Assigning
//  it to the agent who has it changes nothing. Publishes {event: "handoff", state: "assigned"} on
//  the session's topic and {event: "assigned"} on agent.escalations. Returns 0, or -1 with `err`
//  set (409 conflict when the bot has the session, 500).
int kf_handoff_assign (kf_broker_t *self, kf_session_t *session, const char *agent_id, size_t len,
                       kf_error_t *err);

//  Gives the session back to the bot: the escalation is resolved by `agent_id` (who must be the
//  assigned agent, or anyone while pending) with `note` (NULL: none); failed_attempts and repeats
//  start again. Publishes {event: "handoff", state: "resolved"} on the session's topic and
//  {event: "resolved"} on agent.escalations. Returns 0, or -1 with `err` set (409 conflict: the
//  bot has the session, or another agent; 500).
int kf_handoff_resolve (kf_broker_t *self, kf_session_t *session, const char *agent_id, size_t len,
                        const char *note, size_t note_len, kf_error_t *err);

//  The session is closing or being deleted: its open escalation (if any) becomes "closed", the
//  session goes back to the bot's state, {event: "closed"} goes to agent.escalations and
//  {event: "handoff", state: "closed"} to the session's topic. Nothing when the bot has it.
void kf_handoff_close (kf_broker_t *self, kf_session_t *session, int64_t at);

//  Closes the open escalations of sessions closed or deleted behind the cache's back (the idle
//  sweep, purges): kf_handoff_close for each. Called with the idle sweep.
void kf_handoff_sweep (kf_broker_t *self);

//  Publishes a customer message of a session people have on agent.messages: {event:
//  "user_message", session_id, escalation_id, agent_id (nil while pending), message_id, content,
//  emotion_score, created_at}.
void kf_handoff_user_message (kf_broker_t *self, kf_session_t *session, int64_t message_id,
                              const char *content, size_t len, double emotion_score, int64_t at);

//  Publishes an agent's message on the session's topic: {event: "agent_message", session_id,
//  escalation_id, message_id, agent_id, content, response_type, response_content, created_at}.
void kf_handoff_agent_message (kf_broker_t *self, kf_session_t *session, const kf_agent_turn_t *turn);

//  Client methods (agent_methods.c): handoff.request, agent.assign, agent.reply, agent.resolve,
//  escalations.list.
kf_method_fn kf_method_handoff_request;
kf_method_fn kf_method_agent_assign;
kf_method_fn kf_method_agent_reply;
kf_method_fn kf_method_agent_resolve;
kf_method_fn kf_method_escalations_list;
#endif
