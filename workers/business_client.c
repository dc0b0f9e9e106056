/*  business_client.c - business API calls: one libcurl transfer each on the shared poller, the
    answer buffered, then parsed and turned into a reply. */
#include "workers/business_client.h"
#include "common/dict.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include "workers/http_poller.h"
#include "workers/upstream_request.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    kf_business_client_t *client;
    uint64_t handle;
    const kf_business_config_t *api;
    CURL *easy;
    struct curl_slist *headers; //  May hold a key: wiped before it is freed
    char *url;
    char *body;                 //  POST
    char *vars [5];             //  Copies of the entities: order_no, phone, user_id, session_id, bot_id
    kf_business_vars_t view;    //  Pointing into vars
    char *answer;               //  The response body so far
    size_t answer_len;
    bool is_too_large;          //  It passed KF_BUSINESS_ANSWER_MAX: the transfer was aborted
} s_call_t;

struct _kf_business_client_t {
    kf_http_poller_t *poller;
    kf_dict_t *calls;           //  By handle (8 raw bytes)
    int max_calls;
    uint64_t next_handle;
    kf_business_client_fn *fn;
    void *arg;
};

static char *
s_dup_or_null (const char *s)
{
    return s && *s ? kf_strdup (s) : NULL;
}

static void
s_call_free (s_call_t *call)
{
    if (call->easy) {
        kf_http_poller_remove (call->client->poller, call->easy);
        curl_easy_cleanup (call->easy);
    }
    kf_upstream_headers_free (call->headers);
    if (call->url)
        explicit_bzero (call->url, strlen (call->url));
    free (call->url);
    free (call->body);
    for (int i = 0; i < 5; i++)
        free (call->vars [i]);
    free (call->answer);
    free (call);
}

//  CURLOPT_WRITEFUNCTION: keeps the answer; returning less than `len` aborts the transfer
static size_t
s_on_body (char *data, size_t size, size_t count, void *arg)
{
    s_call_t *call = arg;
    size_t len = size * count;
    if (call->answer_len + len > KF_BUSINESS_ANSWER_MAX) {
        call->is_too_large = true;
        return 0;
    }
    call->answer = kf_realloc (call->answer, call->answer_len + len + 1);
    memcpy (call->answer + call->answer_len, data, len);
    call->answer_len += len;
    call->answer [call->answer_len] = 0;
    return len;
}

//  The request headers: Accept, Content-Type for a body, no 100-continue, then the section's
static struct curl_slist *
s_headers (const kf_business_config_t *api)
{
    struct curl_slist *list = curl_slist_append (NULL, "Accept: application/json");
    if (api->is_post)
        list = curl_slist_append (list, "Content-Type: application/json");
    list = curl_slist_append (list, "Expect:");
    for (int i = 0; i < api->header_count; i++)
        list = curl_slist_append (list, api->headers [i]);
    if (!list)
        kf_oom ();
    return list;
}

static CURL *
s_easy_new (s_call_t *call)
{
    const kf_business_config_t *api = call->api;
    CURL *easy = curl_easy_init ();
    if (!easy)
        kf_oom ();
    curl_easy_setopt (easy, CURLOPT_URL, call->url);
    curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER, call->headers);
    if (api->is_post) {
        curl_easy_setopt (easy, CURLOPT_POSTFIELDS, call->body);
        curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen (call->body));
    }
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, call);
    curl_easy_setopt (easy, CURLOPT_PRIVATE, call);
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    //  The whole call, connection and name resolution included, enforced by libcurl's timer
    curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, (long) api->timeout_ms);
    curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, (long) api->timeout_ms);
    //  Removing a transfer still resolving would otherwise wait for the resolver thread
    curl_easy_setopt (easy, CURLOPT_QUICK_EXIT, 1L);
    curl_easy_setopt (easy, CURLOPT_ACCEPT_ENCODING, "");   //  Any libcurl can decode
    return easy;
}

//  The result of a transfer that ended with `result`: status, code and the reply, delivered
static void
s_finish (kf_business_client_t *self, s_call_t *call, CURLcode result)
{
    long status = 0;
    curl_easy_getinfo (call->easy, CURLINFO_RESPONSE_CODE, &status);
    kf_business_result_t out = { .status = KF_BUSINESS_FAILED, .http_status = (int) status };
    char code [32] = "transport_error";
    const char *template = call->api->error_reply;
    msgpack_unpacked answer;
    msgpack_unpacked_init (&answer);
    bool has_answer = false;
    if (result == CURLE_OPERATION_TIMEDOUT) {
        out.status = KF_BUSINESS_TIMEOUT;
        snprintf (code, sizeof code, "timeout");
    }
    else
    if (call->is_too_large)
        snprintf (code, sizeof code, "too_large");
    else
    if (result == CURLE_COULDNT_CONNECT || result == CURLE_COULDNT_RESOLVE_HOST)
        snprintf (code, sizeof code, "connect_failed");
    else
    if (result == CURLE_OK && status == 404) {
        out.status = KF_BUSINESS_NOT_FOUND;
        snprintf (code, sizeof code, "not_found");
        template = call->api->not_found_reply;
    }
    else
    if (result == CURLE_OK && (status < 200 || status > 299))
        snprintf (code, sizeof code, "http_%ld", status);
    else
    if (result == CURLE_OK) {
        msgpack_unpacked_destroy (&answer);
        has_answer = kf_json_unpack_len (call->answer, call->answer_len, &answer);
        if (has_answer) {
            out.status = KF_BUSINESS_ANSWERED;
            snprintf (code, sizeof code, "ok");
            template = call->api->reply;
        }
        else
            snprintf (code, sizeof code, "bad_json");
    }
    out.code = code;
    char *reply = kf_business_reply (template, has_answer ? &answer.data : NULL, &call->view);
    out.reply = reply;
    if (out.status == KF_BUSINESS_TIMEOUT || out.status == KF_BUSINESS_FAILED)
        kf_warn ("business %s: call failed: %s (HTTP %ld)", call->api->name, code, status);
    else
        kf_debug ("business %s: %s (HTTP %ld, %zu bytes)", call->api->name, code, status,
                  call->answer_len);
    uint64_t handle = call->handle;
    kf_dict_remove (self->calls, (const char *) &handle, sizeof handle);
    self->fn (self->arg, handle, &out);
    free (reply);
    msgpack_unpacked_destroy (&answer);
    s_call_free (call);
}

//  kf_http_poller_done_fn
static void
s_on_done (void *arg, CURL *easy, CURLcode result)
{
    kf_business_client_t *self = arg;
    char *private;
    curl_easy_getinfo (easy, CURLINFO_PRIVATE, &private);
    s_finish (self, (s_call_t *) private, result);
}

kf_business_client_t *
kf_business_client_new (int max_calls, kf_business_client_fn *fn, void *arg)
{
    assert (max_calls > 0 && fn);
    kf_business_client_t *self = kf_calloc (1, sizeof *self);
    self->poller = kf_http_poller_new ("business", s_on_done, self);
    self->calls = kf_dict_new ();
    self->max_calls = max_calls;
    self->fn = fn;
    self->arg = arg;
    return self;
}

void
kf_business_client_destroy (kf_business_client_t **self_p)
{
    kf_business_client_t *self = *self_p;
    if (!self)
        return;
    size_t cursor;
    void *value;
    while (cursor = 0, kf_dict_next (self->calls, &cursor, NULL, &value)) {
        s_call_t *call = value;
        kf_dict_remove (self->calls, (const char *) &call->handle, sizeof call->handle);
        s_call_free (call);
    }
    kf_dict_destroy (&self->calls);
    kf_http_poller_destroy (&self->poller);
    free (self);
    *self_p = NULL;
}

uint64_t
kf_business_client_start (kf_business_client_t *self, const kf_business_config_t *api,
                          const kf_business_vars_t *vars)
{
    assert (self && api && vars);
    if (kf_business_client_is_full (self))
        return 0;
    s_call_t *call = kf_calloc (1, sizeof *call);
    call->client = self;
    call->handle = ++self->next_handle;
    call->api = api;
    const char *values [5] = { vars->order_no, vars->phone, vars->user_id, vars->session_id,
                               vars->bot_id };
    for (int i = 0; i < 5; i++)
        call->vars [i] = s_dup_or_null (values [i]);
    call->view = (kf_business_vars_t) { call->vars [0], call->vars [1], call->vars [2],
                                        call->vars [3], call->vars [4] };
    call->url = kf_business_url (api, &call->view);
    if (api->is_post)
        call->body = kf_business_body (api, &call->view);
    call->headers = s_headers (api);
    call->easy = s_easy_new (call);
    kf_http_poller_add (self->poller, call->easy);
    kf_dict_put (self->calls, (const char *) &call->handle, sizeof call->handle, call);
    char url [256];
    kf_upstream_url_for_log (call->url, url, sizeof url);
    kf_debug ("business %s: %s %s", api->name, api->is_post ? "POST" : "GET", url);
    return call->handle;
}

void
kf_business_client_cancel (kf_business_client_t *self, uint64_t handle)
{
    s_call_t *call = kf_dict_remove (self->calls, (const char *) &handle, sizeof handle);
    if (call)
        s_call_free (call);
}

bool
kf_business_client_is_full (kf_business_client_t *self)
{
    return (int) kf_dict_size (self->calls) >= self->max_calls;
}

int
kf_business_client_calls (kf_business_client_t *self)
{
    return (int) kf_dict_size (self->calls);
}

int
kf_business_client_pollitem_count (kf_business_client_t *self)
{
    return kf_http_poller_pollitem_count (self->poller);
}

int
kf_business_client_pollitems (kf_business_client_t *self, zmq_pollitem_t *items, int max)
{
    return kf_http_poller_pollitems (self->poller, items, max);
}

void
kf_business_client_on_poll (kf_business_client_t *self, const zmq_pollitem_t *items, int count)
{
    kf_http_poller_on_poll (self->poller, items, count);
}

long
kf_business_client_timeout_ms (kf_business_client_t *self, int64_t now_us)
{
    return kf_http_poller_timeout_ms (self->poller, now_us);
}

void
kf_business_client_on_timer (kf_business_client_t *self, int64_t now_us)
{
    kf_http_poller_on_timer (self->poller, now_us);
}
