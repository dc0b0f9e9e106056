/*  supervisor.h - starts N local kefu-worker processes and restarts any that exits, so the embedded
    default is one process tree. Workers die with the broker (PR_SET_PDEATHSIG). */
#ifndef KF_SUPERVISOR_H
#define KF_SUPERVISOR_H
#include <stdint.h>

typedef struct _kf_supervisor_t kf_supervisor_t;

//  Starts `count` workers running `binary` with `args` (NULL-terminated, without argv[0]; copied)
//  plus "--name local-N". Returns NULL when the binary is not executable (logged).
kf_supervisor_t *kf_supervisor_new (const char *binary, int count, const char *const *args);

//  Reaps exited workers and restarts them (at most one restart per worker per second).
void kf_supervisor_check (kf_supervisor_t *self, int64_t now_us);

//  Stops every worker (SIGTERM, then SIGKILL after 2 s) and frees the supervisor; nulls *self_p.
//  Returns how many workers did not exit cleanly (status 0) - under the sanitizers, a worker that
//  leaked or misbehaved - so the broker can report it in its own exit status.
int kf_supervisor_destroy (kf_supervisor_t **self_p);
#endif
