/*  fuzz_entities.c - libFuzzer target for order-number and phone extraction (workers/entities.h)
    on arbitrary bytes: valid and invalid UTF-8, full-width forms, NULs, texts past the length
    looked at. The input is the message. Checked: the default order pattern always compiles, found
    values have their documented shape, spans lie inside the text, and the order number's own span,
    extracted alone, gives the same order number. A second pattern that can match the empty string
    drives the path that skips empty matches. */
#include "common/config.h"
#include "workers/entities.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_require (bool ok, const char *what)
{
    if (!ok) {
        fprintf (stderr, "fuzz_entities: invariant failed: %s\n", what);
        abort ();
    }
}

static void
s_check_shape (const kf_entities_t *found, size_t len)
{
    if (found->has_phone) {
        s_require (strlen (found->phone) == 11 && found->phone [0] == '1'
                   && strspn (found->phone, "0123456789") == 11, "a phone is 11 digits from 1");
        s_require (found->phone_len > 0 && found->phone_start + found->phone_len <= len,
                   "the phone's span is in the text");
    }
    else
        s_require (!*found->phone, "no phone: empty");
    if (found->has_order_no) {
        size_t order_len = strlen (found->order_no);
        s_require (order_len > 0 && order_len < KF_ENTITY_VALUE_MAX, "an order number's length");
        for (size_t i = 0; i < order_len; i++)
            s_require ((unsigned char) found->order_no [i] < 0x80
                       && !(found->order_no [i] >= 'a' && found->order_no [i] <= 'z'),
                       "an order number is upper-cased ASCII");
        s_require (found->order_len > 0 && found->order_start + found->order_len <= len,
                   "the order number's span is in the text");
    }
    else
        s_require (!*found->order_no, "no order number: empty");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *text = (const char *) data;
    kf_entities_t found;
    int count = kf_entities_extract (NULL, text, size, &found);
    s_require (count >= 0 && count == found.has_order_no + found.has_phone,
               "the default pattern compiles and the count is what was found");
    s_check_shape (&found, size);
    if (found.has_order_no) {
        kf_entities_t alone;
        kf_entities_extract (NULL, text + found.order_start, found.order_len, &alone);
        s_require (alone.has_order_no && strcmp (alone.order_no, found.order_no) == 0,
                   "the order number's span alone gives the same order number");
    }
    kf_entity_rules_t rules = { .order_pattern = "[0-9]*|[a-z]+-?" };
    kf_entities_t other;
    s_require (kf_entities_extract (&rules, text, size, &other) >= 0, "a pattern that compiles");
    s_check_shape (&other, size);
    return 0;
}
