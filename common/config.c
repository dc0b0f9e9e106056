/*  config.c - the LLM upstream configuration: a line-by-line INI reader that knows its keys from
    two small tables, ${NAME} expansion, the KEFU_LLM_* shortcut, and the checks that need the
    whole file (required keys, upstreams named by bots) after its last line. Error messages show
    key names, section names and the values of enumerations and numbers, never a string value:
    the API key, and URLs (which may hold credentials), stay out of them. */
#include "common/config.h"
#include "common/log.h"
#include "common/utf8.h"
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  What a key holds, and so how its value is checked
typedef enum {
    S_TEXT,                     //  A string, echoed in no error
    S_SECRET,                   //  The API key: a string, wiped when freed
    S_URL,                      //  http:// or https://
    S_KIND,                     //  kf_llm_kind_t
    S_MODE,                     //  kf_llm_mode_t
    S_BOOL,
    S_INT,                      //  int from min to max
    S_REAL,                     //  double from min to max
    S_NAME,                     //  An upstream's name, resolved after the last line
    S_HEADERS                   //  "Name: value" lines separated by |
} s_type_t;

typedef struct {
    const char *name;
    s_type_t type;
    size_t offset;              //  Of the field in s_upstream_t or s_bot_t
    double min, max;            //  S_INT, S_REAL
    bool may_be_empty;          //  Strings
} s_key_t;

typedef struct {
    kf_upstream_config_t pub;   //  First: callers get its address
    const char *source;         //  Path or variable it came from, for errors during the load
    int line;                   //  Of its header; 0 from the environment
    uint32_t seen;              //  Keys given, one bit per entry of s_upstream_keys
} s_upstream_t;

typedef struct {
    kf_bot_llm_t pub;           //  First: callers get its address
    char *upstream_name;        //  NULL: none named
    const char *source;
    int line;                   //  Of its header; 0 from the environment
    int upstream_line;          //  Of its upstream key
    uint32_t seen;              //  One bit per entry of s_bot_keys
} s_bot_t;

struct _kf_config_t {
    s_upstream_t **upstreams;   //  In the order they were defined
    size_t upstream_count;
    s_bot_t **bots;
    size_t bot_count;
};

#define S_UP(n, t, f, lo, hi)   { n, t, offsetof (s_upstream_t, pub.f), lo, hi, false }
static const s_key_t s_upstream_keys [] = {
    S_UP ("kind", S_KIND, kind, 0, 0),
    S_UP ("base_url", S_URL, base_url, 0, 0),
    S_UP ("api_key", S_SECRET, api_key, 0, 0),
    S_UP ("model", S_TEXT, model, 0, 0),
    S_UP ("temperature", S_REAL, temperature, 0, 2),
    S_UP ("max_tokens", S_INT, max_tokens, 1, 65536),
    S_UP ("include_usage", S_BOOL, include_usage, 0, 0),
    { "system_prompt", S_TEXT, offsetof (s_upstream_t, pub.system_prompt), 0, 0, true },
    S_UP ("max_concurrency", S_INT, max_concurrency, 1, 100000),
    S_UP ("queue", S_INT, queue, 0, 1000000),
    S_UP ("connect_timeout_ms", S_INT, connect_timeout_ms, 0, 3600000),
    S_UP ("first_byte_timeout_ms", S_INT, first_byte_timeout_ms, 0, 3600000),
    S_UP ("idle_timeout_ms", S_INT, idle_timeout_ms, 0, 3600000),
    S_UP ("total_timeout_ms", S_INT, total_timeout_ms, 0, 3600000),
    S_UP ("max_retries", S_INT, max_retries, 0, 10),
    S_UP ("breaker_failures", S_INT, breaker_failures, 0, 1000),
    S_UP ("breaker_cooldown_ms", S_INT, breaker_cooldown_ms, 1, 3600000),
    S_UP ("fallback_reply", S_TEXT, fallback_reply, 0, 0),
    S_UP ("headers", S_HEADERS, headers, 0, 0)
};
static const s_key_t s_bot_keys [] = {
    { "upstream", S_NAME, offsetof (s_bot_t, upstream_name), 0, 0, false },
    { "llm", S_MODE, offsetof (s_bot_t, pub.llm), 0, 0, false }
};
#define S_COUNT(table)          (sizeof table / sizeof table [0])

//  Reading state: where we are, for errors, and the section lines go to
typedef struct {
    kf_config_t *config;
    const char *source;         //  The path, or the environment variable being read
    int line;                   //  0: the source as a whole
    char *err;
    size_t errlen;
    s_upstream_t *upstream;     //  The section being read: one of these, or neither
    s_bot_t *bot;
} s_parser_t;

#define S_ECHO_MAX  64          //  Bytes of a bad value shown in an error

//  Writes "SOURCE:LINE: what" (or "SOURCE: what") into the caller's buffer; returns -1.
static int
s_fail (s_parser_t *p, const char *format, ...) __attribute__ ((format (printf, 2, 3)));
static int
s_fail (s_parser_t *p, const char *format, ...)
{
    if (!p->err || p->errlen == 0)
        return -1;
    int used = p->line ? snprintf (p->err, p->errlen, "%s:%d: ", p->source, p->line)
                       : snprintf (p->err, p->errlen, "%s: ", p->source);
    if (used >= 0 && (size_t) used < p->errlen) {
        va_list args;
        va_start (args, format);
        vsnprintf (p->err + used, p->errlen - (size_t) used, format, args);
        va_end (args);
    }
    return -1;
}

//  How many bytes of `value` an error may show: at most S_ECHO_MAX, whole characters
static int
s_echo_len (const char *value)
{
    size_t len = strlen (value);
    if (len > S_ECHO_MAX)
        len = kf_utf8_complete_prefix (value, S_ECHO_MAX);
    return (int) len;
}

//  A hint for values that fail to parse because a comment followed them
static const char *
s_hint (const char *value)
{
    return strpbrk (value, "#;") ? " (comments go on lines of their own)" : "";
}

static char *
s_trim (char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen (s);
    while (len && (s [len - 1] == ' ' || s [len - 1] == '\t'))
        s [--len] = 0;
    return s;
}

static void
s_wipe_free (char *s)
{
    if (s) {
        explicit_bzero (s, strlen (s));
        free (s);
    }
}

static void
s_upstream_free (s_upstream_t *self)
{
    kf_upstream_config_t *pub = &self->pub;
    free ((char *) pub->name);
    free ((char *) pub->base_url);
    s_wipe_free ((char *) pub->api_key);
    free ((char *) pub->model);
    free ((char *) pub->system_prompt);
    free ((char *) pub->fallback_reply);
    for (int i = 0; i < pub->header_count; i++)
        free ((char *) pub->headers [i]);
    free ((char **) pub->headers);
    free (self);
}

static void
s_bot_free (s_bot_t *self)
{
    free ((char *) self->pub.bot_id);
    free (self->upstream_name);
    free (self);
}

//  A new section with every default, in the config (replacing `slot` when not NULL)
static s_upstream_t *
s_upstream_new (s_parser_t *p, const char *name, s_upstream_t **slot)
{
    s_upstream_t *self = kf_calloc (1, sizeof *self);
    kf_upstream_config_t *pub = &self->pub;
    pub->name = kf_strdup (name);
    pub->kind = KF_LLM_OPENAI;
    pub->temperature = -1;
    pub->system_prompt = kf_strdup (KF_CONFIG_DEFAULT_SYSTEM_PROMPT);
    pub->connect_timeout_ms = 5000;
    pub->first_byte_timeout_ms = 60000;
    pub->idle_timeout_ms = 30000;
    pub->total_timeout_ms = 300000;
    pub->max_retries = 2;
    pub->max_concurrency = 64;
    pub->queue = 256;
    pub->breaker_failures = 5;
    pub->breaker_cooldown_ms = 30000;
    pub->fallback_reply = kf_strdup (KF_CONFIG_DEFAULT_FALLBACK_REPLY);
    self->source = p->source;
    self->line = p->line;
    kf_config_t *config = p->config;
    if (slot) {
        s_upstream_free (*slot);
        *slot = self;
    }
    else {
        config->upstreams = kf_realloc (config->upstreams,
                                        (config->upstream_count + 1) * sizeof (s_upstream_t *));
        config->upstreams [config->upstream_count++] = self;
    }
    return self;
}

static s_bot_t *
s_bot_new (s_parser_t *p, const char *bot_id, s_bot_t **slot)
{
    s_bot_t *self = kf_calloc (1, sizeof *self);
    self->pub.bot_id = kf_strdup (bot_id);
    self->pub.llm = KF_LLM_FALLBACK;
    self->source = p->source;
    self->line = p->line;
    kf_config_t *config = p->config;
    if (slot) {
        s_bot_free (*slot);
        *slot = self;
    }
    else {
        config->bots = kf_realloc (config->bots, (config->bot_count + 1) * sizeof (s_bot_t *));
        config->bots [config->bot_count++] = self;
    }
    return self;
}

static s_upstream_t **
s_find_upstream (kf_config_t *config, const char *name)
{
    for (size_t i = 0; i < config->upstream_count; i++)
        if (strcmp (config->upstreams [i]->pub.name, name) == 0)
            return &config->upstreams [i];
    return NULL;
}

static s_bot_t **
s_find_bot (const kf_config_t *config, const char *bot_id)
{
    for (size_t i = 0; i < config->bot_count; i++)
        if (strcmp (config->bots [i]->pub.bot_id, bot_id) == 0)
            return &config->bots [i];
    return NULL;
}

static bool
s_is_upstream_name (const char *name)
{
    size_t len = strlen (name);
    if (len == 0 || len > 64)
        return false;
    for (const char *s = name; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
          ||  *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

//  "[upstream deepseek]" or "[bot default]" for the section being read
static const char *
s_section_name (s_parser_t *p, char *buf, size_t size)
{
    if (p->upstream)
        snprintf (buf, size, "[upstream %s]", p->upstream->pub.name);
    else
        snprintf (buf, size, "[bot %s]", p->bot->pub.bot_id);
    return buf;
}

//  A section header, `text` trimmed and starting with '['
static int
s_section (s_parser_t *p, char *text)
{
    p->upstream = NULL;
    p->bot = NULL;
    size_t len = strlen (text);
    if (text [len - 1] != ']')
        return s_fail (p, "a section header must end with ']'%s", s_hint (text));
    text [len - 1] = 0;
    char *inner = s_trim (text + 1);
    char *name = inner + strcspn (inner, " \t");
    if (*name)
        *name++ = 0;
    name = s_trim (name);
    bool is_upstream = strcmp (inner, "upstream") == 0;
    if (!is_upstream && strcmp (inner, "bot") != 0)
        return s_fail (p, "unknown section type '%.*s' (upstream or bot)", s_echo_len (inner),
                       inner);
    if (!*name)
        return s_fail (p, "section [%s] needs a name", inner);
    if (is_upstream) {
        if (!s_is_upstream_name (name))
            return s_fail (p, "bad upstream name '%.*s' (letters, digits, '_', '-', '.', "
                           "at most 64 bytes)", s_echo_len (name), name);
        s_upstream_t **slot = s_find_upstream (p->config, name);
        if (slot && (*slot)->line)
            return s_fail (p, "duplicate section [upstream %s] (first at line %d)", name,
                           (*slot)->line);
        p->upstream = s_upstream_new (p, name, slot);
    }
    else {
        if (strlen (name) > 64)
            return s_fail (p, "bot id longer than 64 bytes");
        s_bot_t **slot = s_find_bot (p->config, name);
        if (slot && (*slot)->line)
            return s_fail (p, "duplicate section [bot %s] (first at line %d)", name, (*slot)->line);
        p->bot = s_bot_new (p, name, slot);
    }
    return 0;
}

static bool
s_is_var_name (const char *s, size_t len)
{
    if (len == 0 || len > 128 || (*s >= '0' && *s <= '9'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s [i] >= 'a' && s [i] <= 'z') || (s [i] >= 'A' && s [i] <= 'Z')
          ||  (s [i] >= '0' && s [i] <= '9') || s [i] == '_'))
            return false;
    return true;
}

//  Expands ${NAME} and $${ in `raw` into `out` (KF_CONFIG_VALUE_MAX + 1 bytes)
static int
s_expand (s_parser_t *p, const char *key, const char *raw, char *out)
{
    size_t used = 0;
    const char *s = raw;
    while (*s) {
        const char *piece = s;
        size_t len = 1;
        if (s [0] == '$' && s [1] == '$' && s [2] == '{') {
            len = 2;
            s += 3;
            piece = "${";
        }
        else if (s [0] == '$' && s [1] == '{') {
            const char *end = strchr (s + 2, '}');
            if (!end)
                return s_fail (p, "unterminated ${ in the value of '%s'", key);
            size_t name_len = (size_t) (end - s - 2);
            //  A bad name is not shown: it may be a key pasted in the wrong place
            if (!s_is_var_name (s + 2, name_len))
                return s_fail (p, "bad environment variable name in the value of '%s' (letters, "
                               "digits and '_')", key);
            char name [129];
            memcpy (name, s + 2, name_len);
            name [name_len] = 0;
            piece = getenv (name);
            if (!piece)
                return s_fail (p, "environment variable %s is not set (in '%s')", name, key);
            if (!*piece)
                return s_fail (p, "environment variable %s is empty (in '%s')", name, key);
            len = strlen (piece);
            s = end + 1;
        }
        else
            s++;
        if (used + len > KF_CONFIG_VALUE_MAX)
            return s_fail (p, "the value of '%s' is longer than %d bytes after expanding "
                           "variables", key, KF_CONFIG_VALUE_MAX);
        memcpy (out + used, piece, len);
        used += len;
    }
    out [used] = 0;
    return 0;
}

static bool
s_has_control (const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (((unsigned char) s [i] < 0x20 && s [i] != '\t') || s [i] == 0x7f)
            return true;
    return false;
}

//  Splits `value` into header lines: "Name: value" separated by |; names are letters, digits
//  and -. Values were checked for control characters (so CR and LF) already.
static int
s_store_headers (s_parser_t *p, kf_upstream_config_t *pub, const char *value)
{
    char copy [KF_CONFIG_VALUE_MAX + 1];
    snprintf (copy, sizeof copy, "%s", value);
    char **lines = kf_calloc (KF_CONFIG_HEADERS_MAX, sizeof (char *));
    int count = 0, rc = 0;
    for (char *next = copy, *line; rc == 0 && (line = strsep (&next, "|")) != NULL;) {
        line = s_trim (line);
        size_t name_len = strspn (line, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                        "0123456789-");
        if (name_len == 0 || line [name_len] != ':')
            rc = s_fail (p, "headers must be \"Name: value\" lines separated by |");
        else
        if (count == KF_CONFIG_HEADERS_MAX)
            rc = s_fail (p, "headers may hold at most %d lines", KF_CONFIG_HEADERS_MAX);
        else
            lines [count++] = kf_strdup (line);
    }
    if (rc) {
        for (int i = 0; i < count; i++)
            free (lines [i]);
        free (lines);
        return rc;
    }
    pub->headers = (const char *const *) lines;
    pub->header_count = count;
    return 0;
}

//  Stores the checked `value` of `key` into the field of `base` it names
static int
s_store (s_parser_t *p, const s_key_t *key, char *base, const char *value)
{
    void *field = base + key->offset;
    int echo = s_echo_len (value);
    switch (key->type) {
        case S_TEXT:
        case S_SECRET:
        case S_NAME:
            if (!*value && !key->may_be_empty)
                return key->type == S_SECRET
                     ? s_fail (p, "api_key is empty (leave it out for a server without keys)")
                     : s_fail (p, "%s must not be empty", key->name);
            free (*(char **) field);
            *(char **) field = kf_strdup (value);
            return 0;
        case S_HEADERS:
            return s_store_headers (p, (kf_upstream_config_t *) base, value);
        case S_URL: {
            size_t skip = strncasecmp (value, "https://", 8) == 0 ? 8
                        : strncasecmp (value, "http://", 7) == 0 ? 7 : 0;
            if (!skip || !value [skip] || value [skip] == '/' || strpbrk (value, " \t"))
                return s_fail (p, "%s must be an http:// or https:// URL without spaces",
                               key->name);
            *(char **) field = kf_strdup (value);
            return 0;
        }
        case S_KIND:
            if (strcmp (value, "openai") == 0)
                *(kf_llm_kind_t *) field = KF_LLM_OPENAI;
            else if (strcmp (value, "dify") == 0)
                *(kf_llm_kind_t *) field = KF_LLM_DIFY;
            else
                return s_fail (p, "%s must be openai or dify, not '%.*s'%s", key->name, echo, value,
                               s_hint (value));
            return 0;
        case S_MODE:
            if (strcmp (value, "off") == 0)
                *(kf_llm_mode_t *) field = KF_LLM_OFF;
            else if (strcmp (value, "fallback") == 0)
                *(kf_llm_mode_t *) field = KF_LLM_FALLBACK;
            else if (strcmp (value, "always") == 0)
                *(kf_llm_mode_t *) field = KF_LLM_ALWAYS;
            else
                return s_fail (p, "%s must be off, fallback or always, not '%.*s'%s", key->name,
                               echo, value, s_hint (value));
            return 0;
        case S_BOOL:
            if (!strcasecmp (value, "true") || !strcasecmp (value, "yes") || !strcmp (value, "1"))
                *(bool *) field = true;
            else if (!strcasecmp (value, "false") || !strcasecmp (value, "no")
                 ||  !strcmp (value, "0"))
                *(bool *) field = false;
            else
                return s_fail (p, "%s must be true or false (yes/no, 1/0), not '%.*s'%s", key->name,
                               echo, value, s_hint (value));
            return 0;
        case S_INT:
        case S_REAL: {
            //  Plain decimals only: strtod would take "nan", "inf" and hex
            bool is_int = key->type == S_INT;
            const char *s = value + (*value == '-');
            size_t digits = strspn (s, "0123456789");
            if (!is_int && s [digits] == '.' && s [digits + 1] >= '0' && s [digits + 1] <= '9')
                s += digits + 1 + strspn (s + digits + 1, "0123456789");
            else
                s += digits;
            if (!digits || *s || strlen (value) > 32)
                return s_fail (p, "%s must be a %s, not '%.*s'%s", key->name,
                               is_int ? "whole number" : "number", echo, value, s_hint (value));
            double number = strtod (value, NULL);
            if (number < key->min || number > key->max)
                return s_fail (p, "%s must be from %.15g to %.15g, not %.*s", key->name, key->min,
                               key->max, echo, value);
            if (is_int)
                *(int *) field = (int) number;
            else
                *(double *) field = number;
            return 0;
        }
    }
    return s_fail (p, "internal error: key type %d", (int) key->type);
}

//  `key` = `raw` in the section being read; ${} is expanded when `expand`
static int
s_assign (s_parser_t *p, const char *key, const char *raw, bool expand)
{
    char section [160];
    const s_key_t *table = p->upstream ? s_upstream_keys : s_bot_keys;
    size_t count = p->upstream ? S_COUNT (s_upstream_keys) : S_COUNT (s_bot_keys);
    char *base = p->upstream ? (char *) p->upstream : (char *) p->bot;
    uint32_t *seen = p->upstream ? &p->upstream->seen : &p->bot->seen;
    size_t index = 0;
    while (index < count && strcmp (table [index].name, key) != 0)
        index++;
    if (index == count)
        return s_fail (p, "unknown key '%.*s' in %s", s_echo_len (key), key,
                       s_section_name (p, section, sizeof section));
    if (*seen & (1u << index))
        return s_fail (p, "duplicate key '%s' in %s", key,
                       s_section_name (p, section, sizeof section));
    if (strlen (raw) > KF_CONFIG_VALUE_MAX)
        return s_fail (p, "the value of '%s' is longer than %d bytes", key, KF_CONFIG_VALUE_MAX);

    char value [KF_CONFIG_VALUE_MAX + 1];
    int rc = 0;
    if (expand)
        rc = s_expand (p, key, raw, value);
    else
        strcpy (value, raw);
    if (rc == 0 && !kf_utf8_is_valid (value, strlen (value)))
        rc = s_fail (p, "the value of '%s' is not valid UTF-8", key);
    if (rc == 0 && s_has_control (value, strlen (value)))
        rc = s_fail (p, "the value of '%s' holds a control character", key);
    if (rc == 0)
        rc = s_store (p, &table [index], base, value);
    explicit_bzero (value, sizeof value);
    if (rc == 0) {
        *seen |= 1u << index;
        if (p->bot && table [index].type == S_NAME)
            p->bot->upstream_line = p->line;
    }
    return rc;
}

//  One line of the file, `len` bytes with its line end
static int
s_line (s_parser_t *p, char *line, size_t len)
{
    if (len && line [len - 1] == '\n')
        line [--len] = 0;
    if (len && line [len - 1] == '\r')
        line [--len] = 0;
    if (p->line == 1 && len >= 3 && memcmp (line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3;
        len -= 3;
    }
    if (strlen (line) != len)
        return s_fail (p, "NUL byte in the line");
    if (!kf_utf8_is_valid (line, len))
        return s_fail (p, "the line is not valid UTF-8");
    if (s_has_control (line, len))
        return s_fail (p, "control character in the line");
    char *text = s_trim (line);
    if (*text == 0 || *text == '#' || *text == ';')
        return 0;
    if (*text == '[')
        return s_section (p, text);
    //  The line is not shown: it may be a key pasted without its name
    char *equals = strchr (text, '=');
    if (!equals)
        return s_fail (p, "expected 'key = value', a [section] or a comment");
    *equals = 0;
    char *key = s_trim (text);
    if (!*key)
        return s_fail (p, "no key before '='");
    if (!p->upstream && !p->bot)
        return s_fail (p, "key '%.*s' outside any section", s_echo_len (key), key);
    return s_assign (p, key, s_trim (equals + 1), true);
}

static int
s_read_file (s_parser_t *p, const char *path)
{
    p->source = path;
    p->line = 0;
    FILE *file = fopen (path, "r");
    if (!file)
        return s_fail (p, "cannot open: %s", strerror (errno));
    char *line = NULL;
    size_t capacity = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline (&line, &capacity, file)) >= 0) {
        p->line++;
        rc = s_line (p, line, (size_t) len);
    }
    if (rc == 0 && ferror (file)) {
        p->line = 0;
        rc = s_fail (p, "cannot read: %s", strerror (errno));
    }
    if (line)
        explicit_bzero (line, capacity);
    free (line);
    fclose (file);
    p->upstream = NULL;
    p->bot = NULL;
    return rc;
}

//  An environment variable; empty counts as unset
static const char *
s_getenv (const char *name)
{
    const char *value = getenv (name);
    return value && *value ? value : NULL;
}

//  The KEFU_LLM_* shortcut: [upstream default] and [bot *]
static int
s_read_env (s_parser_t *p, bool has_file)
{
    static const char *const others [] = {
        "KEFU_LLM_API_KEY", "KEFU_LLM_MODEL", "KEFU_LLM_KIND", "KEFU_LLM_MODE"
    };
    const char *base_url = s_getenv ("KEFU_LLM_BASE_URL");
    if (!base_url) {
        //  A file may name them in ${}; without one they would be ignored without a word
        for (size_t i = 0; i < S_COUNT (others) && !has_file; i++)
            if (s_getenv (others [i])) {
                p->source = others [i];
                return s_fail (p, "set, but KEFU_LLM_BASE_URL is not");
            }
        return 0;
    }
    const char *kind = s_getenv ("KEFU_LLM_KIND");
    const char *api_key = s_getenv ("KEFU_LLM_API_KEY");
    const char *model = s_getenv ("KEFU_LLM_MODEL");
    const char *mode = s_getenv ("KEFU_LLM_MODE");
    p->source = "KEFU_LLM_BASE_URL";
    p->line = 0;
    p->upstream = s_upstream_new (p, "default", NULL);
    const struct {
        const char *variable, *key, *value;
    } sets [] = {
        { "KEFU_LLM_KIND", "kind", kind ? kind : "openai" },
        { "KEFU_LLM_BASE_URL", "base_url", base_url },
        { "KEFU_LLM_API_KEY", "api_key", api_key },
        { "KEFU_LLM_MODEL", "model", model }
    };
    for (size_t i = 0; i < S_COUNT (sets); i++) {
        p->source = sets [i].variable;
        if (sets [i].value && s_assign (p, sets [i].key, sets [i].value, false))
            return -1;
    }
    if (p->upstream->pub.kind == KF_LLM_OPENAI && !model) {
        p->source = "KEFU_LLM_MODEL";
        return s_fail (p, "not set, and KEFU_LLM_KIND openai needs a model");
    }
    if (p->upstream->pub.kind == KF_LLM_DIFY && !api_key) {
        p->source = "KEFU_LLM_API_KEY";
        return s_fail (p, "not set, and KEFU_LLM_KIND dify needs the app's API key");
    }
    p->upstream = NULL;
    p->source = "KEFU_LLM_MODE";
    p->bot = s_bot_new (p, "*", NULL);
    if (s_assign (p, "upstream", "default", false)
    ||  s_assign (p, "llm", mode ? mode : "fallback", false))
        return -1;
    p->bot = NULL;
    return 0;
}

static bool
s_has_key (uint32_t seen, const s_key_t *table, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp (table [i].name, name) == 0)
            return (seen & (1u << i)) != 0;
    return false;
}

//  What needs every section read: required keys, the upstreams bots name
static int
s_check (s_parser_t *p)
{
    kf_config_t *config = p->config;
    for (size_t i = 0; i < config->upstream_count; i++) {
        s_upstream_t *upstream = config->upstreams [i];
        const char *name = upstream->pub.name;
        p->source = upstream->source;
        p->line = upstream->line;
#define S_HAS(key) s_has_key (upstream->seen, s_upstream_keys, S_COUNT (s_upstream_keys), key)
        if (!S_HAS ("kind"))
            return s_fail (p, "[upstream %s] needs kind (openai or dify)", name);
        if (!S_HAS ("base_url"))
            return s_fail (p, "[upstream %s] needs base_url", name);
        if (upstream->pub.kind == KF_LLM_OPENAI && !S_HAS ("model"))
            return s_fail (p, "[upstream %s] needs model (kind openai)", name);
        if (upstream->pub.kind == KF_LLM_DIFY && !S_HAS ("api_key"))
            return s_fail (p, "[upstream %s] needs api_key (kind dify)", name);
#undef S_HAS
    }
    for (size_t i = 0; i < config->bot_count; i++) {
        s_bot_t *bot = config->bots [i];
        p->source = bot->source;
        p->line = bot->line;
        if (bot->upstream_name) {
            s_upstream_t **upstream = s_find_upstream (config, bot->upstream_name);
            p->line = bot->upstream_line;
            if (!upstream)
                return s_fail (p, "[bot %s] names unknown upstream '%.*s'", bot->pub.bot_id,
                               s_echo_len (bot->upstream_name), bot->upstream_name);
            bot->pub.upstream = &(*upstream)->pub;
        }
        else if (bot->pub.llm != KF_LLM_OFF)
            return s_fail (p, "[bot %s] needs upstream (or llm = off)", bot->pub.bot_id);
    }
    return 0;
}

kf_config_t *
kf_config_load (const char *path, char *err, size_t errlen)
{
    kf_config_t *self = kf_calloc (1, sizeof *self);
    s_parser_t parser = { .config = self, .source = "", .err = err, .errlen = errlen };
    if (err && errlen)
        *err = 0;
    if (s_read_env (&parser, path != NULL)
    ||  (path && s_read_file (&parser, path))
    ||  s_check (&parser))
        kf_config_destroy (&self);
    return self;
}

void
kf_config_destroy (kf_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    kf_config_t *self = *self_p;
    for (size_t i = 0; i < self->upstream_count; i++)
        s_upstream_free (self->upstreams [i]);
    for (size_t i = 0; i < self->bot_count; i++)
        s_bot_free (self->bots [i]);
    free (self->upstreams);
    free (self->bots);
    free (self);
    *self_p = NULL;
}

const kf_upstream_config_t *
kf_config_upstream (const kf_config_t *self, const char *name)
{
    s_upstream_t **upstream = s_find_upstream ((kf_config_t *) self, name);
    return upstream ? &(*upstream)->pub : NULL;
}

size_t
kf_config_upstream_count (const kf_config_t *self)
{
    return self->upstream_count;
}

const kf_upstream_config_t *
kf_config_upstream_at (const kf_config_t *self, size_t index)
{
    return index < self->upstream_count ? &self->upstreams [index]->pub : NULL;
}

const kf_bot_llm_t *
kf_config_bot (const kf_config_t *self, const char *bot_id)
{
    s_bot_t **bot = bot_id ? s_find_bot (self, bot_id) : NULL;
    if (!bot)
        bot = s_find_bot (self, "*");
    return bot ? &(*bot)->pub : NULL;
}

const char *
kf_config_kind_name (kf_llm_kind_t kind)
{
    return kind == KF_LLM_DIFY ? "dify" : "openai";
}

const char *
kf_config_mode_name (kf_llm_mode_t mode)
{
    return mode == KF_LLM_ALWAYS ? "always" : mode == KF_LLM_FALLBACK ? "fallback" : "off";
}
