/*  rag_prompt.c - builds the upstream request of one chat turn: reference material from the
    knowledge base, recent turns, the customer's message. */
#include "workers/rag_prompt.h"
#include "common/log.h"
#include "common/mpack.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_intro =
    "以下是知识库中与顾客问题相关的参考资料，请优先依据这些资料回答：";

char *
kf_rag_system_prompt (const char *prompt, const kf_kb_hit_t *hits, int count,
                      const msgpack_object *labels)
{
    prompt = prompt ? prompt : "";
    if (!*prompt && count == 0)
        return NULL;
    size_t size = strlen (prompt) + strlen (s_intro) + 8;
    for (int i = 0; i < count; i++) {
        const kf_kb_item_t *item = hits [i].item;
        const kf_variant_t *answer = &item->answers [kf_variant_pick (item->answers,
                                                                     item->answer_count, labels)];
        size += strlen (item->question) + strlen (answer->answer) + 128;
    }
    char *text = kf_malloc (size);
    size_t used = snprintf (text, size, "%s", prompt);
    if (count > 0)
        used += snprintf (text + used, size - used, "%s%s", *prompt ? "\n\n" : "", s_intro);
    for (int i = 0; i < count; i++) {
        const kf_kb_item_t *item = hits [i].item;
        const kf_variant_t *answer = &item->answers [kf_variant_pick (item->answers,
                                                                     item->answer_count, labels)];
        used += snprintf (text + used, size - used, "\n【参考资料%d】\n问题：%s\n答案：%s\n【参考资料%d结束】",
                          i + 1, item->question, answer->answer, i + 1);
    }
    return text;
}

//  A NUL-terminated copy of a string of the job, kept in the prompt; NULL when absent
static char *
s_text (kf_rag_prompt_t *prompt, kf_wp_str_t value)
{
    if (!value.data)
        return NULL;
    char *text = kf_strndup (value.data, value.len);
    if (prompt->text_count < (int) (sizeof prompt->texts / sizeof prompt->texts [0]))
        prompt->texts [prompt->text_count++] = text;
    else {
        free (text);
        text = NULL;
    }
    return text;
}

void
kf_rag_prompt_build (kf_rag_prompt_t *prompt, const kf_upstream_config_t *upstream,
                     const kf_turn_t *turn, const kf_wp_job_t *job)
{
    memset (prompt, 0, sizeof *prompt);
    kf_upstream_request_t *request = &prompt->request;
    kf_upstream_request_defaults (request);
    request->kind = upstream->kind == KF_LLM_DIFY ? KF_UPSTREAM_DIFY : KF_UPSTREAM_OPENAI;
    request->base_url = upstream->base_url;
    request->api_key = upstream->api_key;
    request->model = upstream->model;
    request->temperature = upstream->temperature;
    request->max_tokens = upstream->max_tokens;
    request->include_usage = upstream->include_usage;
    request->headers = upstream->headers;
    request->header_count = upstream->header_count;
    request->connect_timeout_ms = upstream->connect_timeout_ms;
    request->first_byte_timeout_ms = upstream->first_byte_timeout_ms;
    request->idle_timeout_ms = upstream->idle_timeout_ms;
    request->total_timeout_ms = upstream->total_timeout_ms;
    request->max_retries = upstream->max_retries;
    prompt->query = kf_strndup (turn->message, turn->message_len);
    if (request->kind == KF_UPSTREAM_DIFY) {
        request->query = prompt->query;
        request->inputs = job->inputs;
        prompt->user = s_text (prompt, job->user_id);
        request->user = prompt->user && *prompt->user ? prompt->user : NULL;
        prompt->conversation_id = s_text (prompt, job->upstream_conversation_id);
        request->conversation_id = prompt->conversation_id && *prompt->conversation_id
                                 ? prompt->conversation_id : NULL;
        return;
    }
    prompt->system_prompt = kf_rag_system_prompt (upstream->system_prompt, turn->hits,
                                                  turn->context_count, turn->labels);
    request->system_prompt = prompt->system_prompt;
    int count = 0;
    int first = job->turn_total > KF_RAG_TURNS_MAX ? job->turn_total - KF_RAG_TURNS_MAX : 0;
    for (int i = first; i < job->turn_total; i++) {
        const kf_wp_turn_t *entry = &job->turns [i];
        bool is_user = entry->role.len == 4 && memcmp (entry->role.data, "user", 4) == 0;
        bool is_assistant = entry->role.len == 9 && memcmp (entry->role.data, "assistant", 9) == 0;
        if (!is_user && !is_assistant)
            continue;
        char *content = s_text (prompt, entry->content);
        if (!content)
            continue;
        prompt->messages [count++] = (kf_upstream_message_t) {
            is_user ? "user" : "assistant", content
        };
    }
    prompt->messages [count++] = (kf_upstream_message_t) { "user", prompt->query };
    request->messages = prompt->messages;
    request->message_count = count;
}

void
kf_rag_prompt_release (kf_rag_prompt_t *prompt)
{
    free (prompt->system_prompt);
    free (prompt->query);
    for (int i = 0; i < prompt->text_count; i++)
        free (prompt->texts [i]);
    memset (prompt, 0, sizeof *prompt);
}
