/*  upstream_limits.h - the broker's limits on LLM upstreams, across all workers: a concurrency cap
    per upstream (slots; a stream holds its slot until its last byte), a bounded FIFO queue of
    jobs waiting for a slot, and a circuit breaker per upstream (closed -> open after
    breaker_failures consecutive failed turns -> half-open after breaker_cooldown_ms, when
    exactly one probe is let through: its success closes the breaker, its failure opens it again).
    Pure bookkeeping keyed by job id: no sockets, no jobs; the caller sends the grants. */
#ifndef KF_UPSTREAM_LIMITS_H
#define KF_UPSTREAM_LIMITS_H
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include "common/config.h"

typedef struct _kf_upstream_limits_t kf_upstream_limits_t;

//  What an acquire gets.
typedef enum {
    KF_GRANT_OK,                //  A slot: start the request
    KF_GRANT_QUEUED,            //  Waiting in the upstream's queue: the grant comes later
    KF_GRANT_BUSY,              //  The queue is full: the chat fails 429 busy
    KF_GRANT_OPEN               //  The breaker is open: answer with the fallback reply at once
} kf_grant_t;

//  How a job that held a slot ended, for the breaker.
typedef enum {
    KF_OUTCOME_NONE,            //  Cancelled, stopped, worker lost, no answer: not counted
    KF_OUTCOME_SUCCESS,         //  A FINAL without upstream_error
    KF_OUTCOME_FAILURE          //  A FINAL with upstream_error (the worker's timeouts included)
} kf_outcome_t;

//  Called for a queued job when its turn comes, with KF_GRANT_OK (it holds a slot now) or
//  KF_GRANT_OPEN (the breaker opened meanwhile; it holds nothing). Returns false when the job is
//  gone: an OK slot is then given to the next one. Must not call back into the limits.
typedef bool (kf_grant_fn) (void *arg, const char *job_id, kf_grant_t grant);

//  Creates the limits for every upstream of `config` (borrowed, outlives them; NULL: none).
kf_upstream_limits_t *kf_upstream_limits_new (const kf_config_t *config, kf_grant_fn *grant,
                                              void *arg);

//  Destroys the limits; nulls *self_p.
void kf_upstream_limits_destroy (kf_upstream_limits_t **self_p);

//  Job `job_id` asks for a slot of upstream `name` at `now_us`. An upstream the broker's config
//  does not name (it differs from the worker's) gets the default limits (64 streams, queue 256,
//  breaker 5 / 30 s) and a warning in the log; past 16 such names, they go without limits (and
//  a warning once). A job asks once: a second
//  acquire of a job that holds or waits for a slot returns what it has (OK or QUEUED).
kf_grant_t kf_upstream_limits_acquire (kf_upstream_limits_t *self, const char *job_id,
                                       const char *name, int64_t now_us);

//  Job `job_id` ended: its slot (or its place in the queue) is freed, `outcome` feeds the breaker
//  when it held a slot, and queued jobs are granted (through the grant function). Idempotent: a
//  job that holds nothing is ignored.
void kf_upstream_limits_release (kf_upstream_limits_t *self, const char *job_id,
                                 kf_outcome_t outcome, int64_t now_us);

//  True when job `job_id` holds a slot (its request may be running).
bool kf_upstream_limits_holds (kf_upstream_limits_t *self, const char *job_id);

//  How long a client turned away busy from upstream `name` should wait: the average time a
//  stream held its slot lately, 100..30000 ms (1000 before any).
int kf_upstream_limits_retry_after_ms (kf_upstream_limits_t *self, const char *name);

//  Packs the stats array: per upstream {name, open, queued, max_concurrency, queue, breaker
//  (closed | open | half_open), consecutive_failures, requests, failures, rejected_busy,
//  fallbacks}.
void kf_upstream_limits_pack (kf_upstream_limits_t *self, msgpack_packer *pk, int64_t now_us);
#endif
