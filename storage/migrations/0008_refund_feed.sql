-- The refund change feed (docs/wallet-api.md, "Refund notices"): the demo wallet logs every
-- status change of a refund, so the feed lists each one (no status is skipped between two
-- polls) and pages through them with a cursor (the change's seq).
CREATE TABLE demo_refund_changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    refund_id  TEXT NOT NULL REFERENCES demo_refunds (id),
    status     TEXT NOT NULL,
    changed_at REAL NOT NULL                          -- when the refund reached this status
);
CREATE INDEX demo_refund_changes_time ON demo_refund_changes (changed_at);
INSERT INTO demo_refund_changes (refund_id, status, changed_at)
    SELECT id, status, updated_at FROM demo_refunds ORDER BY updated_at, id;

-- Refunds made outside the bot (in the wallet app) are told to the users linked to their
-- account: finding them by account must not scan every user.
CREATE INDEX users_wallet_account ON users (wallet_account_id);
