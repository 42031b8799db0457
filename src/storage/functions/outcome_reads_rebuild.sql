-- Recomputes migration 0021's tables (the credits under the default lookback, the sessions' spans over all
-- channels and the spans' edges) of one subscription, or of all when p_subscription is NULL, from
-- outcomes, outcome_touches and ledger_sessions: the migration's backfill, the benchmark's bulk load, and
-- the repair after writes made with the triggers disabled (run omnimeter_outcome_rollups_rebuild first,
-- which rebuilds the tables these are read from). Those tables are locked against writes meanwhile.
CREATE OR REPLACE FUNCTION omnimeter_outcome_reads_rebuild(p_subscription uuid) RETURNS void
LANGUAGE sql AS $$
  LOCK TABLE outcomes, outcome_touches, ledger_sessions IN SHARE MODE;
  DELETE FROM outcome_credits WHERE p_subscription IS NULL OR subscription_id = p_subscription;
  DELETE FROM outcome_credit_days WHERE p_subscription IS NULL OR subscription_id = p_subscription;
  DELETE FROM session_spans WHERE p_subscription IS NULL OR subscription_id = p_subscription;
  DELETE FROM session_edges WHERE p_subscription IS NULL OR subscription_id = p_subscription;
  DELETE FROM session_edge_days WHERE p_subscription IS NULL OR subscription_id = p_subscription;

  SELECT omnimeter_outcome_credits_add(ARRAY(
    SELECT ROW(o.subscription_id, o.occurred_at, m.attribution, coalesce(o.channel, ''), o.name, 1::numeric,
      coalesce(o.value, 0) * 1::numeric)::omnimeter_credit_change
    FROM outcomes o CROSS JOIN (VALUES ('last_touch'), ('first_touch'), ('linear')) AS m (attribution)
    WHERE p_subscription IS NULL OR o.subscription_id = p_subscription));
  SELECT omnimeter_outcome_credits_add(omnimeter_outcome_touch_credits(ARRAY(
    SELECT t FROM outcome_touches t WHERE p_subscription IS NULL OR t.subscription_id = p_subscription), 1));

  INSERT INTO session_spans (subscription_id, session_id, first_bucket, last_bucket)
  SELECT subscription_id, session_id, min(first_bucket), max(last_bucket) FROM ledger_sessions
  WHERE p_subscription IS NULL OR subscription_id = p_subscription
  GROUP BY subscription_id, session_id;

  SELECT omnimeter_session_edges_add(ARRAY(
    SELECT ROW(subscription_id, session_id, channel, first_bucket, last_bucket, 1)::omnimeter_edge_change
    FROM ledger_sessions WHERE p_subscription IS NULL OR subscription_id = p_subscription
    UNION ALL
    SELECT ROW(subscription_id, session_id, '*', first_bucket, last_bucket, 1)::omnimeter_edge_change
    FROM session_spans WHERE p_subscription IS NULL OR subscription_id = p_subscription));
$$;
