/*  text_norm.h - normalizes customer text for matching and splits it into index terms.
    Full-width to half-width, lower case, traditional to simplified (common characters), punctuation
    and emoji to spaces, filler phrases and sentence-final particles removed. */
#ifndef KF_TEXT_NORM_H
#define KF_TEXT_NORM_H
#include <stddef.h>
#include <stdint.h>

//  Returns the normalized form of UTF-8 text `s` (`len` bytes) as a heap string the caller frees.
//  Invalid bytes are dropped. Words are separated by single spaces; no leading or trailing space.
char *kf_text_normalize (const char *s, size_t len);

//  The simplified form of a traditional Chinese character (common ones), else `cp` unchanged.
uint32_t kf_text_simplified (uint32_t cp);

//  Term kinds, so a scorer can weigh them: single CJK characters, CJK bigrams, and latin/digit words.
typedef enum { KF_TERM_UNIGRAM = 0, KF_TERM_BIGRAM, KF_TERM_WORD } kf_term_kind_t;

//  Calls `fn` for every index term of normalized text `s`: each CJK character, each adjacent pair of
//  CJK characters, and each run of latin letters or digits. The term bytes are borrowed.
typedef void (kf_term_fn) (void *arg, const char *term, size_t len, kf_term_kind_t kind);
void kf_text_terms (const char *s, size_t len, kf_term_fn *fn, void *arg);

//  Splits `s` into streaming tokens of about `chars` characters (latin words are kept whole);
//  calls `fn` with each piece in order. Pieces always end on a character boundary.
void kf_text_chunks (const char *s, size_t len, int chars, kf_term_fn *fn, void *arg);
#endif
