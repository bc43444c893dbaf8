-- SQLite's 0010_ticket_header.sql.
-- The header card of a ticket's topic, kept up to date (claimed by, closed) by editing it.
ALTER TABLE tickets ADD COLUMN header_message_id bigint;
-- An agent's message as Telegram HTML (its formatting and allowed links), relayed to the user
-- under the agent's signature; the plain text stays in `text` (transcripts, exports).
ALTER TABLE ticket_messages ADD COLUMN html text;
