/*  utf8.h - UTF-8 validation, decoding and counting; kefu checks all client text with it. */
#ifndef KF_UTF8_H
#define KF_UTF8_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  True when `s` (`len` bytes) is well-formed UTF-8: no overlongs, no surrogates, nothing past
//  U+10FFFF, no truncated sequence at the end.
bool kf_utf8_is_valid (const char *s, size_t len);

//  Decodes the character at `s` (at most `len` bytes). Stores the code point in `*cp` and returns its
//  length in bytes (1-4); returns 0 when the bytes are not a well-formed character (or len is 0).
int kf_utf8_decode (const char *s, size_t len, uint32_t *cp);

//  Encodes `cp` into `out` (at least 4 bytes). Returns the length written (1-4), 0 for an invalid cp.
int kf_utf8_encode (uint32_t cp, char *out);

//  Number of characters in valid UTF-8 text `s` of `len` bytes.
size_t kf_utf8_count (const char *s, size_t len);

//  Length of the longest prefix of `s` (len bytes) that ends on a character boundary; a stream cut
//  in the middle of a character keeps the partial bytes for the next chunk.
size_t kf_utf8_complete_prefix (const char *s, size_t len);
#endif
