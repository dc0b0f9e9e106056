/*  worker_proto.c - the chat messages of the worker protocol as typed structs. See worker_proto.h. */
#include "common/worker_proto.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include <string.h>

kf_wp_str_t
kf_wp_str (const char *text)
{
    return (kf_wp_str_t) { text, text ? strlen (text) : 0 };
}

void
kf_wp_usage_pack (msgpack_packer *pk, bool has, const kf_wp_usage_t *usage)
{
    kf_mp_pack_cstr (pk, "usage");
    if (!has) {
        msgpack_pack_nil (pk);
        return;
    }
    msgpack_pack_map (pk, 3);
    kf_mp_pack_kv_int (pk, "prompt_tokens", usage->prompt_tokens);
    kf_mp_pack_kv_int (pk, "completion_tokens", usage->completion_tokens);
    kf_mp_pack_kv_int (pk, "total_tokens", usage->total_tokens);
}

void
kf_wp_pack_str (msgpack_packer *pk, kf_wp_str_t str)
{
    if (str.data)
        kf_mp_pack_str (pk, str.data, str.len);
    else
        msgpack_pack_nil (pk);
}

static void
s_read_str (const msgpack_object *value, kf_wp_str_t *str)
{
    if (value->type == MSGPACK_OBJECT_STR)
        *str = (kf_wp_str_t) { value->via.str.ptr, value->via.str.size };
    else
        *str = (kf_wp_str_t) { NULL, 0 };
}

//  A number of either kind; false for anything else
static bool
s_read_double (const msgpack_object *value, double *number)
{
    switch (value->type) {
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            *number = value->via.f64;
            return true;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            *number = (double) value->via.u64;
            return true;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            *number = (double) value->via.i64;
            return true;
        default:
            return false;
    }
}

static bool
s_read_int (const msgpack_object *value, int64_t *number)
{
    return kf_mp_int (value, number);
}

static const msgpack_object *
s_typed (const msgpack_object *value, msgpack_object_type type)
{
    return value->type == type ? value : NULL;
}

static bool
s_is (const msgpack_object *key, const char *name, size_t len)
{
    return key->via.str.size == len && memcmp (key->via.str.ptr, name, len) == 0;
}

#define S_IS(key, name) s_is (key, name, sizeof (name) - 1)

//  A function of one pair of a map, its key a string
typedef void (s_pair_fn) (const msgpack_object *key, const msgpack_object *value, void *arg);

//  Calls `fn` for each pair of `map` whose key is a string, in order; false when `map` is not a
//  map (nothing called)
static bool
s_each (const msgpack_object *map, s_pair_fn *fn, void *arg)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return false;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (map->via.map.ptr [i].key.type == MSGPACK_OBJECT_STR)
            fn (&map->via.map.ptr [i].key, &map->via.map.ptr [i].val, arg);
    return true;
}

static bool
s_read_bool (const msgpack_object *value)
{
    return value->type == MSGPACK_OBJECT_BOOLEAN && value->via.boolean;
}

//  An integer, or 0
static int64_t
s_read_count (const msgpack_object *value)
{
    int64_t count;
    return s_read_int (value, &count) ? count : 0;
}

static void
s_usage_pair (const msgpack_object *key, const msgpack_object *value, void *arg)
{
    kf_wp_usage_t *usage = arg;
    int64_t *count = S_IS (key, "prompt_tokens")     ? &usage->prompt_tokens
                   : S_IS (key, "completion_tokens") ? &usage->completion_tokens
                   : S_IS (key, "total_tokens")      ? &usage->total_tokens : NULL;
    if (count) {
        *count = s_read_count (value);
        *count = *count < 0 ? 0 : *count > KF_WP_TOKENS_MAX ? KF_WP_TOKENS_MAX : *count;
    }
}

static void
s_upstream_error_pair (const msgpack_object *key, const msgpack_object *value, void *arg)
{
    kf_wp_result_t *r = arg;
    if (S_IS (key, "code"))
        s_read_str (value, &r->upstream_error_code);
    else
    if (S_IS (key, "message"))
        s_read_str (value, &r->upstream_error_message);
    else
    if (S_IS (key, "status"))
        r->upstream_error_status = s_read_count (value);
}

//  One pair of the result (S_IS compares the length first: most names differ there)
static void
s_result_pair (const msgpack_object *key, const msgpack_object *value, void *arg)
{
    kf_wp_result_t *r = arg;
    if (S_IS (key, "reply"))
        s_read_str (value, &r->reply);
    else
    if (S_IS (key, "response_type"))
        s_read_str (value, &r->response_type);
    else
    if (S_IS (key, "response_content"))
        r->response_content = value->type == MSGPACK_OBJECT_NIL ? NULL : value;
    else
    if (S_IS (key, "intent"))
        s_read_str (value, &r->intent);
    else
    if (S_IS (key, "intent_confidence"))
        r->has_intent_confidence = s_read_double (value, &r->intent_confidence);
    else
    if (S_IS (key, "confidence"))
        r->has_confidence = s_read_double (value, &r->confidence);
    else
    if (S_IS (key, "emotion_score"))
        r->has_emotion_score = s_read_double (value, &r->emotion_score);
    else
    if (S_IS (key, "sources"))
        r->sources = s_typed (value, MSGPACK_OBJECT_ARRAY);
    else
    if (S_IS (key, "suggestions"))
        r->suggestions = s_typed (value, MSGPACK_OBJECT_ARRAY);
    else
    if (S_IS (key, "candidates"))
        r->candidates = s_typed (value, MSGPACK_OBJECT_ARRAY);
    else
    if (S_IS (key, "sub_tasks"))
        r->sub_tasks = s_typed (value, MSGPACK_OBJECT_ARRAY);
    else
    if (S_IS (key, "escalate_to_human"))
        r->escalate_to_human = s_read_bool (value);
    else
    if (S_IS (key, "handoff_reason"))
        r->has_handoff_reason = s_read_int (value, &r->handoff_reason);
    else
    if (S_IS (key, "failed_attempts"))
        r->has_failed_attempts = s_read_int (value, &r->failed_attempts);
    else
    if (S_IS (key, "usage")) {
        memset (&r->usage, 0, sizeof r->usage);
        r->has_usage = s_each (value, s_usage_pair, &r->usage);
    }
    else
    if (S_IS (key, "slots"))
        r->slots = s_typed (value, MSGPACK_OBJECT_MAP);
    else
    if (S_IS (key, "ticket"))
        r->ticket = s_typed (value, MSGPACK_OBJECT_MAP);
    else
    if (S_IS (key, "cache"))
        r->cache = s_typed (value, MSGPACK_OBJECT_MAP);
    else
    if (S_IS (key, "upstream"))
        s_read_str (value, &r->upstream);
    else
    if (S_IS (key, "upstream_conversation_id"))
        s_read_str (value, &r->upstream_conversation_id);
    else
    if (S_IS (key, "upstream_error")) {
        r->upstream_error_code = r->upstream_error_message = (kf_wp_str_t) { NULL, 0 };
        r->upstream_error_status = 0;
        r->has_upstream_error = s_each (value, s_upstream_error_pair, r);
    }
    else
    if (S_IS (key, "stopped"))
        r->stopped = s_read_bool (value);
    else
    if (S_IS (key, "cached"))
        r->cached = s_read_bool (value);
}

static bool
s_is_text (kf_wp_str_t str)
{
    return !str.data || (kf_utf8_is_valid (str.data, str.len) && !memchr (str.data, 0, str.len));
}

bool
kf_wp_result_is_text (const kf_wp_result_t *r)
{
    return s_is_text (r->reply) && s_is_text (r->response_type) && s_is_text (r->intent)
        && s_is_text (r->upstream) && s_is_text (r->upstream_conversation_id);
}

bool
kf_wp_result_decode (const msgpack_object *map, kf_wp_result_t *result)
{
    memset (result, 0, sizeof *result);
    return s_each (map, s_result_pair, result);
}

void
kf_wp_result_pack (const kf_wp_result_t *r, msgpack_packer *pk)
{
    int pairs = !!r->reply.data + !!r->response_type.data + !!r->response_content + !!r->intent.data
              + r->has_intent_confidence + r->has_confidence + r->has_emotion_score
              + !!r->sources + !!r->suggestions + !!r->candidates + !!r->sub_tasks
              + 1 + r->has_handoff_reason + r->has_failed_attempts + r->has_usage
              + !!r->slots + !!r->ticket + !!r->cache + !!r->upstream.data
              + !!r->upstream_conversation_id.data + r->has_upstream_error + r->stopped + r->cached;
    msgpack_pack_map (pk, pairs);
    if (r->reply.data) {
        kf_mp_pack_cstr (pk, "reply");
        kf_wp_pack_str (pk, r->reply);
    }
    if (r->response_type.data) {
        kf_mp_pack_cstr (pk, "response_type");
        kf_wp_pack_str (pk, r->response_type);
    }
    if (r->response_content)
        kf_mp_pack_kv_object (pk, "response_content", r->response_content);
    if (r->intent.data) {
        kf_mp_pack_cstr (pk, "intent");
        kf_wp_pack_str (pk, r->intent);
    }
    if (r->has_intent_confidence)
        kf_mp_pack_kv_double (pk, "intent_confidence", r->intent_confidence);
    if (r->has_confidence)
        kf_mp_pack_kv_double (pk, "confidence", r->confidence);
    if (r->has_emotion_score)
        kf_mp_pack_kv_double (pk, "emotion_score", r->emotion_score);
    if (r->sources)
        kf_mp_pack_kv_object (pk, "sources", r->sources);
    if (r->suggestions)
        kf_mp_pack_kv_object (pk, "suggestions", r->suggestions);
    if (r->candidates)
        kf_mp_pack_kv_object (pk, "candidates", r->candidates);
    if (r->sub_tasks)
        kf_mp_pack_kv_object (pk, "sub_tasks", r->sub_tasks);
    kf_mp_pack_kv_bool (pk, "escalate_to_human", r->escalate_to_human);
    if (r->has_handoff_reason)
        kf_mp_pack_kv_int (pk, "handoff_reason", r->handoff_reason);
    if (r->has_failed_attempts)
        kf_mp_pack_kv_int (pk, "failed_attempts", r->failed_attempts);
    if (r->has_usage)
        kf_wp_usage_pack (pk, true, &r->usage);
    if (r->slots)
        kf_mp_pack_kv_object (pk, "slots", r->slots);
    if (r->ticket)
        kf_mp_pack_kv_object (pk, "ticket", r->ticket);
    if (r->cache)
        kf_mp_pack_kv_object (pk, "cache", r->cache);
    if (r->upstream.data) {
        kf_mp_pack_cstr (pk, "upstream");
        kf_wp_pack_str (pk, r->upstream);
    }
    if (r->upstream_conversation_id.data) {
        kf_mp_pack_cstr (pk, "upstream_conversation_id");
        kf_wp_pack_str (pk, r->upstream_conversation_id);
    }
    if (r->has_upstream_error) {
        kf_mp_pack_cstr (pk, "upstream_error");
        msgpack_pack_map (pk, !!r->upstream_error_code.data + !!r->upstream_error_message.data
                              + (r->upstream_error_status != 0));
        if (r->upstream_error_code.data) {
            kf_mp_pack_cstr (pk, "code");
            kf_wp_pack_str (pk, r->upstream_error_code);
        }
        if (r->upstream_error_message.data) {
            kf_mp_pack_cstr (pk, "message");
            kf_wp_pack_str (pk, r->upstream_error_message);
        }
        if (r->upstream_error_status)
            kf_mp_pack_kv_int (pk, "status", r->upstream_error_status);
    }
    if (r->stopped)
        kf_mp_pack_kv_bool (pk, "stopped", true);
    if (r->cached)
        kf_mp_pack_kv_bool (pk, "cached", true);
}

//  --- The job ------------------------------------------------------------------------------

static void
s_handoff_pair (const msgpack_object *key, const msgpack_object *value, void *arg)
{
    kf_wp_handoff_t *h = arg;
    if (S_IS (key, "failed_attempts"))
        h->has_failed_attempts = s_read_int (value, &h->failed_attempts);
    else
    if (S_IS (key, "repeated_question"))
        h->has_repeated_question = s_read_int (value, &h->repeated_question);
    else
    if (S_IS (key, "emotion_below"))
        h->has_emotion_below = s_read_double (value, &h->emotion_below);
}

bool
kf_wp_handoff_decode (const msgpack_object *map, kf_wp_handoff_t *h)
{
    memset (h, 0, sizeof *h);
    return s_each (map, s_handoff_pair, h);
}

static void
s_turn_pair (const msgpack_object *key, const msgpack_object *value, void *arg)
{
    kf_wp_turn_t *turn = arg;
    if (S_IS (key, "role"))
        s_read_str (value, &turn->role);
    else
    if (S_IS (key, "content"))
        s_read_str (value, &turn->content);
}

//  context.turns: of its last KF_WP_TURNS_MAX entries, those that are maps
static void
s_read_turns (const msgpack_object *array, kf_wp_job_t *job)
{
    job->turn_total = 0;
    if (array->type != MSGPACK_OBJECT_ARRAY)
        return;
    uint32_t size = array->via.array.size;
    for (uint32_t i = size > KF_WP_TURNS_MAX ? size - KF_WP_TURNS_MAX : 0; i < size; i++) {
        kf_wp_turn_t *turn = &job->turns [job->turn_total];
        *turn = (kf_wp_turn_t) { { NULL, 0 }, { NULL, 0 } };
        job->turn_total += s_each (&array->via.array.ptr [i], s_turn_pair, turn);
    }
}

static void
s_answer_pair (const msgpack_object *key, const msgpack_object *value, void *arg)
{
    kf_wp_job_t *job = arg;
    if (S_IS (key, "target_precision"))
        job->has_target_precision = s_read_double (value, &job->target_precision);
    else
    if (S_IS (key, "suggestions"))
        job->has_suggestions = s_read_int (value, &job->suggestions);
}

static void
s_params_pair (const msgpack_object *key, const msgpack_object *value, void *arg)
{
    kf_wp_job_t *job = arg;
    if (S_IS (key, "message"))
        s_read_str (value, &job->message);
    else
    if (S_IS (key, "bot_id"))
        s_read_str (value, &job->bot_id);
    else
    if (S_IS (key, "user_id"))
        s_read_str (value, &job->user_id);
    else
    if (S_IS (key, "channel"))
        s_read_str (value, &job->channel);
    else
    if (S_IS (key, "keyword"))
        s_read_str (value, &job->keyword);
    else
    if (S_IS (key, "top_k"))
        job->has_top_k = s_read_int (value, &job->top_k);
    else
    if (S_IS (key, "number"))
        job->has_number = s_read_int (value, &job->number);
    else
    if (S_IS (key, "labels"))
        job->labels = s_typed (value, MSGPACK_OBJECT_MAP);
    else
    if (S_IS (key, "inputs"))
        job->inputs = s_typed (value, MSGPACK_OBJECT_MAP);
}

static void
s_context_pair (const msgpack_object *key, const msgpack_object *value, void *arg)
{
    kf_wp_job_t *job = arg;
    if (S_IS (key, "session_id"))
        s_read_str (value, &job->session_id);
    else
    if (S_IS (key, "upstream_conversation_id"))
        s_read_str (value, &job->upstream_conversation_id);
    else
    if (S_IS (key, "turn_count"))
        job->turn_count = s_read_count (value);
    else
    if (S_IS (key, "failed_attempts"))
        job->failed_attempts = s_read_count (value);
    else
    if (S_IS (key, "repeat_count"))
        job->repeat_count = s_read_count (value);
    else
    if (S_IS (key, "turns"))
        s_read_turns (value, job);
    else
    if (S_IS (key, "slots"))
        job->slots = s_typed (value, MSGPACK_OBJECT_MAP);
    else
    if (S_IS (key, "emotion_score"))
        job->has_emotion_score = s_read_double (value, &job->emotion_score);
    else
    if (S_IS (key, "handoff"))
        job->has_handoff = kf_wp_handoff_decode (value, &job->handoff);
    else
    if (S_IS (key, "answer"))
        s_each (value, s_answer_pair, job);
}

static void
s_job_pair (const msgpack_object *key, const msgpack_object *value, void *arg)
{
    kf_wp_job_t *job = arg;
    if (S_IS (key, "method"))
        s_read_str (value, &job->method);
    else
    if (S_IS (key, "stream"))
        job->stream = s_read_bool (value);
    else
    if (S_IS (key, "params"))
        s_each (value, s_params_pair, job);
    else
    if (S_IS (key, "context"))
        s_each (value, s_context_pair, job);
}

bool
kf_wp_job_decode (const msgpack_object *map, kf_wp_job_t *job)
{
    memset (job, 0, sizeof *job);
    return s_each (map, s_job_pair, job);
}

static void
s_pack_kv_view (msgpack_packer *pk, const char *key, kf_wp_str_t value)
{
    kf_mp_pack_cstr (pk, key);
    kf_wp_pack_str (pk, value);
}

void
kf_wp_job_pack (const kf_wp_job_t *job, msgpack_packer *pk)
{
    msgpack_pack_map (pk, 4);
    s_pack_kv_view (pk, "method", job->method);
    kf_mp_pack_kv_bool (pk, "stream", job->stream);
    kf_mp_pack_cstr (pk, "params");
    msgpack_pack_map (pk, !!job->message.data + !!job->bot_id.data + !!job->user_id.data
                          + !!job->channel.data + !!job->keyword.data + job->has_top_k
                          + job->has_number + !!job->labels + !!job->inputs);
    if (job->message.data)
        s_pack_kv_view (pk, "message", job->message);
    if (job->bot_id.data)
        s_pack_kv_view (pk, "bot_id", job->bot_id);
    if (job->user_id.data)
        s_pack_kv_view (pk, "user_id", job->user_id);
    if (job->channel.data)
        s_pack_kv_view (pk, "channel", job->channel);
    if (job->keyword.data)
        s_pack_kv_view (pk, "keyword", job->keyword);
    if (job->has_top_k)
        kf_mp_pack_kv_int (pk, "top_k", job->top_k);
    if (job->has_number)
        kf_mp_pack_kv_int (pk, "number", job->number);
    if (job->labels)
        kf_mp_pack_kv_object (pk, "labels", job->labels);
    if (job->inputs)
        kf_mp_pack_kv_object (pk, "inputs", job->inputs);
    kf_mp_pack_cstr (pk, "context");
    //  turn_count, failed_attempts, repeat_count and turns always, the rest when present
    msgpack_pack_map (pk, 4 + !!job->session_id.data + !!job->upstream_conversation_id.data
                          + !!job->slots + job->has_emotion_score + job->has_handoff
                          + (job->has_target_precision || job->has_suggestions));
    if (job->session_id.data)
        s_pack_kv_view (pk, "session_id", job->session_id);
    if (job->upstream_conversation_id.data)
        s_pack_kv_view (pk, "upstream_conversation_id", job->upstream_conversation_id);
    kf_mp_pack_kv_int (pk, "turn_count", job->turn_count);
    kf_mp_pack_kv_int (pk, "failed_attempts", job->failed_attempts);
    kf_mp_pack_kv_int (pk, "repeat_count", job->repeat_count);
    kf_mp_pack_cstr (pk, "turns");
    msgpack_pack_array (pk, job->turn_total);
    for (int t = 0; t < job->turn_total; t++) {
        msgpack_pack_map (pk, !!job->turns [t].role.data + !!job->turns [t].content.data);
        if (job->turns [t].role.data)
            s_pack_kv_view (pk, "role", job->turns [t].role);
        if (job->turns [t].content.data)
            s_pack_kv_view (pk, "content", job->turns [t].content);
    }
    if (job->slots)
        kf_mp_pack_kv_object (pk, "slots", job->slots);
    if (job->has_emotion_score)
        kf_mp_pack_kv_double (pk, "emotion_score", job->emotion_score);
    if (job->has_handoff) {
        const kf_wp_handoff_t *h = &job->handoff;
        kf_mp_pack_cstr (pk, "handoff");
        msgpack_pack_map (pk, h->has_failed_attempts + h->has_repeated_question + h->has_emotion_below);
        if (h->has_failed_attempts)
            kf_mp_pack_kv_int (pk, "failed_attempts", h->failed_attempts);
        if (h->has_repeated_question)
            kf_mp_pack_kv_int (pk, "repeated_question", h->repeated_question);
        if (h->has_emotion_below)
            kf_mp_pack_kv_double (pk, "emotion_below", h->emotion_below);
    }
    if (job->has_target_precision || job->has_suggestions) {
        kf_mp_pack_cstr (pk, "answer");
        msgpack_pack_map (pk, job->has_target_precision + job->has_suggestions);
        if (job->has_target_precision)
            kf_mp_pack_kv_double (pk, "target_precision", job->target_precision);
        if (job->has_suggestions)
            kf_mp_pack_kv_int (pk, "suggestions", job->suggestions);
    }
}
