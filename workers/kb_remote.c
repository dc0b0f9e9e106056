/*  kb_remote.c - receives knowledge-base snapshots from the broker, chunk by chunk. */
#include "workers/kb_remote.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mpack.h"
#include <stdlib.h>
#include <string.h>

#define S_MAX_SNAPSHOT (1024LL << 20)   //  Largest snapshot accepted: 1 GiB (100,000 items are
                                        //  about 60 MB); a bigger size is a broken header
#define S_SILENCE_US 15000000LL         //  A request or transfer with no answer for this long is
                                        //  asked again (the broker may take seconds to build)
#define S_CHECK_US 20000LL              //  How often a handed-over build is looked at
#define S_RETRY_MIN_MS 250
#define S_RETRY_MAX_MS 30000

struct _kf_kb_remote_t {
    kf_kb_loader_t *loader;     //  Borrowed: builds what arrives
    kf_kb_remote_send_fn *send;
    void *arg;
    int64_t wanted;             //  Newest version the broker announced, 0 when none
    bool is_asking;             //  KB_GET sent, its answer not complete
    int64_t heard_us;           //  Last request or chunk of the current exchange
    char *buffer;               //  Snapshot being received (size bytes), NULL when none
    size_t size, received;
    int64_t receiving;          //  Its version
    int64_t started_us;         //  When its first chunk came
    bool is_handed;             //  A complete snapshot is with the loader
    int64_t handed;             //  Its version
    uint64_t rejected_before;   //  The loader's rejected count when it was handed over
    int64_t retry_us;           //  Ask again then after a failure, 0: no retry pending
    int retry_ms;               //  Next retry delay (doubles to S_RETRY_MAX_MS)
};

kf_kb_remote_t *
kf_kb_remote_new (kf_kb_loader_t *loader, kf_kb_remote_send_fn *send, void *arg)
{
    kf_kb_remote_t *self = kf_calloc (1, sizeof *self);
    self->loader = loader;
    self->send = send;
    self->arg = arg;
    self->retry_ms = S_RETRY_MIN_MS;
    return self;
}

static void
s_drop_transfer (kf_kb_remote_t *self)
{
    free (self->buffer);
    self->buffer = NULL;
    self->size = self->received = 0;
    self->receiving = 0;
}

void
kf_kb_remote_destroy (kf_kb_remote_t **self_p)
{
    kf_kb_remote_t *self = *self_p;
    if (!self)
        return;
    s_drop_transfer (self);
    free (self);
    *self_p = NULL;
}

//  Sends KB_GET {version}: the version the worker has, or is building
static void
s_ask (kf_kb_remote_t *self, int64_t have, int64_t now_us)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    kf_mp_pack_kv_int (&pk, "version", self->is_handed ? self->handed : have);
    self->send (self->arg, "KB_GET", NULL, &body);
    msgpack_sbuffer_destroy (&body);
    self->is_asking = true;
    self->heard_us = now_us;
    self->retry_us = 0;
}

//  Something went wrong with a transfer or a snapshot: ask again later, each time later
static void
s_retry_later (kf_kb_remote_t *self, int64_t now_us)
{
    s_drop_transfer (self);
    self->is_asking = false;
    self->retry_us = now_us + self->retry_ms * 1000LL;
    kf_warn ("knowledge base: asking the broker again in %d ms", self->retry_ms);
    self->retry_ms = self->retry_ms * 2 > S_RETRY_MAX_MS ? S_RETRY_MAX_MS : self->retry_ms * 2;
}

void
kf_kb_remote_on_connect (kf_kb_remote_t *self, int64_t have, int64_t now_us)
{
    s_drop_transfer (self);
    s_ask (self, have, now_us);
}

//  One KB_DATA chunk: [KFW1, KB_DATA, {version, offset, size}, bytes]
static void
s_on_data (kf_kb_remote_t *self, kf_frames_t *frames, int64_t now_us)
{
    msgpack_unpacked header;
    if (frames->count != 4
    ||  !kf_mp_unpack_one (kf_frames_data (frames, 2), kf_frames_size (frames, 2), &header)) {
        kf_warn ("knowledge base: malformed KB_DATA");
        s_retry_later (self, now_us);
        return;
    }
    int64_t version = kf_mp_get_int (&header.data, "version", 0);
    int64_t offset = kf_mp_get_int (&header.data, "offset", -1);
    int64_t size = kf_mp_get_int (&header.data, "size", -1);
    msgpack_unpacked_destroy (&header);
    size_t len = kf_frames_size (frames, 3);
    if (offset == 0 && version > 0 && size > 0 && size <= S_MAX_SNAPSHOT) {
        s_drop_transfer (self);                 //  A new snapshot starts
        self->buffer = kf_malloc ((size_t) size);
        self->size = (size_t) size;
        self->receiving = version;
        self->started_us = now_us;
    }
    if (!self->buffer || version != self->receiving || offset != (int64_t) self->received
    ||  len > self->size - self->received || (len == 0 && self->received < self->size)) {
        kf_warn ("knowledge base: KB_DATA out of order (version %lld, offset %lld, %zu bytes)",
                 (long long) version, (long long) offset, len);
        s_retry_later (self, now_us);
        return;
    }
    memcpy (self->buffer + self->received, kf_frames_data (frames, 3), len);
    self->received += len;
    self->heard_us = now_us;
    if (self->received < self->size)
        return;
    kf_info ("knowledge base version %lld received from the broker: %zu bytes in %.0f ms",
             (long long) version, self->size, (now_us - self->started_us) / 1000.0);
    self->rejected_before = kf_kb_loader_rejected (self->loader);
    kf_kb_loader_offer (self->loader, &self->buffer, self->size);
    self->is_handed = true;
    self->handed = version;
    self->is_asking = false;
    s_drop_transfer (self);
}

bool
kf_kb_remote_on_message (kf_kb_remote_t *self, kf_frames_t *frames, int64_t have, int64_t now_us)
{
    if (kf_frames_is (frames, 1, "KB_DATA")) {
        s_on_data (self, frames, now_us);
        return true;
    }
    if (!kf_frames_is (frames, 1, "KB_VERSION"))
        return false;
    msgpack_unpacked body;
    int64_t version = 0;
    if (frames->count == 3
    &&  kf_mp_unpack_one (kf_frames_data (frames, 2), kf_frames_size (frames, 2), &body)) {
        version = kf_mp_get_int (&body.data, "version", 0);
        msgpack_unpacked_destroy (&body);
    }
    if (version <= 0)
        return true;
    self->wanted = version;
    //  The answer to a request for the version we have: nothing to send
    if (self->is_asking && !self->buffer && version == (self->is_handed ? self->handed : have))
        self->is_asking = false;
    kf_kb_remote_on_timer (self, have, now_us);
    return true;
}

void
kf_kb_remote_on_timer (kf_kb_remote_t *self, int64_t have, int64_t now_us)
{
    if (self->is_handed) {
        if (have == self->handed) {             //  Built and swapped in
            self->is_handed = false;
            self->retry_ms = S_RETRY_MIN_MS;
        }
        else
        if (kf_kb_loader_rejected (self->loader) != self->rejected_before) {
            self->is_handed = false;            //  Logged by the loader
            s_retry_later (self, now_us);
        }
        if (self->is_handed)
            return;
    }
    if (self->is_asking) {
        if (now_us - self->heard_us >= S_SILENCE_US) {
            kf_warn ("knowledge base: no answer from the broker for %lld s",
                     (long long) (S_SILENCE_US / 1000000));
            s_drop_transfer (self);
            s_ask (self, have, now_us);
        }
        return;
    }
    if (self->retry_us) {
        if (now_us >= self->retry_us)
            s_ask (self, have, now_us);
        return;
    }
    if (self->wanted > 0 && self->wanted != have)
        s_ask (self, have, now_us);
}

int64_t
kf_kb_remote_due_us (kf_kb_remote_t *self)
{
    if (self->is_handed)
        return kf_mono_us () + S_CHECK_US;
    if (self->is_asking)
        return self->heard_us + S_SILENCE_US;
    if (self->retry_us)
        return self->retry_us;
    return INT64_MAX;
}
