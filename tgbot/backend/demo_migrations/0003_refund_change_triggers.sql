-- The change feed is written by the database itself: a new refund and every status change
-- log one change (the same rows the store wrote by hand before), so creating or moving a
-- refund is one statement.
CREATE TRIGGER demo_refund_created AFTER INSERT ON demo_refunds
BEGIN
    INSERT INTO demo_refund_changes (refund_id, status, changed_at)
    VALUES (NEW.id, NEW.status, NEW.created_at);
END;

CREATE TRIGGER demo_refund_moved AFTER UPDATE OF status ON demo_refunds
WHEN NEW.status IS NOT OLD.status
BEGIN
    INSERT INTO demo_refund_changes (refund_id, status, changed_at)
    VALUES (NEW.id, NEW.status, NEW.updated_at);
END;
