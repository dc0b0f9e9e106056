/*  upstream_events.c - OpenAI-compatible and Dify stream decoding, error bodies, retry policy. */
#include "workers/upstream_events.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include <stdio.h>
#include <string.h>

//  Parses JSON text into `out`; false when it is not JSON
static bool
s_parse (const char *text, size_t len, msgpack_unpacked *out)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    bool is_ok = kf_json_to_msgpack (text, len, &pk, NULL, 0) == 0
              && kf_mp_unpack_one (buffer.data, buffer.size, out);
    msgpack_sbuffer_destroy (&buffer);
    return is_ok;
}

//  Copies `len` bytes of UTF-8 into a fixed field, cut on a character boundary
static void
s_copy (char *field, size_t size, const char *text, size_t len)
{
    if (len >= size)
        len = kf_utf8_complete_prefix (text, size - 1);
    memcpy (field, text, len);
    field [len] = 0;
}

//  Fills an error event from an error map: message, code (string or integer), status
static void
s_error_from (const msgpack_object *error, int status, kf_up_event_t *event)
{
    memset (event, 0, sizeof *event);
    event->kind = KF_UP_ERROR;
    event->status = (int) kf_mp_get_int (error, "status", status);
    const char *s;
    size_t len;
    if (kf_mp_str (kf_mp_get (error, "message"), &s, &len))
        s_copy (event->message, sizeof event->message, s, len);
    const msgpack_object *code = kf_mp_get (error, "code");
    int64_t number;
    if (kf_mp_str (code, &s, &len))
        s_copy (event->code, sizeof event->code, s, len);
    else
    if (kf_mp_int (code, &number))
        snprintf (event->code, sizeof event->code, "%lld", (long long) number);
    else
    if (kf_mp_str (kf_mp_get (error, "type"), &s, &len))
        s_copy (event->code, sizeof event->code, s, len);
    if (!*event->message)
        snprintf (event->message, sizeof event->message, "the upstream reported an error");
}

static void
s_emit_text (kf_up_fn *fn, void *arg, kf_up_kind_t kind, const msgpack_object *text)
{
    const char *s;
    size_t len;
    if (!kf_mp_str (text, &s, &len) || (len == 0 && kind == KF_UP_TOKEN))
        return;
    kf_up_event_t event = { .kind = kind, .text = s, .text_len = len };
    fn (arg, &event);
}

static void
s_emit_usage (kf_up_fn *fn, void *arg, const msgpack_object *usage)
{
    if (!usage || usage->type != MSGPACK_OBJECT_MAP)
        return;
    kf_up_event_t event = {
        .kind = KF_UP_USAGE,
        .prompt_tokens = kf_mp_get_int (usage, "prompt_tokens", 0),
        .completion_tokens = kf_mp_get_int (usage, "completion_tokens", 0),
        .total_tokens = kf_mp_get_int (usage, "total_tokens", 0)
    };
    if (!event.total_tokens)
        event.total_tokens = event.prompt_tokens + event.completion_tokens;
    fn (arg, &event);
}

static int
s_not_json (kf_up_fn *fn, void *arg)
{
    kf_up_event_t event = { .kind = KF_UP_ERROR, .status = 502 };
    snprintf (event.code, sizeof event.code, "bad_stream");
    snprintf (event.message, sizeof event.message, "the upstream sent data that is not JSON");
    fn (arg, &event);
    return -1;
}

int
kf_openai_decode (const kf_sse_event_t *sse, kf_up_fn *fn, void *arg)
{
    if (sse->data_len == 6 && memcmp (sse->data, "[DONE]", 6) == 0) {
        kf_up_event_t event = { .kind = KF_UP_DONE };
        fn (arg, &event);
        return 0;
    }
    msgpack_unpacked chunk;
    if (!s_parse (sse->data, sse->data_len, &chunk))
        return s_not_json (fn, arg);
    const msgpack_object *root = &chunk.data;
    const msgpack_object *error = kf_mp_get (root, "error");
    if (error || strcmp (sse->event, "error") == 0) {
        kf_up_event_t event;
        s_error_from (error && error->type == MSGPACK_OBJECT_MAP ? error : root, 502, &event);
        fn (arg, &event);
        msgpack_unpacked_destroy (&chunk);
        return 0;
    }
    const msgpack_object *choices = kf_mp_get (root, "choices");
    if (choices && choices->type == MSGPACK_OBJECT_ARRAY && choices->via.array.size > 0) {
        const msgpack_object *choice = &choices->via.array.ptr [0];
        s_emit_text (fn, arg, KF_UP_TOKEN, kf_mp_get (kf_mp_get (choice, "delta"), "content"));
        s_emit_text (fn, arg, KF_UP_FINISH, kf_mp_get (choice, "finish_reason"));
    }
    s_emit_usage (fn, arg, kf_mp_get (root, "usage"));
    msgpack_unpacked_destroy (&chunk);
    return 0;
}

int
kf_dify_decode (const kf_sse_event_t *sse, kf_up_fn *fn, void *arg)
{
    msgpack_unpacked chunk;
    if (!s_parse (sse->data, sse->data_len, &chunk))
        return s_not_json (fn, arg);
    const msgpack_object *root = &chunk.data;
    const char *name = "";
    size_t name_len = 0;
    kf_mp_str (kf_mp_get (root, "event"), &name, &name_len);
    #define S_IS(literal) (name_len == sizeof (literal) - 1 && memcmp (name, literal, name_len) == 0)
    if (S_IS ("message") || S_IS ("agent_message")) {
        s_emit_text (fn, arg, KF_UP_CONVERSATION, kf_mp_get (root, "conversation_id"));
        s_emit_text (fn, arg, KF_UP_TOKEN, kf_mp_get (root, "answer"));
    }
    else
    if (S_IS ("message_replace"))
        s_emit_text (fn, arg, KF_UP_REPLACE, kf_mp_get (root, "answer"));
    else
    if (S_IS ("message_end")) {
        const msgpack_object *metadata = kf_mp_get (root, "metadata");
        s_emit_text (fn, arg, KF_UP_CONVERSATION, kf_mp_get (root, "conversation_id"));
        s_emit_usage (fn, arg, kf_mp_get (metadata, "usage"));
        const msgpack_object *sources = kf_mp_get (metadata, "retriever_resources");
        if (sources && sources->type == MSGPACK_OBJECT_ARRAY && sources->via.array.size > 0) {
            kf_up_event_t event = { .kind = KF_UP_SOURCES, .sources = sources };
            fn (arg, &event);
        }
        kf_up_event_t done = { .kind = KF_UP_DONE };
        fn (arg, &done);
    }
    else
    if (S_IS ("error") || strcmp (sse->event, "error") == 0) {
        kf_up_event_t event;
        s_error_from (root, 502, &event);
        fn (arg, &event);
    }
    #undef S_IS
    msgpack_unpacked_destroy (&chunk);
    return 0;
}

void
kf_upstream_error_body (int http_status, const char *body, size_t len, kf_up_event_t *event)
{
    msgpack_unpacked parsed;
    if (body && s_parse (body, len, &parsed)) {
        const msgpack_object *error = kf_mp_get (&parsed.data, "error");
        s_error_from (error && error->type == MSGPACK_OBJECT_MAP ? error : &parsed.data, http_status, event);
        event->status = http_status;
        msgpack_unpacked_destroy (&parsed);
        return;
    }
    memset (event, 0, sizeof *event);
    event->kind = KF_UP_ERROR;
    event->status = http_status;
    snprintf (event->code, sizeof event->code, "%d", http_status);
    //  Not JSON (a proxy's HTML page, say): keep its start, as valid UTF-8
    char start [200];
    size_t n = body ? (len < sizeof start - 1 ? len : sizeof start - 1) : 0;
    n = kf_utf8_complete_prefix (body ? body : "", n);
    memcpy (start, body ? body : "", n);
    start [n] = 0;
    snprintf (event->message, sizeof event->message, "HTTP %d from the upstream%s%s", http_status,
              n ? ": " : "", kf_utf8_is_valid (start, n) ? start : "");
}

bool
kf_upstream_is_retryable (int http_status)
{
    return http_status == 0 || http_status == 408 || http_status == 409 || http_status == 429
        || http_status >= 500;
}
