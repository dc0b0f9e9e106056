/*  test_upstream_request.c - LLM upstream requests on the wire: JSON bodies (escaping, optional
    fields, Dify's inputs, invalid UTF-8), URLs, headers (the key, no line-break injection) and
    the URL form logs show (no user, password or query). */
#include "common/json_codec.h"
#include "common/mpack.h"
#include "workers/upstream_request.h"
#include "testutil.h"

//  The JSON bodies: escaping, optional fields, Dify's inputs
static void
s_check_bodies (void)
{
    kf_upstream_message_t messages [] = { { "user", "引号\"反斜杠\\换行\n制表\t控制\x01" } };
    kf_upstream_request_t request;
    kf_upstream_request_defaults (&request);
    request.base_url = "http://x";
    request.model = "deepseek-chat";
    request.temperature = 0.5;
    request.max_tokens = 100;
    request.include_usage = true;
    request.system_prompt = "你是客服";
    request.messages = messages;
    request.message_count = 1;
    size_t len;
    char *json = kf_upstream_request_body (&request, &len);
    CHECK_STR (json, "{\"model\":\"deepseek-chat\",\"messages\":[{\"role\":\"system\",\"content\":\"你是客服\"},"
                     "{\"role\":\"user\",\"content\":\"引号\\\"反斜杠\\\\换行\\n制表\\t控制\\u0001\"}],"
                     "\"stream\":true,\"temperature\":0.5,\"max_tokens\":100,"
                     "\"stream_options\":{\"include_usage\":true}}");
    CHECK_INT (len, strlen (json));
    free (json);
    //  Without the optional fields: no model, temperature, max_tokens or stream_options
    request.model = NULL;
    request.temperature = -1;
    request.max_tokens = 0;
    request.include_usage = false;
    request.system_prompt = NULL;
    json = kf_upstream_request_body (&request, NULL);
    CHECK (!strstr (json, "stream_options") && !strstr (json, "model") && !strstr (json, "temperature"));
    CHECK (strstr (json, "\"stream\":true"));
    free (json);
    //  Dify: inputs as given, the conversation to continue
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    kf_mp_pack_kv_str (&pk, "城市", "上海");
    msgpack_unpacked inputs;
    CHECK (kf_mp_unpack_one (buffer.data, buffer.size, &inputs));
    request.kind = KF_UPSTREAM_DIFY;
    request.inputs = &inputs.data;
    request.query = "退货\"吗\"";
    request.conversation_id = "conv-9";
    json = kf_upstream_request_body (&request, NULL);
    CHECK_STR (json, "{\"inputs\":{\"城市\":\"上海\"},\"query\":\"退货\\\"吗\\\"\",\"response_mode\":\"streaming\","
                     "\"conversation_id\":\"conv-9\",\"user\":\"kefu\"}");
    free (json);
    msgpack_unpacked_destroy (&inputs);
    msgpack_sbuffer_destroy (&buffer);
}

//  A body renders as JSON that parses back
static void
s_check_parses (void)
{
    kf_upstream_message_t messages [] = { { NULL, "bad \xff byte" }, { "assistant", NULL } };
    kf_upstream_request_t request;
    kf_upstream_request_defaults (&request);
    request.base_url = "http://x";
    request.messages = messages;
    request.message_count = 2;
    char *json = kf_upstream_request_body (&request, NULL);
    CHECK_STR (json, "{\"messages\":[{\"role\":\"user\",\"content\":\"bad \xEF\xBF\xBD byte\"},"
                     "{\"role\":\"assistant\",\"content\":\"\"}],\"stream\":true}");
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    CHECK_INT (kf_json_to_msgpack (json, strlen (json), &pk, NULL, 0), 0);
    msgpack_sbuffer_destroy (&buffer);
    free (json);
}

static void
s_check_urls (void)
{
    kf_upstream_request_t request;
    kf_upstream_request_defaults (&request);
    request.base_url = "https://api.deepseek.com/v1//";
    char *url = kf_upstream_request_url (&request);
    CHECK_STR (url, "https://api.deepseek.com/v1/chat/completions");
    free (url);
    request.kind = KF_UPSTREAM_DIFY;
    request.base_url = "http://dify.local/v1";
    url = kf_upstream_request_url (&request);
    CHECK_STR (url, "http://dify.local/v1/chat-messages");
    free (url);
    char out [128];
    kf_upstream_url_for_log ("https://user:sk-secret@api.example.com:8443/v1/chat/completions?key=sk-2#x",
                             out, sizeof out);
    CHECK_STR (out, "https://api.example.com:8443/v1/chat/completions");
    kf_upstream_url_for_log ("http://host/v1?api-key=sk-3", out, sizeof out);
    CHECK_STR (out, "http://host/v1");
    kf_upstream_url_for_log ("host:80/a@b/c", out, sizeof out);  //  An @ in the path is no user
    CHECK_STR (out, "host:80/a@b/c");
    kf_upstream_url_for_log ("http://very-long-host.example.com/path", out, 12);
    CHECK_STR (out, "http://very");
}

//  Joins the header lines with "|"
static void
s_join (struct curl_slist *headers, char *out, size_t size)
{
    *out = 0;
    for (struct curl_slist *node = headers; node; node = node->next)
        snprintf (out + strlen (out), size - strlen (out), "%s%s", *out ? "|" : "", node->data);
}

static void
s_check_headers (void)
{
    const char *extra [] = { "X-Fake-Scenario: ok", "X-Evil: a\r\nX-Injected: 1" };
    kf_upstream_request_t request;
    kf_upstream_request_defaults (&request);
    request.base_url = "http://x";
    request.api_key = "sk-abc";
    request.headers = extra;
    request.header_count = 2;
    const char *key;
    struct curl_slist *headers = kf_upstream_request_headers (&request, &key);
    char joined [512];
    s_join (headers, joined, sizeof joined);
    CHECK_STR (joined, "Authorization: Bearer sk-abc|Content-Type: application/json|"
                       "Accept: text/event-stream|Expect:|X-Fake-Scenario: ok");
    CHECK_STR (key, "sk-abc");
    kf_upstream_headers_free (headers);
    request.api_key = "sk-abc\r\nX-Injected: 1";
    headers = kf_upstream_request_headers (&request, &key);
    s_join (headers, joined, sizeof joined);
    CHECK (!strstr (joined, "Injected") && !strstr (joined, "Authorization"));
    CHECK (key == NULL);
    kf_upstream_headers_free (headers);
    request.api_key = NULL;
    headers = kf_upstream_request_headers (&request, &key);
    CHECK (key == NULL);
    kf_upstream_headers_free (headers);
}

int
main (void)
{
    s_check_bodies ();
    s_check_parses ();
    s_check_urls ();
    s_check_headers ();
    TEST_PASS ("test_upstream_request");
    return 0;
}
