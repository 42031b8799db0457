-- Deleted ledger rows (retention, corrections): subtract them.
CREATE OR REPLACE FUNCTION omnimeter_rollup_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_forget jsonb;
BEGIN
  WITH changes AS (
    SELECT subscription_id, omnimeter_bucket(created_at) AS bucket_start, channel,
      coalesce(chatbot_id, '') AS chatbot_id, coalesce(denial_reason, '') AS denial_reason, -count(*) AS turns,
      -sum(billed_tokens) AS billed, -sum(raw_tokens) AS raw
    FROM removed_rows
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
  DELETE FROM channel_usage_buckets b
  USING (SELECT DISTINCT subscription_id, omnimeter_bucket(created_at) AS bucket_start FROM removed_rows) AS r
  WHERE b.subscription_id = r.subscription_id AND b.bucket_start = r.bucket_start AND b.turn_count = 0;
  DELETE FROM channel_usage_hourly h
  USING (
    SELECT DISTINCT subscription_id, omnimeter_hour_bucket(created_at) AS bucket_start FROM removed_rows
  ) AS r
  WHERE h.subscription_id = r.subscription_id AND h.bucket_start = r.bucket_start AND h.turn_count = 0;
  SELECT jsonb_agg(DISTINCT jsonb_build_object('subscription_id', subscription_id,
      'day', (created_at AT TIME ZONE 'UTC')::date, 'channel', channel, 'chatbot_id', coalesce(chatbot_id, ''),
      'user_identifier', user_identifier))
    INTO v_forget
  FROM removed_rows WHERE status <> 'denied' AND user_identifier <> '';
  IF v_forget IS NOT NULL THEN
    PERFORM omnimeter_rollup_forget_users(v_forget);
  END IF;
  RETURN NULL;
END $$;
