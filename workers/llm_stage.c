/*  llm_stage.c - LLM jobs of the worker: one upstream request each, tokens forwarded as they come,
    one FINAL at the end, whatever happens. */
#include "workers/llm_stage.h"
#include "common/dict.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/text_norm.h"
#include "common/wire.h"
#include "workers/rag_prompt.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  One chat job waiting for its upstream
typedef struct {
    char job_id [32];
    uint64_t handle;
    bool is_stream;
    const kf_upstream_config_t *upstream;
    char intent [32];
    double confidence;
    int64_t failed_attempts;    //  Before this turn
    bool is_kb_answered;        //  The knowledge base had an answer (llm = always)
    msgpack_sbuffer sources;    //  Packed source maps, `source_count` of them
    int source_count;
    char *fallback;             //  Reply when the upstream fails before any token
    char *suggestions [KF_SUGGESTIONS_MAX];
    int suggestion_count;
    char *reply;                //  What the upstream said so far
    size_t reply_len, reply_size;
    bool is_replaced;           //  Dify moderation replaced the answer
    int64_t prompt_tokens, completion_tokens, total_tokens;
    char conversation_id [128];
    bool is_stopped;            //  The broker's STOP: FINAL carries the partial reply, stopped
    kf_rag_prompt_t prompt;     //  While waiting for the broker's GRANT: the request to start
    msgpack_sbuffer inputs_buffer;  //  A copy of the job's params.inputs the prompt borrows
    msgpack_unpacked inputs;
    bool has_inputs;
    msgpack_sbuffer turn_fields;    //  The turn's fields the result repeats (intent_confidence,
    int turn_field_count;           //  sub_tasks, emotion_score, handoff_reason, slots), packed
} s_job_t;

struct _kf_llm_stage_t {
    const kf_config_t *config;
    kf_upstream_client_t *client;
    kf_dict_t *jobs;            //  By handle (8 raw bytes)
    kf_dict_t *waiting;         //  By job id: jobs waiting for the broker's GRANT (no handle yet)
    int chunk_chars;
    kf_llm_send_fn *send;
    void *arg;
    msgpack_sbuffer token;      //  The token event being sent, its memory reused
};

static void s_on_event (void *arg, uint64_t handle, const kf_up_event_t *event);

kf_llm_stage_t *
kf_llm_stage_new (const kf_config_t *config, int max_requests, int chunk_chars,
                  kf_llm_send_fn *send, void *arg)
{
    kf_llm_stage_t *self = kf_calloc (1, sizeof *self);
    self->config = config;
    self->chunk_chars = chunk_chars;
    self->send = send;
    self->arg = arg;
    self->jobs = kf_dict_new ();
    self->waiting = kf_dict_new ();
    msgpack_sbuffer_init (&self->token);
    kf_upstream_client_config_t client_config;
    kf_upstream_client_config_defaults (&client_config);
    client_config.max_requests = max_requests;
    self->client = kf_upstream_client_new (&client_config, s_on_event, self);
    return self;
}

static void
s_job_free (s_job_t *job)
{
    msgpack_sbuffer_destroy (&job->sources);
    msgpack_sbuffer_destroy (&job->turn_fields);
    free (job->fallback);
    for (int i = 0; i < job->suggestion_count; i++)
        free (job->suggestions [i]);
    free (job->reply);
    kf_rag_prompt_release (&job->prompt);
    if (job->has_inputs)
        msgpack_unpacked_destroy (&job->inputs);
    msgpack_sbuffer_destroy (&job->inputs_buffer);
    free (job);
}

//  Forgets a job (its request is over or cancelled)
static void
s_remove (kf_llm_stage_t *self, s_job_t *job)
{
    kf_dict_remove (self->jobs, (const char *) &job->handle, sizeof job->handle);
    s_job_free (job);
}

void
kf_llm_stage_cancel_all (kf_llm_stage_t *self)
{
    size_t cursor = 0;
    void *value;
    while (cursor = 0, kf_dict_next (self->jobs, &cursor, NULL, &value)) {
        s_job_t *job = value;
        kf_upstream_client_cancel (self->client, job->handle);
        s_remove (self, job);
    }
    while (cursor = 0, kf_dict_next (self->waiting, &cursor, NULL, &value)) {
        s_job_t *job = value;
        kf_dict_remove (self->waiting, job->job_id, strlen (job->job_id));
        s_job_free (job);
    }
}

void
kf_llm_stage_destroy (kf_llm_stage_t **self_p)
{
    kf_llm_stage_t *self = *self_p;
    if (!self)
        return;
    kf_llm_stage_cancel_all (self);
    kf_upstream_client_destroy (&self->client);
    kf_dict_destroy (&self->jobs);
    kf_dict_destroy (&self->waiting);
    msgpack_sbuffer_destroy (&self->token);
    free (self);
    *self_p = NULL;
}

const kf_bot_llm_t *
kf_llm_stage_bot (kf_llm_stage_t *self, const char *bot_id)
{
    const kf_bot_llm_t *bot = kf_config_bot (self->config, bot_id);
    return bot && bot->llm != KF_LLM_OFF && bot->upstream ? bot : NULL;
}

bool
kf_llm_stage_is_full (kf_llm_stage_t *self)
{
    return kf_upstream_client_is_full (self->client);
}

kf_upstream_client_t *
kf_llm_stage_client (kf_llm_stage_t *self)
{
    return self->client;
}

size_t
kf_llm_stage_jobs (kf_llm_stage_t *self)
{
    return kf_dict_size (self->jobs) + kf_dict_size (self->waiting);
}

//  --- Waiting for the broker's GRANT ------------------------------------------------------------

//  Builds the job's request now (the turn and the JOB body go away on return): the prompt owns
//  its strings; Dify's inputs, which it borrows from the JOB, are copied into the job
static void
s_keep_prompt (s_job_t *entry, const kf_upstream_config_t *upstream, const kf_turn_t *turn,
               const kf_wp_job_t *job)
{
    msgpack_sbuffer_init (&entry->inputs_buffer);
    kf_rag_prompt_build (&entry->prompt, upstream, turn, job);
    if (!entry->prompt.request.inputs)
        return;
    msgpack_packer pk;
    msgpack_packer_init (&pk, &entry->inputs_buffer, msgpack_sbuffer_write);
    msgpack_pack_object (&pk, *entry->prompt.request.inputs);
    entry->has_inputs = kf_mp_unpack_one (entry->inputs_buffer.data, entry->inputs_buffer.size,
                                          &entry->inputs);
    entry->prompt.request.inputs = entry->has_inputs ? &entry->inputs.data : NULL;
}

//  Sends [KFW1, ACQUIRE, job_id, {upstream}]: the broker answers GRANT when the job may start
static void
s_send_acquire (kf_llm_stage_t *self, s_job_t *entry)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    kf_mp_pack_kv_str (&pk, "upstream", entry->upstream->name);
    self->send (self->arg, "ACQUIRE", entry->job_id, &body);
    msgpack_sbuffer_destroy (&body);
}

static bool
s_cancel_waiting (kf_llm_stage_t *self, const char *job_id)
{
    s_job_t *entry = kf_dict_remove (self->waiting, job_id, strlen (job_id));
    if (entry)
        s_job_free (entry);
    return entry != NULL;
}

int
kf_llm_stage_start (kf_llm_stage_t *self, const char *job_id, bool is_stream,
                    const kf_upstream_config_t *upstream, const kf_turn_t *turn,
                    const kf_wp_job_t *job)
{
    if (strlen (job_id) >= sizeof ((s_job_t *) NULL)->job_id)
        return -1;
    s_job_t *entry = kf_calloc (1, sizeof *entry);
    snprintf (entry->job_id, sizeof entry->job_id, "%s", job_id);
    s_keep_prompt (entry, upstream, turn, job);
    entry->is_stream = is_stream;
    entry->upstream = upstream;
    snprintf (entry->intent, sizeof entry->intent, "%s", turn->intent);
    entry->confidence = turn->confidence;
    entry->failed_attempts = turn->failed_attempts;
    entry->is_kb_answered = turn->source != NULL;
    msgpack_sbuffer_init (&entry->sources);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &entry->sources, msgpack_sbuffer_write);
    for (int i = 0; i < turn->context_count; i++)
        kf_pipeline_pack_source (&pk, &turn->hits [i]);
    entry->source_count = turn->context_count;
    msgpack_sbuffer_init (&entry->turn_fields);
    msgpack_packer_init (&pk, &entry->turn_fields, msgpack_sbuffer_write);
    entry->turn_field_count = kf_pipeline_pack_turn_fields (turn, &pk);
    //  The knowledge base's own reply stands in when the upstream fails: its answer, its
    //  suggestions, or, when it had nothing to offer, the upstream's fallback reply
    bool has_kb_reply = turn->source || turn->suggestion_count > 0;
    entry->fallback = kf_strdup (has_kb_reply && turn->reply ? turn->reply : upstream->fallback_reply);
    for (int i = 0; i < turn->suggestion_count && !turn->source; i++)
        entry->suggestions [entry->suggestion_count++] = kf_strdup (turn->suggestions [i]);
    //  The broker decides when it starts: GRANT ok, at once or after a queue (kf_llm_stage_grant)
    kf_dict_put (self->waiting, entry->job_id, strlen (entry->job_id), entry);
    s_send_acquire (self, entry);
    return 0;
}

bool
kf_llm_stage_cancel (kf_llm_stage_t *self, const char *job_id)
{
    if (s_cancel_waiting (self, job_id))
        return true;
    size_t cursor = 0;
    void *value;
    while (kf_dict_next (self->jobs, &cursor, NULL, &value)) {
        s_job_t *job = value;
        if (strcmp (job->job_id, job_id) == 0) {
            kf_upstream_client_cancel (self->client, job->handle);
            s_remove (self, job);
            return true;
        }
    }
    return false;
}

//  Sends one PARTIAL token event
static void
s_send_token (kf_llm_stage_t *self, s_job_t *job, const char *text, size_t len)
{
    kf_pipeline_pack_token (&self->token, text, len);
    self->send (self->arg, "PARTIAL", job->job_id, &self->token);
}

typedef struct {
    kf_llm_stage_t *self;
    s_job_t *job;
} s_chunk_ctx_t;

static void
s_on_chunk (void *arg, const char *text, size_t len, kf_term_kind_t kind)
{
    (void) kind;
    s_chunk_ctx_t *ctx = arg;
    s_send_token (ctx->self, ctx->job, text, len);
}

static void
s_append (s_job_t *job, const char *text, size_t len)
{
    if (job->reply_len + len + 1 > job->reply_size) {
        job->reply_size = (job->reply_len + len + 1) * 2;
        job->reply = kf_realloc (job->reply, job->reply_size);
    }
    memcpy (job->reply + job->reply_len, text, len);
    job->reply_len += len;
    job->reply [job->reply_len] = 0;
}

//  Dify's retriever_resources as sources: {id 0, external_id: document_id, question:
//  document_name, category: dataset_name, score}
static void
s_add_dify_sources (s_job_t *job, const msgpack_object *resources)
{
    if (!resources || resources->type != MSGPACK_OBJECT_ARRAY)
        return;
    msgpack_packer pk;
    msgpack_packer_init (&pk, &job->sources, msgpack_sbuffer_write);
    for (uint32_t i = 0; i < resources->via.array.size && job->source_count < 16; i++) {
        const msgpack_object *resource = &resources->via.array.ptr [i];
        if (resource->type != MSGPACK_OBJECT_MAP)
            continue;
        static const char *keys [] = { "external_id", "document_id", "question", "document_name",
                                       "category", "dataset_name" };
        msgpack_pack_map (&pk, 5);
        kf_mp_pack_kv_int (&pk, "id", 0);
        for (int k = 0; k < 6; k += 2) {
            const char *value = "";
            size_t len = 0;
            kf_mp_str (kf_mp_get (resource, keys [k + 1]), &value, &len);
            kf_mp_pack_cstr (&pk, keys [k]);
            kf_mp_pack_str (&pk, value, len);
        }
        kf_mp_pack_kv_double (&pk, "score", kf_mp_get_double (resource, "score", 0));
        job->source_count++;
    }
}

//  Sends FINAL: the answer (or the fallback when `error` came before any token)
static void
s_send_final (kf_llm_stage_t *self, s_job_t *job, const kf_up_event_t *error)
{
    bool is_fallback = error && job->reply_len == 0;
    if (is_fallback && job->is_stream) {
        s_chunk_ctx_t ctx = { self, job };
        kf_text_chunks (job->fallback, strlen (job->fallback), self->chunk_chars, s_on_chunk, &ctx);
    }
    const char *reply = is_fallback ? job->fallback : job->reply ? job->reply : "";
    //  A failed upstream is an unanswered turn, unless the knowledge base answered it
    int64_t failed_attempts = !error ? 0
                            : is_fallback && job->is_kb_answered ? 0 : job->failed_attempts + 1;
    bool has_conversation = job->upstream->kind == KF_LLM_DIFY && *job->conversation_id;
    int suggestions = is_fallback ? job->suggestion_count : 0;
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_bool (&pk, "ok", true);
    kf_mp_pack_cstr (&pk, "result");
    msgpack_pack_map (&pk, 11 + job->turn_field_count + has_conversation + (error != NULL)
                         + job->is_stopped);
    kf_mp_pack_kv_str (&pk, "reply", reply);
    kf_mp_pack_kv_str (&pk, "response_type", "text");
    kf_mp_pack_cstr (&pk, "response_content");
    msgpack_pack_nil (&pk);
    kf_mp_pack_kv_str (&pk, "intent", job->intent);
    kf_mp_pack_kv_double (&pk, "confidence", job->confidence);
    kf_mp_pack_cstr (&pk, "sources");
    msgpack_pack_array (&pk, job->source_count);
    pk.callback (pk.data, job->sources.data, job->sources.size);
    kf_mp_pack_cstr (&pk, "suggestions");
    msgpack_pack_array (&pk, suggestions);
    for (int i = 0; i < suggestions; i++)
        kf_mp_pack_cstr (&pk, job->suggestions [i]);
    kf_mp_pack_kv_bool (&pk, "escalate_to_human", false);
    kf_mp_pack_kv_int (&pk, "failed_attempts", failed_attempts);
    msgpack_sbuffer_write (&body, job->turn_fields.data, job->turn_fields.size);
    kf_mp_pack_cstr (&pk, "usage");
    msgpack_pack_map (&pk, 3);
    kf_mp_pack_kv_int (&pk, "prompt_tokens", job->prompt_tokens);
    kf_mp_pack_kv_int (&pk, "completion_tokens", job->completion_tokens);
    kf_mp_pack_kv_int (&pk, "total_tokens", job->total_tokens);
    kf_mp_pack_kv_str (&pk, "upstream", job->upstream->name);
    if (has_conversation)
        kf_mp_pack_kv_str (&pk, "upstream_conversation_id", job->conversation_id);
    if (job->is_stopped)
        kf_mp_pack_kv_bool (&pk, "stopped", true);
    if (error) {
        kf_mp_pack_cstr (&pk, "upstream_error");
        msgpack_pack_map (&pk, 3);
        kf_mp_pack_kv_str (&pk, "code", *error->code ? error->code : "upstream_error");
        kf_mp_pack_kv_str (&pk, "message", error->message);
        kf_mp_pack_kv_int (&pk, "status", error->status);
    }
    self->send (self->arg, "FINAL", job->job_id, &body);
    msgpack_sbuffer_destroy (&body);
}

static void
s_on_event (void *arg, uint64_t handle, const kf_up_event_t *event)
{
    kf_llm_stage_t *self = arg;
    s_job_t *job = kf_dict_get (self->jobs, (const char *) &handle, sizeof handle);
    if (!job)
        return;
    switch (event->kind) {
        case KF_UP_TOKEN:
            if (event->text_len == 0 || job->is_replaced)
                break;
            s_append (job, event->text, event->text_len);
            if (job->is_stream)
                s_send_token (self, job, event->text, event->text_len);
            break;
        case KF_UP_REPLACE:
            job->reply_len = 0;
            s_append (job, event->text ? event->text : "", event->text_len);
            job->is_replaced = true;
            break;
        case KF_UP_USAGE:
            job->prompt_tokens = event->prompt_tokens;
            job->completion_tokens = event->completion_tokens;
            job->total_tokens = event->total_tokens;
            break;
        case KF_UP_CONVERSATION:
            if (event->text_len < sizeof job->conversation_id)
                snprintf (job->conversation_id, sizeof job->conversation_id, "%.*s",
                          (int) event->text_len, event->text);
            break;
        case KF_UP_SOURCES:
            s_add_dify_sources (job, event->sources);
            break;
        case KF_UP_FINISH:
            break;
        case KF_UP_ERROR:
            kf_warn ("job %s: upstream %s failed (%s, status %d): %s", job->job_id,
                     job->upstream->name, event->code, event->status, event->message);
            s_send_final (self, job, event);
            s_remove (self, job);
            break;
        case KF_UP_DONE:
            s_send_final (self, job, NULL);
            s_remove (self, job);
            break;
    }
}

//  Ends a job that could not start with {ok: false, error: busy}
static void
s_send_busy (kf_llm_stage_t *self, const char *job_id)
{
    kf_error_t err;
    kf_error_set (&err, KF_E_BUSY, "this worker has too many LLM calls open; retry later");
    err.retry_after_ms = 1000;
    msgpack_sbuffer body;
    kf_pipeline_pack_failure (&body, &err);
    self->send (self->arg, "FINAL", job_id, &body);
    msgpack_sbuffer_destroy (&body);
}

void
kf_llm_stage_grant (kf_llm_stage_t *self, const char *job_id, const char *status)
{
    s_job_t *job = kf_dict_remove (self->waiting, job_id, strlen (job_id));
    if (!job)
        return;                 //  Cancelled meanwhile
    if (strcmp (status, "ok") == 0) {
        job->handle = kf_upstream_client_start (self->client, &job->prompt.request);
        kf_rag_prompt_release (&job->prompt);
        if (job->handle == 0) {
            s_send_busy (self, job->job_id);
            s_job_free (job);
        }
        else
            kf_dict_put (self->jobs, (const char *) &job->handle, sizeof job->handle, job);
    }
    else
    if (strcmp (status, "open") == 0) {
        //  The breaker is open: the fallback at once, no call; the broker counts it a fallback
        kf_up_event_t event = { .kind = KF_UP_ERROR };
        snprintf (event.code, sizeof event.code, "circuit_open");
        snprintf (event.message, sizeof event.message, "the circuit breaker of upstream %s is open",
                  job->upstream->name);
        s_send_final (self, job, &event);
        s_job_free (job);
    }
    else
        s_job_free (job);       //  busy: the broker fails the chat 429 itself
}

bool
kf_llm_stage_stop (kf_llm_stage_t *self, const char *job_id)
{
    s_job_t *job = kf_dict_get (self->waiting, job_id, strlen (job_id));
    size_t cursor = 0;
    void *value;
    while (!job && kf_dict_next (self->jobs, &cursor, NULL, &value))
        if (strcmp (((s_job_t *) value)->job_id, job_id) == 0)
            job = value;
    if (!job)
        return false;
    job->is_stopped = true;
    s_send_final (self, job, NULL);     //  What was streamed so far
    kf_llm_stage_cancel (self, job_id); //  Closes the transfer (or the wait) and forgets the job
    return true;
}
