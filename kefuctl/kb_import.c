/*  kb_import.c - `kefuctl kb import FILE [--bot ID] [--format jsonl|csv]`: streams a JSONL or CSV
    file to kb.item.create in batches of 500, idempotent by external_id; a bad line or row is
    reported with its line number and reason and never stops the rest. The CSV columns are the
    item's fields (kefuctl_kb_columns); `kb export` writes both formats the same way. */
#include "kefuctl/kefuctl.h"
#include "kefuctl/csv.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <strings.h>
#include <zmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_BATCH 500

const kefuctl_kb_column_t kefuctl_kb_columns [] = {
    { "external_id",       KEFUCTL_CELL_TEXT,  true },
    { "category",          KEFUCTL_CELL_TEXT,  true },
    { "category_id",       KEFUCTL_CELL_INT,   false },
    { "question",          KEFUCTL_CELL_TEXT,  true },
    { "similar_questions", KEFUCTL_CELL_LINES, true },
    { "answer",            KEFUCTL_CELL_TEXT,  true },
    { "status",            KEFUCTL_CELL_INT,   true },
    { "keywords",          KEFUCTL_CELL_LINES, true },
    { "response_type",     KEFUCTL_CELL_TEXT,  true },
    { "response_content",  KEFUCTL_CELL_JSON,  true },
    { "variants",          KEFUCTL_CELL_JSON,  true },
};
const int kefuctl_kb_column_count = sizeof kefuctl_kb_columns / sizeof kefuctl_kb_columns [0];

typedef struct {
    int line;
    char *reason;
} s_note_t;

typedef struct {
    kf_client_t *client;
    const char *bot_id;
    msgpack_sbuffer items;      //  Packed items of the batch being built
    msgpack_packer pk;          //  Packs into items
    int lines [S_BATCH];        //  File line of each item in the batch
    int count;
    s_note_t *notes;            //  Lines rejected before the broker saw them, since the last batch
    int note_count, note_capacity;
    int created, updated, rejected;
    bool is_broken;             //  The broker stopped answering
} s_import_t;

//  Sends the batch, then reports its rejections and the file's since the last batch in line order
static void
s_flush (s_import_t *import)
{
    kf_reply_t *reply = NULL;
    const msgpack_object *data = NULL;
    if (import->count && !import->is_broken) {
        msgpack_sbuffer params;
        msgpack_sbuffer_init (&params);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &params, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, import->bot_id ? 2 : 1);
        if (import->bot_id)
            kf_mp_pack_kv_str (&pk, "bot_id", import->bot_id);
        kf_mp_pack_cstr (&pk, "items");
        msgpack_pack_array (&pk, import->count);
        pk.callback (pk.data, import->items.data, import->items.size);
        if (kf_client_call (import->client, "kb.item.create", params.data, params.size, &reply)) {
            fprintf (stderr, "kefuctl: no reply from the broker (%s)\n", zmq_strerror (errno));
            import->is_broken = true;
        }
        else
        if (!reply->ok) {
            fprintf (stderr, "lines %d-%d: batch rejected: %s\n", import->lines [0],
                     import->lines [import->count - 1], reply->error.message);
            import->rejected += import->count;
        }
        else
            data = kf_mp_get (reply->result, "data");
        msgpack_sbuffer_destroy (&params);
    }
    int note = 0;
    for (int i = 0; i <= import->count; i++) {
        int line = i < import->count ? import->lines [i] : INT_MAX;
        for (; note < import->note_count && import->notes [note].line < line; note++)
            fprintf (stderr, "line %d: rejected: %s\n", import->notes [note].line,
                     import->notes [note].reason);
        if (i == import->count || !data || data->type != MSGPACK_OBJECT_ARRAY
        ||  (uint32_t) i >= data->via.array.size)
            continue;
        const msgpack_object *entry = &data->via.array.ptr [i];
        if (kf_mp_str_eq (entry, "status", "created"))
            import->created++;
        else
        if (kf_mp_str_eq (entry, "status", "updated"))
            import->updated++;
        else {
            kf_error_t err;
            kf_error_unpack (kf_mp_get (entry, "error"), &err);
            fprintf (stderr, "line %d: rejected: %s\n", line, err.message);
            import->rejected++;
        }
    }
    for (int i = 0; i < import->note_count; i++)
        free (import->notes [i].reason);
    import->note_count = 0;
    kf_reply_destroy (&reply);
    msgpack_sbuffer_clear (&import->items);
    import->count = 0;
}

//  Counts an item just packed into the batch, sending the batch when it is full
static void
s_added (s_import_t *import, int line)
{
    import->lines [import->count++] = line;
    if (import->count == S_BATCH)
        s_flush (import);
}

static void
s_reject (s_import_t *import, int line, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_reject (s_import_t *import, int line, const char *format, ...)
{
    if (import->note_count == import->note_capacity) {
        import->note_capacity = import->note_capacity ? import->note_capacity * 2 : 16;
        import->notes = kf_realloc (import->notes, import->note_capacity * sizeof (s_note_t));
    }
    s_note_t *note = &import->notes [import->note_count++];
    note->line = line;
    va_list args;
    va_start (args, format);
    if (vasprintf (&note->reason, format, args) < 0)
        abort ();
    va_end (args);
    import->rejected++;
}

//  Adds a packed item to the batch without the keys the server sets (id, updated_at: what kb
//  export writes for reference), so an exported file imports as it is.
static void
s_add_packed (s_import_t *import, const msgpack_sbuffer *item, int line)
{
    msgpack_unpacked unpacked;
    bool is_map = kf_mp_unpack_one (item->data, item->size, &unpacked)
               && unpacked.data.type == MSGPACK_OBJECT_MAP;
    uint32_t keep = 0;
    for (uint32_t i = 0; is_map && i < unpacked.data.via.map.size; i++) {
        const msgpack_object *key = &unpacked.data.via.map.ptr [i].key;
        keep += !kf_mp_str_eq_key (key, "id") && !kf_mp_str_eq_key (key, "updated_at");
    }
    if (is_map && keep < unpacked.data.via.map.size) {
        msgpack_pack_map (&import->pk, keep);
        for (uint32_t i = 0; i < unpacked.data.via.map.size; i++) {
            const msgpack_object_kv *kv = &unpacked.data.via.map.ptr [i];
            if (kf_mp_str_eq_key (&kv->key, "id") || kf_mp_str_eq_key (&kv->key, "updated_at"))
                continue;
            msgpack_pack_object (&import->pk, kv->key);
            msgpack_pack_object (&import->pk, kv->val);
        }
    }
    else                                //  Anything else goes as it is: the broker judges it
        msgpack_sbuffer_write (&import->items, item->data, item->size);
    msgpack_unpacked_destroy (&unpacked);
    s_added (import, line);
}

static void
s_read_jsonl (s_import_t *import, FILE *file)
{
    msgpack_sbuffer item;
    msgpack_sbuffer_init (&item);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &item, msgpack_sbuffer_write);
    char *line = NULL;
    size_t capacity = 0;
    ssize_t len;
    int number = 0;
    while (!import->is_broken && (len = getline (&line, &capacity, file)) != -1) {
        number++;
        char *text = line;
        if (number == 1 && len >= 3 && memcmp (text, "\xEF\xBB\xBF", 3) == 0)
            text += 3, len -= 3;        //  A byte order mark from an editor
        while (len > 0 && (text [len - 1] == '\n' || text [len - 1] == '\r'))
            text [--len] = 0;
        if (len == 0)
            continue;
        char err [256];
        msgpack_sbuffer_clear (&item);
        if (kf_json_to_msgpack (text, len, &pk, err, sizeof err))
            s_reject (import, number, "invalid JSON: %s", err);
        else
            s_add_packed (import, &item, number);
    }
    free (line);
    msgpack_sbuffer_destroy (&item);
}

//  Reads the header: *columns (heap, caller frees) gets the index in kefuctl_kb_columns of each
//  column. Returns the column count, or -1 after saying what is wrong with the file.
static int
s_csv_header (kf_csv_t *csv, const char *path, int **columns)
{
    int count;
    size_t len;
    do                                  //  Blank lines before the header are skipped
        count = kf_csv_read (csv);
    while (count == 1 && (kf_csv_field (csv, 0, &len), len == 0));
    if (count <= 0) {
        if (count == 0)
            fprintf (stderr, "kefuctl: %s: no header row (the first row names the columns)\n", path);
        else
            fprintf (stderr, "kefuctl: %s line %d: bad header row: %s\n", path, kf_csv_line (csv),
                     kf_csv_error (csv));
        return -1;
    }
    int *found = kf_calloc (count, sizeof (int));
    bool seen [sizeof kefuctl_kb_columns / sizeof kefuctl_kb_columns [0]] = { false };
    for (int i = 0; i < count; i++) {
        const char *name = kf_csv_field (csv, i, &len);
        while (len && isspace ((unsigned char) *name))
            name++, len--;
        while (len && isspace ((unsigned char) name [len - 1]))
            len--;
        int known = 0;
        while (known < kefuctl_kb_column_count
           && (strlen (kefuctl_kb_columns [known].name) != len
           ||  memcmp (kefuctl_kb_columns [known].name, name, len) != 0))
            known++;
        const char *problem = known == kefuctl_kb_column_count ? "unknown"
                            : seen [known] ? "repeated" : NULL;
        if (problem) {
            fprintf (stderr, "kefuctl: %s line %d: column %d of the header is %s: \"%.*s\"\n"
                             "  columns: external_id, category (a path like 售后/退货退款) or category_id,"
                             " question, similar_questions, answer, status, keywords, response_type,"
                             " response_content, variants\n",
                     path, kf_csv_line (csv), i + 1, problem, (int) len, name);
            free (found);
            return -1;
        }
        seen [known] = true;
        found [i] = known;
    }
    for (int i = 0; i < kefuctl_kb_column_count; i++) {
        const char *name = kefuctl_kb_columns [i].name;
        if (!seen [i] && (strcmp (name, "question") == 0 || strcmp (name, "answer") == 0)) {
            fprintf (stderr, "kefuctl: %s line %d: the header has no %s column\n", path,
                     kf_csv_line (csv), name);
            free (found);
            return -1;
        }
    }
    *columns = found;
    return count;
}

//  The next entry of a one-per-line cell from *cursor on: lines end at LF, a CR before the LF is
//  dropped, blank lines (nothing or only spaces) are skipped. Returns NULL after the last one.
static const char *
s_next_line (const char **cursor, const char *end, size_t *len)
{
    while (*cursor < end) {
        const char *line = *cursor;
        const char *next = memchr (line, '\n', end - line);
        *len = (next ? next : end) - line;
        *cursor = next ? next + 1 : end;
        if (*len && line [*len - 1] == '\r')
            (*len)--;
        for (size_t i = 0; i < *len; i++)
            if (!isspace ((unsigned char) line [i]))
                return line;
    }
    return NULL;
}

static uint32_t
s_count_lines (const char *cell, size_t len)
{
    uint32_t count = 0;
    size_t line_len;
    for (const char *cursor = cell; s_next_line (&cursor, cell + len, &line_len); )
        count++;
    return count;
}

static void
s_pack_lines (const char *cell, size_t len, msgpack_packer *pk)
{
    msgpack_pack_array (pk, s_count_lines (cell, len));
    size_t line_len;
    const char *cursor = cell, *line;
    while ((line = s_next_line (&cursor, cell + len, &line_len)))
        kf_mp_pack_str (pk, line, line_len);
}

//  A cell's start for a message: at most 40 bytes, cut at a character boundary
static int
s_cut (const char *cell, size_t len)
{
    size_t cut = len < 40 ? len : 40;
    while (cut < len && cut > 0 && ((unsigned char) cell [cut] & 0xC0) == 0x80)
        cut--;
    return (int) cut;
}

//  Packs the cells of a row as an item's members, empty cells left out (*members counts them).
//  Returns 0, or -1 with the reason in `reason`.
static int
s_csv_row (kf_csv_t *csv, const int *columns, int count, msgpack_packer *pk, uint32_t *members,
           char *reason, size_t reason_size)
{
    *members = 0;
    for (int i = 0; i < count; i++) {
        const kefuctl_kb_column_t *column = &kefuctl_kb_columns [columns [i]];
        size_t len;
        const char *cell = kf_csv_field (csv, i, &len);
        if (len == 0 || (column->kind == KEFUCTL_CELL_LINES && s_count_lines (cell, len) == 0))
            continue;                   //  Empty: the field is left out
        kf_mp_pack_cstr (pk, column->name);
        if (column->kind == KEFUCTL_CELL_TEXT)
            kf_mp_pack_str (pk, cell, len);
        else
        if (column->kind == KEFUCTL_CELL_LINES)
            s_pack_lines (cell, len, pk);
        else
        if (column->kind == KEFUCTL_CELL_INT) {
            char *end;                  //  Spaces around the digits are allowed
            errno = 0;
            long long value = strtoll (cell, &end, 10);
            while (end < cell + len && isspace ((unsigned char) *end))
                end++;
            if (end == cell || end != cell + len || errno == ERANGE) {
                snprintf (reason, reason_size, "%s is not an integer: \"%.*s\"", column->name,
                          s_cut (cell, len), cell);
                return -1;
            }
            msgpack_pack_int64 (pk, value);
        }
        else {
            char err [200];
            if (kf_json_to_msgpack (cell, len, pk, err, sizeof err)) {
                snprintf (reason, reason_size, "%s is not valid JSON: %s", column->name, err);
                return -1;
            }
        }
        (*members)++;
    }
    return 0;
}

static void
s_read_csv (s_import_t *import, FILE *file, const char *path, bool *is_bad_header)
{
    kf_csv_t *csv = kf_csv_new (file);
    int *columns = NULL;
    int count = s_csv_header (csv, path, &columns);
    *is_bad_header = count < 0;
    msgpack_sbuffer values;
    msgpack_sbuffer_init (&values);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &values, msgpack_sbuffer_write);
    int fields;
    while (count > 0 && !import->is_broken && (fields = kf_csv_read (csv)) != 0) {
        int line = kf_csv_line (csv);
        if (fields < 0) {
            s_reject (import, line, "%s", kf_csv_error (csv));
            continue;
        }
        size_t total = 0, len;
        for (int i = 0; i < fields; i++) {
            kf_csv_field (csv, i, &len);
            total += len;
        }
        if (total == 0)
            continue;                   //  A blank line, or a row of empty cells
        if (fields != count) {
            s_reject (import, line, "the row has %d fields, the header %d", fields, count);
            continue;
        }
        char reason [300];
        uint32_t members;
        msgpack_sbuffer_clear (&values);
        if (s_csv_row (csv, columns, count, &pk, &members, reason, sizeof reason)) {
            s_reject (import, line, "%s", reason);
            continue;
        }
        msgpack_pack_map (&import->pk, members);
        msgpack_sbuffer_write (&import->items, values.data, values.size);
        s_added (import, line);
    }
    msgpack_sbuffer_destroy (&values);
    free (columns);
    kf_csv_destroy (&csv);
}

int
kefuctl_kb_import (kf_client_t *client, int argc, char **argv)
{
    s_import_t import = { .client = client };
    const char *path = NULL, *format = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp (argv [i], "--bot") == 0 && i + 1 < argc)
            import.bot_id = argv [++i];
        else
        if (strcmp (argv [i], "--format") == 0 && i + 1 < argc)
            format = argv [++i];
        else
        if (!path && (strncmp (argv [i], "--", 2) != 0 || strcmp (argv [i], "-") == 0))
            path = argv [i];
        else
            path = format = "";         //  Anything else: usage
    }
    if (!path || !*path || (format && strcmp (format, "jsonl") != 0 && strcmp (format, "csv") != 0)) {
        fprintf (stderr, "usage: kefuctl kb import FILE [--bot ID] [--format jsonl|csv]\n"
                         "       FILE - is stdin; the format comes from a .csv or .jsonl name, else jsonl\n");
        return 2;
    }
    if (!format) {
        const char *dot = strrchr (path, '.');
        format = dot && strcasecmp (dot, ".csv") == 0 ? "csv" : "jsonl";
    }
    FILE *file = strcmp (path, "-") == 0 ? stdin : fopen (path, "r");
    if (!file) {
        fprintf (stderr, "kefuctl: cannot open %s: %s\n", path, strerror (errno));
        return 2;
    }
    msgpack_sbuffer_init (&import.items);
    msgpack_packer_init (&import.pk, &import.items, msgpack_sbuffer_write);
    bool is_bad_header = false;
    if (strcmp (format, "csv") == 0)
        s_read_csv (&import, file, path, &is_bad_header);
    else
        s_read_jsonl (&import, file);
    s_flush (&import);
    free (import.notes);
    bool is_read_error = ferror (file);
    if (is_read_error)
        fprintf (stderr, "kefuctl: reading %s failed: %s\n", path, strerror (errno));
    if (file != stdin)
        fclose (file);
    msgpack_sbuffer_destroy (&import.items);
    if (is_bad_header)
        return 2;
    printf ("imported %s: %d created, %d updated, %d rejected\n", path, import.created,
            import.updated, import.rejected);
    return import.is_broken ? 3 : import.rejected || is_read_error ? 1 : 0;
}
