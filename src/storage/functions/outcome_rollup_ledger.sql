-- The outcomes rollups' ledger trigger (migration 0019), one statement-level function for INSERT, UPDATE
-- and DELETE on token_usage_logs (transition tables inserted_rows, previous_rows/updated_rows,
-- removed_rows, as the analytics rollups' triggers name them). Settled versions add to the settlement
-- figures and latency histograms (omnimeter_outcome_settlements_add), older versions subtract. Inserted
-- turns widen their sessions and refresh the outcomes they touch (omnimeter_outcome_sessions_inserted);
-- the insert trigger is skipped for omnimeter_write_turns' statements, which queue that work instead
-- (omnimeter.sessions_queued, migration 0024). A correction or deletion that moves or removes a session's
-- turn recomputes its row and the converted-session facts of its session (migration 0025) from the ledger,
-- and refreshes the outcomes it may touch.
CREATE OR REPLACE FUNCTION omnimeter_outcome_rollup_ledger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_touched uuid[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM omnimeter_outcome_sessions_inserted(ARRAY(SELECT i::token_usage_logs FROM inserted_rows i));
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
      -- The deriver's lock before any row it also writes (sessions, touches, credits, facts).
      PERFORM omnimeter_sessions_lock(s.subscription_id)
      FROM (SELECT subscription_id FROM updated_rows UNION SELECT subscription_id FROM previous_rows ORDER BY 1) AS s;
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
      PERFORM omnimeter_outcome_session_turns_refresh(m.subscription_id, array_agg(DISTINCT m.session_id))
      FROM (SELECT subscription_id, session_id FROM updated_rows UNION ALL
        SELECT subscription_id, session_id FROM previous_rows) AS m
      WHERE m.session_id IS NOT NULL
      GROUP BY m.subscription_id ORDER BY m.subscription_id;
    END IF;
  ELSE
    PERFORM omnimeter_sessions_lock(s.subscription_id)
    FROM (SELECT DISTINCT subscription_id FROM removed_rows ORDER BY 1) AS s;
    v_touched := omnimeter_outcomes_touched(ARRAY(
      SELECT ROW(subscription_id, user_identifier, session_id, created_at)::omnimeter_touch
      FROM removed_rows WHERE status <> 'denied'));
    PERFORM omnimeter_outcome_settlements_add(ARRAY(
      SELECT ROW(subscription_id, created_at, channel, outcome = 'error', latency_ms, -1)::omnimeter_settlement_change
      FROM removed_rows WHERE status = 'settled'));
    PERFORM omnimeter_ledger_sessions_refresh(ARRAY(
      SELECT DISTINCT ROW(subscription_id, session_id, channel)::omnimeter_session_key
      FROM removed_rows WHERE session_id IS NOT NULL AND status <> 'denied'));
    PERFORM omnimeter_outcome_session_turns_refresh(r.subscription_id, array_agg(DISTINCT r.session_id))
    FROM removed_rows r
    WHERE r.session_id IS NOT NULL AND r.status <> 'denied'
    GROUP BY r.subscription_id ORDER BY r.subscription_id;
  END IF;
  IF cardinality(v_touched) > 0 THEN
    PERFORM omnimeter_outcome_touches_refresh(v_touched);
  END IF;
  RETURN NULL;
END $$;
