/*  kefuctl.h - the commands of kefuctl, the command line for people: each takes the connected
    client and its arguments and returns the process exit code. */
#ifndef KEFUCTL_H
#define KEFUCTL_H
#include "common/kefu_client.h"

typedef struct {
    const char *requests;       //  Broker request endpoint
    const char *streams;        //  Broker stream endpoint
    int timeout_ms;
} kefuctl_options_t;

//  Prints a reply as indented JSON (result, or the error) to stdout / stderr. Returns 0 when ok.
int kefuctl_print_reply (kf_reply_t *reply);

//  Parses JSON text into packed msgpack in `buffer` (initialised by the caller). Returns 0, or -1
//  after printing the parse error.
int kefuctl_json_params (const char *json, msgpack_sbuffer *buffer);

int kefuctl_chat (kf_client_t *client, int argc, char **argv);
int kefuctl_kb_import (kf_client_t *client, int argc, char **argv);
int kefuctl_bench (const kefuctl_options_t *options, int argc, char **argv);
int kefuctl_sessions (kf_client_t *client, int argc, char **argv);
int kefuctl_export (kf_client_t *client, int argc, char **argv);
#endif
