/*  curve.h - CURVE security for kefu's sockets (ZeroMQ RFC 26): key files, and setting a socket
    up as a CURVE server or client.

    Keys are Z85 text, 40 characters for 32 bytes. A key file (kefuctl keygen NAME writes NAME.key,
    mode 0600, and NAME.pub) holds lines "public = KEY" and "secret = KEY"; a line starting with
    '#' is a comment (only there: '#' is one of Z85's characters).
    A public file holds the "public" line only. Anywhere a public key is asked for, the key itself,
    a .pub file or a .key file will do (the public line is read; the secret is never needed).

    Environment, for every client program (kefuctl, the worker, services using kefu_client.h):
        KEFU_BROKER_KEY    the broker's public key (key, .pub or .key file): turns CURVE on
        KEFU_CURVE_KEY     this program's own key file; without it a fresh key pair is made at
                           start, which a broker accepts only when it lets any client in */
#ifndef KF_CURVE_H
#define KF_CURVE_H
#include <stdbool.h>
#include <stddef.h>

#define KF_CURVE_KEY_LEN 40     //  Z85 characters of a 32-byte key

typedef struct {
    char server [KF_CURVE_KEY_LEN + 1];     //  The broker's public key (clients only)
    char public_key [KF_CURVE_KEY_LEN + 1];
    char secret_key [KF_CURVE_KEY_LEN + 1];
} kf_curve_t;

//  True when `text` is a 40-character Z85 key.
bool kf_curve_is_key (const char *text);

//  Makes a new key pair into `curve`'s public_key and secret_key. Returns 0, or -1 when this
//  libzmq has no CURVE (built without libsodium).
int kf_curve_keypair (kf_curve_t *curve);

//  Writes `curve`'s key pair to `base`.key (both keys, created with mode 0600, never replacing a
//  file) and `base`.pub (the public key). Returns 0, or -1 with the reason in `why`.
int kf_curve_write (const kf_curve_t *curve, const char *base, char *why, size_t why_size);

//  Reads a key file into `curve`'s public_key and secret_key, checking that they belong together.
//  Returns 0, or -1 with the reason in `why` (which never quotes a key).
int kf_curve_read_keypair (kf_curve_t *curve, const char *path, char *why, size_t why_size);

//  Reads a public key given as itself, or as the path of a .pub or .key file, into `out` (41
//  bytes). Returns 0, or -1 with the reason in `why`.
int kf_curve_read_public (char *out, const char *key_or_path, char *why, size_t why_size);

//  Fills `curve` for a client from `server_key` and `own_key_path` (either may be NULL: then
//  KEFU_BROKER_KEY and KEFU_CURVE_KEY are read). Returns 1 when CURVE is on, 0 when no broker
//  key was given (plain connections), -1 with the reason in `why`.
int kf_curve_client_config (kf_curve_t *curve, const char *server_key, const char *own_key_path,
                            char *why, size_t why_size);

//  Makes `socket` a CURVE client of the broker in `curve`. Call before connect. Returns 0 or -1.
int kf_curve_client_setup (void *socket, const kf_curve_t *curve);

//  Makes `socket` a CURVE server with `curve`'s secret key, its clients checked by the ZAP
//  handler under `domain`. Call before bind. Returns 0 or -1.
int kf_curve_server_setup (void *socket, const kf_curve_t *curve, const char *domain);

//  Watches `socket` (of context `ctx`) for failed CURVE handshakes: returns a socket to pass to
//  kf_curve_monitor_failures, or NULL. Close it with zmq_close before the watched socket's context
//  ends.
void *kf_curve_monitor (void *ctx, void *socket);

//  Handshakes failed since the last call: refused by the broker for the key (*auth); between a
//  CURVE and a plain side (*mismatch); closed without a reason (*other: a wrong broker key, or a
//  peer that is no ZeroMQ broker). Never blocks.
void kf_curve_monitor_failures (void *monitor, int *auth, int *mismatch, int *other);

//  Wipes the secret key from memory.
void kf_curve_wipe (kf_curve_t *curve);
#endif
