/*  intent_text.h - the classifier's view of a message (private to intent_classifier.c and the
    chit-chat table): greetings and thanks that kf_text_normalize drops kept as marker words
    (xhi, xthanks, xzaima, xplease), clause boundaries (，。！？；, ; ! ? ~, newlines, 顺便 另外 同时
    顺带 "and also", and 还有 然后 再者 at a clause start) marked by the word "xbrk", then one
    kf_text_normalize; clauses split at the markers and mapped back to the raw text. */
#ifndef KF_INTENT_TEXT_H
#define KF_INTENT_TEXT_H
#include <stddef.h>

#define KF_INTENT_MAX_CLAUSES 8         //  Clauses of a message; the last takes the rest
#define KF_INTENT_MAX_BREAKS 128        //  Clause boundaries whose raw offsets are kept

//  Where the clause boundaries of a message were in the raw text: boundary i spans
//  [start [i], end [i]) and is the i-th "xbrk" word of the prepared text
typedef struct {
    size_t start [KF_INTENT_MAX_BREAKS], end [KF_INTENT_MAX_BREAKS];
    int count;
    size_t len;                 //  Bytes of the raw text that were prepared
} kf_intent_breaks_t;

//  A clause: [start, end) of the normalized text, without the xbrk words; between boundaries
//  first_break - 1 and last_break of the raw text (-1: the text's start; >= count: its end)
typedef struct {
    const char *start;
    size_t len;
    int first_break, last_break;
} kf_intent_clause_t;

//  The normalized prepared form of `text` (heap, the caller frees), with the clause markers;
//  records the raw offsets of the boundaries in `breaks` when it is not NULL. Only the first
//  KF_INTENT_MAX_TEXT bytes are read.
char *kf_intent_prepare (const char *text, size_t len, kf_intent_breaks_t *breaks);

//  kf_intent_prepare without the boundaries.
char *kf_intent_normal (const char *text, size_t len);

//  Splits prepared text `s` into at most KF_INTENT_MAX_CLAUSES clauses (borrowing `s`); returns
//  how many.
int kf_intent_split_clauses (const char *s, kf_intent_clause_t *clauses);

//  The raw byte range of `clause` in `text` (the text kf_intent_prepare read), trimmed of ASCII
//  spaces and tabs.
void kf_intent_clause_span (const kf_intent_breaks_t *breaks, const kf_intent_clause_t *clause,
                            size_t *offset, size_t *len, const char *text);
#endif
