-- Signed turn_details versions (migration 0019) into outcome_buckets: priced turns and their exact cost,
-- and the sentiment count, sum and five buckets (the thresholds of the outcomes answer: < -0.6, < -0.2,
-- <= 0.2, <= 0.6, above). Versions whose sums cancel (a settle that changed neither) touch nothing. Rows are upserted in key order (concurrent statements lock them in the same order).
CREATE OR REPLACE FUNCTION omnimeter_outcome_details_add(p_changes omnimeter_detail_change[])
RETURNS void
LANGUAGE sql AS $$
  INSERT INTO outcome_buckets AS b (subscription_id, bucket_start, channel, priced, cost_micros,
    sentiment_count, sentiment_sum, very_negative, negative, neutral, positive, very_positive)
  SELECT subscription_id, bucket_start, channel, priced, cost_micros, sentiment_count, sentiment_sum,
    very_negative, negative, neutral, positive, very_positive
  FROM (
    SELECT c.subscription_id, omnimeter_bucket(c.created_at) AS bucket_start, c.channel,
      coalesce(sum(c.sign) FILTER (WHERE c.cost_micros IS NOT NULL), 0) AS priced,
      coalesce(sum(c.sign * c.cost_micros), 0) AS cost_micros,
      coalesce(sum(c.sign) FILTER (WHERE c.sentiment IS NOT NULL), 0) AS sentiment_count,
      coalesce(sum(c.sign * c.sentiment), 0) AS sentiment_sum,
      coalesce(sum(c.sign) FILTER (WHERE c.sentiment < -0.6), 0) AS very_negative,
      coalesce(sum(c.sign) FILTER (WHERE c.sentiment >= -0.6 AND c.sentiment < -0.2), 0) AS negative,
      coalesce(sum(c.sign) FILTER (WHERE c.sentiment >= -0.2 AND c.sentiment <= 0.2), 0) AS neutral,
      coalesce(sum(c.sign) FILTER (WHERE c.sentiment > 0.2 AND c.sentiment <= 0.6), 0) AS positive,
      coalesce(sum(c.sign) FILTER (WHERE c.sentiment > 0.6), 0) AS very_positive
    FROM unnest(p_changes) AS c
    GROUP BY c.subscription_id, omnimeter_bucket(c.created_at), c.channel
  ) AS sums
  WHERE priced <> 0 OR cost_micros <> 0 OR sentiment_count <> 0 OR sentiment_sum <> 0 OR very_negative <> 0
    OR negative <> 0 OR neutral <> 0 OR positive <> 0 OR very_positive <> 0
  ORDER BY 1, 2, 3
  ON CONFLICT (subscription_id, bucket_start, channel) DO UPDATE
  SET priced = b.priced + excluded.priced, cost_micros = b.cost_micros + excluded.cost_micros,
    sentiment_count = b.sentiment_count + excluded.sentiment_count,
    sentiment_sum = b.sentiment_sum + excluded.sentiment_sum,
    very_negative = b.very_negative + excluded.very_negative, negative = b.negative + excluded.negative,
    neutral = b.neutral + excluded.neutral, positive = b.positive + excluded.positive,
    very_positive = b.very_positive + excluded.very_positive;
$$;
