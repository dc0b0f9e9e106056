/*  text_template.h - "{name}" templates: a business API's URL, body and reply (config.h). A
    placeholder is { then a name (letters, digits, '_', then also '.' and '-') then }, or
    {name|default} where the default (any text without '}') stands in for a value the lookup does
    not have. {{ is a literal {. Anything else is text: a '{' not followed by a name and a '}' (a
    JSON body's own braces) stays as it is, so templates need no other escaping. */
#ifndef KF_TEXT_TEMPLATE_H
#define KF_TEXT_TEMPLATE_H
#include <stdbool.h>
#include <stddef.h>

//  How a value is written into the text.
typedef enum {
    KF_TEMPLATE_PLAIN,          //  As it is
    KF_TEMPLATE_URL,            //  Percent-encoded: every byte but A-Z a-z 0-9 - . _ ~
    KF_TEMPLATE_JSON            //  Escaped for the inside of a JSON string
} kf_template_escape_t;

//  The value of placeholder `name` (`len` bytes, not NUL-terminated): returns it with its length
//  in *value_len, borrowed until the next call, or NULL when there is none (the default, or
//  nothing, is written then).
typedef const char *(kf_template_lookup_fn) (void *arg, const char *name, size_t len,
                                             size_t *value_len);

//  Calls `fn` for every placeholder of `text` in order, with its name; stops at the first
//  non-zero return and returns it, else 0.
typedef int (kf_template_name_fn) (void *arg, const char *name, size_t len);
int kf_template_each (const char *text, kf_template_name_fn *fn, void *arg);

//  Fills `text` with the values `lookup` gives, escaped by `escape` (defaults are written as they
//  are). The result is cut at `max` bytes (0: no limit), at a whole UTF-8 character. Returns a
//  heap string the caller frees; never NULL (aborts on OOM).
char *kf_template_fill (const char *text, kf_template_escape_t escape, kf_template_lookup_fn *lookup,
                        void *arg, size_t max);
#endif
