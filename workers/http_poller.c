/*  http_poller.c - libcurl's sockets in an epoll set, its timer, and the transfers that ended.

    Sockets: libcurl's socket callback keeps them in the epoll set (level-triggered, EPOLLIN /
    EPOLLOUT as libcurl asks), and the owner polls only that set's descriptor. A wake-up then
    costs what is ready, not what is open: at 2,500 streams per worker, passing every socket to
    each zmq_poll made token latency p99 grow to hundreds of milliseconds (BENCHMARKS.md). */
#include "workers/http_poller.h"
#include "common/clock.h"
#include "common/log.h"
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define S_NEVER INT64_MAX
#define S_EPOLL_BATCH 256               //  Ready sockets taken from the epoll set at a time
#define S_EPOLL_ROUNDS 16               //  Batches per on_poll at most: the rest waits one turn of
                                        //  the owner's loop (the set stays readable)

//  A file descriptor libcurl wants watched
typedef struct {
    curl_socket_t fd;
    int what;                   //  CURL_POLL_IN, _OUT, _INOUT; CURL_POLL_NONE: out of the epoll set
    int index;                  //  In the poller's sockets array
} s_socket_t;

struct _kf_http_poller_t {
    const char *name;           //  For logs
    kf_http_poller_done_fn *done;
    void *arg;
    CURLM *multi;               //  One connection cache and DNS cache for every transfer
    s_socket_t **sockets;       //  What libcurl wants polled (freed at the end if libcurl does not say)
    int socket_count, socket_cap;
    int epoll_fd;               //  Those sockets, as the one descriptor the owner polls
    int64_t curl_deadline_us;   //  libcurl's timer, S_NEVER when none
    int transfers;              //  Added and not removed
};

//  Puts `fd` into the epoll set, changes what it is watched for, or takes it out (`what` 0),
//  from `was` (0: not in the set). libcurl says REMOVE before it closes a socket, but an fd
//  closed first left the set by itself (ENOENT, EBADF), and one reused since may still be there
//  under its old registration (EEXIST): both are mended, not failed. -1 on another error.
static int
s_epoll_set (kf_http_poller_t *self, curl_socket_t fd, int was, int what)
{
    struct epoll_event event = {
        .events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0),
        .data.fd = fd
    };
    if (!what) {
        if (was && epoll_ctl (self->epoll_fd, EPOLL_CTL_DEL, fd, NULL) == -1
        &&  errno != ENOENT && errno != EBADF) {
            kf_warn ("%s: epoll_ctl DEL of fd %d: %s", self->name, (int) fd, strerror (errno));
            return -1;
        }
        return 0;
    }
    int rc = epoll_ctl (self->epoll_fd, was ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &event);
    if (rc == -1 && errno == EEXIST)
        rc = epoll_ctl (self->epoll_fd, EPOLL_CTL_MOD, fd, &event);
    else
    if (rc == -1 && errno == ENOENT)
        rc = epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, fd, &event);
    if (rc == -1) {
        if (errno == ENOMEM)
            kf_oom ();
        kf_warn ("%s: epoll_ctl of fd %d: %s", self->name, (int) fd, strerror (errno));
    }
    return rc;
}

//  CURLMOPT_SOCKETFUNCTION: keeps the epoll set and the list of fds; each entry's address is
//  libcurl's socketp
static int
s_on_curl_socket (CURL *easy, curl_socket_t fd, int what, void *arg, void *socketp)
{
    (void) easy;
    kf_http_poller_t *self = arg;
    s_socket_t *sock = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sock) {
            s_epoll_set (self, fd, sock->what, 0);
            s_socket_t *last = self->sockets [--self->socket_count];
            self->sockets [sock->index] = last;
            last->index = sock->index;
            free (sock);
        }
        return 0;
    }
    if (!sock) {
        if (self->socket_count == self->socket_cap) {
            self->socket_cap = self->socket_cap ? self->socket_cap * 2 : 64;
            self->sockets = kf_realloc (self->sockets, self->socket_cap * sizeof *self->sockets);
        }
        sock = kf_calloc (1, sizeof *sock);
        sock->fd = fd;
        sock->index = self->socket_count;
        self->sockets [self->socket_count++] = sock;
        CURLMcode rc = curl_multi_assign (self->multi, fd, sock);
        assert (rc == CURLM_OK);
        (void) rc;
    }
    //  Recorded even on failure: the next change or the REMOVE mends the registration
    int was = sock->what;
    sock->what = what;
    return s_epoll_set (self, fd, was, what);
}

//  CURLMOPT_TIMERFUNCTION: when libcurl next wants curl_multi_socket_action (CURL_SOCKET_TIMEOUT)
static int
s_on_curl_timer (CURLM *multi, long timeout_ms, void *arg)
{
    (void) multi;
    kf_http_poller_t *self = arg;
    self->curl_deadline_us = timeout_ms < 0 ? S_NEVER : kf_mono_us () + timeout_ms * 1000LL;
    return 0;
}

//  Reports every transfer that ended
static void
s_read_info (kf_http_poller_t *self)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read (self->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        //  msg dies with the transfer's removal in the callback
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        self->done (self->arg, easy, result);
    }
}

kf_http_poller_t *
kf_http_poller_new (const char *name, kf_http_poller_done_fn *done, void *arg)
{
    assert (name && done);
    if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK)
        kf_oom ();
    if (!(curl_version_info (CURLVERSION_NOW)->features & CURL_VERSION_ASYNCHDNS))
        kf_warn ("%s: this libcurl resolves names in the caller's thread: a slow DNS will "
                 "stall the event loop (use IP addresses or a libcurl with the threaded resolver)",
                 name);
    kf_http_poller_t *self = kf_calloc (1, sizeof *self);
    self->name = name;
    self->done = done;
    self->arg = arg;
    self->multi = curl_multi_init ();
    if (!self->multi)
        kf_oom ();
    self->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
    if (self->epoll_fd == -1)
        kf_oom ();                      //  Out of memory or of descriptors at start
    curl_multi_setopt (self->multi, CURLMOPT_SOCKETFUNCTION, s_on_curl_socket);
    curl_multi_setopt (self->multi, CURLMOPT_SOCKETDATA, self);
    curl_multi_setopt (self->multi, CURLMOPT_TIMERFUNCTION, s_on_curl_timer);
    curl_multi_setopt (self->multi, CURLMOPT_TIMERDATA, self);
    self->curl_deadline_us = S_NEVER;
    return self;
}

void
kf_http_poller_destroy (kf_http_poller_t **self_p)
{
    kf_http_poller_t *self = *self_p;
    if (!self)
        return;
    assert (self->transfers == 0);
    curl_multi_cleanup (self->multi);
    for (int i = 0; i < self->socket_count; i++)
        free (self->sockets [i]);
    free (self->sockets);
    close (self->epoll_fd);             //  After the cleanup: its REMOVEs still use it
    free (self);
    curl_global_cleanup ();
    *self_p = NULL;
}

void
kf_http_poller_add (kf_http_poller_t *self, CURL *easy)
{
    CURLMcode rc = curl_multi_add_handle (self->multi, easy);
    if (rc == CURLM_OUT_OF_MEMORY)
        kf_oom ();
    assert (rc == CURLM_OK);            //  Never from inside a libcurl callback, never twice
    self->transfers++;
}

void
kf_http_poller_remove (kf_http_poller_t *self, CURL *easy)
{
    if (curl_multi_remove_handle (self->multi, easy) == CURLM_OK)
        self->transfers--;
}

int
kf_http_poller_pollitem_count (kf_http_poller_t *self)
{
    return self->socket_count > 0;
}

int
kf_http_poller_pollitems (kf_http_poller_t *self, zmq_pollitem_t *items, int max)
{
    if (self->socket_count == 0 || max < 1)
        return 0;
    items [0] = (zmq_pollitem_t) { .socket = NULL, .fd = self->epoll_fd, .events = ZMQ_POLLIN, .revents = 0 };
    return 1;
}

void
kf_http_poller_on_poll (kf_http_poller_t *self, const zmq_pollitem_t *items, int count)
{
    bool is_ready = false;
    for (int i = 0; i < count; i++)
        is_ready |= items [i].socket == NULL && items [i].fd == self->epoll_fd
                 && (items [i].revents & ZMQ_POLLIN);
    if (!is_ready)
        return;
    struct epoll_event events [S_EPOLL_BATCH];
    for (int round = 0; round < S_EPOLL_ROUNDS; round++) {
        //  Asked again, not kept from zmq_poll's wake-up: a CANCEL handled since may have closed
        //  some of the sockets that were ready then
        int ready = epoll_wait (self->epoll_fd, events, S_EPOLL_BATCH, 0);
        for (int i = 0; i < ready; i++) {
            uint32_t got = events [i].events;
            int mask = ((got & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) ? CURL_CSELECT_IN : 0)
                     | ((got & EPOLLOUT) ? CURL_CSELECT_OUT : 0)
                     | ((got & EPOLLERR) ? CURL_CSELECT_ERR : 0);
            int running;
            //  An fd libcurl closed earlier in this batch is unknown to it now, and ignored; one
            //  reopened since gets a spurious wake-up, which libcurl tolerates
            curl_multi_socket_action (self->multi, events [i].data.fd, mask, &running);
        }
        if (ready < S_EPOLL_BATCH)
            break;                      //  -1 (EINTR) included: the set is polled again next turn
    }
    s_read_info (self);
}

long
kf_http_poller_timeout_ms (kf_http_poller_t *self, int64_t now_us)
{
    if (self->curl_deadline_us == S_NEVER)
        return -1;
    return self->curl_deadline_us <= now_us ? 0 : (long) ((self->curl_deadline_us - now_us + 999) / 1000);
}

void
kf_http_poller_on_timer (kf_http_poller_t *self, int64_t now_us)
{
    if (self->curl_deadline_us > now_us)
        return;
    self->curl_deadline_us = S_NEVER;   //  Before the call: it may set a new one
    int running;
    curl_multi_socket_action (self->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    s_read_info (self);
}

int
kf_http_poller_transfers (kf_http_poller_t *self)
{
    return self->transfers;
}
