/*  csv.c - RFC 4180 records from a FILE*, a byte at a time, one record in memory: the fields are
    kept back to back, each NUL-terminated, with the offset where each begins. */
#include "kefuctl/csv.h"
#include "common/log.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct _kf_csv_t {
    FILE *file;
    char *data;                 //  Fields of the record, each followed by a NUL
    size_t len, capacity;
    size_t *starts;             //  Offset of each field in data
    int count, starts_capacity;
    int line;                   //  Physical line of the next byte to read
    int record_line;            //  Where the last record began
    int pending [3];            //  Bytes read ahead and given back, the next one last
    int pending_count;
    bool is_started;            //  Past the byte order mark question
    bool is_too_long;           //  The record went past KF_CSV_RECORD_MAX
    char error [160];
};

kf_csv_t *
kf_csv_new (FILE *file)
{
    kf_csv_t *self = kf_calloc (1, sizeof *self);
    self->file = file;
    self->line = 1;
    return self;
}

void
kf_csv_destroy (kf_csv_t **self_p)
{
    kf_csv_t *self = *self_p;
    if (!self)
        return;
    free (self->data);
    free (self->starts);
    free (self);
    *self_p = NULL;
}

static int
s_getc (kf_csv_t *self)
{
    if (self->pending_count)
        return self->pending [--self->pending_count];
    return getc_unlocked (self->file);
}

static void
s_ungetc (kf_csv_t *self, int c)
{
    if (c != EOF)
        self->pending [self->pending_count++] = c;
}

static void
s_append (kf_csv_t *self, char c)
{
    if (self->len >= KF_CSV_RECORD_MAX) {
        self->is_too_long = true;       //  Read on to the record's end, keep nothing more
        return;
    }
    if (self->len + 1 > self->capacity) {
        self->capacity = self->capacity ? self->capacity * 2 : 1024;
        self->data = kf_realloc (self->data, self->capacity);
    }
    self->data [self->len++] = c;
}

static void
s_field_start (kf_csv_t *self)
{
    if (self->is_too_long)
        return;
    if (self->count == self->starts_capacity) {
        self->starts_capacity = self->starts_capacity ? self->starts_capacity * 2 : 16;
        self->starts = kf_realloc (self->starts, self->starts_capacity * sizeof (size_t));
    }
    self->starts [self->count++] = self->len;
}

//  After a line end byte `c` (CR, LF or EOF): swallows the LF of a CRLF and counts the line
static void
s_line_end (kf_csv_t *self, int c)
{
    if (c == '\r') {
        int next = s_getc (self);
        if (next != '\n')
            s_ungetc (self, next);
    }
    if (c != EOF)
        self->line++;
}

//  A UTF-8 byte order mark is skipped at the start of the input only
static void
s_skip_bom (kf_csv_t *self)
{
    self->is_started = true;
    int bytes [3], count = 0;
    static const int bom [3] = { 0xEF, 0xBB, 0xBF };
    while (count < 3 && (bytes [count] = s_getc (self)) == bom [count])
        count++;
    if (count == 3)
        return;
    //  Not a BOM: give back what was read, so the last one given back comes out first
    s_ungetc (self, bytes [count]);
    while (count > 0)
        s_ungetc (self, bytes [--count]);
}

static int
s_fail (kf_csv_t *self, const char *reason)
{
    snprintf (self->error, sizeof self->error, "%s", reason);
    self->count = 0;
    return -1;
}

int
kf_csv_read (kf_csv_t *self)
{
    if (!self->is_started)
        s_skip_bom (self);
    self->len = 0;
    self->count = 0;
    self->is_too_long = false;
    self->error [0] = 0;
    int c = s_getc (self);
    if (c == EOF)
        return 0;
    self->record_line = self->line;
    while (true) {
        //  c is the first byte of a field
        s_field_start (self);
        if (c == '"') {
            while (true) {
                c = s_getc (self);
                if (c == EOF) {
                    s_line_end (self, c);
                    return s_fail (self, "a quoted field is not closed by the end of the file");
                }
                if (c == '"') {
                    c = s_getc (self);
                    if (c != '"')
                        break;          //  The closing quote; c is the byte after it
                }
                else
                if (c == '\n')
                    self->line++;
                else
                if (c == '\r') {
                    int next = s_getc (self);
                    s_ungetc (self, next);
                    if (next != '\n')
                        self->line++;
                }
                s_append (self, (char) c);
            }
            if (c != ',' && c != '\n' && c != '\r' && c != EOF) {
                while (c != '\n' && c != '\r' && c != EOF)
                    c = s_getc (self);
                s_line_end (self, c);
                return s_fail (self, "a closing quote is followed by something other than a comma"
                                     " or a line end (a quote inside a field must be doubled)");
            }
        }
        else {
            while (c != ',' && c != '\n' && c != '\r' && c != EOF) {
                s_append (self, (char) c);
                c = s_getc (self);
            }
        }
        s_append (self, 0);
        if (c != ',')
            break;
        c = s_getc (self);
    }
    s_line_end (self, c);
    if (self->is_too_long) {
        char reason [96];
        snprintf (reason, sizeof reason, "the record is longer than %d bytes", KF_CSV_RECORD_MAX);
        return s_fail (self, reason);
    }
    return self->count;
}

int
kf_csv_line (kf_csv_t *self)
{
    return self->record_line;
}

const char *
kf_csv_field (kf_csv_t *self, int index, size_t *len)
{
    if (index < 0 || index >= self->count)
        return NULL;
    size_t end = index + 1 < self->count ? self->starts [index + 1] : self->len;
    if (len)
        *len = end - self->starts [index] - 1;
    return self->data + self->starts [index];
}

const char *
kf_csv_error (kf_csv_t *self)
{
    return self->error;
}
