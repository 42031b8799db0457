-- The outcomes rollups' turn_details trigger (migration 0019), one statement-level function for INSERT,
-- UPDATE and DELETE (transition tables inserted_rows, previous_rows/updated_rows, removed_rows): new
-- versions add their cost and sentiment to outcome_buckets, old versions subtract theirs. A consume's
-- details row (model, sentiment) and the settle that prices it (an upsert) both pass here.
CREATE OR REPLACE FUNCTION omnimeter_outcome_rollup_details() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM omnimeter_outcome_details_add(ARRAY(
      SELECT ROW(subscription_id, created_at, channel, cost_micros, sentiment, 1)::omnimeter_detail_change
      FROM inserted_rows WHERE cost_micros IS NOT NULL OR sentiment IS NOT NULL));
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM omnimeter_outcome_details_add(ARRAY(
      SELECT ROW(subscription_id, created_at, channel, cost_micros, sentiment, 1)::omnimeter_detail_change
      FROM updated_rows WHERE cost_micros IS NOT NULL OR sentiment IS NOT NULL
      UNION ALL
      SELECT ROW(subscription_id, created_at, channel, cost_micros, sentiment, -1)::omnimeter_detail_change
      FROM previous_rows WHERE cost_micros IS NOT NULL OR sentiment IS NOT NULL));
  ELSE
    PERFORM omnimeter_outcome_details_add(ARRAY(
      SELECT ROW(subscription_id, created_at, channel, cost_micros, sentiment, -1)::omnimeter_detail_change
      FROM removed_rows WHERE cost_micros IS NOT NULL OR sentiment IS NOT NULL));
  END IF;
  RETURN NULL;
END $$;
