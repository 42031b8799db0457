-- The outcomes whose attribution facts some turns may change (migration 0019): same subscription, same
-- user or session, no own channel, occurred_at within the default lookback (7 days) at or after the turn.
-- First one probe per subscription of the batch (outcomes_subscription_occurred): is any outcome dated at
-- or after its earliest turn? A consume's turns are "now", and an import usually precedes its outcomes, so
-- the answer is almost always no and nothing else runs; otherwise two index probes per turn.
CREATE OR REPLACE FUNCTION omnimeter_outcomes_touched(p_turns omnimeter_touch[]) RETURNS uuid[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_subscription uuid;
  v_since timestamptz;
  v_found boolean := false;
  v_touched uuid[];
BEGIN
  FOR v_subscription, v_since IN
    SELECT t.subscription_id, min(t.created_at) FROM unnest(p_turns) AS t GROUP BY t.subscription_id
  LOOP
    IF EXISTS (
      SELECT 1 FROM outcomes o
      WHERE o.subscription_id = v_subscription AND o.occurred_at >= v_since AND o.channel IS NULL
    ) THEN
      v_found := true;
      EXIT;
    END IF;
  END LOOP;
  IF NOT v_found THEN
    RETURN '{}';
  END IF;
  SELECT coalesce(array_agg(DISTINCT id), '{}') INTO v_touched FROM (
    SELECT o.id FROM unnest(p_turns) AS t
    JOIN outcomes o ON o.subscription_id = t.subscription_id AND o.user_identifier = t.user_identifier
      AND o.occurred_at >= t.created_at AND o.occurred_at <= t.created_at + interval '7 days'
    WHERE o.channel IS NULL
    UNION ALL
    SELECT o.id FROM unnest(p_turns) AS t
    JOIN outcomes o ON o.subscription_id = t.subscription_id AND o.session_id = t.session_id
      AND o.occurred_at >= t.created_at AND o.occurred_at <= t.created_at + interval '7 days'
    WHERE o.channel IS NULL
  ) AS touched;
  RETURN v_touched;
END $$;
