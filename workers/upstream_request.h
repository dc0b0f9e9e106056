/*  upstream_request.h - what kefu asks an LLM upstream, and how that looks on the wire: the
    request (OpenAI-compatible chat completion or Dify chat message, its timeouts and retries), its
    URL, its JSON body, its HTTP headers, and the form of its URL that logs may show.
    upstream_client.h sends them. */
#ifndef KF_UPSTREAM_REQUEST_H
#define KF_UPSTREAM_REQUEST_H
#include <curl/curl.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum {
    KF_UPSTREAM_OPENAI,         //  POST {base}/chat/completions, OpenAI-compatible SSE
    KF_UPSTREAM_DIFY            //  POST {base}/chat-messages, Dify SSE
} kf_upstream_kind_t;

//  One message of an OpenAI-compatible conversation. Borrowed.
typedef struct {
    const char *role;           //  "user", "assistant", "system"; NULL: "user"
    const char *content;        //  UTF-8
} kf_upstream_message_t;

//  What to ask. Everything is borrowed: functions taking a request copy what they keep. Fill it
//  with kf_upstream_request_defaults first.
typedef struct {
    kf_upstream_kind_t kind;
    const char *base_url;       //  "https://api.deepseek.com/v1", "http://dify.local/v1"; required
    const char *api_key;        //  Sent as "Authorization: Bearer KEY", never logged; NULL: none
    //  OpenAI-compatible
    const char *model;          //  NULL: not sent (some servers have one model)
    double temperature;         //  Negative: not sent (the server's default)
    int max_tokens;             //  0: not sent
    bool include_usage;         //  Send stream_options.include_usage (some servers reject it)
    const char *system_prompt;  //  NULL or "": no system message first
    const kf_upstream_message_t *messages;  //  The conversation, oldest first
    int message_count;
    //  Dify
    const char *query;          //  The customer's message
    const msgpack_object *inputs;   //  The app's input variables (a map); NULL or not a map: {}
    const char *user;           //  End-user id Dify requires; NULL: "kefu"
    const char *conversation_id;    //  Dify's id from an earlier KF_UP_CONVERSATION, NULL: new
    //  Both
    const char *const *headers; //  Extra "Name: value" lines (tests send X-Fake-*)
    int header_count;
    int connect_timeout_ms;     //  TCP (and TLS) connect; 0: none
    int first_byte_timeout_ms;  //  From the start of an attempt to the first body byte; 0: none
    int idle_timeout_ms;        //  Longest silence between body bytes; 0: none
    int total_timeout_ms;       //  From start to the terminal event, retries included; 0: none
    int max_retries;            //  Attempts after the first
} kf_upstream_request_t;

//  Fills `request` with the defaults: OpenAI-compatible, no temperature or max_tokens, connect
//  5 s, first byte 60 s, idle 30 s, total 300 s, 2 retries. Callers set the rest.
void kf_upstream_request_defaults (kf_upstream_request_t *request);

//  The JSON body of `request`: OpenAI {model, messages (system first), stream: true, temperature,
//  max_tokens, stream_options} with the optional ones only when set; Dify {inputs, query,
//  response_mode: "streaming", conversation_id, user}. Strings are escaped, invalid UTF-8 becomes
//  U+FFFD. Returns a heap string the caller frees; *len (when not NULL) is its length. Never NULL.
char *kf_upstream_request_body (const kf_upstream_request_t *request, size_t *len);

//  The URL to POST to: the base URL without trailing slashes, then "/chat/completions" or
//  "/chat-messages". Returns a heap string the caller frees. Asserts on a request without a base.
char *kf_upstream_request_url (const kf_upstream_request_t *request);

//  The HTTP headers: Authorization (when there is a key), Content-Type: application/json,
//  Accept: text/event-stream, an empty Expect (no 100-continue round trip), then the extra ones;
//  a key or an extra line with CR or LF is left out (with a warning that does not show it).
//  Returns a list the caller frees with kf_upstream_headers_free; sets *key to the key inside it
//  (borrowed from the list, for keeping it out of logs) or NULL. Never NULL (aborts on OOM).
struct curl_slist *kf_upstream_request_headers (const kf_upstream_request_t *request, const char **key);

//  Wipes the headers (the key with them) and frees them. NULL is fine.
void kf_upstream_headers_free (struct curl_slist *headers);

//  Writes `url` as logs may show it into `out` (`size` bytes, always NUL-terminated): no user or
//  password, no query (keys hide there too), no fragment.
void kf_upstream_url_for_log (const char *url, char *out, size_t size);
#endif
