-- Updated ledger rows (settlement changes raw and billed tokens): subtract what the old versions added and
-- add the new versions, per bucket; buckets whose sums do not change are not touched.
CREATE OR REPLACE FUNCTION omnimeter_rollup_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_forget jsonb;
BEGIN
  PERFORM omnimeter_rollup_add(ARRAY(
    SELECT ROW(subscription_id, bucket_start, channel, chatbot_id, denial_reason, sum(turns), sum(billed),
      sum(raw))::omnimeter_rollup_change
    FROM (
      SELECT subscription_id, omnimeter_bucket(created_at) AS bucket_start, channel,
        coalesce(chatbot_id, '') AS chatbot_id, coalesce(denial_reason, '') AS denial_reason, 1 AS turns,
        billed_tokens AS billed, raw_tokens AS raw
      FROM updated_rows
      UNION ALL
      SELECT subscription_id, omnimeter_bucket(created_at), channel, coalesce(chatbot_id, ''),
        coalesce(denial_reason, ''), -1, -billed_tokens, -raw_tokens
      FROM previous_rows
    ) AS versions
    GROUP BY subscription_id, bucket_start, channel, chatbot_id, denial_reason
    HAVING sum(turns) <> 0 OR sum(billed) <> 0 OR sum(raw) <> 0));

  -- Who, where or when changed (settlement never does this; a correction might).
  IF EXISTS (
    SELECT 1 FROM updated_rows n JOIN previous_rows o ON o.id = n.id
    WHERE (o.status = 'denied') <> (n.status = 'denied')
      OR o.subscription_id <> n.subscription_id OR o.channel <> n.channel
      OR o.user_identifier IS DISTINCT FROM n.user_identifier
      OR o.chatbot_id IS DISTINCT FROM n.chatbot_id
      OR (o.created_at AT TIME ZONE 'UTC')::date <> (n.created_at AT TIME ZONE 'UTC')::date
  ) THEN
    PERFORM omnimeter_rollup_add_user_days(ARRAY(
      SELECT ROW(subscription_id, extract(year FROM created_at AT TIME ZONE 'UTC'), channel,
        coalesce(chatbot_id, ''), user_identifier, omnimeter_day_bit(created_at))::omnimeter_rollup_user_day
      FROM updated_rows
      WHERE status <> 'denied' AND user_identifier <> ''));
    SELECT jsonb_agg(DISTINCT jsonb_build_object('subscription_id', subscription_id,
        'day', (created_at AT TIME ZONE 'UTC')::date, 'channel', channel, 'chatbot_id', coalesce(chatbot_id, ''),
      'user_identifier', user_identifier))
      INTO v_forget
    FROM previous_rows WHERE status <> 'denied' AND user_identifier <> '';
    IF v_forget IS NOT NULL THEN
      PERFORM omnimeter_rollup_forget_users(v_forget);
    END IF;
  END IF;
  RETURN NULL;
END $$;
