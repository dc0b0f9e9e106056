/*  business_stage.c - business_query jobs of the worker: one API call each, the reply streamed
    when it ends, one FINAL whatever happens. */
#include "workers/business_stage.h"
#include "common/dict.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/text_norm.h"
#include "workers/pipeline.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  One chat job waiting for its API
typedef struct {
    char job_id [32];
    uint64_t handle;
    bool is_stream;
    int64_t failed_attempts;    //  Before this turn
    char *tail;                 //  kf_business_turn_t's, or NULL
    kf_business_fields_fn *fields;
    void *fields_arg;
    kf_business_free_fn *free_arg;
} s_job_t;

struct _kf_business_stage_t {
    const kf_config_t *config;
    kf_business_client_t *client;
    kf_dict_t *jobs;            //  By job id
    kf_dict_t *by_handle;       //  The same jobs by call handle (8 raw bytes)
    int chunk_chars;
    kf_business_send_fn *send;
    void *arg;
    msgpack_sbuffer token;      //  One token event, packed again for each token (no allocation)
};

static void s_on_result (void *arg, uint64_t handle, const kf_business_result_t *result);

kf_business_stage_t *
kf_business_stage_new (const kf_config_t *config, int max_calls, int chunk_chars,
                       kf_business_send_fn *send, void *arg)
{
    kf_business_stage_t *self = kf_calloc (1, sizeof *self);
    self->config = config;
    self->chunk_chars = chunk_chars;
    self->send = send;
    self->arg = arg;
    self->jobs = kf_dict_new ();
    self->by_handle = kf_dict_new ();
    msgpack_sbuffer_init (&self->token);
    self->client = kf_business_client_new (max_calls, s_on_result, self);
    return self;
}

static void
s_job_free (s_job_t *job)
{
    if (job->free_arg)
        job->free_arg (job->fields_arg);
    free (job->tail);
    free (job);
}

//  Forgets a job whose call is over or ended by us
static void
s_forget (kf_business_stage_t *self, s_job_t *job)
{
    kf_dict_remove (self->jobs, job->job_id, strlen (job->job_id));
    kf_dict_remove (self->by_handle, (const char *) &job->handle, sizeof job->handle);
    s_job_free (job);
}

void
kf_business_stage_cancel_all (kf_business_stage_t *self)
{
    size_t cursor;
    void *value;
    while (cursor = 0, kf_dict_next (self->jobs, &cursor, NULL, &value)) {
        s_job_t *job = value;
        kf_business_client_cancel (self->client, job->handle);
        s_forget (self, job);
    }
}

void
kf_business_stage_destroy (kf_business_stage_t **self_p)
{
    kf_business_stage_t *self = *self_p;
    if (!self)
        return;
    kf_business_stage_cancel_all (self);
    kf_business_client_destroy (&self->client);
    kf_dict_destroy (&self->jobs);
    kf_dict_destroy (&self->by_handle);
    msgpack_sbuffer_destroy (&self->token);
    free (self);
    *self_p = NULL;
}

const kf_business_config_t *
kf_business_stage_api (kf_business_stage_t *self, const char *bot_id)
{
    const kf_bot_llm_t *bot = kf_config_bot (self->config, bot_id);
    return bot ? bot->business : NULL;
}

kf_entity_rules_t
kf_business_stage_rules (kf_business_stage_t *self, const char *bot_id)
{
    const kf_bot_llm_t *bot = kf_config_bot (self->config, bot_id);
    return (kf_entity_rules_t) { bot ? bot->order_pattern : NULL };
}

typedef struct {
    kf_business_stage_t *stage;
    const char *job_id;
} s_token_ctx_t;

static void
s_on_chunk (void *arg, const char *text, size_t len, kf_term_kind_t kind)
{
    (void) kind;
    s_token_ctx_t *ctx = arg;
    kf_pipeline_pack_token (&ctx->stage->token, text, len);
    ctx->stage->send (ctx->stage->arg, "PARTIAL", ctx->job_id, &ctx->stage->token);
}

//  Streams the reply (when streaming) and sends FINAL {ok, result: {reply, stopped?, fields...}}
static void
s_answer (kf_business_stage_t *self, const kf_business_outcome_t *outcome, bool is_stream,
          kf_business_fields_fn *fields, void *fields_arg)
{
    if (is_stream && *outcome->reply) {
        s_token_ctx_t ctx = { self, outcome->job_id };
        kf_text_chunks (outcome->reply, strlen (outcome->reply), self->chunk_chars, s_on_chunk, &ctx);
    }
    msgpack_sbuffer packed;
    msgpack_sbuffer_init (&packed);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &packed, msgpack_sbuffer_write);
    int count = fields (fields_arg, outcome, &pk);
    assert (count >= 0);
    bool is_stopped = outcome->status == KF_BUSINESS_STOPPED;
    msgpack_sbuffer final;
    msgpack_sbuffer_init (&final);
    msgpack_packer_init (&pk, &final, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_bool (&pk, "ok", true);
    kf_mp_pack_cstr (&pk, "result");
    msgpack_pack_map (&pk, (uint32_t) count + 1 + is_stopped);
    kf_mp_pack_kv_str (&pk, "reply", outcome->reply);
    if (is_stopped)
        kf_mp_pack_kv_bool (&pk, "stopped", true);
    msgpack_sbuffer_write (&final, packed.data, packed.size);
    self->send (self->arg, "FINAL", outcome->job_id, &final);
    msgpack_sbuffer_destroy (&final);
    msgpack_sbuffer_destroy (&packed);
}

//  The reply to stream: the API's (heap, taken) then `tail`, a blank line between
static char *
s_with_tail (char *reply, const char *tail)
{
    if (!tail || !*tail)
        return reply;
    size_t size = strlen (reply) + strlen (tail) + 3;
    char *both = kf_malloc (size);
    snprintf (both, size, "%s%s%s", reply, *reply ? "\n\n" : "", tail);
    free (reply);
    return both;
}

//  What failed_attempts becomes after a turn that ended with `status`
static int64_t
s_failed_attempts (kf_business_status_t status, int64_t previous)
{
    switch (status) {
        case KF_BUSINESS_ANSWERED:
        case KF_BUSINESS_NOT_FOUND:
            return 0;
        case KF_BUSINESS_TIMEOUT:
        case KF_BUSINESS_FAILED:
            return previous + 1;
        default:
            return previous;
    }
}

//  Ends a turn at once (no call in flight)
static void
s_answer_now (kf_business_stage_t *self, const kf_business_turn_t *turn,
              kf_business_status_t status, const char *code, const char *template)
{
    char *reply = s_with_tail (kf_business_reply (template, NULL, &turn->vars), turn->tail);
    kf_business_outcome_t outcome = {
        .job_id = turn->job_id, .status = status, .code = code, .reply = reply,
        .is_failure = status == KF_BUSINESS_FAILED,
        .failed_attempts = s_failed_attempts (status, turn->failed_attempts)
    };
    s_answer (self, &outcome, turn->is_stream, turn->fields, turn->fields_arg);
    if (turn->free_arg)
        turn->free_arg (turn->fields_arg);
    free (reply);
}

kf_business_run_t
kf_business_stage_run (kf_business_stage_t *self, const kf_business_turn_t *turn)
{
    const kf_business_config_t *api = kf_business_stage_api (self, turn->bot_id);
    assert (api && turn->fields && turn->job_id && strlen (turn->job_id) < 32);
    if (!kf_business_has_required (api, &turn->vars)) {
        s_answer_now (self, turn, KF_BUSINESS_ASKED, "ask", api->ask_reply);
        return KF_BUSINESS_RUN_ANSWERED;
    }
    uint64_t handle = kf_business_client_start (self->client, api, &turn->vars);
    if (!handle) {
        kf_warn ("business %s: %d calls open already, job %s answered with error_reply",
                 api->name, kf_business_client_calls (self->client), turn->job_id);
        s_answer_now (self, turn, KF_BUSINESS_FAILED, "busy", api->error_reply);
        return KF_BUSINESS_RUN_ANSWERED;
    }
    s_job_t *job = kf_calloc (1, sizeof *job);
    snprintf (job->job_id, sizeof job->job_id, "%s", turn->job_id);
    job->handle = handle;
    job->is_stream = turn->is_stream;
    job->failed_attempts = turn->failed_attempts;
    job->tail = turn->tail && *turn->tail ? kf_strdup (turn->tail) : NULL;
    job->fields = turn->fields;
    job->fields_arg = turn->fields_arg;
    job->free_arg = turn->free_arg;
    //  A job id the broker reuses while its call runs (it never does) replaces the older job
    s_job_t *old = kf_dict_get (self->jobs, job->job_id, strlen (job->job_id));
    if (old) {
        kf_business_client_cancel (self->client, old->handle);
        s_forget (self, old);
    }
    kf_dict_put (self->jobs, job->job_id, strlen (job->job_id), job);
    kf_dict_put (self->by_handle, (const char *) &job->handle, sizeof job->handle, job);
    return KF_BUSINESS_RUN_CALLING;
}

//  kf_business_client_fn: a call ended
static void
s_on_result (void *arg, uint64_t handle, const kf_business_result_t *result)
{
    kf_business_stage_t *self = arg;
    s_job_t *job = kf_dict_get (self->by_handle, (const char *) &handle, sizeof handle);
    if (!job)
        return;
    char *reply = s_with_tail (kf_strdup (result->reply), job->tail);
    kf_business_outcome_t outcome = {
        .job_id = job->job_id, .status = result->status, .code = result->code,
        .http_status = result->http_status, .reply = reply,
        .is_failure = result->status == KF_BUSINESS_TIMEOUT || result->status == KF_BUSINESS_FAILED,
        .failed_attempts = s_failed_attempts (result->status, job->failed_attempts)
    };
    s_answer (self, &outcome, job->is_stream, job->fields, job->fields_arg);
    s_forget (self, job);
    free (reply);
}

bool
kf_business_stage_cancel (kf_business_stage_t *self, const char *job_id)
{
    s_job_t *job = kf_dict_get (self->jobs, job_id, strlen (job_id));
    if (!job)
        return false;
    kf_business_client_cancel (self->client, job->handle);
    s_forget (self, job);
    return true;
}

bool
kf_business_stage_stop (kf_business_stage_t *self, const char *job_id)
{
    s_job_t *job = kf_dict_get (self->jobs, job_id, strlen (job_id));
    if (!job)
        return false;
    kf_business_client_cancel (self->client, job->handle);
    kf_business_outcome_t outcome = {
        .job_id = job->job_id, .status = KF_BUSINESS_STOPPED, .code = "stopped", .reply = "",
        .failed_attempts = job->failed_attempts
    };
    s_answer (self, &outcome, job->is_stream, job->fields, job->fields_arg);
    s_forget (self, job);
    return true;
}

kf_business_client_t *
kf_business_stage_client (kf_business_stage_t *self)
{
    return self->client;
}

size_t
kf_business_stage_jobs (kf_business_stage_t *self)
{
    return kf_dict_size (self->jobs);
}
