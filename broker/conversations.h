/*  conversations.h - what a chat window lists and manages beyond one session: user profiles
    (login/logout), a user's conversations newest first with a stable cursor, their names, and their
    deletion (a tombstone that hides them everywhere, purged after a week). Keeps its own statements
    on the broker's connection; writes join the broker's batch like every other write. */
#ifndef KF_CONVERSATIONS_H
#define KF_CONVERSATIONS_H
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include "broker/store.h"

#define KF_PURGE_AFTER_MS (7LL * 24 * 3600 * 1000)     //  Deleted conversations kept this long

typedef struct _kf_conversations_t kf_conversations_t;

//  A text field of a profile update: `value` NULL means "keep what is stored".
typedef struct {
    const char *value;
    size_t len;
} kf_field_t;

//  Prepares the statements on `store`'s connection (borrowed). NULL (logged) when that fails.
kf_conversations_t *kf_conversations_new (kf_store_t *store);

//  Frees the statements; nulls *self_p.
void kf_conversations_destroy (kf_conversations_t **self_p);

//  Creates or updates a user's profile and marks them logged in, then packs the profile map.
//  fields: name, email, mobile, photo_url. Returns 0, or -1 (nothing packed).
int kf_conversations_login (kf_conversations_t *self, const char *user_id, size_t user_len,
                            const kf_field_t fields [4], int64_t now, msgpack_packer *pk);

//  Packs a user's profile map. Returns 1, 0 when the user has no profile, -1 on error.
int kf_conversations_profile_pack (kf_conversations_t *self, const char *user_id, size_t user_len,
                                   msgpack_packer *pk);

//  Marks a user logged out. Returns 1, 0 when the user has no profile, -1 on error.
int kf_conversations_logout (kf_conversations_t *self, const char *user_id, size_t user_len,
                             int64_t now);

//  Packs {"data": [conversations], "has_more", "total"} for a user, newest first, `limit` of them,
//  after the conversation `last_id` (NULL: from the newest). Returns 0, 1 when `last_id` is not
//  one of the user's conversations (nothing packed), -1 on error.
int kf_conversations_list_pack (kf_conversations_t *self, const char *user_id, size_t user_len,
                                int64_t limit, const char *last_id, size_t last_len,
                                msgpack_packer *pk);

//  Sets a conversation's name. Returns 0 or -1.
int kf_conversations_rename (kf_conversations_t *self, const char *session_id, const char *name,
                             size_t len);

//  A name made from the conversation's first question (at most 20 characters, "…" when cut), as a
//  heap string the caller frees; NULL when it has no question yet.
char *kf_conversations_auto_name (kf_conversations_t *self, const char *session_id);

//  Deletes a conversation (tombstone). Returns 0 or -1.
int kf_conversations_delete (kf_conversations_t *self, const char *session_id, int64_t now);

//  Removes conversations deleted before `before` (Unix ms) with their messages, at most 100 a
//  call. Returns how many, or -1.
int64_t kf_conversations_purge (kf_conversations_t *self, int64_t before);
#endif
