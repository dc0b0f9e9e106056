/*  fuzz_config.c - libFuzzer target for the configuration reader (common/ini.h, common/config.c).
    The input is the file: it is written to a temporary file (the reader takes a path) and loaded.
    ${KEFU_FUZZ_KEY} expands to a secret that no error message may show; KEFU_LLM_* are unset so
    only the file counts. A config that loads is walked: every upstream, the bots "default" and
    "*" with their order pattern run over a message, and each business's templates filled. */
#include "common/config.h"
#include "common/utf8.h"
#include "workers/business_reply.h"
#include "workers/entities.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_SECRET "sk-fuzz-0123456789abcdef"

static void
s_require (bool ok, const char *what)
{
    if (!ok) {
        fprintf (stderr, "fuzz_config: invariant failed: %s\n", what);
        abort ();
    }
}

//  The temporary file every input is written to, made once and removed at exit
static char s_path [] = "/tmp/kefu-fuzz-config-XXXXXX";
static int s_fd = -1;

static void
s_remove (void)
{
    unlink (s_path);
}

static void
s_setup (void)
{
    s_fd = mkstemp (s_path);
    s_require (s_fd >= 0, "a temporary file");
    atexit (s_remove);
    setenv ("KEFU_FUZZ_KEY", S_SECRET, 1);
    setenv ("KEFU_FUZZ_EMPTY", "", 1);
    unsetenv ("KEFU_LLM_BASE_URL");
    unsetenv ("KEFU_LLM_API_KEY");
    unsetenv ("KEFU_LLM_MODEL");
    unsetenv ("KEFU_LLM_KIND");
    unsetenv ("KEFU_LLM_MODE");
}

static void
s_walk_bot (const kf_bot_llm_t *bot)
{
    if (!bot)
        return;
    s_require (bot->order_pattern && (bot->llm == KF_LLM_OFF || bot->upstream),
               "a bot has a pattern, and an upstream unless off");
    static const char message [] = "订单号 ＯＲＤ－２０２４－００１，电话 138-1234-5678，单号 20240101123456";
    kf_entity_rules_t rules = { bot->order_pattern };
    kf_entities_t found;
    s_require (kf_entities_extract (&rules, message, sizeof message - 1, &found) >= 0,
               "a pattern checked at load compiles");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (s_fd < 0)
        s_setup ();
    s_require (ftruncate (s_fd, 0) == 0 && pwrite (s_fd, data, size, 0) == (ssize_t) size,
               "the input written");
    char err [512] = "";
    kf_config_t *config = kf_config_load (s_path, err, sizeof err);
    if (!config) {
        size_t len = strlen (err);
        s_require (len > 0 && len < sizeof err, "a failed load says why");
        s_require (memmem (data, size, S_SECRET, strlen (S_SECRET)) || !strstr (err, S_SECRET),
                   "no error shows an expanded secret");
        return 0;
    }
    for (size_t i = 0; i < kf_config_upstream_count (config); i++) {
        const kf_upstream_config_t *upstream = kf_config_upstream_at (config, i);
        s_require (upstream && upstream->name && upstream->base_url && upstream->system_prompt
                   && upstream->fallback_reply, "an upstream's strings");
        s_require (kf_config_upstream (config, upstream->name) != NULL, "an upstream by its name");
        for (int h = 0; h < upstream->header_count; h++)
            s_require (!strpbrk (upstream->headers [h], "\r\n"), "a header is one line");
    }
    s_walk_bot (kf_config_bot (config, "default"));
    s_walk_bot (kf_config_bot (config, "*"));
    const kf_bot_llm_t *bot = kf_config_bot (config, "default");
    const kf_business_config_t *api = bot ? bot->business : NULL;
    if (api) {
        kf_business_vars_t vars = { "ORD-1", "13812345678", "u1", "s1", "default" };
        char *url = kf_business_url (api, &vars), *body = kf_business_body (api, &vars);
        char *reply = kf_business_reply (api->reply, NULL, &vars);
        s_require (url && body && reply, "templates fill");
        free (url);
        free (body);
        free (reply);
    }
    kf_config_destroy (&config);
    return 0;
}
