/*  sse_parser.h - server-sent events (the text/event-stream format OpenAI-compatible servers and
    Dify stream in), parsed incrementally: bytes go in as they arrive, split anywhere, and complete
    events come out. A line is only interpreted once it is whole, so a chunk that ends inside
    "data:", inside a multi-byte character or between CR and LF changes nothing. */
#ifndef KF_SSE_PARSER_H
#define KF_SSE_PARSER_H
#include <stddef.h>

#define KF_SSE_LINE_MAX (1024 * 1024)   //  Longest line accepted: a stream past it is broken

typedef struct _kf_sse_parser_t kf_sse_parser_t;

//  One event. Strings are borrowed for the duration of the callback and NUL-terminated.
typedef struct {
    const char *event;          //  "message" when the stream named none
    const char *data;           //  data lines joined with "\n"
    size_t data_len;
    const char *id;             //  Last event id seen in the stream, "" when none
} kf_sse_event_t;

//  Called for each complete event. Return 0 to go on, non-zero to stop parsing (kf_sse_parser_feed
//  then returns that value).
typedef int (kf_sse_fn) (void *arg, const kf_sse_event_t *event);

//  Creates a parser calling `fn` with `arg`. Never NULL.
kf_sse_parser_t *kf_sse_parser_new (kf_sse_fn *fn, void *arg);

//  Frees the parser; nulls *self_p.
void kf_sse_parser_destroy (kf_sse_parser_t **self_p);

//  Feeds `len` bytes. Returns 0; the callback's non-zero value when it stopped the parse; or -1
//  when a line exceeds KF_SSE_LINE_MAX (the stream is unusable after that).
int kf_sse_parser_feed (kf_sse_parser_t *self, const char *bytes, size_t len);

//  Ends the stream: an event still pending without its closing blank line is dispatched (servers
//  that close right after the last data line). Returns like feed.
int kf_sse_parser_finish (kf_sse_parser_t *self);
#endif
