/*  llm_jobs.c - the broker's side of LLM chat jobs: the worker's ACQUIRE answered with GRANT
    from the upstream limits (upstream_limits.h), a busy upstream turned into the chat's 429, slots
    released when jobs end, usage totals stored per LLM turn, the longer deadline of LLM bots, and
    the upstreams' stats. chat_jobs.c calls in here at the points of a job's life that matter. */
#include "broker/broker.h"
#include "broker/upstream_limits.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/frames.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include <stdio.h>
#include <string.h>

#define S_UPSTREAM_MARGIN_MS 5000   //  An LLM job's deadline beyond its upstream's total timeout

static const char *s_grant_names [] = { "ok", "queued", "busy", "open" };

//  Sends [KFW1, GRANT, job_id, ok|busy|open] to `worker`
static void
s_send_grant (kf_broker_t *self, kf_worker_t *worker, const char *job_id, kf_grant_t grant)
{
    const char *status = s_grant_names [grant];
    const void *data [5] = { worker->identity, "KFW1", "GRANT", job_id, status };
    size_t size [5] = { worker->identity_len, 4, 5, strlen (job_id), strlen (status) };
    kf_frames_send (self->workers, 5, data, size, ZMQ_DONTWAIT);
}

//  A queued job's turn came
static bool
s_on_grant (void *arg, const char *job_id, kf_grant_t grant)
{
    kf_broker_t *self = arg;
    kf_worker_t *worker = kf_chat_job_worker (self, job_id, strlen (job_id));
    if (!worker)
        return false;
    s_send_grant (self, worker, job_id, grant);
    return true;
}

void
kf_llm_jobs_init (kf_broker_t *self)
{
    self->limits = kf_upstream_limits_new (self->config->llm, s_on_grant, self);
}

void
kf_llm_jobs_destroy (kf_broker_t *self)
{
    kf_upstream_limits_destroy (&self->limits);
}

void
kf_llm_on_acquire (kf_broker_t *self, kf_worker_t *worker, const char *job_id, size_t id_len,
                   const char *body, size_t body_len)
{
    if (id_len == 0 || id_len >= 32 || kf_chat_job_worker (self, job_id, id_len) != worker)
        return;                 //  Timed out, stopped or given to another worker meanwhile
    char id [32], name [80] = "";
    snprintf (id, sizeof id, "%.*s", (int) id_len, job_id);
    msgpack_unpacked unpacked;
    if (kf_mp_unpack_one (body, body_len, &unpacked)) {
        const char *s;
        size_t len;
        //  The name reaches clients (stats, errors): text only, or it counts as no name
        if (kf_mp_str (kf_mp_get (&unpacked.data, "upstream"), &s, &len) && len < sizeof name
        &&  kf_utf8_is_valid (s, len) && !memchr (s, 0, len))
            snprintf (name, sizeof name, "%.*s", (int) len, s);
        msgpack_unpacked_destroy (&unpacked);
    }
    kf_grant_t grant = kf_upstream_limits_acquire (self->limits, id, name, kf_mono_us ());
    if (grant == KF_GRANT_QUEUED)
        return;
    s_send_grant (self, worker, id, grant);
    if (grant == KF_GRANT_BUSY) {
        //  The worker drops the job; the chat fails here, with the hint the worker cannot know
        kf_error_t err;
        kf_error_set (&err, KF_E_BUSY, "the LLM upstream %s is busy; retry later", name);
        err.retry_after_ms = kf_upstream_limits_retry_after_ms (self->limits, name);
        kf_chat_fail_job (self, worker, id, strlen (id), &err);
    }
}

void
kf_llm_release (kf_broker_t *self, const char *job_id, int outcome)
{
    kf_upstream_limits_release (self->limits, job_id, (kf_outcome_t) outcome, kf_mono_us ());
}

bool
kf_llm_holds_slot (kf_broker_t *self, const char *job_id)
{
    return kf_upstream_limits_holds (self->limits, job_id);
}

void
kf_llm_on_complete (kf_broker_t *self, const char *job_id, int64_t message_id, const char *bot_id,
                    const kf_wp_result_t *result)
{
    size_t len = result->upstream.len;
    if (!result->upstream.data || len == 0 || len >= 80) {
        kf_llm_release (self, job_id, KF_OUTCOME_NONE);
        return;
    }
    kf_outcome_t outcome = KF_OUTCOME_SUCCESS;
    const char *code = result->upstream_error_code.data;
    size_t code_len = code ? result->upstream_error_code.len : 0;
    if (code) {
        //  What the worker did not ask the upstream, or a customer's stop, says nothing of its health
        bool is_neutral = (code_len == 12 && memcmp (code, "circuit_open", 12) == 0)
                       || (code_len == 7 && memcmp (code, "stopped", 7) == 0)
                       || (code_len == 9 && memcmp (code, "cancelled", 9) == 0);
        outcome = is_neutral ? KF_OUTCOME_NONE : KF_OUTCOME_FAILURE;
    }
    if (result->stopped)
        outcome = KF_OUTCOME_NONE;      //  chat.stop cut it short: neither success nor failure
    kf_llm_release (self, job_id, outcome);
    if (outcome == KF_OUTCOME_NONE && code_len == 12)
        return;                 //  circuit_open: no call, no usage
    char name [80];
    snprintf (name, sizeof name, "%.*s", (int) len, result->upstream.data);
    const kf_wp_usage_t *usage = &result->usage;
    kf_store_usage_add (self->store, message_id, bot_id, name, usage->prompt_tokens,
                        usage->completion_tokens, usage->total_tokens > 0 ? usage->total_tokens
                                                  : usage->prompt_tokens + usage->completion_tokens);
}

bool
kf_llm_bot_calls_upstream (kf_broker_t *self, const char *bot_id)
{
    const kf_bot_llm_t *bot = self->config->llm ? kf_config_bot (self->config->llm, bot_id) : NULL;
    return bot && bot->llm != KF_LLM_OFF && bot->upstream;
}

int
kf_llm_job_timeout_ms (kf_broker_t *self, const char *bot_id)
{
    int timeout = self->config->job_timeout_ms;
    const kf_bot_llm_t *bot = self->config->llm ? kf_config_bot (self->config->llm, bot_id) : NULL;
    if (bot && bot->llm != KF_LLM_OFF && bot->upstream && bot->upstream->total_timeout_ms > 0
    &&  bot->upstream->total_timeout_ms + S_UPSTREAM_MARGIN_MS > timeout)
        timeout = bot->upstream->total_timeout_ms + S_UPSTREAM_MARGIN_MS;
    return timeout;
}

void
kf_llm_stats_pack (kf_broker_t *self, msgpack_packer *pk)
{
    kf_mp_pack_cstr (pk, "upstreams");
    kf_upstream_limits_pack (self->limits, pk, kf_mono_us ());
    kf_mp_pack_cstr (pk, "usage");
    if (kf_store_usage_stats_pack (self->store, pk))
        msgpack_pack_array (pk, 0);
}
