/*  kb_loader.c - a thread that polls the knowledge-base source and hands over finished indexes. */
#include "workers/kb_loader.h"
#include "common/log.h"
#include "workers/kb_source.h"
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

struct _kf_kb_loader_t {
    kf_kb_source_t *source;     //  Used by the thread only
    int poll_ms;
    pthread_t thread;
    pthread_mutex_t mutex;      //  Guards what follows
    pthread_cond_t changed;     //  Signals a new index, or stop
    kf_kb_index_t *ready;       //  Finished, not yet taken
    kf_kb_suggest_t *ready_suggest;     //  Its suggestions
    kf_bot_models_t *ready_models;      //  Its bots' intent models and chit-chat tables
    int64_t ready_version;
    char *offered;              //  Encoded snapshot to build, NULL when none
    size_t offered_size;
    bool is_building;           //  Building an offered snapshot now
    uint64_t rejected;          //  Offered snapshots that were not valid
    bool is_stopping;
};

static void
s_deadline (struct timespec *until, int ms)
{
    clock_gettime (CLOCK_REALTIME, until);
    until->tv_nsec += (long) (ms % 1000) * 1000000;
    until->tv_sec += ms / 1000 + until->tv_nsec / 1000000000;
    until->tv_nsec %= 1000000000;
}

static void *
s_run (void *arg)
{
    kf_kb_loader_t *self = arg;
    pthread_mutex_lock (&self->mutex);
    while (!self->is_stopping) {
        char *offered = self->offered;
        size_t offered_size = self->offered_size;
        self->offered = NULL;
        self->is_building = offered != NULL;
        pthread_mutex_unlock (&self->mutex);
        int64_t version;
        kf_bot_models_t *models;
        kf_kb_index_t *index = offered
            ? kf_kb_source_load (self->source, offered, offered_size, &version, &models)
            : kf_kb_source_poll (self->source, &version, &models);
        free (offered);
        kf_kb_suggest_t *suggest = index ? kf_kb_suggest_new (index) : NULL;
        pthread_mutex_lock (&self->mutex);
        if (offered && !index)
            self->rejected++;
        self->is_building = false;
        if (index) {
            kf_kb_suggest_destroy (&self->ready_suggest);   //  Superseded before it was taken
            kf_kb_index_destroy (&self->ready);
            kf_bot_models_destroy (&self->ready_models);
            self->ready = index;
            self->ready_suggest = suggest;
            self->ready_models = models;
            self->ready_version = version;
            pthread_cond_broadcast (&self->changed);
        }
        struct timespec until;
        s_deadline (&until, self->poll_ms);
        if (!self->is_stopping && !self->offered)
            pthread_cond_timedwait (&self->changed, &self->mutex, &until);
    }
    pthread_mutex_unlock (&self->mutex);
    return NULL;
}

kf_kb_loader_t *
kf_kb_loader_new (const char *path, int poll_ms)
{
    kf_kb_loader_t *self = kf_calloc (1, sizeof *self);
    self->source = kf_kb_source_new (path);
    self->poll_ms = poll_ms;
    pthread_mutex_init (&self->mutex, NULL);
    pthread_cond_init (&self->changed, NULL);
    if (pthread_create (&self->thread, NULL, s_run, self) != 0) {
        kf_error ("cannot start the knowledge-base loader thread");
        abort ();
    }
    return self;
}

void
kf_kb_loader_destroy (kf_kb_loader_t **self_p)
{
    kf_kb_loader_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_lock (&self->mutex);
    self->is_stopping = true;
    pthread_cond_broadcast (&self->changed);
    pthread_mutex_unlock (&self->mutex);
    pthread_join (self->thread, NULL);
    kf_kb_suggest_destroy (&self->ready_suggest);
    kf_kb_index_destroy (&self->ready);
    kf_bot_models_destroy (&self->ready_models);
    kf_kb_source_destroy (&self->source);
    free (self->offered);
    pthread_mutex_destroy (&self->mutex);
    pthread_cond_destroy (&self->changed);
    free (self);
    *self_p = NULL;
}

kf_kb_index_t *
kf_kb_loader_take (kf_kb_loader_t *self, int wait_ms, int64_t *version, kf_kb_suggest_t **suggest,
                   kf_bot_models_t **models)
{
    pthread_mutex_lock (&self->mutex);
    if (!self->ready && wait_ms > 0) {
        struct timespec until;
        s_deadline (&until, wait_ms);
        while (!self->ready && !self->is_stopping
           &&  pthread_cond_timedwait (&self->changed, &self->mutex, &until) == 0)
            ;
    }
    kf_kb_index_t *index = self->ready;
    *suggest = self->ready_suggest;
    *models = self->ready_models;
    self->ready = NULL;
    self->ready_suggest = NULL;
    self->ready_models = NULL;
    *version = self->ready_version;
    pthread_mutex_unlock (&self->mutex);
    return index;
}

void
kf_kb_loader_offer (kf_kb_loader_t *self, char **data_p, size_t size)
{
    pthread_mutex_lock (&self->mutex);
    free (self->offered);
    self->offered = *data_p;
    self->offered_size = size;
    *data_p = NULL;
    pthread_cond_broadcast (&self->changed);
    pthread_mutex_unlock (&self->mutex);
}

bool
kf_kb_loader_is_building (kf_kb_loader_t *self)
{
    pthread_mutex_lock (&self->mutex);
    bool is_building = self->is_building || self->offered != NULL;
    pthread_mutex_unlock (&self->mutex);
    return is_building;
}

uint64_t
kf_kb_loader_rejected (kf_kb_loader_t *self)
{
    pthread_mutex_lock (&self->mutex);
    uint64_t rejected = self->rejected;
    pthread_mutex_unlock (&self->mutex);
    return rejected;
}
