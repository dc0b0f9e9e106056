/*  kb_publisher.c - a thread that reads and encodes knowledge-base snapshots for remote workers. */
#include "broker/kb_publisher.h"
#include "common/clock.h"
#include "common/kb_snapshot.h"
#include "common/log.h"
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>

struct _kf_kb_publisher_t {
    char *path;                 //  Database file
    sqlite3 *db;                //  Read-only; the thread's only, NULL until first opened
    pthread_t thread;
    pthread_mutex_t mutex;      //  Guards what follows
    pthread_cond_t wake;
    bool is_requested;          //  A request not yet started
    bool is_building;
    bool is_stopping;
    kf_kb_blob_t *latest;       //  One reference held here
};

kf_kb_blob_t *
kf_kb_blob_hold (kf_kb_blob_t *blob)
{
    __atomic_add_fetch (&blob->refs, 1, __ATOMIC_RELAXED);
    return blob;
}

void
kf_kb_blob_release (kf_kb_blob_t **blob_p)
{
    kf_kb_blob_t *blob = *blob_p;
    *blob_p = NULL;
    if (blob && __atomic_sub_fetch (&blob->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        free (blob->data);
        free (blob);
    }
}

//  Reads and encodes the database's version when it differs from `latest_version`. Returns the new
//  snapshot, or NULL when unchanged or unreadable (logged).
static kf_kb_blob_t *
s_build (kf_kb_publisher_t *self, int64_t latest_version)
{
    char err [256];
    if (!self->db) {
        if (sqlite3_open_v2 (self->path, &self->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                             NULL) != SQLITE_OK) {
            kf_warn ("knowledge-base snapshot: cannot open %s: %s", self->path,
                     self->db ? sqlite3_errmsg (self->db) : "no memory");
            sqlite3_close (self->db);
            self->db = NULL;
            return NULL;
        }
        sqlite3_busy_timeout (self->db, 1000);
    }
    int64_t version = kf_kb_snapshot_sql_version (self->db, err, sizeof err);
    if (version < 0)
        kf_warn ("knowledge-base snapshot: %s", err);
    if (version < 0 || version == latest_version)
        return NULL;
    int64_t started = kf_mono_us ();
    kf_kb_snapshot_t *snapshot = kf_kb_snapshot_read (self->db, err, sizeof err);
    if (!snapshot) {
        kf_warn ("knowledge-base snapshot: %s", err);
        return NULL;
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    kf_kb_snapshot_encode (snapshot, &buffer);
    kf_kb_blob_t *blob = kf_calloc (1, sizeof *blob);
    blob->version = snapshot->version;
    blob->item_count = snapshot->item_count;
    blob->size = buffer.size;
    blob->data = msgpack_sbuffer_release (&buffer);
    blob->refs = 1;
    blob->build_ms = (kf_mono_us () - started) / 1000.0;
    kf_kb_snapshot_destroy (&snapshot);
    kf_info ("knowledge-base snapshot of version %lld: %zu items, %zu bytes, built in %.0f ms",
             (long long) blob->version, blob->item_count, blob->size, blob->build_ms);
    return blob;
}

static void *
s_run (void *arg)
{
    kf_kb_publisher_t *self = arg;
    pthread_mutex_lock (&self->mutex);
    while (!self->is_stopping) {
        if (!self->is_requested) {
            pthread_cond_wait (&self->wake, &self->mutex);
            continue;
        }
        self->is_requested = false;
        self->is_building = true;
        int64_t latest_version = self->latest ? self->latest->version : 0;
        pthread_mutex_unlock (&self->mutex);
        kf_kb_blob_t *blob = s_build (self, latest_version);
        pthread_mutex_lock (&self->mutex);
        if (blob) {
            kf_kb_blob_release (&self->latest);
            self->latest = blob;
        }
        self->is_building = false;
    }
    pthread_mutex_unlock (&self->mutex);
    return NULL;
}

kf_kb_publisher_t *
kf_kb_publisher_new (const char *path)
{
    kf_kb_publisher_t *self = kf_calloc (1, sizeof *self);
    self->path = kf_strdup (path);
    pthread_mutex_init (&self->mutex, NULL);
    pthread_cond_init (&self->wake, NULL);
    if (pthread_create (&self->thread, NULL, s_run, self) != 0) {
        kf_warn ("knowledge-base snapshot thread unavailable: remote workers get no knowledge base");
        pthread_mutex_destroy (&self->mutex);
        pthread_cond_destroy (&self->wake);
        free (self->path);
        free (self);
        return NULL;
    }
    return self;
}

void
kf_kb_publisher_destroy (kf_kb_publisher_t **self_p)
{
    kf_kb_publisher_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_lock (&self->mutex);
    self->is_stopping = true;
    pthread_cond_signal (&self->wake);
    pthread_mutex_unlock (&self->mutex);
    pthread_join (self->thread, NULL);
    sqlite3_close (self->db);
    kf_kb_blob_release (&self->latest);
    pthread_mutex_destroy (&self->mutex);
    pthread_cond_destroy (&self->wake);
    free (self->path);
    free (self);
    *self_p = NULL;
}

void
kf_kb_publisher_request (kf_kb_publisher_t *self)
{
    pthread_mutex_lock (&self->mutex);
    self->is_requested = true;
    pthread_cond_signal (&self->wake);
    pthread_mutex_unlock (&self->mutex);
}

bool
kf_kb_publisher_is_busy (kf_kb_publisher_t *self)
{
    pthread_mutex_lock (&self->mutex);
    bool is_busy = self->is_requested || self->is_building;
    pthread_mutex_unlock (&self->mutex);
    return is_busy;
}

kf_kb_blob_t *
kf_kb_publisher_latest (kf_kb_publisher_t *self)
{
    pthread_mutex_lock (&self->mutex);
    kf_kb_blob_t *blob = self->latest ? kf_kb_blob_hold (self->latest) : NULL;
    pthread_mutex_unlock (&self->mutex);
    return blob;
}
