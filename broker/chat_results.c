/*  chat_results.c - the answer of a chat job (chat_jobs.c has the rest of its life): the
    worker's meta and token events relayed on the job's stream, its FINAL turned into the stored
    answer, the session update, the done event and the chat reply; the same answer made from the
    hot-answer cache without a worker, and the stopped answer the broker ends a job with for
    chat.stop. The job struct and the helpers shared with chat_jobs.c are in
    chat_jobs_private.h. */
#include "broker/chat_jobs_private.h"
#include "broker/answer_cache.h"
#include "broker/stop_method.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/text_norm.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --- Events -----------------------------------------------------------------------------------

int64_t
kf_cj_publish (kf_broker_t *self, kf_job_t *job, const char *event, int count,
               kf_cj_fields_fn *fields, void *arg, bool is_last)
{
    int64_t seq = kf_stream_next_seq (job->stream);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2 + count);
    kf_mp_pack_kv_int (&pk, "seq", seq);
    kf_mp_pack_kv_str (&pk, "event", event);
    if (fields)
        fields (&pk, arg);
    kf_stream_publish (self->hub, job->stream, buffer.data, buffer.size, is_last);
    msgpack_sbuffer_destroy (&buffer);
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

void
kf_chat_on_partial (kf_broker_t *self, kf_worker_t *worker, const char *job_id, size_t id_len,
                    const char *body, size_t body_len)
{
    kf_job_t *job = kf_cj_running_job (self, worker, job_id, id_len);
    if (!job || !job->stream)
        return;
    msgpack_unpacked unpacked;
    if (!kf_mp_unpack_one (body, body_len, &unpacked))
        return;
    const msgpack_object *event = &unpacked.data;
    const char *name;
    size_t name_len;
    if (event->type == MSGPACK_OBJECT_MAP && kf_mp_str (kf_mp_get (event, "event"), &name, &name_len)
    &&  name_len < 16) {
        char event_name [16];
        snprintf (event_name, sizeof event_name, "%.*s", (int) name_len, name);
        bool is_meta = strcmp (event_name, "meta") == 0;
        if (!is_meta && strcmp (event_name, "token") != 0) {
            //  done and error are the broker's to send, once, after the commit
            kf_warn ("worker %s sent a %s event; ignored", worker->name, event_name);
            msgpack_unpacked_destroy (&unpacked);
            return;
        }
        int fields = is_meta ? 2 : 0;
        for (uint32_t i = 0; i < event->via.map.size; i++) {
            const msgpack_object *key = &event->via.map.ptr [i].key;
            fields += !s_is_broker_key (key);
        }
        s_event_ctx_t ctx = { job, event, is_meta };
        kf_cj_publish (self, job, event_name, fields, s_pack_event_fields, &ctx, false);
    }
    msgpack_unpacked_destroy (&unpacked);
}

//  --- Answers ----------------------------------------------------------------------------------

//  A stopped answer: the job was asked to stop (chat.stop) and its answer says it did
static bool
s_is_stopped (kf_job_t *job, const msgpack_object *result)
{
    return job->stop && kf_mp_get_bool (result, "stopped", false);
}

//  Packs the chat result: the worker's answer plus what only the broker knows
static void
s_pack_result (msgpack_packer *pk, kf_job_t *job, const msgpack_object *result, int64_t latency_ms,
               int64_t last_seq, bool as_fields)
{
    static const char *copied [] = { "reply", "response_type", "response_content", "intent",
                                     "confidence", "sources", "suggestions", "escalate_to_human",
                                     "usage", NULL };
    int count = 9 + 7 + (last_seq >= 0);
    if (!as_fields)
        msgpack_pack_map (pk, count);
    kf_mp_pack_kv_str (pk, "session_id", job->session->id);
    kf_mp_pack_kv_int (pk, "message_id", job->message_id);
    kf_mp_pack_kv_int (pk, "turn_count", job->session->turn_count);
    kf_mp_pack_kv_int (pk, "failed_attempts", job->session->failed_attempts);
    kf_mp_pack_kv_int (pk, "latency_ms", latency_ms);
    if (last_seq >= 0)
        kf_mp_pack_kv_int (pk, "last_seq", last_seq);
    for (int i = 0; copied [i]; i++) {
        const msgpack_object *value = kf_mp_get (result, copied [i]);
        kf_mp_pack_cstr (pk, copied [i]);
        if (value)
            msgpack_pack_object (pk, *value);
        else
            msgpack_pack_nil (pk);
    }
    kf_mp_pack_kv_bool (pk, "cached", kf_mp_get_bool (result, "cached", false));
    kf_mp_pack_kv_bool (pk, "stopped", s_is_stopped (job, result));
}

typedef struct {
    kf_job_t *job;
    const msgpack_object *result;
    int64_t latency_ms;
} s_done_ctx_t;

static void
s_pack_done_fields (msgpack_packer *pk, void *arg)
{
    s_done_ctx_t *ctx = arg;
    s_pack_result (pk, ctx->job, ctx->result, ctx->latency_ms, -1, true);
}

//  Stores the answer, updates the session, publishes done and queues the reply
static void
s_complete (kf_broker_t *self, kf_job_t *job, const msgpack_object *result)
{
    kf_session_t *session = job->session;
    int64_t now_us = kf_mono_us ();
    int64_t latency_ms = (now_us - job->accepted_us) / 1000;
    const char *reply = "", *intent = NULL, *response_type = "text";
    size_t reply_len = 0, len;
    kf_mp_str (kf_mp_get (result, "reply"), &reply, &reply_len);
    char intent_buffer [64] = "", type_buffer [32] = "text";
    if (kf_mp_str (kf_mp_get (result, "intent"), &intent, &len) && len < sizeof intent_buffer)
        snprintf (intent_buffer, sizeof intent_buffer, "%.*s", (int) len, intent);
    if (kf_mp_str (kf_mp_get (result, "response_type"), &response_type, &len) && len < sizeof type_buffer)
        snprintf (type_buffer, sizeof type_buffer, "%.*s", (int) len, response_type);
    const msgpack_object *usage = kf_mp_get (result, "usage");
    kf_turn_row_t turn = {
        .id = job->message_id, .session_id = session->id, .role = "assistant",
        .content = reply, .content_len = reply_len, .response_type = type_buffer,
        .intent = *intent_buffer ? intent_buffer : NULL,
        .confidence = kf_mp_get_double (result, "confidence", -1),
        .sources = kf_mp_get (result, "sources"), .suggestions = kf_mp_get (result, "suggestions"),
        .response_content = kf_mp_get (result, "response_content"),
        .latency_ms = latency_ms,
        .prompt_tokens = kf_mp_get_int (usage, "prompt_tokens", 0),
        .completion_tokens = kf_mp_get_int (usage, "completion_tokens", 0),
        .created_at = kf_now_ms ()
    };
    kf_store_turn_complete (self->store, &turn);
    kf_llm_on_complete (self, job->id_str, job->message_id, session->bot_id, result);
    session->turn_count++;
    int64_t failed_attempts = kf_mp_get_int (result, "failed_attempts", 0);
    session->failed_attempts = failed_attempts < 0 ? 0 : failed_attempts;
    session->updated_at = turn.created_at;
    kf_store_session_update (self->store, session->id, session->turn_count,
                             session->failed_attempts, job->labels_json, session->updated_at);
    kf_session_remember (session, "user", job->message, job->message_len);
    kf_session_remember (session, "assistant", reply, reply_len);
    const char *conversation;
    if (kf_mp_str (kf_mp_get (result, "upstream_conversation_id"), &conversation, &len))
        kf_session_set_conversation (self->sessions, session, conversation, len);
    const char *code;               //  upstream_error stays internal: logged, not returned
    if (kf_mp_str (kf_mp_get (kf_mp_get (result, "upstream_error"), "code"), &code, &len))
        kf_info ("session %s: the LLM upstream failed (%.*s)", session->id, (int) len, code);
    const msgpack_object *cache = kf_mp_get (result, "cache");
    if (cache && !kf_mp_get_bool (result, "cached", false) && !s_is_stopped (job, result))
        kf_answer_cache_put (self->cache, session->bot_id, result, cache);
    int64_t last_seq = -1;
    if (job->stream) {
        s_done_ctx_t ctx = { job, result, latency_ms };
        last_seq = kf_cj_publish (self, job, "done", 16, s_pack_done_fields, &ctx, true);
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    s_pack_result (&pk, job, result, latency_ms, last_seq, false);
    kf_broker_reply_ok (self, job->routing, job->routing_len, job->request_id, job->request_id_len,
                        buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    if (job->stop)
        kf_stop_ended (self, job, s_is_stopped (job, result), reply, reply_len, NULL);
    kf_latency_add (&self->latency, now_us - job->accepted_us);
    self->counters.done++;
    kf_cj_finish (self, job);
}

//  Packs the meta fields of a cached result: the ones a worker's meta event has
static void
s_pack_cached_meta (msgpack_packer *pk, void *arg)
{
    s_done_ctx_t *ctx = arg;
    static const char *copied [] = { "intent", "confidence", "sources", "suggestions",
                                     "escalate_to_human", NULL };
    kf_mp_pack_kv_str (pk, "session_id", ctx->job->session->id);
    kf_mp_pack_kv_int (pk, "message_id", ctx->job->message_id);
    for (int i = 0; copied [i]; i++) {
        kf_mp_pack_cstr (pk, copied [i]);
        msgpack_pack_object (pk, *kf_mp_get (ctx->result, copied [i]));
    }
}

static void
s_pack_cached_token (msgpack_packer *pk, void *arg)
{
    s_done_ctx_t *ctx = arg;
    kf_mp_pack_cstr (pk, "content");
    msgpack_pack_object (pk, *kf_mp_get (ctx->result, "reply"));
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
    msgpack_unpacked params;
    bool has_params = kf_mp_unpack_one (job->params.data, job->params.size, &params);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    kf_answer_cache_pack (entry, has_params ? kf_mp_get (&params.data, "labels") : NULL, &pk);
    if (has_params)
        msgpack_unpacked_destroy (&params);
    msgpack_unpacked result;
    bool is_hit = kf_mp_unpack_one (buffer.data, buffer.size, &result);
    if (is_hit) {
        if (job->stream) {
            s_done_ctx_t ctx = { job, &result.data, 0 };
            kf_cj_publish (self, job, "meta", 7, s_pack_cached_meta, &ctx, false);
            kf_cj_publish (self, job, "token", 1, s_pack_cached_token, &ctx, false);
        }
        s_complete (self, job, &result.data);
        msgpack_unpacked_destroy (&result);
    }
    msgpack_sbuffer_destroy (&buffer);
    return is_hit;
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
    if (!kf_mp_unpack_one (body, body_len, &unpacked)) {
        kf_error_set (&err, KF_E_INTERNAL, "worker sent an undecodable result");
        kf_cj_fail (self, job, &err);
        return;
    }
    const msgpack_object *final = &unpacked.data;
    const msgpack_object *result = kf_mp_get (final, "result");
    if (kf_mp_get_bool (final, "ok", false) && result && result->type == MSGPACK_OBJECT_MAP)
        s_complete (self, job, result);
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
    if (!job->is_started)
        kf_cj_store_rows (self, job);    //  Queued behind its session: the customer's turn counts
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 4);
    kf_mp_pack_cstr (&pk, "reply");
    kf_mp_pack_str (&pk, text, len);
    kf_mp_pack_kv_str (&pk, "response_type", "text");
    kf_mp_pack_kv_int (&pk, "failed_attempts", job->session->failed_attempts);
    kf_mp_pack_kv_bool (&pk, "stopped", true);
    msgpack_unpacked result;
    if (kf_mp_unpack_one (buffer.data, buffer.size, &result)) {
        s_complete (self, job, &result.data);
        msgpack_unpacked_destroy (&result);
    }
    msgpack_sbuffer_destroy (&buffer);
}
