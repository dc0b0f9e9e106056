/*  worker_calls.c - requests that workers answer from what they hold in memory but that are not
    chat turns (suggest): no session, nothing stored. A call goes to the least-loaded worker (to
    any worker when all are busy with chats: calls are small), and its FINAL is the reply. A lost
    worker's calls go to another worker once; a call past its deadline answers 504. Call ids
    start with 'c', so they never meet chat job ids (decimal numbers). */
#include "broker/broker.h"
#include "common/clock.h"
#include "common/frames.h"
#include "common/log.h"
#include "common/mpack.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CALL_TIMEOUT_US 2000000   //  Calls are answered from memory: 2 s means trouble

struct kf_call_t {
    char id [24];               //  "c" + number, the JOB frame
    char *routing, *request_id;
    size_t routing_len, request_id_len;
    msgpack_sbuffer body;       //  The JOB body
    kf_worker_t *worker;
    int attempts;
    int64_t deadline_us;
    kf_call_t *prev, *next;     //  Every call, oldest first
};

static void
s_free (kf_broker_t *self, kf_call_t *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        self->calls_head = call->next;
    if (call->next)
        call->next->prev = call->prev;
    else
        self->calls_tail = call->prev;
    free (call->routing);
    free (call->request_id);
    msgpack_sbuffer_destroy (&call->body);
    free (call);
}

static void
s_fail (kf_broker_t *self, kf_call_t *call, kf_errc_t errc, const char *message)
{
    kf_error_t err;
    kf_error_set (&err, errc, "%s", message);
    kf_broker_reply_error (self, call->routing, call->routing_len, call->request_id,
                           call->request_id_len, &err);
    s_free (self, call);
}

//  Sends the call to a worker other than `avoid`; false when there is none
static bool
s_send (kf_broker_t *self, kf_call_t *call, kf_worker_t *avoid)
{
    kf_worker_t *worker = kf_worker_pool_pick (self->pool);
    size_t cursor = 0;
    while (!worker || worker == avoid) {
        worker = kf_worker_pool_next (self->pool, &cursor);
        if (!worker)
            return false;
        if (worker == avoid)
            worker = NULL;
    }
    const void *data [5] = { worker->identity, "KFW1", "JOB", call->id, call->body.data };
    size_t size [5] = { worker->identity_len, 4, 3, strlen (call->id), call->body.size };
    if (kf_frames_send (self->workers, 5, data, size, ZMQ_DONTWAIT) == -1) {
        kf_warn ("could not send a call to %s: %s", worker->name, zmq_strerror (errno));
        return false;
    }
    call->worker = worker;
    call->attempts++;
    return true;
}

void
kf_calls_send (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req,
               const char *method, const char *params, size_t params_len)
{
    kf_call_t *call = kf_calloc (1, sizeof *call);
    snprintf (call->id, sizeof call->id, "c%llu", (unsigned long long) ++self->next_call_id);
    call->routing = kf_strndup (routing, routing_len);
    call->routing_len = routing_len;
    call->request_id = req->id ? kf_strndup (req->id, req->id_len) : NULL;
    call->request_id_len = req->id ? req->id_len : 0;
    call->deadline_us = kf_mono_us () + S_CALL_TIMEOUT_US;
    msgpack_sbuffer_init (&call->body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &call->body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_str (&pk, "method", method);
    kf_mp_pack_cstr (&pk, "params");
    pk.callback (pk.data, params, params_len);
    call->prev = self->calls_tail;
    if (self->calls_tail)
        self->calls_tail->next = call;
    else
        self->calls_head = call;
    self->calls_tail = call;
    if (!s_send (self, call, NULL))
        s_fail (self, call, KF_E_UNAVAILABLE, "no worker is connected; retry later");
}

static kf_call_t *
s_find (kf_broker_t *self, const char *id, size_t id_len)
{
    for (kf_call_t *call = self->calls_head; call; call = call->next)
        if (strlen (call->id) == id_len && memcmp (call->id, id, id_len) == 0)
            return call;
    return NULL;
}

bool
kf_calls_on_final (kf_broker_t *self, kf_worker_t *worker, const char *job_id, size_t id_len,
                   const char *body, size_t body_len)
{
    if (id_len == 0 || job_id [0] != 'c')
        return false;
    kf_call_t *call = s_find (self, job_id, id_len);
    if (!call || call->worker != worker)
        return true;            //  Answered already (timed out, or resent after a loss)
    msgpack_unpacked unpacked;
    kf_error_t err;
    if (!kf_mp_unpack_one (body, body_len, &unpacked)) {
        s_fail (self, call, KF_E_INTERNAL, "worker sent an undecodable result");
        return true;
    }
    const msgpack_object *result = kf_mp_get (&unpacked.data, "result");
    if (kf_mp_get_bool (&unpacked.data, "ok", false) && result) {
        msgpack_sbuffer buffer;
        msgpack_sbuffer_init (&buffer);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
        msgpack_pack_object (&pk, *result);
        kf_broker_reply_ok (self, call->routing, call->routing_len, call->request_id,
                            call->request_id_len, buffer.data, buffer.size);
        msgpack_sbuffer_destroy (&buffer);
        s_free (self, call);
    }
    else {
        if (!kf_error_unpack (kf_mp_get (&unpacked.data, "error"), &err))
            kf_error_set (&err, KF_E_INTERNAL, "worker failed without saying why");
        kf_broker_reply_error (self, call->routing, call->routing_len, call->request_id,
                               call->request_id_len, &err);
        s_free (self, call);
    }
    msgpack_unpacked_destroy (&unpacked);
    return true;
}

void
kf_calls_on_worker_lost (kf_broker_t *self, kf_worker_t *worker)
{
    for (kf_call_t *call = self->calls_head, *next; call; call = next) {
        next = call->next;
        if (call->worker != worker)
            continue;
        call->worker = NULL;
        if (call->attempts >= 2 || !s_send (self, call, worker))
            s_fail (self, call, KF_E_UNAVAILABLE, "the worker answering was lost; retry");
    }
}

void
kf_calls_sweep (kf_broker_t *self, int64_t now_us)
{
    while (self->calls_head && self->calls_head->deadline_us <= now_us)
        s_fail (self, self->calls_head, KF_E_TIMEOUT, "no answer from a worker in time");
}

long
kf_calls_timeout (kf_broker_t *self, int64_t now_us)
{
    if (!self->calls_head)
        return -1;
    int64_t left = self->calls_head->deadline_us - now_us;
    return left <= 0 ? 0 : (long) (left / 1000 + 1);
}

void
kf_calls_destroy_all (kf_broker_t *self)
{
    //  Every request gets its one reply, sent with the last commit
    while (self->calls_head)
        s_fail (self, self->calls_head, KF_E_UNAVAILABLE, "the broker is shutting down");
}
