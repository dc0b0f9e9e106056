/*  kb_export.c - `kefuctl kb export [--bot ID] [--format jsonl|csv] [--output FILE]`: every item of
    a bot's knowledge base, on shelf or off, paged from kb.item.query, written in the format `kb
    import` reads, so the file imports into an empty database as the same items. A category goes
    out as its path (from kb.category.query), never as an id another database does not share.
    JSONL lines also carry id and updated_at for reference; import drops them. */
#include "kefuctl/kefuctl.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_PAGE_SIZE         100     //  kb.item.query's largest page
#define S_CATEGORY_PAGE     50      //  kb.category.query's largest page

typedef struct {
    int64_t id;
    char *path;                 //  NULL: the broker did not name it
} s_category_t;

typedef struct {
    kf_client_t *client;
    const char *bot_id;
    bool is_csv;
    FILE *out;
    s_category_t *categories;   //  Every category id met so far, with its path
    int category_count, category_capacity;
    int written;                //  Items written
    int warned;                 //  Items not written faithfully
    bool is_changed;            //  Items came or went while it paged
} s_export_t;

static s_category_t *
s_category_find (s_export_t *self, int64_t id)
{
    for (int i = 0; i < self->category_count; i++)
        if (self->categories [i].id == id)
            return &self->categories [i];
    return NULL;
}

static void
s_category_add (s_export_t *self, int64_t id, char *path)
{
    if (self->category_count == self->category_capacity) {
        self->category_capacity = self->category_capacity ? self->category_capacity * 2 : 32;
        self->categories = kf_realloc (self->categories,
                                       self->category_capacity * sizeof (s_category_t));
    }
    self->categories [self->category_count++] = (s_category_t) { id, path };
}

//  Asks kb.category.query for the paths of `count` ids; an id it does not return stays unnamed
static void
s_category_fetch (s_export_t *self, const int64_t *ids, int count)
{
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &params, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, self->bot_id ? 3 : 2);
    if (self->bot_id)
        kf_mp_pack_kv_str (&pk, "bot_id", self->bot_id);
    kf_mp_pack_cstr (&pk, "ids");
    msgpack_pack_array (&pk, count);
    for (int i = 0; i < count; i++)
        msgpack_pack_int64 (&pk, ids [i]);
    kf_mp_pack_kv_int (&pk, "page_size", S_CATEGORY_PAGE);
    kf_reply_t *reply = kefuctl_call (self->client, "kb.category.query", &params);
    const msgpack_object *data = reply ? kf_mp_get (reply->result, "data") : NULL;
    for (uint32_t i = 0; data && data->type == MSGPACK_OBJECT_ARRAY && i < data->via.array.size; i++) {
        const msgpack_object *category = &data->via.array.ptr [i];
        char *path = kf_mp_dup_str (category, "path");
        s_category_t *known = s_category_find (self, kf_mp_get_int (category, "id", 0));
        if (known && !known->path)
            known->path = path;
        else
            free (path);
    }
    kf_reply_destroy (&reply);
    msgpack_sbuffer_destroy (&params);
}

//  Learns the paths of the categories of a page of items that are not known yet
static void
s_category_learn (s_export_t *self, const msgpack_object *items)
{
    int64_t ids [S_CATEGORY_PAGE];
    int count = 0;
    for (uint32_t i = 0; i < items->via.array.size; i++) {
        int64_t id = kf_mp_get_int (&items->via.array.ptr [i], "category_id", 0);
        if (id <= 0 || s_category_find (self, id))
            continue;
        s_category_add (self, id, NULL);
        ids [count++] = id;
        if (count == S_CATEGORY_PAGE) {
            s_category_fetch (self, ids, count);
            count = 0;
        }
    }
    if (count)
        s_category_fetch (self, ids, count);
}

//  The category of an item as a path (*path NULL when uncategorized), from its category_id or,
//  with none, its category text. *unnamed_id is a category_id no path was found for (else 0).
static void
s_item_category (s_export_t *self, const msgpack_object *item, const char **path, size_t *len,
                 int64_t *unnamed_id)
{
    *path = NULL;
    *len = 0;
    *unnamed_id = 0;
    int64_t id = kf_mp_get_int (item, "category_id", 0);
    s_category_t *category = id > 0 ? s_category_find (self, id) : NULL;
    if (category && category->path && *category->path) {
        *path = category->path;
        *len = strlen (category->path);
    }
    else
    if (!kf_mp_str (kf_mp_get (item, "category"), path, len) || *len == 0) {
        *path = NULL;
        *unnamed_id = id > 0 ? id : 0;
    }
}

static void
s_warn (s_export_t *self, const msgpack_object *item, bool *is_warned, const char *problem)
{
    char *external_id = kf_mp_dup_str (item, "external_id");
    fprintf (stderr, "kefuctl: item %lld%s%s%s: %s\n", (long long) kf_mp_get_int (item, "id", 0),
             external_id ? " (" : "", external_id ? external_id : "", external_id ? ")" : "", problem);
    free (external_id);
    if (!*is_warned)
        self->warned++;
    *is_warned = true;
}

//  The value of a field worth writing: present, not nil, not an empty external_id
static const msgpack_object *
s_member (const msgpack_object *item, const char *key)
{
    const msgpack_object *value = kf_mp_get (item, key);
    if (!value || value->type == MSGPACK_OBJECT_NIL)
        return NULL;
    if (value->type == MSGPACK_OBJECT_STR && value->via.str.size == 0 && strcmp (key, "external_id") == 0)
        return NULL;
    return value;
}

static void
s_put_json (FILE *out, const msgpack_object *value)
{
    char *json = kf_json_from_msgpack (value);
    fputs (json, out);
    free (json);
}

static void
s_write_jsonl (s_export_t *self, const msgpack_object *item)
{
    static const char *keys [] = { "id", "external_id", "category", "question", "similar_questions",
                                   "answer", "response_type", "response_content", "variants", "status",
                                   "keywords", "updated_at" };
    bool is_warned = false;
    const char *path;
    size_t path_len;
    int64_t unnamed_id;
    s_item_category (self, item, &path, &path_len, &unnamed_id);
    const char *comma = "";
    fputc ('{', self->out);
    for (size_t i = 0; i < sizeof keys / sizeof keys [0]; i++) {
        const msgpack_object *value = s_member (item, keys [i]);
        msgpack_object path_value = { .type = MSGPACK_OBJECT_STR,
                                      .via.str = { .size = (uint32_t) path_len, .ptr = path } };
        msgpack_object id_value = { .type = MSGPACK_OBJECT_POSITIVE_INTEGER,
                                    .via.u64 = (uint64_t) unnamed_id };
        if (strcmp (keys [i], "category") == 0) {
            //  The path; failing that, the id: right for this database only, so say so
            value = path ? &path_value : NULL;
            if (unnamed_id) {
                s_warn (self, item, &is_warned, "its category_id has no path (kb.category.query did"
                        " not name it); written as category_id, which only this database knows");
                fprintf (self->out, "%s\"category_id\":", comma);
                s_put_json (self->out, &id_value);
                comma = ",";
            }
        }
        if (!value)
            continue;
        fprintf (self->out, "%s\"%s\":", comma, keys [i]);
        s_put_json (self->out, value);
        comma = ",";
    }
    fputs ("}\n", self->out);
}

//  Writes one CSV cell, quoted when it holds a comma, a quote or a line break
static void
s_csv_cell (FILE *out, const char *text, size_t len)
{
    if (!memchr (text, ',', len) && !memchr (text, '"', len) && !memchr (text, '\n', len)
    &&  !memchr (text, '\r', len)) {
        fwrite (text, 1, len, out);
        return;
    }
    fputc ('"', out);
    for (size_t i = 0; i < len; i++) {
        if (text [i] == '"')
            fputc ('"', out);
        fputc (text [i], out);
    }
    fputc ('"', out);
}

//  A list of strings as one entry per line. Returns false when that loses something: an entry
//  that is blank (import skips it), holds a line break (import splits it) or is not a str
//  (written as its JSON text).
static bool
s_csv_lines (FILE *out, const msgpack_object *list)
{
    if (list->type != MSGPACK_OBJECT_ARRAY) {
        char *json = kf_json_from_msgpack (list);
        s_csv_cell (out, json, strlen (json));
        free (json);
        return false;
    }
    bool is_faithful = true;
    char *joined = NULL;
    size_t size = 0;
    FILE *cell = open_memstream (&joined, &size);
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const char *entry;
        size_t len;
        char *json = NULL;
        if (!kf_mp_str (&list->via.array.ptr [i], &entry, &len)) {
            entry = json = kf_json_from_msgpack (&list->via.array.ptr [i]);
            len = strlen (json);
            is_faithful = false;
        }
        bool is_blank = true;
        for (size_t j = 0; j < len; j++) {
            if (entry [j] == '\n' || entry [j] == '\r')
                is_faithful = false;
            if (!isspace ((unsigned char) entry [j]))
                is_blank = false;
        }
        if (is_blank)
            is_faithful = false;
        else {
            if (i > 0)
                fputc ('\n', cell);
            fwrite (entry, 1, len, cell);
        }
        free (json);
    }
    fclose (cell);
    s_csv_cell (out, joined, size);
    free (joined);
    return is_faithful;
}

static void
s_write_csv (s_export_t *self, const msgpack_object *item)
{
    bool is_warned = false;
    const char *comma = "";
    for (int i = 0; i < kefuctl_kb_column_count; i++) {
        const kefuctl_kb_column_t *column = &kefuctl_kb_columns [i];
        if (!column->is_exported)
            continue;
        fputs (comma, self->out);
        comma = ",";
        const msgpack_object *value = s_member (item, column->name);
        const char *text;
        size_t len;
        if (strcmp (column->name, "category") == 0) {
            int64_t unnamed_id;
            s_item_category (self, item, &text, &len, &unnamed_id);
            if (unnamed_id)
                s_warn (self, item, &is_warned, "its category_id has no path (kb.category.query did"
                        " not name it); written uncategorized");
            if (text)
                s_csv_cell (self->out, text, len);
        }
        else
        if (!value
        ||  (value->type == MSGPACK_OBJECT_ARRAY && value->via.array.size == 0))
            ;                           //  Empty cell: the field's default
        else
        if (column->kind == KEFUCTL_CELL_LINES) {
            if (!s_csv_lines (self->out, value))
                s_warn (self, item, &is_warned, "a list entry is blank or holds a line break, which a"
                        " one-entry-per-line cell cannot hold (use --format jsonl for a faithful copy)");
        }
        else
        if (column->kind != KEFUCTL_CELL_JSON && kf_mp_str (value, &text, &len))
            s_csv_cell (self->out, text, len);
        else {
            //  JSON cells, integers, and anything of an unexpected type as its JSON text
            char *json = kf_json_from_msgpack (value);
            s_csv_cell (self->out, json, strlen (json));
            free (json);
        }
    }
    fputs ("\r\n", self->out);
}

static void
s_csv_header (FILE *out)
{
    fputs ("\xEF\xBB\xBF", out);        //  So spreadsheets read the file as UTF-8
    const char *comma = "";
    for (int i = 0; i < kefuctl_kb_column_count; i++) {
        if (kefuctl_kb_columns [i].is_exported) {
            fprintf (out, "%s%s", comma, kefuctl_kb_columns [i].name);
            comma = ",";
        }
    }
    fputs ("\r\n", out);
}

//  Pages through kb.item.query to the end, writing each item. Returns 0 or 3 (no complete answer).
static int
s_export (s_export_t *self)
{
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    int64_t total = -1;
    int rc = 0;
    for (int64_t page = 1;; page++) {
        msgpack_packer pk;
        msgpack_packer_init (&pk, &params, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, self->bot_id ? 3 : 2);
        if (self->bot_id)
            kf_mp_pack_kv_str (&pk, "bot_id", self->bot_id);
        kf_mp_pack_kv_int (&pk, "page", page);
        kf_mp_pack_kv_int (&pk, "page_size", S_PAGE_SIZE);
        kf_reply_t *reply = kefuctl_call (self->client, "kb.item.query", &params);
        if (!reply) {
            rc = 3;
            break;
        }
        const msgpack_object *data = kf_mp_get (reply->result, "data");
        if (!data || data->type != MSGPACK_OBJECT_ARRAY) {
            fprintf (stderr, "kefuctl: kb.item.query answered without a data list\n");
            kf_reply_destroy (&reply);
            rc = 3;
            break;
        }
        if (page == 1)
            total = kf_mp_get_int (reply->result, "total", -1);
        s_category_learn (self, data);
        for (uint32_t i = 0; i < data->via.array.size; i++) {
            if (self->is_csv)
                s_write_csv (self, &data->via.array.ptr [i]);
            else
                s_write_jsonl (self, &data->via.array.ptr [i]);
            self->written++;
        }
        bool has_more = kf_mp_get_bool (reply->result, "has_more", false) && data->via.array.size;
        kf_reply_destroy (&reply);
        if (!has_more)
            break;
    }
    msgpack_sbuffer_destroy (&params);
    if (rc == 0 && total >= 0 && total != self->written) {
        //  Pages are numbered: items created or deleted meanwhile shift them
        fprintf (stderr, "kefuctl: the knowledge base changed during the export (%lld items when it"
                         " began, %d written); export again for a consistent copy\n",
                 (long long) total, self->written);
        self->is_changed = true;
    }
    return rc;
}

int
kefuctl_kb_export (kf_client_t *client, int argc, char **argv)
{
    s_export_t self = { .client = client };
    const char *format = "jsonl", *output = NULL;
    bool is_usage = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp (argv [i], "--bot") == 0 && i + 1 < argc)
            self.bot_id = argv [++i];
        else
        if (strcmp (argv [i], "--format") == 0 && i + 1 < argc)
            format = argv [++i];
        else
        if (strcmp (argv [i], "--output") == 0 && i + 1 < argc)
            output = argv [++i];
        else
            is_usage = true;
    }
    if (is_usage || (strcmp (format, "jsonl") != 0 && strcmp (format, "csv") != 0)) {
        fprintf (stderr, "usage: kefuctl kb export [--bot ID] [--format jsonl|csv] [--output FILE]\n"
                         "       every item, on shelf or off, in the format kb import reads (to stdout\n"
                         "       without --output); exits 1 when an item could not be written faithfully\n");
        return 2;
    }
    self.is_csv = strcmp (format, "csv") == 0;
    if (output && strcmp (output, "-") == 0)
        output = NULL;
    //  A file is written aside and renamed when complete: a failed export leaves no half a file
    char *partial = NULL;
    if (output) {
        if (asprintf (&partial, "%s.partial", output) < 0)
            abort ();
        self.out = fopen (partial, "w");
        if (!self.out) {
            fprintf (stderr, "kefuctl: cannot write %s: %s\n", partial, strerror (errno));
            free (partial);
            return 2;
        }
    }
    else
        self.out = stdout;
    if (self.is_csv)
        s_csv_header (self.out);
    int rc = s_export (&self);
    if (fflush (self.out) || ferror (self.out)) {
        fprintf (stderr, "kefuctl: writing %s failed: %s\n", output ? partial : "stdout", strerror (errno));
        rc = 3;
    }
    if (output) {
        if (fclose (self.out) && rc == 0) {
            fprintf (stderr, "kefuctl: writing %s failed: %s\n", partial, strerror (errno));
            rc = 3;
        }
        if (rc == 0 && rename (partial, output)) {
            fprintf (stderr, "kefuctl: cannot rename %s to %s: %s\n", partial, output, strerror (errno));
            rc = 3;
        }
        if (rc)
            unlink (partial);
        else
            printf ("exported %d items to %s\n", self.written, output);
        free (partial);
    }
    for (int i = 0; i < self.category_count; i++)
        free (self.categories [i].path);
    free (self.categories);
    if (rc)
        fprintf (stderr, "kefuctl: export incomplete%s\n", output ? "; nothing written" : "");
    else
    if (self.warned)
        fprintf (stderr, "kefuctl: %d item%s not written faithfully (see above)\n", self.warned,
                 self.warned == 1 ? "" : "s");
    return rc ? rc : self.warned || self.is_changed ? 1 : 0;
}
