/*  dict.h - a string-keyed hash table (open addressing, linear probing) used for sessions, streams,
    subscriptions and workers. Keys are copied; values are borrowed pointers the caller owns. */
#ifndef KF_DICT_H
#define KF_DICT_H
#include <stddef.h>
#include <stdbool.h>

typedef struct _kf_dict_t kf_dict_t;

//  Creates an empty table. Never returns NULL (aborts on out-of-memory).
kf_dict_t *kf_dict_new (void);

//  Destroys the table and its key copies (not the values) and nulls *self_p.
void kf_dict_destroy (kf_dict_t **self_p);

//  Looks up `key` (`len` bytes). Returns the value or NULL.
void *kf_dict_get (kf_dict_t *self, const char *key, size_t len);

//  Inserts or replaces the value for `key`. Returns the previous value or NULL.
void *kf_dict_put (kf_dict_t *self, const char *key, size_t len, void *value);

//  Removes `key`. Returns the value it had, or NULL when absent.
void *kf_dict_remove (kf_dict_t *self, const char *key, size_t len);

//  Number of entries.
size_t kf_dict_size (kf_dict_t *self);

//  Iteration: start with *cursor = 0; returns false at the end. Removing the entry just returned is
//  allowed; other changes during iteration are not.
bool kf_dict_next (kf_dict_t *self, size_t *cursor, const char **key, void **value);
#endif
