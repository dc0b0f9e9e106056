/*  ini.c - the INI line reader of the configuration: lines, headers, ${NAME} expansion, errors
    with their line numbers. What the keys mean is config.c's. */
#include "common/ini.h"
#include "common/utf8.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "common/log.h"

#define S_ECHO_MAX  64          //  Bytes of a bad value shown in an error

int
kf_ini_fail (kf_ini_t *self, const char *format, ...)
{
    if (!self->err || self->errlen == 0)
        return -1;
    int used = self->line ? snprintf (self->err, self->errlen, "%s:%d: ", self->source, self->line)
                          : snprintf (self->err, self->errlen, "%s: ", self->source);
    if (used >= 0 && (size_t) used < self->errlen) {
        va_list args;
        va_start (args, format);
        vsnprintf (self->err + used, self->errlen - (size_t) used, format, args);
        va_end (args);
    }
    return -1;
}

int
kf_ini_echo_len (const char *value)
{
    size_t len = strlen (value);
    if (len > S_ECHO_MAX)
        len = kf_utf8_complete_prefix (value, S_ECHO_MAX);
    return (int) len;
}

const char *
kf_ini_shown (const kf_ini_t *self, const char *value)
{
    return self->raw ? self->raw : value;
}

const char *
kf_ini_hint (const char *value)
{
    return strpbrk (value, "#;") ? " (comments go on lines of their own)" : "";
}

char *
kf_ini_trim (char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen (s);
    while (len && (s [len - 1] == ' ' || s [len - 1] == '\t'))
        s [--len] = 0;
    return s;
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

//  Expands ${NAME} and $${ in `raw` into `out` (KF_INI_VALUE_MAX + 1 bytes)
static int
s_expand (kf_ini_t *self, const char *key, const char *raw, char *out)
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
                return kf_ini_fail (self, "unterminated ${ in the value of '%s'", key);
            size_t name_len = (size_t) (end - s - 2);
            //  A bad name is not shown: it may be a key pasted in the wrong place
            if (!s_is_var_name (s + 2, name_len))
                return kf_ini_fail (self, "bad environment variable name in the value of '%s' "
                                    "(letters, digits and '_')", key);
            char name [129];
            memcpy (name, s + 2, name_len);
            name [name_len] = 0;
            piece = getenv (name);
            if (!piece)
                return kf_ini_fail (self, "environment variable %s is not set (in '%s')", name, key);
            if (!*piece)
                return kf_ini_fail (self, "environment variable %s is empty (in '%s')", name, key);
            len = strlen (piece);
            s = end + 1;
        }
        else
            s++;
        if (used + len > KF_INI_VALUE_MAX)
            return kf_ini_fail (self, "the value of '%s' is longer than %d bytes after expanding "
                                "variables", key, KF_INI_VALUE_MAX);
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

int
kf_ini_value (kf_ini_t *self, const char *key, const char *raw, bool expand, char *out)
{
    if (strlen (raw) > KF_INI_VALUE_MAX)
        return kf_ini_fail (self, "the value of '%s' is longer than %d bytes", key, KF_INI_VALUE_MAX);
    int rc = 0;
    self->raw = NULL;
    if (expand)
        rc = s_expand (self, key, raw, out);
    if (rc == 0 && expand && strcmp (out, raw) != 0)
        self->raw = raw;
    else
        strcpy (out, raw);
    if (rc == 0 && !kf_utf8_is_valid (out, strlen (out)))
        rc = kf_ini_fail (self, "the value of '%s' is not valid UTF-8", key);
    if (rc == 0 && s_has_control (out, strlen (out)))
        rc = kf_ini_fail (self, "the value of '%s' holds a control character", key);
    if (rc)
        explicit_bzero (out, KF_INI_VALUE_MAX + 1);
    return rc;
}

//  A section header, `text` trimmed and starting with '['
static int
s_header (kf_ini_t *self, char *text, kf_ini_section_fn *on_section, void *arg)
{
    size_t len = strlen (text);
    if (text [len - 1] != ']')
        return kf_ini_fail (self, "a section header must end with ']'%s", kf_ini_hint (text));
    text [len - 1] = 0;
    char *type = kf_ini_trim (text + 1);
    char *name = type + strcspn (type, " \t");
    if (*name)
        *name++ = 0;
    name = kf_ini_trim (name);
    return on_section (arg, self, type, name);
}

//  One line of the file, `len` bytes with its line end
static int
s_line (kf_ini_t *self, char *line, size_t len, kf_ini_section_fn *on_section,
        kf_ini_key_fn *on_key, void *arg)
{
    if (len && line [len - 1] == '\n')
        line [--len] = 0;
    if (len && line [len - 1] == '\r')
        line [--len] = 0;
    if (self->line == 1 && len >= 3 && memcmp (line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3;
        len -= 3;
    }
    if (strlen (line) != len)
        return kf_ini_fail (self, "NUL byte in the line");
    if (!kf_utf8_is_valid (line, len))
        return kf_ini_fail (self, "the line is not valid UTF-8");
    if (s_has_control (line, len))
        return kf_ini_fail (self, "control character in the line");
    char *text = kf_ini_trim (line);
    if (*text == 0 || *text == '#' || *text == ';')
        return 0;
    if (*text == '[')
        return s_header (self, text, on_section, arg);
    //  The line is not shown: it may be a key pasted without its name
    char *equals = strchr (text, '=');
    if (!equals)
        return kf_ini_fail (self, "expected 'key = value', a [section] or a comment");
    *equals = 0;
    char *key = kf_ini_trim (text);
    if (!*key)
        return kf_ini_fail (self, "no key before '='");
    return on_key (arg, self, key, kf_ini_trim (equals + 1));
}

int
kf_ini_read_file (kf_ini_t *self, const char *path, kf_ini_section_fn *on_section,
                  kf_ini_key_fn *on_key, void *arg)
{
    self->source = path;
    self->line = 0;
    FILE *file = fopen (path, "r");
    if (!file)
        return kf_ini_fail (self, "cannot open: %s", strerror (errno));
    char *line = NULL;
    size_t capacity = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline (&line, &capacity, file)) >= 0) {
        self->line++;
        rc = s_line (self, line, (size_t) len, on_section, on_key, arg);
    }
    if (rc == 0 && ferror (file)) {
        self->line = 0;
        rc = kf_ini_fail (self, "cannot read: %s", strerror (errno));
    }
    if (line)
        explicit_bzero (line, capacity);
    free (line);
    fclose (file);
    return rc;
}

int
kf_ini_number (kf_ini_t *self, const char *key, const char *value, bool is_int, double min,
               double max, double *out)
{
    //  Plain decimals only: strtod would take "nan", "inf" and hex
    const char *s = value + (*value == '-');
    size_t digits = strspn (s, "0123456789");
    if (!is_int && s [digits] == '.' && s [digits + 1] >= '0' && s [digits + 1] <= '9')
        s += digits + 1 + strspn (s + digits + 1, "0123456789");
    else
        s += digits;
    const char *shown = kf_ini_shown (self, value);
    int echo = kf_ini_echo_len (shown);
    if (!digits || *s || strlen (value) > 32)
        return kf_ini_fail (self, "%s must be a %s, not '%.*s'%s", key,
                            is_int ? "whole number" : "number", echo, shown, kf_ini_hint (shown));
    double number = strtod (value, NULL);
    if (number < min || number > max)
        return kf_ini_fail (self, "%s must be from %.15g to %.15g, not %.*s", key, min, max, echo,
                            shown);
    *out = number;
    return 0;
}

int
kf_ini_choice (kf_ini_t *self, const char *key, const char *value, const char *const *names,
               int *out)
{
    char list [256] = "";
    int count = 0;
    while (names [count])
        count++;
    for (int i = 0; i < count; i++) {
        if (strcmp (value, names [i]) == 0) {
            *out = i;
            return 0;
        }
        size_t used = strlen (list);
        snprintf (list + used, sizeof list - used, "%s%s", i == 0 ? "" : i == count - 1 ? " or " : ", ",
                  names [i]);
    }
    const char *shown = kf_ini_shown (self, value);
    return kf_ini_fail (self, "%s must be %s, not '%.*s'%s", key, list, kf_ini_echo_len (shown),
                        shown, kf_ini_hint (shown));
}

int
kf_ini_bool (kf_ini_t *self, const char *key, const char *value, bool *out)
{
    if (!strcasecmp (value, "true") || !strcasecmp (value, "yes") || !strcmp (value, "1"))
        *out = true;
    else
    if (!strcasecmp (value, "false") || !strcasecmp (value, "no") || !strcmp (value, "0"))
        *out = false;
    else {
        const char *shown = kf_ini_shown (self, value);
        return kf_ini_fail (self, "%s must be true or false (yes/no, 1/0), not '%.*s'%s", key,
                            kf_ini_echo_len (shown), shown, kf_ini_hint (shown));
    }
    return 0;
}

int
kf_ini_url (kf_ini_t *self, const char *key, const char *value)
{
    size_t skip = strncasecmp (value, "https://", 8) == 0 ? 8
                : strncasecmp (value, "http://", 7) == 0 ? 7 : 0;
    if (!skip || !value [skip] || value [skip] == '/' || strpbrk (value, " \t"))
        return kf_ini_fail (self, "%s must be an http:// or https:// URL without spaces", key);
    return 0;
}

int
kf_ini_headers (kf_ini_t *self, const char *value, int max, char ***lines_p, int *count_p)
{
    char copy [KF_INI_VALUE_MAX + 1];
    snprintf (copy, sizeof copy, "%s", value);
    char **lines = kf_calloc ((unsigned long) max, sizeof (char *));
    int count = 0, rc = 0;
    for (char *next = copy, *line; rc == 0 && (line = strsep (&next, "|")) != NULL;) {
        line = kf_ini_trim (line);
        size_t name_len = strspn (line, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                        "0123456789-");
        if (name_len == 0 || line [name_len] != ':')
            rc = kf_ini_fail (self, "headers must be \"Name: value\" lines separated by |");
        else
        if (count == max)
            rc = kf_ini_fail (self, "headers may hold at most %d lines", max);
        else
            lines [count++] = kf_strdup (line);
    }
    explicit_bzero (copy, sizeof copy);
    if (rc) {
        for (int i = 0; i < count; i++) {
            explicit_bzero (lines [i], strlen (lines [i]));
            free (lines [i]);
        }
        free (lines);
        return rc;
    }
    *lines_p = lines;
    *count_p = count;
    return 0;
}
