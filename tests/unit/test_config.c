/*  test_config.c - the LLM upstream and business API configuration: a full file, defaults,
    ${NAME} expansion, the KEFU_LLM_* shortcut alone and merged with a file, [bot *] fallback,
    [business] sections and the bots naming them, every error with its line number, and an API
    key that shows in no error and no log line. */
#include "common/config.h"
#include "common/log.h"
#include "testutil.h"
#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>

#define SECRET "sk-TOPSECRET-4f1c9e"

static char s_dir [256];
static char s_path [300];
static char s_err [512];

static const char *s_env_names [] = {
    "KEFU_LLM_BASE_URL", "KEFU_LLM_API_KEY", "KEFU_LLM_MODEL", "KEFU_LLM_KIND", "KEFU_LLM_MODE",
    "TEST_CONFIG_KEY", "TEST_CONFIG_HOST", "TEST_CONFIG_EMPTY", "TEST_CONFIG_UNSET"
};

static void
s_clear_env (void)
{
    for (size_t i = 0; i < sizeof s_env_names / sizeof s_env_names [0]; i++)
        unsetenv (s_env_names [i]);
}

//  Writes `text` to the test file and loads it; returns the config (or NULL with s_err set)
static kf_config_t *
s_load_text (const char *text)
{
    FILE *file = fopen (s_path, "w");
    CHECK (file);
    fputs (text, file);
    fclose (file);
    s_err [0] = 0;
    kf_config_t *config = kf_config_load (s_path, s_err, sizeof s_err);
    CHECK (config || s_err [0]);
    //  The key is never in an error, whatever went wrong
    CHECK (!strstr (s_err, SECRET));
    CHECK (!strstr (s_err, "TOPSECRET"));
    return config;
}

//  Loads `text`, which must fail with "PATH:" + `want` (a format)
static void
s_expect_error (const char *text, const char *want, ...)
{
    char expected [512], full [900];
    va_list args;
    va_start (args, want);
    vsnprintf (expected, sizeof expected, want, args);
    va_end (args);
    snprintf (full, sizeof full, "%s:%s", s_path, expected);
    kf_config_t *config = s_load_text (text);
    if (config)
        fprintf (stderr, "loaded, but expected the error: %s\n", full);
    CHECK (!config);
    CHECK_STR (s_err, full);
}

static const char *s_full =
    "\xEF\xBB\xBF# kefu.conf\r\n"
    "; both comment styles\n"
    "\n"
    "[upstream deepseek]\n"
    "kind = openai\n"
    "base_url = https://api.deepseek.com/v1\n"
    "api_key = ${TEST_CONFIG_KEY}\n"
    "model = deepseek-chat\n"
    "temperature = 0.3\n"
    "max_tokens = 1024\n"
    "include_usage = yes\n"
    "system_prompt = 你是本店的智能客服，只根据参考资料回答。#1; 不要编造\n"
    "max_concurrency = 32\n"
    "queue = 100\n"
    "connect_timeout_ms = 4000\n"
    "first_byte_timeout_ms = 20000\n"
    "idle_timeout_ms = 15000\n"
    "total_timeout_ms = 90000\n"
    "max_retries = 1\n"
    "breaker_failures = 3\n"
    "breaker_cooldown_ms = 10000\n"
    "fallback_reply = 抱歉，请稍后再试。\n"
    "\n"
    "\t[ upstream   dify-app ]  \n"
    "kind=dify\n"
    "base_url=http://${TEST_CONFIG_HOST}/v1\n"
    "api_key=app-$${literal}\n"
    "\n"
    "[bot default]\n"
    "upstream = deepseek\n"
    "llm = always\n"
    "[bot 售后]\n"
    "upstream = dify-app\n"
    "[bot quiet]\n"
    "llm = off\n"
    "[bot *]\n"
    "upstream = deepseek\n"
    "llm = fallback\n";

static void
s_test_full (void)
{
    setenv ("TEST_CONFIG_KEY", SECRET, 1);
    setenv ("TEST_CONFIG_HOST", "dify.local:8080", 1);
    kf_config_t *config = s_load_text (s_full);
    if (!config)
        fprintf (stderr, "%s\n", s_err);
    CHECK (config);
    CHECK_INT (kf_config_upstream_count (config), 2);
    const kf_upstream_config_t *up = kf_config_upstream_at (config, 0);
    CHECK (up == kf_config_upstream (config, "deepseek"));
    CHECK_STR (up->name, "deepseek");
    CHECK_INT (up->kind, KF_LLM_OPENAI);
    CHECK_STR (up->base_url, "https://api.deepseek.com/v1");
    CHECK_STR (up->api_key, SECRET);
    CHECK_STR (up->model, "deepseek-chat");
    CHECK (up->temperature > 0.2999 && up->temperature < 0.3001);
    CHECK_INT (up->max_tokens, 1024);
    CHECK (up->include_usage);
    CHECK_STR (up->system_prompt, "你是本店的智能客服，只根据参考资料回答。#1; 不要编造");
    CHECK_INT (up->max_concurrency, 32);
    CHECK_INT (up->queue, 100);
    CHECK_INT (up->connect_timeout_ms, 4000);
    CHECK_INT (up->first_byte_timeout_ms, 20000);
    CHECK_INT (up->idle_timeout_ms, 15000);
    CHECK_INT (up->total_timeout_ms, 90000);
    CHECK_INT (up->max_retries, 1);
    CHECK_INT (up->breaker_failures, 3);
    CHECK_INT (up->breaker_cooldown_ms, 10000);
    CHECK_STR (up->fallback_reply, "抱歉，请稍后再试。");

    //  The second upstream, with its defaults
    const kf_upstream_config_t *dify = kf_config_upstream_at (config, 1);
    CHECK (dify == kf_config_upstream (config, "dify-app"));
    CHECK (kf_config_upstream_at (config, 2) == NULL);
    CHECK (kf_config_upstream (config, "nope") == NULL);
    CHECK_INT (dify->kind, KF_LLM_DIFY);
    CHECK_STR (dify->base_url, "http://dify.local:8080/v1");
    CHECK_STR (dify->api_key, "app-${literal}");
    CHECK (dify->model == NULL);
    CHECK (dify->temperature < 0);
    CHECK_INT (dify->max_tokens, 0);
    CHECK (!dify->include_usage);
    CHECK_STR (dify->system_prompt, KF_CONFIG_DEFAULT_SYSTEM_PROMPT);
    CHECK_INT (dify->max_concurrency, 64);
    CHECK_INT (dify->queue, 256);
    CHECK_INT (dify->connect_timeout_ms, 5000);
    CHECK_INT (dify->first_byte_timeout_ms, 60000);
    CHECK_INT (dify->idle_timeout_ms, 30000);
    CHECK_INT (dify->total_timeout_ms, 300000);
    CHECK_INT (dify->max_retries, 2);
    CHECK_INT (dify->breaker_failures, 5);
    CHECK_INT (dify->breaker_cooldown_ms, 30000);
    CHECK_STR (dify->fallback_reply, KF_CONFIG_DEFAULT_FALLBACK_REPLY);

    //  Bots: their own section, else *
    const kf_bot_llm_t *bot = kf_config_bot (config, "default");
    CHECK (bot);
    CHECK_STR (bot->bot_id, "default");
    CHECK_INT (bot->llm, KF_LLM_ALWAYS);
    CHECK (bot->upstream == up);
    bot = kf_config_bot (config, "售后");
    CHECK (bot && bot->upstream == dify);
    CHECK_INT (bot->llm, KF_LLM_FALLBACK);          //  The default
    bot = kf_config_bot (config, "quiet");
    CHECK (bot && bot->upstream == NULL);
    CHECK_INT (bot->llm, KF_LLM_OFF);
    bot = kf_config_bot (config, "someone-else");
    CHECK (bot);
    CHECK_STR (bot->bot_id, "*");
    CHECK (bot->upstream == up);
    CHECK_INT (bot->llm, KF_LLM_FALLBACK);
    CHECK (kf_config_bot (config, NULL) == bot);
    CHECK_STR (kf_config_kind_name (dify->kind), "dify");
    CHECK_STR (kf_config_mode_name (bot->llm), "fallback");
    kf_config_destroy (&config);
    CHECK (config == NULL);
    kf_config_destroy (&config);
    kf_config_destroy (NULL);

    //  Without [bot *], a bot without a section has no LLM; booleans, numbers at their limits
    config = s_load_text ("[upstream local]\nkind = openai\nbase_url = HTTP://127.0.0.1:11434/v1\n"
                          "model = qwen2.5\ninclude_usage = FALSE\ntemperature = 2\n"
                          "max_tokens = 65536\nqueue = 0\nbreaker_failures = 0\nsystem_prompt =\n"
                          "connect_timeout_ms = 0\n[bot a]\nupstream = local\n");
    CHECK (config);
    up = kf_config_upstream (config, "local");
    CHECK (up && up->api_key == NULL);
    CHECK (!up->include_usage);
    CHECK (up->temperature == 2);
    CHECK_INT (up->max_tokens, 65536);
    CHECK_INT (up->queue, 0);
    CHECK_INT (up->breaker_failures, 0);
    CHECK_INT (up->connect_timeout_ms, 0);
    CHECK_STR (up->system_prompt, "");
    CHECK (kf_config_bot (config, "a") && kf_config_bot (config, "a")->upstream == up);
    CHECK (kf_config_bot (config, "b") == NULL);
    CHECK (kf_config_bot (config, NULL) == NULL);
    kf_config_destroy (&config);

    //  An empty file, comments only: no upstream, every bot off
    config = s_load_text ("# nothing yet\n\n");
    CHECK (config);
    CHECK_INT (kf_config_upstream_count (config), 0);
    CHECK (kf_config_bot (config, "default") == NULL);
    kf_config_destroy (&config);
    s_clear_env ();
}

static void
s_test_env_only (void)
{
    s_clear_env ();
    //  Nothing set: an empty config
    kf_config_t *config = kf_config_load (NULL, s_err, sizeof s_err);
    CHECK (config);
    CHECK_INT (kf_config_upstream_count (config), 0);
    CHECK (kf_config_bot (config, "default") == NULL);
    kf_config_destroy (&config);

    setenv ("KEFU_LLM_BASE_URL", "https://api.deepseek.com/v1", 1);
    setenv ("KEFU_LLM_API_KEY", SECRET, 1);
    setenv ("KEFU_LLM_MODEL", "deepseek-chat", 1);
    config = kf_config_load (NULL, s_err, sizeof s_err);
    CHECK (config);
    CHECK_INT (kf_config_upstream_count (config), 1);
    const kf_upstream_config_t *up = kf_config_upstream (config, "default");
    CHECK (up);
    CHECK_INT (up->kind, KF_LLM_OPENAI);
    CHECK_STR (up->base_url, "https://api.deepseek.com/v1");
    CHECK_STR (up->api_key, SECRET);
    CHECK_STR (up->model, "deepseek-chat");
    CHECK_INT (up->max_concurrency, 64);
    const kf_bot_llm_t *bot = kf_config_bot (config, "any-bot");
    CHECK (bot && bot->upstream == up);
    CHECK_STR (bot->bot_id, "*");
    CHECK_INT (bot->llm, KF_LLM_FALLBACK);
    kf_config_destroy (&config);

    //  Values from the environment are taken as they are
    setenv ("KEFU_LLM_KIND", "dify", 1);
    setenv ("KEFU_LLM_MODE", "always", 1);
    setenv ("KEFU_LLM_API_KEY", "app-${NOT_EXPANDED}", 1);
    unsetenv ("KEFU_LLM_MODEL");
    config = kf_config_load (NULL, s_err, sizeof s_err);
    CHECK (config);
    up = kf_config_upstream (config, "default");
    CHECK_INT (up->kind, KF_LLM_DIFY);
    CHECK_STR (up->api_key, "app-${NOT_EXPANDED}");
    CHECK_INT (kf_config_bot (config, "x")->llm, KF_LLM_ALWAYS);
    kf_config_destroy (&config);

    //  An OpenAI-compatible server without keys; an empty variable counts as unset
    s_clear_env ();
    setenv ("KEFU_LLM_BASE_URL", "http://127.0.0.1:8000/v1", 1);
    setenv ("KEFU_LLM_MODEL", "qwen", 1);
    setenv ("KEFU_LLM_API_KEY", "", 1);
    config = kf_config_load (NULL, s_err, sizeof s_err);
    CHECK (config);
    CHECK (kf_config_upstream (config, "default")->api_key == NULL);
    kf_config_destroy (&config);

    //  Errors name the variable
    struct {
        const char *name, *value, *want;
    } cases [] = {
        { "KEFU_LLM_MODEL", NULL,
          "KEFU_LLM_MODEL: not set, and KEFU_LLM_KIND openai needs a model" },
        { "KEFU_LLM_KIND", "claude", "KEFU_LLM_KIND: kind must be openai or dify, not 'claude'" },
        { "KEFU_LLM_MODE", "sometimes",
          "KEFU_LLM_MODE: llm must be off, fallback or always, not 'sometimes'" },
        { "KEFU_LLM_BASE_URL", "ftp://x",
          "KEFU_LLM_BASE_URL: base_url must be an http:// or https:// URL without spaces" },
        { "KEFU_LLM_KIND", "dify",
          "KEFU_LLM_API_KEY: not set, and KEFU_LLM_KIND dify needs the app's API key" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        s_clear_env ();
        setenv ("KEFU_LLM_BASE_URL", "https://api.example.com/v1", 1);
        setenv ("KEFU_LLM_MODEL", "m", 1);
        if (strcmp (cases [i].name, "KEFU_LLM_KIND") == 0 && strcmp (cases [i].value, "dify") == 0)
            ;       //  No key
        else
            setenv ("KEFU_LLM_API_KEY", SECRET, 1);
        if (cases [i].value)
            setenv (cases [i].name, cases [i].value, 1);
        else
            unsetenv (cases [i].name);
        config = kf_config_load (NULL, s_err, sizeof s_err);
        CHECK (!config);
        CHECK_STR (s_err, cases [i].want);
        CHECK (!strstr (s_err, SECRET));
    }
    //  A key with a line break in it, from the environment: rejected, not shown
    s_clear_env ();
    setenv ("KEFU_LLM_BASE_URL", "https://api.example.com/v1", 1);
    setenv ("KEFU_LLM_MODEL", "m", 1);
    setenv ("KEFU_LLM_API_KEY", SECRET "\r\nX-Evil: 1", 1);
    CHECK (!kf_config_load (NULL, s_err, sizeof s_err));
    CHECK_STR (s_err, "KEFU_LLM_API_KEY: the value of 'api_key' holds a control character");

    //  Without a file, another KEFU_LLM_* without the base URL is a mistake; with one, the file
    //  may name it
    s_clear_env ();
    setenv ("KEFU_LLM_API_KEY", SECRET, 1);
    CHECK (!kf_config_load (NULL, s_err, sizeof s_err));
    CHECK_STR (s_err, "KEFU_LLM_API_KEY: set, but KEFU_LLM_BASE_URL is not");
    kf_config_t *with_file = s_load_text ("[upstream x]\nkind = dify\nbase_url = https://d/v1\n"
                                          "api_key = ${KEFU_LLM_API_KEY}\n");
    CHECK (with_file);
    CHECK_STR (kf_config_upstream (with_file, "x")->api_key, SECRET);
    CHECK (kf_config_upstream (with_file, "default") == NULL);
    kf_config_destroy (&with_file);

    //  A NULL or zero-size error buffer is fine
    CHECK (!kf_config_load (NULL, NULL, 0));
    CHECK (!kf_config_load (NULL, s_err, 0));
    s_clear_env ();
}

static void
s_test_merge (void)
{
    s_clear_env ();
    setenv ("KEFU_LLM_BASE_URL", "https://env.example.com/v1", 1);
    setenv ("KEFU_LLM_API_KEY", SECRET, 1);
    setenv ("KEFU_LLM_MODEL", "env-model", 1);

    //  The file adds an upstream and a bot; the environment's stay
    kf_config_t *config = s_load_text ("[upstream other]\nkind = openai\nbase_url = https://o/v1\n"
                                       "model = o\n[bot sales]\nupstream = other\nllm = always\n");
    CHECK (config);
    CHECK_INT (kf_config_upstream_count (config), 2);
    CHECK_STR (kf_config_upstream_at (config, 0)->name, "default");
    CHECK_STR (kf_config_upstream_at (config, 1)->name, "other");
    const kf_upstream_config_t *env = kf_config_upstream (config, "default");
    CHECK_STR (env->model, "env-model");
    CHECK (kf_config_bot (config, "sales")->upstream == kf_config_upstream (config, "other"));
    CHECK (kf_config_bot (config, "support")->upstream == env);
    kf_config_destroy (&config);

    //  The file's [upstream default] and [bot *] replace the environment's whole
    config = s_load_text ("[bot *]\nupstream = default\nllm = always\n"
                          "[upstream default]\nkind = openai\nbase_url = https://file/v1\n"
                          "model = file-model\nmax_concurrency = 8\n");
    CHECK (config);
    CHECK_INT (kf_config_upstream_count (config), 1);
    const kf_upstream_config_t *up = kf_config_upstream (config, "default");
    CHECK_STR (up->base_url, "https://file/v1");
    CHECK_STR (up->model, "file-model");
    CHECK (up->api_key == NULL);                //  Not merged key by key
    CHECK_INT (up->max_concurrency, 8);
    const kf_bot_llm_t *bot = kf_config_bot (config, "support");
    CHECK (bot && bot->upstream == up);
    CHECK_INT (bot->llm, KF_LLM_ALWAYS);
    kf_config_destroy (&config);

    //  A file section may be replaced only once: the second is a duplicate
    s_expect_error ("[upstream default]\nkind = openai\nbase_url = https://a/v1\nmodel = m\n"
                    "[upstream default]\n",
                    "5: duplicate section [upstream default] (first at line 1)");
    //  The environment's bot may point at a file's upstream of the same name only
    config = s_load_text ("[bot x]\nllm = off\n");
    CHECK (config);
    CHECK (kf_config_bot (config, "x")->upstream == NULL);
    CHECK (kf_config_bot (config, "y")->upstream == kf_config_upstream (config, "default"));
    kf_config_destroy (&config);
    s_clear_env ();
}

//  A valid upstream section to put errors after
#define S_OK_UPSTREAM "[upstream u]\nkind = openai\nbase_url = https://a/v1\nmodel = m\n" \
                      "api_key = " SECRET "\n"

static void
s_test_errors (void)
{
    s_clear_env ();
    setenv ("TEST_CONFIG_EMPTY", "", 1);
    //  Lines
    s_expect_error (S_OK_UPSTREAM "modle = x\n", "6: unknown key 'modle' in [upstream u]");
    s_expect_error (S_OK_UPSTREAM "[bot b]\nmodel = x\n", "7: unknown key 'model' in [bot b]");
    s_expect_error (S_OK_UPSTREAM "model = n\n", "6: duplicate key 'model' in [upstream u]");
    s_expect_error (S_OK_UPSTREAM "api_key = x\n", "6: duplicate key 'api_key' in [upstream u]");
    s_expect_error ("kind = openai\n", "1: key 'kind' outside any section");
    s_expect_error (S_OK_UPSTREAM SECRET "\n",
                    "6: expected 'key = value', a [section] or a comment");
    s_expect_error (S_OK_UPSTREAM " = " SECRET "\n", "6: no key before '='");
    s_expect_error ("\n[server]\n", "2: unknown section type 'server' (upstream, business or bot)");
    s_expect_error ("[upstream]\n", "1: section [upstream] needs a name");
    s_expect_error ("[bot]\n", "1: section [bot] needs a name");
    s_expect_error ("[upstream a b]\n",
                    "1: bad upstream name 'a b' (letters, digits, '_', '-', '.', at most 64 "
                    "bytes)");
    s_expect_error ("[bot default]  # the default bot\n",
                    "1: a section header must end with ']' (comments go on lines of their own)");
    s_expect_error ("[upstream x\n", "1: a section header must end with ']'");
    s_expect_error (S_OK_UPSTREAM "\n\n[upstream u]\n",
                    "8: duplicate section [upstream u] (first at line 1)");
    s_expect_error ("[bot b]\nllm = off\n[bot b]\n",
                    "3: duplicate section [bot b] (first at line 1)");
    s_expect_error ("[bot *]\nllm = off\n[bot  * ]\n",
                    "3: duplicate section [bot *] (first at line 1)");
    s_expect_error ("[bot b]\nllm = off\n\xff\n", "3: the line is not valid UTF-8");
    s_expect_error ("[bot b]\nllm = off\x01\n", "2: control character in the line");
    //  Values
    s_expect_error ("[upstream u]\nkind = claude\n",
                    "2: kind must be openai or dify, not 'claude'");
    s_expect_error ("[upstream u]\nkind = openai   # or dify\n",
                    "2: kind must be openai or dify, not 'openai   # or dify' "
                    "(comments go on lines of their own)");
    s_expect_error ("[upstream u]\ntemperature = 2.5\n",
                    "2: temperature must be from 0 to 2, not 2.5");
    s_expect_error ("[upstream u]\ntemperature = -0.1\n",
                    "2: temperature must be from 0 to 2, not -0.1");
    s_expect_error ("[upstream u]\ntemperature = nan\n",
                    "2: temperature must be a number, not 'nan'");
    s_expect_error ("[upstream u]\ntemperature = 0x1\n",
                    "2: temperature must be a number, not '0x1'");
    s_expect_error ("[upstream u]\ntemperature = .5\n",
                    "2: temperature must be a number, not '.5'");
    s_expect_error ("[upstream u]\nmax_tokens = 0\n",
                    "2: max_tokens must be from 1 to 65536, not 0");
    s_expect_error ("[upstream u]\nmax_tokens = 65537\n",
                    "2: max_tokens must be from 1 to 65536, not 65537");
    s_expect_error ("[upstream u]\nmax_tokens = 1.5\n",
                    "2: max_tokens must be a whole number, not '1.5'");
    s_expect_error ("[upstream u]\nmax_tokens = 1k\n",
                    "2: max_tokens must be a whole number, not '1k'");
    s_expect_error ("[upstream u]\nmax_tokens =\n", "2: max_tokens must be a whole number, not ''");
    s_expect_error ("[upstream u]\nqueue = 99999999999999999999\n",
                    "2: queue must be from 0 to 1000000, not 99999999999999999999");
    s_expect_error ("[upstream u]\nmax_concurrency = 0\n",
                    "2: max_concurrency must be from 1 to 100000, not 0");
    s_expect_error ("[upstream u]\nmax_retries = 11\n",
                    "2: max_retries must be from 0 to 10, not 11");
    s_expect_error ("[upstream u]\nidle_timeout_ms = -1\n",
                    "2: idle_timeout_ms must be from 0 to 3600000, not -1");
    s_expect_error ("[upstream u]\nbreaker_cooldown_ms = 0\n",
                    "2: breaker_cooldown_ms must be from 1 to 3600000, not 0");
    s_expect_error ("[upstream u]\ninclude_usage = maybe\n",
                    "2: include_usage must be true or false (yes/no, 1/0), not 'maybe'");
    s_expect_error ("[bot b]\nllm = sometimes\n",
                    "2: llm must be off, fallback or always, not 'sometimes'");
    s_expect_error ("[upstream u]\nbase_url = ftp://a/v1\n",
                    "2: base_url must be an http:// or https:// URL without spaces");
    s_expect_error ("[upstream u]\nbase_url = https://" SECRET "@host/v1 x\n",
                    "2: base_url must be an http:// or https:// URL without spaces");
    s_expect_error ("[upstream u]\nmodel =\n", "2: model must not be empty");
    s_expect_error ("[upstream u]\nfallback_reply =\n", "2: fallback_reply must not be empty");
    s_expect_error ("[upstream u]\napi_key =\n",
                    "2: api_key is empty (leave it out for a server without keys)");
    s_expect_error ("[bot b]\nupstream =\n", "2: upstream must not be empty");
    //  Expansion
    s_expect_error ("[upstream u]\n\napi_key = ${TEST_CONFIG_UNSET}\n",
                    "3: environment variable TEST_CONFIG_UNSET is not set (in 'api_key')");
    s_expect_error ("[upstream u]\napi_key = ${TEST_CONFIG_EMPTY}\n",
                    "2: environment variable TEST_CONFIG_EMPTY is empty (in 'api_key')");
    s_expect_error ("[upstream u]\napi_key = ${" SECRET "}\n",
                    "2: bad environment variable name in the value of 'api_key' (letters, digits "
                    "and '_')");
    s_expect_error ("[upstream u]\napi_key = " SECRET "${TEST\n",
                    "2: unterminated ${ in the value of 'api_key'");
    //  Value length: 4096 bytes is fine, 4097 is not, before or after expansion
    char big [KF_CONFIG_VALUE_MAX + 200];
    strcpy (big, S_OK_UPSTREAM "system_prompt = ");
    size_t at = strlen (big);
    memset (big + at, 'x', KF_CONFIG_VALUE_MAX);
    strcpy (big + at + KF_CONFIG_VALUE_MAX, "\n");
    kf_config_t *config = s_load_text (big);
    CHECK (config);
    CHECK_INT (strlen (kf_config_upstream (config, "u")->system_prompt), KF_CONFIG_VALUE_MAX);
    kf_config_destroy (&config);
    strcpy (big + at + KF_CONFIG_VALUE_MAX, "x\n");
    s_expect_error (big, "6: the value of 'system_prompt' is longer than 4096 bytes");
    //  A long key, the secret at its start
    strcpy (big, "[upstream u]\napi_key = " SECRET);
    at = strlen (big);
    memset (big + at, 'k', KF_CONFIG_VALUE_MAX);
    strcpy (big + at + KF_CONFIG_VALUE_MAX, "\n");
    s_expect_error (big, "2: the value of 'api_key' is longer than 4096 bytes");
    char *long_value = kf_malloc (KF_CONFIG_VALUE_MAX);
    memset (long_value, 'v', KF_CONFIG_VALUE_MAX - 1);
    long_value [KF_CONFIG_VALUE_MAX - 1] = 0;
    setenv ("TEST_CONFIG_KEY", long_value, 1);
    free (long_value);
    s_expect_error ("[upstream u]\napi_key = ${TEST_CONFIG_KEY}xy\n",
                    "2: the value of 'api_key' is longer than 4096 bytes after expanding "
                    "variables");
    //  What a variable brings in is checked too
    setenv ("TEST_CONFIG_KEY", SECRET "\nX-Evil: 1", 1);
    s_expect_error ("[upstream u]\napi_key = ${TEST_CONFIG_KEY}\n",
                    "2: the value of 'api_key' holds a control character");
    setenv ("TEST_CONFIG_KEY", SECRET "\xc3", 1);
    s_expect_error ("[upstream u]\napi_key = ${TEST_CONFIG_KEY}\n",
                    "2: the value of 'api_key' is not valid UTF-8");
    //  Required keys, at the section's line
    s_expect_error ("# c\n[upstream u]\nbase_url = https://a/v1\nmodel = m\n",
                    "2: [upstream u] needs kind (openai or dify)");
    s_expect_error ("[upstream u]\nkind = openai\nmodel = m\n", "1: [upstream u] needs base_url");
    s_expect_error ("[upstream u]\nkind = openai\nbase_url = https://a/v1\n",
                    "1: [upstream u] needs model (kind openai)");
    s_expect_error ("[upstream u]\nkind = dify\nbase_url = https://a/v1\n",
                    "1: [upstream u] needs api_key (kind dify)");
    s_expect_error (S_OK_UPSTREAM "[bot b]\nllm = always\n",
                    "6: [bot b] needs upstream (or llm = off)");
    //  A bot naming an unknown upstream, at the upstream line (sections may come in any order)
    s_expect_error ("[bot b]\nllm = always\nupstream = deepsek\n" S_OK_UPSTREAM,
                    "3: [bot b] names unknown upstream 'deepsek'");
    s_expect_error ("[bot b]\nllm = off\nupstream = nowhere\n",
                    "3: [bot b] names unknown upstream 'nowhere'");
    config = s_load_text ("[bot b]\nupstream = u\n" S_OK_UPSTREAM);
    CHECK (config);
    CHECK (kf_config_bot (config, "b")->upstream == kf_config_upstream (config, "u"));
    kf_config_destroy (&config);

    //  The file itself
    char missing [320];
    snprintf (missing, sizeof missing, "%s/no-such-file.conf", s_dir);
    CHECK (!kf_config_load (missing, s_err, sizeof s_err));
    char want [400];
    snprintf (want, sizeof want, "%s: cannot open: No such file or directory", missing);
    CHECK_STR (s_err, want);
    CHECK (!kf_config_load (s_dir, s_err, sizeof s_err));
    snprintf (want, sizeof want, "%s: cannot read: Is a directory", s_dir);
    CHECK_STR (s_err, want);
    //  A NUL byte in a line
    FILE *file = fopen (s_path, "w");
    fwrite ("[bot b]\nllm = off\0x\n", 1, 20, file);
    fclose (file);
    CHECK (!kf_config_load (s_path, s_err, sizeof s_err));
    snprintf (want, sizeof want, "%s:2: NUL byte in the line", s_path);
    CHECK_STR (s_err, want);
    //  A short buffer still gets a terminated prefix
    char tiny [8];
    CHECK (!kf_config_load (missing, tiny, sizeof tiny));
    CHECK_INT (strlen (tiny), 7);
    s_clear_env ();
}

//  [business] sections, the bot keys naming them, their defaults and errors
static void
s_test_business (void)
{
    s_clear_env ();
    setenv ("TEST_CONFIG_KEY", SECRET, 1);
    kf_config_t *config = s_load_text (
        "[business orders]\n"
        "url = https://shop.example.com/api/orders/{order_no}?key=${TEST_CONFIG_KEY}\n"
        "headers = Authorization: Bearer ${TEST_CONFIG_KEY} | X-Shop: 1\n"
        "timeout_ms = 1500\n"
        "requires = order_no|phone\n"
        "reply = 订单 {order_no} 状态：{status}；物流：{logistics.company|暂无} {items.0.name}\n"
        "not_found_reply = 没有找到订单 {order_no}\n"
        "\n"
        "[business member]\n"
        "url = http://10.0.0.5:8080/members\n"
        "method = POST\n"
        "body = {\"user\":\"{user_id}\",\"bot\":\"{bot_id}\",\"session\":\"{session_id}\"}\n"
        "requires = none\n"
        "reply = 您的会员等级：{level}\n"
        "error_reply = 会员系统维护中\n"
        "ask_reply = 请告诉我您的手机号\n"
        "\n"
        "[bot *]\n"
        "business = orders\n"
        "\n"
        "[bot vip]\n"
        "business = member\n"
        "order_pattern = VIP[0-9]{6}\n"
        "llm = off\n");
    CHECK (config);
    CHECK_INT (kf_config_business_count (config), 2);
    CHECK_INT (kf_config_upstream_count (config), 0);
    const kf_business_config_t *orders = kf_config_business (config, "orders");
    CHECK (orders);
    CHECK_STR (orders->name, "orders");
    CHECK (strstr (orders->url, SECRET));
    CHECK (!orders->is_post);
    CHECK_INT (orders->header_count, 2);
    CHECK_STR (orders->headers [0], "Authorization: Bearer " SECRET);
    CHECK_STR (orders->headers [1], "X-Shop: 1");
    CHECK_INT (orders->timeout_ms, 1500);
    CHECK_INT (orders->requires, KF_BUSINESS_NEEDS_ORDER_NO | KF_BUSINESS_NEEDS_PHONE);
    CHECK (strstr (orders->reply, "{logistics.company|暂无}"));
    CHECK_STR (orders->not_found_reply, "没有找到订单 {order_no}");
    CHECK_STR (orders->error_reply, KF_CONFIG_DEFAULT_ERROR_REPLY);
    CHECK_STR (orders->ask_reply, KF_CONFIG_DEFAULT_ASK_REPLY);
    const kf_business_config_t *member = kf_config_business (config, "member");
    CHECK (member && member->is_post);
    CHECK_INT (member->requires, 0);
    CHECK_INT (member->timeout_ms, 3000);
    CHECK_INT (member->header_count, 0);
    CHECK_STR (member->body, "{\"user\":\"{user_id}\",\"bot\":\"{bot_id}\",\"session\":\"{session_id}\"}");
    CHECK_STR (member->ask_reply, "请告诉我您的手机号");
    CHECK (!kf_config_business (config, "nope"));
    CHECK (!kf_config_business (config, NULL));
    //  A bot section with only a business needs no llm = off; another bot falls back to [bot *]
    const kf_bot_llm_t *bot = kf_config_bot (config, "shop");
    CHECK (bot && bot->business == orders && bot->llm == KF_LLM_OFF && !bot->upstream);
    CHECK_STR (bot->order_pattern, KF_CONFIG_DEFAULT_ORDER_PATTERN);
    bot = kf_config_bot (config, "vip");
    CHECK (bot && bot->business == member);
    CHECK_STR (bot->order_pattern, "VIP[0-9]{6}");
    kf_config_destroy (&config);

    //  An LLM bot without a business; POST's default body
    config = s_load_text (S_OK_UPSTREAM "[bot b]\nupstream = u\n"
                          "[business p]\nurl = http://x/q\nmethod = POST\nreply = {a}\n");
    CHECK (config);
    bot = kf_config_bot (config, "b");
    CHECK (bot && !bot->business && bot->llm == KF_LLM_FALLBACK);
    CHECK_STR (kf_config_business (config, "p")->body, KF_CONFIG_DEFAULT_BUSINESS_BODY);
    kf_config_destroy (&config);

    //  Errors
#define S_BIZ "[business o]\nurl = http://shop/orders/{order_no}\nreply = {status}\n"
    s_expect_error ("[business o]\nreply = x\n", "1: [business o] needs url");
    s_expect_error ("\n[business o]\nurl = http://a/b\n",
                    "2: [business o] needs reply (the answer template)");
    s_expect_error ("[business o]\nurl = ftp://a/{order_no}\n",
                    "2: url must be an http:// or https:// URL without spaces");
    s_expect_error ("[business o]\nurl = http://a/{order}\n",
                    "2: unknown placeholder {order} (order_no, phone, user_id, session_id, bot_id)");
    s_expect_error (S_BIZ "method = PUT\n", "4: method must be GET or POST, not 'PUT'");
    s_expect_error (S_BIZ "method = POST\nbody = {\"q\":\"{status}\"}\n",
                    "5: unknown placeholder {status} (order_no, phone, user_id, session_id, bot_id)");
    s_expect_error (S_BIZ "body = {}\n", "1: [business o] has a body but method GET (method = POST)");
    s_expect_error (S_BIZ "timeout_ms = 0\n", "4: timeout_ms must be from 1 to 60000, not 0");
    s_expect_error (S_BIZ "requires = order\n",
                    "4: requires must be order_no, phone, order_no|phone or none, not 'order'");
    s_expect_error (S_BIZ "headers = Authorization Bearer " SECRET "\n",
                    "4: headers must be \"Name: value\" lines separated by |");
    s_expect_error (S_BIZ "reply = again\n", "4: duplicate key 'reply' in [business o]");
    s_expect_error (S_BIZ "model = m\n", "4: unknown key 'model' in [business o]");
    s_expect_error (S_BIZ "[business o]\n", "4: duplicate section [business o] (first at line 1)");
    s_expect_error ("[business]\n", "1: section [business] needs a name");
    s_expect_error ("[business a/b]\n",
                    "1: bad business name 'a/b' (letters, digits, '_', '-', '.', at most 64 bytes)");
    s_expect_error (S_BIZ "\n[bot b]\nbusiness = orders\n", "6: [bot b] names unknown business 'orders'");
    s_expect_error (S_BIZ "[bot b]\nbusiness = o\norder_pattern = ORD-([0-9]+\n",
                    "6: order_pattern is not a POSIX extended regular expression: "
                    "Unmatched ( or \\(");
    s_expect_error (S_BIZ "[bot b]\nbusiness = o\nllm = fallback\n",
                    "4: [bot b] needs upstream (or llm = off)");
    s_expect_error ("[bot b]\n", "1: [bot b] needs upstream (or llm = off)");
    s_expect_error (S_BIZ "reply_x = ${TEST_CONFIG_UNSET}\n", "4: unknown key 'reply_x' in [business o]");
    s_expect_error (S_BIZ "error_reply = ${TEST_CONFIG_UNSET}\n",
                    "4: environment variable TEST_CONFIG_UNSET is not set (in 'error_reply')");
#undef S_BIZ
    s_clear_env ();
}

//  Everything written to stderr during the tests goes to a file, searched for the key at the end
//  and shown (a failed CHECK shows there too)
static char s_log_path [320];
static int s_saved_stderr = -1;

static void
s_restore_stderr (void)
{
    if (s_saved_stderr < 0)
        return;
    fflush (stderr);
    dup2 (s_saved_stderr, 2);
    close (s_saved_stderr);
    s_saved_stderr = -1;
    FILE *log = fopen (s_log_path, "r");
    if (!log)
        return;
    char line [1024];
    while (fgets (line, sizeof line, log))
        fputs (line, stderr);
    fclose (log);
}

//  A value that came from the environment is never shown expanded in an error, whatever the key
//  (numbers, choices, references to other sections); an order pattern whose repetitions multiply
//  past what regcomp can build in reasonable memory is refused
static void
s_test_secrets_in_errors (void)
{
    setenv ("TEST_CONFIG_KEY", SECRET, 1);
    const char *texts [] = {
        "[upstream x]\nkind = openai\nbase_url = http://127.0.0.1:1/v1\nmodel = m\n"
        "max_tokens = ${TEST_CONFIG_KEY}\n",
        "[upstream x]\nkind = ${TEST_CONFIG_KEY}\nbase_url = http://127.0.0.1:1/v1\n",
        "[upstream x]\nkind = openai\nbase_url = http://127.0.0.1:1/v1\nmodel = m\n"
        "include_usage = ${TEST_CONFIG_KEY}\n",
        "[bot *]\nupstream = ${TEST_CONFIG_KEY}\n",
        "[bot *]\nllm = off\nbusiness = ${TEST_CONFIG_KEY}\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts [0]; i++) {
        kf_config_t *config = s_load_text (texts [i]);      //  Checks SECRET is not in s_err
        CHECK (!config);
        CHECK (strstr (s_err, "${TEST_CONFIG_KEY}") || !strstr (s_err, "TEST_CONFIG_KEY="));
    }
    unsetenv ("TEST_CONFIG_KEY");
    kf_config_t *config = s_load_text ("[bot *]\nllm = off\n"
                                       "order_pattern = ((a{1,50}){1,50}){1,50}\n");
    CHECK (!config);
    CHECK (strstr (s_err, "order_pattern"));
    config = s_load_text ("[bot *]\nllm = off\norder_pattern = (a)\\1\n");
    CHECK (!config);
}

int
main (int argc, char *argv [])
{
    (void) argc;
    (void) argv;
    const char *tmp = getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp";
    snprintf (s_dir, sizeof s_dir, "%s/kefu-test-config-XXXXXX", tmp);
    CHECK (mkdtemp (s_dir));
    snprintf (s_path, sizeof s_path, "%s/kefu.conf", s_dir);
    snprintf (s_log_path, sizeof s_log_path, "%s/stderr.log", s_dir);
    int log_fd = open (s_log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK (log_fd >= 0);
    fflush (stderr);
    s_saved_stderr = dup (2);
    CHECK (s_saved_stderr >= 0 && dup2 (log_fd, 2) == 2);
    close (log_fd);
    atexit (s_restore_stderr);
    kf_log_set_level (KF_LOG_DEBUG);

    s_test_full ();
    s_test_env_only ();
    s_test_secrets_in_errors ();
    s_test_merge ();
    s_test_errors ();
    s_test_business ();

    s_restore_stderr ();
    FILE *log = fopen (s_log_path, "r");
    CHECK (log);
    char line [1024];
    while (fgets (line, sizeof line, log))
        CHECK (!strstr (line, "TOPSECRET"));
    fclose (log);
    unlink (s_log_path);
    unlink (s_path);
    rmdir (s_dir);
    TEST_PASS ("test_config");
    return 0;
}
