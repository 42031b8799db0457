-- Whether a turn with this key was charged, by a committed twin or by one still in flight (this waits for
-- it). Probes by inserting the key (ON CONFLICT DO NOTHING waits for an uncommitted holder of the key);
-- when the insert succeeds nobody holds it, and the probe row is removed again before the caller writes
-- its denial, so denials still hold no key. Only keyed turns about to be denied pay for it.
CREATE OR REPLACE FUNCTION omnimeter_twin_charged(p_subscription uuid, p_key text, p_id uuid, p_created_at timestamptz)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  v_claimed uuid;
BEGIN
  INSERT INTO usage_idempotency_keys AS k (subscription_id, idempotency_key, usage_id, created_at)
  VALUES (p_subscription, p_key, p_id, p_created_at)
  ON CONFLICT (subscription_id, idempotency_key) DO NOTHING
  RETURNING k.usage_id INTO v_claimed;
  IF v_claimed IS NULL THEN
    RETURN true;
  END IF;
  DELETE FROM usage_idempotency_keys k WHERE k.subscription_id = p_subscription AND k.idempotency_key = p_key;
  RETURN false;
END $$;
