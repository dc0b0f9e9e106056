/*  kb_source.h - where a worker's knowledge base comes from. Today: the broker's SQLite file, opened
    read-only, polled for a new version. This is the one module that knows; a later transport (the
    broker shipping the knowledge base to remote workers) replaces it without touching the pipeline. */
#ifndef KF_KB_SOURCE_H
#define KF_KB_SOURCE_H
#include <stdint.h>
#include "workers/bot_models.h"
#include "workers/kb_index.h"

typedef struct _kf_kb_source_t kf_kb_source_t;

//  Opens the source on the database at `path`. Never NULL: a database that is not there yet (the
//  broker creates it) is retried at each poll.
kf_kb_source_t *kf_kb_source_new (const char *path);

//  Closes the source and nulls *self_p.
void kf_kb_source_destroy (kf_kb_source_t **self_p);

//  Checks for a new knowledge-base version. When there is one, builds its index and returns it (the
//  caller owns it), sets *version, and builds and trains the bots' intent models and chit-chat
//  tables of the same snapshot into *models (the caller owns them too; intents and chit-chat edits
//  bump the version); returns NULL (and *models NULL) when nothing changed or the database cannot
//  be read now (logged once per failure streak). Training takes milliseconds per bot: this runs on
//  the loader's thread.
kf_kb_index_t *kf_kb_source_poll (kf_kb_source_t *self, int64_t *version, kf_bot_models_t **models);
#endif
