/*  supervisor.c - fork/exec of local workers, reaping and restarting with a small backoff. */
#include "broker/supervisor.h"
#include "common/clock.h"
#include "common/log.h"
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_ARGS_MAX 32

typedef struct {
    pid_t pid;                  //  0 when not running
    int64_t started_us;
    int64_t restart_at_us;      //  When a dead worker may start again
} s_child_t;

struct _kf_supervisor_t {
    char *binary;
    char *args [S_ARGS_MAX];    //  argv template, owned
    int arg_count;
    s_child_t *children;
    int count;
};

static void
s_start (kf_supervisor_t *self, int index)
{
    char name [32];
    snprintf (name, sizeof name, "local-%d", index + 1);
    char *argv [S_ARGS_MAX + 4];
    int argc = 0;
    argv [argc++] = self->binary;
    for (int i = 0; i < self->arg_count; i++)
        argv [argc++] = self->args [i];
    argv [argc++] = "--name";
    argv [argc++] = name;
    argv [argc] = NULL;
    pid_t parent = getpid ();
    //  Fork with SIGTERM and SIGINT blocked: the mask survives execv, and the worker unblocks them
    //  once its own handlers are in place. Otherwise a stop signal arriving before that would run
    //  the broker's handler, inherited by the child, and be lost: the worker would ignore it.
    sigset_t stops, saved;
    sigemptyset (&stops);
    sigaddset (&stops, SIGTERM);
    sigaddset (&stops, SIGINT);
    sigprocmask (SIG_BLOCK, &stops, &saved);
    pid_t pid = fork ();
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        if (getppid () != parent)
            _exit (1);                  //  The broker died before prctl took effect
        execv (self->binary, argv);
        fprintf (stderr, "kefu-broker: cannot run %s: %s\n", self->binary, strerror (errno));
        _exit (127);
    }
    sigprocmask (SIG_SETMASK, &saved, NULL);
    if (pid < 0) {
        kf_error ("fork failed: %s", strerror (errno));
        self->children [index].restart_at_us = kf_mono_us () + 1000000;
        return;
    }
    self->children [index].pid = pid;
    self->children [index].started_us = kf_mono_us ();
    kf_info ("started worker %s (pid %d)", name, (int) pid);
}

kf_supervisor_t *
kf_supervisor_new (const char *binary, int count, const char *const *args)
{
    if (access (binary, X_OK) != 0) {
        kf_error ("worker binary %s is not executable: %s", binary, strerror (errno));
        return NULL;
    }
    kf_supervisor_t *self = kf_calloc (1, sizeof *self);
    self->binary = kf_strdup (binary);
    for (int i = 0; args [i] && i < S_ARGS_MAX; i++)
        self->args [self->arg_count++] = kf_strdup (args [i]);
    self->count = count;
    self->children = kf_calloc (count, sizeof (s_child_t));
    for (int i = 0; i < count; i++)
        s_start (self, i);
    return self;
}

void
kf_supervisor_check (kf_supervisor_t *self, int64_t now_us)
{
    int status;
    pid_t pid;
    while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
        for (int i = 0; i < self->count; i++)
            if (self->children [i].pid == pid) {
                kf_warn ("worker local-%d (pid %d) %s %d, restarting", i + 1, (int) pid,
                         WIFSIGNALED (status) ? "killed by signal" : "exited with",
                         WIFSIGNALED (status) ? WTERMSIG (status) : WEXITSTATUS (status));
                self->children [i].pid = 0;
                //  A worker that dies at once is restarted no faster than once a second
                bool is_flapping = now_us - self->children [i].started_us < 1000000;
                self->children [i].restart_at_us = is_flapping ? now_us + 1000000 : now_us;
            }
    for (int i = 0; i < self->count; i++)
        if (self->children [i].pid == 0 && now_us >= self->children [i].restart_at_us)
            s_start (self, i);
}

int
kf_supervisor_destroy (kf_supervisor_t **self_p)
{
    kf_supervisor_t *self = *self_p;
    if (!self)
        return 0;
    int unclean = 0;
    for (int i = 0; i < self->count; i++)
        if (self->children [i].pid > 0)
            kill (self->children [i].pid, SIGTERM);
    int64_t deadline = kf_mono_us () + 2000000;
    for (int i = 0; i < self->count; i++) {
        while (self->children [i].pid > 0) {
            int status;
            pid_t pid = waitpid (self->children [i].pid, &status, WNOHANG);
            if (pid == self->children [i].pid) {
                //  SIGKILL came from outside (an operator, the OOM killer, a chaos test): the
                //  broker sends it only past the deadline below. Not a failure to stop cleanly
                bool is_killed = WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL;
                if (is_killed)
                    kf_warn ("worker local-%d was killed (SIGKILL) as the broker stopped", i + 1);
                else
                if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
                    kf_warn ("worker local-%d exited with status %d at shutdown", i + 1, status);
                    unclean++;
                }
                break;
            }
            if (pid < 0 && errno == ECHILD)
                break;
            if (kf_mono_us () > deadline) {
                kf_warn ("worker local-%d did not stop in 2 s; killed", i + 1);
                kill (self->children [i].pid, SIGKILL);
                waitpid (self->children [i].pid, &status, 0);
                unclean++;
                break;
            }
            usleep (10000);
        }
    }
    free (self->binary);
    for (int i = 0; i < self->arg_count; i++)
        free (self->args [i]);
    free (self->children);
    free (self);
    *self_p = NULL;
    return unclean;
}
