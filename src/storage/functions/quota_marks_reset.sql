-- A subscription's limit or alert thresholds changed: its counters' threshold marks are stale, so the
-- quota-threshold trigger must look at each counter's next change (next_alert_tokens = 0).
CREATE OR REPLACE FUNCTION omnimeter_quota_marks_reset() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_subscription uuid;
BEGIN
  IF TG_TABLE_NAME = 'subscriptions' THEN
    v_subscription := NEW.id;
  ELSIF TG_OP = 'DELETE' THEN
    v_subscription := OLD.subscription_id;
  ELSE
    v_subscription := NEW.subscription_id;
  END IF;
  UPDATE quota_counters SET next_alert_tokens = 0
  WHERE subscription_id = v_subscription AND next_alert_tokens IS DISTINCT FROM 0;
  RETURN NULL;
END $$;
