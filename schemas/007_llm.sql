-- 007_llm.sql - LLM upstreams (issue: LLM upstreams): the conversation a Dify app keeps for a kefu
-- session, sent back with every turn of the session so the app remembers it.

ALTER TABLE sessions ADD COLUMN upstream_conversation_id TEXT;     -- NULL: none yet
