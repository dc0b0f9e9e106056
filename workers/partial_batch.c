/*  partial_batch.c - a worker loop turn's PARTIAL events, grouped by job in order of arrival and
    sent as one message. */
#include "workers/partial_batch.h"
#include "common/log.h"
#include "common/mpack.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A run of consecutive events of one job
typedef struct {
    char job_id [32];
    size_t start, end;          //  Its events' bytes in `events`
    uint32_t count;
} s_group_t;

struct _kf_partial_batch_t {
    kf_partial_send_fn *send;
    void *arg;
    msgpack_sbuffer events;     //  The events' packed maps, back to back (kept between turns)
    s_group_t *groups;          //  In order of arrival
    size_t group_count, group_size;
    size_t event_count;
    msgpack_sbuffer message;    //  The message body being built (kept between turns)
};

kf_partial_batch_t *
kf_partial_batch_new (kf_partial_send_fn *send, void *arg)
{
    kf_partial_batch_t *self = kf_calloc (1, sizeof *self);
    self->send = send;
    self->arg = arg;
    msgpack_sbuffer_init (&self->events);
    msgpack_sbuffer_init (&self->message);
    return self;
}

void
kf_partial_batch_destroy (kf_partial_batch_t **self_p)
{
    kf_partial_batch_t *self = *self_p;
    if (!self)
        return;
    msgpack_sbuffer_destroy (&self->events);
    msgpack_sbuffer_destroy (&self->message);
    free (self->groups);
    free (self);
    *self_p = NULL;
}

void
kf_partial_batch_clear (kf_partial_batch_t *self)
{
    msgpack_sbuffer_clear (&self->events);
    self->group_count = 0;
    self->event_count = 0;
    //  One huge event (a long answer's fallback) does not keep its memory for every later turn
    if (self->events.alloc > 4 * KF_PARTIAL_BATCH_BYTES) {
        msgpack_sbuffer_destroy (&self->events);
        msgpack_sbuffer_init (&self->events);
    }
}

size_t
kf_partial_batch_count (kf_partial_batch_t *self)
{
    return self->event_count;
}

//  Packs the batch into self->message: the events of a single job as an array, several jobs' as
//  [[job_id, [event, ...]], ...]
static void
s_pack_message (kf_partial_batch_t *self)
{
    msgpack_sbuffer_clear (&self->message);
    if (self->message.alloc > 4 * KF_PARTIAL_BATCH_BYTES) {
        msgpack_sbuffer_destroy (&self->message);
        msgpack_sbuffer_init (&self->message);
    }
    msgpack_packer pk;
    msgpack_packer_init (&pk, &self->message, msgpack_sbuffer_write);
    bool is_several = self->group_count > 1;
    if (is_several)
        msgpack_pack_array (&pk, self->group_count);
    for (size_t i = 0; i < self->group_count; i++) {
        s_group_t *group = &self->groups [i];
        if (is_several) {
            msgpack_pack_array (&pk, 2);
            kf_mp_pack_cstr (&pk, group->job_id);
        }
        msgpack_pack_array (&pk, group->count);
        msgpack_sbuffer_write (&self->message, self->events.data + group->start,
                               group->end - group->start);
    }
}

void
kf_partial_batch_flush (kf_partial_batch_t *self)
{
    if (self->event_count == 0)
        return;
    if (self->event_count == 1)
        self->send (self->arg, "PARTIAL", self->groups [0].job_id, self->events.data,
                    self->events.size);
    else {
        s_pack_message (self);
        bool is_several = self->group_count > 1;
        self->send (self->arg, is_several ? "PARTIALS" : "PARTIAL",
                    is_several ? NULL : self->groups [0].job_id, self->message.data,
                    self->message.size);
    }
    kf_partial_batch_clear (self);
}

bool
kf_partial_batch_add (kf_partial_batch_t *self, const char *job_id, const char *event, size_t len)
{
    size_t id_len = strlen (job_id);
    if (id_len >= sizeof self->groups->job_id)
        return false;
    s_group_t *last = self->group_count ? &self->groups [self->group_count - 1] : NULL;
    if (!last || strcmp (last->job_id, job_id) != 0) {
        if (self->group_count == self->group_size) {
            self->group_size = self->group_size ? 2 * self->group_size : 64;
            self->groups = kf_realloc (self->groups, self->group_size * sizeof (s_group_t));
        }
        last = &self->groups [self->group_count++];
        memcpy (last->job_id, job_id, id_len + 1);
        last->start = self->events.size;
        last->count = 0;
    }
    msgpack_sbuffer_write (&self->events, event, len);
    last->end = self->events.size;
    last->count++;
    self->event_count++;
    if (self->event_count >= KF_PARTIAL_BATCH_EVENTS || self->events.size >= KF_PARTIAL_BATCH_BYTES)
        kf_partial_batch_flush (self);
    return true;
}
