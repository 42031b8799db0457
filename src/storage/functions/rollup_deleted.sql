-- Deleted ledger rows (retention, corrections): subtract them.
CREATE OR REPLACE FUNCTION omnimeter_rollup_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_forget jsonb;
BEGIN
  PERFORM omnimeter_rollup_add(ARRAY(
    SELECT ROW(subscription_id, omnimeter_bucket(created_at), channel, coalesce(chatbot_id, ''),
      coalesce(denial_reason, ''), -count(*), -sum(billed_tokens), -sum(raw_tokens))::omnimeter_rollup_change
    FROM removed_rows
    GROUP BY subscription_id, omnimeter_bucket(created_at), channel, coalesce(chatbot_id, ''),
      coalesce(denial_reason, '')));
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
