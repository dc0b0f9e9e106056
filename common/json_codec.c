/*  json_codec.c - JSON text <-> msgpack: a strict recursive-descent parser and a JSON renderer. */
#include "common/json_codec.h"
#include "common/mpack.h"

#include <float.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KF_JSON_MAX_DEPTH 64

//  ---------------------------------------------------------------------------------------------
//  Growable byte buffer, always NUL-terminated once it holds anything; aborts on OOM.

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} strbuf_t;

static void s_buf_reserve (strbuf_t *b, size_t extra)
{
    if (extra >= SIZE_MAX / 2 - b->len)
        abort ();
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *data = realloc (b->data, cap);
    if (!data)
        abort ();
    b->data = data;
    b->cap = cap;
}

static void s_buf_put (strbuf_t *b, const void *src, size_t n)
{
    if (n == 0)
        return;
    s_buf_reserve (b, n);
    memcpy (b->data + b->len, src, n);
    b->len += n;
    b->data [b->len] = '\0';
}

static void s_buf_putc (strbuf_t *b, char c)
{
    s_buf_put (b, &c, 1);
}

static void s_buf_puts (strbuf_t *b, const char *s)
{
    s_buf_put (b, s, strlen (s));
}

//  Hands the buffer's memory to the caller as a NUL-terminated string (never NULL).
static char *s_buf_finish (strbuf_t *b)
{
    s_buf_reserve (b, 0);
    b->data [b->len] = '\0';
    return b->data;
}

//  ---------------------------------------------------------------------------------------------
//  strtod and printf follow LC_NUMERIC; a program that called setlocale (LC_ALL, "") could get
//  "1,5". We switch the calling thread to the C locale for the duration of each public call.

static pthread_once_t s_c_locale_once = PTHREAD_ONCE_INIT;
static locale_t s_c_locale;

static void s_c_locale_init (void)
{
    s_c_locale = newlocale (LC_ALL_MASK, "C", (locale_t) 0);
    if (!s_c_locale)
        abort ();
}

static locale_t s_c_locale_enter (void)
{
    pthread_once (&s_c_locale_once, s_c_locale_init);
    return uselocale (s_c_locale);
}

static void s_c_locale_leave (locale_t previous)
{
    if (previous)
        uselocale (previous);
}

//  ---------------------------------------------------------------------------------------------
//  UTF-8 helpers shared by parser and renderer.

//  Returns the length (1-4) of the well-formed UTF-8 sequence at `p` (`n` bytes available), or 0
//  when it is ill-formed: overlong forms, encoded surrogates, > U+10FFFF and truncation included.
static size_t s_utf8_len (const unsigned char *p, size_t n)
{
    unsigned char c = p [0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    }
    else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    }
    else
        return 0;
    if (n < need || p [1] < lo || p [1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if ((p [i] & 0xC0) != 0x80)
            return 0;
    return need;
}

static void s_put_utf8 (strbuf_t *b, uint32_t cp)
{
    unsigned char out [4];
    size_t n;
    if (cp < 0x80) {
        out [0] = (unsigned char) cp;
        n = 1;
    }
    else if (cp < 0x800) {
        out [0] = (unsigned char) (0xC0 | (cp >> 6));
        n = 2;
    }
    else if (cp < 0x10000) {
        out [0] = (unsigned char) (0xE0 | (cp >> 12));
        n = 3;
    }
    else {
        out [0] = (unsigned char) (0xF0 | (cp >> 18));
        n = 4;
    }
    for (size_t i = 1; i < n; i++)
        out [i] = (unsigned char) (0x80 | ((cp >> (6 * (n - 1 - i))) & 0x3F));
    s_buf_put (b, out, n);
}

//  ---------------------------------------------------------------------------------------------
//  Parser: strict RFC 8259 JSON, packing straight into the caller's packer.

typedef struct {
    const unsigned char *src;
    size_t len;
    size_t pos;
    int depth;
    msgpack_packer *pk;
    strbuf_t scratch;                   //  decoded string or number text
    uint32_t *counts;                   //  member count of each container, in opening order
    size_t counts_used;
    size_t counts_cap;
    size_t counts_next;                 //  next container the parser will open
    char *err;
    size_t errlen;
} parser_t;

__attribute__ ((format (printf, 3, 4)))
static int s_fail (parser_t *p, size_t at, const char *fmt, ...)
{
    char what [96];
    va_list args;
    va_start (args, fmt);
    vsnprintf (what, sizeof what, fmt, args);
    va_end (args);
    if (p->err && p->errlen > 0)
        snprintf (p->err, p->errlen, "%s at byte %zu", what, at);
    return -1;
}

//  Reports the byte at the current position (or the end of input) as unexpected.
static int s_unexpected (parser_t *p)
{
    if (p->pos >= p->len)
        return s_fail (p, p->pos, "unexpected end of input");
    unsigned char c = p->src [p->pos];
    if (c > 0x20 && c < 0x7F)
        return s_fail (p, p->pos, "unexpected character '%c'", c);
    return s_fail (p, p->pos, "unexpected byte 0x%02x", c);
}

static int s_packed (parser_t *p, int rc)
{
    return rc == 0 ? 0 : s_fail (p, p->pos, "msgpack packer write failed");
}

static void s_skip_ws (parser_t *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->src [p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

//  Skips whitespace and consumes `want`, or fails with message `what`.
static int s_expect (parser_t *p, char want, const char *what)
{
    s_skip_ws (p);
    if (p->pos >= p->len)
        return s_fail (p, p->pos, "unexpected end of input");
    if (p->src [p->pos] != (unsigned char) want)
        return s_fail (p, p->pos, "%s", what);
    p->pos++;
    return 0;
}

static int s_parse_value (parser_t *p);

//  Returns the index of the quote closing the string that opens at `i`, or len if unterminated.
static size_t s_skip_string (const parser_t *p, size_t i)
{
    while (true) {
        const unsigned char *quote = memchr (p->src + i + 1, '"', p->len - i - 1);
        if (!quote)
            return p->len;
        i = (size_t) (quote - p->src);
        size_t backslashes = 0;
        while (p->src [i - 1 - backslashes] == '\\')
            backslashes++;              //  stops at the opening quote at the latest
        if (backslashes % 2 == 0)
            return i;
    }
}

//  Appends a zero member count for a newly opened container; returns its index.
static size_t s_add_count (parser_t *p)
{
    if (p->counts_used == p->counts_cap) {
        size_t cap = p->counts_cap ? p->counts_cap * 2 : 64;
        uint32_t *counts = realloc (p->counts, cap * sizeof *counts);
        if (!counts)
            abort ();
        p->counts = counts;
        p->counts_cap = cap;
    }
    p->counts [p->counts_used] = 0;
    return p->counts_used++;
}

//  msgpack wants a container's size before its members, so one linear pre-pass records the
//  member count of every container in opening order (1 + commas, or 0 if empty; saturating).
//  Exact for well-formed input; on malformed input the parse fails before a wrong count matters.
static void s_count_members (parser_t *p)
{
    size_t stack [KF_JSON_MAX_DEPTH], depth = 0;
    for (size_t i = 0; i < p->len; i++) {
        unsigned char c = p->src [i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            continue;
        if (c == ']' || c == '}') {
            if (depth > 0)
                depth--;
            continue;
        }
        if (depth > 0 && depth <= KF_JSON_MAX_DEPTH) {
            uint32_t *count = &p->counts [stack [depth - 1]];
            if (c == ',' && *count < UINT32_MAX)
                (*count)++;
            else if (c != ',' && *count == 0)
                *count = 1;
        }
        if (c == '"')
            i = s_skip_string (p, i);
        else if (c == '[' || c == '{') {
            if (depth < KF_JSON_MAX_DEPTH)
                stack [depth] = s_add_count (p);
            depth++;
        }
    }
}

//  Consumes an opening bracket, enforcing the depth limit; stores the member count.
static int s_open_container (parser_t *p, uint32_t *count)
{
    if (++p->depth > KF_JSON_MAX_DEPTH)
        return s_fail (p, p->pos, "nesting deeper than %d", KF_JSON_MAX_DEPTH);
    if (p->counts_next >= p->counts_used)
        return s_fail (p, p->pos, "internal error: container count missing");
    *count = p->counts [p->counts_next++];
    if (*count == UINT32_MAX)
        return s_fail (p, p->pos, "too many members");
    p->pos++;
    return 0;
}

static int s_parse_array (parser_t *p)
{
    uint32_t count;
    if (s_open_container (p, &count) || s_packed (p, msgpack_pack_array (p->pk, count)))
        return -1;
    for (uint32_t i = 0; i < count; i++) {
        if (i > 0 && s_expect (p, ',', "expected ',' or ']'"))
            return -1;
        if (s_parse_value (p))
            return -1;
    }
    p->depth--;
    return s_expect (p, ']', "expected ',' or ']'");
}

static int s_parse_string (parser_t *p);

static int s_parse_object (parser_t *p)
{
    uint32_t count;
    if (s_open_container (p, &count) || s_packed (p, msgpack_pack_map (p->pk, count)))
        return -1;
    for (uint32_t i = 0; i < count; i++) {
        if (i > 0 && s_expect (p, ',', "expected ',' or '}'"))
            return -1;
        s_skip_ws (p);
        if (p->pos < p->len && p->src [p->pos] != '"')
            return s_fail (p, p->pos, "expected string key");
        if (p->pos >= p->len)
            return s_unexpected (p);
        if (s_parse_string (p) || s_expect (p, ':', "expected ':'") || s_parse_value (p))
            return -1;
    }
    p->depth--;
    return s_expect (p, '}', "expected ',' or '}'");
}

//  Reads 4 hex digits at `at` into `cp`.
static int s_read_hex4 (parser_t *p, size_t at, uint32_t *cp)
{
    *cp = 0;
    for (size_t i = at; i < at + 4; i++) {
        if (i >= p->len)
            return s_fail (p, i, "unexpected end of input in string");
        unsigned char c = p->src [i];
        uint32_t digit;
        if (c >= '0' && c <= '9')
            digit = c - '0';
        else if (c >= 'a' && c <= 'f')
            digit = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            digit = c - 'A' + 10;
        else
            return s_fail (p, i, "invalid \\u escape");
        *cp = *cp * 16 + digit;
    }
    return 0;
}

//  Decodes a \uXXXX escape (plus the low half of a surrogate pair) at the current position.
static int s_decode_unicode (parser_t *p)
{
    size_t at = p->pos;
    uint32_t cp, low;
    if (s_read_hex4 (p, at + 2, &cp))
        return -1;
    p->pos += 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return s_fail (p, at, "lone surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (p->pos >= p->len)
            return s_fail (p, p->pos, "unexpected end of input in string");
        if (p->pos + 1 >= p->len || p->src [p->pos] != '\\' || p->src [p->pos + 1] != 'u')
            return s_fail (p, at, "lone surrogate");
        if (s_read_hex4 (p, p->pos + 2, &low))
            return -1;
        if (low < 0xDC00 || low > 0xDFFF)
            return s_fail (p, at, "lone surrogate");
        p->pos += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    s_put_utf8 (&p->scratch, cp);
    return 0;
}

//  Decodes the backslash escape at the current position into the scratch buffer.
static int s_decode_escape (parser_t *p)
{
    static const char from [] = "\"\\/bfnrt";
    static const char to [] = "\"\\/\b\f\n\r\t";
    if (p->pos + 1 >= p->len)
        return s_fail (p, p->len, "unexpected end of input in string");
    char c = (char) p->src [p->pos + 1];
    if (c == 'u')
        return s_decode_unicode (p);
    const char *hit = c ? strchr (from, c) : NULL;
    if (!hit)
        return s_fail (p, p->pos, "invalid escape");
    s_buf_putc (&p->scratch, to [hit - from]);
    p->pos += 2;
    return 0;
}

//  Copies a run of unescaped, valid UTF-8 string bytes into the scratch buffer.
static int s_take_plain (parser_t *p)
{
    size_t start = p->pos;
    while (p->pos < p->len) {
        unsigned char c = p->src [p->pos];
        if (c == '"' || c == '\\' || c < 0x20)
            break;
        size_t n = s_utf8_len (p->src + p->pos, p->len - p->pos);
        if (n == 0)
            return s_fail (p, p->pos, "invalid UTF-8 in string");
        p->pos += n;
    }
    s_buf_put (&p->scratch, p->src + start, p->pos - start);
    return 0;
}

//  Decodes the string starting at the opening quote into the scratch buffer.
static int s_decode_string (parser_t *p)
{
    p->scratch.len = 0;
    p->pos++;
    while (true) {
        if (s_take_plain (p))
            return -1;
        if (p->pos >= p->len)
            return s_fail (p, p->pos, "unexpected end of input in string");
        unsigned char c = p->src [p->pos];
        if (c == '"') {
            p->pos++;
            return 0;
        }
        if (c < 0x20)
            return s_fail (p, p->pos, "control character in string");
        if (s_decode_escape (p))
            return -1;
    }
}

static int s_parse_string (parser_t *p)
{
    size_t start = p->pos;
    if (s_decode_string (p))
        return -1;
    const strbuf_t *s = &p->scratch;
    if (s->len > UINT32_MAX)
        return s_fail (p, start, "string too long");
    if (s_packed (p, msgpack_pack_str (p->pk, s->len)))
        return -1;
    return s->len ? s_packed (p, msgpack_pack_str_body (p->pk, s->data, s->len)) : 0;
}

//  Parses true, false or null.
static int s_parse_literal (parser_t *p, const char *word)
{
    size_t n = strlen (word), avail = p->len - p->pos;
    if (memcmp (p->src + p->pos, word, avail < n ? avail : n) != 0)
        return s_fail (p, p->pos, "invalid literal");
    if (avail < n)
        return s_fail (p, p->len, "unexpected end of input");
    p->pos += n;
    if (word [0] == 'n')
        return s_packed (p, msgpack_pack_nil (p->pk));
    return s_packed (p, word [0] == 't' ? msgpack_pack_true (p->pk) : msgpack_pack_false (p->pk));
}

//  Consumes one or more digits, or fails.
static int s_take_digits (parser_t *p)
{
    size_t start = p->pos;
    while (p->pos < p->len && p->src [p->pos] >= '0' && p->src [p->pos] <= '9')
        p->pos++;
    if (p->pos > start)
        return 0;
    return p->pos >= p->len ? s_unexpected (p) : s_fail (p, p->pos, "expected digit");
}

//  Converts integer text to its magnitude; false when it does not fit int64/uint64.
static bool s_integer_fits (const unsigned char *s, size_t n, uint64_t *magnitude)
{
    bool negative = s [0] == '-';
    uint64_t v = 0;
    for (size_t i = negative; i < n; i++) {
        unsigned digit = s [i] - '0';
        if (v > (UINT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    if (negative && v > (uint64_t) INT64_MAX + 1)
        return false;
    *magnitude = v;
    return true;
}

static int s_pack_integer (parser_t *p, bool negative, uint64_t v)
{
    if (!negative || v == 0)
        return s_packed (p, msgpack_pack_uint64 (p->pk, v));
    return s_packed (p, msgpack_pack_int64 (p->pk, -(int64_t) (v - 1) - 1));
}

static int s_pack_double (parser_t *p, size_t start)
{
    p->scratch.len = 0;
    s_buf_put (&p->scratch, p->src + start, p->pos - start);
    double v = strtod (p->scratch.data, NULL);
    if (isinf (v))
        return s_fail (p, start, "number out of range");
    return s_packed (p, msgpack_pack_double (p->pk, v));
}

static int s_parse_number (parser_t *p)
{
    size_t start = p->pos;
    bool is_float = false;
    if (p->src [p->pos] == '-')
        p->pos++;
    if (p->pos < p->len && p->src [p->pos] == '0') {
        p->pos++;
        if (p->pos < p->len && p->src [p->pos] >= '0' && p->src [p->pos] <= '9')
            return s_fail (p, start, "leading zero in number");
    }
    else if (s_take_digits (p))
        return -1;
    if (p->pos < p->len && p->src [p->pos] == '.') {
        p->pos++;
        is_float = true;
        if (s_take_digits (p))
            return -1;
    }
    if (p->pos < p->len && (p->src [p->pos] == 'e' || p->src [p->pos] == 'E')) {
        p->pos++;
        is_float = true;
        if (p->pos < p->len && (p->src [p->pos] == '+' || p->src [p->pos] == '-'))
            p->pos++;
        if (s_take_digits (p))
            return -1;
    }
    uint64_t magnitude;
    if (!is_float && s_integer_fits (p->src + start, p->pos - start, &magnitude))
        return s_pack_integer (p, p->src [start] == '-', magnitude);
    return s_pack_double (p, start);
}

static int s_parse_value (parser_t *p)
{
    s_skip_ws (p);
    if (p->pos >= p->len)
        return s_unexpected (p);
    switch (p->src [p->pos]) {
        case '{': return s_parse_object (p);
        case '[': return s_parse_array (p);
        case '"': return s_parse_string (p);
        case 't': return s_parse_literal (p, "true");
        case 'f': return s_parse_literal (p, "false");
        case 'n': return s_parse_literal (p, "null");
        case '-': return s_parse_number (p);
        default:
            if (p->src [p->pos] >= '0' && p->src [p->pos] <= '9')
                return s_parse_number (p);
            return s_unexpected (p);
    }
}

//  Parses one JSON value into `pk`; 0 on success, -1 with a message in `err` on failure.
//  The caller owns every argument; nothing is kept. See json_codec.h for the full contract.
int kf_json_to_msgpack (const char *json, size_t len, msgpack_packer *pk, char *err, size_t errlen)
{
    parser_t p = {
        .src = (const unsigned char *) json, .len = json ? len : 0,
        .pk = pk, .err = err, .errlen = errlen
    };
    if (err && errlen > 0)
        err [0] = '\0';
    s_buf_reserve (&p.scratch, 0);
    s_count_members (&p);
    locale_t previous = s_c_locale_enter ();
    int rc = s_parse_value (&p);
    if (rc == 0) {
        s_skip_ws (&p);
        if (p.pos < p.len)
            rc = s_fail (&p, p.pos, "unexpected data after value");
    }
    s_c_locale_leave (previous);
    free (p.scratch.data);
    free (p.counts);
    return rc;
}

//  ---------------------------------------------------------------------------------------------
//  Renderer. `level` is the current indent level when pretty printing, or -1 for compact.

static void s_render (strbuf_t *b, const msgpack_object *obj, int level);

//  Writes the JSON escape for '"', '\\' or a control character.
static void s_render_escape (strbuf_t *b, unsigned char c)
{
    char esc [8];
    switch (c) {
        case '"':  s_buf_puts (b, "\\\""); return;
        case '\\': s_buf_puts (b, "\\\\"); return;
        case '\b': s_buf_puts (b, "\\b"); return;
        case '\f': s_buf_puts (b, "\\f"); return;
        case '\n': s_buf_puts (b, "\\n"); return;
        case '\r': s_buf_puts (b, "\\r"); return;
        case '\t': s_buf_puts (b, "\\t"); return;
        default:
            snprintf (esc, sizeof esc, "\\u%04x", c);
            s_buf_puts (b, esc);
    }
}

static void s_render_string (strbuf_t *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *) str;
    s_buf_putc (b, '"');
    for (size_t i = 0; i < n;) {
        size_t run = i;
        while (i < n && s [i] >= 0x20 && s [i] < 0x80 && s [i] != '"' && s [i] != '\\')
            i++;
        s_buf_put (b, s + run, i - run);
        if (i >= n)
            break;
        if (s [i] >= 0x80) {
            size_t k = s_utf8_len (s + i, n - i);
            if (k == 0) {
                s_buf_put (b, "\xEF\xBF\xBD", 3);        //  U+FFFD for each invalid byte
                k = 1;
            }
            else
                s_buf_put (b, s + i, k);
            i += k;
        }
        else
            s_render_escape (b, s [i++]);
    }
    s_buf_putc (b, '"');
}

//  Prints a double as the shortest %.Ng that reads back exactly, keeping it recognisably a float.
static void s_render_double (strbuf_t *b, double v, bool is_float32)
{
    if (!isfinite (v)) {
        s_buf_puts (b, "null");
        return;
    }
    if (is_float32 && fabs (v) > (double) FLT_MAX)
        is_float32 = false;             //  hand-built object; (float) v would be undefined
    char text [40];
    int precision = is_float32 ? 6 : 15, last = is_float32 ? 9 : 17;
    for (; precision <= last; precision++) {
        snprintf (text, sizeof text, "%.*g", precision, v);
        if (is_float32 ? strtof (text, NULL) == (float) v : strtod (text, NULL) == v)
            break;
    }
    s_buf_puts (b, text);
    if (!strpbrk (text, ".e"))
        s_buf_puts (b, ".0");
}

static void s_render_newline (strbuf_t *b, int level)
{
    if (level < 0)
        return;
    s_buf_reserve (b, 1 + 2 * (size_t) level);
    b->data [b->len++] = '\n';
    memset (b->data + b->len, ' ', 2 * (size_t) level);
    b->len += 2 * (size_t) level;
    b->data [b->len] = '\0';
}

static int s_child_level (int level)
{
    return level < 0 ? -1 : level + 1;
}

static void s_render_array (strbuf_t *b, const msgpack_object_array *array, int level)
{
    s_buf_putc (b, '[');
    for (uint32_t i = 0; i < array->size; i++) {
        if (i > 0)
            s_buf_putc (b, ',');
        s_render_newline (b, s_child_level (level));
        s_render (b, &array->ptr [i], s_child_level (level));
    }
    if (array->size > 0)
        s_render_newline (b, level);
    s_buf_putc (b, ']');
}

//  str and bin keys render as strings; any other key as its compact JSON text in a string.
static void s_render_key (strbuf_t *b, const msgpack_object *key)
{
    if (key->type == MSGPACK_OBJECT_STR)
        s_render_string (b, key->via.str.ptr, key->via.str.size);
    else if (key->type == MSGPACK_OBJECT_BIN)
        s_render_string (b, key->via.bin.ptr, key->via.bin.size);
    else {
        strbuf_t text = { 0 };
        s_render (&text, key, -1);
        s_render_string (b, text.data, text.len);
        free (text.data);
    }
}

static void s_render_map (strbuf_t *b, const msgpack_object_map *map, int level)
{
    s_buf_putc (b, '{');
    for (uint32_t i = 0; i < map->size; i++) {
        if (i > 0)
            s_buf_putc (b, ',');
        s_render_newline (b, s_child_level (level));
        s_render_key (b, &map->ptr [i].key);
        s_buf_puts (b, level < 0 ? ":" : ": ");
        s_render (b, &map->ptr [i].val, s_child_level (level));
    }
    if (map->size > 0)
        s_render_newline (b, level);
    s_buf_putc (b, '}');
}

static void s_render (strbuf_t *b, const msgpack_object *obj, int level)
{
    char number [32];
    switch (obj->type) {
        case MSGPACK_OBJECT_BOOLEAN:
            s_buf_puts (b, obj->via.boolean ? "true" : "false");
            break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            snprintf (number, sizeof number, "%" PRIu64, obj->via.u64);
            s_buf_puts (b, number);
            break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            snprintf (number, sizeof number, "%" PRId64, obj->via.i64);
            s_buf_puts (b, number);
            break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            s_render_double (b, obj->via.f64, obj->type == MSGPACK_OBJECT_FLOAT32);
            break;
        case MSGPACK_OBJECT_STR:
            s_render_string (b, obj->via.str.ptr, obj->via.str.size);
            break;
        case MSGPACK_OBJECT_BIN:
            s_render_string (b, obj->via.bin.ptr, obj->via.bin.size);
            break;
        case MSGPACK_OBJECT_ARRAY:
            s_render_array (b, &obj->via.array, level);
            break;
        case MSGPACK_OBJECT_MAP:
            s_render_map (b, &obj->via.map, level);
            break;
        case MSGPACK_OBJECT_NIL:
        case MSGPACK_OBJECT_EXT:
        default:                        //  nil, ext and anything unknown render as null
            s_buf_puts (b, "null");
            break;
    }
}

static char *s_render_root (const msgpack_object *obj, int level)
{
    strbuf_t b = { 0 };
    locale_t previous = s_c_locale_enter ();
    if (obj)
        s_render (&b, obj, level);
    else
        s_buf_puts (&b, "null");
    s_c_locale_leave (previous);
    return s_buf_finish (&b);
}

//  Renders `obj` as compact JSON; returns a heap string the caller frees, never NULL.
char *kf_json_from_msgpack (const msgpack_object *obj)
{
    return s_render_root (obj, -1);
}

//  Renders `obj` as JSON indented by 2 spaces; returns a heap string the caller frees, never NULL.
char *kf_json_from_msgpack_pretty (const msgpack_object *obj)
{
    return s_render_root (obj, 0);
}

void
kf_json_pack_text (msgpack_packer *pk, const char *json)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer scratch;
    msgpack_packer_init (&scratch, &buffer, msgpack_sbuffer_write);
    //  Parsed aside first: a value that fails halfway must not leave half a value in `pk`
    if (json && kf_json_to_msgpack (json, strlen (json), &scratch, NULL, 0) == 0)
        pk->callback (pk->data, buffer.data, buffer.size);
    else
        msgpack_pack_nil (pk);
    msgpack_sbuffer_destroy (&buffer);
}

bool
kf_json_unpack (const char *json, msgpack_unpacked *result)
{
    return kf_json_unpack_len (json, json ? strlen (json) : 0, result);
}

bool
kf_json_unpack_len (const char *json, size_t len, msgpack_unpacked *result)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_unpacked_init (result);
    bool is_ok = json && len && kf_json_to_msgpack (json, len, &pk, NULL, 0) == 0
              && kf_mp_unpack_one (buffer.data, buffer.size, result);
    msgpack_sbuffer_destroy (&buffer);
    return is_ok;
}
