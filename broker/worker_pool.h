/*  worker_pool.h - the broker's registry of connected workers: routing ids, capacity, load,
    heartbeat deadlines. Busy workers are tracked exactly like idle ones: every worker must be heard
    from within liveness x heartbeat, or it is declared lost. */
#ifndef KF_WORKER_POOL_H
#define KF_WORKER_POOL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char identity [256];        //  ROUTER routing id (binary)
    size_t identity_len;
    char name [64];             //  From READY
    int64_t pid;
    int capacity;               //  Jobs it accepts at once
    int active;                 //  Jobs it holds now
    int64_t expiry_us;          //  Lost if not heard from by then
    uint64_t jobs_done;
    bool is_kb_remote;          //  Asked for the knowledge base (KB_GET): told of new versions
    bool is_kb_waiting;         //  Its KB_GET waits for a snapshot being built
    int64_t kb_version;         //  The version it said it has in its last KB_GET
} kf_worker_t;

typedef struct _kf_worker_pool_t kf_worker_pool_t;

//  Creates an empty pool. A worker is lost after `liveness` x `heartbeat_ms` of silence.
kf_worker_pool_t *kf_worker_pool_new (int heartbeat_ms, int liveness);

//  Destroys the pool and its workers; nulls *self_p.
void kf_worker_pool_destroy (kf_worker_pool_t **self_p);

//  Finds a worker by routing id, NULL when unknown.
kf_worker_t *kf_worker_pool_lookup (kf_worker_pool_t *self, const char *identity, size_t len);

//  Registers a worker (after READY). Returns it; the pool owns it.
kf_worker_t *kf_worker_pool_add (kf_worker_pool_t *self, const char *identity, size_t len,
                                 const char *name, int64_t pid, int capacity);

//  Forgets a worker and frees it. The caller has dealt with its jobs.
void kf_worker_pool_remove (kf_worker_pool_t *self, kf_worker_t *worker);

//  Records that the worker was heard from at `now_us`.
void kf_worker_pool_touch (kf_worker_pool_t *self, kf_worker_t *worker, int64_t now_us);

//  The worker with the most free slots, or NULL when every worker is full (or there are none).
kf_worker_t *kf_worker_pool_pick (kf_worker_pool_t *self);

//  A worker whose deadline passed at `now_us`, or NULL. Call repeatedly, removing each.
kf_worker_t *kf_worker_pool_expired (kf_worker_pool_t *self, int64_t now_us);

//  Iterates the workers: start with *cursor = 0, NULL at the end.
kf_worker_t *kf_worker_pool_next (kf_worker_pool_t *self, size_t *cursor);

//  Number of workers.
size_t kf_worker_pool_size (kf_worker_pool_t *self);
#endif
