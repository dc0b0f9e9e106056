/*  partial_batch.h - the worker's PARTIAL events of one loop turn, sent together (PROTOCOL.md 9.6):
    one event as a plain PARTIAL, several of one job as a PARTIAL array, several jobs' as PARTIALS.
    Nothing waits to fill a batch: the owner flushes it before any other message and before its
    loop waits, so only what one turn produced goes together (one ZeroMQ send and one broker
    wake-up for many tokens instead of one each). */
#ifndef KF_PARTIAL_BATCH_H
#define KF_PARTIAL_BATCH_H
#include <stdbool.h>
#include <stddef.h>

#define KF_PARTIAL_BATCH_EVENTS 512     //  Events in one message at most, and bytes: bounds a
#define KF_PARTIAL_BATCH_BYTES 65536    //  message; more go in the next one

typedef struct _kf_partial_batch_t kf_partial_batch_t;

//  Sends one message [KFW1, command, job_id?, body]: `command` is "PARTIAL" (with `job_id`) or
//  "PARTIALS" (`job_id` NULL). Everything is borrowed for the call.
typedef void (kf_partial_send_fn) (void *arg, const char *command, const char *job_id,
                                   const char *body, size_t body_len);

//  Creates an empty batch that sends through `send`.
kf_partial_batch_t *kf_partial_batch_new (kf_partial_send_fn *send, void *arg);

//  Destroys the batch without sending what it holds; nulls *self_p.
void kf_partial_batch_destroy (kf_partial_batch_t **self_p);

//  Adds one packed event map of `job_id` (copied). Sends the batch when it reaches
//  KF_PARTIAL_BATCH_EVENTS events or KF_PARTIAL_BATCH_BYTES bytes. Returns false, keeping nothing,
//  when the job id is too long for the batch (32 bytes or more): send that event alone.
bool kf_partial_batch_add (kf_partial_batch_t *self, const char *job_id, const char *event,
                           size_t len);

//  Sends what the batch holds, if anything, as one message, and empties it.
void kf_partial_batch_flush (kf_partial_batch_t *self);

//  Forgets what the batch holds (its jobs are gone with the connection).
void kf_partial_batch_clear (kf_partial_batch_t *self);

//  Events held.
size_t kf_partial_batch_count (kf_partial_batch_t *self);
#endif
