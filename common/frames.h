/*  frames.h - receive and send multipart ZeroMQ messages as arrays of frames (plain libzmq). */
#ifndef KF_FRAMES_H
#define KF_FRAMES_H
#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

#define KF_FRAMES_MAX 8

//  One received multipart message. Frames past KF_FRAMES_MAX are read and dropped but counted.
typedef struct {
    zmq_msg_t part [KF_FRAMES_MAX]; //  Received frames, `count` of them are initialised
    int count;                      //  Frames kept
    int total;                      //  Frames the message had
} kf_frames_t;

//  Receives one whole multipart message. `flags` is 0 or ZMQ_DONTWAIT. Returns 0 on success, -1
//  with errno set (EAGAIN when nothing waits). On failure nothing needs closing.
int kf_frames_recv (kf_frames_t *self, void *socket, int flags);

//  Closes the frames of a received message.
void kf_frames_close (kf_frames_t *self);

//  Data and size of frame `index` (must be < count).
static inline const char *kf_frames_data (kf_frames_t *self, int index)
{ return (const char *) zmq_msg_data (&self->part [index]); }
static inline size_t kf_frames_size (kf_frames_t *self, int index)
{ return zmq_msg_size (&self->part [index]); }

//  True when frame `index` exists and equals the NUL-terminated string `s`.
bool kf_frames_is (kf_frames_t *self, int index, const char *s);

//  Sends `count` frames given as pointers and sizes, copying the data. `flags` may include
//  ZMQ_DONTWAIT. Returns 0, or -1 with errno set if the first frame could not be queued (later
//  frames of a multipart message are always accepted once the first is).
int kf_frames_send (void *socket, int count, const void *const *data, const size_t *size, int flags);
#endif
