/*  checkpointer.c - a thread that runs passive WAL checkpoints on its own connection. */
#include "broker/checkpointer.h"
#include "common/log.h"
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

struct _kf_checkpointer_t {
    sqlite3 *db;                //  Owned by the thread while it runs
    int interval_ms;
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    bool is_stopping;           //  Guarded by mutex
};

static void *
s_run (void *arg)
{
    kf_checkpointer_t *self = arg;
    pthread_mutex_lock (&self->mutex);
    while (!self->is_stopping) {
        struct timespec until;
        clock_gettime (CLOCK_REALTIME, &until);
        until.tv_nsec += (long) (self->interval_ms % 1000) * 1000000;
        until.tv_sec += self->interval_ms / 1000 + until.tv_nsec / 1000000000;
        until.tv_nsec %= 1000000000;
        pthread_cond_timedwait (&self->wake, &self->mutex, &until);
        if (self->is_stopping)
            break;
        pthread_mutex_unlock (&self->mutex);
        int log_frames = 0, checkpointed = 0;
        int rc = sqlite3_wal_checkpoint_v2 (self->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                            &checkpointed);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            kf_warn ("checkpoint failed: %s", sqlite3_errmsg (self->db));
        pthread_mutex_lock (&self->mutex);
    }
    pthread_mutex_unlock (&self->mutex);
    return NULL;
}

kf_checkpointer_t *
kf_checkpointer_new (const char *path, int interval_ms)
{
    kf_checkpointer_t *self = kf_calloc (1, sizeof *self);
    self->interval_ms = interval_ms;
    pthread_mutex_init (&self->mutex, NULL);
    pthread_cond_init (&self->wake, NULL);
    //  A connection that has never read does not know the database is in WAL mode, and its
    //  checkpoints do nothing (successfully): read once before the thread starts
    if (sqlite3_open_v2 (path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK
    ||  sqlite3_exec (self->db, "SELECT 1 FROM sqlite_master LIMIT 1", NULL, NULL, NULL) != SQLITE_OK
    ||  pthread_create (&self->thread, NULL, s_run, self) != 0) {
        kf_warn ("checkpoint thread unavailable (%s): SQLite will checkpoint in commits",
                 self->db ? sqlite3_errmsg (self->db) : "no connection");
        sqlite3_close (self->db);
        pthread_mutex_destroy (&self->mutex);
        pthread_cond_destroy (&self->wake);
        free (self);
        return NULL;
    }
    return self;
}

void
kf_checkpointer_destroy (kf_checkpointer_t **self_p)
{
    kf_checkpointer_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_lock (&self->mutex);
    self->is_stopping = true;
    pthread_cond_signal (&self->wake);
    pthread_mutex_unlock (&self->mutex);
    pthread_join (self->thread, NULL);
    sqlite3_close (self->db);
    pthread_mutex_destroy (&self->mutex);
    pthread_cond_destroy (&self->wake);
    free (self);
    *self_p = NULL;
}
