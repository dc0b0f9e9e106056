/*  methods.c - the client methods other than chat: health, stats, session.create, history,
    message.get, stream.fetch; the rest live in the
    *_methods.c files of their modules. Each validates its params and answers exactly once. */
#include "broker/answer_quality.h"
#include "broker/bots.h"
#include "broker/broker.h"
#include "broker/zap.h"
#include "broker/escalations.h"
#include "broker/answer_cache.h"
#include "broker/handoff.h"
#include "broker/history.h"
#include "broker/stop_method.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mpack.h"
#include <stdio.h>
#include <string.h>

#define KF_VERSION "0.1.0"


static void
s_health (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    kf_result_t r;
    kf_result_init (&r);
    msgpack_pack_map (&r.pk, 4);
    kf_mp_pack_kv_str (&r.pk, "status", kf_worker_pool_size (self->pool) > 0 ? "ok" : "no_workers");
    kf_mp_pack_kv_str (&r.pk, "version", KF_VERSION);
    kf_mp_pack_kv_int (&r.pk, "workers", (int64_t) kf_worker_pool_size (self->pool));
    kf_mp_pack_kv_int (&r.pk, "uptime_ms", (kf_mono_us () - self->started_us) / 1000);
    kf_broker_send_result (self, routing, routing_len, req, &r);
}

//  stats.answer: how surely each bot answers (at most S_STATS_BOTS of them listed)
#define S_STATS_BOTS 100

typedef struct {
    kf_broker_t *broker;
    msgpack_packer *pk;
    int listed;
    int64_t kb_version;         //  Of the report the table holds
} s_quality_ctx_t;

static void
s_pack_bot_quality (void *arg, const char *bot_id, const kf_answer_curve_t *curve)
{
    s_quality_ctx_t *ctx = arg;
    if (ctx->listed++ >= S_STATS_BOTS)
        return;
    kf_answer_settings_t settings;
    kf_bots_answer (ctx->broker->bots, bot_id, strlen (bot_id), &settings);
    msgpack_pack_map (ctx->pk, 2);
    kf_mp_pack_kv_str (ctx->pk, "bot_id", bot_id);
    kf_mp_pack_cstr (ctx->pk, "quality");
    kf_answer_quality_pack (curve, settings.target_precision, ctx->kb_version, ctx->pk);
}

static void
s_pack_answer_stats (kf_broker_t *self, msgpack_packer *pk)
{
    size_t count = kf_answer_quality_size (self->quality);
    msgpack_pack_map (pk, 2);
    kf_mp_pack_kv_int (pk, "bots_total", (int64_t) count);
    kf_mp_pack_cstr (pk, "bots");
    msgpack_pack_array (pk, count < S_STATS_BOTS ? count : S_STATS_BOTS);
    s_quality_ctx_t ctx = { self, pk, 0, 0 };
    kf_answer_quality_get (self->quality, "", 0, &ctx.kb_version);
    kf_answer_quality_each (self->quality, s_pack_bot_quality, &ctx);
}

static void
s_stats (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    kf_result_t r;
    kf_result_init (&r);
    msgpack_packer *pk = &r.pk;
    msgpack_pack_map (pk, 15);
    kf_mp_pack_cstr (pk, "workers");
    msgpack_pack_array (pk, kf_worker_pool_size (self->pool));
    size_t cursor = 0;
    kf_worker_t *worker;
    while ((worker = kf_worker_pool_next (self->pool, &cursor))) {
        msgpack_pack_map (pk, 5);
        kf_mp_pack_kv_str (pk, "name", worker->name);
        kf_mp_pack_kv_int (pk, "pid", worker->pid);
        kf_mp_pack_kv_int (pk, "capacity", worker->capacity);
        kf_mp_pack_kv_int (pk, "active", worker->active);
        kf_mp_pack_kv_int (pk, "jobs_done", (int64_t) worker->jobs_done);
    }
    int running = (int) kf_dict_size (self->jobs);
    kf_mp_pack_kv_int (pk, "queue_depth", self->pending - running);
    kf_mp_pack_kv_int (pk, "running", running);
    kf_mp_pack_cstr (pk, "jobs");
    msgpack_pack_map (pk, 8);
    kf_mp_pack_kv_int (pk, "requests", (int64_t) self->counters.requests);
    kf_mp_pack_kv_int (pk, "accepted", (int64_t) self->counters.accepted);
    kf_mp_pack_kv_int (pk, "done", (int64_t) self->counters.done);
    kf_mp_pack_kv_int (pk, "errors", (int64_t) self->counters.errors);
    kf_mp_pack_kv_int (pk, "rejected_busy", (int64_t) self->counters.rejected);
    kf_mp_pack_kv_int (pk, "timeouts", (int64_t) self->counters.timeouts);
    kf_mp_pack_kv_int (pk, "requeued", (int64_t) self->counters.requeued);
    kf_mp_pack_kv_int (pk, "workers_lost", (int64_t) self->counters.workers_lost);
    kf_mp_pack_cstr (pk, "latency_ms");
    msgpack_pack_map (pk, 5);
    kf_mp_pack_kv_double (pk, "p50", kf_latency_percentile (&self->latency, 50) / 1000.0);
    kf_mp_pack_kv_double (pk, "p90", kf_latency_percentile (&self->latency, 90) / 1000.0);
    kf_mp_pack_kv_double (pk, "p99", kf_latency_percentile (&self->latency, 99) / 1000.0);
    kf_mp_pack_kv_double (pk, "max", kf_latency_percentile (&self->latency, 100) / 1000.0);
    kf_mp_pack_kv_int (pk, "samples", (int64_t) kf_latency_kept (&self->latency));
    kf_mp_pack_cstr (pk, "streams");
    msgpack_pack_map (pk, 2);
    kf_mp_pack_kv_int (pk, "open", (int64_t) kf_stream_hub_open_count (self->hub));
    kf_mp_pack_kv_int (pk, "backlog", (int64_t) kf_stream_hub_backlog (self->hub));
    kf_mp_pack_kv_int (pk, "sessions_cached", (int64_t) kf_sessions_cached (self->sessions));
    kf_mp_pack_kv_int (pk, "commits", (int64_t) self->counters.commits);
    kf_mp_pack_cstr (pk, "feedback");
    if (kf_store_feedback_stats_pack (self->store, pk))
        msgpack_pack_nil (pk);
    kf_mp_pack_cstr (pk, "cache");
    kf_answer_cache_stats_pack (self->cache, pk);
    kf_mp_pack_cstr (pk, "handoff");
    kf_escalations_stats_pack (self->escalations, pk);
    kf_llm_stats_pack (self, pk);       //  upstreams, usage
    kf_mp_pack_cstr (pk, "security");
    if (self->zap)
        kf_zap_stats_pack (self->zap, pk);
    else
        msgpack_pack_nil (pk);
    kf_mp_pack_cstr (pk, "answer");
    s_pack_answer_stats (self, pk);
    kf_broker_send_result (self, routing, routing_len, req, &r);
}

static void
s_session_create (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    kf_error_t err;
    const char *user_id, *bot_id;
    size_t user_len, bot_len;
    char channel [16];
    if (kf_param_str (req->params, "user_id", false, 128, &user_id, &user_len, &err)
    ||  kf_param_channel (req->params, channel, &err)
    ||  kf_param_str (req->params, "bot_id", false, 64, &bot_id, &bot_len, &err)) {
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    kf_session_t *session = kf_sessions_create (self->sessions, user_id, user_len, channel,
                                                bot_id && bot_len ? bot_id : NULL, bot_len);
    if (!session) {
        kf_error_set (&err, KF_E_INTERNAL, "could not store the new session");
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    kf_result_t r;
    kf_result_init (&r);
    msgpack_pack_map (&r.pk, 5);
    kf_mp_pack_kv_str (&r.pk, "session_id", session->id);
    kf_mp_pack_kv_str (&r.pk, "user_id", session->user_id);
    kf_mp_pack_kv_str (&r.pk, "channel", session->channel);
    kf_mp_pack_kv_str (&r.pk, "bot_id", session->bot_id);
    kf_mp_pack_kv_int (&r.pk, "created_at", session->created_at);
    kf_broker_send_result (self, routing, routing_len, req, &r);
}

int
kf_broker_param_bot (kf_request_t *req, char *bot, kf_error_t *err)
{
    const char *bot_id;
    size_t bot_len;
    if (kf_param_str (req->params, "bot_id", false, 64, &bot_id, &bot_len, err))
        return -1;
    snprintf (bot, 260, "%.*s", bot_id && bot_len ? (int) bot_len : 7,
              bot_id && bot_len ? bot_id : "default");
    return 0;
}

int
kf_broker_param_page (kf_request_t *req, int64_t max, int64_t *page, int64_t *page_size,
                      kf_error_t *err)
{
    return kf_param_int (req->params, "page", 1, 1000000, 1, page, err)
        || kf_param_int (req->params, "page_size", 1, max, 20 < max ? 20 : max, page_size, err);
}

void
kf_broker_send_query (kf_broker_t *self, const char *routing, size_t routing_len,
                      kf_request_t *req, kf_result_t *result, int rc)
{
    if (rc == 0) {
        kf_broker_send_result (self, routing, routing_len, req, result);
        return;
    }
    msgpack_sbuffer_destroy (&result->buffer);
    kf_error_t err;
    kf_error_set (&err, KF_E_INTERNAL, "the query failed");
    kf_broker_send_error (self, routing, routing_len, req, &err);
}

//  Finds the session a read names, applying the ownership rule. Sends the error itself.
kf_session_t *
kf_broker_session_param (kf_broker_t *self, kf_request_t *req, kf_error_t *err)
{
    const char *id, *user_id;
    size_t id_len, user_len;
    if (kf_param_str (req->params, "session_id", true, 64, &id, &id_len, err)
    ||  kf_param_str (req->params, "user_id", false, 128, &user_id, &user_len, err))
        return NULL;
    kf_session_t *session = kf_sessions_find (self->sessions, id, id_len, user_id, user_len);
    if (!session)
        kf_error_set (err, KF_E_NOT_FOUND, "session %.*s does not exist", (int) id_len, id);
    return session;
}

int
kf_broker_message_owned (kf_broker_t *self, int64_t message_id, const char *user_id,
                         size_t user_len, char *role, size_t role_size, char *session_id,
                         size_t session_size, kf_error_t *err)
{
    char owner [4 * 128 + 8];                   //  user_id: 128 characters of UTF-8
    int found = kf_store_turn_owner (self->store, message_id, role, role_size, owner, sizeof owner,
                                     session_id, session_size);
    if (found == 1 && user_id && *owner && (strlen (owner) != user_len || memcmp (owner, user_id, user_len)))
        found = 0;
    if (found != 1)
        kf_error_set (err, found == 0 ? KF_E_NOT_FOUND : KF_E_INTERNAL, "message %lld %s",
                      (long long) message_id, found == 0 ? "does not exist" : "could not be read");
    return found == 1;
}

//  Like kf_broker_session_param, sending the error itself
static kf_session_t *
s_session_param (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    kf_error_t err;
    kf_session_t *session = kf_broker_session_param (self, req, &err);
    if (!session)
        kf_broker_send_error (self, routing, routing_len, req, &err);
    return session;
}

static void
s_history (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    kf_error_t err;
    int64_t limit, offset, first_id;
    //  Two paging styles: offset from the oldest, or a cursor (first_id) from the newest
    bool is_cursor = kf_mp_get (req->params, "first_id") != NULL;
    if (kf_param_int (req->params, "limit", 1, 100, 20, &limit, &err)
    ||  kf_param_int (req->params, "offset", 0, INT32_MAX, 0, &offset, &err)
    ||  kf_param_int (req->params, "first_id", 0, INT64_MAX, 0, &first_id, &err)) {
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    const msgpack_object *given_offset = kf_mp_get (req->params, "offset");
    if (is_cursor && given_offset && given_offset->type != MSGPACK_OBJECT_NIL) {
        kf_error_set (&err, KF_E_INVALID_PARAM, "give params.offset or params.first_id, not both");
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    kf_session_t *session = s_session_param (self, routing, routing_len, req);
    if (!session)
        return;
    kf_result_t r;
    kf_result_init (&r);
    if (is_cursor ? kf_history_before_pack (self->history, session->id, limit, first_id, &r.pk)
                  : kf_history_page_pack (self->history, session->id, limit, offset, &r.pk)) {
        msgpack_sbuffer_destroy (&r.buffer);
        kf_error_set (&err, KF_E_INTERNAL, "could not read the history");
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    kf_broker_send_result (self, routing, routing_len, req, &r);
}

static void
s_message_get (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    kf_error_t err;
    int64_t id;
    const msgpack_object *given = kf_mp_get (req->params, "message_id");
    if (!given || given->type == MSGPACK_OBJECT_NIL)
        kf_error_set (&err, KF_E_MISSING_ARGUMENT, "params.message_id is required");
    else
    if (kf_param_int (req->params, "message_id", 1, INT64_MAX, 0, &id, &err) == 0) {
        kf_result_t r;
        kf_result_init (&r);
        int rc = kf_history_message_pack (self->history, id, &r.pk);
        if (rc == 1) {
            kf_broker_send_result (self, routing, routing_len, req, &r);
            return;
        }
        msgpack_sbuffer_destroy (&r.buffer);
        kf_error_set (&err, rc == 0 ? KF_E_NOT_FOUND : KF_E_INTERNAL, "message %lld %s",
                      (long long) id, rc == 0 ? "does not exist" : "could not be read");
    }
    kf_broker_send_error (self, routing, routing_len, req, &err);
}

static void
s_stream_fetch (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    kf_error_t err;
    const char *id;
    size_t id_len;
    int64_t from_seq;
    if (kf_param_str (req->params, "stream_id", true, 0, &id, &id_len, &err)
    ||  kf_param_int (req->params, "from_seq", 0, INT32_MAX, 0, &from_seq, &err)) {
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    kf_result_t r;
    kf_result_init (&r);
    if (kf_stream_hub_fetch_pack (self->hub, id, id_len, from_seq, &r.pk)) {
        msgpack_sbuffer_destroy (&r.buffer);
        kf_error_set (&err, KF_E_NOT_FOUND, "stream %.*s is unknown or past retention;"
                      " read the turn with message.get or history", (int) id_len, id);
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    kf_broker_send_result (self, routing, routing_len, req, &r);
}

static const struct {
    const char *name;
    kf_method_fn *fn;
} s_methods [] = {
    { "chat",           kf_chat_accept },
    { "chat.stop",      kf_method_chat_stop },
    { "health",         s_health },
    { "stats",          s_stats },
    { "session.create", s_session_create },
    { "history",        s_history },
    { "message.get",    s_message_get },
    { "stream.fetch",   s_stream_fetch },
    { "kb.item.create", kf_method_kb_item_create },
    { "kb.item.update", kf_method_kb_item_update },
    { "kb.item.query",  kf_method_kb_item_query },
    { "kb.item.delete", kf_method_kb_item_delete },
    { "kb.category.create", kf_method_kb_category_create },
    { "kb.category.update", kf_method_kb_category_update },
    { "kb.category.query",  kf_method_kb_category_query },
    { "kb.category.delete", kf_method_kb_category_delete },
    { "kb.synonyms.create", kf_method_kb_synonyms_create },
    { "kb.synonyms.update", kf_method_kb_synonyms_update },
    { "kb.synonyms.query",  kf_method_kb_synonyms_query },
    { "kb.synonyms.delete", kf_method_kb_synonyms_delete },
    { "suggest",        kf_method_suggest },
    { "cache.invalidate", kf_method_cache_invalidate },
    { "session.close",  kf_method_session_close },
    { "feedback",       kf_method_feedback },
    { "session.init",   kf_method_session_init },
    { "bot.get",        kf_method_bot_get },
    { "bot.update",     kf_method_bot_update },
    { "parameters",     kf_method_parameters },
    { "user.login",     kf_method_user_login },
    { "user.get",       kf_method_user_get },
    { "user.logout",    kf_method_user_logout },
    { "conversations.list",   kf_method_conversations_list },
    { "conversations.rename", kf_method_conversations_rename },
    { "conversations.delete", kf_method_conversations_delete },
    { "records.save",   kf_method_records_save },
    { "handoff.request", kf_method_handoff_request },
    { "agent.assign",   kf_method_agent_assign },
    { "agent.reply",    kf_method_agent_reply },
    { "agent.resolve",  kf_method_agent_resolve },
    { "escalations.list", kf_method_escalations_list },
    { "intent.create",  kf_method_intent_create },
    { "intent.query",   kf_method_intent_query },
    { "intent.update",  kf_method_intent_update },
    { "intent.delete",  kf_method_intent_delete },
    { "intent.execute", kf_method_intent_execute },
    { "chitchat.create", kf_method_chitchat_create },
    { "chitchat.query", kf_method_chitchat_query },
    { "chitchat.update", kf_method_chitchat_update },
    { "chitchat.delete", kf_method_chitchat_delete },
    { "tickets.query",  kf_method_tickets_query },
    { "tickets.update", kf_method_tickets_update },
};

void
kf_methods_dispatch (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    for (size_t i = 0; i < sizeof s_methods / sizeof s_methods [0]; i++)
        if (strlen (s_methods [i].name) == req->method_len
        &&  memcmp (s_methods [i].name, req->method, req->method_len) == 0) {
            s_methods [i].fn (self, routing, routing_len, req);
            return;
        }
    kf_error_t err;
    kf_error_set (&err, KF_E_UNKNOWN_METHOD, "unknown method %.*s", (int) req->method_len, req->method);
    kf_broker_send_error (self, routing, routing_len, req, &err);
}
