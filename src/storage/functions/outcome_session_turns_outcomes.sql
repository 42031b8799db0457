-- New outcomes naming a session (migration 0025): their converted-session facts, from the session's turns.
CREATE OR REPLACE FUNCTION omnimeter_outcome_session_turns_outcomes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM omnimeter_outcome_session_turns_refresh(i.subscription_id, array_agg(DISTINCT i.session_id))
  FROM inserted_rows i
  WHERE i.session_id IS NOT NULL
  GROUP BY i.subscription_id
  ORDER BY i.subscription_id;
  RETURN NULL;
END $$;
