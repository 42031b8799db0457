-- New outcomes (migration 0021): each is credited, under every attribution model, to its own channel, or
-- else to the "not credited" row ('' channel) until its touches (omnimeter_outcome_credits_touches) move it.
CREATE OR REPLACE FUNCTION omnimeter_outcome_credits_outcomes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM omnimeter_outcome_credits_add(ARRAY(
    SELECT ROW(o.subscription_id, o.occurred_at, m.attribution, coalesce(o.channel, ''), o.name, 1::numeric,
      coalesce(o.value, 0) * 1::numeric)::omnimeter_credit_change
    FROM inserted_rows o CROSS JOIN (VALUES ('last_touch'), ('first_touch'), ('linear')) AS m (attribution)));
  RETURN NULL;
END $$;
