-- 014_item_ids.sql - knowledge item ids are never handed out twice: SQLite would give a new item
-- the id of a deleted last one, and old sources, feedback per item and integrators' references
-- would then name another question. The highest id ever given stays in counters.

INSERT INTO counters (name, value) SELECT 'last_kb_item_id', coalesce (max (id), 0) FROM kb_items;
CREATE TRIGGER kb_items_last_id AFTER INSERT ON kb_items BEGIN
    UPDATE counters SET value = NEW.id WHERE name = 'last_kb_item_id' AND value < NEW.id;
END;
