/*  kb_publisher.h - builds the knowledge-base snapshot the broker ships to remote workers
    (PROTOCOL.md 9.10), off the event loop. A thread with its own read-only connection (WAL lets it
    read while the loop writes) reads one version in one transaction (common/kb_snapshot.h),
    encodes it and publishes it; the loop only asks and takes. 100,000 items take seconds to read
    and encode: done in the loop, every client and worker would wait that long.

    Memory is bounded: the publisher keeps the latest snapshot only. A snapshot is reference
    counted, so chunks still queued in ZeroMQ for a slow worker (sent zero-copy) keep the bytes
    alive after a newer one replaced it; the last reference frees it, from any thread. */
#ifndef KF_KB_PUBLISHER_H
#define KF_KB_PUBLISHER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  One encoded snapshot. Read-only; shared between threads through the reference count.
typedef struct {
    int64_t version;
    char *data;                 //  The msgpack snapshot, `size` bytes
    size_t size;
    size_t item_count;          //  Items in it (for logs and stats)
    double build_ms;            //  Read and encode time on the thread
    int refs;                   //  Atomic; the last kf_kb_blob_release frees
} kf_kb_blob_t;

//  Takes one more reference to `blob` and returns it.
kf_kb_blob_t *kf_kb_blob_hold (kf_kb_blob_t *blob);

//  Drops the reference *blob_p (NULL is fine) and nulls it; frees the blob with the last one.
//  Thread-safe: ZeroMQ's I/O thread calls it when a zero-copy chunk has gone.
void kf_kb_blob_release (kf_kb_blob_t **blob_p);

typedef struct _kf_kb_publisher_t kf_kb_publisher_t;

//  Starts the thread on the database at `path` (opened read-only when first needed). NULL (logged)
//  when the thread cannot start: remote workers then get no knowledge base.
kf_kb_publisher_t *kf_kb_publisher_new (const char *path);

//  Stops the thread (after a build in progress) and drops the latest snapshot; nulls *self_p.
void kf_kb_publisher_destroy (kf_kb_publisher_t **self_p);

//  Asks the thread to make the latest snapshot that of the database's committed version now. Does
//  nothing when it is that already; a request while building is served after the build. Returns at
//  once.
void kf_kb_publisher_request (kf_kb_publisher_t *self);

//  True while a request is waiting or being built.
bool kf_kb_publisher_is_busy (kf_kb_publisher_t *self);

//  A new reference to the latest snapshot (caller releases it), or NULL before the first.
kf_kb_blob_t *kf_kb_publisher_latest (kf_kb_publisher_t *self);
#endif
