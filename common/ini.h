/*  ini.h - the line reader under config.h: INI text (UTF-8, an optional byte order mark, LF or
    CRLF), whole-line comments, `[type name]` headers, `key = value` lines, ${NAME} expansion from
    the environment, and errors as "SOURCE:LINE: what". It knows no keys: the reader calls its
    owner back for every header and every key, and the owner decides what they mean. Errors show
    what the owner chooses; the reader itself never echoes a value (a line may be a pasted key). */
#ifndef KF_INI_H
#define KF_INI_H
#include <stdbool.h>
#include <stddef.h>

#define KF_INI_VALUE_MAX 4096   //  Bytes of one value, before and after expansion

//  Where the reading is, for errors. The owner sets source (and line 0 for a whole source) before
//  reporting errors about something that is not a line of a file.
typedef struct {
    const char *source;         //  The path, or the environment variable being read; borrowed
    int line;                   //  1-based line of the file; 0: the source as a whole
    char *err;                  //  The caller's error buffer (may be NULL)
    size_t errlen;
    const char *raw;            //  Set by kf_ini_value while a checked value came from ${NAME}: its
                                //  text before expansion, which errors show instead (a variable
                                //  may hold a key); NULL otherwise. Borrowed; the owner clears it
} kf_ini_t;

//  A header `[type name]`: both trimmed; name may hold inner spaces and may be empty (the owner
//  checks the type first, then says "section [type] needs a name"). Returns 0, or -1 after
//  kf_ini_fail.
typedef int (kf_ini_section_fn) (void *arg, kf_ini_t *ini, char *type, char *name);

//  A line `key = raw`: key trimmed and not empty, raw trimmed and not yet expanded (see
//  kf_ini_value). Returns 0, or -1 after kf_ini_fail.
typedef int (kf_ini_key_fn) (void *arg, kf_ini_t *ini, char *key, char *raw);

//  Writes "SOURCE:LINE: what" (or "SOURCE: what" when line is 0) into the caller's buffer, always
//  NUL-terminated. Returns -1, so callers can `return kf_ini_fail (...)`.
int kf_ini_fail (kf_ini_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

//  How many bytes of `value` an error may show: at most 64, whole UTF-8 characters.
int kf_ini_echo_len (const char *value);

//  What an error may show of `value`: self->raw when set (the text before ${} expansion), else
//  `value`. Borrowed.
const char *kf_ini_shown (const kf_ini_t *self, const char *value);

//  " (comments go on lines of their own)" when `value` holds # or ;, else "": a hint for values
//  that fail to parse because a comment followed them.
const char *kf_ini_hint (const char *value);

//  Trims spaces and tabs at both ends, in place; returns the first kept byte.
char *kf_ini_trim (char *s);

//  Checks the value `raw` of `key` and writes it into `out` (KF_INI_VALUE_MAX + 1 bytes), ${NAME}
//  expanded from the environment when `expand` ($${ stands for a literal ${). Fails on a value
//  longer than KF_INI_VALUE_MAX (before or after expansion), an unset or empty variable (named,
//  its value never shown), a bad variable name, invalid UTF-8 or a control character. On failure
//  `out` is wiped. Sets self->raw to `raw` when a variable was expanded (else NULL), so that the
//  typed checks below echo `raw`, never a variable's value. Returns 0 or -1.
int kf_ini_value (kf_ini_t *self, const char *key, const char *raw, bool expand, char *out);

//  Typed values. Each checks `value` of `key` and fails (returning -1 after kf_ini_fail, with a
//  message naming the key and, for numbers and booleans, showing the value) or stores it in *out.
//  A plain decimal from min to max (no sign but '-', no exponent, hex, nan or inf; a fraction only
//  when not `is_int`), at most 32 bytes.
int kf_ini_number (kf_ini_t *self, const char *key, const char *value, bool is_int, double min,
                   double max, double *out);

//  One of `names` (a NULL-terminated list, at least two): its index in *out. The error lists
//  them: "kind must be openai or dify, not 'x'".
int kf_ini_choice (kf_ini_t *self, const char *key, const char *value, const char *const *names,
                   int *out);

//  true/false, yes/no (any case), 1/0.
int kf_ini_bool (kf_ini_t *self, const char *key, const char *value, bool *out);

//  An http:// or https:// URL with a host and no spaces (checked only; the value is not shown).
int kf_ini_url (kf_ini_t *self, const char *key, const char *value);

//  "Name: value" lines separated by | (names: letters, digits, '-'), at most `max`, each trimmed:
//  a heap array of heap strings in *lines (the caller frees both, wiping them: they may hold
//  keys) and their number in *count.
int kf_ini_headers (kf_ini_t *self, const char *value, int max, char ***lines, int *count);

//  Reads the file at `path` line by line, calling `on_section` and `on_key` with `arg`. Blank
//  lines and lines starting with # or ; are skipped; a key before any header goes to on_key (the
//  owner refuses it). Stops at the first error. Sets self->source to `path`. Each line is wiped
//  from memory after use (values may be keys). Returns 0 or -1.
int kf_ini_read_file (kf_ini_t *self, const char *path, kf_ini_section_fn *on_section,
                      kf_ini_key_fn *on_key, void *arg);
#endif
