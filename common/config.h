/*  config.h - the server configuration for LLM upstreams and business APIs, read by the broker and
    by every worker from the same file on every host: which upstreams there are (an
    OpenAI-compatible server or a Dify app), how to call them, how many streams each may have
    open, which business HTTP APIs answer business_query turns (order status, logistics), and
    which bots use which upstream and API when. API keys stay on the host that reads them: nothing
    here is sent over the wire, and no error message (nor anything this module writes, which is
    nothing) shows a key. The line reader itself is common/ini.h.

    The file is INI, UTF-8 (a byte order mark is allowed, CRLF line ends too):

        # Comments are whole lines starting with # or ; (values may contain both)
        [upstream deepseek]
        kind = openai
        base_url = https://api.deepseek.com/v1
        api_key = ${DEEPSEEK_API_KEY}
        model = deepseek-chat

        [bot *]
        upstream = deepseek
        llm = fallback

    Every line is blank, a comment, a section header or `key = value`. Keys and values are trimmed
    of spaces and tabs; a value is the rest of the line, so a comment cannot follow it. In every
    value, ${NAME} is replaced by the environment variable NAME (letters, digits, _); a variable
    that is unset or empty is an error naming it, never showing a value; $${ stands for a
    literal ${. A value may not be longer than 4096 bytes, before or after that, nor hold control
    characters. Each key may appear once per section and each section once per file.

    [upstream NAME] (NAME: letters, digits, '_', '-', '.', at most 64 bytes):
        kind                    openai (any OpenAI-compatible server) | dify; required
        base_url                http:// or https:// URL; required. openai POSTs to
                                {base}/chat/completions, dify to {base}/chat-messages
        api_key                 sent as a bearer token; required for dify, optional for openai
                                (servers without keys); not empty
        model                   required for openai, ignored for dify
        temperature             0..2; default: not sent (the server's)               openai only
        max_tokens              1..65536; default: not sent                           openai only
        include_usage           true/false/yes/no/1/0; default false                  openai only
        system_prompt           the system message; may be empty (none); default
                                KF_CONFIG_DEFAULT_SYSTEM_PROMPT                       openai only
        max_concurrency         1..100000 streams open at once across all workers (the broker
                                enforces it); default 64
        queue                   0..1000000 chats waiting for a slot before 429 busy; default 256
        connect_timeout_ms      0..3600000, 0: none; default 5000
        first_byte_timeout_ms   0..3600000, 0: none; default 60000
        idle_timeout_ms         0..3600000, 0: none; default 30000
        total_timeout_ms        0..3600000, 0: none; default 300000 (retries included)
        max_retries             0..10; default 2
        breaker_failures        0..1000 consecutive failures that open the circuit breaker,
                                0: never opens; default 5
        breaker_cooldown_ms     1..3600000 open before one probe call; default 30000
        fallback_reply          what the customer reads when the upstream fails; not empty;
                                default KF_CONFIG_DEFAULT_FALLBACK_REPLY
        headers                 extra HTTP headers sent with every call: "Name: value" lines
                                separated by |, at most KF_CONFIG_HEADERS_MAX (a name is letters,
                                digits and -; tests pick the fake upstream's scenario this way)
    (The timeout and retry defaults are kf_upstream_request_defaults's.)

    [business NAME] (NAME as for upstreams): the business's own HTTP API, called by a worker for
    business_query turns (workers/business_stage.h). Templates hold placeholders {name}: the
    entities order_no and phone (from this message or earlier ones of the session), user_id,
    session_id and bot_id; an unknown value is empty. {{ stands for a literal {.
        url                     http:// or https:// URL template; required. Placeholders are
                                URL-encoded: https://api.shop.local/orders/{order_no}
        method                  GET | POST; default GET
        body                    POST only: the JSON body template, placeholders JSON-escaped
                                inside its strings; default KF_CONFIG_DEFAULT_BUSINESS_BODY
        headers                 as for upstreams ("Authorization: Bearer ${SHOP_API_KEY}"); never
                                logged
        timeout_ms              1..60000, the whole call (connect included); default 3000.
                                Keep it under the broker's --job-timeout-ms (30000)
        requires                the entities one of which the call needs before it is made,
                                separated by |: order_no, phone, order_no|phone, or none;
                                default order_no. Without one the bot answers ask_reply
        reply                   the answer template; required. Besides the entities, {a.b.c}
                                is a path into the API's JSON answer (object keys; a number
                                picks an array element: {items.0.name}); strings as they are,
                                numbers and booleans as JSON, objects and arrays as compact
                                JSON. A path that is missing or null renders as the text after
                                a |, when it has one ({logistics.latest|暂无物流信息}), else as
                                nothing. A path that is not an entity is looked up in the
                                answer first.
        not_found_reply         the answer to HTTP 404 (entities only); default
                                KF_CONFIG_DEFAULT_NOT_FOUND_REPLY
        error_reply             the answer to a timeout, another status, a transport error or
                                an answer that is not JSON (entities only); default
                                KF_CONFIG_DEFAULT_ERROR_REPLY
        ask_reply               the answer when no required entity is known; default
                                KF_CONFIG_DEFAULT_ASK_REPLY

    [bot ID] (a bot id of at most 64 bytes, or * for every bot without its own section):
        upstream                an [upstream] of the file or the environment; required unless
                                llm is off
        llm                     off | fallback (when the knowledge base has no answer above its
                                threshold) | always; default fallback, or off in a section that
                                names a business and no upstream
        business                a [business] of the file: the API of business_query turns;
                                default none
        order_pattern           a POSIX extended regular expression for order numbers, matched
                                without regard to case (the number is then upper-cased);
                                default KF_CONFIG_DEFAULT_ORDER_PATTERN. Phone numbers (mainland
                                mobiles, 1[3-9] and 9 digits) are built in.

    The environment alone can configure one upstream: when KEFU_LLM_BASE_URL is set, it defines
    [upstream default] (kind KEFU_LLM_KIND, default openai; api_key KEFU_LLM_API_KEY; model
    KEFU_LLM_MODEL; the rest default) and [bot *] (upstream default, llm KEFU_LLM_MODE, default
    fallback). These values are taken as they are, without ${} expansion; an empty one counts as
    unset. Without a file, setting another KEFU_LLM_* but not KEFU_LLM_BASE_URL is an error (the
    LLM would be off without a word). With a file too, a section of the file replaces the
    environment's section of the same name whole. */
#ifndef KF_CONFIG_H
#define KF_CONFIG_H
#include <stdbool.h>
#include <stddef.h>

#define KF_CONFIG_VALUE_MAX     4096        //  Bytes of one value, before and after expansion
#define KF_CONFIG_NAME_MAX      64          //  Bytes of a section's NAME

//  Defaults of an [upstream]'s broker-side limits
#define KF_CONFIG_DEFAULT_MAX_CONCURRENCY       64
#define KF_CONFIG_DEFAULT_QUEUE                 256
#define KF_CONFIG_DEFAULT_BREAKER_FAILURES      5
#define KF_CONFIG_DEFAULT_BREAKER_COOLDOWN_MS   30000
#define KF_CONFIG_HEADERS_MAX   16          //  Extra header lines of one upstream or business

#define KF_CONFIG_DEFAULT_SYSTEM_PROMPT \
    "你是本店的智能客服。请只根据提供的参考资料，用简洁、礼貌的中文回答顾客的问题；" \
    "参考资料中没有的信息不要编造，请如实说明无法确认，并建议顾客输入“转人工”联系人工客服。"
#define KF_CONFIG_DEFAULT_FALLBACK_REPLY \
    "抱歉，智能助手暂时无法回答，您可以稍后再试或输入“转人工”。"

#define KF_CONFIG_DEFAULT_ORDER_PATTERN "[A-Z]{2,5}-[0-9]{4}-[0-9]{3,8}|[0-9]{11,20}"
#define KF_CONFIG_DEFAULT_BUSINESS_BODY "{\"order_no\":\"{order_no}\",\"phone\":\"{phone}\"}"
#define KF_CONFIG_DEFAULT_ASK_REPLY \
    "请提供您的订单号（例如 ORD-2024-001），我来帮您查询。"
#define KF_CONFIG_DEFAULT_NOT_FOUND_REPLY \
    "抱歉，没有查到相关记录，请核对您提供的订单号或手机号后再试。"
#define KF_CONFIG_DEFAULT_ERROR_REPLY \
    "抱歉，查询系统暂时繁忙，请稍后再试，或输入“转人工”由人工客服为您处理。"

//  Entities a business call may need (kf_business_config_t.requires), one bit each.
#define KF_BUSINESS_NEEDS_ORDER_NO  1u
#define KF_BUSINESS_NEEDS_PHONE     2u

//  The wire format of an upstream; the worker maps it onto kf_upstream_kind_t.
typedef enum {
    KF_LLM_OPENAI,              //  Any OpenAI-compatible chat completions server
    KF_LLM_DIFY                 //  A Dify chat app
} kf_llm_kind_t;

//  When a bot asks its upstream.
typedef enum {
    KF_LLM_OFF,                 //  Never: knowledge-base answers only
    KF_LLM_FALLBACK,            //  When the knowledge base has no answer above its threshold
    KF_LLM_ALWAYS               //  For every chat message
} kf_llm_mode_t;

typedef struct _kf_config_t kf_config_t;

//  One [upstream] section. Strings are owned by the config and live as long as it; none is NULL
//  unless said. The fields from kind to max_retries map one to one onto kf_upstream_request_t's
//  (which the worker fills from them), the rest are the broker's.
typedef struct {
    const char *name;           //  The section's NAME
    kf_llm_kind_t kind;
    const char *base_url;
    const char *api_key;        //  NULL: none. Never log it
    const char *model;          //  NULL when not given (dify)
    double temperature;         //  Negative: not sent
    int max_tokens;             //  0: not sent
    bool include_usage;
    const char *system_prompt;  //  "": no system message
    int connect_timeout_ms;     //  0: none, as are the other timeouts
    int first_byte_timeout_ms;
    int idle_timeout_ms;
    int total_timeout_ms;
    int max_retries;
    int max_concurrency;        //  Streams open at once across all workers
    int queue;                  //  Chats waiting for one of those before 429 busy
    int breaker_failures;       //  Consecutive failures that open the breaker; 0: never
    int breaker_cooldown_ms;    //  Open this long, then one probe
    const char *fallback_reply;
    const char *const *headers; //  Extra "Name: value" lines (no CR/LF), NULL when none
    int header_count;
} kf_upstream_config_t;

//  One [business] section. Strings are owned by the config and live as long as it.
typedef struct {
    const char *name;           //  The section's NAME
    const char *url;            //  URL template; may hold keys: log it through kf_upstream_url_for_log
    bool is_post;               //  POST (with body) rather than GET
    const char *body;           //  JSON body template (POST)
    const char *const *headers; //  "Name: value" lines (no CR/LF), NULL when none. Never log them
    int header_count;
    int timeout_ms;             //  The whole call
    unsigned requires;          //  KF_BUSINESS_NEEDS_* bits, any one suffices; 0: none needed
    const char *reply;          //  Templates, none NULL
    const char *not_found_reply;
    const char *error_reply;
    const char *ask_reply;
} kf_business_config_t;

//  One [bot] section.
typedef struct {
    const char *bot_id;         //  The section's ID, "*" for the default
    kf_llm_mode_t llm;
    const kf_upstream_config_t *upstream;   //  NULL only when llm is off and none was named
    const kf_business_config_t *business;   //  NULL: business_query has no API to call
    const char *order_pattern;  //  POSIX ERE for order numbers (checked at load), never NULL
} kf_bot_llm_t;

//  Reads the configuration from the file at `path` (NULL: the environment only) and the KEFU_LLM_*
//  environment variables. Returns a new config, empty (every bot off) when neither names an
//  upstream. On any error returns NULL and writes one line into `err` (`errlen` bytes, always
//  NUL-terminated when errlen > 0; err may be NULL): "PATH:LINE: what" for a line of the file,
//  "PATH: what" for the file as a whole, "KEFU_LLM_X: what" for the environment. Unknown keys
//  and sections, bad or out-of-range values, duplicates, missing required keys, a bot naming an
//  unknown upstream and unset variables are all errors. Logs nothing.
kf_config_t *kf_config_load (const char *path, char *err, size_t errlen);

//  Destroys the config, wiping its API keys, and nulls *self_p. NULL or *self_p NULL is fine.
void kf_config_destroy (kf_config_t **self_p);

//  The upstream named `name`, or NULL.
const kf_upstream_config_t *kf_config_upstream (const kf_config_t *self, const char *name);

//  The upstreams in the order of the environment's, then the file's sections: for i from 0 while
//  kf_config_upstream_at returns one (the broker sets up a slot pool and a breaker per upstream).
size_t kf_config_upstream_count (const kf_config_t *self);
const kf_upstream_config_t *kf_config_upstream_at (const kf_config_t *self, size_t index);

//  The settings of bot `bot_id`: its own section, else [bot *], else NULL. NULL, or llm
//  KF_LLM_OFF, means the bot does not use an LLM; NULL, or business NULL, that it calls no
//  business API. A NULL bot_id looks up [bot *] only.
const kf_bot_llm_t *kf_config_bot (const kf_config_t *self, const char *bot_id);

//  The [business] section named `name`, or NULL.
const kf_business_config_t *kf_config_business (const kf_config_t *self, const char *name);

//  How many [business] sections there are (a worker makes its business client when there is one).
size_t kf_config_business_count (const kf_config_t *self);

//  "openai", "dify"; "off", "fallback", "always" (for logs).
const char *kf_config_kind_name (kf_llm_kind_t kind);
const char *kf_config_mode_name (kf_llm_mode_t mode);
#endif
