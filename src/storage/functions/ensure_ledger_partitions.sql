-- Makes sure the month of p_now and the p_months_ahead months after it have partitions, and gives every
-- month that has rows in the default partition a partition of its own, moving those rows there. Returns
-- how many partitions it created. Runs as the schema owner (the service's role may not create tables);
-- the advisory lock keeps two instances' maintenance passes apart. When every partition exists it only
-- reads the catalog and the (normally empty) default partition.
CREATE OR REPLACE FUNCTION omnimeter_ensure_ledger_partitions(p_now timestamptz DEFAULT now(), p_months_ahead integer DEFAULT 2)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_month timestamp;
  v_name text;
  v_from timestamptz;
  v_to timestamptz;
  v_bounds text;
  v_created integer := 0;
BEGIN
  IF p_months_ahead IS NULL OR p_months_ahead < 0 OR p_months_ahead > 120 THEN
    RAISE EXCEPTION 'p_months_ahead must be between 0 and 120, got %', p_months_ahead;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('omnimeter_ledger_partitions'));
  FOR v_month IN
    SELECT date_trunc('month', p_now AT TIME ZONE 'UTC') + make_interval(months => g)
    FROM generate_series(0, p_months_ahead) AS g
    UNION
    SELECT DISTINCT date_trunc('month', d.created_at AT TIME ZONE 'UTC') FROM token_usage_logs_default d
    ORDER BY 1
  LOOP
    v_name := omnimeter_ledger_partition_name(v_month);
    CONTINUE WHEN to_regclass(v_name) IS NOT NULL;
    v_from := v_month AT TIME ZONE 'UTC';
    v_to := (v_month + interval '1 month') AT TIME ZONE 'UTC';
    v_bounds := format('FOR VALUES FROM (%L) TO (%L)', to_char(v_month, 'YYYY-MM-DD') || ' 00:00:00+00',
      to_char(v_month + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00');
    IF EXISTS (SELECT 1 FROM token_usage_logs_default d WHERE d.created_at >= v_from AND d.created_at < v_to) THEN
      -- A partition cannot be created over rows the default partition holds: build it beside, move the
      -- rows (directly between partitions, so the parent's rollup triggers do not fire), then attach.
      EXECUTE format('CREATE TABLE %I (LIKE token_usage_logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', v_name);
      EXECUTE format('INSERT INTO %I SELECT * FROM token_usage_logs_default WHERE created_at >= $1 AND created_at < $2',
        v_name) USING v_from, v_to;
      DELETE FROM token_usage_logs_default d WHERE d.created_at >= v_from AND d.created_at < v_to;
      EXECUTE format('ALTER TABLE token_usage_logs ATTACH PARTITION %I %s', v_name, v_bounds);
    ELSE
      EXECUTE format('CREATE TABLE %I PARTITION OF token_usage_logs %s', v_name, v_bounds);
    END IF;
    v_created := v_created + 1;
  END LOOP;
  RETURN v_created;
END $$;
