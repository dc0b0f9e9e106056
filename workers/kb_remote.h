/*  kb_remote.h - the worker's side of receiving the knowledge base over its KFW1 connection
    (kefu-worker --kb broker; PROTOCOL.md 9.10): asks with KB_GET, reassembles the KB_DATA chunks,
    hands the complete snapshot to the loader thread (which decodes and builds it off the loop), asks
    again when KB_VERSION announces a version it does not have, and retries a transfer that broke
    or a snapshot that was rejected, with a growing delay. Lives on the worker's loop thread: only
    copies bytes, so the loop keeps heartbeating whatever the size of the knowledge base. */
#ifndef KF_KB_REMOTE_H
#define KF_KB_REMOTE_H
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include "common/frames.h"
#include "workers/kb_loader.h"

typedef struct _kf_kb_remote_t kf_kb_remote_t;

//  Sends [KFW1, command, body?] to the broker (the worker loop's sender; job_id is always NULL).
typedef void (kf_kb_remote_send_fn) (void *arg, const char *command, const char *job_id,
                                     const msgpack_sbuffer *body);

//  Creates the receiver; `loader` (borrowed) builds what it receives, `send` talks to the broker.
kf_kb_remote_t *kf_kb_remote_new (kf_kb_loader_t *loader, kf_kb_remote_send_fn *send, void *arg);

//  Frees a transfer in progress and nulls *self_p.
void kf_kb_remote_destroy (kf_kb_remote_t **self_p);

//  After READY on a new connection: drops a transfer in progress and asks for the knowledge base,
//  telling the broker the version the worker has (`have`, 0 for none).
void kf_kb_remote_on_connect (kf_kb_remote_t *self, int64_t have, int64_t now_us);

//  Handles a KB_DATA or KB_VERSION message from the broker and returns true; false for any other
//  command. A malformed or out-of-order chunk drops the transfer (logged) and schedules a retry.
bool kf_kb_remote_on_message (kf_kb_remote_t *self, kf_frames_t *frames, int64_t have,
                              int64_t now_us);

//  Runs the timers: notices a finished or rejected build, repeats an unanswered request, asks for
//  an announced version. `have` is the version the worker serves now.
void kf_kb_remote_on_timer (kf_kb_remote_t *self, int64_t have, int64_t now_us);

//  When kf_kb_remote_on_timer next has something to do (monotonic us; INT64_MAX: nothing).
int64_t kf_kb_remote_due_us (kf_kb_remote_t *self);
#endif
