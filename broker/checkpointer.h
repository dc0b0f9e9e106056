/*  checkpointer.h - moves SQLite's WAL checkpoints off the broker's event loop. A checkpoint copies
    pages from the write-ahead log into the database file; done inside a commit (SQLite's default)
    it stalls the loop for milliseconds every thousand pages. Here a thread with its own connection
    runs passive checkpoints, which never block the writer. */
#ifndef KF_CHECKPOINTER_H
#define KF_CHECKPOINTER_H

typedef struct _kf_checkpointer_t kf_checkpointer_t;

//  Starts checkpointing the database at `path` every `interval_ms`. Returns NULL (logged) when the
//  thread or connection cannot be set up; the broker then falls back to SQLite's own checkpoints.
kf_checkpointer_t *kf_checkpointer_new (const char *path, int interval_ms);

//  Stops the thread, closes its connection and nulls *self_p.
void kf_checkpointer_destroy (kf_checkpointer_t **self_p);
#endif
