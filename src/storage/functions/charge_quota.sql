-- The one place a quota counter grows: adds each charge's tokens to its (subscription, period) counter,
-- creating the counter at the period's first charge. Capped (live turns), a charge is applied only when
-- the counter stays within p_cap, or, when p_cap is null, within the subscription's token limit (a turn
-- kept out of the quota reserve passes its lower limit), and is otherwise left out of the result (the
-- caller denies it); uncapped (imported history, which happened whatever the limit says today), always.
-- The charges must name distinct counters. Counters are locked in (subscription, period) order, the lock
-- order of every batch. Returns the charges applied, each with its counter's new value.
CREATE OR REPLACE FUNCTION omnimeter_charge_quota(p_subscription_ids uuid[], p_period_starts timestamptz[],
  p_tokens bigint[], p_capped boolean, p_cap bigint DEFAULT NULL)
RETURNS TABLE (subscription_id uuid, period_start timestamptz, used_tokens bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
  -- PL/pgSQL, not SQL: its plan is prepared once per session, an SQL function's on every call.
  RETURN QUERY
  INSERT INTO quota_counters AS q (subscription_id, period_start, used_tokens)
  SELECT c.subscription_id, c.period_start, c.tokens
  FROM unnest(p_subscription_ids, p_period_starts, p_tokens) AS c(subscription_id, period_start, tokens)
  JOIN subscriptions s ON s.id = c.subscription_id
  WHERE NOT p_capped OR c.tokens <= coalesce(p_cap, s.token_limit)
  ORDER BY c.subscription_id, c.period_start
  ON CONFLICT (subscription_id, period_start) DO UPDATE
    SET used_tokens = q.used_tokens + excluded.used_tokens
    WHERE NOT p_capped OR q.used_tokens + excluded.used_tokens
      <= coalesce(p_cap, (SELECT s2.token_limit FROM subscriptions s2 WHERE s2.id = q.subscription_id))
  RETURNING q.subscription_id, q.period_start, q.used_tokens;
END $$;
