/*  chat_results.c - the answer of a chat job (chat_jobs.c has the rest of its life): the
    worker's meta and token events relayed on the job's stream, its FINAL turned into the stored
    answer, the session update, the done event and the chat reply; the same answer made from the
    hot-answer cache without a worker, and the stopped answer the broker ends a job with for
    chat.stop. The job struct and the helpers shared with chat_jobs.c are in
    chat_jobs_private.h. */
#include "broker/chat_jobs_private.h"
#include "broker/answer_cache.h"
#include "broker/handoff.h"
#include "broker/stop_method.h"
#include "broker/tickets.h"
#include "common/clock.h"
#include "common/emotion.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/text_norm.h"
#include "common/utf8.h"
#include "common/worker_proto.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --- Events -----------------------------------------------------------------------------------

int64_t
kf_cj_publish (kf_broker_t *self, kf_job_t *job, const char *event, int count,
               kf_cj_fields_fn *fields, void *arg, bool is_last)
{
    int64_t seq = kf_stream_next_seq (job->stream);
    kf_stream_hub_set_batch (self->hub, kf_store_batch (self->store));
    //  The broker's scratch buffer: the hub copies the event, so the buffer is reused for the next
    //  (a fresh sbuffer took an 8 KiB allocation per token)
    msgpack_sbuffer *buffer = &self->event_buffer;
    msgpack_sbuffer_clear (buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2 + count);
    kf_mp_pack_kv_int (&pk, "seq", seq);
    kf_mp_pack_kv_str (&pk, "event", event);
    if (fields)
        fields (&pk, arg);
    kf_stream_publish (self->hub, job->stream, buffer->data, buffer->size, is_last);
    if (buffer->alloc > 1 << 20) {
        msgpack_sbuffer_destroy (buffer);   //  A huge done event: do not keep its memory
        msgpack_sbuffer_init (buffer);
    }
    if (is_last)
        job->stream = NULL;
    return seq;
}

typedef struct {
    kf_job_t *job;
    const msgpack_object *event;
    bool is_meta;
} s_event_ctx_t;

//  Keys of an event that only the broker sets: a worker's copies of them are dropped
static bool
s_is_broker_key (const msgpack_object *key)
{
    return kf_mp_str_eq_key (key, "event") || kf_mp_str_eq_key (key, "seq")
        || kf_mp_str_eq_key (key, "session_id") || kf_mp_str_eq_key (key, "message_id");
}

//  Copies the worker's event fields, adding session_id and message_id to meta
static void
s_pack_event_fields (msgpack_packer *pk, void *arg)
{
    s_event_ctx_t *ctx = arg;
    if (ctx->is_meta) {
        kf_mp_pack_kv_str (pk, "session_id", ctx->job->session->id);
        kf_mp_pack_kv_int (pk, "message_id", ctx->job->message_id);
    }
    const msgpack_object_map *map = &ctx->event->via.map;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *key = &map->ptr [i].key;
        if (s_is_broker_key (key))
            continue;
        msgpack_pack_object (pk, *key);
        msgpack_pack_object (pk, map->ptr [i].val);
    }
}

//  Relays one worker event of `job` (PROTOCOL.md 9.6): a map whose event is meta or token.
//  Returns false for anything else (not relayed; the caller logs it).
static bool
s_relay_event (kf_broker_t *self, kf_worker_t *worker, kf_job_t *job, const msgpack_object *event)
{
    const char *name;
    size_t name_len;
    if (event->type != MSGPACK_OBJECT_MAP || !kf_mp_str (kf_mp_get (event, "event"), &name, &name_len)
    ||  name_len >= 16)
        return false;
    bool is_meta = name_len == 4 && memcmp (name, "meta", 4) == 0;
    if (!is_meta && !(name_len == 5 && memcmp (name, "token", 5) == 0)) {
        //  done and error are the broker's to send, once, after the commit
        kf_warn ("worker %s sent a %.*s event; ignored", worker->name, (int) name_len, name);
        return true;
    }
    //  One meta, before the text; a token's content is text
    const msgpack_object *content = is_meta ? NULL : kf_mp_get (event, "content");
    if (is_meta ? job->has_meta || job->has_token
                : !content || content->type != MSGPACK_OBJECT_STR
                  || !kf_utf8_is_valid (content->via.str.ptr, content->via.str.size))
        return false;
    job->has_meta |= is_meta;
    job->has_token |= !is_meta;
    int fields = is_meta ? 2 : 0;
    for (uint32_t i = 0; i < event->via.map.size; i++)
        fields += !s_is_broker_key (&event->via.map.ptr [i].key);
    s_event_ctx_t ctx = { job, event, is_meta };
    kf_cj_publish (self, job, is_meta ? "meta" : "token", fields, s_pack_event_fields, &ctx, false);
    return true;
}

//  Relays `events` (one event map, or an array of them) of the job `job_id`, in order. A job that
//  is unknown, finished, another worker's or not streamed takes nothing. Returns how many
//  elements were malformed.
static int
s_relay_events (kf_broker_t *self, kf_worker_t *worker, const char *job_id, size_t id_len,
                const msgpack_object *events)
{
    kf_job_t *job = kf_cj_running_job (self, worker, job_id, id_len);
    if (events->type != MSGPACK_OBJECT_ARRAY)
        return job && job->stream && !s_relay_event (self, worker, job, events);
    int malformed = 0;
    for (uint32_t i = 0; i < events->via.array.size; i++)
        if (job && job->stream && !s_relay_event (self, worker, job, &events->via.array.ptr [i]))
            malformed++;
    return malformed;
}

void
kf_chat_on_partial (kf_broker_t *self, kf_worker_t *worker, const char *job_id, size_t id_len,
                    const char *body, size_t body_len)
{
    kf_job_t *job = kf_cj_running_job (self, worker, job_id, id_len);
    if (!job || !job->stream)
        return;                 //  Checked before decoding: late tokens cost nothing
    msgpack_unpacked unpacked;
    if (!kf_mp_unpack_borrowed (body, body_len, &unpacked)) {
        kf_warn ("worker %s sent an undecodable PARTIAL for job %.*s; ignored", worker->name,
                 (int) id_len, job_id);
        return;
    }
    int malformed = s_relay_events (self, worker, job_id, id_len, &unpacked.data);
    if (malformed)
        kf_warn ("worker %s sent %d malformed event(s) for job %.*s; skipped", worker->name,
                 malformed, (int) id_len, job_id);
    msgpack_unpacked_destroy (&unpacked);
}

void
kf_chat_on_partials (kf_broker_t *self, kf_worker_t *worker, const char *body, size_t body_len)
{
    msgpack_unpacked unpacked;
    if (!kf_mp_unpack_borrowed (body, body_len, &unpacked)) {
        kf_warn ("worker %s sent an undecodable PARTIALS; ignored", worker->name);
        return;
    }
    const msgpack_object *pairs = &unpacked.data;
    int malformed = 0;
    for (uint32_t i = 0; pairs->type == MSGPACK_OBJECT_ARRAY && i < pairs->via.array.size; i++) {
        const msgpack_object *pair = &pairs->via.array.ptr [i];
        const char *job_id;
        size_t id_len;
        if (pair->type != MSGPACK_OBJECT_ARRAY || pair->via.array.size != 2
        ||  !kf_mp_str (&pair->via.array.ptr [0], &job_id, &id_len) || id_len >= 32)
            malformed++;
        else
            malformed += s_relay_events (self, worker, job_id, id_len, &pair->via.array.ptr [1]);
    }
    if (pairs->type != MSGPACK_OBJECT_ARRAY)
        malformed++;
    if (malformed)
        kf_warn ("worker %s sent %d malformed element(s) in PARTIALS; skipped", worker->name,
                 malformed);
    msgpack_unpacked_destroy (&unpacked);
}

//  --- Answers ----------------------------------------------------------------------------------

//  A stopped answer: the job was asked to stop (chat.stop) and its answer says it did
static bool
s_is_stopped (kf_job_t *job, const kf_wp_result_t *result)
{
    return job->stop && result->stopped;
}

//  A chat's answer being packed: what the worker (or the cache, or the broker's stand-in) said,
//  and what only the broker knows
typedef struct {
    kf_job_t *job;
    const kf_wp_result_t *result;
    int64_t latency_ms;
    const char *reply;              //  The answer's text, type and rich content: the result's,
    size_t reply_len;               //  or those of the ticket it created
    const char *response_type;
    const msgpack_object *response_content;     //  NULL: nil
    int handoff_reason;             //  0, or why this answer handed the session to people
    const msgpack_sbuffer *card;    //  The escalation card it made (packed), NULL: none
    const msgpack_sbuffer *ticket;  //  The ticket it created (packed), NULL: none
    bool is_to_agent;               //  People have the session: the message went to them
} s_answer_t;

#define S_RESULT_PAIRS 27           //  Pairs of the result (done: the same), without last_seq


static void
s_pack_packed (msgpack_packer *pk, const char *key, const msgpack_sbuffer *packed)
{
    kf_mp_pack_cstr (pk, key);
    if (packed && packed->size)
        pk->callback (pk->data, packed->data, packed->size);
    else
        msgpack_pack_nil (pk);
}

//  The worker's fields a result and a done event copy (nil when absent); emotion_score falls back
//  on the broker's own score of the message (a cached answer, a message to people)
static void
s_pack_worker_fields (msgpack_packer *pk, const kf_job_t *job, const kf_wp_result_t *result)
{
    kf_mp_pack_cstr (pk, "intent");
    kf_wp_pack_str (pk, result->intent);
    kf_mp_pack_kv_double_if (pk, "intent_confidence", result->has_intent_confidence, result->intent_confidence);
    kf_mp_pack_kv_double_if (pk, "confidence", result->has_confidence, result->confidence);
    kf_mp_pack_kv_object (pk, "sources", result->sources);
    kf_mp_pack_kv_object (pk, "suggestions", result->suggestions);
    kf_mp_pack_kv_object (pk, "candidates", result->candidates);
    kf_mp_pack_kv_object (pk, "sub_tasks", result->sub_tasks);
    kf_mp_pack_kv_bool (pk, "escalate_to_human", result->escalate_to_human);
    if (result->has_emotion_score)
        kf_mp_pack_kv_double (pk, "emotion_score", result->emotion_score);
    else
        kf_mp_pack_kv_double_if (pk, "emotion_score", job->emotion_score >= 0, job->emotion_score);
}

//  Packs the chat result's S_RESULT_PAIRS pairs (the reply's map and the done event hold them)
static void
s_pack_result (msgpack_packer *pk, const s_answer_t *answer)
{
    kf_job_t *job = answer->job;
    kf_session_t *session = job->session;
    kf_mp_pack_kv_str (pk, "session_id", session->id);
    kf_mp_pack_kv_int (pk, "message_id", job->message_id);
    kf_mp_pack_kv_int (pk, "turn_count", session->turn_count);
    kf_mp_pack_kv_int (pk, "failed_attempts", session->failed_attempts);
    kf_mp_pack_kv_int (pk, "latency_ms", answer->latency_ms);
    kf_mp_pack_cstr (pk, "reply");
    kf_mp_pack_str (pk, answer->reply, answer->reply_len);
    kf_mp_pack_kv_str (pk, "response_type", answer->response_type);
    kf_mp_pack_cstr (pk, "response_content");
    if (answer->response_content)
        msgpack_pack_object (pk, *answer->response_content);
    else
        msgpack_pack_nil (pk);
    s_pack_worker_fields (pk, job, answer->result);                 //  9
    kf_wp_usage_pack (pk, answer->result->has_usage, &answer->result->usage);
    kf_mp_pack_kv_int (pk, "handoff_reason", answer->handoff_reason);
    kf_mp_pack_kv_str (pk, "handoff_state", kf_handoff_name (session->handoff));
    kf_mp_pack_cstr (pk, "escalation_id");
    if (session->escalation_id > 0)
        msgpack_pack_int64 (pk, session->escalation_id);
    else
        msgpack_pack_nil (pk);
    kf_mp_pack_kv_str (pk, "agent_id", session->agent_id);
    s_pack_packed (pk, "escalation_card", answer->card);
    s_pack_packed (pk, "ticket", answer->ticket);
    kf_mp_pack_kv_bool (pk, "to_agent", answer->is_to_agent);
    kf_mp_pack_kv_bool (pk, "cached", answer->result->cached);
    kf_mp_pack_kv_bool (pk, "stopped", s_is_stopped (job, answer->result));
}

//  Copies the packed pairs of `arg` (an sbuffer) into an event
static void
s_pack_raw_fields (msgpack_packer *pk, void *arg)
{
    const msgpack_sbuffer *fields = arg;
    pk->callback (pk->data, fields->data, fields->size);
}

static void
s_pack_token (msgpack_packer *pk, void *arg)
{
    s_answer_t *answer = arg;
    kf_mp_pack_cstr (pk, "content");
    kf_mp_pack_str (pk, answer->reply, answer->reply_len);
}

//  Publishes done (when streamed), queues the reply, answers a waiting chat.stop and finishes the
//  job (freed)
static void
s_reply (kf_broker_t *self, s_answer_t *answer)
{
    kf_job_t *job = answer->job;
    //  The result's pairs are packed once, for the done event and for the reply
    msgpack_sbuffer fields;
    msgpack_sbuffer_init (&fields);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &fields, msgpack_sbuffer_write);
    s_pack_result (&pk, answer);
    int64_t last_seq = -1;
    kf_cj_remember_ended (self, job);
    if (job->stream)
        last_seq = kf_cj_publish (self, job, "done", S_RESULT_PAIRS, s_pack_raw_fields, &fields, true);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, S_RESULT_PAIRS + (last_seq >= 0));
    msgpack_sbuffer_write (&buffer, fields.data, fields.size);
    if (last_seq >= 0)
        kf_mp_pack_kv_int (&pk, "last_seq", last_seq);
    kf_broker_reply_ok (self, job->routing, job->routing_len, job->request_id, job->request_id_len,
                        buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    msgpack_sbuffer_destroy (&fields);
    if (job->stop)
        kf_stop_ended (self, job, s_is_stopped (job, answer->result), answer->reply,
                       answer->reply_len, NULL);
    kf_latency_add (&self->latency, kf_mono_us () - job->accepted_us);
    self->counters.done++;
    kf_cj_finish (self, job);
}

//  The reason of a worker's handoff: its handoff_reason when 2-5; a worker that escalates without
//  one (an older or third-party worker) counts as the keyword reason, 2
static int
s_handoff_reason (const kf_wp_result_t *result)
{
    int64_t reason = result->has_handoff_reason ? result->handoff_reason : 0;
    return reason >= 2 && reason <= 5 ? (int) reason : 2;
}

//  The answer's own text, type and rich content from the result
static void
s_answer_from_result (s_answer_t *answer, char *type_buffer, size_t type_size)
{
    const kf_wp_result_t *result = answer->result;
    answer->reply = result->reply.data ? result->reply.data : "";
    answer->reply_len = result->reply.len;
    snprintf (type_buffer, type_size, "text");
    if (result->response_type.data && result->response_type.len < type_size)
        snprintf (type_buffer, type_size, "%.*s", (int) result->response_type.len,
                  result->response_type.data);
    answer->response_type = type_buffer;
    answer->response_content = result->response_content;
}

//  ==== Ticket hook (B2's broker/tickets.h) ====================================================
//  A result with `ticket` {type, fields}: the broker creates the ticket and answers with its
//  confirmation and form_show card instead of the worker's empty reply. A ticket the broker
//  refuses (a field that does not pass its checks) is answered with an apology and logged.
typedef struct {
    kf_ticket_made_t made;
    msgpack_unpacked content;       //  made.content unpacked
    bool is_made;
} s_ticket_t;

static void
s_ticket_make (kf_broker_t *self, kf_job_t *job, s_answer_t *answer, s_ticket_t *ticket)
{
    memset (ticket, 0, sizeof *ticket);
    msgpack_unpacked_init (&ticket->content);
    const msgpack_object *wanted = answer->result->ticket;
    if (!wanted || s_is_stopped (job, answer->result))
        return;
    kf_error_t err;
    if (kf_tickets_from_chat (self, job->session, job->message_id, wanted, &ticket->made, &err)) {
        kf_warn ("session %s: the worker's ticket was refused: %s", job->session->id, err.message);
        answer->reply = "抱歉，工单暂时没能创建成功，请稍后再试，或输入“转人工”联系人工客服。";
        answer->reply_len = strlen (answer->reply);
        answer->response_type = "text";
        answer->response_content = NULL;
        return;
    }
    ticket->is_made = true;
    answer->reply = ticket->made.reply;
    answer->reply_len = strlen (ticket->made.reply);
    answer->response_type = "form_show";
    answer->response_content = kf_mp_unpack_one (ticket->made.content.data, ticket->made.content.size,
                                                 &ticket->content) ? &ticket->content.data : NULL;
    answer->ticket = &ticket->made.ticket;
}

static void
s_ticket_free (s_ticket_t *ticket)
{
    if (ticket->is_made)
        kf_ticket_made_free (&ticket->made);
    msgpack_unpacked_destroy (&ticket->content);
}
//  ==== End of the ticket hook ================================================================

//  Hands the session to people when the answer says so (and the bot still has it, open)
static void
s_escalate (kf_broker_t *self, s_answer_t *answer, const char *intent, msgpack_sbuffer *card)
{
    kf_job_t *job = answer->job;
    kf_session_t *session = job->session;
    if (!answer->result->escalate_to_human || s_is_stopped (job, answer->result))
        return;
    answer->handoff_reason = s_handoff_reason (answer->result);
    if (session->handoff != KF_HANDOFF_BOT || session->is_closed)
        return;                     //  handoff.request or session.close while it was answered
    double emotion = answer->result->has_emotion_score ? answer->result->emotion_score
                                                       : job->emotion_score;
    kf_escalation_in_t in = {
        .session = session, .reason = answer->handoff_reason, .intent = intent,
        .emotion_score = emotion, .created_at = kf_now_ms ()
    };
    kf_error_t err;
    if (kf_handoff_escalate (self, &in, card, &err) > 0)
        answer->card = card;
    else
        kf_warn ("session %s: could not hand over: %s", session->id, err.message);
}

//  Stores the answer, updates the session, hands it over or creates a ticket when the answer
//  says so, publishes done and queues the reply
static void
s_complete (kf_broker_t *self, kf_job_t *job, const kf_wp_result_t *result)
{
    kf_session_t *session = job->session;
    s_answer_t answer = {
        .job = job, .result = result, .latency_ms = (kf_mono_us () - job->accepted_us) / 1000
    };
    char type_buffer [32], intent_buffer [64] = "";
    s_answer_from_result (&answer, type_buffer, sizeof type_buffer);
    s_ticket_t ticket;
    s_ticket_make (self, job, &answer, &ticket);
    if (result->intent.data && result->intent.len < sizeof intent_buffer)
        snprintf (intent_buffer, sizeof intent_buffer, "%.*s", (int) result->intent.len,
                  result->intent.data);
    kf_turn_row_t turn = {
        .id = job->message_id, .session_id = session->id, .role = "assistant",
        .content = answer.reply, .content_len = answer.reply_len,
        .response_type = answer.response_type, .intent = *intent_buffer ? intent_buffer : NULL,
        .confidence = result->has_confidence ? result->confidence : -1,
        .sources = result->sources, .suggestions = result->suggestions,
        .response_content = answer.response_content, .latency_ms = answer.latency_ms,
        .prompt_tokens = result->usage.prompt_tokens,
        .completion_tokens = result->usage.completion_tokens,
        .created_at = kf_now_ms (), .is_stopped = s_is_stopped (job, result)
    };
    kf_store_turn_complete (self->store, &turn);
    kf_llm_on_complete (self, job->id_str, job->message_id, session->bot_id, result);
    session->turn_count++;
    int64_t failed_attempts = result->has_failed_attempts ? result->failed_attempts : 0;
    session->failed_attempts = failed_attempts < 0 ? 0 : failed_attempts;
    session->updated_at = turn.created_at;
    kf_session_set_slots (session, result->slots);
    if (strcmp (intent_buffer, "chitchat") == 0)
        kf_session_reset_repeat (session);      //  你好 three times is no repeated question
    kf_sessions_save (self->sessions, session, job->labels_json);
    kf_session_remember (session, "user", job->message, job->message_len);
    kf_session_remember (session, "assistant", answer.reply, answer.reply_len);
    if (result->upstream_conversation_id.data)
        kf_session_set_conversation (self->sessions, session, result->upstream_conversation_id.data,
                                     result->upstream_conversation_id.len);
    if (result->upstream_error_code.data)   //  upstream_error stays internal: logged, not returned
        kf_info ("session %s: the LLM upstream failed (%.*s)", session->id,
                 (int) result->upstream_error_code.len, result->upstream_error_code.data);
    if (result->cache && !result->cached && !s_is_stopped (job, result))
        kf_answer_cache_put (self->cache, session->bot_id, result, job->message, job->message_len);
    msgpack_sbuffer card;
    msgpack_sbuffer_init (&card);
    s_escalate (self, &answer, *intent_buffer ? intent_buffer : NULL, &card);
    if (job->stream && ticket.is_made)
        kf_cj_publish (self, job, "token", 1, s_pack_token, &answer, false);
    s_reply (self, &answer);        //  Frees the job
    msgpack_sbuffer_destroy (&card);
    s_ticket_free (&ticket);
}

//  Packs the meta event of an answer the broker makes itself (cache, people): the fields a
//  worker's meta has, and for a message to people its state
static void
s_pack_own_meta (msgpack_packer *pk, void *arg)
{
    s_answer_t *answer = arg;
    kf_mp_pack_kv_str (pk, "session_id", answer->job->session->id);
    kf_mp_pack_kv_int (pk, "message_id", answer->job->message_id);
    s_pack_worker_fields (pk, answer->job, answer->result);         //  9
    kf_mp_pack_cstr (pk, "handoff_reason");
    if (answer->result->has_handoff_reason)
        msgpack_pack_int64 (pk, answer->result->handoff_reason);
    else
        msgpack_pack_nil (pk);
    if (answer->is_to_agent) {
        kf_mp_pack_kv_str (pk, "handoff_state", kf_handoff_name (answer->job->session->handoff));
        kf_mp_pack_kv_bool (pk, "to_agent", true);
    }
}

//  Answers a job from the hot-answer cache when it holds the answer: no worker, the same rows
//  and events as a worker's answer (meta, one token, done), "cached": true. Returns true when it
//  did (the job is finished and freed).
bool
kf_cj_answer_from_cache (kf_broker_t *self, kf_job_t *job)
{
    const kf_answer_entry_t *entry = kf_answer_cache_find (self->cache, job->session->bot_id,
                                                           job->message, job->message_len,
                                                           kf_store_kb_version (self->store));
    if (!entry)
        return false;           //  The common path: nothing unpacked, nothing allocated
    job->emotion_score = kf_emotion_score (job->message, job->message_len);
    if (job->emotion_score < KF_EMOTION_UPSET_BELOW)
        return false;           //  Upset: the worker answers, with empathy
    msgpack_unpacked params;
    bool has_params = kf_mp_unpack_one (job->params.data, job->params.size, &params);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    kf_answer_cache_pack (entry, has_params ? kf_mp_get (&params.data, "labels") : NULL, &pk);
    if (has_params)
        msgpack_unpacked_destroy (&params);
    msgpack_unpacked unpacked;
    kf_wp_result_t result;
    bool is_hit = kf_mp_unpack_borrowed (buffer.data, buffer.size, &unpacked);
    if (is_hit) {
        kf_wp_result_decode (&unpacked.data, &result);
        if (job->stream) {
            s_answer_t answer = { .job = job, .result = &result };
            char type_buffer [32];
            s_answer_from_result (&answer, type_buffer, sizeof type_buffer);
            kf_cj_publish (self, job, "meta", 12, s_pack_own_meta, &answer, false);
            kf_cj_publish (self, job, "token", 1, s_pack_token, &answer, false);
        }
        s_complete (self, job, &result);
        msgpack_unpacked_destroy (&unpacked);
    }
    msgpack_sbuffer_destroy (&buffer);
    return is_hit;
}

void
kf_cj_answer_held (kf_broker_t *self, kf_job_t *job)
{
    kf_session_t *session = job->session;
    job->is_started = true;
    job->batch = kf_store_batch (self->store);
    job->user_message_id = job->message_id = kf_store_next_message_id (self->store);
    job->emotion_score = kf_emotion_score (job->message, job->message_len);
    kf_turn_row_t turn = {
        .id = job->user_message_id, .session_id = session->id, .role = "user",
        .content = job->message, .content_len = job->message_len, .confidence = -1,
        .latency_ms = -1, .created_at = kf_now_ms ()
    };
    kf_store_turn_insert (self->store, &turn);
    session->updated_at = turn.created_at;
    kf_sessions_save (self->sessions, session, job->labels_json);
    kf_session_remember (session, "user", job->message, job->message_len);
    kf_handoff_user_message (self, session, turn.id, job->message, job->message_len,
                             job->emotion_score, turn.created_at);
    //  The result's stand-in: nothing from the bot
    msgpack_object empty = { .type = MSGPACK_OBJECT_ARRAY };
    kf_wp_result_t result = {
        .response_type = kf_wp_str ("text"), .sources = &empty, .suggestions = &empty,
        .candidates = &empty, .sub_tasks = &empty, .has_handoff_reason = true, .has_usage = true
    };
    s_answer_t answer = {
        .job = job, .result = &result, .reply = "", .response_type = "text",
        .latency_ms = (kf_mono_us () - job->accepted_us) / 1000, .is_to_agent = true
    };
    if (job->stream)
        kf_cj_publish (self, job, "meta", 14, s_pack_own_meta, &answer, false);
    s_reply (self, &answer);        //  Frees the job
}

void
kf_chat_on_final (kf_broker_t *self, kf_worker_t *worker, const char *job_id, size_t id_len,
                  const char *body, size_t body_len)
{
    kf_job_t *job = kf_cj_running_job (self, worker, job_id, id_len);
    if (!job)
        return;
    worker->jobs_done++;
    msgpack_unpacked unpacked;
    kf_error_t err;
    //  The frame outlives the call: the result's strings are read in place
    if (!kf_mp_unpack_borrowed (body, body_len, &unpacked)) {
        kf_error_set (&err, KF_E_INTERNAL, "worker sent an undecodable result");
        kf_cj_fail (self, job, &err);
        return;
    }
    const msgpack_object *final = &unpacked.data;
    kf_wp_result_t result;
    bool is_ok = kf_mp_get_bool (final, "ok", false)
              && kf_wp_result_decode (kf_mp_get (final, "result"), &result);
    if (is_ok && !kf_wp_result_is_text (&result)) {
        kf_warn ("worker %s sent a result with invalid UTF-8 or a NUL; the chat fails", worker->name);
        kf_error_set (&err, KF_E_INTERNAL, "the worker's answer was not valid text");
        kf_cj_fail (self, job, &err);
    }
    else
    if (is_ok)
        s_complete (self, job, &result);
    else {
        if (!kf_error_unpack (kf_mp_get (final, "error"), &err))
            kf_error_set (&err, KF_E_INTERNAL, "worker failed without saying why");
        kf_cj_fail (self, job, &err);
    }
    msgpack_unpacked_destroy (&unpacked);
}

//  --- chat.stop (stop_method.h) --------------------------------------------------------------

void
kf_chat_end_stopped (kf_broker_t *self, kf_job_t *job, const char *text, size_t len)
{
    if (!job->is_started && job->session->handoff != KF_HANDOFF_BOT) {
        kf_cj_answer_held (self, job);   //  Queued, and people took the session meanwhile
        return;
    }
    if (!job->is_started)
        kf_cj_store_rows (self, job);    //  Queued behind its session: the customer's turn counts
    if (job->emotion_score < 0)          //  The result's, as for every answer the broker makes
        job->emotion_score = kf_emotion_score (job->message, job->message_len);
    kf_wp_result_t result = {
        .reply = { text, len }, .response_type = kf_wp_str ("text"),
        .failed_attempts = job->session->failed_attempts, .has_failed_attempts = true, .stopped = true
    };
    s_complete (self, job, &result);
}
