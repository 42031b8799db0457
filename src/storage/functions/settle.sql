-- Settlement: the turn's actual tokens replace its estimate, and the counter moves by the difference.
-- A UUIDv7 turn is found in the one partition of its time first; other ids in every partition.
CREATE OR REPLACE FUNCTION omnimeter_settle(p_id uuid, p_actual bigint, p_settled_at timestamptz, p_outcome text,
  p_latency_ms integer)
RETURNS TABLE (o_subscription_id uuid, o_channel text, o_previous_billed bigint, o_billed_tokens bigint,
  o_period_start timestamptz, o_used_tokens bigint, o_token_limit bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_at timestamptz := omnimeter_uuid7_time(p_id);
BEGIN
  IF v_at IS NOT NULL THEN
    RETURN QUERY
      WITH target AS (
        SELECT l.id, l.created_at, l.billed_tokens FROM token_usage_logs l
        WHERE l.id = p_id AND l.created_at = v_at AND l.status = 'estimated'
        FOR UPDATE
      ), settled AS (
        UPDATE token_usage_logs t
        SET status = 'settled', raw_tokens = p_actual,
            billed_tokens = ceil(p_actual::numeric * t.token_multiplier)::bigint,
            settled_at = p_settled_at, outcome = p_outcome, latency_ms = p_latency_ms
        FROM target
        WHERE t.id = target.id AND t.created_at = v_at
        RETURNING t.subscription_id, t.channel, t.period_start, t.billed_tokens, target.billed_tokens AS previous_billed
      ), counter AS (
        UPDATE quota_counters q
        SET used_tokens = q.used_tokens + (settled.billed_tokens - settled.previous_billed)
        FROM settled
        WHERE q.subscription_id = settled.subscription_id AND q.period_start = settled.period_start
        RETURNING q.used_tokens
      )
      SELECT settled.subscription_id, settled.channel, settled.previous_billed, settled.billed_tokens,
        settled.period_start, counter.used_tokens,
        (SELECT s.token_limit FROM subscriptions s WHERE s.id = settled.subscription_id)
      FROM settled, counter;
    IF FOUND THEN
      RETURN;
    END IF;
  END IF;
  -- Not a UUIDv7, or not found at its time (already settled, denied, unknown): every partition.
  RETURN QUERY
    WITH target AS (
      SELECT l.id, l.created_at, l.billed_tokens FROM token_usage_logs l
      WHERE l.id = p_id AND l.status = 'estimated'
      FOR UPDATE
    ), settled AS (
      UPDATE token_usage_logs t
      SET status = 'settled', raw_tokens = p_actual,
          billed_tokens = ceil(p_actual::numeric * t.token_multiplier)::bigint,
          settled_at = p_settled_at, outcome = p_outcome, latency_ms = p_latency_ms
      FROM target
      WHERE t.id = target.id AND t.created_at = target.created_at
      RETURNING t.subscription_id, t.channel, t.period_start, t.billed_tokens, target.billed_tokens AS previous_billed
    ), counter AS (
      UPDATE quota_counters q
      SET used_tokens = q.used_tokens + (settled.billed_tokens - settled.previous_billed)
      FROM settled
      WHERE q.subscription_id = settled.subscription_id AND q.period_start = settled.period_start
      RETURNING q.used_tokens
    )
    SELECT settled.subscription_id, settled.channel, settled.previous_billed, settled.billed_tokens,
      settled.period_start, counter.used_tokens,
      (SELECT s.token_limit FROM subscriptions s WHERE s.id = settled.subscription_id)
    FROM settled, counter;
END $$;
