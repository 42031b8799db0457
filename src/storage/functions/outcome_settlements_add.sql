-- Signed settlements (migration 0019) into the outcomes rollups: per quarter-hour the settled turns and
-- errors (outcome_buckets), and the latency histogram per quarter-hour (latency_quarters) and per UTC day
-- (latency_days), in key order so that concurrent statements lock rows in the same order. One place for
-- the ledger's insert, update and delete triggers.
CREATE OR REPLACE FUNCTION omnimeter_outcome_settlements_add(p_changes omnimeter_settlement_change[])
RETURNS void
LANGUAGE sql AS $$
  INSERT INTO outcome_buckets AS b (subscription_id, bucket_start, channel, settled, errors)
  SELECT c.subscription_id, omnimeter_bucket(c.created_at), c.channel, sum(c.sign),
    coalesce(sum(c.sign) FILTER (WHERE c.error), 0)
  FROM unnest(p_changes) AS c
  GROUP BY c.subscription_id, omnimeter_bucket(c.created_at), c.channel
  HAVING sum(c.sign) <> 0 OR coalesce(sum(c.sign) FILTER (WHERE c.error), 0) <> 0
  ORDER BY 1, 2, 3
  ON CONFLICT (subscription_id, bucket_start, channel) DO UPDATE
  SET settled = b.settled + excluded.settled, errors = b.errors + excluded.errors;

  INSERT INTO latency_quarters AS h (subscription_id, bucket_start, channel, latency_bucket, turns)
  SELECT c.subscription_id, omnimeter_bucket(c.created_at), c.channel, omnimeter_latency_bucket(c.latency_ms),
    sum(c.sign)
  FROM unnest(p_changes) AS c
  WHERE c.latency_ms IS NOT NULL
  GROUP BY c.subscription_id, omnimeter_bucket(c.created_at), c.channel, omnimeter_latency_bucket(c.latency_ms)
  HAVING sum(c.sign) <> 0
  ORDER BY 1, 2, 3, 4
  ON CONFLICT (subscription_id, bucket_start, channel, latency_bucket) DO UPDATE
  SET turns = h.turns + excluded.turns;

  INSERT INTO latency_days AS h (subscription_id, day, channel, latency_bucket, turns)
  SELECT c.subscription_id, (c.created_at AT TIME ZONE 'UTC')::date, c.channel,
    omnimeter_latency_bucket(c.latency_ms), sum(c.sign)
  FROM unnest(p_changes) AS c
  WHERE c.latency_ms IS NOT NULL
  GROUP BY c.subscription_id, (c.created_at AT TIME ZONE 'UTC')::date, c.channel,
    omnimeter_latency_bucket(c.latency_ms)
  HAVING sum(c.sign) <> 0
  ORDER BY 1, 2, 3, 4
  ON CONFLICT (subscription_id, day, channel, latency_bucket) DO UPDATE
  SET turns = h.turns + excluded.turns;
$$;
