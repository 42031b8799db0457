-- Users whose (subscription, UTC day, channel, chatbot) lost a row: clear the day's bit unless another allowed row of
-- theirs remains on that day. Runs only when rows are deleted or change who, where or when.
CREATE OR REPLACE FUNCTION omnimeter_rollup_forget_users(keys jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE channel_user_days u
  SET days = set_bit(u.days, extract(doy FROM k.day)::int - 1, 0)
  FROM jsonb_to_recordset(keys) AS k(subscription_id uuid, day date, channel text, chatbot_id text, user_identifier text)
  WHERE u.subscription_id = k.subscription_id AND u.year = extract(year FROM k.day)
    AND u.channel = k.channel AND u.chatbot_id = k.chatbot_id AND u.user_identifier = k.user_identifier
    AND NOT EXISTS (
      SELECT 1 FROM token_usage_logs t
      WHERE t.subscription_id = k.subscription_id
        AND t.created_at >= k.day::timestamp AT TIME ZONE 'UTC'
        AND t.created_at < (k.day + 1)::timestamp AT TIME ZONE 'UTC'
        AND t.channel = k.channel AND coalesce(t.chatbot_id, '') = k.chatbot_id
        AND t.user_identifier = k.user_identifier AND t.status <> 'denied');
  DELETE FROM channel_user_days u
  USING jsonb_to_recordset(keys) AS k(subscription_id uuid, day date, channel text, chatbot_id text, user_identifier text)
  WHERE u.subscription_id = k.subscription_id AND u.year = extract(year FROM k.day)
    AND u.channel = k.channel AND u.chatbot_id = k.chatbot_id AND u.user_identifier = k.user_identifier
    AND u.days = B'0'::bit(366);
END $$;
