-- Recomputes the converted-session facts (migration 0025) of one subscription, or of all when
-- p_subscription is NULL, from outcomes and the ledger: the migration's backfill, the benchmark's bulk
-- load, and the repair after writes made with the triggers disabled.
CREATE OR REPLACE FUNCTION omnimeter_outcome_session_turns_rebuild(p_subscription uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_subscription uuid;
BEGIN
  DELETE FROM outcome_session_turns WHERE p_subscription IS NULL OR subscription_id = p_subscription;
  FOR v_subscription IN
    SELECT DISTINCT o.subscription_id FROM outcomes o
    WHERE o.session_id IS NOT NULL AND (p_subscription IS NULL OR o.subscription_id = p_subscription)
    ORDER BY 1
  LOOP
    PERFORM omnimeter_outcome_session_turns_refresh(v_subscription, NULL);
  END LOOP;
END $$;
