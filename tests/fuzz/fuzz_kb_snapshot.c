/*  fuzz_kb_snapshot.c - libFuzzer target for the knowledge-base snapshot a remote worker decodes
    from the broker (common/kb_snapshot.h, PROTOCOL.md 9.10). The input is the encoded snapshot.
    Whatever decodes must encode to bytes that decode again to the same encoding, and small
    snapshots are built into an index and bot models as the worker would (workers/kb_source.h). */
#include "common/kb_snapshot.h"
#include "common/log.h"
#include "workers/kb_source.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_BUILD_ROWS_MAX 64     //  Rows of a snapshot built: training costs per row, and the
                                //  decoder is what this target is for

static void
s_require (bool ok, const char *what)
{
    if (!ok) {
        fprintf (stderr, "fuzz_kb_snapshot: invariant failed: %s\n", what);
        abort ();
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    kf_log_set_level (KF_LOG_ERROR);
    char err [256] = "";
    kf_kb_snapshot_t *snapshot = kf_kb_snapshot_decode ((const char *) data, size, err, sizeof err);
    if (!snapshot) {
        s_require (*err != 0, "a rejected snapshot says why");
        return 0;
    }
    s_require (snapshot->version > 0, "a decoded snapshot has a version");
    msgpack_sbuffer first, second;
    msgpack_sbuffer_init (&first);
    msgpack_sbuffer_init (&second);
    kf_kb_snapshot_encode (snapshot, &first);
    kf_kb_snapshot_t *again = kf_kb_snapshot_decode (first.data, first.size, err, sizeof err);
    s_require (again != NULL, "an encoded snapshot decodes");
    kf_kb_snapshot_encode (again, &second);
    s_require (first.size == second.size && memcmp (first.data, second.data, first.size) == 0,
               "encoding is stable through a decode");
    kf_kb_snapshot_destroy (&again);
    msgpack_sbuffer_destroy (&first);
    msgpack_sbuffer_destroy (&second);
    size_t rows = snapshot->category_count + snapshot->synonym_count + snapshot->item_count
                + snapshot->intent_count + snapshot->chitchat_count;
    if (rows <= S_BUILD_ROWS_MAX) {
        kf_bot_models_t *models = NULL;
        kf_kb_index_t *index = kf_kb_source_build (snapshot, &models);
        s_require (index && models, "a snapshot builds");
        kf_kb_index_destroy (&index);
        kf_bot_models_destroy (&models);
    }
    kf_kb_snapshot_destroy (&snapshot);
    return 0;
}
