-- 005_records.sql - messages imported from elsewhere (records.save, issue 3): their kind, the id
-- the caller gave them (saving twice stores once), who sent them and an optional title.

ALTER TABLE turns ADD COLUMN content_type TEXT NOT NULL DEFAULT 'text';  -- text, image, voice
ALTER TABLE turns ADD COLUMN record_id TEXT;
ALTER TABLE turns ADD COLUMN sender_id TEXT;
ALTER TABLE turns ADD COLUMN title TEXT;
CREATE UNIQUE INDEX turns_record ON turns (session_id, record_id) WHERE record_id IS NOT NULL;
