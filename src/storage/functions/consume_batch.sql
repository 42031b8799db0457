-- The group commit: decides a batch of turns in one transaction. Each turn carries its id (a UUIDv7 the
-- service assigns before the first run, so a re-run after a lost reply collides instead of charging
-- twice). Groups of (subscription, period) that the quota covers are charged on a fast path; the rest one
-- turn at a time. A keyed turn claims its key in usage_idempotency_keys first; a twin committed meanwhile
-- gets its charge back and answers 'duplicate'. A keyed turn about to be denied asks
-- omnimeter_twin_charged first, so the twin is replayed instead of a denial written. A subscription's
-- quota reserve (issue 13) keeps the last quota_reserve_percent of the limit for turns of priority
-- quota_reserve_min_priority or more: a lower priority is charged only within limit - floor(limit * percent
-- / 100), decided on the exact path, and a turn only the reserve refuses is recorded as 'quota_reserved'.
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
  v_rows omnimeter_ledger_row[];
  t record;
  v_limit bigint;
  v_used bigint;
  v_id uuid;
  v_twin uuid;
  v_reserve_percent integer;
  v_reserve_min_priority integer;
  v_turn_limit bigint;
BEGIN
  v_turns := ARRAY(
    SELECT ROW(x.*)::omnimeter_batch_turn FROM jsonb_to_recordset(p_turns) AS x(
      i integer, subscription_id uuid, scope uuid, channel text, chatbot_id text, session_id text,
      user_identifier text, operation_type text, estimated bigint, billed bigint, multiplier numeric,
      message_length integer, idempotency_key text, period_start timestamptz, created_at timestamptz,
      denial_reason text, id uuid, priority integer));
  IF EXISTS (SELECT 1 FROM unnest(v_turns) u WHERE u.id IS NULL) THEN
    RAISE EXCEPTION 'omnimeter_consume_batch: every turn needs its id (the service assigns it)';
  END IF;

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
      -- Turns the quota reserve may refuse are decided one at a time (their limit is not the group's).
      AND NOT EXISTS (SELECT 1 FROM subscriptions r WHERE r.id = g.subscription_id
        AND r.quota_reserve_percent > 0 AND r.quota_reserve_min_priority > min(coalesce(g.priority, 10)))
  ), charged AS (
    SELECT c.* FROM omnimeter_charge_quota(
      ARRAY(SELECT g.subscription_id FROM groups g ORDER BY g.subscription_id, g.period_start),
      ARRAY(SELECT g.period_start FROM groups g ORDER BY g.subscription_id, g.period_start),
      ARRAY(SELECT g.total FROM groups g ORDER BY g.subscription_id, g.period_start),
      true) c
  )
  -- (No join of one CTE with another here or below: the planner cannot estimate CTE sizes and picks
  -- nested loops, which made a batch of 256 quadratic; group totals are recomputed by window instead.)
  SELECT coalesce(array_agg(c.subscription_id), '{}'), coalesce(array_agg(c.period_start), '{}'),
    coalesce(array_agg(c.used_tokens), '{}'), coalesce(array_agg(s.token_limit), '{}')
  INTO v_fast_subs, v_fast_periods, v_fast_used, v_fast_limits
  FROM charged c
  JOIN subscriptions s ON s.id = c.subscription_id;

  -- Fast path, step 2: the charged groups' ledger rows, written by omnimeter_write_turns (a keyed row
  -- whose twin another transaction committed meanwhile is not written).
  IF cardinality(v_fast_subs) > 0 THEN
    WITH fast AS (
      SELECT * FROM unnest(v_fast_subs, v_fast_periods, v_fast_used, v_fast_limits)
        AS f(subscription_id, period_start, used_after, token_limit)
    ), fresh AS MATERIALIZED (
      SELECT u.*, f.token_limit AS lim,
        f.used_after
          - sum(u.billed) OVER (PARTITION BY u.subscription_id, u.period_start)
          + sum(u.billed) OVER (PARTITION BY u.subscription_id, u.period_start ORDER BY u.i) AS used_then
      FROM unnest(v_turns) u
      JOIN fast f ON f.subscription_id = u.subscription_id AND f.period_start = u.period_start
    )
    SELECT array_agg(r.i), array_agg(r.id), array_agg(r.used_then), array_agg(r.lim), array_agg(r.billed),
      array_agg(r.subscription_id), array_agg(r.period_start),
      array_agg(ROW(r.id, r.subscription_id, r.channel, r.chatbot_id, r.session_id, r.user_identifier,
        r.operation_type, 'estimated', NULL, r.estimated, r.estimated, r.billed, r.multiplier, r.message_length,
        r.idempotency_key, r.period_start, r.created_at, NULL)::omnimeter_ledger_row ORDER BY r.subscription_id, r.i)
    INTO v_fi, v_fid, v_fused, v_flim, v_fbilled, v_fsub, v_fperiod, v_rows
    FROM fresh r;
    v_written := ARRAY(SELECT w.id FROM omnimeter_write_turns(v_rows) w);

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
      IF t.idempotency_key IS NOT NULL AND omnimeter_twin_charged(t.subscription_id, t.idempotency_key, t.id, t.created_at) THEN
        outcome := 'duplicate';
        RETURN NEXT;
        CONTINUE;
      END IF;
      PERFORM FROM omnimeter_write_turns(ARRAY[ROW(t.id, t.subscription_id, t.channel, t.chatbot_id,
        t.session_id, t.user_identifier, t.operation_type, 'denied', t.denial_reason, t.estimated, t.estimated, 0,
        t.multiplier, t.message_length, t.idempotency_key, NULL, t.created_at, NULL)::omnimeter_ledger_row]);
      outcome := 'denied';
      RETURN NEXT;
      CONTINUE;
    END IF;

    SELECT s.token_limit, s.quota_reserve_percent, s.quota_reserve_min_priority
    INTO v_limit, v_reserve_percent, v_reserve_min_priority
    FROM subscriptions s WHERE s.id = t.subscription_id;
    IF NOT FOUND THEN
      outcome := 'not_found';
      RETURN NEXT;
      CONTINUE;
    END IF;
    token_limit := v_limit;
    v_turn_limit := CASE WHEN v_reserve_percent > 0 AND coalesce(t.priority, 10) < v_reserve_min_priority
      THEN v_limit - floor(v_limit * v_reserve_percent / 100.0)::bigint ELSE v_limit END;

    IF t.idempotency_key IS NOT NULL AND EXISTS (
      SELECT 1 FROM usage_idempotency_keys k
      WHERE k.subscription_id = t.subscription_id AND k.idempotency_key = t.idempotency_key
    ) THEN
      outcome := 'duplicate';
      RETURN NEXT;
      CONTINUE;
    END IF;

    SELECT c.used_tokens INTO v_used
    FROM omnimeter_charge_quota(ARRAY[t.subscription_id], ARRAY[t.period_start], ARRAY[t.billed], true,
      v_turn_limit) c;

    IF v_used IS NULL THEN
      -- Over quota. A keyed turn whose twin was charged meanwhile (the twin held the counter row this turn
      -- waited for) is that twin's replay, not a denial.
      IF t.idempotency_key IS NOT NULL AND omnimeter_twin_charged(t.subscription_id, t.idempotency_key, t.id, t.created_at) THEN
        outcome := 'duplicate';
        RETURN NEXT;
        CONTINUE;
      END IF;
      SELECT q.used_tokens INTO v_used FROM quota_counters q
      WHERE q.subscription_id = t.subscription_id AND q.period_start = t.period_start;
      -- Refused only because of the reserve: the full limit would have covered it.
      outcome := CASE WHEN v_turn_limit < v_limit AND coalesce(v_used, 0) + t.billed <= v_limit
        THEN 'quota_reserved' ELSE 'quota_exceeded' END;
      PERFORM FROM omnimeter_write_turns(ARRAY[ROW(t.id, t.subscription_id, t.channel, t.chatbot_id,
        t.session_id, t.user_identifier, t.operation_type, 'denied', outcome, t.estimated, t.estimated,
        0, t.multiplier, t.message_length, t.idempotency_key, NULL, t.created_at, NULL)::omnimeter_ledger_row]);
      used_tokens := coalesce(v_used, 0);
      RETURN NEXT;
      CONTINUE;
    END IF;

    -- Claims the key first, if any: a twin that holds it uncommitted is waited for.
    SELECT w.id INTO v_id FROM omnimeter_write_turns(ARRAY[ROW(t.id, t.subscription_id, t.channel, t.chatbot_id,
      t.session_id, t.user_identifier, t.operation_type, 'estimated', NULL, t.estimated, t.estimated, t.billed,
      t.multiplier, t.message_length, t.idempotency_key, t.period_start, t.created_at, NULL)::omnimeter_ledger_row]) w;

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
