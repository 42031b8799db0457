-- The partitioned ledger and its retention (issue 6). Design note: ARCHITECTURE.md "Partitioned ledger and
-- retention" and docs/scaling.md.
--
-- token_usage_logs becomes PARTITION BY RANGE (created_at): one partition per UTC calendar month, named
-- token_usage_logs_pYYYYMM, plus token_usage_logs_default, so that no insert ever fails for want of a
-- partition (a far-past import, a skewed clock). omnimeter_ensure_ledger_partitions creates the coming
-- months ahead of time and moves any rows that landed in the default partition into a partition of their
-- own month; omnimeter_drop_ledger_partitions drops whole months past the retention. The service runs both
-- at start and hourly (src/storage/partitions.ts).
--
-- What changes with it:
-- * The primary key is (id, created_at): a unique index on a partitioned table must contain the partition
--   key. It is one partitioned index, so every partition has an index led by id and settlement by id stays
--   an index probe per partition (a handful: one per month kept).
-- * Idempotency moves to usage_idempotency_keys, an unpartitioned table whose primary key
--   (subscription_id, idempotency_key) is the per-subscription uniqueness the ledger's partial unique index
--   gave: a unique index on the ledger would have to include created_at, and then a retry a second later
--   could charge again. A charged keyed turn claims its key there in the same statement (consume batch,
--   import) that writes its ledger row; denials hold no key, as before.
-- * Analytics rollups, quota counters and alerts are untouched by dropping a partition: DROP fires no
--   DELETE trigger, so the rollups of old months stay (analytics of old periods keeps working after the
--   raw rows are gone) and the counters stay exact for their periods.

CREATE TABLE usage_idempotency_keys (
  subscription_id uuid NOT NULL,
  idempotency_key text NOT NULL,
  usage_id        uuid NOT NULL,
  -- The ledger row's created_at: finds its partition, and goes with it when retention drops the month.
  created_at      timestamptz NOT NULL,
  PRIMARY KEY (subscription_id, idempotency_key)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON usage_idempotency_keys TO omnimeter_app;
ALTER TABLE usage_idempotency_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_idempotency_keys
  USING (omnimeter_tenant_allows(subscription_id)) WITH CHECK (omnimeter_tenant_allows(subscription_id));

-- The old, unpartitioned ledger steps aside (its triggers, policy and indexes go with it when dropped).
ALTER TABLE token_usage_logs RENAME TO token_usage_logs_unpartitioned;
ALTER INDEX token_usage_logs_pkey RENAME TO token_usage_logs_unpartitioned_pkey;
ALTER INDEX token_usage_logs_idempotency RENAME TO token_usage_logs_unpartitioned_idempotency;
ALTER INDEX token_usage_logs_subscription_time RENAME TO token_usage_logs_unpartitioned_subscription_time;

CREATE TABLE token_usage_logs (
  id               uuid NOT NULL DEFAULT gen_random_uuid(),
  subscription_id  uuid NOT NULL,
  channel          text NOT NULL,
  chatbot_id       text,
  session_id       text,
  user_identifier  text,
  operation_type   text NOT NULL,
  status           text NOT NULL CHECK (status IN ('estimated', 'settled', 'denied')),
  denial_reason    text CHECK ((status = 'denied') = (denial_reason IS NOT NULL)),
  estimated_tokens bigint NOT NULL CHECK (estimated_tokens >= 0),
  raw_tokens       bigint NOT NULL CHECK (raw_tokens >= 0),
  billed_tokens    bigint NOT NULL CHECK (billed_tokens >= 0),
  token_multiplier numeric(6, 2) NOT NULL,
  message_length   integer,
  -- Kept as a fact of the turn; uniqueness lives in usage_idempotency_keys.
  idempotency_key  text,
  period_start     timestamptz,
  created_at       timestamptz NOT NULL,
  settled_at       timestamptz,
  outcome          text CHECK (outcome IN ('ok', 'error')),
  latency_ms       integer CHECK (latency_ms >= 0),
  CONSTRAINT token_usage_logs_pkey PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

CREATE TABLE token_usage_logs_default PARTITION OF token_usage_logs DEFAULT;

CREATE INDEX token_usage_logs_subscription_time ON token_usage_logs (subscription_id, created_at);

-- Move the rows (no trigger on the new table yet, so the rollups, which already count them, stay as they
-- are) and their keys. They land in the default partition; the ensure call below gives each month its own.
INSERT INTO token_usage_logs SELECT * FROM token_usage_logs_unpartitioned;
INSERT INTO usage_idempotency_keys (subscription_id, idempotency_key, usage_id, created_at)
SELECT subscription_id, idempotency_key, id, created_at FROM token_usage_logs_unpartitioned
WHERE idempotency_key IS NOT NULL AND status <> 'denied';
-- DROP fires no DELETE trigger: the rollups keep the rows' sums.
DROP TABLE token_usage_logs_unpartitioned;

GRANT SELECT, INSERT, UPDATE, DELETE ON token_usage_logs TO omnimeter_app;
ALTER TABLE token_usage_logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON token_usage_logs
  USING (omnimeter_tenant_allows(subscription_id)) WITH CHECK (omnimeter_tenant_allows(subscription_id));

-- The analytics rollup triggers of 0005, on the partitioned parent. Statement-level triggers with
-- transition tables are allowed there (not on the partitions); every statement the service runs names the
-- parent. The maintenance functions below write to partitions directly precisely so that moving rows
-- between partitions, or dropping old ones, does not touch the rollups.
CREATE TRIGGER token_usage_logs_rollup_insert
  AFTER INSERT ON token_usage_logs REFERENCING NEW TABLE AS inserted_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_rollup_inserted();
CREATE TRIGGER token_usage_logs_rollup_update
  AFTER UPDATE ON token_usage_logs REFERENCING OLD TABLE AS previous_rows NEW TABLE AS updated_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_rollup_updated();
CREATE TRIGGER token_usage_logs_rollup_delete
  AFTER DELETE ON token_usage_logs REFERENCING OLD TABLE AS removed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_rollup_deleted();

-- The partition of the UTC month starting at p_month (a timestamp at UTC), e.g. token_usage_logs_p202611.
CREATE FUNCTION omnimeter_ledger_partition_name(p_month timestamp) RETURNS text
  LANGUAGE sql IMMUTABLE
  AS $$ SELECT 'token_usage_logs_p' || to_char(p_month, 'YYYYMM') $$;

-- Makes sure the month of p_now and the p_months_ahead months after it have partitions, and gives every
-- month that has rows in the default partition a partition of its own, moving those rows there. Returns
-- how many partitions it created. Runs as the schema owner (the service's role may not create tables);
-- the advisory lock keeps two instances' maintenance passes apart. When every partition exists it only
-- reads the catalog and the (normally empty) default partition.
CREATE FUNCTION omnimeter_ensure_ledger_partitions(p_now timestamptz DEFAULT now(), p_months_ahead integer DEFAULT 2)
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

-- Retention: drops every monthly partition that ended before the start of the UTC month p_keep_months
-- months before p_now's (p_keep_months = 1 on 2026-11-25 keeps October and November, drops September and
-- older), deletes default-partition rows older than that, and the idempotency keys of those rows. A
-- billing period starts at most one month before now, so with p_keep_months >= 1 no current period's rows
-- are ever dropped. Rollups and quota counters are kept. Returns how many partitions it dropped.
CREATE FUNCTION omnimeter_drop_ledger_partitions(p_keep_months integer, p_now timestamptz DEFAULT now())
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

REVOKE EXECUTE ON FUNCTION omnimeter_ensure_ledger_partitions(timestamptz, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION omnimeter_drop_ledger_partitions(integer, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION omnimeter_ensure_ledger_partitions(timestamptz, integer) TO omnimeter_app;
GRANT EXECUTE ON FUNCTION omnimeter_drop_ledger_partitions(integer, timestamptz) TO omnimeter_app;

-- The existing rows' months, and the months ahead.
SELECT omnimeter_ensure_ledger_partitions(now(), 2);

-- The single-turn consume of 0002 (the service no longer calls it): a keyed charge claims its key first,
-- so a second charged turn with the key still raises unique_violation and rolls the whole call back.
CREATE OR REPLACE FUNCTION omnimeter_consume(
  p_subscription uuid, p_channel text, p_chatbot text, p_session text, p_user text, p_operation text,
  p_estimated bigint, p_billed bigint, p_multiplier numeric, p_message_length integer, p_key text,
  p_period_start timestamptz, p_created_at timestamptz)
RETURNS TABLE (usage_id uuid, used_tokens bigint, token_limit bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_limit bigint;
  v_used bigint;
  v_id uuid;
BEGIN
  SELECT s.token_limit INTO v_limit FROM subscriptions s WHERE s.id = p_subscription;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  IF p_billed <= v_limit THEN
    INSERT INTO quota_counters AS q (subscription_id, period_start, used_tokens)
    VALUES (p_subscription, p_period_start, p_billed)
    ON CONFLICT (subscription_id, period_start) DO UPDATE
      SET used_tokens = q.used_tokens + excluded.used_tokens
      WHERE q.used_tokens + excluded.used_tokens <= v_limit
    RETURNING q.used_tokens INTO v_used;
  END IF;
  IF v_used IS NOT NULL THEN
    v_id := gen_random_uuid();
    IF p_key IS NOT NULL THEN
      INSERT INTO usage_idempotency_keys (subscription_id, idempotency_key, usage_id, created_at)
      VALUES (p_subscription, p_key, v_id, p_created_at);
    END IF;
    INSERT INTO token_usage_logs (id, subscription_id, channel, chatbot_id, session_id, user_identifier,
      operation_type, status, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, message_length,
      idempotency_key, period_start, created_at)
    VALUES (v_id, p_subscription, p_channel, p_chatbot, p_session, p_user, p_operation, 'estimated', p_estimated,
      p_estimated, p_billed, p_multiplier, p_message_length, p_key, p_period_start, p_created_at);
  ELSE
    SELECT q.used_tokens INTO v_used FROM quota_counters q
    WHERE q.subscription_id = p_subscription AND q.period_start = p_period_start;
    INSERT INTO token_usage_logs (subscription_id, channel, chatbot_id, session_id, user_identifier, operation_type,
      status, denial_reason, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, message_length,
      idempotency_key, created_at)
    VALUES (p_subscription, p_channel, p_chatbot, p_session, p_user, p_operation, 'denied', 'quota_exceeded',
      p_estimated, p_estimated, 0, p_multiplier, p_message_length, p_key, p_created_at);
  END IF;
  RETURN QUERY SELECT v_id, coalesce(v_used, 0::bigint), v_limit;
END $$;

-- The group commit of 0004 with idempotency through usage_idempotency_keys: the same rule and the same
-- wait-and-give-back logic, with the key table's primary key in place of the ledger's partial unique index.
CREATE OR REPLACE FUNCTION omnimeter_consume_batch(p_turns jsonb)
RETURNS TABLE (i integer, outcome text, usage_id uuid, used_tokens bigint, token_limit bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_turns omnimeter_batch_turn[];
  v_fast_subs uuid[];
  v_fast_periods timestamptz[];
  v_fast_used bigint[];
  v_fast_limits bigint[];
  v_fi integer[];
  v_fid uuid[];
  v_fused bigint[];
  v_flim bigint[];
  v_fbilled bigint[];
  v_fsub uuid[];
  v_fperiod timestamptz[];
  v_written uuid[];
  t record;
  v_limit bigint;
  v_used bigint;
  v_id uuid;
BEGIN
  v_turns := ARRAY(
    SELECT ROW(x.*)::omnimeter_batch_turn FROM jsonb_to_recordset(p_turns) AS x(
      i integer, subscription_id uuid, scope uuid, channel text, chatbot_id text, session_id text,
      user_identifier text, operation_type text, estimated bigint, billed bigint, multiplier numeric,
      message_length integer, idempotency_key text, period_start timestamptz, created_at timestamptz,
      denial_reason text));

  -- Fast path, step 1: charge whole groups the quota covers, locking counters in subscription order.
  WITH input AS (
    SELECT * FROM unnest(v_turns)
  ), groups AS (
    SELECT g.subscription_id, g.period_start, sum(g.billed)::bigint AS total
    FROM input g
    GROUP BY g.subscription_id, g.period_start
    HAVING bool_and(g.denial_reason IS NULL AND (g.scope IS NULL OR g.scope = g.subscription_id))
      AND count(g.idempotency_key) = count(DISTINCT g.idempotency_key)
      AND NOT bool_or(g.idempotency_key IS NOT NULL AND EXISTS (
        SELECT 1 FROM usage_idempotency_keys k
        WHERE k.subscription_id = g.subscription_id AND k.idempotency_key = g.idempotency_key))
  ), charged AS (
    INSERT INTO quota_counters AS q (subscription_id, period_start, used_tokens)
    SELECT g.subscription_id, g.period_start, g.total
    FROM groups g JOIN subscriptions s ON s.id = g.subscription_id
    WHERE g.total <= s.token_limit
    ORDER BY g.subscription_id, g.period_start
    ON CONFLICT (subscription_id, period_start) DO UPDATE
      SET used_tokens = q.used_tokens + excluded.used_tokens
      WHERE q.used_tokens + excluded.used_tokens
        <= (SELECT s2.token_limit FROM subscriptions s2 WHERE s2.id = q.subscription_id)
    RETURNING q.subscription_id, q.period_start, q.used_tokens
  )
  -- (No join of one CTE with another here or below: the planner cannot estimate CTE sizes and picks
  -- nested loops, which made a batch of 256 quadratic; group totals are recomputed by window instead.)
  SELECT coalesce(array_agg(c.subscription_id), '{}'), coalesce(array_agg(c.period_start), '{}'),
    coalesce(array_agg(c.used_tokens), '{}'), coalesce(array_agg(s.token_limit), '{}')
  INTO v_fast_subs, v_fast_periods, v_fast_used, v_fast_limits
  FROM charged c
  JOIN subscriptions s ON s.id = c.subscription_id;

  -- Fast path, step 2: the charged groups' ledger rows, one INSERT. A keyed row first claims its key in
  -- usage_idempotency_keys; a key whose twin another transaction committed meanwhile is not claimed
  -- (ON CONFLICT DO NOTHING waits for that twin), and its ledger row is not written.
  IF cardinality(v_fast_subs) > 0 THEN
    WITH fast AS (
      SELECT * FROM unnest(v_fast_subs, v_fast_periods, v_fast_used, v_fast_limits)
        AS f(subscription_id, period_start, used_after, token_limit)
    ), fresh AS MATERIALIZED (
      SELECT gen_random_uuid() AS id, u.*, f.token_limit AS lim,
        f.used_after
          - sum(u.billed) OVER (PARTITION BY u.subscription_id, u.period_start)
          + sum(u.billed) OVER (PARTITION BY u.subscription_id, u.period_start ORDER BY u.i) AS used_then
      FROM unnest(v_turns) u
      JOIN fast f ON f.subscription_id = u.subscription_id AND f.period_start = u.period_start
    ), plain AS (
      -- Rows without a key cannot conflict: a plain insert, without ON CONFLICT's speculative insertion.
      INSERT INTO token_usage_logs (id, subscription_id, channel, chatbot_id, session_id, user_identifier,
        operation_type, status, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, message_length,
        period_start, created_at)
      SELECT r.id, r.subscription_id, r.channel, r.chatbot_id, r.session_id, r.user_identifier,
        r.operation_type, 'estimated', r.estimated, r.estimated, r.billed, r.multiplier, r.message_length,
        r.period_start, r.created_at
      FROM fresh r
      WHERE r.idempotency_key IS NULL
      ORDER BY r.subscription_id, r.i
      RETURNING token_usage_logs.id
    ), claimed AS (
      INSERT INTO usage_idempotency_keys (subscription_id, idempotency_key, usage_id, created_at)
      SELECT r.subscription_id, r.idempotency_key, r.id, r.created_at
      FROM fresh r
      WHERE r.idempotency_key IS NOT NULL
      ORDER BY r.subscription_id, r.i
      ON CONFLICT (subscription_id, idempotency_key) DO NOTHING
      RETURNING usage_idempotency_keys.usage_id
    ), keyed AS (
      INSERT INTO token_usage_logs (id, subscription_id, channel, chatbot_id, session_id, user_identifier,
        operation_type, status, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, message_length,
        idempotency_key, period_start, created_at)
      SELECT r.id, r.subscription_id, r.channel, r.chatbot_id, r.session_id, r.user_identifier,
        r.operation_type, 'estimated', r.estimated, r.estimated, r.billed, r.multiplier, r.message_length,
        r.idempotency_key, r.period_start, r.created_at
      FROM fresh r
      WHERE r.id IN (SELECT c.usage_id FROM claimed c)
      ORDER BY r.subscription_id, r.i
      RETURNING token_usage_logs.id
    ), written AS (
      SELECT id FROM plain UNION ALL SELECT id FROM keyed
    )
    SELECT array_agg(r.i), array_agg(r.id), array_agg(r.used_then), array_agg(r.lim), array_agg(r.billed),
      array_agg(r.subscription_id), array_agg(r.period_start), (SELECT array_agg(w.id) FROM written w)
    INTO v_fi, v_fid, v_fused, v_flim, v_fbilled, v_fsub, v_fperiod, v_written
    FROM fresh r;

    IF coalesce(cardinality(v_written), 0) < cardinality(v_fid) THEN
      -- Rare: some keyed rows were not written. Mark them (quadratic, but only on this path).
      v_fid := ARRAY(
        SELECT CASE WHEN x.id = ANY (v_written) THEN x.id END
        FROM unnest(v_fid) WITH ORDINALITY AS x(id, n) ORDER BY x.n);

      -- A twin committed elsewhere meanwhile: give its charge back (this transaction holds the counter
      -- row's lock since step 1, so nobody saw the extra tokens).
      UPDATE quota_counters q SET used_tokens = q.used_tokens - d.billed
      FROM (
        SELECT x.sub, x.period, sum(x.billed)::bigint AS billed
        FROM unnest(v_fid, v_fbilled, v_fsub, v_fperiod) AS x(id, billed, sub, period)
        WHERE x.id IS NULL
        GROUP BY x.sub, x.period
      ) d
      WHERE q.subscription_id = d.sub AND q.period_start = d.period;
    END IF;

    RETURN QUERY
    SELECT x.i, CASE WHEN x.id IS NULL THEN 'duplicate' ELSE 'allowed' END, x.id,
      CASE WHEN x.id IS NULL THEN 0::bigint ELSE x.used END, x.lim
    FROM unnest(v_fi, v_fid, v_fused, v_flim) AS x(i, id, used, lim);
  END IF;

  IF coalesce(cardinality(v_fi), 0) = cardinality(v_turns) THEN
    RETURN;
  END IF;

  -- Everything else, one turn at a time, exactly.
  FOR t IN
    SELECT u.* FROM unnest(v_turns) u
    WHERE NOT EXISTS (
      SELECT 1 FROM unnest(v_fast_subs, v_fast_periods) AS f(subscription_id, period_start)
      WHERE f.subscription_id = u.subscription_id AND f.period_start = u.period_start)
    ORDER BY u.subscription_id, u.i
  LOOP
    i := t.i;
    usage_id := NULL;
    used_tokens := 0;
    token_limit := 0;
    v_id := NULL;
    v_used := NULL;

    IF t.scope IS NOT NULL AND t.scope <> t.subscription_id THEN
      outcome := 'not_found';
      RETURN NEXT;
      CONTINUE;
    END IF;

    IF t.denial_reason IS NOT NULL THEN
      INSERT INTO token_usage_logs (subscription_id, channel, chatbot_id, session_id, user_identifier,
        operation_type, status, denial_reason, estimated_tokens, raw_tokens, billed_tokens, token_multiplier,
        message_length, idempotency_key, created_at)
      VALUES (t.subscription_id, t.channel, t.chatbot_id, t.session_id, t.user_identifier, t.operation_type,
        'denied', t.denial_reason, t.estimated, t.estimated, 0, t.multiplier, t.message_length,
        t.idempotency_key, t.created_at);
      outcome := 'denied';
      RETURN NEXT;
      CONTINUE;
    END IF;

    SELECT s.token_limit INTO v_limit FROM subscriptions s WHERE s.id = t.subscription_id;
    IF NOT FOUND THEN
      outcome := 'not_found';
      RETURN NEXT;
      CONTINUE;
    END IF;
    token_limit := v_limit;

    IF t.idempotency_key IS NOT NULL AND EXISTS (
      SELECT 1 FROM usage_idempotency_keys k
      WHERE k.subscription_id = t.subscription_id AND k.idempotency_key = t.idempotency_key
    ) THEN
      outcome := 'duplicate';
      RETURN NEXT;
      CONTINUE;
    END IF;

    IF t.billed <= v_limit THEN
      INSERT INTO quota_counters AS q (subscription_id, period_start, used_tokens)
      VALUES (t.subscription_id, t.period_start, t.billed)
      ON CONFLICT (subscription_id, period_start) DO UPDATE
        SET used_tokens = q.used_tokens + excluded.used_tokens
        WHERE q.used_tokens + excluded.used_tokens <= v_limit
      RETURNING q.used_tokens INTO v_used;
    END IF;

    IF v_used IS NULL THEN
      SELECT q.used_tokens INTO v_used FROM quota_counters q
      WHERE q.subscription_id = t.subscription_id AND q.period_start = t.period_start;
      INSERT INTO token_usage_logs (subscription_id, channel, chatbot_id, session_id, user_identifier,
        operation_type, status, denial_reason, estimated_tokens, raw_tokens, billed_tokens, token_multiplier,
        message_length, idempotency_key, created_at)
      VALUES (t.subscription_id, t.channel, t.chatbot_id, t.session_id, t.user_identifier, t.operation_type,
        'denied', 'quota_exceeded', t.estimated, t.estimated, 0, t.multiplier, t.message_length,
        t.idempotency_key, t.created_at);
      outcome := 'quota_exceeded';
      used_tokens := coalesce(v_used, 0);
      RETURN NEXT;
      CONTINUE;
    END IF;

    IF t.idempotency_key IS NULL THEN
      INSERT INTO token_usage_logs (subscription_id, channel, chatbot_id, session_id, user_identifier,
        operation_type, status, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, message_length,
        period_start, created_at)
      VALUES (t.subscription_id, t.channel, t.chatbot_id, t.session_id, t.user_identifier, t.operation_type,
        'estimated', t.estimated, t.estimated, t.billed, t.multiplier, t.message_length, t.period_start,
        t.created_at)
      RETURNING token_usage_logs.id INTO v_id;
    ELSE
      -- Claim the key first: ON CONFLICT DO NOTHING waits for a concurrent uncommitted twin.
      INSERT INTO usage_idempotency_keys AS k (subscription_id, idempotency_key, usage_id, created_at)
      VALUES (t.subscription_id, t.idempotency_key, gen_random_uuid(), t.created_at)
      ON CONFLICT (subscription_id, idempotency_key) DO NOTHING
      RETURNING k.usage_id INTO v_id;
      IF v_id IS NOT NULL THEN
        INSERT INTO token_usage_logs (id, subscription_id, channel, chatbot_id, session_id, user_identifier,
          operation_type, status, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, message_length,
          idempotency_key, period_start, created_at)
        VALUES (v_id, t.subscription_id, t.channel, t.chatbot_id, t.session_id, t.user_identifier,
          t.operation_type, 'estimated', t.estimated, t.estimated, t.billed, t.multiplier, t.message_length,
          t.idempotency_key, t.period_start, t.created_at);
      END IF;
    END IF;

    IF v_id IS NULL THEN
      -- A twin committed by another transaction while this one waited: take the charge back.
      UPDATE quota_counters q SET used_tokens = q.used_tokens - t.billed
      WHERE q.subscription_id = t.subscription_id AND q.period_start = t.period_start;
      outcome := 'duplicate';
      RETURN NEXT;
      CONTINUE;
    END IF;

    outcome := 'allowed';
    usage_id := v_id;
    used_tokens := v_used;
    RETURN NEXT;
  END LOOP;
END $$;


-- Settlement by id (src/storage/ledger.ts settleUsage) as a function: the ledger's id is no longer its
-- partition key, so the statement touches every partition's primary-key index, and planning it over every
-- partition on each call cost more than running it; PL/pgSQL keeps the plan per connection.
CREATE FUNCTION omnimeter_settle(p_id uuid, p_actual bigint, p_settled_at timestamptz, p_outcome text,
  p_latency_ms integer)
RETURNS TABLE (o_subscription_id uuid, o_channel text, o_previous_billed bigint, o_billed_tokens bigint,
  o_period_start timestamptz, o_used_tokens bigint, o_token_limit bigint)
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY
    WITH target AS (
      SELECT l.id, l.created_at, l.billed_tokens FROM token_usage_logs l
      WHERE l.id = p_id AND l.status = 'estimated'
      FOR UPDATE
    ), settled AS (
      UPDATE token_usage_logs t
      SET status = 'settled', raw_tokens = p_actual,
          billed_tokens = ceil(p_actual::numeric * t.token_multiplier)::bigint,
          settled_at = p_settled_at, outcome = p_outcome, latency_ms = p_latency_ms
      FROM target
      WHERE t.id = target.id AND t.created_at = target.created_at
      RETURNING t.subscription_id, t.channel, t.period_start, t.billed_tokens, target.billed_tokens AS previous_billed
    ), counter AS (
      UPDATE quota_counters q
      SET used_tokens = q.used_tokens + (settled.billed_tokens - settled.previous_billed)
      FROM settled
      WHERE q.subscription_id = settled.subscription_id AND q.period_start = settled.period_start
      RETURNING q.used_tokens
    )
    SELECT settled.subscription_id, settled.channel, settled.previous_billed, settled.billed_tokens,
      settled.period_start, counter.used_tokens,
      (SELECT s.token_limit FROM subscriptions s WHERE s.id = settled.subscription_id)
    FROM settled, counter;
END $$;
GRANT EXECUTE ON FUNCTION omnimeter_settle(uuid, bigint, timestamptz, text, integer) TO omnimeter_app;
