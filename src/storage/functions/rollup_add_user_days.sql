-- Records which UTC days each user had an allowed turn: ORs the day bits into channel_user_days, in key
-- order. Only a user's first turn of a day changes the row; later ones find their bit set and write nothing.
-- Each element holds one day (omnimeter_day_bit), so its bit's position is both its first and its last day,
-- and the map's bounds (migration 0027) are their least and greatest.
CREATE OR REPLACE FUNCTION omnimeter_rollup_add_user_days(p_days omnimeter_rollup_user_day[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO channel_user_days AS u
    (subscription_id, year, channel, chatbot_id, user_identifier, days, first_day, last_day)
  SELECT d.subscription_id, d.year, d.channel, d.chatbot_id, d.user_identifier, bit_or(d.days),
    min(d.day), max(d.day)
  FROM (SELECT e.*, position(B'1' IN e.days) - 1 AS day FROM unnest(p_days) e) d
  GROUP BY 1, 2, 3, 4, 5
  ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (subscription_id, year, channel, chatbot_id, user_identifier) DO UPDATE
    SET days = u.days | excluded.days,
      first_day = least(u.first_day, excluded.first_day),
      last_day = greatest(u.last_day, excluded.last_day)
    WHERE (u.days | excluded.days) <> u.days;
END $$;
