-- 009_intents.sql - intent routing, chit-chat, tickets and the handoff to people (issue 5).
-- Intents and chit-chat replies are edited per bot over the protocol; a bot without rows of its own
-- uses the default bot's. The default bot's intents are seeded from deploy/sample-intents.jsonl
-- (embedded in the broker) right after this migration, in the same transaction.

CREATE TABLE intents (
    id          INTEGER PRIMARY KEY,
    bot_id      TEXT NOT NULL,
    name        TEXT NOT NULL,                  -- chitchat, knowledge_qa, business_query, ...
    description TEXT NOT NULL DEFAULT '',
    examples    TEXT NOT NULL DEFAULT '[]',     -- JSON array of example utterances
    keywords    TEXT NOT NULL DEFAULT '[]',     -- JSON array: evidence for the model
    patterns    TEXT NOT NULL DEFAULT '[]',     -- JSON array of "A" / "A*B": override the model
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (bot_id, name)
);

CREATE TABLE chitchat (                         -- small talk answered without the knowledge base
    id          INTEGER PRIMARY KEY,
    bot_id      TEXT NOT NULL,
    questions   TEXT NOT NULL,                  -- JSON array of phrasings
    reply       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX chitchat_bot ON chitchat (bot_id, id);

INSERT INTO chitchat (bot_id, questions, reply, updated_at) VALUES
('default', '["你好","您好","hi","hello","在吗","在不在","有人吗"]', '您好，我是智能客服小快，请问有什么可以帮您？', 0),
('default', '["你是谁","你叫什么名字","你是哪位"]', '我是本店的智能客服小快，可以帮您查询订单、物流、退换货、发票、优惠券等问题。', 0),
('default', '["你是机器人吗","你是真人吗","是机器人吗"]', '我是本店的智能客服小快，遇到解决不了的问题，您可以输入“转人工”联系人工客服。', 0),
('default', '["谢谢","谢谢你","多谢","感谢","感谢您","thanks","thank you","thx"]', '不客气，很高兴能帮到您！还有其他问题随时问我。', 0),
('default', '["再见","拜拜","bye","goodbye"]', '感谢您的咨询，祝您生活愉快，再见！', 0),
('default', '["好的","嗯嗯","知道了","明白了","ok"]', '好的，还有其他问题随时问我。', 0),
('default', '["没有了","没事了","没问题了"]', '好的，感谢您的咨询，祝您购物愉快！', 0),
('default', '["辛苦了","你真棒","你真聪明"]', '谢谢您的夸奖，能帮到您是我的荣幸！', 0),
('default', '["早上好","早安"]', '早上好！请问有什么可以帮您？', 0),
('default', '["晚上好","晚安"]', '晚上好！请问有什么可以帮您？', 0);

CREATE TABLE tickets (
    id          INTEGER PRIMARY KEY,
    ticket_no   TEXT NOT NULL UNIQUE,           -- "T" + yyyymmdd (UTC+8) + id, zero-padded to 6
    bot_id      TEXT NOT NULL,
    session_id  TEXT,                           -- NULL when submitted by intent.execute alone
    user_id     TEXT NOT NULL DEFAULT '',
    message_id  INTEGER,                        -- the answer that created it, when from a chat
    type        TEXT NOT NULL,                  -- 报修, 投诉, 售后, 咨询 (common/ticket_types.h)
    fields      TEXT NOT NULL,                  -- JSON object: address, phone, description, ...
    status      TEXT NOT NULL DEFAULT 'open',   -- open, processing, closed
    source      TEXT NOT NULL DEFAULT 'chat',   -- chat, execute
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX tickets_bot ON tickets (bot_id, id);
CREATE INDEX tickets_session ON tickets (session_id, id);
CREATE INDEX tickets_user ON tickets (user_id, id);

CREATE TABLE escalations (
    id              INTEGER PRIMARY KEY,
    session_id      TEXT NOT NULL,
    bot_id          TEXT NOT NULL,
    user_id         TEXT NOT NULL DEFAULT '',
    channel         TEXT NOT NULL DEFAULT 'api',
    reason          INTEGER NOT NULL,           -- 1 asked, 2 keyword, 3 no answer, 4 emotion, 5 repeated
    intent          TEXT,
    emotion_score   REAL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    card            TEXT NOT NULL,              -- JSON of the escalation card as published
    status          TEXT NOT NULL DEFAULT 'pending',    -- pending, assigned, resolved, closed
    agent_id        TEXT,
    created_at      INTEGER NOT NULL,
    assigned_at     INTEGER,
    resolved_at     INTEGER,                    -- resolved by an agent, or closed with its session
    note            TEXT                        -- agent.resolve's note
);
CREATE INDEX escalations_status ON escalations (status, id);
CREATE INDEX escalations_session ON escalations (session_id, id);

ALTER TABLE sessions ADD COLUMN handoff_state TEXT NOT NULL DEFAULT 'bot';   -- bot, pending, assigned
ALTER TABLE sessions ADD COLUMN escalation_id INTEGER;             -- the open escalation, if any
ALTER TABLE sessions ADD COLUMN slots TEXT NOT NULL DEFAULT '{}';  -- JSON: entities and dialog state
ALTER TABLE sessions ADD COLUMN repeat_key TEXT;                   -- last normalized question
ALTER TABLE sessions ADD COLUMN repeat_count INTEGER NOT NULL DEFAULT 0;    -- times in a row

ALTER TABLE bots ADD COLUMN handoff TEXT NOT NULL DEFAULT '{}';    -- JSON: handoff thresholds
