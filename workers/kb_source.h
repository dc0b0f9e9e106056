/*  kb_source.h - where a worker's knowledge base comes from, and the one place it is built: either
    the broker's SQLite file, opened read-only and polled for a new version (kefu-worker --db), or
    snapshots the broker ships over the worker protocol (kefu-worker --kb broker; PROTOCOL.md 9.10),
    handed in as bytes. Both read the same rows (common/kb_snapshot.h) and build the index and the
    bots' models from them with the same code, so a remote worker answers exactly like a local one. */
#ifndef KF_KB_SOURCE_H
#define KF_KB_SOURCE_H
#include <stddef.h>
#include <stdint.h>
#include "common/kb_snapshot.h"
#include "workers/bot_models.h"
#include "workers/kb_index.h"

typedef struct _kf_kb_source_t kf_kb_source_t;

//  Opens the source on the database at `path`; NULL `path`: a source with no database, fed with
//  kf_kb_source_load. Never NULL: a database that is not there yet (the broker creates it) is
//  retried at each poll.
kf_kb_source_t *kf_kb_source_new (const char *path);

//  Closes the source and nulls *self_p.
void kf_kb_source_destroy (kf_kb_source_t **self_p);

//  Checks the database for a new knowledge-base version. When there is one, builds its index and
//  returns it (the caller owns it), sets *version, and builds and trains the bots' intent models
//  and chit-chat tables of the same snapshot into *models (the caller owns them too; intents and
//  chit-chat edits bump the version); returns NULL (and *models NULL) when nothing changed, the
//  database cannot be read now (logged once per failure streak), or the source has no database.
//  Training takes milliseconds per bot: this runs on the loader's thread.
kf_kb_index_t *kf_kb_source_poll (kf_kb_source_t *self, int64_t *version, kf_bot_models_t **models);

//  Decodes an encoded snapshot (`data` only read during the call) and builds it like
//  kf_kb_source_poll. Returns NULL (and *models NULL) when the bytes are not a valid snapshot,
//  logged with the reason: the caller keeps serving what it has.
kf_kb_index_t *kf_kb_source_load (kf_kb_source_t *self, const char *data, size_t size,
                                  int64_t *version, kf_bot_models_t **models);

//  Builds the index and the bots' trained models of `snapshot` (borrowed). Returns the index
//  (caller owns it and *models). Never fails: rows it cannot use (an intent over the limit) are
//  skipped with a log line.
kf_kb_index_t *kf_kb_source_build (const kf_kb_snapshot_t *snapshot, kf_bot_models_t **models);
#endif
