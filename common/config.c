/*  config.c - the LLM upstream and business API configuration: its keys in three small tables,
    each value checked and stored by its type, the KEFU_LLM_* shortcut, and the checks that need
    the whole file (required keys, upstreams and business APIs named by bots) after its last line.
    Lines, headers and ${NAME} expansion are common/ini.c's. Error messages show key names,
    section names and the values of enumerations and numbers, never a string value: the API
    key, and URLs (which may hold credentials), stay out of them. A value that came from ${NAME}
    is shown as written, never expanded: a variable may hold a key. */
#include "common/config.h"
#include "common/ini.h"
#include "common/log.h"
#include "common/text_template.h"
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert (KF_CONFIG_VALUE_MAX == KF_INI_VALUE_MAX, "one value size");
_Static_assert (sizeof (kf_llm_kind_t) == sizeof (int) && sizeof (kf_llm_mode_t) == sizeof (int),
                "kf_ini_choice stores an int");

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
    S_NAME,                     //  An upstream's or business's name into an s_ref_t
    S_HEADERS,                  //  "Name: value" lines separated by |
    S_URL_TEMPLATE,             //  S_URL with entity placeholders
    S_BODY_TEMPLATE,            //  S_TEXT with entity placeholders
    S_METHOD,                   //  GET | POST into a bool is_post
    S_REQUIRES,                 //  KF_BUSINESS_NEEDS_* bits
    S_REGEX                     //  A POSIX extended regular expression
} s_type_t;

typedef struct {
    const char *name;
    s_type_t type;
    size_t offset;              //  Of the field in s_upstream_t, s_business_t or s_bot_t
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
    kf_business_config_t pub;   //  First: callers get its address
    const char *source;
    int line;
    uint32_t seen;              //  One bit per entry of s_business_keys
} s_business_t;

//  A section a bot names (S_NAME), resolved after the last line
typedef struct {
    char *name;                 //  NULL: none named
    char *shown;                //  What errors show of name: its text before ${} expansion (a
                                //  variable may hold a key); NULL: the name itself
    int line;                   //  Of the key naming it
} s_ref_t;

typedef struct {
    kf_bot_llm_t pub;           //  First: callers get its address
    s_ref_t upstream;           //  The [upstream] it names
    s_ref_t business;           //  The [business] it names
    const char *source;
    int line;                   //  Of its header; 0 from the environment
    uint32_t seen;              //  One bit per entry of s_bot_keys
} s_bot_t;

struct _kf_config_t {
    s_upstream_t **upstreams;   //  In the order they were defined
    size_t upstream_count;
    s_business_t **businesses;
    size_t business_count;
    s_bot_t **bots;
    size_t bot_count;
};

//  Headers are stored as a list and its count, next to each other in both sections
_Static_assert (offsetof (kf_upstream_config_t, header_count)
                == offsetof (kf_upstream_config_t, headers) + sizeof (void *), "headers, count");
_Static_assert (offsetof (kf_business_config_t, header_count)
                == offsetof (kf_business_config_t, headers) + sizeof (void *), "headers, count");

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
#define S_BIZ(n, t, f, lo, hi)  { n, t, offsetof (s_business_t, pub.f), lo, hi, false }
static const s_key_t s_business_keys [] = {
    S_BIZ ("url", S_URL_TEMPLATE, url, 0, 0),
    S_BIZ ("method", S_METHOD, is_post, 0, 0),
    S_BIZ ("body", S_BODY_TEMPLATE, body, 0, 0),
    S_BIZ ("headers", S_HEADERS, headers, 0, 0),
    S_BIZ ("timeout_ms", S_INT, timeout_ms, 1, 60000),
    S_BIZ ("requires", S_REQUIRES, requires, 0, 0),
    S_BIZ ("reply", S_TEXT, reply, 0, 0),
    S_BIZ ("not_found_reply", S_TEXT, not_found_reply, 0, 0),
    S_BIZ ("error_reply", S_TEXT, error_reply, 0, 0),
    S_BIZ ("ask_reply", S_TEXT, ask_reply, 0, 0)
};
static const s_key_t s_bot_keys [] = {
    { "upstream", S_NAME, offsetof (s_bot_t, upstream), 0, 0, false },
    { "llm", S_MODE, offsetof (s_bot_t, pub.llm), 0, 0, false },
    { "business", S_NAME, offsetof (s_bot_t, business), 0, 0, false },
    { "order_pattern", S_REGEX, offsetof (s_bot_t, pub.order_pattern), 0, 0, false }
};
#define S_COUNT(table)          (sizeof table / sizeof table [0])

//  The entities templates may name (config.h, [business])
static const char *const s_entities [] = { "order_no", "phone", "user_id", "session_id", "bot_id" };

//  Reading state: where we are, for errors, and the section lines go to
typedef struct {
    kf_ini_t ini;               //  Source, line and the caller's error buffer
    kf_config_t *config;
    s_upstream_t *upstream;     //  The section being read: one of these, or none
    s_business_t *business;
    s_bot_t *bot;
} s_parser_t;

#define s_fail(p, ...)  kf_ini_fail (&(p)->ini, __VA_ARGS__)

//  ---------------------------------------------------------------------------------------------
//  Sections: made, found, freed

static void
s_wipe_free (char *s)
{
    if (s) {
        explicit_bzero (s, strlen (s));
        free (s);
    }
}

static void
s_headers_free (const char *const *headers, int count)
{
    for (int i = 0; i < count; i++)
        s_wipe_free ((char *) headers [i]);
    free ((char **) headers);
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
    s_headers_free (pub->headers, pub->header_count);
    free (self);
}

static void
s_business_free (s_business_t *self)
{
    kf_business_config_t *pub = &self->pub;
    free ((char *) pub->name);
    s_wipe_free ((char *) pub->url);    //  A key may hide in its query
    free ((char *) pub->body);
    s_headers_free (pub->headers, pub->header_count);
    free ((char *) pub->reply);
    free ((char *) pub->not_found_reply);
    free ((char *) pub->error_reply);
    free ((char *) pub->ask_reply);
    free (self);
}

static void
s_bot_free (s_bot_t *self)
{
    free ((char *) self->pub.bot_id);
    free ((char *) self->pub.order_pattern);
    free (self->upstream.name);
    free (self->upstream.shown);
    free (self->business.name);
    free (self->business.shown);
    free (self);
}

//  Appends `item` to a config's array of sections, or puts it in `slot` (freeing what was there)
#define S_ADD(config, array, count, item, slot, free_fn)                                    \
    do {                                                                                    \
        if (slot) {                                                                         \
            free_fn (*(slot));                                                              \
            *(slot) = (item);                                                               \
        }                                                                                   \
        else {                                                                              \
            (config)->array = kf_realloc ((config)->array,                                  \
                                          ((config)->count + 1) * sizeof (item));           \
            (config)->array [(config)->count++] = (item);                                   \
        }                                                                                   \
    } while (0)

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
    pub->max_concurrency = KF_CONFIG_DEFAULT_MAX_CONCURRENCY;
    pub->queue = KF_CONFIG_DEFAULT_QUEUE;
    pub->breaker_failures = KF_CONFIG_DEFAULT_BREAKER_FAILURES;
    pub->breaker_cooldown_ms = KF_CONFIG_DEFAULT_BREAKER_COOLDOWN_MS;
    pub->fallback_reply = kf_strdup (KF_CONFIG_DEFAULT_FALLBACK_REPLY);
    self->source = p->ini.source;
    self->line = p->ini.line;
    S_ADD (p->config, upstreams, upstream_count, self, slot, s_upstream_free);
    return self;
}

static s_business_t *
s_business_new (s_parser_t *p, const char *name)
{
    s_business_t *self = kf_calloc (1, sizeof *self);
    kf_business_config_t *pub = &self->pub;
    pub->name = kf_strdup (name);
    pub->body = kf_strdup (KF_CONFIG_DEFAULT_BUSINESS_BODY);
    pub->timeout_ms = 3000;
    pub->requires = KF_BUSINESS_NEEDS_ORDER_NO;
    pub->not_found_reply = kf_strdup (KF_CONFIG_DEFAULT_NOT_FOUND_REPLY);
    pub->error_reply = kf_strdup (KF_CONFIG_DEFAULT_ERROR_REPLY);
    pub->ask_reply = kf_strdup (KF_CONFIG_DEFAULT_ASK_REPLY);
    self->source = p->ini.source;
    self->line = p->ini.line;
    s_business_t **slot = NULL;
    S_ADD (p->config, businesses, business_count, self, slot, s_business_free);
    return self;
}

static s_bot_t *
s_bot_new (s_parser_t *p, const char *bot_id, s_bot_t **slot)
{
    s_bot_t *self = kf_calloc (1, sizeof *self);
    self->pub.bot_id = kf_strdup (bot_id);
    self->pub.llm = KF_LLM_FALLBACK;
    self->pub.order_pattern = kf_strdup (KF_CONFIG_DEFAULT_ORDER_PATTERN);
    self->source = p->ini.source;
    self->line = p->ini.line;
    S_ADD (p->config, bots, bot_count, self, slot, s_bot_free);
    return self;
}

static s_upstream_t **
s_find_upstream (const kf_config_t *config, const char *name)
{
    for (size_t i = 0; i < config->upstream_count; i++)
        if (strcmp (config->upstreams [i]->pub.name, name) == 0)
            return &config->upstreams [i];
    return NULL;
}

static s_business_t **
s_find_business (const kf_config_t *config, const char *name)
{
    for (size_t i = 0; i < config->business_count; i++)
        if (strcmp (config->businesses [i]->pub.name, name) == 0)
            return &config->businesses [i];
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
s_is_section_name (const char *name)
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

//  "[upstream deepseek]", "[business orders]" or "[bot default]" for the section being read
static const char *
s_section_name (s_parser_t *p, char *buf, size_t size)
{
    if (p->upstream)
        snprintf (buf, size, "[upstream %s]", p->upstream->pub.name);
    else
    if (p->business)
        snprintf (buf, size, "[business %s]", p->business->pub.name);
    else
        snprintf (buf, size, "[bot %s]", p->bot->pub.bot_id);
    return buf;
}

//  kf_ini_section_fn: a header `[type name]`
static int
s_on_section (void *arg, kf_ini_t *ini, char *type, char *name)
{
    (void) ini;
    s_parser_t *p = arg;
    p->upstream = NULL;
    p->business = NULL;
    p->bot = NULL;
    bool is_upstream = strcmp (type, "upstream") == 0, is_business = strcmp (type, "business") == 0;
    if (!is_upstream && !is_business && strcmp (type, "bot") != 0)
        return s_fail (p, "unknown section type '%.*s' (upstream, business or bot)",
                       kf_ini_echo_len (type), type);
    if (!*name)
        return s_fail (p, "section [%s] needs a name", type);
    if (is_upstream || is_business) {
        if (!s_is_section_name (name))
            return s_fail (p, "bad %s name '%.*s' (letters, digits, '_', '-', '.', at most 64 "
                           "bytes)", type, kf_ini_echo_len (name), name);
        if (is_business) {
            s_business_t **slot = s_find_business (p->config, name);
            if (slot)
                return s_fail (p, "duplicate section [business %s] (first at line %d)", name,
                               (*slot)->line);
            p->business = s_business_new (p, name);
            return 0;
        }
        s_upstream_t **slot = s_find_upstream (p->config, name);
        if (slot && (*slot)->line)
            return s_fail (p, "duplicate section [upstream %s] (first at line %d)", name,
                           (*slot)->line);
        p->upstream = s_upstream_new (p, name, slot);
        return 0;
    }
    if (strlen (name) > 64)
        return s_fail (p, "bot id longer than 64 bytes");
    s_bot_t **slot = s_find_bot (p->config, name);
    if (slot && (*slot)->line)
        return s_fail (p, "duplicate section [bot %s] (first at line %d)", name, (*slot)->line);
    p->bot = s_bot_new (p, name, slot);
    return 0;
}

//  ---------------------------------------------------------------------------------------------
//  Values: checked by type, stored

//  `field` is a header list, followed by its count
static int
s_store_headers (s_parser_t *p, void *field, const char *value)
{
    char **lines;
    int count;
    if (kf_ini_headers (&p->ini, value, KF_CONFIG_HEADERS_MAX, &lines, &count))
        return -1;
    *(const char *const **) field = (const char *const *) lines;
    *(int *) ((char *) field + sizeof (void *)) = count;
    return 0;
}

//  kf_template_name_fn: a placeholder of a URL or body template must be an entity
static int
s_check_entity (void *arg, const char *name, size_t len)
{
    s_parser_t *p = arg;
    for (size_t i = 0; i < S_COUNT (s_entities); i++)
        if (strlen (s_entities [i]) == len && memcmp (s_entities [i], name, len) == 0)
            return 0;
    if (p->ini.raw)                     //  The name came from a variable: not shown
        return s_fail (p, "unknown placeholder in '%.*s' (order_no, phone, user_id, session_id, "
                       "bot_id)", kf_ini_echo_len (p->ini.raw), p->ini.raw);
    return s_fail (p, "unknown placeholder {%.*s} (order_no, phone, user_id, session_id, bot_id)",
                   len > 64 ? 64 : (int) len, name);
}

static int
s_store_requires (s_parser_t *p, unsigned *field, const char *value)
{
    unsigned bits = 0;
    if (strcmp (value, "none") != 0) {
        char copy [KF_CONFIG_VALUE_MAX + 1];
        snprintf (copy, sizeof copy, "%s", value);
        for (char *next = copy, *word; (word = strsep (&next, "|")) != NULL;) {
            word = kf_ini_trim (word);
            if (strcmp (word, "order_no") == 0)
                bits |= KF_BUSINESS_NEEDS_ORDER_NO;
            else
            if (strcmp (word, "phone") == 0)
                bits |= KF_BUSINESS_NEEDS_PHONE;
            else {
                const char *shown = kf_ini_shown (&p->ini, value);
                return s_fail (p, "requires must be order_no, phone, order_no|phone or none, "
                               "not '%.*s'%s", kf_ini_echo_len (shown), shown, kf_ini_hint (shown));
            }
        }
    }
    *field = bits;
    return 0;
}

#define S_REGEX_COST_MAX 4096      //  Atoms of a pattern once its bounds are unrolled: regcomp
                                    //  copies an atom per repetition, so ((a{1,99}){1,99}){1,99}
                                    //  would take gigabytes; the default pattern costs 40
#define S_REGEX_DEPTH_MAX 32        //  Nested groups

//  How many atoms regcomp makes of `pattern` when it unrolls {m,n} bounds (an upper bound:
//  alternatives add up), or -1 for a back-reference (matching with one can take exponential
//  time) or more than S_REGEX_DEPTH_MAX nested groups. Saturates at S_REGEX_COST_MAX + 1.
static long
s_regex_cost (const char *pattern)
{
    long sum [S_REGEX_DEPTH_MAX + 1] = { 0 }, last = 0;
    int depth = 0;
    for (const char *s = pattern; *s;) {
        long repeat = 0;                //  The last atom's count, when this is a repetition
        if (*s == '\\') {
            if (s [1] >= '1' && s [1] <= '9')
                return -1;
            last = 1;
            s += s [1] ? 2 : 1;
        }
        else
        if (*s == '[') {
            const char *end = s + 1 + (s [1] == '^');
            end += *end == ']';         //  A leading ']' is a member
            while (*end && *end != ']')
                if (end [0] == '[' && (end [1] == ':' || end [1] == '.' || end [1] == '=')
                &&  strchr (end + 2, end [1]))
                    end = strchr (end + 2, end [1]) + 1 + (strchr (end + 2, end [1]) [1] == ']');
                else
                    end++;
            last = 1;
            s = *end ? end + 1 : end;
        }
        else
        if (*s == '(') {
            if (depth == S_REGEX_DEPTH_MAX)
                return -1;
            sum [++depth] = 0;
            last = 0;
            s++;
            continue;
        }
        else
        if (*s == ')' && depth > 0) {
            last = sum [depth--];
            s++;
        }
        else
        if (*s == '*' || *s == '+' || *s == '?') {
            repeat = 2;
            s++;
        }
        else
        if (*s == '{' && s [1] >= '0' && s [1] <= '9') {
            char *end;
            unsigned long low = strtoul (s + 1, &end, 10), high = low;
            if (*end == ',')
                high = end [1] == '}' ? low + 1 : strtoul (end + 1, &end, 10);
            else
                end--;
            repeat = (long) ((high > low ? high : low) > S_REGEX_COST_MAX ? S_REGEX_COST_MAX + 1
                                                                          : (high > low ? high : low));
            if (repeat == 0)
                repeat = 1;
            s = end + 1 + (end [1] == '}');
        }
        else {
            last = 1;
            s++;
        }
        if (repeat) {                   //  The last atom, counted once already, `repeat` times
            long more = last * (repeat - 1);
            sum [depth] += more;
            last += more;
        }
        else
            sum [depth] += last;
        if (sum [depth] > S_REGEX_COST_MAX || last > S_REGEX_COST_MAX)
            return S_REGEX_COST_MAX + 1;
    }
    return sum [0];
}

static int
s_store_regex (s_parser_t *p, const s_key_t *key, char **field, const char *value)
{
    long cost = s_regex_cost (value);
    if (cost < 0)
        return s_fail (p, "%s may hold no back-reference (\\1) nor more than %d nested groups",
                       key->name, S_REGEX_DEPTH_MAX);
    if (cost > S_REGEX_COST_MAX)
        return s_fail (p, "%s repeats too much ({m,n} bounds multiply to more than %d)", key->name,
                       S_REGEX_COST_MAX);
    regex_t regex;
    int rc = regcomp (&regex, value, REG_EXTENDED | REG_ICASE);
    if (rc) {
        char why [128];
        regerror (rc, &regex, why, sizeof why);
        return s_fail (p, "%s is not a POSIX extended regular expression: %s", key->name, why);
    }
    regfree (&regex);
    free (*field);
    *field = kf_strdup (value);
    return 0;
}

//  Stores the checked `value` of `key` into the field of `base` it names
static int
s_store (s_parser_t *p, const s_key_t *key, char *base, const char *value)
{
    void *field = base + key->offset;
    switch (key->type) {
        case S_TEXT:
        case S_SECRET:
        case S_BODY_TEMPLATE:
            if (!*value && !key->may_be_empty)
                return key->type == S_SECRET
                     ? s_fail (p, "api_key is empty (leave it out for a server without keys)")
                     : s_fail (p, "%s must not be empty", key->name);
            if (key->type == S_BODY_TEMPLATE && kf_template_each (value, s_check_entity, p))
                return -1;
            free (*(char **) field);
            *(char **) field = kf_strdup (value);
            return 0;
        case S_NAME: {
            s_ref_t *ref = field;
            if (!*value)
                return s_fail (p, "%s must not be empty", key->name);
            free (ref->name);
            free (ref->shown);
            ref->name = kf_strdup (value);
            ref->shown = p->ini.raw ? kf_strdup (p->ini.raw) : NULL;
            ref->line = p->ini.line;
            return 0;
        }
        case S_HEADERS:
            return s_store_headers (p, field, value);
        case S_URL:
        case S_URL_TEMPLATE: {
            if (kf_ini_url (&p->ini, key->name, value))
                return -1;
            if (key->type == S_URL_TEMPLATE && kf_template_each (value, s_check_entity, p))
                return -1;
            *(char **) field = kf_strdup (value);
            return 0;
        }
        case S_METHOD: {
            static const char *const methods [] = { "GET", "POST", NULL };
            int index;
            if (kf_ini_choice (&p->ini, key->name, value, methods, &index))
                return -1;
            *(bool *) field = index == 1;
            return 0;
        }
        case S_REQUIRES:
            return s_store_requires (p, field, value);
        case S_REGEX:
            return s_store_regex (p, key, field, value);
        case S_KIND:
        case S_MODE: {
            //  In the order of kf_llm_kind_t and kf_llm_mode_t
            static const char *const kinds [] = { "openai", "dify", NULL };
            static const char *const modes [] = { "off", "fallback", "always", NULL };
            return kf_ini_choice (&p->ini, key->name, value, key->type == S_KIND ? kinds : modes,
                                  field);
        }
        case S_BOOL:
            return kf_ini_bool (&p->ini, key->name, value, field);
        case S_INT:
        case S_REAL: {
            double number;
            if (kf_ini_number (&p->ini, key->name, value, key->type == S_INT, key->min, key->max,
                               &number))
                return -1;
            if (key->type == S_INT)
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
    const s_key_t *table = p->upstream ? s_upstream_keys : p->business ? s_business_keys : s_bot_keys;
    size_t count = p->upstream ? S_COUNT (s_upstream_keys)
                 : p->business ? S_COUNT (s_business_keys) : S_COUNT (s_bot_keys);
    char *base = p->upstream ? (char *) p->upstream
               : p->business ? (char *) p->business : (char *) p->bot;
    uint32_t *seen = p->upstream ? &p->upstream->seen
                   : p->business ? &p->business->seen : &p->bot->seen;
    size_t index = 0;
    while (index < count && strcmp (table [index].name, key) != 0)
        index++;
    if (index == count)
        return s_fail (p, "unknown key '%.*s' in %s", kf_ini_echo_len (key), key,
                       s_section_name (p, section, sizeof section));
    if (*seen & (1u << index))
        return s_fail (p, "duplicate key '%s' in %s", key,
                       s_section_name (p, section, sizeof section));
    char value [KF_CONFIG_VALUE_MAX + 1];
    int rc = kf_ini_value (&p->ini, key, raw, expand, value);
    if (rc == 0)
        rc = s_store (p, &table [index], base, value);
    explicit_bzero (value, sizeof value);
    if (rc == 0)
        *seen |= 1u << index;
    p->ini.raw = NULL;
    return rc;
}

//  kf_ini_key_fn: a `key = value` line of the file
static int
s_on_key (void *arg, kf_ini_t *ini, char *key, char *raw)
{
    (void) ini;
    s_parser_t *p = arg;
    if (!p->upstream && !p->business && !p->bot)
        return s_fail (p, "key '%.*s' outside any section", kf_ini_echo_len (key), key);
    return s_assign (p, key, raw, true);
}

//  ---------------------------------------------------------------------------------------------
//  Sources: the environment, the file, then the checks across sections

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
                p->ini.source = others [i];
                return s_fail (p, "set, but KEFU_LLM_BASE_URL is not");
            }
        return 0;
    }
    const char *kind = s_getenv ("KEFU_LLM_KIND");
    const char *api_key = s_getenv ("KEFU_LLM_API_KEY");
    const char *model = s_getenv ("KEFU_LLM_MODEL");
    const char *mode = s_getenv ("KEFU_LLM_MODE");
    p->ini.source = "KEFU_LLM_BASE_URL";
    p->ini.line = 0;
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
        p->ini.source = sets [i].variable;
        if (sets [i].value && s_assign (p, sets [i].key, sets [i].value, false))
            return -1;
    }
    if (p->upstream->pub.kind == KF_LLM_OPENAI && !model) {
        p->ini.source = "KEFU_LLM_MODEL";
        return s_fail (p, "not set, and KEFU_LLM_KIND openai needs a model");
    }
    if (p->upstream->pub.kind == KF_LLM_DIFY && !api_key) {
        p->ini.source = "KEFU_LLM_API_KEY";
        return s_fail (p, "not set, and KEFU_LLM_KIND dify needs the app's API key");
    }
    p->upstream = NULL;
    p->ini.source = "KEFU_LLM_MODE";
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

static int
s_check_upstream (s_parser_t *p, s_upstream_t *upstream)
{
    const char *name = upstream->pub.name;
    p->ini.source = upstream->source;
    p->ini.line = upstream->line;
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
    return 0;
}

static int
s_check_business (s_parser_t *p, s_business_t *business)
{
    const char *name = business->pub.name;
    p->ini.source = business->source;
    p->ini.line = business->line;
#define S_HAS(key) s_has_key (business->seen, s_business_keys, S_COUNT (s_business_keys), key)
    if (!S_HAS ("url"))
        return s_fail (p, "[business %s] needs url", name);
    if (!S_HAS ("reply"))
        return s_fail (p, "[business %s] needs reply (the answer template)", name);
    if (S_HAS ("body") && !business->pub.is_post)
        return s_fail (p, "[business %s] has a body but method GET (method = POST)", name);
#undef S_HAS
    return 0;
}

//  Fails on `ref` naming no section (`found` NULL) of kind `what`, at the line of its key
static int
s_check_ref (s_parser_t *p, const s_bot_t *bot, const s_ref_t *ref, const char *what,
             const void *found)
{
    const char *shown = ref->shown ? ref->shown : ref->name;
    p->ini.line = ref->line;
    if (!found)
        return s_fail (p, "[bot %s] names unknown %s '%.*s'", bot->pub.bot_id, what,
                       kf_ini_echo_len (shown), shown);
    p->ini.line = bot->line;
    return 0;
}

static int
s_check_bot (s_parser_t *p, s_bot_t *bot)
{
    kf_config_t *config = p->config;
    p->ini.source = bot->source;
    p->ini.line = bot->line;
    if (bot->business.name) {
        s_business_t **business = s_find_business (config, bot->business.name);
        if (s_check_ref (p, bot, &bot->business, "business", business))
            return -1;
        bot->pub.business = &(*business)->pub;
    }
    if (bot->upstream.name) {
        s_upstream_t **upstream = s_find_upstream (config, bot->upstream.name);
        if (s_check_ref (p, bot, &bot->upstream, "upstream", upstream))
            return -1;
        bot->pub.upstream = &(*upstream)->pub;
    }
    else
    if (bot->pub.llm != KF_LLM_OFF) {
        //  A section for a business API alone needs no `llm = off`
        if (bot->business.name && !s_has_key (bot->seen, s_bot_keys, S_COUNT (s_bot_keys), "llm"))
            bot->pub.llm = KF_LLM_OFF;
        else
            return s_fail (p, "[bot %s] needs upstream (or llm = off)", bot->pub.bot_id);
    }
    return 0;
}

//  What needs every section read: required keys, the upstreams and APIs bots name
static int
s_check (s_parser_t *p)
{
    kf_config_t *config = p->config;
    for (size_t i = 0; i < config->upstream_count; i++)
        if (s_check_upstream (p, config->upstreams [i]))
            return -1;
    for (size_t i = 0; i < config->business_count; i++)
        if (s_check_business (p, config->businesses [i]))
            return -1;
    for (size_t i = 0; i < config->bot_count; i++)
        if (s_check_bot (p, config->bots [i]))
            return -1;
    return 0;
}

//  ---------------------------------------------------------------------------------------------
//  Public interface

kf_config_t *
kf_config_load (const char *path, char *err, size_t errlen)
{
    kf_config_t *self = kf_calloc (1, sizeof *self);
    s_parser_t parser = { .ini = { .source = "", .err = err, .errlen = errlen }, .config = self };
    if (err && errlen)
        *err = 0;
    int rc = s_read_env (&parser, path != NULL);
    if (rc == 0 && path) {
        rc = kf_ini_read_file (&parser.ini, path, s_on_section, s_on_key, &parser);
        parser.upstream = NULL;
        parser.business = NULL;
        parser.bot = NULL;
    }
    if (rc || s_check (&parser))
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
    for (size_t i = 0; i < self->business_count; i++)
        s_business_free (self->businesses [i]);
    for (size_t i = 0; i < self->bot_count; i++)
        s_bot_free (self->bots [i]);
    free (self->upstreams);
    free (self->businesses);
    free (self->bots);
    free (self);
    *self_p = NULL;
}

const kf_upstream_config_t *
kf_config_upstream (const kf_config_t *self, const char *name)
{
    s_upstream_t **upstream = s_find_upstream (self, name);
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

const kf_business_config_t *
kf_config_business (const kf_config_t *self, const char *name)
{
    s_business_t **business = name ? s_find_business (self, name) : NULL;
    return business ? &(*business)->pub : NULL;
}

size_t
kf_config_business_count (const kf_config_t *self)
{
    return self->business_count;
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
