/*  fake_business.c - a stand-in for a shop's own order API, for the business_query tests only.
    HTTP/1.1 with keep-alive (a connection serves request after request; Connection: close is
    honoured), one poll loop, many connections at once.
        GET  /orders/{order_no}     the order as JSON (the number URL-decoded)
        POST /orders/query          the same for the body's "order_no" (or "phone")
        GET  /stats                 {"requests", "orders", "connections", "client_closes",
                                     "last_method", "last_path", "last_authorization",
                                     "last_body"} (orders counts /orders requests)
    Orders: ORD-2024-001 (shipped, with logistics and items), ORD-2024-002 (not shipped: no
    logistics), 20240315001 (delivered), phone 13812345678 (ORD-2024-001's). Any other number
    gets 404 {"error":"order not found"}. Misbehaviour, by order number or header:
        ORD-2024-500            500 with a JSON error
        ORD-2024-502            502 with an HTML body
        ORD-2024-777            200 with a body that is not JSON
        ORD-2024-888            200, the answer written 3 bytes at a time, 2 ms apart (splits
                                every UTF-8 character)
        ORD-2024-999            the answer after 5 s (longer than any test's timeout_ms)
        X-Fake-Delay-Ms: N      the answer after N ms, for any request
        X-Fake-Auth: KEY        requires "Authorization: Bearer KEY", else 401
    A connection the client closes before its answer is all written counts in client_closes.
        fake_business [--port N]      (0 or absent: any free port, printed on stdout) */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_CONNECTIONS 512
#define S_REQUEST_MAX 65536

typedef struct {
    int fd;
    char request [S_REQUEST_MAX];   //  Bytes received and not yet answered
    size_t request_len;
    char *response;             //  The answer being written, NULL when none
    size_t response_len, sent;
    size_t chunk;               //  Bytes per write, 0: all at once
    int64_t write_at_ms;        //  When the next write is due
    bool is_closing;            //  Close after this answer
} s_conn_t;

static s_conn_t *s_conns [S_MAX_CONNECTIONS];
static int s_count;
static uint64_t s_requests, s_orders, s_connections, s_client_closes;
static char s_last_method [16], s_last_path [512], s_last_authorization [512], s_last_body [1024];

static const char *s_known [][2] = {
    { "ORD-2024-001",
      "{\"order_no\":\"ORD-2024-001\",\"status\":\"已发货\",\"amount\":299.5,\"paid\":true,"
      "\"logistics\":{\"company\":\"顺丰速运\",\"tracking_no\":\"SF1234567890\","
      "\"latest\":\"【深圳市】快件已到达深圳转运中心\"},"
      "\"items\":[{\"name\":\"无线蓝牙耳机\",\"qty\":1},{\"name\":\"充电盒保护套\",\"qty\":2}]}" },
    { "ORD-2024-002",
      "{\"order_no\":\"ORD-2024-002\",\"status\":\"待发货\",\"logistics\":null,"
      "\"items\":[{\"name\":\"智能手环\",\"qty\":1}]}" },
    { "20240315001",
      "{\"order_no\":\"20240315001\",\"status\":\"已签收\",\"logistics\":{\"company\":\"中通快递\","
      "\"tracking_no\":\"ZT9876543210\",\"latest\":\"【上海市】已签收，签收人：本人\"},"
      "\"items\":[{\"name\":\"保温杯\",\"qty\":1}]}" },
    { "ORD-2024-888",
      "{\"order_no\":\"ORD-2024-888\",\"status\":\"运输中\",\"logistics\":{\"company\":\"京东物流\","
      "\"tracking_no\":\"JD0001112223\",\"latest\":\"【北京市】快件正在派送中，派送员：张师傅\"},"
      "\"items\":[{\"name\":\"机械键盘\",\"qty\":1}]}" },
    { "ORD-2024-999",
      "{\"order_no\":\"ORD-2024-999\",\"status\":\"已发货\",\"logistics\":{\"company\":\"慢递\"}}" },
};

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  A header's value ("" when absent), names without regard to case
static void
s_header (const char *head, const char *name, char *value, size_t size)
{
    *value = 0;
    size_t name_len = strlen (name);
    for (const char *line = strstr (head, "\r\n"); line && line [2] != '\r'; line = strstr (line + 2, "\r\n"))
        if (strncasecmp (line + 2, name, name_len) == 0 && line [2 + name_len] == ':') {
            const char *at = line + 3 + name_len;
            while (*at == ' ')
                at++;
            size_t len = strcspn (at, "\r\n");
            snprintf (value, size, "%.*s", (int) (len < size ? len : size - 1), at);
            return;
        }
}

static void
s_url_decode (const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (; *in && n + 1 < size; in++) {
        unsigned int byte;
        if (*in == '%' && sscanf (in + 1, "%2x", &byte) == 1) {
            out [n++] = (char) byte;
            in += 2;
        }
        else
            out [n++] = *in;
    }
    out [n] = 0;
}

//  Copies `text` into `out` for a JSON string: quotes and backslashes dropped
static void
s_json_safe (const char *text, char *out, size_t size)
{
    size_t n = 0;
    for (; *text && n + 1 < size; text++)
        if (*text != '"' && *text != '\\' && (unsigned char) *text >= 0x20)
            out [n++] = *text;
    out [n] = 0;
}

static void
s_respond (s_conn_t *conn, int status, const char *type, const char *body)
{
    const char *reason = status == 200 ? "OK" : status == 404 ? "Not Found" : "Fake";
    size_t size = strlen (body) + 256;
    conn->response = malloc (size);
    conn->response_len = (size_t) snprintf (conn->response, size,
        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n%s", status, reason,
        type, strlen (body), conn->is_closing ? "Connection: close\r\n" : "", body);
    conn->sent = 0;
}

//  The answer for order `order` (URL-decoded), with the delay and chunking it asks for
static void
s_order (s_conn_t *conn, const char *order, int64_t *delay_ms)
{
    s_orders++;
    if (strcmp (order, "ORD-2024-500") == 0) {
        s_respond (conn, 500, "application/json", "{\"error\":\"internal error\"}");
        return;
    }
    if (strcmp (order, "ORD-2024-502") == 0) {
        s_respond (conn, 502, "text/html", "<html><body>Bad Gateway</body></html>");
        return;
    }
    if (strcmp (order, "ORD-2024-777") == 0) {
        s_respond (conn, 200, "application/json", "{\"order_no\":\"ORD-2024-777\",\"status\":");
        return;
    }
    if (strcmp (order, "ORD-2024-999") == 0 && *delay_ms == 0)
        *delay_ms = 5000;
    if (strcmp (order, "ORD-2024-888") == 0)
        conn->chunk = 3;
    if (strcmp (order, "13812345678") == 0)
        order = "ORD-2024-001";
    for (size_t i = 0; i < sizeof s_known / sizeof s_known [0]; i++)
        if (strcmp (order, s_known [i][0]) == 0) {
            s_respond (conn, 200, "application/json; charset=utf-8", s_known [i][1]);
            return;
        }
    s_respond (conn, 404, "application/json", "{\"error\":\"order not found\"}");
}

//  A "key":"value" string of a JSON body, crudely
static void
s_body_field (const char *body, const char *key, char *value, size_t size)
{
    char pattern [64];
    snprintf (pattern, sizeof pattern, "\"%s\":\"", key);
    *value = 0;
    const char *at = strstr (body, pattern);
    if (at) {
        at += strlen (pattern);
        size_t len = strcspn (at, "\"");
        snprintf (value, size, "%.*s", (int) (len < size ? len : size - 1), at);
    }
}

static void
s_stats (s_conn_t *conn)
{
    char body [4096], auth [512], path [512], text [1024];
    s_json_safe (s_last_authorization, auth, sizeof auth);
    s_json_safe (s_last_path, path, sizeof path);
    s_json_safe (s_last_body, text, sizeof text);
    snprintf (body, sizeof body, "{\"requests\":%llu,\"orders\":%llu,\"connections\":%llu,"
              "\"client_closes\":%llu,\"last_method\":\"%s\",\"last_path\":\"%s\","
              "\"last_authorization\":\"%s\",\"last_body\":\"%s\"}",
              (unsigned long long) s_requests, (unsigned long long) s_orders,
              (unsigned long long) s_connections, (unsigned long long) s_client_closes,
              s_last_method, path, auth, text);
    s_respond (conn, 200, "application/json", body);
}

//  Answers the request at the head of the buffer when it is whole; returns whether it was
static bool
s_handle (s_conn_t *conn)
{
    conn->request [conn->request_len] = 0;
    char *end = strstr (conn->request, "\r\n\r\n");
    if (!end)
        return false;
    size_t head_len = (size_t) (end - conn->request) + 4;
    char length [32], connection [32], delay [32], auth [512], expected [512];
    s_header (conn->request, "Content-Length", length, sizeof length);
    size_t body_len = (size_t) atol (length);
    if (conn->request_len < head_len + body_len)
        return false;
    char method [16] = "", target [512] = "";
    sscanf (conn->request, "%15s %511s", method, target);
    s_header (conn->request, "Connection", connection, sizeof connection);
    s_header (conn->request, "X-Fake-Delay-Ms", delay, sizeof delay);
    s_header (conn->request, "Authorization", auth, sizeof auth);
    s_header (conn->request, "X-Fake-Auth", expected, sizeof expected);
    char body [1024];
    snprintf (body, sizeof body, "%.*s", (int) (body_len < sizeof body ? body_len : sizeof body - 1),
              conn->request + head_len);
    conn->is_closing = strcasecmp (connection, "close") == 0;
    conn->chunk = 0;
    int64_t delay_ms = atol (delay);
    if (strcmp (target, "/stats") != 0) {
        s_requests++;
        snprintf (s_last_method, sizeof s_last_method, "%s", method);
        snprintf (s_last_path, sizeof s_last_path, "%s", target);
        snprintf (s_last_authorization, sizeof s_last_authorization, "%s", auth);
        snprintf (s_last_body, sizeof s_last_body, "%s", body);
    }
    char bearer [600];
    snprintf (bearer, sizeof bearer, "Bearer %s", expected);
    if (*expected && strcmp (auth, bearer) != 0)
        s_respond (conn, 401, "application/json", "{\"error\":\"unauthorized\"}");
    else
    if (strcmp (method, "GET") == 0 && strcmp (target, "/stats") == 0)
        s_stats (conn);
    else
    if (strcmp (method, "GET") == 0 && strncmp (target, "/orders/", 8) == 0) {
        char order [256];
        s_url_decode (target + 8, order, sizeof order);
        s_order (conn, order, &delay_ms);
    }
    else
    if (strcmp (method, "POST") == 0 && strcmp (target, "/orders/query") == 0) {
        char order [256];
        s_body_field (body, "order_no", order, sizeof order);
        if (!*order)
            s_body_field (body, "phone", order, sizeof order);
        s_order (conn, order, &delay_ms);
    }
    else
        s_respond (conn, 404, "application/json", "{\"error\":\"no such route\"}");
    conn->write_at_ms = s_now_ms () + delay_ms;
    memmove (conn->request, conn->request + head_len + body_len,
             conn->request_len - head_len - body_len);
    conn->request_len -= head_len + body_len;
    return true;
}

static void
s_close (int index)
{
    s_conn_t *conn = s_conns [index];
    if (conn->response && conn->sent < conn->response_len)
        s_client_closes++;
    close (conn->fd);
    free (conn->response);
    free (conn);
    s_conns [index] = s_conns [--s_count];
}

//  Writes what is due; returns false when the connection is to be closed
static bool
s_write (s_conn_t *conn, int64_t now)
{
    while (conn->response && now >= conn->write_at_ms) {
        size_t left = conn->response_len - conn->sent;
        size_t len = conn->chunk && conn->chunk < left ? conn->chunk : left;
        ssize_t n = send (conn->fd, conn->response + conn->sent, len, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN;
        conn->sent += (size_t) n;
        if (conn->sent < conn->response_len) {
            if (conn->chunk)
                conn->write_at_ms = now + 2;
            return true;
        }
        free (conn->response);
        conn->response = NULL;
        if (conn->is_closing)
            return false;
        s_handle (conn);                //  A request that came meanwhile
    }
    return true;
}

int
main (int argc, char *argv [])
{
    int port = 0;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp (argv [i], "--port") == 0)
            port = atoi (argv [i + 1]);
    signal (SIGPIPE, SIG_IGN);
    int listener = socket (AF_INET, SOCK_STREAM, 0);
    int on = 1;
    setsockopt (listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons (port),
                                .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    if (bind (listener, (struct sockaddr *) &addr, sizeof addr) || listen (listener, 256)) {
        perror ("fake_business");
        return 1;
    }
    socklen_t addr_len = sizeof addr;
    getsockname (listener, (struct sockaddr *) &addr, &addr_len);
    printf ("%d\n", ntohs (addr.sin_port));
    fflush (stdout);
    struct pollfd fds [S_MAX_CONNECTIONS + 1];
    while (true) {
        int64_t now = s_now_ms ();
        int timeout = -1;
        fds [0] = (struct pollfd) { listener, POLLIN, 0 };
        for (int i = 0; i < s_count; i++) {
            s_conn_t *conn = s_conns [i];
            short events = POLLIN;
            if (conn->response && conn->write_at_ms <= now)
                events |= POLLOUT;
            else
            if (conn->response) {
                int wait = (int) (conn->write_at_ms - now);
                timeout = timeout < 0 || wait < timeout ? wait : timeout;
            }
            fds [i + 1] = (struct pollfd) { conn->fd, events, 0 };
        }
        int count = s_count;
        if (poll (fds, (nfds_t) count + 1, timeout) < 0 && errno != EINTR)
            return 1;
        now = s_now_ms ();
        //  Backwards: a closed connection's slot takes the last one, already visited
        for (int i = count - 1; i >= 0; i--) {
            s_conn_t *conn = s_conns [i];
            bool is_alive = true;
            if (fds [i + 1].revents & (POLLIN | POLLHUP | POLLERR)) {
                size_t room = S_REQUEST_MAX - 1 - conn->request_len;
                ssize_t n = room ? recv (conn->fd, conn->request + conn->request_len, room, 0) : 0;
                if (n <= 0 && !(n < 0 && errno == EAGAIN))
                    is_alive = false;
                else
                if (n > 0) {
                    conn->request_len += (size_t) n;
                    if (!conn->response)
                        s_handle (conn);
                }
            }
            if (is_alive)
                is_alive = s_write (conn, now);
            if (!is_alive)
                s_close (i);
        }
        if ((fds [0].revents & POLLIN) && s_count < S_MAX_CONNECTIONS) {
            int fd = accept (listener, NULL, NULL);
            if (fd >= 0) {
                fcntl (fd, F_SETFL, O_NONBLOCK);
                s_conn_t *conn = calloc (1, sizeof *conn);
                conn->fd = fd;
                s_conns [s_count++] = conn;
                s_connections++;
            }
        }
    }
}
