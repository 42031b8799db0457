-- The Unix-millisecond time a UUIDv7 carries, as a timestamptz; NULL for any other UUID version.
CREATE OR REPLACE FUNCTION omnimeter_uuid7_time(p_id uuid) RETURNS timestamptz
  LANGUAGE sql IMMUTABLE STRICT
  AS $$
    SELECT CASE WHEN substr(p_id::text, 15, 1) = '7' THEN
      timestamptz 'epoch'
        + ('x' || lpad(substr(replace(p_id::text, '-', ''), 1, 12), 16, '0'))::bit(64)::bigint
          * interval '1 millisecond'
    END
  $$;
