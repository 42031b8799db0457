-- Recomputes the outcomes rollups (migration 0019) of one subscription, or of all when p_subscription is
-- NULL, from the ledger, turn_details and outcomes (their attribution facts too): the migration's backfill, the benchmark's bulk load, and the
-- repair after writes made with the triggers disabled. The ledger and turn_details are locked against
-- writes meanwhile, so no turn is counted twice or missed.
CREATE OR REPLACE FUNCTION omnimeter_outcome_rollups_rebuild(p_subscription uuid) RETURNS void
LANGUAGE sql AS $$
  LOCK TABLE token_usage_logs, turn_details, outcomes IN SHARE MODE;
  DELETE FROM outcome_buckets WHERE p_subscription IS NULL OR subscription_id = p_subscription;
  DELETE FROM latency_quarters WHERE p_subscription IS NULL OR subscription_id = p_subscription;
  DELETE FROM latency_days WHERE p_subscription IS NULL OR subscription_id = p_subscription;
  DELETE FROM ledger_sessions WHERE p_subscription IS NULL OR subscription_id = p_subscription;
  DELETE FROM outcome_touches WHERE p_subscription IS NULL OR subscription_id = p_subscription;

  INSERT INTO outcome_buckets (subscription_id, bucket_start, channel, settled, errors)
  SELECT subscription_id, omnimeter_bucket(created_at), channel, count(*),
    count(*) FILTER (WHERE outcome = 'error')
  FROM token_usage_logs
  WHERE status = 'settled' AND (p_subscription IS NULL OR subscription_id = p_subscription)
  GROUP BY subscription_id, omnimeter_bucket(created_at), channel;

  INSERT INTO outcome_buckets AS b (subscription_id, bucket_start, channel, priced, cost_micros,
    sentiment_count, sentiment_sum, very_negative, negative, neutral, positive, very_positive)
  SELECT subscription_id, omnimeter_bucket(created_at), channel, count(cost_micros),
    coalesce(sum(cost_micros), 0), count(sentiment), coalesce(sum(sentiment), 0),
    count(*) FILTER (WHERE sentiment < -0.6),
    count(*) FILTER (WHERE sentiment >= -0.6 AND sentiment < -0.2),
    count(*) FILTER (WHERE sentiment >= -0.2 AND sentiment <= 0.2),
    count(*) FILTER (WHERE sentiment > 0.2 AND sentiment <= 0.6),
    count(*) FILTER (WHERE sentiment > 0.6)
  FROM turn_details
  WHERE (cost_micros IS NOT NULL OR sentiment IS NOT NULL)
    AND (p_subscription IS NULL OR subscription_id = p_subscription)
  GROUP BY subscription_id, omnimeter_bucket(created_at), channel
  ON CONFLICT (subscription_id, bucket_start, channel) DO UPDATE
  SET priced = excluded.priced, cost_micros = excluded.cost_micros, sentiment_count = excluded.sentiment_count,
    sentiment_sum = excluded.sentiment_sum, very_negative = excluded.very_negative,
    negative = excluded.negative, neutral = excluded.neutral, positive = excluded.positive,
    very_positive = excluded.very_positive;

  INSERT INTO latency_quarters (subscription_id, bucket_start, channel, latency_bucket, turns)
  SELECT subscription_id, omnimeter_bucket(created_at), channel, omnimeter_latency_bucket(latency_ms), count(*)
  FROM token_usage_logs
  WHERE status = 'settled' AND latency_ms IS NOT NULL
    AND (p_subscription IS NULL OR subscription_id = p_subscription)
  GROUP BY subscription_id, omnimeter_bucket(created_at), channel, omnimeter_latency_bucket(latency_ms);

  INSERT INTO latency_days (subscription_id, day, channel, latency_bucket, turns)
  SELECT subscription_id, (bucket_start AT TIME ZONE 'UTC')::date, channel, latency_bucket, sum(turns)
  FROM latency_quarters
  WHERE p_subscription IS NULL OR subscription_id = p_subscription
  GROUP BY subscription_id, (bucket_start AT TIME ZONE 'UTC')::date, channel, latency_bucket;

  INSERT INTO ledger_sessions (subscription_id, session_id, channel, first_bucket, last_bucket)
  SELECT subscription_id, session_id, channel, omnimeter_bucket(min(created_at)), omnimeter_bucket(max(created_at))
  FROM token_usage_logs
  WHERE status <> 'denied' AND session_id IS NOT NULL
    AND (p_subscription IS NULL OR subscription_id = p_subscription)
  GROUP BY subscription_id, session_id, channel;

  SELECT omnimeter_outcome_touches_refresh(ARRAY(
    SELECT id FROM outcomes
    WHERE channel IS NULL AND (p_subscription IS NULL OR subscription_id = p_subscription)));
$$;
