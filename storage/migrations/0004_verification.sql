-- Identity verification of Telegram users against wallet accounts (codes live in the wallet;
-- the bot keeps only counters and times, so limits survive restarts).
CREATE TABLE verifications (
    user_id        INTEGER PRIMARY KEY,
    account_id     TEXT,                        -- the account being verified / verified
    code_sent_at   REAL,
    code_expires_at REAL,
    resend_after   REAL,
    tries_left     INTEGER NOT NULL DEFAULT 5,
    failed_rounds  INTEGER NOT NULL DEFAULT 0,  -- codes used up without success
    locked_until   REAL,
    verified_at    REAL
);
