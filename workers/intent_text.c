/*  intent_text.c - text preparation and clauses for the intent classifier. See intent_text.h. */
#include "workers/intent_text.h"
#include "workers/intent_classifier.h"
#include "common/text_norm.h"
#include "common/utf8.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_PREP_CAP (KF_INTENT_MAX_TEXT * 7 + 16)

//  Text preparation: greetings the normalizer drops become latin marker words, clause boundaries
//  become the word "xbrk"; then one kf_text_normalize

typedef struct {
    const char *from, *to;
    bool at_start;              //  Only at the start of a clause
} s_rewrite_t;

static const s_rewrite_t s_rewrites [] = {
    //  Greetings and thanks kf_text_normalize removes as fillers: chitchat needs them
    { "你好", " xhi ", false }, { "您好", " xhi ", false }, { "謝謝", " xthanks ", false },
    { "谢谢", " xthanks ", false }, { "在吗", " xzaima ", false }, { "在嗎", " xzaima ", false },
    { "请问", " xplease ", false }, { "請問", " xplease ", false },
    //  Clause boundaries
    { "，", " xbrk ", false }, { "。", " xbrk ", false }, { "！", " xbrk ", false },
    { "？", " xbrk ", false }, { "；", " xbrk ", false }, { "～", " xbrk ", false },
    { ",", " xbrk ", false }, { ";", " xbrk ", false }, { "!", " xbrk ", false },
    { "?", " xbrk ", false }, { "~", " xbrk ", false }, { "\n", " xbrk ", false },
    { "顺便", " xbrk ", false }, { "順便", " xbrk ", false }, { "另外", " xbrk ", false },
    { "同时", " xbrk ", false }, { "顺带", " xbrk ", false }, { " and also ", " xbrk ", false },
    { " also ", " xbrk ", false }, { " and ", " xbrk ", false },
    { "还有", " xbrk ", true }, { "還有", " xbrk ", true }, { "然后", " xbrk ", true },
    { "再者", " xbrk ", true },
    { NULL, NULL, false }
};

static const s_rewrite_t s_full_stop = { ".", " xbrk ", false };


//  Writes the prepared form of `text` into `out` (S_PREP_CAP bytes) and returns its length; when
//  `breaks` is not NULL, records the raw offsets of the clause boundaries there
static size_t
s_prepare (const char *text, size_t len, char *out, kf_intent_breaks_t *breaks)
{
    if (len > KF_INTENT_MAX_TEXT)
        len = kf_utf8_complete_prefix (text, KF_INTENT_MAX_TEXT);
    size_t used = 0;
    bool at_start = true;
    for (size_t i = 0; i < len;) {
        const s_rewrite_t *hit = NULL;
        for (const s_rewrite_t *r = s_rewrites; r->from && !hit; r++) {
            //  The first byte first: every rewrite starts with a byte case cannot change
            if (r->from [0] != text [i])
                continue;
            size_t n = strlen (r->from);
            if ((!r->at_start || at_start) && n <= len - i && strncasecmp (text + i, r->from, n) == 0)
                hit = r;
        }
        //  A full stop is a boundary unless it is inside a number
        if (!hit && text [i] == '.' && !(i + 1 < len && text [i + 1] >= '0' && text [i + 1] <= '9'))
            hit = &s_full_stop;
        if (hit) {
            size_t n = strlen (hit->to);
            memcpy (out + used, hit->to, n);
            used += n;
            //  A latin connective keeps its surrounding spaces out of the next match
            size_t from_len = strlen (hit->from);
            size_t step = hit->from [from_len - 1] == ' ' ? from_len - 1 : from_len;
            at_start = strcmp (hit->to, " xbrk ") == 0;
            if (at_start && breaks && breaks->count < KF_INTENT_MAX_BREAKS) {
                breaks->start [breaks->count] = i;
                breaks->end [breaks->count++] = i + step;
            }
            i += step;
        }
        else {
            out [used++] = text [i];
            if (text [i] != ' ')
                at_start = false;
            i++;
        }
    }
    out [used] = 0;
    if (breaks)
        breaks->len = len;
    return used;
}

//  The normalized prepared form of `text`: a heap string
char *
kf_intent_prepare (const char *text, size_t len, kf_intent_breaks_t *breaks)
{
    char prepared [S_PREP_CAP];
    size_t n = s_prepare (text, len, prepared, breaks);
    return kf_text_normalize (prepared, n);
}

char *
kf_intent_normal (const char *text, size_t len)
{
    return kf_intent_prepare (text, len, NULL);
}

char *
kf_intent_text_normalize (const char *text, size_t len)
{
    char *normal = kf_intent_normal (text, len);
    //  Drop the clause markers, keep single spaces between the rest
    char *out = normal;
    for (char *p = normal; *p; ) {
        char *space = strchr (p, ' ');
        size_t n = space ? (size_t) (space - p) : strlen (p);
        if (!(n == 4 && memcmp (p, "xbrk", 4) == 0)) {
            if (out > normal)
                *out++ = ' ';
            memmove (out, p, n);
            out += n;
        }
        p += n + (space != NULL);
    }
    *out = 0;
    return normal;
}


int
kf_intent_split_clauses (const char *s, kf_intent_clause_t *clauses)
{
    int count = 0, breaks = 0, start_breaks = 0;
    const char *start = s;
    for (const char *p = s;; ) {
        const char *space = strchr (p, ' ');
        const char *end = space ? space : p + strlen (p);
        bool is_break = end - p == 4 && memcmp (p, "xbrk", 4) == 0;
        if (is_break || !space) {
            const char *clause_end = is_break ? p : end;
            while (clause_end > start && clause_end [-1] == ' ')
                clause_end--;
            if (clause_end > start) {
                if (count == KF_INTENT_MAX_CLAUSES) {
                    clauses [count - 1].len = clause_end - clauses [count - 1].start;
                    clauses [count - 1].last_break = breaks;
                }
                else
                    clauses [count++] = (kf_intent_clause_t) { start, clause_end - start, start_breaks, breaks };
            }
            start = space ? space + 1 : end;
            breaks += is_break;
            start_breaks = breaks;
        }
        if (!space)
            break;
        p = space + 1;
    }
    return count;
}

//  The raw byte range of `clause`, trimmed of ASCII spaces
void
kf_intent_clause_span (const kf_intent_breaks_t *breaks, const kf_intent_clause_t *clause, size_t *offset, size_t *len,
               const char *text)
{
    size_t from = clause->first_break == 0 ? 0
                : clause->first_break <= breaks->count ? breaks->end [clause->first_break - 1]
                : breaks->len;
    size_t to = clause->last_break < breaks->count ? breaks->start [clause->last_break] : breaks->len;
    while (from < to && (text [from] == ' ' || text [from] == '\t'))
        from++;
    while (to > from && (text [to - 1] == ' ' || text [to - 1] == '\t'))
        to--;
    *offset = from;
    *len = to - from;
}
