-- The 15-minute UTC bucket of an instant.
CREATE OR REPLACE FUNCTION omnimeter_bucket(at timestamptz) RETURNS timestamptz
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT date_bin('15 minutes', at, timestamptz '2000-01-01 00:00:00+00') $$;
