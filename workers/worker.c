/*  worker.c - the worker's event loop: KFW1 protocol to the broker, heartbeats, knowledge-base
    reloads, chat jobs through the pipeline, paced token streams, and the poll wiring of the LLM
    stage (llm_stage.h) for turns the pipeline hands to an upstream and of the business stage
    (business_stage.h) for business_query turns that call a business API. */
#include "workers/worker.h"
#include "common/clock.h"
#include "common/frames.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include "common/wire.h"
#include "workers/kb_loader.h"
#include "workers/kb_remote.h"
#include "workers/llm_stage.h"
#include "workers/partial_batch.h"
#include "workers/business_stage.h"
#include "workers/pipeline.h"
#include "common/text_norm.h"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KFW_SIGNATURE "KFW1"
#define S_BUSINESS_CALLS 256            //  Business API calls open at once per worker; beyond,
                                        //  a turn gets the API's error_reply at once

//  A streamed answer still being paced out, token by token
typedef struct s_stream_t {
    char job_id [32];
    char *text;                 //  Answer text
    size_t offset, len;         //  Next byte to stream, total bytes
    msgpack_sbuffer final;      //  FINAL body, sent after the last token
    int64_t due_us;             //  When the next token is due
    struct s_stream_t *next;
} s_stream_t;

typedef struct {
    const kf_worker_config_t *config;
    void *ctx;
    void *socket;               //  DEALER to the broker
    void *monitor;              //  Its failed CURVE handshakes (kf_curve_monitor), or NULL
    bool is_refused_logged;     //  Said once that the broker refuses this worker's key
    int64_t send_warned_us;     //  A failed send is logged again after this
    kf_kb_loader_t *loader;     //  Builds indexes on its own thread
    kf_kb_remote_t *remote;     //  Receives them from the broker (--kb broker), else NULL
    kf_kb_index_t *kb;          //  Current knowledge base, NULL until loaded
    kf_kb_suggest_t *suggest;   //  Its suggestions, destroyed before it
    kf_bot_models_t *models;    //  Its bots' intent models and chit-chat tables
    int64_t kb_version;
    kf_pipeline_config_t pipeline;
    int64_t heartbeat_at_us;    //  Next heartbeat to send
    int64_t broker_expiry_us;   //  Broker presumed gone after this
    int64_t kb_poll_at_us;
    s_stream_t *streams;        //  Paced streams, unordered
    kf_llm_stage_t *llm;        //  LLM jobs; NULL when no bot uses an LLM
    kf_business_stage_t *business;  //  business_query calls; NULL when the config has no API
    zmq_pollitem_t *items;      //  The broker socket, then the upstream client's descriptors
    int item_size;
    uint64_t jobs_done;
    bool can_batch;             //  The broker accepts batched PARTIALs (its FEATURES said so)
    kf_partial_batch_t *batch;  //  PARTIAL events of this loop turn, when it does
    msgpack_sbuffer token;      //  The token event being sent, its memory reused
} s_worker_t;

static volatile sig_atomic_t s_interrupted = 0;

static void
s_on_signal (int signum)
{
    (void) signum;
    s_interrupted = 1;
}

void
kf_worker_config_defaults (kf_worker_config_t *config)
{
    config->broker = "tcp://127.0.0.1:7702";
    config->db_path = "kefu.db";
    config->is_kb_remote = false;
    config->name = "worker";
    config->heartbeat_ms = 1000;
    config->liveness = 3;
    config->capacity = 256;
    config->pace_ms = 0;
    config->chunk_chars = 2;
    config->kb_poll_ms = 250;
    config->llm = NULL;
    config->max_llm_requests = 256;
}

//  Sends [KFW1, command, job_id?, body?] at once (`body` NULL: none)
static void
s_send_now (s_worker_t *self, const char *command, const char *job_id, const char *body,
            size_t body_len)
{
    const void *data [4] = { KFW_SIGNATURE, command };
    size_t size [4] = { 4, strlen (command) };
    int count = 2;
    if (job_id) {
        data [count] = job_id;
        size [count++] = strlen (job_id);
    }
    if (body) {
        data [count] = body;
        size [count++] = body_len;
    }
    //  Never blocks the loop: with no way to the broker (a connection it refused: a DEALER without
    //  a peer blocks) the message is dropped, and the broker's deadlines and heartbeats take over
    if (kf_frames_send (self->socket, count, data, size, ZMQ_DONTWAIT) == 0)
        return;
    int64_t now = kf_mono_us ();
    if (now >= self->send_warned_us) {
        kf_warn ("send %s failed: %s (messages to the broker are dropped while this lasts)",
                 command, errno == EAGAIN ? "no connection to the broker" : zmq_strerror (errno));
        self->send_warned_us = now + 10000000;
    }
}

//  The batch's way out (partial_batch.h): straight to the socket
static void
s_send_partials (void *arg, const char *command, const char *job_id, const char *body,
                 size_t body_len)
{
    s_send_now (arg, command, job_id, body, body_len);
}

//  Sends [KFW1, command, job_id?, body?]: a PARTIAL joins this turn's batch (partial_batch.h) when
//  the broker takes batches; anything else goes after the batch, so the broker sees every message
//  in the order it was made
static void
s_send (s_worker_t *self, const char *command, const char *job_id, const msgpack_sbuffer *body)
{
    if (self->can_batch && job_id && body && strcmp (command, "PARTIAL") == 0
    &&  kf_partial_batch_add (self->batch, job_id, body->data, body->size))
        return;
    kf_partial_batch_flush (self->batch);
    s_send_now (self, command, job_id, body ? body->data : NULL, body ? body->size : 0);
}

static void
s_send_for_stage (void *arg, const char *command, const char *job_id, const msgpack_sbuffer *body)
{
    s_send (arg, command, job_id, body);
}

static void
s_send_ready (s_worker_t *self)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 5);
    kf_mp_pack_kv_str (&pk, "name", self->config->name);
    kf_mp_pack_kv_int (&pk, "pid", getpid ());
    kf_mp_pack_kv_int (&pk, "capacity", self->config->capacity);
    kf_mp_pack_kv_int (&pk, "heartbeat_ms", self->config->heartbeat_ms);
    kf_mp_pack_kv_int (&pk, "kb_version", self->kb_version);
    s_send (self, "READY", NULL, &body);
    msgpack_sbuffer_destroy (&body);
}

//  Packs one bot's calibration curve into a QUALITY body's list
typedef struct {
    msgpack_packer *pk;
    int count;
} s_quality_ctx_t;

static void
s_pack_quality (void *arg, const char *bot_id, const kf_kb_calibration_t *calibration)
{
    s_quality_ctx_t *ctx = arg;
    if (ctx->count >= KF_QUALITY_BOTS_MAX)
        return;
    ctx->count++;
    msgpack_pack_map (ctx->pk, 2);
    kf_mp_pack_kv_str (ctx->pk, "bot_id", bot_id);
    kf_mp_pack_cstr (ctx->pk, "curve");
    kf_answer_curve_pack (&calibration->curve, ctx->pk);
}

static void
s_count_quality (void *arg, const char *bot_id, const kf_kb_calibration_t *calibration)
{
    (void) bot_id;
    (void) calibration;
    (*(int *) arg)++;
}

//  Sends QUALITY: how surely each bot of the knowledge base answers (its calibration curve), for
//  bot.get and stats. After every knowledge base taken and every connection (a broker that
//  restarted knows nothing)
static void
s_send_quality (s_worker_t *self)
{
    if (!self->models || !self->socket)
        return;
    int count = 0;
    kf_bot_models_each_calibration (self->models, s_count_quality, &count);
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_int (&pk, "kb_version", self->kb_version);
    kf_mp_pack_cstr (&pk, "bots");
    msgpack_pack_array (&pk, count < KF_QUALITY_BOTS_MAX ? count : KF_QUALITY_BOTS_MAX);
    s_quality_ctx_t ctx = { &pk, 0 };
    kf_bot_models_each_calibration (self->models, s_pack_quality, &ctx);
    s_send (self, "QUALITY", NULL, &body);
    msgpack_sbuffer_destroy (&body);
}

static void
s_connect (s_worker_t *self)
{
    if (self->monitor)
        zmq_close (self->monitor);
    self->monitor = NULL;
    if (self->socket)
        zmq_close (self->socket);
    kf_partial_batch_clear (self->batch);   //  Their jobs went with the old connection
    self->can_batch = false;            //  Until this broker says it takes batches
    self->socket = zmq_socket (self->ctx, ZMQ_DEALER);
    int linger = 0, hwm = 100000;
    zmq_setsockopt (self->socket, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (self->socket, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (self->socket, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (self->config->curve)
        kf_curve_client_setup (self->socket, self->config->curve);
    self->monitor = kf_curve_monitor (self->ctx, self->socket);   //  Plain ones fail on CURVE brokers
    if (zmq_connect (self->socket, self->config->broker) == -1)
        kf_error ("cannot connect to %s: %s", self->config->broker, zmq_strerror (errno));
    s_send_ready (self);
    s_send_quality (self);
    int64_t now = kf_mono_us ();
    if (self->remote)
        kf_kb_remote_on_connect (self->remote, self->kb_version, now);
    self->heartbeat_at_us = now + self->config->heartbeat_ms * 1000LL;
    self->broker_expiry_us = now + (int64_t) self->config->heartbeat_ms * 1000 * self->config->liveness;
}

//  Sends one PARTIAL event {event: token, content}
static void
s_send_token (s_worker_t *self, const char *job_id, const char *text, size_t len)
{
    kf_pipeline_pack_token (&self->token, text, len);
    s_send (self, "PARTIAL", job_id, &self->token);
}

typedef struct {
    s_worker_t *worker;
    const char *job_id;
} s_token_ctx_t;

static void
s_on_chunk (void *arg, const char *text, size_t len, kf_term_kind_t kind)
{
    (void) kind;
    s_token_ctx_t *ctx = arg;
    s_send_token (ctx->worker, ctx->job_id, text, len);
}

static void
s_send_meta (s_worker_t *self, const char *job_id, kf_turn_t *turn)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1 + kf_pipeline_pack_meta_fields (turn, NULL));
    kf_mp_pack_kv_str (&pk, "event", "meta");
    kf_pipeline_pack_meta_fields (turn, &pk);
    s_send (self, "PARTIAL", job_id, &body);
    msgpack_sbuffer_destroy (&body);
}

static void
s_send_error (s_worker_t *self, const char *job_id, kf_errc_t errc, const char *message)
{
    kf_error_t err;
    kf_error_set (&err, errc, "%s", message);
    msgpack_sbuffer body;
    kf_pipeline_pack_failure (&body, &err);
    s_send (self, "FINAL", job_id, &body);
    msgpack_sbuffer_destroy (&body);
}

//  Hands a business_query turn to the business stage: meta (from the turn as the API answers it,
//  without the knowledge answer that stood in), then the call; its tokens and FINAL come from
//  the stage, with the turn's fields through kf_pipeline_business_fields
static void
s_run_business (s_worker_t *self, const char *job_id, const kf_wp_job_t *job, bool is_stream,
                kf_turn_t *turn)
{
    void *fields = kf_pipeline_business_fields_new (turn);
    if (is_stream)
        s_send_meta (self, job_id, turn);
    char user_id [260] = "", session_id [72] = "";
    if (job->user_id.data && job->user_id.len < sizeof user_id)
        memcpy (user_id, job->user_id.data, job->user_id.len), user_id [job->user_id.len] = 0;
    if (job->session_id.data && job->session_id.len < sizeof session_id)
        memcpy (session_id, job->session_id.data, job->session_id.len),
        session_id [job->session_id.len] = 0;
    kf_business_turn_t business = {
        .job_id = job_id, .is_stream = is_stream, .bot_id = turn->bot_id,
        .vars = { turn->slots.order_no, turn->slots.phone, user_id, session_id, turn->bot_id },
        .failed_attempts = turn->failed_attempts, .tail = turn->business_tail,
        .fields = kf_pipeline_business_fields, .fields_arg = fields,
        .free_arg = kf_pipeline_business_fields_free
    };
    kf_business_stage_run (self->business, &business);
}

//  Runs one chat job: meta first, then the tokens, then FINAL with the result
static void
s_run_chat (s_worker_t *self, const char *job_id, const kf_wp_job_t *job)
{
    bool is_stream = job->stream;
    kf_turn_t turn;
    kf_pipeline_env_t env = { self->kb, self->models, self->config->llm };
    kf_pipeline_prepare (&turn, &self->pipeline, &env, job);
    turn.kb_version = self->kb_version;
    //  The knowledge-base decision is local and instant, so meta can carry sources; an upstream
    //  call (a later stage) starts only after meta is out
    kf_pipeline_answer (&turn, &self->pipeline);
    const kf_bot_llm_t *bot = self->llm ? kf_llm_stage_bot (self->llm, turn.bot_id) : NULL;
    bool is_llm = bot && kf_pipeline_needs_llm (&turn, bot->llm);
    if (is_llm && kf_llm_stage_is_full (self->llm)) {
        s_send_error (self, job_id, KF_E_BUSY, "this worker has too many LLM calls open; retry later");
        kf_turn_release (&turn);
        return;
    }
    if (is_llm)
        kf_pipeline_use_llm (&turn, &self->pipeline);
    else
    if (self->business && kf_pipeline_needs_business (&turn)
    &&  kf_business_stage_api (self->business, turn.bot_id)) {
        s_run_business (self, job_id, job, is_stream, &turn);
        kf_turn_release (&turn);
        return;
    }
    if (is_stream)
        s_send_meta (self, job_id, &turn);
    if (is_llm) {
        if (kf_llm_stage_start (self->llm, job_id, is_stream, bot->upstream, &turn, job))
            s_send_error (self, job_id, KF_E_BUSY, "this worker has too many LLM calls open");
        kf_turn_release (&turn);
        return;
    }
    msgpack_sbuffer final;
    msgpack_sbuffer_init (&final);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &final, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_bool (&pk, "ok", true);
    kf_mp_pack_cstr (&pk, "result");
    kf_pipeline_pack_result (&turn, &pk);
    if (is_stream && self->config->pace_ms > 0) {
        s_stream_t *stream = kf_calloc (1, sizeof *stream);
        snprintf (stream->job_id, sizeof stream->job_id, "%s", job_id);
        stream->text = turn.reply;
        stream->len = strlen (turn.reply);
        stream->final = final;
        stream->due_us = kf_mono_us ();
        stream->next = self->streams;
        self->streams = stream;
        turn.reply = NULL;              //  Now owned by the stream
    }
    else {
        if (is_stream) {
            s_token_ctx_t ctx = { self, job_id };
            kf_text_chunks (turn.reply, strlen (turn.reply), self->config->chunk_chars, s_on_chunk, &ctx);
        }
        s_send (self, "FINAL", job_id, &final);
        msgpack_sbuffer_destroy (&final);
        self->jobs_done++;
    }
    kf_turn_release (&turn);
}

//  Length of the next token of a paced stream
typedef struct { size_t len; } s_first_chunk_t;

static void
s_take_first (void *arg, const char *text, size_t len, kf_term_kind_t kind)
{
    (void) text, (void) kind;
    s_first_chunk_t *first = arg;
    if (first->len == 0)
        first->len = len;
}

static void
s_stream_free (s_stream_t *stream)
{
    free (stream->text);
    msgpack_sbuffer_destroy (&stream->final);
    free (stream);
}

//  Sends the tokens that are due; finishes streams that are done
static void
s_pace_streams (s_worker_t *self, int64_t now)
{
    s_stream_t **link = &self->streams;
    while (*link) {
        s_stream_t *stream = *link;
        if (stream->due_us > now) {
            link = &stream->next;
            continue;
        }
        if (stream->offset < stream->len) {
            s_first_chunk_t first = { 0 };
            //  Chunk only a bounded window: the first token never needs more
            size_t window = stream->len - stream->offset < 256 ? stream->len - stream->offset : 256;
            size_t complete = kf_utf8_complete_prefix (stream->text + stream->offset, window);
            window = complete ? complete : window;      //  Broken text still moves on
            kf_text_chunks (stream->text + stream->offset, window, self->config->chunk_chars,
                            s_take_first, &first);
            size_t len = first.len ? first.len : window;
            s_send_token (self, stream->job_id, stream->text + stream->offset, len);
            stream->offset += len;
            stream->due_us = now + self->config->pace_ms * 1000LL;
            link = &stream->next;
            continue;
        }
        s_send (self, "FINAL", stream->job_id, &stream->final);
        self->jobs_done++;
        *link = stream->next;
        s_stream_free (stream);
    }
}

static void
s_cancel_stream (s_worker_t *self, const char *job_id)
{
    for (s_stream_t **link = &self->streams; *link; link = &(*link)->next)
        if (strcmp ((*link)->job_id, job_id) == 0) {
            s_stream_t *stream = *link;
            *link = stream->next;
            s_stream_free (stream);
            return;
        }
}

//  A FINAL result key that a stopped stream's FINAL does not repeat (it says its own)
static bool
s_is_unrepeated (const msgpack_object *key)
{
    return kf_mp_str_eq_key (key, "reply") || kf_mp_str_eq_key (key, "cache")
        || kf_mp_str_eq_key (key, "stopped");
}

//  Stops a paced stream (the broker's STOP): FINAL with the text streamed so far and "stopped":
//  true, without the answer-cache entry (a partial answer is never cached). False when unknown.
static bool
s_stop_stream (s_worker_t *self, const char *job_id)
{
    for (s_stream_t **link = &self->streams; *link; link = &(*link)->next) {
        s_stream_t *stream = *link;
        if (strcmp (stream->job_id, job_id) != 0)
            continue;
        msgpack_unpacked final;
        bool has_final = kf_mp_unpack_one (stream->final.data, stream->final.size, &final);
        const msgpack_object *result = has_final ? kf_mp_get (&final.data, "result") : NULL;
        uint32_t size = result && result->type == MSGPACK_OBJECT_MAP ? result->via.map.size : 0;
        uint32_t kept = 0;
        for (uint32_t i = 0; i < size; i++)
            kept += !s_is_unrepeated (&result->via.map.ptr [i].key);
        msgpack_sbuffer body;
        msgpack_sbuffer_init (&body);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 2);
        kf_mp_pack_kv_bool (&pk, "ok", true);
        kf_mp_pack_cstr (&pk, "result");
        msgpack_pack_map (&pk, kept + 2);
        for (uint32_t i = 0; i < size; i++) {
            const msgpack_object *key = &result->via.map.ptr [i].key;
            if (s_is_unrepeated (key))
                continue;
            msgpack_pack_object (&pk, *key);
            msgpack_pack_object (&pk, result->via.map.ptr [i].val);
        }
        kf_mp_pack_cstr (&pk, "reply");
        kf_mp_pack_str (&pk, stream->text, stream->offset);
        kf_mp_pack_kv_bool (&pk, "stopped", true);
        s_send (self, "FINAL", job_id, &body);
        msgpack_sbuffer_destroy (&body);
        if (has_final)
            msgpack_unpacked_destroy (&final);
        *link = stream->next;
        s_stream_free (stream);
        self->jobs_done++;
        return true;
    }
    return false;
}

static void
s_drop_streams (s_worker_t *self)
{
    while (self->streams) {
        s_stream_t *stream = self->streams;
        self->streams = stream->next;
        s_stream_free (stream);
    }
}

//  Runs a suggest job: {params: {bot_id, keyword, number}} -> {data: [{id, question}]}
static void
s_run_suggest (s_worker_t *self, const char *job_id, const kf_wp_job_t *job)
{
    const char *bot_id = job->bot_id.data ? job->bot_id.data : "default";
    size_t bot_len = job->bot_id.data ? job->bot_id.len : 7;
    const char *keyword = job->keyword.data ? job->keyword.data : "";
    size_t keyword_len = job->keyword.len;
    int number = job->has_number && job->number >= 0 && job->number <= 100 ? (int) job->number : 3;
    char bot [260];
    snprintf (bot, sizeof bot, "%.*s", (int) bot_len, bot_id);
    const kf_kb_item_t *items [10];
    int count = self->suggest ? kf_kb_suggest_find (self->suggest, bot, keyword, keyword_len, items,
                                                    number < 10 ? number : 10) : 0;
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_bool (&pk, "ok", true);
    kf_mp_pack_cstr (&pk, "result");
    msgpack_pack_map (&pk, 1);
    kf_mp_pack_cstr (&pk, "data");
    msgpack_pack_array (&pk, count);
    for (int i = 0; i < count; i++) {
        msgpack_pack_map (&pk, 2);
        kf_mp_pack_kv_int (&pk, "id", items [i]->id);
        kf_mp_pack_kv_str (&pk, "question", items [i]->question);
    }
    s_send (self, "FINAL", job_id, &body);
    msgpack_sbuffer_destroy (&body);
}

static void
s_on_job (s_worker_t *self, kf_frames_t *frames)
{
    if (frames->count != 4 || kf_frames_size (frames, 2) >= 32) {
        kf_warn ("malformed JOB (%d frames)", frames->total);
        return;
    }
    char job_id [32];
    snprintf (job_id, sizeof job_id, "%.*s", (int) kf_frames_size (frames, 2), kf_frames_data (frames, 2));
    msgpack_unpacked unpacked;
    if (!kf_mp_unpack_one (kf_frames_data (frames, 3), kf_frames_size (frames, 3), &unpacked)) {
        s_send_error (self, job_id, KF_E_INTERNAL, "worker could not decode the job");
        return;
    }
    kf_wp_job_t job;
    kf_wp_job_decode (&unpacked.data, &job);
    if (job.method.len == 4 && memcmp (job.method.data, "chat", 4) == 0)
        s_run_chat (self, job_id, &job);
    else
    if (job.method.len == 7 && memcmp (job.method.data, "suggest", 7) == 0)
        s_run_suggest (self, job_id, &job);
    else
        s_send_error (self, job_id, KF_E_UNKNOWN_METHOD, "worker does not know this job method");
    msgpack_unpacked_destroy (&unpacked);
}

static void
s_on_broker_message (s_worker_t *self)
{
    kf_frames_t frames;
    while (kf_frames_recv (&frames, self->socket, ZMQ_DONTWAIT) == 0) {
        self->broker_expiry_us = kf_mono_us ()
                               + (int64_t) self->config->heartbeat_ms * 1000 * self->config->liveness;
        if (frames.count < 2 || !kf_frames_is (&frames, 0, KFW_SIGNATURE))
            kf_warn ("ignoring a malformed message from the broker");
        else
        if (self->remote && kf_kb_remote_on_message (self->remote, &frames, self->kb_version,
                                                     kf_mono_us ()))
            ;
        else
        if (kf_frames_is (&frames, 1, "JOB"))
            s_on_job (self, &frames);
        else
        if (kf_frames_is (&frames, 1, "FEATURES") && frames.count == 3) {
            msgpack_unpacked features;
            if (kf_mp_unpack_one (kf_frames_data (&frames, 2), kf_frames_size (&frames, 2), &features)) {
                self->can_batch = kf_mp_get_bool (&features.data, "partial_batch", false);
                msgpack_unpacked_destroy (&features);
            }
        }
        else
        if (kf_frames_is (&frames, 1, "GRANT") && frames.count == 4) {
            char job_id [32], status [8];
            snprintf (job_id, sizeof job_id, "%.*s", (int) kf_frames_size (&frames, 2),
                      kf_frames_data (&frames, 2));
            snprintf (status, sizeof status, "%.*s", (int) kf_frames_size (&frames, 3),
                      kf_frames_data (&frames, 3));
            if (self->llm)
                kf_llm_stage_grant (self->llm, job_id, status);
        }
        else
        if (kf_frames_is (&frames, 1, "CANCEL") && frames.count == 3) {
            char job_id [32];
            snprintf (job_id, sizeof job_id, "%.*s", (int) kf_frames_size (&frames, 2),
                      kf_frames_data (&frames, 2));
            if ((!self->llm || !kf_llm_stage_cancel (self->llm, job_id))
            &&  (!self->business || !kf_business_stage_cancel (self->business, job_id)))
                s_cancel_stream (self, job_id);
        }
        else
        if (kf_frames_is (&frames, 1, "STOP") && frames.count == 3) {
            char job_id [32];
            snprintf (job_id, sizeof job_id, "%.*s", (int) kf_frames_size (&frames, 2),
                      kf_frames_data (&frames, 2));
            if ((!self->llm || !kf_llm_stage_stop (self->llm, job_id))
            &&  (!self->business || !kf_business_stage_stop (self->business, job_id)))
                s_stop_stream (self, job_id);   //  Unknown: already answered, nothing to do
        }
        else
        if (kf_frames_is (&frames, 1, "DISCONNECT")) {
            kf_info ("broker asked us to reconnect");
            kf_frames_close (&frames);
            s_drop_streams (self);
            if (self->llm)
                kf_llm_stage_cancel_all (self->llm);
            if (self->business)
                kf_business_stage_cancel_all (self->business);
            s_connect (self);
            continue;
        }
        kf_frames_close (&frames);
    }
}

//  Swaps in a newer knowledge base if the loader has one; jobs in flight hold no index pointers
//  across loop iterations, so the old one can go at once
static void
s_take_kb (s_worker_t *self, int wait_ms)
{
    int64_t version;
    kf_kb_suggest_t *suggest;
    kf_bot_models_t *models;
    kf_kb_index_t *index = kf_kb_loader_take (self->loader, wait_ms, &version, &suggest, &models);
    if (!index)
        return;
    kf_kb_suggest_destroy (&self->suggest);
    kf_kb_index_destroy (&self->kb);
    kf_bot_models_destroy (&self->models);
    self->kb = index;
    self->suggest = suggest;
    self->models = models;
    self->kb_version = version;
    kf_info ("knowledge base version %lld loaded: %zu items", (long long) version,
             kf_kb_index_size (index));
    s_send_quality (self);
}

//  Milliseconds until the next timer, for zmq_poll
static long
s_next_timeout (s_worker_t *self, int64_t now)
{
    int64_t next = self->heartbeat_at_us;
    if (self->kb_poll_at_us < next)
        next = self->kb_poll_at_us;
    if (self->broker_expiry_us < next)
        next = self->broker_expiry_us;
    if (self->remote && kf_kb_remote_due_us (self->remote) < next)
        next = kf_kb_remote_due_us (self->remote);
    for (s_stream_t *stream = self->streams; stream; stream = stream->next)
        if (stream->due_us < next)
            next = stream->due_us;
    return next <= now ? 0 : (long) ((next - now + 999) / 1000);
}

//  A broker that refuses this worker's CURVE key never answers: say why, once
static void
s_check_handshakes (s_worker_t *self)
{
    int refused, mismatched, failed;
    kf_curve_monitor_failures (self->monitor, &refused, &mismatched, &failed);
    const kf_curve_t *curve = self->config->curve;
    bool has_failed = refused || mismatched || failed;
    if (!has_failed || self->is_refused_logged)
        return;
    self->is_refused_logged = true;
    if (mismatched && !curve)
        kf_error ("the broker uses CURVE: give its public key (--broker-key or KEFU_BROKER_KEY) "
                  "and this worker's key pair (--curve-key)");
    else
    if (mismatched)
        kf_error ("the broker does not use CURVE: start this worker without --broker-key and "
                  "KEFU_BROKER_KEY");
    else
    if (refused && self->config->is_curve_key_made)
        kf_error ("the broker refused this worker's CURVE key, made for this run only: make one "
                  "with kefuctl keygen NAME, give it with --curve-key and add NAME.pub to the "
                  "broker's --authorized-workers file");
    else
    if (refused)
        kf_error ("the broker refused this worker's CURVE key %s: add it to the broker's "
                  "--authorized-workers file", curve->public_key);
    else
        kf_error ("the handshake with the broker broke off: is its public key right, and is %s a "
                  "kefu broker's worker endpoint?", self->config->broker);
}

static void
s_on_timers (s_worker_t *self, int64_t now)
{
    if (now >= self->broker_expiry_us) {
        s_check_handshakes (self);      //  Why, when a handshake failed
        kf_warn ("broker silent for %d heartbeats, reconnecting", self->config->liveness);
        s_drop_streams (self);
        if (self->llm)
            kf_llm_stage_cancel_all (self->llm);
        if (self->business)
            kf_business_stage_cancel_all (self->business);
        s_connect (self);
        return;
    }
    if (now >= self->heartbeat_at_us) {
        s_send (self, "HEARTBEAT", NULL, NULL);
        self->heartbeat_at_us = now + self->config->heartbeat_ms * 1000LL;
        s_check_handshakes (self);
    }
    if (now >= self->kb_poll_at_us) {
        s_take_kb (self, 0);
        self->kb_poll_at_us = now + self->config->kb_poll_ms * 1000LL;
    }
    if (self->remote) {
        s_take_kb (self, 0);            //  A snapshot built since: swap it in at once
        kf_kb_remote_on_timer (self->remote, self->kb_version, now);
    }
    if (self->streams)
        s_pace_streams (self, now);
}

//  Fills self->items: the broker socket, then the upstream client's and the business client's
//  descriptors; returns how many of those, and shortens `timeout` to the clients'
static int
s_fill_items (s_worker_t *self, int64_t now, long *timeout)
{
    kf_upstream_client_t *client = self->llm ? kf_llm_stage_client (self->llm) : NULL;
    kf_business_client_t *business = self->business ? kf_business_stage_client (self->business) : NULL;
    int wanted = client ? kf_upstream_client_pollitem_count (client) : 0;
    int business_wanted = business ? kf_business_client_pollitem_count (business) : 0;
    if (1 + wanted + business_wanted > self->item_size) {
        self->item_size = 2 * (1 + wanted + business_wanted);
        self->items = kf_realloc (self->items, self->item_size * sizeof (zmq_pollitem_t));
    }
    self->items [0] = (zmq_pollitem_t) { self->socket, 0, ZMQ_POLLIN, 0 };
    long client_timeout = client ? kf_upstream_client_timeout_ms (client, now) : -1;
    long business_timeout = business ? kf_business_client_timeout_ms (business, now) : -1;
    if (client_timeout >= 0 && (*timeout < 0 || client_timeout < *timeout))
        *timeout = client_timeout;
    if (business_timeout >= 0 && (*timeout < 0 || business_timeout < *timeout))
        *timeout = business_timeout;
    int count = client ? kf_upstream_client_pollitems (client, self->items + 1, wanted) : 0;
    if (business)
        count += kf_business_client_pollitems (business, self->items + 1 + count, business_wanted);
    return count;
}

int
kf_worker_run (const kf_worker_config_t *config)
{
    s_worker_t self = { .config = config };
    struct sigaction action = { .sa_handler = s_on_signal };
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    signal (SIGPIPE, SIG_IGN);
    //  A supervising broker starts us with these blocked; one that came already is delivered now
    sigset_t stops;
    sigemptyset (&stops);
    sigaddset (&stops, SIGTERM);
    sigaddset (&stops, SIGINT);
    sigprocmask (SIG_UNBLOCK, &stops, NULL);
    kf_pipeline_config_defaults (&self.pipeline);
    self.loader = kf_kb_loader_new (config->is_kb_remote ? NULL : config->db_path, config->kb_poll_ms);
    if (config->is_kb_remote)
        self.remote = kf_kb_remote_new (self.loader, s_send_for_stage, &self);
    else
        s_take_kb (&self, 1000);        //  Start with the knowledge base when there is one
    self.ctx = zmq_ctx_new ();
    self.batch = kf_partial_batch_new (s_send_partials, &self);
    msgpack_sbuffer_init (&self.token);
    s_connect (&self);
    kf_info ("connected to %s, capacity %d, knowledge base from %s", config->broker,
             config->capacity, config->is_kb_remote ? "the broker" : config->db_path);
    self.kb_poll_at_us = kf_mono_us () + config->kb_poll_ms * 1000LL;
    if (config->llm && kf_config_upstream_count (config->llm) > 0) {
        self.llm = kf_llm_stage_new (config->llm, config->max_llm_requests, config->chunk_chars,
                                     s_send_for_stage, &self);
        kf_info ("LLM upstreams configured: %zu", kf_config_upstream_count (config->llm));
    }
    if (config->llm && kf_config_business_count (config->llm) > 0) {
        self.business = kf_business_stage_new (config->llm, S_BUSINESS_CALLS, config->chunk_chars,
                                               s_send_for_stage, &self);
        kf_info ("business APIs configured: %zu", kf_config_business_count (config->llm));
    }
    while (!s_interrupted) {
        kf_partial_batch_flush (self.batch);    //  What this turn produced leaves before the wait
        int64_t now = kf_mono_us ();
        long timeout = s_next_timeout (&self, now);
        int count = s_fill_items (&self, now, &timeout);
        int rc = zmq_poll (self.items, 1 + count, timeout);
        if (rc == -1 && errno != EINTR)
            break;
        if (rc > 0 && (self.items [0].revents & ZMQ_POLLIN))
            s_on_broker_message (&self);
        if (self.llm) {
            //  After the broker's messages: a CANCEL may have ended a transfer polled here; the
            //  client skips descriptors it no longer has
            if (rc > 0)
                kf_upstream_client_on_poll (kf_llm_stage_client (self.llm), self.items + 1, count);
            kf_upstream_client_on_timer (kf_llm_stage_client (self.llm), kf_mono_us ());
        }
        if (self.business) {
            //  Each client acts on its own descriptor among the items and skips the others'
            kf_business_client_t *business = kf_business_stage_client (self.business);
            if (rc > 0)
                kf_business_client_on_poll (business, self.items + 1, count);
            kf_business_client_on_timer (business, kf_mono_us ());
        }
        s_on_timers (&self, kf_mono_us ());
    }
    s_send (&self, "DISCONNECT", NULL, NULL);
    kf_info ("stopping after %llu jobs", (unsigned long long) self.jobs_done);
    kf_partial_batch_destroy (&self.batch);
    msgpack_sbuffer_destroy (&self.token);
    s_drop_streams (&self);
    kf_llm_stage_destroy (&self.llm);
    kf_business_stage_destroy (&self.business);
    free (self.items);
    if (self.monitor)
        zmq_close (self.monitor);
    zmq_close (self.socket);
    zmq_ctx_term (self.ctx);
    kf_kb_remote_destroy (&self.remote);
    kf_kb_loader_destroy (&self.loader);
    kf_kb_suggest_destroy (&self.suggest);
    kf_kb_index_destroy (&self.kb);
    kf_bot_models_destroy (&self.models);
    return 0;
}
