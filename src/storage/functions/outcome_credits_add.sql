-- Signed credits (migration 0021) into the pre-aggregated attribution under the default lookback: per
-- quarter-hour of occurred_at (outcome_credits) and per UTC day (outcome_credit_days), per attribution
-- model, credited channel ('' = no channel) and outcome name, in key order so that concurrent statements
-- lock rows in the same order. One place for the outcomes' and their touches' triggers.
CREATE OR REPLACE FUNCTION omnimeter_outcome_credits_add(p_changes omnimeter_credit_change[]) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO outcome_credits AS c (subscription_id, attribution, bucket_start, channel, name, conversions, value)
  SELECT x.subscription_id, x.attribution, omnimeter_bucket(x.occurred_at), x.channel, x.name, sum(x.conversions),
    sum(x.value)
  FROM unnest(p_changes) AS x
  GROUP BY x.subscription_id, x.attribution, omnimeter_bucket(x.occurred_at), x.channel, x.name
  ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (subscription_id, attribution, bucket_start, channel, name) DO UPDATE
  SET conversions = c.conversions + excluded.conversions, value = c.value + excluded.value;

  INSERT INTO outcome_credit_days AS c (subscription_id, attribution, day, channel, name, conversions, value)
  SELECT x.subscription_id, x.attribution, (x.occurred_at AT TIME ZONE 'UTC')::date, x.channel, x.name,
    sum(x.conversions), sum(x.value)
  FROM unnest(p_changes) AS x
  GROUP BY x.subscription_id, x.attribution, (x.occurred_at AT TIME ZONE 'UTC')::date, x.channel, x.name
  ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (subscription_id, attribution, day, channel, name) DO UPDATE
  SET conversions = c.conversions + excluded.conversions, value = c.value + excluded.value;
$$;
