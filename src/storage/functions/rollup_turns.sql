-- What ledger rows add to the rollups: each (subscription, quarter-hour, channel, chatbot, reason)'s turns
-- and tokens (omnimeter_rollup_add), and the UTC days each user had an allowed turn
-- (omnimeter_rollup_add_user_days), in one statement. For inserted rows: omnimeter_write_turns calls it in
-- the statement that writes them, the ledger insert trigger (omnimeter_rollup_inserted) for rows inserted
-- any other way.
CREATE OR REPLACE FUNCTION omnimeter_rollup_turns(p_rows omnimeter_ledger_row[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM omnimeter_rollup_add(ARRAY(
      SELECT ROW(r.subscription_id, omnimeter_bucket(r.created_at), r.channel, coalesce(r.chatbot_id, ''),
        coalesce(r.denial_reason, ''), count(*), sum(r.billed_tokens), sum(r.raw_tokens))::omnimeter_rollup_change
      FROM unnest(p_rows) r
      GROUP BY r.subscription_id, omnimeter_bucket(r.created_at), r.channel, coalesce(r.chatbot_id, ''),
        coalesce(r.denial_reason, ''))),
    omnimeter_rollup_add_user_days(ARRAY(
      SELECT ROW(r.subscription_id, extract(year FROM r.created_at AT TIME ZONE 'UTC'), r.channel,
        coalesce(r.chatbot_id, ''), r.user_identifier, omnimeter_day_bit(r.created_at))::omnimeter_rollup_user_day
      FROM unnest(p_rows) r
      WHERE r.status <> 'denied' AND r.user_identifier <> ''));
END $$;
