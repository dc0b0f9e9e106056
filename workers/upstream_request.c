/*  upstream_request.c - LLM upstream requests on the wire: JSON bodies (packed as msgpack, rendered
    by kefu's one JSON writer, so escaping and invalid UTF-8 are handled in one place), URLs,
    headers, and URLs fit for logs. */
#include "workers/upstream_request.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
kf_upstream_request_defaults (kf_upstream_request_t *request)
{
    memset (request, 0, sizeof *request);
    request->kind = KF_UPSTREAM_OPENAI;
    request->temperature = -1;
    request->connect_timeout_ms = 5000;
    request->first_byte_timeout_ms = 60000;     //  Reasoning models think before the first token
    request->idle_timeout_ms = 30000;           //  Dify pings every 10 s
    request->total_timeout_ms = 300000;
    request->max_retries = 2;
}

static void
s_pack_openai (msgpack_packer *pk, const kf_upstream_request_t *request)
{
    bool has_system = request->system_prompt && *request->system_prompt;
    msgpack_pack_map (pk, 2 + (request->model != NULL) + (request->temperature >= 0)
                        + (request->max_tokens > 0) + request->include_usage);
    if (request->model)
        kf_mp_pack_kv_str (pk, "model", request->model);
    kf_mp_pack_cstr (pk, "messages");
    msgpack_pack_array (pk, has_system + request->message_count);
    if (has_system) {
        msgpack_pack_map (pk, 2);
        kf_mp_pack_kv_str (pk, "role", "system");
        kf_mp_pack_kv_str (pk, "content", request->system_prompt);
    }
    for (int i = 0; i < request->message_count; i++) {
        const kf_upstream_message_t *message = &request->messages [i];
        msgpack_pack_map (pk, 2);
        kf_mp_pack_kv_str (pk, "role", message->role ? message->role : "user");
        kf_mp_pack_kv_str (pk, "content", message->content ? message->content : "");
    }
    kf_mp_pack_kv_bool (pk, "stream", true);
    if (request->temperature >= 0)
        kf_mp_pack_kv_double (pk, "temperature", request->temperature);
    if (request->max_tokens > 0)
        kf_mp_pack_kv_int (pk, "max_tokens", request->max_tokens);
    if (request->include_usage) {
        kf_mp_pack_cstr (pk, "stream_options");
        msgpack_pack_map (pk, 1);
        kf_mp_pack_kv_bool (pk, "include_usage", true);
    }
}

static void
s_pack_dify (msgpack_packer *pk, const kf_upstream_request_t *request)
{
    msgpack_pack_map (pk, 5);
    kf_mp_pack_cstr (pk, "inputs");
    if (request->inputs && request->inputs->type == MSGPACK_OBJECT_MAP)
        msgpack_pack_object (pk, *request->inputs);
    else
        msgpack_pack_map (pk, 0);
    kf_mp_pack_kv_str (pk, "query", request->query ? request->query : "");
    kf_mp_pack_kv_str (pk, "response_mode", "streaming");
    kf_mp_pack_kv_str (pk, "conversation_id", request->conversation_id ? request->conversation_id : "");
    kf_mp_pack_kv_str (pk, "user", request->user ? request->user : "kefu");
}

char *
kf_upstream_request_body (const kf_upstream_request_t *request, size_t *len)
{
    //  Packed as msgpack, rendered by the one JSON writer kefu has (escaping, invalid UTF-8)
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    if (request->kind == KF_UPSTREAM_DIFY)
        s_pack_dify (&pk, request);
    else
        s_pack_openai (&pk, request);
    msgpack_unpacked unpacked;
    bool is_ok = kf_mp_unpack_one (buffer.data, buffer.size, &unpacked);
    assert (is_ok);                     //  We packed it: only a nesting past 32 levels could fail
    (void) is_ok;
    char *json = kf_json_from_msgpack (&unpacked.data);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&buffer);
    if (len)
        *len = strlen (json);
    return json;
}

char *
kf_upstream_request_url (const kf_upstream_request_t *request)
{
    assert (request->base_url);
    const char *path = request->kind == KF_UPSTREAM_DIFY ? "/chat-messages" : "/chat/completions";
    size_t base_len = strlen (request->base_url);
    while (base_len && request->base_url [base_len - 1] == '/')
        base_len--;
    char *url = kf_malloc (base_len + strlen (path) + 1);
    memcpy (url, request->base_url, base_len);
    strcpy (url + base_len, path);
    return url;
}

void
kf_upstream_url_for_log (const char *url, char *out, size_t size)
{
    const char *scheme_end = strstr (url, "://");
    const char *authority = scheme_end ? scheme_end + 3 : url;
    size_t authority_len = strcspn (authority, "/?#");
    const char *at = memchr (authority, '@', authority_len);
    const char *host = at ? at + 1 : authority;
    snprintf (out, size, "%.*s%.*s", (int) (authority - url), url,
              (int) strcspn (host, "?#"), host);
}

struct curl_slist *
kf_upstream_request_headers (const kf_upstream_request_t *request, const char **key)
{
    struct curl_slist *headers = NULL;
    *key = NULL;
    if (request->api_key && strpbrk (request->api_key, "\r\n"))
        kf_warn ("upstream: the API key has a line break, not sent");
    else
    if (request->api_key && *request->api_key) {
        char *line = kf_malloc (strlen (request->api_key) + 32);
        sprintf (line, "Authorization: Bearer %s", request->api_key);
        headers = curl_slist_append (headers, line);
        explicit_bzero (line, strlen (line));
        free (line);
        if (!headers)
            kf_oom ();
        *key = headers->data + strlen ("Authorization: Bearer ");
    }
    const char *fixed [] = { "Content-Type: application/json", "Accept: text/event-stream", "Expect:" };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed [0]; i++)
        if (!(headers = curl_slist_append (headers, fixed [i])))
            kf_oom ();
    for (int i = 0; i < request->header_count; i++) {
        if (strpbrk (request->headers [i], "\r\n")) {
            kf_warn ("upstream: extra header %d has a line break, not sent", i);
            continue;
        }
        if (!(headers = curl_slist_append (headers, request->headers [i])))
            kf_oom ();
    }
    return headers;
}

void
kf_upstream_headers_free (struct curl_slist *headers)
{
    for (struct curl_slist *node = headers; node; node = node->next)
        explicit_bzero (node->data, strlen (node->data));
    curl_slist_free_all (headers);
}
