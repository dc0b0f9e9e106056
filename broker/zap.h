/*  zap.h - the broker's ZAP handler (ZeroMQ RFC 27): decides which CURVE keys may connect.

    Each CURVE socket of the broker names a domain: KF_ZAP_CLIENTS for the request and stream
    sockets, KF_ZAP_WORKERS for the worker socket. A domain lets in the keys of its authorized-keys
    file (one Z85 public key per line, text after it ignored, or a .pub file's "public = KEY"
    lines, so `cat w1.pub >> workers` adds one; lines starting with '#' are comments: no key does), the keys added in code (the local workers' key), or any key when it is open. The file is read again when it
    changes (checked at each handshake): an operator adds or removes a key without a restart.

    The handler is a socket in the broker's loop (inproc://zeromq.zap.01): kf_zap_on_readable
    answers every request waiting, never blocking. */
#ifndef KF_ZAP_H
#define KF_ZAP_H
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#define KF_ZAP_CLIENTS "kefu.clients"
#define KF_ZAP_WORKERS "kefu.workers"

typedef struct _kf_zap_t kf_zap_t;

//  Binds the handler in context `ctx`. NULL (errno set) when the endpoint is taken.
kf_zap_t *kf_zap_new (void *ctx);

void kf_zap_destroy (kf_zap_t **self_p);

//  Lets the keys of file `path` into `domain` (KF_ZAP_CLIENTS or KF_ZAP_WORKERS). Returns 0, or
//  -1 with the reason in `why` (a missing file, a line that is not a key: the line number).
int kf_zap_allow_file (kf_zap_t *self, const char *domain, const char *path, char *why,
                       size_t why_size);

//  Lets one Z85 public key into `domain`.
void kf_zap_allow_key (kf_zap_t *self, const char *domain, const char *key);

//  Lets any key into `domain` (connections are still encrypted).
void kf_zap_allow_any (kf_zap_t *self, const char *domain);

//  The handler's socket, for the broker's poll list.
void *kf_zap_socket (kf_zap_t *self);

//  Answers every ZAP request waiting on the socket.
void kf_zap_on_readable (kf_zap_t *self);

//  Packs {clients: {allowed, denied, keys, any}, workers: {...}} (the value of stats' "security").
void kf_zap_stats_pack (kf_zap_t *self, msgpack_packer *pk);
#endif
