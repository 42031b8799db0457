-- A link added, changed or removed (person_identifiers, migration 0022): the subscription's stored
-- journeys answers no longer hold, since links apply to past turns; they are marked stale (computed at
-- -infinity) and answered afresh or re-derived.
CREATE OR REPLACE FUNCTION omnimeter_journey_answers_stale() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE journey_answers SET computed_at = '-infinity'
  WHERE subscription_id = CASE WHEN TG_OP = 'DELETE' THEN OLD.subscription_id ELSE NEW.subscription_id END
    AND computed_at > '-infinity';
  IF TG_OP = 'UPDATE' AND OLD.subscription_id <> NEW.subscription_id THEN
    UPDATE journey_answers SET computed_at = '-infinity'
    WHERE subscription_id = OLD.subscription_id AND computed_at > '-infinity';
  END IF;
  RETURN NULL;
END $$;
