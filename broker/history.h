/*  history.h - reading a conversation back: pages of messages in either paging style, and single
    messages, as the protocol's message objects (PROTOCOL.md 4.5). */
#ifndef KF_HISTORY_H
#define KF_HISTORY_H
#include <msgpack.h>
#include <stdint.h>
#include "broker/store.h"

typedef struct _kf_history_t kf_history_t;

//  Prepares the statements on `store`'s connection (borrowed). NULL (logged) on failure.
kf_history_t *kf_history_new (kf_store_t *store);

//  Frees the statements; nulls *self_p.
void kf_history_destroy (kf_history_t **self_p);

//  Packs a page {"data":[messages...],"has_more","total"}: `limit` messages from `offset` counting
//  from the oldest, oldest first. Returns 0 or -1 (nothing packed).
int kf_history_page_pack (kf_history_t *self, const char *session_id, int64_t limit, int64_t offset,
                          msgpack_packer *pk);

//  Packs a page in cursor style: the `limit` messages just before message `first_id` (0: the
//  newest page), oldest first within the page; has_more tells whether older ones exist. A
//  `first_id` that names no message still works as a position. Returns 0 or -1 (nothing packed).
int kf_history_before_pack (kf_history_t *self, const char *session_id, int64_t limit,
                            int64_t first_id, msgpack_packer *pk);

//  Packs one message by id (not of a deleted conversation); returns 1 when packed, 0 when absent,
//  -1 on error.
int kf_history_message_pack (kf_history_t *self, int64_t message_id, msgpack_packer *pk);
#endif
