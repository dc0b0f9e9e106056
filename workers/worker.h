/*  worker.h - the kefu-worker process: one event loop that talks the worker protocol (KFW1) to the
    broker, runs chat jobs through the pipeline and streams their tokens back. Keeps no state that
    matters: everything a job needs arrives with it. */
#ifndef KF_WORKER_H
#define KF_WORKER_H
#include <stdbool.h>
#include <stdint.h>
#include "common/config.h"
#include "common/curve.h"

typedef struct {
    const char *broker;         //  Broker's worker endpoint, e.g. tcp://127.0.0.1:7702
    const char *db_path;        //  Database file the knowledge base is read from
    bool is_kb_remote;          //  Knowledge base from the broker over KFW1 (kb_remote.h), not
                                //  from db_path
    const char *name;           //  Shown in the broker's stats
    int heartbeat_ms;           //  Interval between heartbeats (both directions)
    int liveness;               //  Missed heartbeats before the broker is presumed gone
    int capacity;               //  Jobs this worker accepts at once
    int pace_ms;                //  Delay between streamed tokens (0: as fast as possible)
    int chunk_chars;            //  Characters per streamed token
    int kb_poll_ms;             //  How often to look for a new knowledge-base version
    const kf_config_t *llm;     //  LLM upstreams and bots (borrowed); NULL: knowledge base only
    int max_llm_requests;       //  Upstream streams open at once; beyond it jobs fail busy
    const kf_curve_t *curve;    //  CURVE keys to reach the broker with (borrowed); NULL: plain
    bool is_curve_key_made;     //  Its key pair was made at start (no key file): no broker knows it
} kf_worker_config_t;

//  Fills the defaults.
void kf_worker_config_defaults (kf_worker_config_t *config);

//  Runs the worker until SIGINT/SIGTERM. Returns the process exit code.
int kf_worker_run (const kf_worker_config_t *config);
#endif
