/*  kb_gen.h - a deterministic generator of a large, realistic Chinese FAQ knowledge base for the
    benches: items in the JSONL shape of deploy/sample-kb.jsonl, and customer queries that
    paraphrase them. Product, action, problem and attribute words come from per-category word lists and are
    combined, so terms have the document frequencies of a real shop's FAQ (a few very common words,
    many rare product names), not random characters. The same seed gives the same bytes. */
#ifndef KF_KB_GEN_H
#define KF_KB_GEN_H
#include <stdint.h>
#include <stdio.h>

//  Writes `count` items, one JSON object a line: external_id ("gen-0000001"...), category (a path),
//  question, 3-8 similar_questions, answer, keywords. Returns 0, or -1 when `count` is larger than
//  the vocabulary can make distinct items for.
int kf_kb_gen_items (FILE *out, int count, uint64_t seed);

//  Writes `count` queries over the first `item_count` items of the same seed, one JSON object a
//  line: {"query": ..., "expect": external_id} for paraphrases of an item (other wordings, filler
//  phrases, particles, a typo, a missing brand), {"query": ..., "expect": null} for the few that
//  ask about something else.
void kf_kb_gen_queries (FILE *out, int item_count, int count, uint64_t seed);
#endif
