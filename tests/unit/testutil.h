/*  testutil.h - the tiny assertion macros every kefu test uses.
    A failed check prints both sides and the place, then exits 1 so ctest reports it. */
#ifndef KF_TESTUTIL_H
#define KF_TESTUTIL_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) do { if (!(cond)) { \
    fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); exit (1); } } while (0)

#define CHECK_INT(a, b) do { long long _a = (long long) (a), _b = (long long) (b); if (_a != _b) { \
    fprintf (stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, _a, _b); \
    exit (1); } } while (0)

#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); \
    if (!_a || !_b || strcmp (_a, _b) != 0) { \
    fprintf (stderr, "%s:%d: %s == %s failed:\n  got:  \"%s\"\n  want: \"%s\"\n", __FILE__, __LINE__, \
             #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); exit (1); } } while (0)

#define TEST_PASS(name) printf ("%s: all checks passed\n", name)
#endif
