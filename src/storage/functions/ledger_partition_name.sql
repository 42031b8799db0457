-- The partition of the UTC month starting at p_month (a timestamp at UTC), e.g. token_usage_logs_p202611.
CREATE OR REPLACE FUNCTION omnimeter_ledger_partition_name(p_month timestamp) RETURNS text
  LANGUAGE sql IMMUTABLE
  AS $$ SELECT 'token_usage_logs_p' || to_char(p_month, 'YYYYMM') $$;
