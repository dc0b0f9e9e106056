/*  fuzz_business_reply.c - libFuzzer target for "{name}" templates (common/text_template.h) and
    the business reply filled from an API's JSON answer (workers/business_reply.h). Input layout:

        byte 0      selector: bits 0-1 = the escape of a plain kf_template_fill (plain, URL, JSON),
                    bits 2-7 = its cut (0: none, else that many times 7 bytes)
        rest        the template, then a NUL byte, then the API's answer as JSON text (no NUL:
                    no answer, as when the call failed)

    Every result is a string; a cut one is at most its cut; the reply of a template of valid UTF-8
    is valid UTF-8 and at most KF_BUSINESS_REPLY_MAX bytes. */
#include "common/json_codec.h"
#include "common/mpack.h"
#include "common/text_template.h"
#include "common/utf8.h"
#include "workers/business_reply.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_require (bool ok, const char *what)
{
    if (!ok) {
        fprintf (stderr, "fuzz_business_reply: invariant failed: %s\n", what);
        abort ();
    }
}

//  kf_template_name_fn: counts placeholders, and their names are never empty
static int
s_count (void *arg, const char *name, size_t len)
{
    s_require (len > 0 && name [-1] == '{', "a placeholder has a name after '{'");
    (*(int *) arg)++;
    return 0;
}

//  kf_template_lookup_fn: every name whose length is odd has a value with bytes that need escaping
static const char *
s_lookup (void *arg, const char *name, size_t len, size_t *value_len)
{
    (void) arg;
    (void) name;
    static const char value [] = "a \"b\"\\c\n/&?=\xe4\xb8\xad";
    *value_len = sizeof value - 1;
    return len % 2 ? value : NULL;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    kf_template_escape_t escape = (kf_template_escape_t) (data [0] & 3 ? (data [0] & 3) - 1 : 0);
    size_t max = (size_t) (data [0] >> 2) * 7;
    //  The template: a NUL-terminated copy up to the first NUL; the answer after it
    const char *rest = (const char *) data + 1;
    size_t rest_len = size - 1;
    const char *nul = memchr (rest, 0, rest_len);
    size_t text_len = nul ? (size_t) (nul - rest) : rest_len;
    char *text = malloc (text_len + 1);
    memcpy (text, rest, text_len);
    text [text_len] = 0;

    int placeholders = 0;
    kf_template_each (text, s_count, &placeholders);
    char *filled = kf_template_fill (text, escape, s_lookup, NULL, max);
    s_require (filled != NULL, "a filled template");
    s_require (max == 0 || strlen (filled) <= max, "a cut template is at most its cut");
    free (filled);

    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_unpacked answer;
    msgpack_unpacked_init (&answer);
    bool has_answer = nul && kf_json_to_msgpack (nul + 1, rest_len - text_len - 1, &pk, NULL, 0) == 0
                   && kf_mp_unpack_one (buffer.data, buffer.size, &answer);
    kf_business_vars_t vars = { "ORD-2024-001", "13812345678", "u\"1&x=y", "", NULL };
    char *reply = kf_business_reply (text, has_answer ? &answer.data : NULL, &vars);
    size_t reply_len = strlen (reply);
    s_require (reply_len <= KF_BUSINESS_REPLY_MAX, "a reply is at most KF_BUSINESS_REPLY_MAX");
    if (kf_utf8_is_valid (text, text_len))
        s_require (kf_utf8_is_valid (reply, reply_len), "a reply of valid UTF-8 is valid UTF-8");
    free (reply);

    //  The same text as a URL and as a body template, over the entities alone
    kf_business_config_t api = { 0 };
    api.url = text;
    api.body = text;
    char *url = kf_business_url (&api, &vars);
    char *body = kf_business_body (&api, &vars);
    s_require (url && body, "a URL and a body");
    free (url);
    free (body);
    if (has_answer)
        kf_business_path (&answer.data, text, text_len);
    msgpack_unpacked_destroy (&answer);
    msgpack_sbuffer_destroy (&buffer);
    free (text);
    return 0;
}
