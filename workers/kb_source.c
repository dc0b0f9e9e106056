/*  kb_source.c - loads the knowledge base from the broker's SQLite file, read-only. */
#include "workers/kb_source.h"
#include "common/log.h"
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct _kf_kb_source_t {
    char *path;                 //  Database file
    sqlite3 *db;                //  Read-only connection, NULL until the file exists
    int64_t version;            //  Version last loaded, 0 before the first load
    bool is_failing;            //  Logged the current failure streak already
};

kf_kb_source_t *
kf_kb_source_new (const char *path)
{
    kf_kb_source_t *self = kf_calloc (1, sizeof *self);
    self->path = kf_strdup (path);
    return self;
}

void
kf_kb_source_destroy (kf_kb_source_t **self_p)
{
    kf_kb_source_t *self = *self_p;
    if (!self)
        return;
    sqlite3_close (self->db);
    free (self->path);
    free (self);
    *self_p = NULL;
}

static void
s_failed (kf_kb_source_t *self, const char *what)
{
    if (!self->is_failing)
        kf_warn ("knowledge base: %s: %s", what, self->db ? sqlite3_errmsg (self->db) : self->path);
    self->is_failing = true;
}

static int64_t
s_read_version (kf_kb_source_t *self)
{
    if (!self->db) {
        if (sqlite3_open_v2 (self->path, &self->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
            s_failed (self, "cannot open");
            sqlite3_close (self->db);
            self->db = NULL;
            return -1;
        }
        sqlite3_busy_timeout (self->db, 100);
    }
    sqlite3_stmt *stmt;
    int64_t version = -1;
    if (sqlite3_prepare_v2 (self->db, "SELECT version FROM kb_meta WHERE id = 1", -1, &stmt,
                            NULL) == SQLITE_OK) {
        if (sqlite3_step (stmt) == SQLITE_ROW)
            version = sqlite3_column_int64 (stmt, 0);
        sqlite3_finalize (stmt);
    }
    if (version < 0)
        s_failed (self, "cannot read version");
    return version;
}

//  Loads every on-shelf item with its similar questions into a new index
static kf_kb_index_t *
s_load (kf_kb_source_t *self)
{
    sqlite3_stmt *items = NULL, *similar = NULL;
    kf_kb_index_t *index = NULL;
    sqlite3_exec (self->db, "BEGIN", NULL, NULL, NULL);     //  One snapshot for both queries
    if (sqlite3_prepare_v2 (self->db, "SELECT id, bot_id, external_id, category, question, answer"
                            " FROM kb_items WHERE status = 1 ORDER BY id", -1, &items, NULL)
    ||  sqlite3_prepare_v2 (self->db, "SELECT question FROM kb_questions WHERE item_id = ?"
                            " ORDER BY position", -1, &similar, NULL)) {
        s_failed (self, "cannot query items");
        goto done;
    }
    index = kf_kb_index_new ();
    int rc;
    while ((rc = sqlite3_step (items)) == SQLITE_ROW) {
        const char *texts [200];
        int count = 0;
        sqlite3_bind_int64 (similar, 1, sqlite3_column_int64 (items, 0));
        while (count < 200 && sqlite3_step (similar) == SQLITE_ROW)
            texts [count++] = strdup ((const char *) sqlite3_column_text (similar, 0));
        sqlite3_reset (similar);
        kf_kb_index_add (index, sqlite3_column_int64 (items, 0),
                         (const char *) sqlite3_column_text (items, 1),
                         (const char *) sqlite3_column_text (items, 2),
                         (const char *) sqlite3_column_text (items, 3),
                         (const char *) sqlite3_column_text (items, 4),
                         (const char *) sqlite3_column_text (items, 5), texts, count);
        for (int i = 0; i < count; i++)
            free ((char *) texts [i]);
    }
    if (rc != SQLITE_DONE) {
        //  A partial read must not pass for the whole version: keep serving the previous one
        s_failed (self, "reading items failed");
        kf_kb_index_destroy (&index);
        goto done;
    }
    kf_kb_index_build (index);
done:
    sqlite3_finalize (items);
    sqlite3_finalize (similar);
    sqlite3_exec (self->db, "COMMIT", NULL, NULL, NULL);
    return index;
}

kf_kb_index_t *
kf_kb_source_poll (kf_kb_source_t *self, int64_t *version)
{
    int64_t current = s_read_version (self);
    if (current < 0 || current == self->version)
        return NULL;
    kf_kb_index_t *index = s_load (self);
    if (!index)
        return NULL;
    self->is_failing = false;
    self->version = current;
    *version = current;
    return index;
}
