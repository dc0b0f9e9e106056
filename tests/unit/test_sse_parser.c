/*  test_sse_parser.c - server-sent events give the same events however the bytes are split: at
    every byte, byte by byte, inside CRLF, inside a UTF-8 character, inside a BOM. */
#include "common/log.h"
#include "workers/sse_parser.h"
#include "testutil.h"

typedef struct {
    char out [16384];           //  Events as "event|id|data" lines
    int count;
    int stop_after;             //  Stop the parse after this many events (0: never)
} s_seen_t;

static int
s_on_event (void *arg, const kf_sse_event_t *event)
{
    s_seen_t *seen = arg;
    CHECK (strlen (event->data) == event->data_len);
    size_t used = strlen (seen->out);
    snprintf (seen->out + used, sizeof seen->out - used, "%s|%s|%s\n", event->event, event->id, event->data);
    seen->count++;
    return seen->stop_after && seen->count >= seen->stop_after ? 7 : 0;
}

//  Parses `stream` in chunks ending at the given cut points
static void
s_parse (const char *stream, size_t len, const size_t *cuts, int cut_count, s_seen_t *seen)
{
    memset (seen, 0, sizeof *seen);
    kf_sse_parser_t *parser = kf_sse_parser_new (s_on_event, seen);
    size_t from = 0;
    for (int c = 0; c <= cut_count; c++) {
        size_t to = c < cut_count ? cuts [c] : len;
        CHECK_INT (kf_sse_parser_feed (parser, stream + from, to - from), 0);
        from = to;
    }
    CHECK_INT (kf_sse_parser_finish (parser), 0);
    kf_sse_parser_destroy (&parser);
}

static const char s_stream [] =
    "\xEF\xBB\xBF"
    ": keep-alive comment\r\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"您好，\"}}]}\r\n\r\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"请问😀\"}}]}\n\n"
    "event: ping\n\n"
    "id: 42\r"
    "event: error\r"
    "data: {\"error\":{\"message\":\"上游超时\",\r"
    "data:  \"code\":504}}\r\r"
    "data\n"
    "data:no-space\n\n"
    "retry: 3000\n"
    "unknown: field\n"
    "data: [DONE]\n\n";

static const char s_expected [] =
    "message||{\"choices\":[{\"delta\":{\"content\":\"您好，\"}}]}\n"
    "message||{\"choices\":[{\"delta\":{\"content\":\"请问😀\"}}]}\n"
    "error|42|{\"error\":{\"message\":\"上游超时\",\n \"code\":504}}\n"
    "message|42|\nno-space\n"
    "message|42|[DONE]\n";

int
main (void)
{
    size_t len = sizeof s_stream - 1;
    s_seen_t seen;
    s_parse (s_stream, len, NULL, 0, &seen);
    CHECK_STR (seen.out, s_expected);
    //  Every single split point, and every pair of split points
    for (size_t a = 0; a <= len; a++) {
        s_parse (s_stream, len, &a, 1, &seen);
        CHECK_STR (seen.out, s_expected);
        for (size_t b = a; b <= len; b += 7) {
            size_t cuts [2] = { a, b };
            s_parse (s_stream, len, cuts, 2, &seen);
            CHECK_STR (seen.out, s_expected);
        }
    }
    //  Byte by byte
    size_t cuts [sizeof s_stream];
    for (size_t i = 0; i < len; i++)
        cuts [i] = i;
    s_parse (s_stream, len, cuts, (int) len, &seen);
    CHECK_STR (seen.out, s_expected);

    //  A stream closed right after its last data line still delivers it
    s_parse ("data: 最后一句", strlen ("data: 最后一句"), NULL, 0, &seen);
    CHECK_STR (seen.out, "message||最后一句\n");
    //  Short streams that only start like a BOM
    s_parse ("\xEF\xBB", 2, NULL, 0, &seen);
    CHECK_STR (seen.out, "");
    s_parse ("da", 2, NULL, 0, &seen);
    CHECK_STR (seen.out, "");
    //  The callback can stop the parse
    memset (&seen, 0, sizeof seen);
    seen.stop_after = 2;
    kf_sse_parser_t *parser = kf_sse_parser_new (s_on_event, &seen);
    CHECK_INT (kf_sse_parser_feed (parser, s_stream, len), 7);
    CHECK_INT (seen.count, 2);
    kf_sse_parser_destroy (&parser);
    //  A line past the bound breaks the stream for good
    memset (&seen, 0, sizeof seen);
    parser = kf_sse_parser_new (s_on_event, &seen);
    char *huge = kf_malloc (KF_SSE_LINE_MAX + 16);
    memcpy (huge, "data: ", 6);
    memset (huge + 6, 'x', KF_SSE_LINE_MAX);
    CHECK_INT (kf_sse_parser_feed (parser, huge, KF_SSE_LINE_MAX + 6), -1);
    CHECK_INT (kf_sse_parser_feed (parser, "\n\n", 2), -1);
    free (huge);
    kf_sse_parser_destroy (&parser);
    TEST_PASS ("test_sse_parser");
    return 0;
}
