/*  entities.c - order and phone numbers in a message: fold to ASCII, match, map back. */
#include "workers/entities.h"
#include "common/config.h"
#include "common/log.h"
#include "common/utf8.h"
#include <pthread.h>
#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_TEXT_MAX 8192         //  Bytes of a message looked at: entities come early, and regexec
                                //  on a long text costs per byte

//  Every pattern compiled so far, for the process's life: patterns come from the configuration
//  (one per bot at most), so each is compiled once, never per message. Nodes never move, so a
//  regex found stays valid without the lock (regexec on one regex_t from several threads is safe).
typedef struct s_compiled_t {
    char *pattern;
    regex_t regex;
    struct s_compiled_t *next;
} s_compiled_t;
static s_compiled_t *s_cache;
static pthread_mutex_t s_cache_lock = PTHREAD_MUTEX_INITIALIZER;

//  The compiled `pattern`; NULL when it does not compile
static const regex_t *
s_compiled (const char *pattern)
{
    pthread_mutex_lock (&s_cache_lock);
    s_compiled_t *node = s_cache;
    while (node && strcmp (node->pattern, pattern) != 0)
        node = node->next;
    if (!node) {
        node = kf_calloc (1, sizeof *node);
        if (regcomp (&node->regex, pattern, REG_EXTENDED | REG_ICASE) == 0) {
            node->pattern = kf_strdup (pattern);
            node->next = s_cache;
            s_cache = node;
        }
        else {
            free (node);
            node = NULL;
        }
    }
    pthread_mutex_unlock (&s_cache_lock);
    return node ? &node->regex : NULL;
}

//  The ASCII a full-width or dash character folds to, or 0
static char
s_fold_char (uint32_t code)
{
    if (code >= 0xFF01 && code <= 0xFF5E)
        return (char) (code - 0xFEE0);
    if (code == 0x3000)
        return ' ';
    if ((code >= 0x2010 && code <= 0x2015) || code == 0x2212 || code == 0xFE58 || code == 0xFE63)
        return '-';
    return 0;
}

//  Folds `text` into `folded` (NUL-terminated; at most `len` bytes) and, per folded byte, its
//  original offset in `at` (one more entry: the end). Returns the folded length.
static size_t
s_fold (const char *text, size_t len, char *folded, size_t *at)
{
    size_t out = 0;
    for (size_t i = 0; i < len;) {
        //  Every character s_fold_char knows takes three bytes
        uint32_t code;
        char ascii = kf_utf8_decode (text + i, len - i, &code) == 3 ? s_fold_char (code) : 0;
        at [out] = i;
        if (ascii)
            folded [out++] = ascii;
        else
            folded [out++] = text [i] ? text [i] : ' ';     //  regexec stops at a NUL
        i += ascii ? 3 : 1;
    }
    at [out] = len;
    folded [out] = 0;
    return out;
}

static bool
s_is_digit (char c)
{
    return c >= '0' && c <= '9';
}

static bool
s_is_letter (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

//  Whether `c` continues a run of the class of `edge` (both letters or both digits)
static bool
s_continues (char c, char edge)
{
    return (s_is_digit (c) && s_is_digit (edge)) || (s_is_letter (c) && s_is_letter (edge));
}

//  Whether the 11 digits at `s` are a mobile number
static bool
s_is_mobile (const char *s)
{
    if (s [0] != '1' || s [1] < '3' || s [1] > '9')
        return false;
    for (int i = 2; i < 11; i++)
        if (!s_is_digit (s [i]))
            return false;
    return true;
}

//  The first phone number of `folded` (`len` bytes): its digits into `phone`, its span
static bool
s_find_phone (const char *folded, size_t len, char *phone, size_t *start, size_t *end)
{
    for (size_t i = 0; i < len;) {
        if (!s_is_digit (folded [i])) {
            i++;
            continue;
        }
        size_t run = i;
        while (run < len && s_is_digit (folded [run]))
            run++;
        size_t run_len = run - i;
        bool is_prefixed = run_len == 13 && i > 0 && folded [i - 1] == '+'
                        && folded [i] == '8' && folded [i + 1] == '6' && s_is_mobile (folded + i + 2);
        if ((run_len == 11 && s_is_mobile (folded + i)) || is_prefixed) {
            memcpy (phone, folded + i + (is_prefixed ? 2 : 0), 11);
            phone [11] = 0;
            *start = is_prefixed ? i - 1 : i;
            *end = run;
            return true;
        }
        //  138-1234-5678, 138 1234 5678: one separator, the same twice
        char sep = run < len ? folded [run] : 0;
        if (run_len == 3 && (sep == '-' || sep == ' ') && run + 10 <= len
        &&  folded [run + 5] == sep && strspn (folded + run + 1, "0123456789") == 4
        &&  strspn (folded + run + 6, "0123456789") == 4
        &&  (run + 10 == len || !s_is_digit (folded [run + 10]))) {
            char digits [12];
            memcpy (digits, folded + i, 3);
            memcpy (digits + 3, folded + run + 1, 4);
            memcpy (digits + 7, folded + run + 6, 4);
            digits [11] = 0;
            if (s_is_mobile (digits)) {
                memcpy (phone, digits, 12);
                *start = i;
                *end = run + 10;
                return true;
            }
        }
        i = run;
    }
    return false;
}

//  The first acceptable match of `regex` in `folded`: its span. [phone_start, phone_end) is the
//  phone number's (empty when none): digits of it are no order number
static bool
s_find_order (const regex_t *regex, const char *folded, size_t len, size_t phone_start,
              size_t phone_end, size_t *start, size_t *end)
{
    size_t from = 0;
    while (from < len) {
        regmatch_t match;
        if (regexec (regex, folded + from, 1, &match, from ? REG_NOTBOL : 0) != 0)
            return false;
        size_t so = from + (size_t) match.rm_so, eo = from + (size_t) match.rm_eo;
        if (eo == so) {                 //  A pattern that matches nothing at all
            from = so + 1;
            continue;
        }
        bool is_cut = (so > 0 && s_continues (folded [so - 1], folded [so]))
                   || (eo < len && s_continues (folded [eo], folded [eo - 1]));
        bool is_phone = (so < phone_end && eo > phone_start)
                     || (eo - so == 11 && strspn (folded + so, "0123456789") == 11
                         && s_is_mobile (folded + so));
        if (!is_cut && !is_phone && eo - so < KF_ENTITY_VALUE_MAX) {
            *start = so;
            *end = eo;
            return true;
        }
        //  A match starting further inside the run of letters or digits at `so` would continue it:
        //  the next try starts past the run. One step at a time, 8,192 digits took 8,192 regexec
        //  calls, each reading the rest of the text (100 ms a message)
        from = so + 1;
        while (from < len && s_continues (folded [from], folded [so]))
            from++;
    }
    return false;
}

int
kf_entities_extract (const kf_entity_rules_t *rules, const char *text, size_t len,
                     kf_entities_t *out)
{
    memset (out, 0, sizeof *out);
    if (len > S_TEXT_MAX)
        len = S_TEXT_MAX;
    char *folded = kf_calloc (1, len + 1);
    size_t *at = kf_calloc (len + 1, sizeof (size_t));
    size_t folded_len = s_fold (text, len, folded, at);
    size_t start = 0, end = 0, phone_start = 0, phone_end = 0;
    int found = 0;
    if (s_find_phone (folded, folded_len, out->phone, &start, &end)) {
        phone_start = start;
        phone_end = end;
        out->has_phone = true;
        out->phone_start = at [start];
        out->phone_len = at [end] - at [start];
        found++;
    }
    const char *pattern = rules && rules->order_pattern ? rules->order_pattern
                                                        : KF_CONFIG_DEFAULT_ORDER_PATTERN;
    const regex_t *regex = s_compiled (pattern);
    if (regex && s_find_order (regex, folded, folded_len, phone_start, phone_end, &start, &end)) {
        for (size_t i = start; i < end; i++) {
            char c = folded [i];
            out->order_no [i - start] = c >= 'a' && c <= 'z' ? (char) (c - 'a' + 'A') : c;
        }
        out->has_order_no = true;
        out->order_start = at [start];
        out->order_len = at [end] - at [start];
        found++;
    }
    free (folded);
    free (at);
    return regex ? found : -1;
}
