-- Retention: drops every monthly partition that ended before the start of the UTC month p_keep_months
-- months before p_now's (p_keep_months = 1 on 2026-11-25 keeps October and November, drops September and
-- older), deletes default-partition rows older than that, and the idempotency keys of those rows. A
-- billing period starts at most one month before now, so with p_keep_months >= 1 no current period's rows
-- are ever dropped. Rollups and quota counters are kept. Returns how many partitions it dropped.
CREATE OR REPLACE FUNCTION omnimeter_drop_ledger_partitions(p_keep_months integer, p_now timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_cutoff timestamptz;
  v_name text;
  v_dropped integer := 0;
  v_removed integer;
BEGIN
  IF p_keep_months IS NULL OR p_keep_months < 1 THEN
    RAISE EXCEPTION 'p_keep_months must be at least 1, got %', p_keep_months;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('omnimeter_ledger_partitions'));
  v_cutoff := (date_trunc('month', p_now AT TIME ZONE 'UTC') - make_interval(months => p_keep_months))
    AT TIME ZONE 'UTC';
  FOR v_name IN
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'token_usage_logs'::regclass AND c.relname ~ '^token_usage_logs_p[0-9]{6}$'
      AND (to_date(substr(c.relname, 19), 'YYYYMM') + interval '1 month') AT TIME ZONE 'UTC' <= v_cutoff
    ORDER BY c.relname
  LOOP
    EXECUTE format('DROP TABLE %I', v_name);
    v_dropped := v_dropped + 1;
  END LOOP;
  DELETE FROM token_usage_logs_default d WHERE d.created_at < v_cutoff;
  GET DIAGNOSTICS v_removed = ROW_COUNT;
  IF v_dropped > 0 OR v_removed > 0 THEN
    DELETE FROM usage_idempotency_keys k WHERE k.created_at < v_cutoff;
  END IF;
  RETURN v_dropped;
END $$;
