-- Attribution facts written or removed (migration 0021): their outcomes' credits move between the
-- channels and the "not credited" row. Statement-level, on outcome_touches' inserts and deletes.
CREATE OR REPLACE FUNCTION omnimeter_outcome_credits_touches() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF EXISTS (SELECT 1 FROM inserted_rows) THEN
      PERFORM omnimeter_outcome_credits_add(omnimeter_outcome_touch_credits(
        ARRAY(SELECT r::outcome_touches FROM inserted_rows r), 1));
    END IF;
  ELSIF EXISTS (SELECT 1 FROM removed_rows) THEN
    PERFORM omnimeter_outcome_credits_add(omnimeter_outcome_touch_credits(
      ARRAY(SELECT r::outcome_touches FROM removed_rows r), -1));
  END IF;
  RETURN NULL;
END $$;
