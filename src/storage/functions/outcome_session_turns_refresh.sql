-- Recomputes the converted-session facts (migration 0025) of some sessions of one subscription (all its
-- sessions named by an outcome when p_sessions is NULL) from the ledger: after outcomes naming them are
-- recorded, after a correction or deletion moved or removed one of their turns, and as the backfill.
-- Reads those sessions' allowed turns (token_usage_logs_session_time).
CREATE OR REPLACE FUNCTION omnimeter_outcome_session_turns_refresh(p_subscription uuid, p_sessions text[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM omnimeter_sessions_lock(p_subscription);
  -- By outcome id, the table's key: it has no index by session.
  DELETE FROM outcome_session_turns s
  WHERE s.outcome_id IN (
    SELECT o.id FROM outcomes o
    WHERE o.subscription_id = p_subscription AND o.session_id IS NOT NULL
      AND (p_sessions IS NULL OR o.session_id = ANY (p_sessions)));
  PERFORM omnimeter_outcome_session_turns_add(ARRAY(
    SELECT ROW(l.subscription_id, l.session_id, l.channel, l.created_at)::omnimeter_session_turn
    FROM token_usage_logs l
    WHERE l.subscription_id = p_subscription AND l.status <> 'denied'
      AND l.session_id IN (
        SELECT o.session_id FROM outcomes o
        WHERE o.subscription_id = p_subscription AND o.session_id IS NOT NULL
          AND (p_sessions IS NULL OR o.session_id = ANY (p_sessions)))));
END $$;
