/*  rag_prompt.h - what an LLM upstream is asked for one chat turn: the system message with the
    knowledge items the turn found as reference material (in Chinese, each clearly delimited),
    the session's recent turns and the customer's message, as a kf_upstream_request_t. */
#ifndef KF_RAG_PROMPT_H
#define KF_RAG_PROMPT_H
#include <msgpack.h>
#include "common/config.h"
#include "workers/pipeline.h"
#include "workers/upstream_request.h"

#define KF_RAG_TURNS_MAX 16     //  Recent turns sent along, at most

//  A request and the strings it borrows; everything is owned here until kf_rag_prompt_release.
typedef struct {
    kf_upstream_request_t request;
    char *system_prompt;
    kf_upstream_message_t messages [KF_RAG_TURNS_MAX + 1];
    char *texts [2 * (KF_RAG_TURNS_MAX + 1)];
    int text_count;
    char *query, *user, *conversation_id;
} kf_rag_prompt_t;

//  The system message: `prompt` (the upstream's system_prompt; "" for none), then, when `count` >
//  0, the question and answer (the variant for `labels`) of each hit between 【参考资料N】 and
//  【参考资料N结束】. Returns a heap string, or NULL when both are empty.
char *kf_rag_system_prompt (const char *prompt, const kf_kb_hit_t *hits, int count,
                            const msgpack_object *labels);

//  Fills `prompt` with the request for `turn` to `upstream`: its settings (kind, URL, key, model,
//  timeouts, retries, headers); for openai the system message, context.turns of `job` (oldest
//  first, user and assistant only) and the message; for dify the query, params.inputs,
//  params.user_id and context.upstream_conversation_id. The request borrows from `upstream`,
//  `job` and `prompt`.
void kf_rag_prompt_build (kf_rag_prompt_t *prompt, const kf_upstream_config_t *upstream,
                          const kf_turn_t *turn, const kf_wp_job_t *job);

//  Frees what kf_rag_prompt_build allocated.
void kf_rag_prompt_release (kf_rag_prompt_t *prompt);
#endif
