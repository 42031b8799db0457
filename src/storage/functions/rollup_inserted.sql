-- Inserted ledger rows: add each batch's sums to its buckets (one upsert per bucket, in key order so that
-- concurrent batches lock rows in the same order) and record its users.
CREATE OR REPLACE FUNCTION omnimeter_rollup_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  WITH changes AS (
    SELECT subscription_id, omnimeter_bucket(created_at) AS bucket_start, channel,
      coalesce(chatbot_id, '') AS chatbot_id, coalesce(denial_reason, '') AS denial_reason, count(*) AS turns,
      sum(billed_tokens) AS billed, sum(raw_tokens) AS raw
    FROM inserted_rows
    GROUP BY 1, 2, 3, 4, 5
  ), quarter_hours AS (
    INSERT INTO channel_usage_buckets AS b
      (subscription_id, bucket_start, channel, chatbot_id, denial_reason, turn_count, tokens_used, raw_tokens)
    SELECT * FROM changes
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (subscription_id, bucket_start, channel, chatbot_id, denial_reason) DO UPDATE
      SET turn_count = b.turn_count + excluded.turn_count,
          tokens_used = b.tokens_used + excluded.tokens_used,
          raw_tokens = b.raw_tokens + excluded.raw_tokens
  )
  INSERT INTO channel_usage_hourly AS h
    (subscription_id, bucket_start, channel, chatbot_id, denial_reason, turn_count, tokens_used, raw_tokens)
  SELECT subscription_id, omnimeter_hour_bucket(bucket_start), channel, chatbot_id, denial_reason, sum(turns),
    sum(billed), sum(raw)
  FROM changes
  GROUP BY 1, 2, 3, 4, 5
  ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (subscription_id, bucket_start, channel, chatbot_id, denial_reason) DO UPDATE
    SET turn_count = h.turn_count + excluded.turn_count,
        tokens_used = h.tokens_used + excluded.tokens_used,
        raw_tokens = h.raw_tokens + excluded.raw_tokens;
  -- Only a user's first turn of a day changes the row; later ones find their bit set and write nothing.
  INSERT INTO channel_user_days AS u (subscription_id, year, channel, chatbot_id, user_identifier, days)
  SELECT subscription_id, extract(year FROM created_at AT TIME ZONE 'UTC'), channel, coalesce(chatbot_id, ''),
    user_identifier,
    bit_or(omnimeter_day_bit(created_at))
  FROM inserted_rows
  WHERE status <> 'denied' AND user_identifier <> ''
  GROUP BY 1, 2, 3, 4, 5
  ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (subscription_id, year, channel, chatbot_id, user_identifier) DO UPDATE
    SET days = u.days | excluded.days
    WHERE (u.days | excluded.days) <> u.days;
  RETURN NULL;
END $$;
