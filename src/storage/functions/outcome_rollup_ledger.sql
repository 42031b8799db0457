-- The outcomes rollups' ledger trigger (migration 0019), one statement-level function for INSERT, UPDATE
-- and DELETE on token_usage_logs (transition tables inserted_rows, previous_rows/updated_rows,
-- removed_rows, as the analytics rollups' triggers name them). Settled versions add to the settlement
-- figures and latency histograms (omnimeter_outcome_settlements_add), older versions subtract. Allowed
-- turns with a session widen their ledger_sessions row, which changes at most once per session and
-- quarter-hour (the WHERE of the upsert), so a consume batch of an ongoing conversation usually writes
-- nothing there. A correction or deletion that moves or removes a session's turn recomputes its row from
-- the ledger. Turns that may touch an outcome recorded already (an import, a correction, an outcome dated
-- ahead) refresh its attribution facts (omnimeter_outcomes_touched, omnimeter_outcome_touches_refresh).
CREATE OR REPLACE FUNCTION omnimeter_outcome_rollup_ledger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_touched uuid[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    v_touched := omnimeter_outcomes_touched(ARRAY(
      SELECT ROW(subscription_id, user_identifier, session_id, created_at)::omnimeter_touch
      FROM inserted_rows WHERE status <> 'denied'));
    INSERT INTO ledger_sessions AS s (subscription_id, session_id, channel, first_bucket, last_bucket)
    SELECT subscription_id, session_id, channel, omnimeter_bucket(min(created_at)),
      omnimeter_bucket(max(created_at))
    FROM inserted_rows
    WHERE status <> 'denied' AND session_id IS NOT NULL
    GROUP BY subscription_id, session_id, channel
    ORDER BY 1, 2, 3
    ON CONFLICT (subscription_id, session_id, channel) DO UPDATE
    SET first_bucket = least(s.first_bucket, excluded.first_bucket),
      last_bucket = greatest(s.last_bucket, excluded.last_bucket)
    WHERE excluded.first_bucket < s.first_bucket OR excluded.last_bucket > s.last_bucket;
    IF EXISTS (SELECT 1 FROM inserted_rows WHERE status = 'settled') THEN
      PERFORM omnimeter_outcome_settlements_add(ARRAY(
        SELECT ROW(subscription_id, created_at, channel, outcome = 'error', latency_ms, 1)::omnimeter_settlement_change
        FROM inserted_rows WHERE status = 'settled'));
    END IF;
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM omnimeter_outcome_settlements_add(ARRAY(
      SELECT ROW(subscription_id, created_at, channel, outcome = 'error', latency_ms, 1)::omnimeter_settlement_change
      FROM updated_rows WHERE status = 'settled'
      UNION ALL
      SELECT ROW(subscription_id, created_at, channel, outcome = 'error', latency_ms, -1)::omnimeter_settlement_change
      FROM previous_rows WHERE status = 'settled'));
    IF EXISTS (
      SELECT 1 FROM updated_rows n JOIN previous_rows o ON o.id = n.id
      WHERE (o.status = 'denied') <> (n.status = 'denied') OR o.subscription_id <> n.subscription_id
        OR o.session_id IS DISTINCT FROM n.session_id OR o.channel <> n.channel OR o.created_at <> n.created_at
        OR o.user_identifier IS DISTINCT FROM n.user_identifier
    ) THEN
      v_touched := omnimeter_outcomes_touched(ARRAY(
        SELECT ROW(subscription_id, user_identifier, session_id, created_at)::omnimeter_touch FROM updated_rows
        UNION ALL
        SELECT ROW(subscription_id, user_identifier, session_id, created_at)::omnimeter_touch FROM previous_rows));
      PERFORM omnimeter_ledger_sessions_refresh(ARRAY(
        SELECT ROW(subscription_id, session_id, channel)::omnimeter_session_key
        FROM updated_rows WHERE session_id IS NOT NULL
        UNION
        SELECT ROW(subscription_id, session_id, channel)::omnimeter_session_key
        FROM previous_rows WHERE session_id IS NOT NULL));
    END IF;
  ELSE
    v_touched := omnimeter_outcomes_touched(ARRAY(
      SELECT ROW(subscription_id, user_identifier, session_id, created_at)::omnimeter_touch
      FROM removed_rows WHERE status <> 'denied'));
    PERFORM omnimeter_outcome_settlements_add(ARRAY(
      SELECT ROW(subscription_id, created_at, channel, outcome = 'error', latency_ms, -1)::omnimeter_settlement_change
      FROM removed_rows WHERE status = 'settled'));
    PERFORM omnimeter_ledger_sessions_refresh(ARRAY(
      SELECT DISTINCT ROW(subscription_id, session_id, channel)::omnimeter_session_key
      FROM removed_rows WHERE session_id IS NOT NULL AND status <> 'denied'));
  END IF;
  IF cardinality(v_touched) > 0 THEN
    PERFORM omnimeter_outcome_touches_refresh(v_touched);
  END IF;
  RETURN NULL;
END $$;
