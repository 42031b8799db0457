-- The latency histogram bucket of a settle's latency_ms (migration 0019). Bucket 0 holds 0 ms; bucket
-- i >= 1 holds the whole milliseconds in (g^(i-2), g^(i-1)] with g = 1.01 / 0.99, so that the value
-- 2 g^(i-1) / (g + 1) is within 1% of every latency in it (the log-spaced buckets of DDSketch, relative
-- accuracy 0.01). core/latency-histogram.ts turns a bucket back into milliseconds; ~1,075 buckets cover
-- 1 ms to 2^31 ms, and each whole millisecond below 50 has a bucket of its own (exact there).
CREATE OR REPLACE FUNCTION omnimeter_latency_bucket(p_latency_ms integer) RETURNS smallint
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT CASE WHEN p_latency_ms <= 0 THEN 0
    ELSE 1 + ceil(ln(p_latency_ms::float8) / ln(1.01::float8 / 0.99::float8))::int END::smallint $$;
