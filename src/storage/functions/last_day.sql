-- The last day set in a users' day map, 0-based like its bits; -1 when none is: see omnimeter_first_day.
-- A text cast of the bits (no bit-string function finds the last set bit), which is why the map's upsert
-- takes its days from the bits it adds instead.
CREATE OR REPLACE FUNCTION omnimeter_last_day(days bit) RETURNS smallint
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT (length(rtrim(days::text, '0')) - 1)::smallint $$;
