-- 010_stopped.sql - an answer the customer stopped (chat.stop) keeps what was said so far and says
-- that it was stopped, in history and message.get, and to a later chat.stop of the same message.

ALTER TABLE turns ADD COLUMN stopped INTEGER NOT NULL DEFAULT 0;  -- 1: ended early by chat.stop
