-- A user's allowed turns, as (subscription, UTC year, channel, user, day bits): the shape of
-- channel_user_days, for any set of ledger rows.
CREATE OR REPLACE FUNCTION omnimeter_day_bit(at timestamptz) RETURNS bit(366)
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT set_bit(B'0'::bit(366), extract(doy FROM at AT TIME ZONE 'UTC')::int - 1, 1) $$;
