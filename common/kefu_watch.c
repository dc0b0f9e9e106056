/*  kefu_watch.c - a SUB socket of its own on notification topics, with exact topic matching. */
#include "common/kefu_watch.h"
#include "common/frames.h"
#include "common/log.h"
#include "common/mpack.h"
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <zmq.h>

struct _kf_watch_t {
    void *ctx, *sub;
    char *topics [KF_WATCH_TOPICS_MAX];
    int count;
};

kf_watch_t *
kf_watch_new (const char *streams, const char *const *topics, int count)
{
    return kf_watch_new_curve (streams, topics, count, NULL);
}

kf_watch_t *
kf_watch_new_curve (const char *streams, const char *const *topics, int count,
                    const kf_curve_t *curve)
{
    if (!streams || count < 1 || count > KF_WATCH_TOPICS_MAX)
        return NULL;
    for (int i = 0; i < count; i++)
        if (!topics [i] || !*topics [i] || strlen (topics [i]) > 128)
            return NULL;
    kf_watch_t *self = kf_calloc (1, sizeof *self);
    self->ctx = zmq_ctx_new ();
    self->sub = zmq_socket (self->ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt (self->sub, ZMQ_LINGER, &linger, sizeof linger);
    for (int i = 0; i < count; i++) {
        self->topics [i] = kf_strdup (topics [i]);
        zmq_setsockopt (self->sub, ZMQ_SUBSCRIBE, topics [i], strlen (topics [i]));
    }
    self->count = count;
    if ((curve && kf_curve_client_setup (self->sub, curve)) || zmq_connect (self->sub, streams)) {
        kf_watch_destroy (&self);
        return NULL;
    }
    return self;
}

void
kf_watch_destroy (kf_watch_t **self_p)
{
    kf_watch_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->count; i++)
        free (self->topics [i]);
    zmq_close (self->sub);
    zmq_ctx_term (self->ctx);
    free (self);
    *self_p = NULL;
}

void *
kf_watch_socket (kf_watch_t *self)
{
    return self->sub;
}

//  Exact match, or a prefix match for a watched topic ending in '.'
static bool
s_is_watched (kf_watch_t *self, const char *topic, size_t len)
{
    for (int i = 0; i < self->count; i++) {
        size_t want = strlen (self->topics [i]);
        bool is_prefix = self->topics [i][want - 1] == '.';
        if ((len == want || (is_prefix && len > want)) && memcmp (topic, self->topics [i], want) == 0)
            return true;
    }
    return false;
}

int
kf_watch_next (kf_watch_t *self, int timeout_ms, char *topic, size_t topic_size,
               msgpack_unpacked *event)
{
    while (true) {
        zmq_pollitem_t item = { self->sub, 0, ZMQ_POLLIN, 0 };
        int rc = zmq_poll (&item, 1, timeout_ms);
        if (rc <= 0)
            return rc;
        kf_frames_t frames;
        if (kf_frames_recv (&frames, self->sub, 0) == -1)
            return -1;
        const char *name = kf_frames_data (&frames, 0);
        size_t name_len = kf_frames_size (&frames, 0);
        bool is_event = frames.total == 2 && s_is_watched (self, name, name_len)
                     && kf_mp_unpack_one (kf_frames_data (&frames, 1), kf_frames_size (&frames, 1),
                                          event);
        if (is_event && topic_size > 0) {
            size_t copy = name_len < topic_size - 1 ? name_len : topic_size - 1;
            memcpy (topic, name, copy);
            topic [copy] = 0;
        }
        kf_frames_close (&frames);
        if (is_event)
            return 1;
        //  Another topic matched by prefix, or a malformed message: not ours, wait on (the
        //  timeout restarts; notifications are rare)
    }
}
