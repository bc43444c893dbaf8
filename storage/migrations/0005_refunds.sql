-- Refund requests made through the bot (the wallet owns them; the bot remembers whom to
-- notify and the last status it told them), and small persisted settings.
CREATE TABLE refunds (
    id             TEXT    PRIMARY KEY,            -- the wallet's refund reference
    user_id        INTEGER NOT NULL,
    account_id     TEXT    NOT NULL,
    transaction_id TEXT    NOT NULL,
    amount         TEXT    NOT NULL,               -- Decimal as text
    currency       TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    status         TEXT    NOT NULL,               -- last status the user was told
    created_at     REAL    NOT NULL,
    updated_at     REAL    NOT NULL
);
CREATE INDEX refunds_user ON refunds (user_id, created_at);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
