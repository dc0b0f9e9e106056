/*  csv.h - a streaming reader of CSV text as RFC 4180 writes it: fields separated by commas,
    records ended by CRLF, LF or a lone CR, fields in double quotes holding commas, line breaks and
    quotes doubled (""). A UTF-8 byte order mark at the start is skipped. One record is held in
    memory at a time, never the file. Bytes are passed through as they are: checking UTF-8 is the
    caller's business. */
#ifndef KF_CSV_H
#define KF_CSV_H
#include <stddef.h>
#include <stdio.h>

#define KF_CSV_RECORD_MAX (8 * 1024 * 1024)     //  Bytes of fields in one record, at most

typedef struct _kf_csv_t kf_csv_t;

//  Creates a reader over `file` (which stays the caller's to close). Never NULL.
kf_csv_t *kf_csv_new (FILE *file);

//  Frees the reader; nulls *self_p.
void kf_csv_destroy (kf_csv_t **self_p);

//  Reads the next record. Returns its number of fields (1 or more: an empty line is one empty
//  field), 0 at the end of the input, or -1 for a malformed record, which kf_csv_error explains:
//  a character other than a comma or a line end after a closing quote (the rest of that physical
//  line is skipped), a quote still open at the end of the input, or a record longer than
//  KF_CSV_RECORD_MAX (read to its end and dropped). Reading goes on after -1 with the next record.
//  A quote inside an unquoted field is taken as a plain character. A read error of the file ends
//  the input (check ferror).
int kf_csv_read (kf_csv_t *self);

//  The physical line (1-based) where the last record read began; a record with quoted line
//  breaks spans several lines and the next record's number counts them.
int kf_csv_line (kf_csv_t *self);

//  Field `index` of the last record read (NUL-terminated, borrowed until the next read; it may
//  hold NUL bytes, so use *len); sets *len when `len` is not NULL. NULL past the last field.
const char *kf_csv_field (kf_csv_t *self, int index, size_t *len);

//  Why the last kf_csv_read returned -1 ("" otherwise). Borrowed.
const char *kf_csv_error (kf_csv_t *self);
#endif
