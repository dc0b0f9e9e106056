/*  kb_transfer.c - the broker's side of shipping the knowledge base to remote workers over KFW1
    (PROTOCOL.md 9.10): answers KB_GET with the latest snapshot in KB_DATA chunks (or KB_VERSION
    when the worker has it already), asks the snapshot thread (kb_publisher.h) for a new snapshot
    after an edit is committed, and tells every worker that asked before (KB_VERSION) when it is
    ready. Chunks are sent zero-copy from the one shared snapshot: ten workers fetching 60 MB cost
    60 MB, not 600. */
#include "broker/broker.h"
#include "broker/kb_publisher.h"
#include "common/clock.h"
#include "common/frames.h"
#include "common/log.h"
#include "common/mpack.h"
#include <errno.h>
#include <string.h>

#define S_CHUNK_SIZE (1 << 20)          //  Bytes per KB_DATA chunk: a worker's loop copies one
                                        //  between heartbeats in well under a millisecond
#define S_REQUEST_AGAIN_US 1000000LL    //  A version that did not come is asked for again
#define S_BUILD_POLL_MS 20              //  How often the loop looks at a build in progress

void
kf_kb_transfer_init (kf_broker_t *self)
{
    self->kb_publisher = kf_kb_publisher_new (self->config->db_path);
}

void
kf_kb_transfer_destroy (kf_broker_t *self)
{
    kf_kb_publisher_destroy (&self->kb_publisher);
    kf_kb_blob_release (&self->kb_snapshot);
}

//  Sends [identity, KFW1, command, body]
static void
s_send (kf_broker_t *self, kf_worker_t *worker, const char *command, const msgpack_sbuffer *body)
{
    const void *data [4] = { worker->identity, "KFW1", command, body->data };
    size_t size [4] = { worker->identity_len, 4, strlen (command), body->size };
    if (kf_frames_send (self->workers, 4, data, size, ZMQ_DONTWAIT) == -1)
        kf_debug ("%s to worker %s not sent: %s", command, worker->name, zmq_strerror (errno));
}

static void
s_send_version (kf_broker_t *self, kf_worker_t *worker, int64_t version)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    kf_mp_pack_kv_int (&pk, "version", version);
    s_send (self, worker, "KB_VERSION", &body);
    msgpack_sbuffer_destroy (&body);
}

//  ZeroMQ is done with a chunk: drop its reference to the snapshot
static void
s_chunk_sent (void *data, void *hint)
{
    (void) data;
    kf_kb_blob_t *blob = hint;
    kf_kb_blob_release (&blob);
}

//  Sends one chunk: [identity, KFW1, KB_DATA, {version, offset, size}, bytes (zero-copy)].
//  Returns false when it could not be queued.
static bool
s_send_chunk (kf_broker_t *self, kf_worker_t *worker, kf_kb_blob_t *blob, size_t offset)
{
    msgpack_sbuffer header;
    msgpack_sbuffer_init (&header);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &header, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    kf_mp_pack_kv_int (&pk, "version", blob->version);
    kf_mp_pack_kv_int (&pk, "offset", (int64_t) offset);
    kf_mp_pack_kv_int (&pk, "size", (int64_t) blob->size);
    size_t len = blob->size - offset < S_CHUNK_SIZE ? blob->size - offset : S_CHUNK_SIZE;
    bool is_sent = false;
    zmq_msg_t chunk;
    //  Once the first frame is queued, ZeroMQ takes the rest of the message
    if (zmq_send (self->workers, worker->identity, worker->identity_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) != -1) {
        zmq_send (self->workers, "KFW1", 4, ZMQ_SNDMORE);
        zmq_send (self->workers, "KB_DATA", 7, ZMQ_SNDMORE);
        zmq_send (self->workers, header.data, header.size, ZMQ_SNDMORE);
        zmq_msg_init_data (&chunk, blob->data + offset, len, s_chunk_sent, kf_kb_blob_hold (blob));
        is_sent = zmq_msg_send (&chunk, self->workers, 0) != -1;
        if (!is_sent)
            zmq_msg_close (&chunk);
    }
    msgpack_sbuffer_destroy (&header);
    return is_sent;
}

//  Answers a worker's KB_GET with the snapshot the loop holds
static void
s_serve (kf_broker_t *self, kf_worker_t *worker)
{
    kf_kb_blob_t *blob = self->kb_snapshot;
    worker->is_kb_waiting = false;
    if (worker->kb_version == blob->version) {
        s_send_version (self, worker, blob->version);
        return;
    }
    for (size_t offset = 0; offset < blob->size; offset += S_CHUNK_SIZE)
        if (!s_send_chunk (self, worker, blob, offset)) {
            //  The worker hears nothing more of this transfer and asks again (kb_remote.c)
            kf_warn ("knowledge base to worker %s cut short: %s", worker->name, zmq_strerror (errno));
            return;
        }
    worker->kb_version = blob->version;
    kf_info ("knowledge base version %lld sent to worker %s (%zu bytes)", (long long) blob->version,
             worker->name, blob->size);
}

void
kf_kb_transfer_on_get (kf_broker_t *self, kf_worker_t *worker, const char *body, size_t len)
{
    msgpack_unpacked unpacked;
    int64_t have = 0;
    if (body && kf_mp_unpack_one (body, len, &unpacked)) {
        have = kf_mp_get_int (&unpacked.data, "version", 0);
        msgpack_unpacked_destroy (&unpacked);
    }
    worker->is_kb_remote = true;
    worker->kb_version = have;
    worker->is_kb_waiting = true;
    if (!self->kb_publisher)
        kf_warn ("worker %s asked for the knowledge base, which this broker cannot send", worker->name);
    else
    if (self->kb_snapshot && self->kb_snapshot->version == kf_store_kb_version (self->store))
        s_serve (self, worker);
    //  Else kf_kb_transfer_tick has the snapshot built and serves it
}

//  A new snapshot: waiting workers get it, the others hear of it
static void
s_on_snapshot (kf_broker_t *self)
{
    size_t cursor = 0;
    kf_worker_t *worker;
    while ((worker = kf_worker_pool_next (self->pool, &cursor)))
        if (worker->is_kb_waiting)
            s_serve (self, worker);
        else
        if (worker->is_kb_remote && worker->kb_version != self->kb_snapshot->version)
            s_send_version (self, worker, self->kb_snapshot->version);
}

//  Whether any worker takes its knowledge base from the broker, and whether one waits for it
static bool
s_has_remote (kf_broker_t *self, bool *has_waiting)
{
    size_t cursor = 0;
    kf_worker_t *worker;
    bool has_remote = false;
    *has_waiting = false;
    while ((worker = kf_worker_pool_next (self->pool, &cursor))) {
        has_remote |= worker->is_kb_remote;
        *has_waiting |= worker->is_kb_waiting;
    }
    return has_remote;
}

void
kf_kb_transfer_tick (kf_broker_t *self, int64_t now_us)
{
    if (!self->kb_publisher)
        return;
    kf_kb_blob_t *latest = kf_kb_publisher_latest (self->kb_publisher);
    if (latest && latest != self->kb_snapshot) {
        kf_kb_blob_release (&self->kb_snapshot);
        self->kb_snapshot = latest;
        s_on_snapshot (self);
    }
    else
        kf_kb_blob_release (&latest);
    bool has_waiting;
    bool has_remote = s_has_remote (self, &has_waiting);
    bool is_busy = kf_kb_publisher_is_busy (self->kb_publisher);
    if (self->kb_is_building && !is_busy) {
        //  The build is over, with a new snapshot or none newer (or the database could not be
        //  read): waiting workers take what there is
        self->kb_is_building = false;
        size_t cursor = 0;
        kf_worker_t *worker;
        while (self->kb_snapshot && (worker = kf_worker_pool_next (self->pool, &cursor)))
            if (worker->is_kb_waiting)
                s_serve (self, worker);
    }
    if (!has_remote || is_busy || self->dirty_since_us)
        return;                         //  The thread reads committed rows: wait for the commit
    int64_t version = kf_store_kb_version (self->store);
    if (self->kb_snapshot && self->kb_snapshot->version == version && !has_waiting)
        return;
    if (version != self->kb_requested_version || now_us - self->kb_requested_us >= S_REQUEST_AGAIN_US) {
        kf_kb_publisher_request (self->kb_publisher);
        self->kb_requested_version = version;
        self->kb_requested_us = now_us;
        self->kb_is_building = true;
    }
}

long
kf_kb_transfer_timeout (kf_broker_t *self)
{
    return self->kb_is_building ? S_BUILD_POLL_MS : -1;
}
