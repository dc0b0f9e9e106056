/*  kb_loader.h - builds knowledge-base indexes off the worker's event loop. A thread polls the
    knowledge-base source and builds each new version's index; the loop takes finished indexes
    when it likes. A large knowledge base takes seconds to index: done in the loop, the worker
    would miss its heartbeats and be declared lost. The source is the database (polled), or the
    snapshots the broker ships (the loop hands their bytes over with kf_kb_loader_offer). */
#ifndef KF_KB_LOADER_H
#define KF_KB_LOADER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "workers/bot_models.h"
#include "workers/kb_index.h"
#include "workers/kb_suggest.h"

typedef struct _kf_kb_loader_t kf_kb_loader_t;

//  Starts a loader on the database at `path`, looking for a new version every `poll_ms`; NULL
//  `path`: a loader that builds only what kf_kb_loader_offer gives it. Never NULL (aborts if the
//  thread cannot start: a worker without one cannot serve).
kf_kb_loader_t *kf_kb_loader_new (const char *path, int poll_ms);

//  Gives the thread an encoded snapshot to decode and build (kf_kb_source_load), taking over
//  *data_p (heap; nulled). A snapshot offered before the thread started on the previous one
//  replaces it.
void kf_kb_loader_offer (kf_kb_loader_t *self, char **data_p, size_t size);

//  True while an offered snapshot is waiting or being built.
bool kf_kb_loader_is_building (kf_kb_loader_t *self);

//  How many offered snapshots were rejected (not valid: logged) since the start.
uint64_t kf_kb_loader_rejected (kf_kb_loader_t *self);

//  Stops the thread, frees an index not taken and nulls *self_p.
void kf_kb_loader_destroy (kf_kb_loader_t **self_p);

//  Returns the newest finished index not yet taken (the caller owns it, and its suggestions in
//  *suggest, to destroy before the index, and the bots' trained intent models and chit-chat tables
//  of the same version in *models) and sets *version, or NULL. Waits up to `wait_ms` for one (0:
//  do not wait). Older unclaimed versions are discarded.
kf_kb_index_t *kf_kb_loader_take (kf_kb_loader_t *self, int wait_ms, int64_t *version,
                                  kf_kb_suggest_t **suggest, kf_bot_models_t **models);
#endif
