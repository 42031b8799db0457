-- Inserted ledger rows: add each batch's sums to its buckets and record its users.
CREATE OR REPLACE FUNCTION omnimeter_rollup_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM omnimeter_rollup_add(ARRAY(
    SELECT ROW(subscription_id, omnimeter_bucket(created_at), channel, coalesce(chatbot_id, ''),
      coalesce(denial_reason, ''), count(*), sum(billed_tokens), sum(raw_tokens))::omnimeter_rollup_change
    FROM inserted_rows
    GROUP BY subscription_id, omnimeter_bucket(created_at), channel, coalesce(chatbot_id, ''),
      coalesce(denial_reason, '')));
  PERFORM omnimeter_rollup_add_user_days(ARRAY(
    SELECT ROW(subscription_id, extract(year FROM created_at AT TIME ZONE 'UTC'), channel,
      coalesce(chatbot_id, ''), user_identifier, omnimeter_day_bit(created_at))::omnimeter_rollup_user_day
    FROM inserted_rows
    WHERE status <> 'denied' AND user_identifier <> ''));
  RETURN NULL;
END $$;
