-- The first day set in a users' day map (bit d is day of year d + 1, as omnimeter_day_bit sets it),
-- 0-based like the bits; -1 when none is. channel_user_days keeps it beside its map (migration 0027): from
-- this when a map's bits are cleared or backfilled, and from the one-day bits added when it grows
-- (omnimeter_rollup_add_user_days).
CREATE OR REPLACE FUNCTION omnimeter_first_day(days bit) RETURNS smallint
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT (position(B'1' IN days) - 1)::smallint $$;
