/*  kb_jsonl.h - reads knowledge items in the JSONL shape of deploy/sample-kb.jsonl (one JSON object
    a line: external_id, category, question, similar_questions, answer, keywords, status) for the
    retrieval test and the knowledge-base benches. */
#ifndef KF_KB_JSONL_H
#define KF_KB_JSONL_H
#include <msgpack.h>
#include <stdbool.h>
#include <stdio.h>
#include "workers/kb_index.h"

//  Called with each line of a JSONL file, decoded; `obj` is valid for the call only.
typedef void (kf_jsonl_fn) (void *arg, const msgpack_object *obj);

//  Calls `fn` for every non-empty line of `path`. Returns the number of lines, or -1 when the file
//  cannot be opened. A line that is not valid JSON aborts the program (these are test inputs).
long kf_jsonl_each (const char *path, kf_jsonl_fn *fn, void *arg);

//  The same over an open file, from where it is; returns the number of lines.
long kf_jsonl_each_file (FILE *file, kf_jsonl_fn *fn, void *arg);

//  True when the item is on shelf: no "status", or a "status" other than 0.
bool kf_jsonl_item_on_shelf (const msgpack_object *obj);

//  Fills `item` (heap strings, as kf_kb_index_add_item takes them) from a decoded line, with
//  `id` and `bot_id`. Missing strings become "".
void kf_jsonl_item (const msgpack_object *obj, int64_t id, const char *bot_id, kf_kb_item_t *item);
#endif
