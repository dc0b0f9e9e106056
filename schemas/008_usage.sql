-- 008_usage.sql - LLM usage (issue: upstream limits): the upstream that answered each turn, and
-- token totals per bot and upstream, upserted with every LLM turn so stats need no scan of turns.

ALTER TABLE turns ADD COLUMN upstream TEXT;                        -- NULL: not an LLM turn

CREATE TABLE usage_totals (
    bot_id TEXT NOT NULL,
    upstream TEXT NOT NULL,
    turns INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    total_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (bot_id, upstream)
) WITHOUT ROWID;
