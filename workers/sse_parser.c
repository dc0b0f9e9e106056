/*  sse_parser.c - incremental text/event-stream parsing (fields event, data, id; comments; CR, LF
    and CRLF line ends; a leading BOM). The "retry" field is read and ignored: kefu's own retry
    policy decides. */
#include "workers/sse_parser.h"
#include "common/log.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;
    size_t len, capacity;
} s_buffer_t;

struct _kf_sse_parser_t {
    kf_sse_fn *fn;
    void *arg;
    s_buffer_t line;            //  The line being read
    s_buffer_t data;            //  Data of the event being built
    s_buffer_t event;           //  Its event name
    s_buffer_t id;              //  Last event id
    bool has_data;              //  A data field was seen for this event
    bool is_after_cr;           //  The last byte was CR: an LF right after it ends nothing
    bool is_started;            //  Past the first bytes (a BOM is skipped there only)
    char head [3];              //  The first bytes, until the BOM question is settled
    size_t head_len;
    bool is_broken;             //  A line was too long
};

static void
s_append (s_buffer_t *buffer, const char *bytes, size_t len)
{
    if (buffer->len + len + 1 > buffer->capacity) {
        buffer->capacity = (buffer->len + len + 1) * 2;
        buffer->data = kf_realloc (buffer->data, buffer->capacity);
    }
    memcpy (buffer->data + buffer->len, bytes, len);
    buffer->len += len;
    buffer->data [buffer->len] = 0;
}

static void
s_set (s_buffer_t *buffer, const char *bytes, size_t len)
{
    buffer->len = 0;
    s_append (buffer, bytes, len);
}

kf_sse_parser_t *
kf_sse_parser_new (kf_sse_fn *fn, void *arg)
{
    kf_sse_parser_t *self = kf_calloc (1, sizeof *self);
    self->fn = fn;
    self->arg = arg;
    s_set (&self->id, "", 0);
    return self;
}

void
kf_sse_parser_destroy (kf_sse_parser_t **self_p)
{
    kf_sse_parser_t *self = *self_p;
    if (!self)
        return;
    free (self->line.data);
    free (self->data.data);
    free (self->event.data);
    free (self->id.data);
    free (self);
    *self_p = NULL;
}

//  A blank line: dispatch the event if it has data, then start a new one
static int
s_dispatch (kf_sse_parser_t *self)
{
    int rc = 0;
    if (self->has_data) {
        kf_sse_event_t event = {
            .event = self->event.len ? self->event.data : "message",
            .data = self->data.data ? self->data.data : "",
            .data_len = self->data.len,
            .id = self->id.data
        };
        rc = self->fn (self->arg, &event);
    }
    self->data.len = 0;
    if (self->data.data)
        self->data.data [0] = 0;
    self->event.len = 0;
    self->has_data = false;
    return rc;
}

//  One whole line (without its end)
static int
s_line (kf_sse_parser_t *self, const char *line, size_t len)
{
    if (len == 0)
        return s_dispatch (self);
    if (line [0] == ':')
        return 0;                       //  A comment: keep-alives look like this
    const char *colon = memchr (line, ':', len);
    size_t name_len = colon ? (size_t) (colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    size_t value_len = colon ? len - name_len - 1 : 0;
    if (value_len && *value == ' ') {
        value++;
        value_len--;
    }
    if (name_len == 4 && memcmp (line, "data", 4) == 0) {
        if (self->has_data)
            s_append (&self->data, "\n", 1);
        s_append (&self->data, value, value_len);
        self->has_data = true;
    }
    else
    if (name_len == 5 && memcmp (line, "event", 5) == 0)
        s_set (&self->event, value, value_len);
    else
    if (name_len == 2 && memcmp (line, "id", 2) == 0 && !memchr (value, 0, value_len))
        s_set (&self->id, value, value_len);
    return 0;                           //  retry and unknown fields are ignored
}

//  The byte loop, past the stream's first bytes
static int
s_feed (kf_sse_parser_t *self, const char *bytes, size_t len)
{
    size_t i = 0;
    while (i < len) {
        char c = bytes [i];
        if (c == '\n' && self->is_after_cr) {
            self->is_after_cr = false;  //  The LF of a CRLF whose CR ended the line
            i++;
            continue;
        }
        self->is_after_cr = false;
        //  Take the run of ordinary bytes up to the next line end in one copy
        size_t run = i;
        while (run < len && bytes [run] != '\n' && bytes [run] != '\r')
            run++;
        if (run > i) {
            if (self->line.len + (run - i) > KF_SSE_LINE_MAX) {
                self->is_broken = true;
                return -1;
            }
            s_append (&self->line, bytes + i, run - i);
            i = run;
            continue;
        }
        self->is_after_cr = c == '\r';
        i++;
        int rc = s_line (self, self->line.data ? self->line.data : "", self->line.len);
        self->line.len = 0;
        if (rc)
            return rc;
    }
    return 0;
}

//  Decides about a BOM once the first three bytes are in (or the stream ends before)
static int
s_start (kf_sse_parser_t *self)
{
    self->is_started = true;
    bool is_bom = self->head_len == 3 && memcmp (self->head, "\xEF\xBB\xBF", 3) == 0;
    return is_bom ? 0 : s_feed (self, self->head, self->head_len);
}

int
kf_sse_parser_feed (kf_sse_parser_t *self, const char *bytes, size_t len)
{
    if (self->is_broken)
        return -1;
    size_t i = 0;
    if (!self->is_started) {
        //  A UTF-8 BOM may open the stream, and may itself arrive split
        while (i < len && self->head_len < 3)
            self->head [self->head_len++] = bytes [i++];
        if (self->head_len < 3 && memcmp (self->head, "\xEF\xBB\xBF", self->head_len) == 0)
            return 0;
        int rc = s_start (self);
        if (rc)
            return rc;
    }
    return s_feed (self, bytes + i, len - i);
}

int
kf_sse_parser_finish (kf_sse_parser_t *self)
{
    if (self->is_broken)
        return -1;
    int rc = self->is_started ? 0 : s_start (self);
    if (!rc && self->line.len)
        rc = s_line (self, self->line.data, self->line.len);
    self->line.len = 0;
    return rc ? rc : s_dispatch (self);
}
