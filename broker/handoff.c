/*  handoff.c - the bot/people state machine of a session and its topic events (handoff.h). */
#include "broker/handoff.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mpack.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --- Events -----------------------------------------------------------------------------------

//  Starts an event map of `pairs` pairs after {event: name}
static msgpack_packer *
s_event_begin (kf_result_t *event, const char *name, uint32_t pairs)
{
    kf_result_init (event);
    msgpack_pack_map (&event->pk, pairs + 1);
    kf_mp_pack_kv_str (&event->pk, "event", name);
    return &event->pk;
}

//  Queues the event on `topic` (sent after the commit) and frees it
static void
s_event_send (kf_broker_t *self, kf_result_t *event, const char *topic)
{
    kf_stream_hub_notify (self->hub, topic, strlen (topic), event->buffer.data, event->buffer.size);
    msgpack_sbuffer_destroy (&event->buffer);
}

static void
s_send_to_session (kf_broker_t *self, kf_result_t *event, const kf_session_t *session)
{
    char topic [64];
    snprintf (topic, sizeof topic, "%s%s", KF_TOPIC_SESSION, session->id);
    s_event_send (self, event, topic);
}

//  {event: "handoff", state, session_id, escalation_id, agent_id, at} on the session's topic
static void
s_publish_state (kf_broker_t *self, const kf_session_t *session, const char *state,
                 int64_t escalation_id, const char *agent_id, int64_t at)
{
    kf_result_t event;
    msgpack_packer *pk = s_event_begin (&event, "handoff", 5);
    kf_mp_pack_kv_str (pk, "state", state);
    kf_mp_pack_kv_str (pk, "session_id", session->id);
    kf_mp_pack_kv_int (pk, "escalation_id", escalation_id);
    kf_mp_pack_kv_str (pk, "agent_id", agent_id);
    kf_mp_pack_kv_int (pk, "at", at);
    s_send_to_session (self, &event, session);
}

//  {event: name, escalation_id, session_id, agent_id, at_key: at} on agent.escalations
static void
s_publish_desk (kf_broker_t *self, const char *name, int64_t escalation_id, const char *session_id,
                const char *agent_id, const char *at_key, int64_t at)
{
    kf_result_t event;
    msgpack_packer *pk = s_event_begin (&event, name, 4);
    kf_mp_pack_kv_int (pk, "escalation_id", escalation_id);
    kf_mp_pack_kv_str (pk, "session_id", session_id);
    kf_mp_pack_kv_str (pk, "agent_id", agent_id);
    kf_mp_pack_kv_int (pk, at_key, at);
    s_event_send (self, &event, KF_TOPIC_ESCALATIONS);
}

//  --- Transitions ------------------------------------------------------------------------------

int64_t
kf_handoff_escalate (kf_broker_t *self, const kf_escalation_in_t *in, msgpack_sbuffer *card,
                     kf_error_t *err)
{
    kf_session_t *session = in->session;
    if (session->handoff != KF_HANDOFF_BOT) {
        kf_error_set (err, KF_E_CONFLICT, "session %s is already with people (%s, escalation %lld)",
                      session->id, kf_handoff_name (session->handoff),
                      (long long) session->escalation_id);
        return -1;
    }
    int64_t id = kf_escalations_create (self->escalations, in, card);
    if (id < 0) {
        kf_error_set (err, KF_E_INTERNAL, "could not store the escalation");
        return -1;
    }
    kf_session_set_handoff (session, KF_HANDOFF_PENDING, id, NULL, 0);
    session->updated_at = in->created_at;
    if (kf_sessions_save (self->sessions, session, NULL)) {
        kf_error_set (err, KF_E_INTERNAL, "could not store the session's state");
        return -1;
    }
    msgpack_unpacked unpacked;
    if (kf_mp_unpack_one (card->data, card->size, &unpacked)) {
        const msgpack_object_map *map = &unpacked.data.via.map;
        kf_result_t event;
        msgpack_packer *pk = s_event_begin (&event, "escalation", map->size);
        for (uint32_t i = 0; i < map->size; i++) {
            msgpack_pack_object (pk, map->ptr [i].key);
            msgpack_pack_object (pk, map->ptr [i].val);
        }
        s_event_send (self, &event, KF_TOPIC_ESCALATIONS);
        msgpack_unpacked_destroy (&unpacked);
    }
    s_publish_state (self, session, "pending", id, NULL, in->created_at);
    kf_info ("session %s: handed to people (escalation %lld, %s)", session->id, (long long) id,
             kf_escalation_reason_name (in->reason));
    return id;
}

int
kf_handoff_assign (kf_broker_t *self, kf_session_t *session, const char *agent_id, size_t len,
                   kf_error_t *err)
{
    if (session->handoff == KF_HANDOFF_BOT)
        return kf_error_set (err, KF_E_CONFLICT, "session %s is with the bot: nothing to assign",
                             session->id);
    const char *previous = session->agent_id;
    if (previous && strlen (previous) == len && memcmp (previous, agent_id, len) == 0)
        return 0;
    int64_t now = kf_now_ms ();
    char *previous_copy = previous ? kf_strdup (previous) : NULL;
    kf_session_set_handoff (session, KF_HANDOFF_ASSIGNED, session->escalation_id, agent_id, len);
    session->updated_at = now;      //  Being worked on: not idle
    int rc = kf_escalations_assign (self->escalations, session->escalation_id, agent_id, len, now)
          || kf_sessions_save (self->sessions, session, NULL);
    if (rc == 0) {
        s_publish_state (self, session, "assigned", session->escalation_id, session->agent_id, now);
        kf_result_t event;
        msgpack_packer *pk = s_event_begin (&event, "assigned", 5);
        kf_mp_pack_kv_int (pk, "escalation_id", session->escalation_id);
        kf_mp_pack_kv_str (pk, "session_id", session->id);
        kf_mp_pack_kv_str (pk, "agent_id", session->agent_id);
        kf_mp_pack_kv_str (pk, "previous_agent_id", previous_copy);
        kf_mp_pack_kv_int (pk, "assigned_at", now);
        s_event_send (self, &event, KF_TOPIC_ESCALATIONS);
    }
    free (previous_copy);
    return rc ? kf_error_set (err, KF_E_INTERNAL, "could not store the assignment") : 0;
}

int
kf_handoff_resolve (kf_broker_t *self, kf_session_t *session, const char *agent_id, size_t len,
                    const char *note, size_t note_len, kf_error_t *err)
{
    if (session->handoff == KF_HANDOFF_BOT)
        return kf_error_set (err, KF_E_CONFLICT, "session %s is with the bot: nothing to resolve",
                             session->id);
    const char *assigned = session->agent_id;
    if (assigned && (strlen (assigned) != len || memcmp (assigned, agent_id, len) != 0))
        return kf_error_set (err, KF_E_CONFLICT, "session %s is assigned to agent %s", session->id,
                             assigned);
    int64_t now = kf_now_ms ();
    int64_t escalation_id = session->escalation_id;
    kf_session_set_handoff (session, KF_HANDOFF_BOT, 0, NULL, 0);
    session->failed_attempts = 0;
    kf_session_reset_repeat (session);
    session->updated_at = now;
    if (kf_escalations_finish (self->escalations, escalation_id, "resolved", agent_id, len, note,
                               note_len, now)
    ||  kf_sessions_save (self->sessions, session, NULL))
        return kf_error_set (err, KF_E_INTERNAL, "could not store the resolution");
    char agent [KF_AGENT_ID_MAX * 4 + 1];
    snprintf (agent, sizeof agent, "%.*s", (int) len, agent_id);
    s_publish_state (self, session, "resolved", escalation_id, agent, now);
    s_publish_desk (self, "resolved", escalation_id, session->id, agent, "resolved_at", now);
    kf_info ("session %s: back with the bot (escalation %lld resolved)", session->id,
             (long long) escalation_id);
    return 0;
}

void
kf_handoff_close (kf_broker_t *self, kf_session_t *session, int64_t at)
{
    if (session->handoff == KF_HANDOFF_BOT)
        return;
    int64_t escalation_id = session->escalation_id;
    char *agent = session->agent_id ? kf_strdup (session->agent_id) : NULL;
    kf_session_set_handoff (session, KF_HANDOFF_BOT, 0, NULL, 0);
    kf_escalations_finish (self->escalations, escalation_id, "closed", NULL, 0, NULL, 0, at);
    kf_sessions_save (self->sessions, session, NULL);
    s_publish_state (self, session, "closed", escalation_id, agent, at);
    s_publish_desk (self, "closed", escalation_id, session->id, agent, "closed_at", at);
    free (agent);
}

static void
s_close_stale (void *arg, int64_t id, const char *session_id)
{
    kf_broker_t *self = arg;
    kf_session_t *session = kf_sessions_get (self->sessions, session_id, strlen (session_id));
    int64_t now = kf_now_ms ();
    if (session && session->escalation_id == id)
        kf_handoff_close (self, session, now);
    else {
        //  Deleted or purged conversation (or a row the session no longer points at)
        kf_escalations_finish (self->escalations, id, "closed", NULL, 0, NULL, 0, now);
        s_publish_desk (self, "closed", id, session_id, NULL, "closed_at", now);
    }
}

void
kf_handoff_sweep (kf_broker_t *self)
{
    int closed = kf_escalations_stale (self->escalations, s_close_stale, self);
    if (closed > 0)
        kf_info ("closed %d escalations of ended conversations", closed);
}

//  --- Messages ---------------------------------------------------------------------------------

void
kf_handoff_user_message (kf_broker_t *self, kf_session_t *session, int64_t message_id,
                         const char *content, size_t len, double emotion_score, int64_t at)
{
    kf_result_t event;
    msgpack_packer *pk = s_event_begin (&event, "user_message", 7);
    kf_mp_pack_kv_str (pk, "session_id", session->id);
    kf_mp_pack_kv_int (pk, "escalation_id", session->escalation_id);
    kf_mp_pack_kv_str (pk, "agent_id", session->agent_id);
    kf_mp_pack_kv_int (pk, "message_id", message_id);
    kf_mp_pack_cstr (pk, "content");
    kf_mp_pack_str (pk, content, len);
    kf_mp_pack_kv_double (pk, "emotion_score", emotion_score);
    kf_mp_pack_kv_int (pk, "created_at", at);
    s_event_send (self, &event, KF_TOPIC_MESSAGES);
}

void
kf_handoff_agent_message (kf_broker_t *self, kf_session_t *session, const kf_agent_turn_t *turn)
{
    kf_result_t event;
    msgpack_packer *pk = s_event_begin (&event, "agent_message", 8);
    kf_mp_pack_kv_str (pk, "session_id", session->id);
    kf_mp_pack_kv_int (pk, "escalation_id", session->escalation_id);
    kf_mp_pack_kv_int (pk, "message_id", turn->id);
    kf_mp_pack_cstr (pk, "agent_id");
    kf_mp_pack_str (pk, turn->agent_id, turn->agent_len);
    kf_mp_pack_cstr (pk, "content");
    kf_mp_pack_str (pk, turn->content, turn->content_len);
    kf_mp_pack_kv_str (pk, "response_type", turn->response_type);
    kf_mp_pack_cstr (pk, "response_content");
    if (turn->response_content)
        msgpack_pack_object (pk, *turn->response_content);
    else
        msgpack_pack_nil (pk);
    kf_mp_pack_kv_int (pk, "created_at", turn->created_at);
    s_send_to_session (self, &event, session);
}

bool
kf_handoff_is_topic (const char *id, size_t len)
{
    const char *prefixes [] = { KF_TOPIC_AGENT, KF_TOPIC_SESSION };
    for (int i = 0; i < 2; i++)
        if (len >= strlen (prefixes [i]) && memcmp (id, prefixes [i], strlen (prefixes [i])) == 0)
            return true;
    return false;
}
