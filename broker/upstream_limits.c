/*  upstream_limits.c - slots, queues and circuit breakers of the LLM upstreams, in the broker. */
#include "broker/upstream_limits.h"
#include "common/dict.h"
#include "common/log.h"
#include "common/mpack.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { S_CLOSED, S_OPEN, S_HALF_OPEN } s_breaker_t;

typedef struct s_upstream_t s_upstream_t;

//  One job holding a slot or waiting for one
typedef struct s_entry_t {
    char *job_id;
    s_upstream_t *upstream;
    bool is_queued;
    bool is_probe;              //  The half-open breaker's one call
    int64_t granted_us;
    struct s_entry_t *prev, *next;  //  In the upstream's queue
} s_entry_t;

struct s_upstream_t {
    const kf_upstream_config_t *config;
    int open;                   //  Slots in use
    int queued;
    s_entry_t *head, *tail;     //  The queue, oldest first
    s_breaker_t breaker;
    int64_t open_until_us;      //  While open: when the cool-down ends
    bool has_probe;             //  Half-open and the probe is out
    int consecutive_failures;
    uint64_t requests, failures, rejected_busy, fallbacks;
    int64_t hold_ms;            //  Moving average of how long a slot is held, 0: none yet
};

//  Upstreams a worker names that the broker's config does not (the two configs differ): each of
//  the first S_STRANGERS gets the default limits, not none
#define S_STRANGERS 16

struct _kf_upstream_limits_t {
    s_upstream_t *upstreams;    //  The config's, then the strangers (room for S_STRANGERS more)
    size_t count;
    kf_upstream_config_t strangers [S_STRANGERS];
    char stranger_names [S_STRANGERS][KF_CONFIG_NAME_MAX + 1];
    int stranger_count;
    bool is_full_logged;        //  More strangers than room: said once
    kf_dict_t *entries;         //  Job id -> s_entry_t
    kf_grant_fn *grant;
    void *arg;
};

kf_upstream_limits_t *
kf_upstream_limits_new (const kf_config_t *config, kf_grant_fn *grant, void *arg)
{
    kf_upstream_limits_t *self = kf_calloc (1, sizeof *self);
    self->count = config ? kf_config_upstream_count (config) : 0;
    self->upstreams = kf_calloc (self->count + S_STRANGERS, sizeof (s_upstream_t));
    for (size_t i = 0; i < self->count; i++)
        self->upstreams [i].config = kf_config_upstream_at (config, i);
    self->entries = kf_dict_new ();
    self->grant = grant;
    self->arg = arg;
    return self;
}

static void
s_entry_free (s_entry_t *entry)
{
    free (entry->job_id);
    free (entry);
}

void
kf_upstream_limits_destroy (kf_upstream_limits_t **self_p)
{
    kf_upstream_limits_t *self = *self_p;
    if (!self)
        return;
    size_t cursor = 0;
    void *value;
    while (kf_dict_next (self->entries, &cursor, NULL, &value))
        s_entry_free (value);
    kf_dict_destroy (&self->entries);
    free (self->upstreams);
    free (self);
    *self_p = NULL;
}

//  Adds upstream `name`, unknown to the config, with the default limits; NULL when there is no
//  room (or no usable name): its jobs then go unlimited, as the log says once
static s_upstream_t *
s_add_stranger (kf_upstream_limits_t *self, const char *name)
{
    if (self->stranger_count == S_STRANGERS || strlen (name) > KF_CONFIG_NAME_MAX) {
        if (!self->is_full_logged)
            kf_warn ("workers name more LLM upstreams than the broker's config has; those beyond"
                     " %d others go without limits", S_STRANGERS);
        self->is_full_logged = true;
        return NULL;
    }
    int i = self->stranger_count++;
    snprintf (self->stranger_names [i], sizeof self->stranger_names [i], "%s", name);
    kf_upstream_config_t *config = &self->strangers [i];
    config->name = self->stranger_names [i];
    config->max_concurrency = KF_CONFIG_DEFAULT_MAX_CONCURRENCY;
    config->queue = KF_CONFIG_DEFAULT_QUEUE;
    config->breaker_failures = KF_CONFIG_DEFAULT_BREAKER_FAILURES;
    config->breaker_cooldown_ms = KF_CONFIG_DEFAULT_BREAKER_COOLDOWN_MS;
    kf_warn ("a worker uses LLM upstream %s, which the broker's config does not name: give the"
             " broker the workers' config; until then it gets the default limits (%d streams,"
             " queue %d)", config->name, config->max_concurrency, config->queue);
    s_upstream_t *upstream = &self->upstreams [self->count++];
    upstream->config = config;
    return upstream;
}

static s_upstream_t *
s_find (kf_upstream_limits_t *self, const char *name)
{
    if (!name || !*name)
        return NULL;
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->upstreams [i].config->name, name) == 0)
            return &self->upstreams [i];
    return s_add_stranger (self, name);
}

//  An open breaker whose cool-down is over becomes half-open
static void
s_cool (s_upstream_t *upstream, int64_t now_us)
{
    if (upstream->breaker == S_OPEN && now_us >= upstream->open_until_us) {
        upstream->breaker = S_HALF_OPEN;
        upstream->has_probe = false;
        kf_info ("upstream %s: breaker half-open, one probe", upstream->config->name);
    }
}

static void
s_open_breaker (s_upstream_t *upstream, int64_t now_us)
{
    upstream->breaker = S_OPEN;
    upstream->has_probe = false;
    upstream->open_until_us = now_us + upstream->config->breaker_cooldown_ms * 1000LL;
    kf_warn ("upstream %s: breaker open for %d ms after %d failures in a row",
             upstream->config->name, upstream->config->breaker_cooldown_ms,
             upstream->consecutive_failures);
}

//  Whether a job may have a slot now; sets is_probe for the half-open breaker's one call
static kf_grant_t
s_decide (s_upstream_t *upstream, bool *is_probe)
{
    *is_probe = false;
    if (upstream->breaker == S_OPEN
    || (upstream->breaker == S_HALF_OPEN && upstream->has_probe))
        return KF_GRANT_OPEN;
    if (upstream->open >= upstream->config->max_concurrency)
        return upstream->breaker == S_HALF_OPEN ? KF_GRANT_OPEN : KF_GRANT_QUEUED;
    *is_probe = upstream->breaker == S_HALF_OPEN;
    return KF_GRANT_OK;
}

static void
s_take_slot (s_upstream_t *upstream, s_entry_t *entry, bool is_probe, int64_t now_us)
{
    upstream->open++;
    entry->is_queued = false;
    entry->is_probe = is_probe;
    entry->granted_us = now_us;
    if (is_probe)
        upstream->has_probe = true;
}

kf_grant_t
kf_upstream_limits_acquire (kf_upstream_limits_t *self, const char *job_id, const char *name,
                            int64_t now_us)
{
    s_entry_t *entry = kf_dict_get (self->entries, job_id, strlen (job_id));
    if (entry)
        return entry->is_queued ? KF_GRANT_QUEUED : KF_GRANT_OK;
    s_upstream_t *upstream = s_find (self, name);
    if (!upstream)
        return KF_GRANT_OK;
    upstream->requests++;
    s_cool (upstream, now_us);
    bool is_probe;
    kf_grant_t grant = s_decide (upstream, &is_probe);
    if (grant == KF_GRANT_QUEUED && upstream->queued >= upstream->config->queue)
        grant = KF_GRANT_BUSY;
    if (grant == KF_GRANT_OPEN)
        upstream->fallbacks++;
    if (grant == KF_GRANT_BUSY)
        upstream->rejected_busy++;
    if (grant == KF_GRANT_OPEN || grant == KF_GRANT_BUSY)
        return grant;
    entry = kf_calloc (1, sizeof *entry);
    entry->job_id = kf_strdup (job_id);
    entry->upstream = upstream;
    kf_dict_put (self->entries, job_id, strlen (job_id), entry);
    if (grant == KF_GRANT_OK)
        s_take_slot (upstream, entry, is_probe, now_us);
    else {
        entry->is_queued = true;
        entry->prev = upstream->tail;
        if (upstream->tail)
            upstream->tail->next = entry;
        else
            upstream->head = entry;
        upstream->tail = entry;
        upstream->queued++;
    }
    return grant;
}

static void
s_unqueue (s_upstream_t *upstream, s_entry_t *entry)
{
    if (entry->prev)
        entry->prev->next = entry->next;
    else
        upstream->head = entry->next;
    if (entry->next)
        entry->next->prev = entry->prev;
    else
        upstream->tail = entry->prev;
    entry->prev = entry->next = NULL;
    upstream->queued--;
}

//  Gives freed slots to the queue, oldest first; answers it "open" while the breaker is open
static void
s_pump (kf_upstream_limits_t *self, s_upstream_t *upstream, int64_t now_us)
{
    s_cool (upstream, now_us);
    while (upstream->head) {
        s_entry_t *entry = upstream->head;
        bool is_probe;
        kf_grant_t grant = s_decide (upstream, &is_probe);
        if (grant == KF_GRANT_QUEUED)
            return;
        s_unqueue (upstream, entry);
        kf_dict_remove (self->entries, entry->job_id, strlen (entry->job_id));
        if (grant == KF_GRANT_OK) {
            s_take_slot (upstream, entry, is_probe, now_us);
            kf_dict_put (self->entries, entry->job_id, strlen (entry->job_id), entry);
            if (self->grant (self->arg, entry->job_id, KF_GRANT_OK))
                continue;
            //  The job is gone: the slot goes back
            upstream->open--;
            if (is_probe)
                upstream->has_probe = false;
            kf_dict_remove (self->entries, entry->job_id, strlen (entry->job_id));
        }
        else {
            upstream->fallbacks++;
            self->grant (self->arg, entry->job_id, KF_GRANT_OPEN);
        }
        s_entry_free (entry);
    }
}

void
kf_upstream_limits_release (kf_upstream_limits_t *self, const char *job_id, kf_outcome_t outcome,
                            int64_t now_us)
{
    s_entry_t *entry = kf_dict_remove (self->entries, job_id, strlen (job_id));
    if (!entry)
        return;
    s_upstream_t *upstream = entry->upstream;
    if (entry->is_queued) {
        s_unqueue (upstream, entry);
        s_entry_free (entry);
        return;
    }
    upstream->open--;
    int64_t held_ms = (now_us - entry->granted_us) / 1000;
    upstream->hold_ms = upstream->hold_ms ? (upstream->hold_ms * 7 + held_ms) / 8 : held_ms + 1;
    if (entry->is_probe)
        upstream->has_probe = false;
    if (outcome == KF_OUTCOME_SUCCESS) {
        upstream->consecutive_failures = 0;
        if (upstream->breaker == S_HALF_OPEN && entry->is_probe) {
            upstream->breaker = S_CLOSED;
            kf_info ("upstream %s: the probe succeeded, breaker closed", upstream->config->name);
        }
    }
    else
    if (outcome == KF_OUTCOME_FAILURE) {
        upstream->failures++;
        upstream->consecutive_failures++;
        if (upstream->breaker == S_HALF_OPEN && entry->is_probe)
            s_open_breaker (upstream, now_us);
        else
        if (upstream->breaker == S_CLOSED && upstream->config->breaker_failures > 0
        &&  upstream->consecutive_failures >= upstream->config->breaker_failures)
            s_open_breaker (upstream, now_us);
    }
    s_entry_free (entry);
    s_pump (self, upstream, now_us);
}

bool
kf_upstream_limits_holds (kf_upstream_limits_t *self, const char *job_id)
{
    s_entry_t *entry = kf_dict_get (self->entries, job_id, strlen (job_id));
    return entry && !entry->is_queued;
}

int
kf_upstream_limits_retry_after_ms (kf_upstream_limits_t *self, const char *name)
{
    s_upstream_t *upstream = s_find (self, name);
    if (!upstream || upstream->hold_ms == 0)
        return 1000;
    return upstream->hold_ms < 100 ? 100 : upstream->hold_ms > 30000 ? 30000 : (int) upstream->hold_ms;
}

void
kf_upstream_limits_pack (kf_upstream_limits_t *self, msgpack_packer *pk, int64_t now_us)
{
    static const char *names [] = { "closed", "open", "half_open" };
    msgpack_pack_array (pk, self->count);
    for (size_t i = 0; i < self->count; i++) {
        s_upstream_t *upstream = &self->upstreams [i];
        s_cool (upstream, now_us);
        msgpack_pack_map (pk, 11);
        kf_mp_pack_kv_str (pk, "name", upstream->config->name);
        kf_mp_pack_kv_int (pk, "open", upstream->open);
        kf_mp_pack_kv_int (pk, "queued", upstream->queued);
        kf_mp_pack_kv_int (pk, "max_concurrency", upstream->config->max_concurrency);
        kf_mp_pack_kv_int (pk, "queue", upstream->config->queue);
        kf_mp_pack_kv_str (pk, "breaker", names [upstream->breaker]);
        kf_mp_pack_kv_int (pk, "consecutive_failures", upstream->consecutive_failures);
        kf_mp_pack_kv_int (pk, "requests", (int64_t) upstream->requests);
        kf_mp_pack_kv_int (pk, "failures", (int64_t) upstream->failures);
        kf_mp_pack_kv_int (pk, "rejected_busy", (int64_t) upstream->rejected_busy);
        kf_mp_pack_kv_int (pk, "fallbacks", (int64_t) upstream->fallbacks);
    }
}
