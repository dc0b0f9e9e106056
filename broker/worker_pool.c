/*  worker_pool.c - registry of workers, least-loaded pick, heartbeat expiry. Pools hold tens of
    workers, so a linear scan beats any index. */
#include "broker/worker_pool.h"
#include "common/log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _kf_worker_pool_t {
    kf_worker_t **workers;      //  Owned
    size_t count, capacity;
    int64_t lifetime_us;        //  Heartbeat x liveness
};

kf_worker_pool_t *
kf_worker_pool_new (int heartbeat_ms, int liveness)
{
    kf_worker_pool_t *self = kf_calloc (1, sizeof *self);
    self->lifetime_us = (int64_t) heartbeat_ms * 1000 * liveness;
    return self;
}

void
kf_worker_pool_destroy (kf_worker_pool_t **self_p)
{
    kf_worker_pool_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        free (self->workers [i]);
    free (self->workers);
    free (self);
    *self_p = NULL;
}

kf_worker_t *
kf_worker_pool_lookup (kf_worker_pool_t *self, const char *identity, size_t len)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->workers [i]->identity_len == len
        &&  memcmp (self->workers [i]->identity, identity, len) == 0)
            return self->workers [i];
    return NULL;
}

kf_worker_t *
kf_worker_pool_add (kf_worker_pool_t *self, const char *identity, size_t len, const char *name,
                    int64_t pid, int capacity)
{
    if (self->count == self->capacity) {
        self->capacity = self->capacity ? self->capacity * 2 : 8;
        self->workers = kf_realloc (self->workers, self->capacity * sizeof (kf_worker_t *));
    }
    kf_worker_t *worker = kf_calloc (1, sizeof *worker);
    if (len > sizeof worker->identity)
        len = sizeof worker->identity;
    memcpy (worker->identity, identity, len);
    worker->identity_len = len;
    snprintf (worker->name, sizeof worker->name, "%s", name);
    worker->pid = pid;
    worker->capacity = capacity > 0 ? capacity : 1;
    self->workers [self->count++] = worker;
    return worker;
}

void
kf_worker_pool_remove (kf_worker_pool_t *self, kf_worker_t *worker)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->workers [i] == worker) {
            self->workers [i] = self->workers [--self->count];
            free (worker);
            return;
        }
}

void
kf_worker_pool_touch (kf_worker_pool_t *self, kf_worker_t *worker, int64_t now_us)
{
    worker->expiry_us = now_us + self->lifetime_us;
}

kf_worker_t *
kf_worker_pool_pick (kf_worker_pool_t *self)
{
    kf_worker_t *best = NULL;
    int best_free = 0;
    for (size_t i = 0; i < self->count; i++) {
        int free_slots = self->workers [i]->capacity - self->workers [i]->active;
        if (free_slots > best_free) {
            best = self->workers [i];
            best_free = free_slots;
        }
    }
    return best;
}

kf_worker_t *
kf_worker_pool_expired (kf_worker_pool_t *self, int64_t now_us)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->workers [i]->expiry_us <= now_us)
            return self->workers [i];
    return NULL;
}

kf_worker_t *
kf_worker_pool_next (kf_worker_pool_t *self, size_t *cursor)
{
    return *cursor < self->count ? self->workers [(*cursor)++] : NULL;
}

size_t
kf_worker_pool_size (kf_worker_pool_t *self)
{
    return self->count;
}
