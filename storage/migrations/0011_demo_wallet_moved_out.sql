-- The demo wallet keeps its own database now (tgbot/backend/demo_store.py, its migrations in
-- tgbot/backend/demo_migrations/); the bot's database holds only the bot's records. Its old
-- tables here go (children before parents: foreign keys are on). Their demo data is not
-- moved: the demo wallet seeds its own file afresh at first use. With secure_delete on, the
-- dropped pages are zeroed.

-- A refund feed cursor the old demo wallet issued means nothing to its fresh file (the poller
-- would wait for the new feed to pass it, missing the notices before): the poller starts
-- again from the last 24 hours. Only where the demo wallet was in use (seeded: demo_meta
-- holds its card pepper); a real wallet's cursor stays.
DELETE FROM settings
    WHERE key = 'refunds.feed_cursor' AND EXISTS (SELECT 1 FROM demo_meta);

DROP TABLE IF EXISTS demo_refund_changes;
DROP TABLE IF EXISTS demo_refunds;
DROP TABLE IF EXISTS demo_idempotency;
DROP TABLE IF EXISTS demo_bindings;
DROP TABLE IF EXISTS demo_tokens;
DROP TABLE IF EXISTS demo_sms;
DROP TABLE IF EXISTS demo_codes;
DROP TABLE IF EXISTS demo_transactions;
DROP TABLE IF EXISTS demo_cards;
DROP TABLE IF EXISTS demo_accounts;
DROP TABLE IF EXISTS demo_meta;
