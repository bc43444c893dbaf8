-- Refunds still moving, by age: the wallet advances only those due for their next status
-- (DemoStore.due_refunds) instead of reading every unfinished refund on every call.
CREATE INDEX demo_refunds_moving ON demo_refunds (created_at)
    WHERE status NOT IN ('rejected', 'refunded');
