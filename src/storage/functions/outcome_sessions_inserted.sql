-- What inserted allowed turns change in the outcomes' session and attribution tables (migrations 0019,
-- 0024): each turn with a session widens its ledger_sessions row, which changes at most once per session
-- and quarter-hour (the WHERE of the upsert), so a batch of an ongoing conversation usually writes nothing
-- there; turns that may touch an outcome recorded already (an import, an outcome dated ahead) refresh its
-- attribution facts (omnimeter_outcomes_touched, omnimeter_outcome_touches_refresh), and turns of sessions
-- an outcome names widen its converted-session facts (omnimeter_outcome_session_turns_add, migration
-- 0025). All are idempotent:
-- a turn applied twice, or after a correction recomputed its rows from the ledger, changes nothing more.
-- Called by the ledger's insert trigger (rows inserted by a statement) and by omnimeter_sessions_derive
-- (consumed turns, after their transaction committed).
CREATE OR REPLACE FUNCTION omnimeter_outcome_sessions_inserted(p_rows token_usage_logs[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_touched uuid[];
BEGIN
  -- The deriver's lock first (held already when the deriver calls), before any row it also writes.
  PERFORM omnimeter_sessions_lock(s.subscription_id)
  FROM (SELECT DISTINCT i.subscription_id FROM unnest(p_rows) AS i WHERE i.status <> 'denied' ORDER BY 1) AS s;
  v_touched := omnimeter_outcomes_touched(ARRAY(
    SELECT ROW(i.subscription_id, i.user_identifier, i.session_id, i.created_at)::omnimeter_touch
    FROM unnest(p_rows) AS i WHERE i.status <> 'denied'));
  INSERT INTO ledger_sessions AS s (subscription_id, session_id, channel, first_bucket, last_bucket)
  SELECT i.subscription_id, i.session_id, i.channel, omnimeter_bucket(min(i.created_at)),
    omnimeter_bucket(max(i.created_at))
  FROM unnest(p_rows) AS i
  WHERE i.status <> 'denied' AND i.session_id IS NOT NULL
  GROUP BY i.subscription_id, i.session_id, i.channel
  ORDER BY 1, 2, 3
  ON CONFLICT (subscription_id, session_id, channel) DO UPDATE
  SET first_bucket = least(s.first_bucket, excluded.first_bucket),
    last_bucket = greatest(s.last_bucket, excluded.last_bucket)
  WHERE excluded.first_bucket < s.first_bucket OR excluded.last_bucket > s.last_bucket;
  IF cardinality(v_touched) > 0 THEN
    PERFORM omnimeter_outcome_touches_refresh(v_touched);
  END IF;
  PERFORM omnimeter_outcome_session_turns_add(ARRAY(
    SELECT ROW(i.subscription_id, i.session_id, i.channel, i.created_at)::omnimeter_session_turn
    FROM unnest(p_rows) AS i WHERE i.status <> 'denied' AND i.session_id IS NOT NULL));
END $$;
