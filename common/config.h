/*  config.h - the server configuration for LLM upstreams, read by the broker and by every worker
    from the same file on every host: which upstreams there are (an OpenAI-compatible server or a
    Dify app), how to call them, how many streams each may have open, and which bots use which
    upstream when. API keys stay on the host that reads them: nothing here is sent over the wire,
    and no error message (nor anything this module writes, which is nothing) shows a key.

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

    [bot ID] (a bot id of at most 64 bytes, or * for every bot without its own section):
        upstream                an [upstream] of the file or the environment; required unless
                                llm is off
        llm                     off | fallback (when the knowledge base has no answer above its
                                threshold) | always; default fallback

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
#define KF_CONFIG_HEADERS_MAX   16          //  Extra header lines of one upstream

#define KF_CONFIG_DEFAULT_SYSTEM_PROMPT \
    "你是本店的智能客服。请只根据提供的参考资料，用简洁、礼貌的中文回答顾客的问题；" \
    "参考资料中没有的信息不要编造，请如实说明无法确认，并建议顾客输入“转人工”联系人工客服。"
#define KF_CONFIG_DEFAULT_FALLBACK_REPLY \
    "抱歉，智能助手暂时无法回答，您可以稍后再试或输入“转人工”。"

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

//  One [bot] section.
typedef struct {
    const char *bot_id;         //  The section's ID, "*" for the default
    kf_llm_mode_t llm;
    const kf_upstream_config_t *upstream;   //  NULL only when llm is off and none was named
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

//  The LLM settings of bot `bot_id`: its own section, else [bot *], else NULL. NULL, or llm
//  KF_LLM_OFF, means the bot does not use an LLM. A NULL bot_id looks up [bot *] only.
const kf_bot_llm_t *kf_config_bot (const kf_config_t *self, const char *bot_id);

//  "openai", "dify"; "off", "fallback", "always" (for logs).
const char *kf_config_kind_name (kf_llm_kind_t kind);
const char *kf_config_mode_name (kf_llm_mode_t mode);
#endif
