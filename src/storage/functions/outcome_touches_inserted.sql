-- New outcomes (migration 0019): their attribution facts, in the statement that records them.
CREATE OR REPLACE FUNCTION omnimeter_outcome_touches_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM omnimeter_outcome_touches_refresh(ARRAY(
    SELECT id FROM inserted_rows WHERE channel IS NULL));
  RETURN NULL;
END $$;
