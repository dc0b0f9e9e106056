/*  answer_quality.c - the workers' reports of answer quality per bot. See answer_quality.h. */
#include "broker/answer_quality.h"
#include "common/dict.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include <stdlib.h>
#include <string.h>

struct _kf_answer_quality_t {
    kf_dict_t *bots;            //  bot_id -> kf_answer_curve_t (owned)
    int64_t kb_version;         //  Of the report kept, 0 before the first
};

kf_answer_quality_t *
kf_answer_quality_new (void)
{
    kf_answer_quality_t *self = kf_calloc (1, sizeof *self);
    self->bots = kf_dict_new ();
    return self;
}

static void
s_clear (kf_answer_quality_t *self)
{
    size_t cursor = 0;
    void *value;
    while (kf_dict_next (self->bots, &cursor, NULL, &value))
        free (value);
    kf_dict_destroy (&self->bots);
    self->bots = kf_dict_new ();
}

void
kf_answer_quality_destroy (kf_answer_quality_t **self_p)
{
    kf_answer_quality_t *self = *self_p;
    if (!self)
        return;
    s_clear (self);
    kf_dict_destroy (&self->bots);
    free (self);
    *self_p = NULL;
}

int
kf_answer_quality_on_report (kf_answer_quality_t *self, const char *body, size_t size,
                             int64_t current)
{
    if (size > KF_QUALITY_BODY_MAX)
        return -1;                  //  Before decoding: msgpack trees take 20 times their bytes
    msgpack_unpacked unpacked;
    if (!kf_mp_unpack_one (body, size, &unpacked))
        return -1;
    int64_t version;
    const msgpack_object *bots = kf_mp_get (&unpacked.data, "bots");
    int rc = -1;
    if (!kf_mp_int (kf_mp_get (&unpacked.data, "kb_version"), &version) || version < 0
    ||  version > current || version < self->kb_version
    ||  !bots || bots->type != MSGPACK_OBJECT_ARRAY || bots->via.array.size > KF_QUALITY_BOTS_MAX)
        goto done;                  //  Malformed, from a worker on an older version, or impossible
    rc = 0;
    s_clear (self);
    self->kb_version = version;
    for (uint32_t b = 0; b < bots->via.array.size; b++) {
        const msgpack_object *entry = &bots->via.array.ptr [b];
        const char *bot_id;
        size_t len;
        kf_answer_curve_t curve;
        if (!kf_mp_str (kf_mp_get (entry, "bot_id"), &bot_id, &len) || len == 0 || len > 256
        ||  !kf_utf8_is_valid (bot_id, len) || memchr (bot_id, 0, len)
        ||  !kf_answer_curve_unpack (kf_mp_get (entry, "curve"), &curve)) {
            rc++;                   //  One bad entry costs that bot only
            continue;
        }
        kf_answer_curve_t *kept = kf_dict_get (self->bots, bot_id, len);
        if (!kept) {
            kept = kf_malloc (sizeof *kept);
            kf_dict_put (self->bots, bot_id, len, kept);
        }
        *kept = curve;
    }
done:
    msgpack_unpacked_destroy (&unpacked);
    return rc;
}

const kf_answer_curve_t *
kf_answer_quality_get (kf_answer_quality_t *self, const char *bot_id, size_t len, int64_t *kb_version)
{
    if (kb_version)
        *kb_version = self->kb_version;
    return kf_dict_get (self->bots, bot_id, len);
}

void
kf_answer_quality_pack (const kf_answer_curve_t *curve, double target, int64_t kb_version,
                        msgpack_packer *pk)
{
    if (!curve) {
        msgpack_pack_nil (pk);
        return;
    }
    double threshold = kf_answer_curve_threshold (curve, target, KF_CURVE_DEFAULT_THRESHOLD);
    double precision, coverage;
    kf_answer_curve_estimate (curve, threshold, &precision, &coverage);
    msgpack_pack_map (pk, 7);
    kf_mp_pack_kv_bool (pk, "calibrated", curve->is_fitted);
    kf_mp_pack_kv_int (pk, "questions", curve->samples);
    kf_mp_pack_kv_double (pk, "target_precision", target);
    kf_mp_pack_kv_double (pk, "threshold", threshold);
    kf_mp_pack_cstr (pk, "precision");
    if (curve->is_fitted)
        msgpack_pack_double (pk, precision);
    else
        msgpack_pack_nil (pk);
    kf_mp_pack_cstr (pk, "coverage");
    if (curve->is_fitted)
        msgpack_pack_double (pk, coverage);
    else
        msgpack_pack_nil (pk);
    kf_mp_pack_kv_int (pk, "kb_version", kb_version);
}

size_t
kf_answer_quality_size (kf_answer_quality_t *self)
{
    return kf_dict_size (self->bots);
}

void
kf_answer_quality_each (kf_answer_quality_t *self, kf_answer_quality_fn *fn, void *arg)
{
    size_t cursor = 0;
    const char *bot_id;
    void *value;
    while (kf_dict_next (self->bots, &cursor, &bot_id, &value))
        fn (arg, bot_id, value);
}
