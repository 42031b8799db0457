-- Ledger rows inserted other than by omnimeter_write_turns (which adds its rows to the rollups in its own
-- statement, and sets omnimeter.rollups_written around it, which this trigger's WHEN clause reads): add
-- each statement's rows to the rollups.
CREATE OR REPLACE FUNCTION omnimeter_rollup_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM omnimeter_rollup_turns(ARRAY(
    SELECT ROW(n.id, n.subscription_id, n.channel, n.chatbot_id, n.session_id, n.user_identifier,
      n.operation_type, n.status, n.denial_reason, n.estimated_tokens, n.raw_tokens, n.billed_tokens,
      n.token_multiplier, n.message_length, n.idempotency_key, n.period_start, n.created_at,
      n.settled_at)::omnimeter_ledger_row
    FROM inserted_rows n));
  RETURN NULL;
END $$;
