/*  text_template.c - "{name}" placeholders found, checked and filled. */
#include "common/text_template.h"
#include "common/log.h"
#include "common/utf8.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;
    size_t len, size;
} s_out_t;

static void
s_put (s_out_t *out, const char *data, size_t len)
{
    if (out->len + len + 1 > out->size) {
        out->size = (out->len + len + 1) * 2;
        out->data = kf_realloc (out->data, out->size);
    }
    memcpy (out->data + out->len, data, len);
    out->len += len;
    out->data [out->len] = 0;
}

static bool
s_is_name_byte (char c, bool is_first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
        || (!is_first && (c == '.' || c == '-'));
}

//  Whether a placeholder starts at `s` ('{'): its name, its default (NULL when none) and its
//  whole length
static bool
s_placeholder (const char *s, size_t *name_len, const char **dflt, size_t *dflt_len, size_t *whole)
{
    size_t i = 1;
    while (s_is_name_byte (s [i], i == 1))
        i++;
    if (i == 1)
        return false;
    *name_len = i - 1;
    *dflt = NULL;
    *dflt_len = 0;
    if (s [i] == '|') {
        const char *end = strchr (s + i + 1, '}');
        if (!end)
            return false;
        *dflt = s + i + 1;
        *dflt_len = (size_t) (end - *dflt);
        i = (size_t) (end - s);
    }
    if (s [i] != '}')
        return false;
    *whole = i + 1;
    return true;
}

int
kf_template_each (const char *text, kf_template_name_fn *fn, void *arg)
{
    for (const char *s = text; *s; s++) {
        size_t name_len, dflt_len, whole;
        const char *dflt;
        if (s [0] == '{' && s [1] == '{')
            s++;
        else
        if (s [0] == '{' && s_placeholder (s, &name_len, &dflt, &dflt_len, &whole)) {
            int rc = fn (arg, s + 1, name_len);
            if (rc)
                return rc;
            s += whole - 1;
        }
    }
    return 0;
}

static void
s_put_escaped (s_out_t *out, const char *value, size_t len, kf_template_escape_t escape)
{
    if (escape == KF_TEMPLATE_PLAIN) {
        s_put (out, value, len);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) value [i];
        char code [8];
        if (escape == KF_TEMPLATE_URL) {
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
            ||  c == '-' || c == '.' || c == '_' || c == '~')
                s_put (out, value + i, 1);
            else {
                snprintf (code, sizeof code, "%%%02X", c);
                s_put (out, code, 3);
            }
        }
        else
        if (c == '"' || c == '\\') {
            code [0] = '\\';
            code [1] = (char) c;
            s_put (out, code, 2);
        }
        else
        if (c < 0x20 || c == 0x7f) {
            snprintf (code, sizeof code, "\\u%04x", c);
            s_put (out, code, 6);
        }
        else
            s_put (out, value + i, 1);
    }
}

char *
kf_template_fill (const char *text, kf_template_escape_t escape, kf_template_lookup_fn *lookup,
                  void *arg, size_t max)
{
    s_out_t out = { kf_calloc (1, 64), 0, 64 };
    const char *s = text;
    while (*s && (max == 0 || out.len < max)) {
        size_t name_len, dflt_len, whole;
        const char *dflt;
        if (s [0] == '{' && s [1] == '{') {
            s_put (&out, "{", 1);
            s += 2;
        }
        else
        if (s [0] == '{' && s_placeholder (s, &name_len, &dflt, &dflt_len, &whole)) {
            size_t value_len = 0;
            const char *value = lookup (arg, s + 1, name_len, &value_len);
            if (value)
                s_put_escaped (&out, value, value_len, escape);
            else
            if (dflt)
                s_put (&out, dflt, dflt_len);
            s += whole;
        }
        else {
            size_t run = 1 + strcspn (s + 1, "{");
            s_put (&out, s, run);
            s += run;
        }
    }
    if (max && out.len > max) {
        out.len = kf_utf8_complete_prefix (out.data, max);
        out.data [out.len] = 0;
    }
    return out.data;
}
