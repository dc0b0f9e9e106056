/*  text_norm.c - normalization of customer text and splitting into index terms and stream chunks. */
#include "common/text_norm.h"
#include "common/log.h"
#include "common/utf8.h"
#include <stdbool.h>
#include <string.h>
#include "common/t2s_table.h"

//  Phrases that carry no meaning for matching, longest first. Question words share one form so that
//  "如何退货" and "怎么退货" look alike.
static const char *s_fillers [] = {
    "我想咨询一下", "麻烦问一下", "我想问一下", "请问一下", "我想问下", "想问一下", "咨询一下",
    "问一下", "请问", "你好", "您好", "在吗", "谢谢", "我要", "我想", NULL
};
static const char *s_question_words [] = { "怎么样", "怎样", "如何", "咋", NULL };
static const char *s_particles = "吗呢啊呀吧哈哦嘛啦呐";

uint32_t
kf_text_simplified (uint32_t cp)
{
    size_t low = 0, high = sizeof s_t2s / sizeof s_t2s [0];
    while (low < high) {
        size_t mid = (low + high) / 2;
        if (s_t2s [mid][0] == cp)
            return s_t2s [mid][1];
        if (s_t2s [mid][0] < cp)
            low = mid + 1;
        else
            high = mid;
    }
    return cp;
}

static bool
s_is_cjk (uint32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF)
        || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x2FFFF);
}

static bool
s_is_word_char (uint32_t cp)
{
    return (cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9')
        || (cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7);
}

//  Maps one code point: width, case, script; returns 0 for a separator
static uint32_t
s_map (uint32_t cp)
{
    if (cp >= 0xFF01 && cp <= 0xFF5E)
        cp -= 0xFEE0;
    if (cp >= 'A' && cp <= 'Z')
        cp += 32;
    if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7)
        cp += 32;
    if (s_is_cjk (cp))
        return kf_text_simplified (cp);
    return s_is_word_char (cp) ? cp : 0;
}

//  Replaces every occurrence of `from` in `s` in place with `to`; the caller's buffer has room for
//  the growth ("咋" becomes "怎么": at most twice the length)
static void
s_replace_all (char *s, const char *from, const char *to)
{
    size_t from_len = strlen (from), to_len = strlen (to);
    char *hit;
    char *scan = s;
    while ((hit = strstr (scan, from))) {
        memmove (hit + to_len, hit + from_len, strlen (hit + from_len) + 1);
        memcpy (hit, to, to_len);
        scan = hit + to_len;
    }
}

//  Drops sentence-final particles: a particle followed by a space or the end
static void
s_drop_particles (char *s)
{
    size_t len = strlen (s), out = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int n = kf_utf8_decode (s + i, len - i, &cp);
        if (n == 0)
            n = 1;
        bool is_end = i + n >= len || s [i + n] == ' ';
        bool is_particle = n == 3 && is_end && out > 0 && memmem (s_particles, strlen (s_particles),
                                                                  s + i, 3) != NULL;
        if (!is_particle) {
            memmove (s + out, s + i, n);
            out += n;
        }
        i += n;
    }
    s [out] = 0;
}

//  Collapses runs of spaces into one and trims both ends
static void
s_squeeze (char *s)
{
    size_t out = 0;
    for (size_t i = 0; s [i]; i++) {
        if (s [i] == ' ' && (out == 0 || s [out - 1] == ' '))
            continue;
        s [out++] = s [i];
    }
    while (out > 0 && s [out - 1] == ' ')
        out--;
    s [out] = 0;
}

char *
kf_text_normalize (const char *s, size_t len)
{
    char *out = kf_malloc (len * 2 + 8);     //  A mapped character never grows past 2x
    size_t used = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int n = kf_utf8_decode (s + i, len - i, &cp);
        if (n == 0) {
            i++;
            continue;
        }
        i += n;
        cp = s_map (cp);
        if (cp == 0)
            out [used++] = ' ';
        else
            used += kf_utf8_encode (cp, out + used);
    }
    out [used] = 0;
    for (int f = 0; s_fillers [f]; f++)
        s_replace_all (out, s_fillers [f], " ");
    for (int q = 0; s_question_words [q]; q++)
        s_replace_all (out, s_question_words [q], "怎么");
    s_squeeze (out);
    s_drop_particles (out);
    s_squeeze (out);
    return out;
}

void
kf_text_terms (const char *s, size_t len, kf_term_fn *fn, void *arg)
{
    size_t previous = 0, previous_len = 0;  //  Last CJK character, for bigrams
    size_t word_start = 0;
    bool is_in_word = false;
    for (size_t i = 0; i <= len;) {
        uint32_t cp = 0;
        int n = i < len ? kf_utf8_decode (s + i, len - i, &cp) : 1;
        if (n == 0)
            n = 1, cp = ' ';
        bool is_word = i < len && s_is_word_char (cp);
        if (is_in_word && !is_word) {
            fn (arg, s + word_start, i - word_start, KF_TERM_WORD);
            is_in_word = false;
        }
        if (is_word && !is_in_word) {
            word_start = i;
            is_in_word = true;
        }
        if (i < len && s_is_cjk (cp)) {
            fn (arg, s + i, n, KF_TERM_UNIGRAM);
            if (previous_len)
                fn (arg, s + previous, previous_len + n, KF_TERM_BIGRAM);
            previous = i;
            previous_len = n;
        }
        else
            previous_len = 0;
        i += n;
    }
}

void
kf_text_chunks (const char *s, size_t len, int chars, kf_term_fn *fn, void *arg)
{
    size_t start = 0, i = 0;
    int count = 0;
    while (i < len) {
        uint32_t cp;
        int n = kf_utf8_decode (s + i, len - i, &cp);
        if (n == 0)
            n = 1, cp = 0;
        if (cp < 0x80 && ((cp | 32) >= 'a' && (cp | 32) <= 'z')) {
            //  Keep a latin word whole, with the space that follows it
            while (i < len && ((s [i] | 32) >= 'a' && (s [i] | 32) <= 'z'))
                i++;
            if (i < len && s [i] == ' ')
                i++;
            count = chars;
        }
        else {
            i += n;
            count++;
        }
        if (count >= chars) {
            fn (arg, s + start, i - start, KF_TERM_WORD);
            start = i;
            count = 0;
        }
    }
    if (start < len)
        fn (arg, s + start, len - start, KF_TERM_WORD);
}
