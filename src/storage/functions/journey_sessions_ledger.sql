-- The journey sessions' ledger trigger (migration 0022), statement-level, for INSERT, UPDATE and DELETE on
-- token_usage_logs. Inserted turns join their identifiers' sessions (omnimeter_journey_sessions_inserted);
-- the insert trigger is skipped for omnimeter_write_turns' statements, which queue that work instead
-- (omnimeter.sessions_queued, migration 0024). A correction or deletion that moves or removes a turn
-- recomputes its identifiers' rows from the ledger.
CREATE OR REPLACE FUNCTION omnimeter_journey_sessions_ledger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM omnimeter_journey_sessions_inserted(ARRAY(SELECT i::token_usage_logs FROM inserted_rows i));
  ELSIF TG_OP = 'UPDATE' THEN
    IF EXISTS (
      SELECT 1 FROM updated_rows n JOIN previous_rows o ON o.id = n.id
      WHERE (o.status = 'denied') <> (n.status = 'denied') OR o.subscription_id <> n.subscription_id
        OR o.session_id IS DISTINCT FROM n.session_id OR o.channel <> n.channel OR o.created_at <> n.created_at
        OR o.user_identifier IS DISTINCT FROM n.user_identifier
    ) THEN
      PERFORM omnimeter_journey_sessions_rebuild(ARRAY(
        SELECT ROW(subscription_id, channel, user_identifier)::omnimeter_identifier_key
        FROM updated_rows WHERE user_identifier IS NOT NULL
        UNION
        SELECT ROW(subscription_id, channel, user_identifier)::omnimeter_identifier_key
        FROM previous_rows WHERE user_identifier IS NOT NULL));
    END IF;
  ELSE
    PERFORM omnimeter_journey_sessions_rebuild(ARRAY(
      SELECT DISTINCT ROW(subscription_id, channel, user_identifier)::omnimeter_identifier_key
      FROM removed_rows WHERE user_identifier IS NOT NULL AND status <> 'denied'));
  END IF;
  RETURN NULL;
END $$;
