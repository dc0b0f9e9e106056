/*  fuzz_sse_parser.c - the SSE parser must give the same events however the input is split. The
    first byte chooses the chunk sizes; the rest is the stream, fed whole and then in chunks. */
#include "common/log.h"
#include "workers/sse_parser.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *out;
    size_t len, capacity;
} s_seen_t;

static int
s_on_event (void *arg, const kf_sse_event_t *event)
{
    s_seen_t *seen = arg;
    size_t need = strlen (event->event) + strlen (event->id) + event->data_len + 4;
    if (seen->len + need > seen->capacity) {
        seen->capacity = (seen->len + need) * 2;
        seen->out = kf_realloc (seen->out, seen->capacity);
    }
    //  Data may hold NUL bytes: copy by length
    seen->len += sprintf (seen->out + seen->len, "%s|%s|", event->event, event->id);
    memcpy (seen->out + seen->len, event->data, event->data_len);
    seen->len += event->data_len;
    seen->out [seen->len++] = '\n';
    return 0;
}

static int
s_parse (const uint8_t *data, size_t size, size_t chunk, s_seen_t *seen)
{
    kf_sse_parser_t *parser = kf_sse_parser_new (s_on_event, seen);
    int rc = 0;
    for (size_t from = 0; from < size && rc == 0; from += chunk) {
        size_t n = size - from < chunk ? size - from : chunk;
        rc = kf_sse_parser_feed (parser, (const char *) data + from, n);
    }
    if (rc == 0)
        rc = kf_sse_parser_finish (parser);
    kf_sse_parser_destroy (&parser);
    return rc;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = 1 + data [0] % 13;
    s_seen_t whole = { 0 }, split = { 0 };
    int rc_whole = s_parse (data + 1, size - 1, size, &whole);
    int rc_split = s_parse (data + 1, size - 1, chunk, &split);
    if (rc_whole != rc_split || whole.len != split.len
    ||  (whole.len && memcmp (whole.out, split.out, whole.len) != 0)) {
        fprintf (stderr, "split changed the events (chunk %zu)\n", chunk);
        abort ();
    }
    free (whole.out);
    free (split.out);
    return 0;
}
