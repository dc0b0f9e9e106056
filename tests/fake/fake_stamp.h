/*  fake_stamp.h - the stamped answer of the fake upstream (X-Fake-Stamp: N), shared by the fake and
    the benches that decode it. The answer is N tokens; token T is the two characters of pair
    T % FAKE_STAMP_PAIRS of FAKE_STAMP_TEXT followed by a marker holding the fake's
    CLOCK_MONOTONIC time in microseconds at the moment it wrote the token to the socket:

        退货⟦0000001234567890⟧

    The marker is always FAKE_STAMP_MARKER_LEN bytes: FAKE_STAMP_OPEN, FAKE_STAMP_DIGITS decimal
    digits, FAKE_STAMP_CLOSE. On the same host a reader subtracts the stamp from its own
    CLOCK_MONOTONIC time to get the token's latency from the upstream's write to its arrival. */
#ifndef KF_FAKE_STAMP_H
#define KF_FAKE_STAMP_H
#include <stddef.h>
#include <string.h>

//  36 characters (18 pairs), every one 3 bytes of UTF-8
#define FAKE_STAMP_TEXT     "感谢您的耐心等待您的订单已经发货预计三天内送达请注意查收快递短信祝您愉快"
#define FAKE_STAMP_PAIRS    18
#define FAKE_STAMP_PAIR_LEN 6                   //  Bytes of one pair
#define FAKE_STAMP_OPEN     "\xE2\x9F\xA6"      //  ⟦
#define FAKE_STAMP_CLOSE    "\xE2\x9F\xA7"      //  ⟧
#define FAKE_STAMP_DIGITS   16
#define FAKE_STAMP_MARKER_LEN (3 + FAKE_STAMP_DIGITS + 3)
#define FAKE_STAMP_MAX_TOKENS 100000

//  The text (without marker) of token `index`: FAKE_STAMP_PAIR_LEN bytes, not NUL-terminated.
static inline const char *
fake_stamp_pair (int index)
{
    return &FAKE_STAMP_TEXT [(size_t) (index % FAKE_STAMP_PAIRS) * FAKE_STAMP_PAIR_LEN];
}
#endif
