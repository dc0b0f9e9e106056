/*  curve.c - CURVE key files and socket setup. */
#include "common/curve.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define S_LINE_MAX 512

//  Z85's alphabet (ZeroMQ RFC 32)
static const char s_z85 [] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

bool
kf_curve_is_key (const char *text)
{
    if (!text || strlen (text) != KF_CURVE_KEY_LEN)
        return false;
    for (const char *c = text; *c; c++)
        if (!strchr (s_z85, *c))
            return false;
    uint8_t bytes [32];
    return zmq_z85_decode (bytes, text) != NULL;
}

int
kf_curve_keypair (kf_curve_t *curve)
{
    return zmq_curve_keypair (curve->public_key, curve->secret_key) == 0 ? 0 : -1;
}

void *
kf_curve_monitor (void *ctx, void *socket)
{
    static int counter;             //  Endpoints are per context; unique within one anyway
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://kf-curve-monitor-%d",
              __atomic_add_fetch (&counter, 1, __ATOMIC_RELAXED));
    int events = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
               | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    if (zmq_socket_monitor (socket, endpoint, events))
        return NULL;
    void *monitor = zmq_socket (ctx, ZMQ_PAIR);
    int linger = 0;
    zmq_setsockopt (monitor, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect (monitor, endpoint)) {
        zmq_close (monitor);
        return NULL;
    }
    return monitor;
}

void
kf_curve_monitor_failures (void *monitor, int *auth, int *mismatch, int *other)
{
    *auth = *mismatch = *other = 0;
    while (monitor) {
        uint8_t head [6];
        int n = zmq_recv (monitor, head, sizeof head, ZMQ_DONTWAIT);
        if (n < 0)
            return;
        int more = 0;
        size_t size = sizeof more;
        zmq_getsockopt (monitor, ZMQ_RCVMORE, &more, &size);
        while (more) {                  //  The endpoint's address
            char address [256];
            zmq_recv (monitor, address, sizeof address, 0);
            zmq_getsockopt (monitor, ZMQ_RCVMORE, &more, &size);
        }
        uint16_t event;
        uint32_t value = 0;
        memcpy (&event, head, sizeof event);
        if (n >= 6)
            memcpy (&value, head + 2, sizeof value);
        if (n >= 2 && event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            (*auth)++;
        else
        if (n >= 6 && event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
        &&  value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
            (*mismatch)++;
        else
        if (n >= 2)
            (*other)++;
    }
}

void
kf_curve_wipe (kf_curve_t *curve)
{
    volatile char *secret = curve->secret_key;
    for (size_t i = 0; i < sizeof curve->secret_key; i++)
        secret [i] = 0;
}

static int
s_fail (char *why, size_t why_size, const char *format, const char *what, const char *detail)
{
    snprintf (why, why_size, format, what, detail);
    return -1;
}

//  Writes `text` into a new file `path` with `mode`; never replaces one
static int
s_write_new (const char *path, const char *text, int mode, char *why, size_t why_size)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return s_fail (why, why_size, "cannot create %s: %s", path, strerror (errno));
    size_t len = strlen (text);
    bool is_written = write (fd, text, len) == (ssize_t) len;
    if (close (fd) || !is_written) {
        unlink (path);
        return s_fail (why, why_size, "cannot write %s: %s", path, strerror (errno));
    }
    return 0;
}

int
kf_curve_write (const kf_curve_t *curve, const char *base, char *why, size_t why_size)
{
    char path [4096], text [256];
    snprintf (path, sizeof path, "%s.key", base);
    snprintf (text, sizeof text, "# kefu CURVE key pair: keep this file private\n"
              "public = %s\nsecret = %s\n", curve->public_key, curve->secret_key);
    int rc = s_write_new (path, text, 0600, why, why_size);
    memset (text, 0, sizeof text);
    if (rc)
        return -1;
    snprintf (path, sizeof path, "%s.pub", base);
    snprintf (text, sizeof text, "# kefu CURVE public key\npublic = %s\n", curve->public_key);
    return s_write_new (path, text, 0644, why, why_size);
}

//  Reads the "public" and "secret" lines of key file `path` (either may come back empty)
static int
s_read_file (const char *path, char *public_key, char *secret_key, char *why, size_t why_size)
{
    *public_key = *secret_key = 0;
    FILE *file = fopen (path, "r");
    if (!file)
        return s_fail (why, why_size, "cannot read key file %s: %s", path, strerror (errno));
    char line [S_LINE_MAX];
    int number = 0, rc = 0;
    while (rc == 0 && fgets (line, sizeof line, file)) {
        number++;
        char first [2];
        if (sscanf (line, " %1s", first) == 1 && *first == '#')
            continue;                   //  A comment: '#' starts a line only (Z85 keys hold '#')
        char name [16], value [S_LINE_MAX];
        int fields = sscanf (line, " %15[a-z_] = %511s", name, value);
        if (fields == EOF)
            continue;               //  Blank; anything else must be a key line
        char *target = strcmp (name, "public") == 0 ? public_key
                     : strcmp (name, "secret") == 0 ? secret_key : NULL;
        if (fields != 2 || !target || !kf_curve_is_key (value)) {
            char where [32];
            snprintf (where, sizeof where, "%d", number);
            rc = s_fail (why, why_size, "key file %s, line %s: expected \"public = KEY\" or "
                         "\"secret = KEY\" with a 40-character Z85 key", path, where);
        }
        else
            memcpy (target, value, KF_CURVE_KEY_LEN + 1);
        memset (value, 0, sizeof value);
    }
    memset (line, 0, sizeof line);
    fclose (file);
    return rc;
}

int
kf_curve_read_keypair (kf_curve_t *curve, const char *path, char *why, size_t why_size)
{
    if (s_read_file (path, curve->public_key, curve->secret_key, why, why_size))
        return -1;
    if (!*curve->secret_key)
        return s_fail (why, why_size, "key file %s has no secret key%s", path,
                       " (a .pub file will not do here: give the .key file)");
    char derived [KF_CURVE_KEY_LEN + 1];
    if (zmq_curve_public (derived, curve->secret_key))
        return s_fail (why, why_size, "key file %s: %s", path, "this libzmq has no CURVE support");
    if (*curve->public_key && strcmp (derived, curve->public_key) != 0)
        return s_fail (why, why_size, "key file %s: %s", path,
                       "its public key does not belong to its secret key");
    memcpy (curve->public_key, derived, sizeof derived);
    return 0;
}

int
kf_curve_read_public (char *out, const char *key_or_path, char *why, size_t why_size)
{
    if (kf_curve_is_key (key_or_path)) {
        memcpy (out, key_or_path, KF_CURVE_KEY_LEN + 1);
        return 0;
    }
    char secret [KF_CURVE_KEY_LEN + 1];
    int rc = s_read_file (key_or_path, out, secret, why, why_size);
    if (rc == 0 && !*out && *secret && zmq_curve_public (out, secret))
        rc = s_fail (why, why_size, "key file %s: %s", key_or_path, "this libzmq has no CURVE support");
    memset (secret, 0, sizeof secret);
    if (rc == 0 && !*out)
        rc = s_fail (why, why_size, "%s is neither a 40-character Z85 key nor a file with a %s",
                     key_or_path, "\"public = KEY\" line");
    return rc;
}

int
kf_curve_client_config (kf_curve_t *curve, const char *server_key, const char *own_key_path,
                        char *why, size_t why_size)
{
    memset (curve, 0, sizeof *curve);
    if (!server_key || !*server_key)
        server_key = getenv ("KEFU_BROKER_KEY");
    if (!own_key_path || !*own_key_path)
        own_key_path = getenv ("KEFU_CURVE_KEY");
    if (!server_key || !*server_key) {
        if (own_key_path && *own_key_path)
            return s_fail (why, why_size, "a key of this program's own (%s) needs the broker's "
                           "public key too (--broker-key or KEFU_BROKER_KEY)%s", own_key_path, "");
        return 0;
    }
    if (kf_curve_read_public (curve->server, server_key, why, why_size))
        return -1;
    if (own_key_path && *own_key_path)
        return kf_curve_read_keypair (curve, own_key_path, why, why_size) ? -1 : 1;
    if (kf_curve_keypair (curve))
        return s_fail (why, why_size, "%s%s", "this libzmq has no CURVE support", "");
    return 1;
}

int
kf_curve_client_setup (void *socket, const kf_curve_t *curve)
{
    return zmq_setsockopt (socket, ZMQ_CURVE_SERVERKEY, curve->server, KF_CURVE_KEY_LEN + 1)
        || zmq_setsockopt (socket, ZMQ_CURVE_PUBLICKEY, curve->public_key, KF_CURVE_KEY_LEN + 1)
        || zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, curve->secret_key, KF_CURVE_KEY_LEN + 1)
        ? -1 : 0;
}

int
kf_curve_server_setup (void *socket, const kf_curve_t *curve, const char *domain)
{
    int on = 1;
    return zmq_setsockopt (socket, ZMQ_CURVE_SERVER, &on, sizeof on)
        || zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, curve->secret_key, KF_CURVE_KEY_LEN + 1)
        || zmq_setsockopt (socket, ZMQ_ZAP_DOMAIN, domain, strlen (domain))
        ? -1 : 0;
}
