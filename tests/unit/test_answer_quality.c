/*  test_answer_quality.c - the calibration curve as it travels (common/answer_curve.c) and the
    broker's table of the workers' QUALITY reports (broker/answer_quality.c): the threshold rule,
    a curve packed and read back, and every kind of bad report refused or left out, the table
    kept as it was and bounded. */
#include "broker/answer_quality.h"
#include "common/mpack.h"
#include "testutil.h"
#include <stdlib.h>
#include <string.h>

//  A curve of `samples` questions: answered falls with the threshold, right is `rate` of it
static void
s_curve (kf_answer_curve_t *curve, int samples, double rate)
{
    memset (curve, 0, sizeof *curve);
    curve->is_fitted = true;
    curve->samples = curve->answerable = samples;
    for (int t = 0; t < KF_CURVE_GRID; t++) {
        curve->answered [t] = samples * (KF_CURVE_GRID - 1 - t) / (KF_CURVE_GRID - 1);
        curve->right [t] = (int) (curve->answered [t] * (rate + (1 - rate) * t / 100.0));
    }
}

//  A QUALITY body: version, then `count` entries of bot `id` (a `curve` when not NULL, else
//  `raw`, a msgpack object of the caller's)
static void
s_body (msgpack_sbuffer *body, int64_t version, const char *id, size_t id_len,
        const kf_answer_curve_t *curve, int count)
{
    msgpack_sbuffer_init (body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_int (&pk, "kb_version", version);
    kf_mp_pack_cstr (&pk, "bots");
    msgpack_pack_array (&pk, count);
    for (int i = 0; i < count; i++) {
        msgpack_pack_map (&pk, 2);
        kf_mp_pack_cstr (&pk, "bot_id");
        kf_mp_pack_str (&pk, id, id_len);
        kf_mp_pack_cstr (&pk, "curve");
        if (curve)
            kf_answer_curve_pack (curve, &pk);
        else
            msgpack_pack_nil (&pk);
    }
}

static void
s_test_curve (void)
{
    kf_answer_curve_t curve, back;
    s_curve (&curve, 1000, 0.8);
    //  Precision rises with the threshold: the first point at or over the target, from 0.5 up
    double threshold = kf_answer_curve_threshold (&curve, 0.9, 0.85);
    CHECK (threshold >= 0.5 && threshold < 1);
    CHECK (kf_answer_curve_threshold (&curve, 0.95, 0.85) > threshold);
    double precision, coverage;
    kf_answer_curve_estimate (&curve, threshold, &precision, &coverage);
    CHECK (precision >= 0.9 && coverage > 0 && coverage < 1);
    //  Not reached: the default (or the target, above the default target); not fitted: the default
    s_curve (&curve, 1000, 0.3);
    for (int t = 0; t < KF_CURVE_GRID; t++)
        curve.right [t] = curve.answered [t] / 2;
    CHECK (kf_answer_curve_threshold (&curve, 0.9, 0.85) == 0.85);
    CHECK (kf_answer_curve_threshold (&curve, 0.97, 0.85) == 0.97);
    curve.is_fitted = false;
    CHECK (kf_answer_curve_threshold (&curve, 0.9, 0.85) == 0.85);
    CHECK (kf_answer_curve_threshold (NULL, 0.9, 0.85) == 0.85);
    //  Packed and read back
    s_curve (&curve, 500, 0.7);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    kf_answer_curve_pack (&curve, &pk);
    msgpack_unpacked unpacked;
    CHECK (kf_mp_unpack_one (buffer.data, buffer.size, &unpacked));
    CHECK (kf_answer_curve_unpack (&unpacked.data, &back));
    CHECK (memcmp (&curve, &back, sizeof curve) == 0);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&buffer);
}

//  Curves that are no curves: each refused, and the result zeroed
static void
s_test_bad_curves (void)
{
    kf_answer_curve_t curve, back;
    const char *bad [] = { "rising", "negative", "right above answered", "over samples",
                           "answerable above samples", "short", NULL };
    for (int b = 0; bad [b]; b++) {
        s_curve (&curve, 100, 0.8);
        if (b == 0)
            curve.answered [50] = curve.answered [49] + 1;
        if (b == 1)
            curve.right [100] = -1;
        if (b == 2)
            curve.right [10] = curve.answered [10] + 1;
        if (b == 3)
            curve.answered [0] = curve.samples + 1;
        if (b == 4)
            curve.answerable = curve.samples + 1;
        msgpack_sbuffer buffer;
        msgpack_sbuffer_init (&buffer);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
        if (b == 5) {                   //  A list of 100 counts, not 101
            msgpack_pack_map (&pk, 5);
            kf_mp_pack_kv_bool (&pk, "fitted", true);
            kf_mp_pack_kv_int (&pk, "samples", 10);
            kf_mp_pack_kv_int (&pk, "answerable", 10);
            for (int l = 0; l < 2; l++) {
                kf_mp_pack_cstr (&pk, l ? "right" : "answered");
                msgpack_pack_array (&pk, 100);
                for (int t = 0; t < 100; t++)
                    msgpack_pack_int (&pk, 0);
            }
        }
        else
            kf_answer_curve_pack (&curve, &pk);
        msgpack_unpacked unpacked;
        CHECK (kf_mp_unpack_one (buffer.data, buffer.size, &unpacked));
        if (kf_answer_curve_unpack (&unpacked.data, &back))
            fprintf (stderr, "curve %s was taken\n", bad [b]);
        CHECK (!kf_answer_curve_unpack (&unpacked.data, &back));
        CHECK (!back.is_fitted && back.samples == 0);
        msgpack_unpacked_destroy (&unpacked);
        msgpack_sbuffer_destroy (&buffer);
    }
}

static void
s_test_reports (void)
{
    kf_answer_quality_t *quality = kf_answer_quality_new ();
    kf_answer_curve_t curve;
    s_curve (&curve, 200, 0.8);
    msgpack_sbuffer body;
    //  A good report of version 5 (the database's is 7)
    s_body (&body, 5, "bank", 4, &curve, 1);
    CHECK_INT (kf_answer_quality_on_report (quality, body.data, body.size, 7), 0);
    msgpack_sbuffer_destroy (&body);
    int64_t version;
    CHECK (kf_answer_quality_get (quality, "bank", 4, &version) && version == 5);
    CHECK_INT (kf_answer_quality_size (quality), 1);
    //  Refused whole, the table kept: not msgpack, truncated, a version above the database's or
    //  below the one kept, no bots list, more bots than a report may hold, too large to decode
    CHECK_INT (kf_answer_quality_on_report (quality, "\xc1\xc1", 2, 7), -1);
    s_body (&body, 6, "bank", 4, &curve, 1);
    CHECK_INT (kf_answer_quality_on_report (quality, body.data, body.size / 2, 7), -1);
    CHECK_INT (kf_answer_quality_on_report (quality, body.data, body.size, 5), -1);
    msgpack_sbuffer_destroy (&body);
    s_body (&body, 4, "bank", 4, &curve, 1);
    CHECK_INT (kf_answer_quality_on_report (quality, body.data, body.size, 7), -1);
    msgpack_sbuffer_destroy (&body);
    s_body (&body, 6, "bank", 4, NULL, KF_QUALITY_BOTS_MAX + 1);
    CHECK_INT (kf_answer_quality_on_report (quality, body.data, body.size, 7), -1);
    msgpack_sbuffer_destroy (&body);
    char *huge = calloc (1, KF_QUALITY_BODY_MAX + 1);
    CHECK (huge);
    CHECK_INT (kf_answer_quality_on_report (quality, huge, KF_QUALITY_BODY_MAX + 1, 7), -1);
    free (huge);
    CHECK (kf_answer_quality_get (quality, "bank", 4, &version) && version == 5);
    //  Bad entries are left out and counted: no curve, an empty, NUL-holding, too long or
    //  non-UTF-8 id; the good one is kept
    static const struct { const char *id; size_t len; bool has_curve; } entries [] = {
        { "nocurve", 7, false }, { "", 0, true }, { "nul\0hidden", 10, true },
        { "\xff\xfe", 2, true }, { NULL, 300, true }
    };
    char long_id [300];
    memset (long_id, 'x', sizeof long_id);
    for (size_t e = 0; e < sizeof entries / sizeof entries [0]; e++) {
        s_body (&body, 6, entries [e].id ? entries [e].id : long_id, entries [e].len,
                entries [e].has_curve ? &curve : NULL, 1);
        CHECK_INT (kf_answer_quality_on_report (quality, body.data, body.size, 7), 1);
        msgpack_sbuffer_destroy (&body);
        CHECK_INT (kf_answer_quality_size (quality), 0);    //  Version 6 holds no valid bot
    }
    CHECK (!kf_answer_quality_get (quality, "nul", 3, NULL));
    //  A newer good report replaces the table
    s_body (&body, 7, "gov", 3, &curve, 1);
    CHECK_INT (kf_answer_quality_on_report (quality, body.data, body.size, 7), 0);
    msgpack_sbuffer_destroy (&body);
    CHECK (kf_answer_quality_get (quality, "gov", 3, &version) && version == 7);
    CHECK (!kf_answer_quality_get (quality, "bank", 4, NULL));
    kf_answer_quality_destroy (&quality);
    CHECK (!quality);
}

int
main (void)
{
    s_test_curve ();
    s_test_bad_curves ();
    s_test_reports ();
    TEST_PASS ("test_answer_quality");
    return 0;
}
