-- Derives one subscription's queued turns (migration 0024): omnimeter_write_turns queues the allowed turns
-- it writes in session_queue instead of deriving their sessions in the consume transaction; this applies
-- them with the insert triggers' own functions (omnimeter_outcome_sessions_inserted: ledger_sessions, and
-- through its trigger session_spans and session_edges, and outcome_touches;
-- omnimeter_journey_sessions_inserted: journey_sessions and journey_gap_sessions), reading each turn as
-- the ledger holds it now. Those functions are idempotent, so a turn corrected or deleted before this runs
-- (its rows already recomputed from the ledger) ends exact too; a deleted turn is only dequeued.
-- One deriver per subscription at a time (omnimeter_sessions_lock, a transaction-level advisory lock, taken
-- only when something is queued); the queue rows it applies are deleted in its transaction (DELETE ... RETURNING), so two never
-- apply a turn twice, and a reader that calls this waits for a deriver in progress instead of skipping
-- its rows. p_limit bounds the turns of one call (the background job's short statements); NULL takes all
-- (a reader's catch-up). Returns the number of queue rows taken.
CREATE OR REPLACE FUNCTION omnimeter_sessions_derive(p_subscription uuid, p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_taken integer;
  v_rows token_usage_logs[];
BEGIN
  IF NOT EXISTS (SELECT 1 FROM session_queue q WHERE q.subscription_id = p_subscription) THEN
    RETURN 0;
  END IF;
  PERFORM omnimeter_sessions_lock(p_subscription);
  WITH taken AS (
    DELETE FROM session_queue q
    WHERE q.subscription_id = p_subscription
      AND (p_limit IS NULL OR q.usage_id IN (
        SELECT n.usage_id FROM session_queue n WHERE n.subscription_id = p_subscription
        ORDER BY n.usage_id LIMIT p_limit))
    RETURNING q.usage_id, q.created_at
  )
  SELECT (SELECT count(*) FROM taken)::integer,
    ARRAY(SELECT l FROM taken t
      JOIN token_usage_logs l ON l.id = t.usage_id AND l.created_at = t.created_at
      WHERE l.subscription_id = p_subscription
      ORDER BY l.created_at, l.id)
  INTO v_taken, v_rows;
  IF cardinality(v_rows) > 0 THEN
    PERFORM omnimeter_outcome_sessions_inserted(v_rows);
    PERFORM omnimeter_journey_sessions_inserted(v_rows);
  END IF;
  RETURN v_taken;
END $$;
