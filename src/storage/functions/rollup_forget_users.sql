-- Users whose (subscription, UTC day, channel, chatbot) lost a row: clear the day's bit unless another allowed row of
-- theirs remains on that day. Runs only when rows are deleted or change who, where or when. A map's days are
-- cleared together (one statement that erases a user's turns of several days updates the map once; before
-- migration 0027, UPDATE ... FROM applied one of its days only), and its bounds (first_day, last_day) are
-- recomputed from the bits left: -1 when none is, and then the row is deleted.
CREATE OR REPLACE FUNCTION omnimeter_rollup_forget_users(keys jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  WITH forgotten AS (
    SELECT k.subscription_id, extract(year FROM k.day) AS year, k.channel, k.chatbot_id, k.user_identifier,
      bit_or(omnimeter_day_bit(k.day::timestamp AT TIME ZONE 'UTC')) AS days
    FROM jsonb_to_recordset(keys) AS k(subscription_id uuid, day date, channel text, chatbot_id text, user_identifier text)
    WHERE NOT EXISTS (
      SELECT 1 FROM token_usage_logs t
      WHERE t.subscription_id = k.subscription_id
        AND t.created_at >= k.day::timestamp AT TIME ZONE 'UTC'
        AND t.created_at < (k.day + 1)::timestamp AT TIME ZONE 'UTC'
        AND t.channel = k.channel AND coalesce(t.chatbot_id, '') = k.chatbot_id
        AND t.user_identifier = k.user_identifier AND t.status <> 'denied')
    GROUP BY 1, 2, 3, 4, 5
  )
  UPDATE channel_user_days u
  SET days = u.days & ~f.days,
    first_day = omnimeter_first_day(u.days & ~f.days),
    last_day = omnimeter_last_day(u.days & ~f.days)
  FROM forgotten f
  WHERE u.subscription_id = f.subscription_id AND u.year = f.year
    AND u.channel = f.channel AND u.chatbot_id = f.chatbot_id AND u.user_identifier = f.user_identifier
    AND (u.days & f.days) <> B'0'::bit(366);
  DELETE FROM channel_user_days u
  USING jsonb_to_recordset(keys) AS k(subscription_id uuid, day date, channel text, chatbot_id text, user_identifier text)
  WHERE u.subscription_id = k.subscription_id AND u.year = extract(year FROM k.day)
    AND u.channel = k.channel AND u.chatbot_id = k.chatbot_id AND u.user_identifier = k.user_identifier
    AND u.days = B'0'::bit(366);
END $$;
