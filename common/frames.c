/*  frames.c - multipart receive and send over plain libzmq. */
#include "common/frames.h"
#include <errno.h>
#include <string.h>

int
kf_frames_recv (kf_frames_t *self, void *socket, int flags)
{
    self->count = 0;
    self->total = 0;
    int more = 1;
    while (more) {
        zmq_msg_t spare;
        zmq_msg_t *msg = self->count < KF_FRAMES_MAX ? &self->part [self->count] : &spare;
        zmq_msg_init (msg);
        //  After the first frame the rest of the message is already here: block is safe
        if (zmq_msg_recv (msg, socket, self->total == 0 ? flags : 0) == -1) {
            int saved = errno;
            zmq_msg_close (msg);
            kf_frames_close (self);
            errno = saved;
            return -1;
        }
        more = zmq_msg_more (msg);
        self->total++;
        if (msg == &spare)
            zmq_msg_close (&spare);
        else
            self->count++;
    }
    return 0;
}

void
kf_frames_close (kf_frames_t *self)
{
    for (int i = 0; i < self->count; i++)
        zmq_msg_close (&self->part [i]);
    self->count = 0;
}

bool
kf_frames_is (kf_frames_t *self, int index, const char *s)
{
    size_t len = strlen (s);
    return index < self->count && kf_frames_size (self, index) == len
        && memcmp (kf_frames_data (self, index), s, len) == 0;
}

int
kf_frames_send (void *socket, int count, const void *const *data, const size_t *size, int flags)
{
    for (int i = 0; i < count; i++) {
        int f = (i < count - 1 ? ZMQ_SNDMORE : 0) | (i == 0 ? flags : 0);
        if (zmq_send (socket, data [i], size [i], f) == -1 && i == 0)
            return -1;
    }
    return 0;
}
