/*  kefuctl.h - the commands of kefuctl, the command line for people: each takes the connected
    client and its arguments and returns the process exit code. */
#ifndef KEFUCTL_H
#define KEFUCTL_H
#include "common/kefu_client.h"

typedef struct {
    const char *requests;       //  Broker request endpoint
    const char *streams;        //  Broker stream endpoint
    int timeout_ms;
    const kf_curve_t *curve;    //  CURVE keys (--broker-key, --curve-key or the environment), or NULL
} kefuctl_options_t;

//  Prints a reply as indented JSON (result, or the error) to stdout / stderr. Returns 0 when ok.
int kefuctl_print_reply (kf_reply_t *reply);

//  Calls a method with params packed by the caller (the buffer is cleared for the next call).
//  Returns the reply when it is ok; else prints the failure and returns NULL.
kf_reply_t *kefuctl_call (kf_client_t *client, const char *method, msgpack_sbuffer *params);

//  Parses JSON text into packed msgpack in `buffer` (initialised by the caller). Returns 0, or -1
//  after printing the parse error.
int kefuctl_json_params (const char *json, msgpack_sbuffer *buffer);

//  How a knowledge-base CSV cell holds its field: the text itself, one list entry per line, JSON
//  text, or an integer.
typedef enum {
    KEFUCTL_CELL_TEXT,
    KEFUCTL_CELL_LINES,
    KEFUCTL_CELL_JSON,
    KEFUCTL_CELL_INT
} kefuctl_cell_t;

typedef struct {
    const char *name;           //  The item field and header name
    kefuctl_cell_t kind;
    bool is_exported;           //  Written by kb export (category_id is read, never written)
} kefuctl_kb_column_t;

//  The columns a knowledge-base CSV file may have, in the order kb export writes them.
extern const kefuctl_kb_column_t kefuctl_kb_columns [];
extern const int kefuctl_kb_column_count;

int kefuctl_chat (const kefuctl_options_t *options, kf_client_t *client, int argc, char **argv);
int kefuctl_kb_import (kf_client_t *client, int argc, char **argv);
int kefuctl_kb_export (kf_client_t *client, int argc, char **argv);
int kefuctl_bench (const kefuctl_options_t *options, int argc, char **argv);
int kefuctl_sessions (kf_client_t *client, int argc, char **argv);
int kefuctl_export (kf_client_t *client, int argc, char **argv);
int kefuctl_agent (const kefuctl_options_t *options, kf_client_t *client, int argc, char **argv);
int kefuctl_keygen (int argc, char **argv);
#endif
