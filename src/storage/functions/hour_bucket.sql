-- The UTC hour bucket of an instant (date_trunc would depend on the session's TimeZone).
CREATE OR REPLACE FUNCTION omnimeter_hour_bucket(at timestamptz) RETURNS timestamptz
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT date_bin('1 hour', at, timestamptz '2000-01-01 00:00:00+00') $$;
