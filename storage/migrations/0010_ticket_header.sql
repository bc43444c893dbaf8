-- The header card of a ticket's topic, kept up to date (claimed by, closed) by editing it.
ALTER TABLE tickets ADD COLUMN header_message_id INTEGER;
