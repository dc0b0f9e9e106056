/*  zap.c - the broker's ZAP handler: authorized CURVE keys per domain. */
#include "broker/zap.h"
#include "common/clock.h"
#include "common/curve.h"
#include "common/dict.h"
#include "common/log.h"
#include "common/mpack.h"
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#define S_ENDPOINT "inproc://zeromq.zap.01"
#define S_FRAMES_MAX 8
#define S_FRAME_MAX 256

typedef struct {
    const char *name;
    char *path;                 //  Authorized-keys file, or NULL
    struct stat seen;           //  The file as last read
    kf_dict_t *file_keys;       //  Raw 32-byte keys from the file
    kf_dict_t *own_keys;        //  Added in code
    bool is_open;               //  Any key
    bool is_missing;            //  The file could not be found at the last look (said once)
    uint64_t allowed, denied;
} s_domain_t;

#define S_LOG_WINDOW_US 60000000   //  Refusals logged one by one: at most S_LOG_MAX a minute
#define S_LOG_MAX 10

struct _kf_zap_t {
    void *socket;
    s_domain_t domains [2];
    int64_t log_window_us;      //  Start of the current minute of refusal logs
    int logged, unlogged;       //  Refusals logged in it, and those only counted
};

kf_zap_t *
kf_zap_new (void *ctx)
{
    kf_zap_t *self = kf_calloc (1, sizeof *self);
    self->socket = zmq_socket (ctx, ZMQ_REP);
    int linger = 0;
    zmq_setsockopt (self->socket, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind (self->socket, S_ENDPOINT)) {
        int saved = errno;
        zmq_close (self->socket);
        free (self);
        errno = saved;
        return NULL;
    }
    const char *names [2] = { KF_ZAP_CLIENTS, KF_ZAP_WORKERS };
    for (int d = 0; d < 2; d++) {
        self->domains [d].name = names [d];
        self->domains [d].file_keys = kf_dict_new ();
        self->domains [d].own_keys = kf_dict_new ();
    }
    return self;
}

void
kf_zap_destroy (kf_zap_t **self_p)
{
    kf_zap_t *self = *self_p;
    if (!self)
        return;
    for (int d = 0; d < 2; d++) {
        free (self->domains [d].path);
        kf_dict_destroy (&self->domains [d].file_keys);
        kf_dict_destroy (&self->domains [d].own_keys);
    }
    zmq_close (self->socket);
    free (self);
    *self_p = NULL;
}

static s_domain_t *
s_domain (kf_zap_t *self, const char *name, size_t len)
{
    for (int d = 0; d < 2; d++)
        if (strlen (self->domains [d].name) == len && memcmp (self->domains [d].name, name, len) == 0)
            return &self->domains [d];
    return NULL;
}

//  Reads the domain's file into a fresh key set. Returns 0, -1 with `why` for a bad line, -2 when
//  the file cannot be opened (the old set stays either way)
static int
s_load (s_domain_t *domain, char *why, size_t why_size)
{
    FILE *file = fopen (domain->path, "r");
    if (!file) {
        snprintf (why, why_size, "cannot read authorized keys %s: %s", domain->path, strerror (errno));
        return -2;
    }
    kf_dict_t *keys = kf_dict_new ();
    char line [512];
    int number = 0, rc = 0;
    while (rc == 0 && fgets (line, sizeof line, file)) {
        number++;
        char key [64];
        if (sscanf (line, " public = %63s", key) != 1      //  A .pub file's line, or the key
        &&  sscanf (line, " %63s", key) != 1)
            continue;
        if (*key == '#')
            continue;           //  A comment: no key starts with '#' (Z85's largest digit)
        uint8_t raw [32];
        if (!kf_curve_is_key (key) || !zmq_z85_decode (raw, key)) {
            snprintf (why, why_size, "authorized keys %s, line %d: not a 40-character Z85 public key",
                      domain->path, number);
            rc = -1;
        }
        else
            kf_dict_put (keys, (const char *) raw, sizeof raw, (void *) 1);
    }
    if (ferror (file) && rc == 0) {
        snprintf (why, why_size, "cannot read authorized keys %s", domain->path);
        rc = -1;
    }
    fclose (file);
    if (rc) {
        kf_dict_destroy (&keys);
        return -1;
    }
    kf_dict_destroy (&domain->file_keys);
    domain->file_keys = keys;
    return 0;
}

int
kf_zap_allow_file (kf_zap_t *self, const char *domain_name, const char *path, char *why,
                   size_t why_size)
{
    s_domain_t *domain = s_domain (self, domain_name, strlen (domain_name));
    assert (domain);
    free (domain->path);
    domain->path = kf_strdup (path);
    if (stat (path, &domain->seen)) {
        snprintf (why, why_size, "cannot read authorized keys %s: %s", path, strerror (errno));
        return -1;
    }
    return s_load (domain, why, why_size) ? -1 : 0;
}

void
kf_zap_allow_key (kf_zap_t *self, const char *domain_name, const char *key)
{
    s_domain_t *domain = s_domain (self, domain_name, strlen (domain_name));
    uint8_t raw [32];
    assert (domain && kf_curve_is_key (key));
    zmq_z85_decode (raw, key);
    kf_dict_put (domain->own_keys, (const char *) raw, sizeof raw, (void *) 1);
}

void
kf_zap_allow_any (kf_zap_t *self, const char *domain_name)
{
    s_domain_t *domain = s_domain (self, domain_name, strlen (domain_name));
    assert (domain);
    domain->is_open = true;
}

void *
kf_zap_socket (kf_zap_t *self)
{
    return self->socket;
}

//  Reads the file again when it changed since it was read (a failed read keeps the old keys and
//  is logged once per change)
static void
s_refresh (s_domain_t *domain)
{
    struct stat now;
    if (!domain->path)
        return;
    if (stat (domain->path, &now)) {
        if (!domain->is_missing)
            kf_warn ("authorized keys %s: %s (keeping the keys read before)", domain->path,
                     strerror (errno));
        domain->is_missing = true;
        return;
    }
    domain->is_missing = false;
    if (now.st_mtim.tv_sec == domain->seen.st_mtim.tv_sec
    &&  now.st_mtim.tv_nsec == domain->seen.st_mtim.tv_nsec
    &&  now.st_size == domain->seen.st_size && now.st_ino == domain->seen.st_ino)
        return;
    char why [512];
    int rc = s_load (domain, why, sizeof why);
    if (rc != -2)
        domain->seen = now;     //  Not when it could not be opened: tried again next handshake
    if (rc)
        kf_warn ("%s (keeping the keys read before)", why);
    else
        kf_info ("authorized keys %s read again: %zu keys", domain->path,
                 kf_dict_size (domain->file_keys));
}

//  Whether a refusal may be logged: anyone may try a handshake (the broker's public key is no
//  secret) and a refused worker tries again every few seconds, so at most S_LOG_MAX a minute
//  are, then how many were not
static bool
s_may_log (kf_zap_t *self)
{
    int64_t now = kf_mono_us ();
    if (now - self->log_window_us >= S_LOG_WINDOW_US) {
        if (self->unlogged)
            kf_warn ("CURVE: %d more handshakes refused in the last minute (not logged one by one)",
                     self->unlogged);
        self->log_window_us = now;
        self->logged = self->unlogged = 0;
    }
    if (self->logged < S_LOG_MAX) {
        self->logged++;
        return true;
    }
    self->unlogged++;
    return false;
}

//  The decision on one request's frames
static bool
s_decide (kf_zap_t *self, zmq_msg_t *frames, int count, const char **why)
{
    *why = "malformed ZAP request";
    if (count < 7 || zmq_msg_size (&frames [0]) != 3 || memcmp (zmq_msg_data (&frames [0]), "1.0", 3))
        return false;
    s_domain_t *domain = s_domain (self, zmq_msg_data (&frames [2]), zmq_msg_size (&frames [2]));
    *why = "unknown domain";
    if (!domain)
        return false;
    bool is_curve = zmq_msg_size (&frames [5]) == 5 && memcmp (zmq_msg_data (&frames [5]), "CURVE", 5) == 0;
    *why = "not CURVE";
    if (!is_curve || zmq_msg_size (&frames [6]) != 32)
        return false;
    s_refresh (domain);
    const char *key = zmq_msg_data (&frames [6]);
    bool is_allowed = domain->is_open || kf_dict_get (domain->own_keys, key, 32)
                   || kf_dict_get (domain->file_keys, key, 32);
    *why = is_allowed ? "OK" : "key not authorized";
    if (is_allowed)
        domain->allowed++;
    else
        domain->denied++;
    if (!is_allowed && s_may_log (self)) {
        char z85 [KF_CURVE_KEY_LEN + 1], address [S_FRAME_MAX];
        zmq_z85_encode (z85, (const uint8_t *) key, 32);
        size_t len = zmq_msg_size (&frames [3]) < sizeof address - 1 ? zmq_msg_size (&frames [3])
                                                                     : sizeof address - 1;
        memcpy (address, zmq_msg_data (&frames [3]), len);
        address [len] = 0;
        kf_warn ("%s: refused the CURVE key %s from %s (not in its authorized keys)",
                 domain->name, z85, address);
    }
    return is_allowed;
}

void
kf_zap_on_readable (kf_zap_t *self)
{
    while (true) {
        zmq_msg_t frames [S_FRAMES_MAX];
        int count = 0, more = 1;
        while (more) {
            zmq_msg_t frame;
            zmq_msg_init (&frame);
            if (zmq_msg_recv (&frame, self->socket, count ? 0 : ZMQ_DONTWAIT) < 0) {
                zmq_msg_close (&frame);
                for (int f = 0; f < count; f++)
                    zmq_msg_close (&frames [f]);
                return;         //  Nothing waiting (or the context ends)
            }
            more = zmq_msg_more (&frame);
            if (count < S_FRAMES_MAX)
                frames [count++] = frame;
            else
                zmq_msg_close (&frame);
        }
        const char *why;
        bool is_allowed = s_decide (self, frames, count, &why);
        //  Reply: version, request id, status code, status text, user id, metadata
        const char *code = is_allowed ? "200" : "400";
        zmq_send (self->socket, "1.0", 3, ZMQ_SNDMORE);
        if (count > 1)
            zmq_send (self->socket, zmq_msg_data (&frames [1]), zmq_msg_size (&frames [1]), ZMQ_SNDMORE);
        else
            zmq_send (self->socket, "", 0, ZMQ_SNDMORE);
        zmq_send (self->socket, code, 3, ZMQ_SNDMORE);
        zmq_send (self->socket, why, strlen (why), ZMQ_SNDMORE);
        zmq_send (self->socket, "", 0, ZMQ_SNDMORE);
        zmq_send (self->socket, "", 0, 0);
        for (int f = 0; f < count; f++)
            zmq_msg_close (&frames [f]);
    }
}

void
kf_zap_stats_pack (kf_zap_t *self, msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    for (int d = 0; d < 2; d++) {
        s_domain_t *domain = &self->domains [d];
        kf_mp_pack_cstr (pk, d == 0 ? "clients" : "workers");
        msgpack_pack_map (pk, 4);
        kf_mp_pack_kv_int (pk, "allowed", (int64_t) domain->allowed);
        kf_mp_pack_kv_int (pk, "denied", (int64_t) domain->denied);
        kf_mp_pack_kv_int (pk, "keys", (int64_t) (kf_dict_size (domain->file_keys)
                                                  + kf_dict_size (domain->own_keys)));
        kf_mp_pack_kv_bool (pk, "any", domain->is_open);
    }
}
