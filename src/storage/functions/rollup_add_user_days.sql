-- Records which UTC days each user had an allowed turn: ORs the day bits into channel_user_days, in key
-- order. Only a user's first turn of a day changes the row; later ones find their bit set and write nothing.
CREATE OR REPLACE FUNCTION omnimeter_rollup_add_user_days(p_days omnimeter_rollup_user_day[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO channel_user_days AS u (subscription_id, year, channel, chatbot_id, user_identifier, days)
  SELECT d.subscription_id, d.year, d.channel, d.chatbot_id, d.user_identifier, bit_or(d.days)
  FROM unnest(p_days) d
  GROUP BY 1, 2, 3, 4, 5
  ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (subscription_id, year, channel, chatbot_id, user_identifier) DO UPDATE
    SET days = u.days | excluded.days
    WHERE (u.days | excluded.days) <> u.days;
END $$;
