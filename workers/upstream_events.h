/*  upstream_events.h - what an LLM upstream says, in one vocabulary whatever its wire format:
    decoders for OpenAI-compatible chat-completion streams and Dify chat-message streams (each an
    SSE event at a time, see sse_parser.h), and for the JSON error bodies of non-200 replies. */
#ifndef KF_UPSTREAM_EVENTS_H
#define KF_UPSTREAM_EVENTS_H
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include "workers/sse_parser.h"

typedef enum {
    KF_UP_TOKEN,                //  text: the next piece of the answer (whole UTF-8 characters)
    KF_UP_FINISH,               //  text: the finish reason ("stop", "length", ...)
    KF_UP_USAGE,                //  prompt_tokens, completion_tokens, total_tokens
    KF_UP_REPLACE,              //  text: the whole answer replaced (Dify moderation)
    KF_UP_CONVERSATION,         //  text: the upstream's conversation id (Dify), to remember
    KF_UP_SOURCES,              //  sources: Dify retriever_resources (array), borrowed
    KF_UP_ERROR,                //  status, code, message: the upstream failed, mid-stream or not
    KF_UP_DONE                  //  The stream ended normally
} kf_up_kind_t;

typedef struct {
    kf_up_kind_t kind;
    const char *text;           //  Borrowed; not NUL-terminated
    size_t text_len;
    int64_t prompt_tokens, completion_tokens, total_tokens;
    const msgpack_object *sources;
    int status;                 //  HTTP-like status of an error (0 when unknown)
    char code [64];             //  Error code as text ("rate_limit_exceeded", "429"), "" when none
    char message [256];         //  Error message, valid UTF-8
} kf_up_event_t;

//  Receives the decoded events of one SSE event, in order.
typedef void (kf_up_fn) (void *arg, const kf_up_event_t *event);

//  Decodes one SSE event of an OpenAI-compatible stream: "[DONE]", chunks with
//  choices[0].delta.content and finish_reason, a final usage chunk, an error object in a data line
//  or an "event: error". Returns 0, or -1 when the data is not JSON (an error event is emitted).
int kf_openai_decode (const kf_sse_event_t *sse, kf_up_fn *fn, void *arg);

//  Decodes one SSE event of a Dify stream: message / agent_message (tokens and conversation id),
//  message_end (usage, sources, done), message_replace, error; ping and unknown events are
//  ignored. Returns 0, or -1 when the data is not JSON (an error event is emitted).
int kf_dify_decode (const kf_sse_event_t *sse, kf_up_fn *fn, void *arg);

//  Reads the JSON body of a non-200 reply ({"error": {"message", "type", "code"}} with code a
//  string or an integer; or Dify's {"code", "message", "status"}) into an error event. Bodies that
//  are not JSON still give an error with the status and the start of the body. Never fails.
void kf_upstream_error_body (int http_status, const char *body, size_t len, kf_up_event_t *event);

//  Whether a failed request may be tried again before anything reached the client: 408, 409, 429
//  and 5xx, and connection failures (status 0); never 400, 401, 402, 403, 404.
bool kf_upstream_is_retryable (int http_status);
#endif
