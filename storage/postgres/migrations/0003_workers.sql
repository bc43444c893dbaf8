-- Several workers claim whole chats from the outbox: the claim looks up each due chat's
-- calls in flight (storage/postgres/repos/outbox.py, claim_due).
CREATE INDEX outbox_sending ON outbox (chat_id, lane) WHERE status = 'sending';
