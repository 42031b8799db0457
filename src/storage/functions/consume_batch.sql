-- The group commit: decides a batch of turns in one transaction. Each turn carries its id (a UUIDv7 the
-- service assigns before the first run, so a re-run after a lost reply collides instead of charging
-- twice). Groups of (subscription, period) that the quota covers are charged on a fast path; the rest one
-- turn at a time. A keyed turn claims its key in usage_idempotency_keys first; a twin committed meanwhile
-- gets its charge back and answers 'duplicate'. A keyed turn about to be denied asks
-- omnimeter_twin_charged first, so the twin is replayed instead of a denial written. A subscription's
-- quota reserve (issue 13) keeps the last quota_reserve_percent of the limit for turns of priority
-- quota_reserve_min_priority or more: a lower priority is charged only within limit - floor(limit * percent
-- / 100), decided on the exact path, and a turn only the reserve refuses is recorded as 'quota_reserved'.
-- The fast path is ONE statement (issue 18): a lone turn's batch spent most of its time in PL/pgSQL
-- statements and nested calls, not in its few row writes. Its charge is omnimeter_charge_quota's, its
-- ledger rows and their rollups omnimeter_write_turns's, called from that statement.
CREATE OR REPLACE FUNCTION omnimeter_consume_batch(p_turns jsonb)
RETURNS TABLE (i integer, outcome text, usage_id uuid, used_tokens bigint, token_limit bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_turns omnimeter_batch_turn[];
  v_fi integer[];
  v_fid uuid[];
  v_fused bigint[];
  v_flim bigint[];
  v_fbilled bigint[];
  v_fsub uuid[];
  v_fperiod timestamptz[];
  t record;
  v_limit bigint;
  v_used bigint;
  v_id uuid;
  v_reserve_percent integer;
  v_reserve_min_priority integer;
  v_turn_limit bigint;
BEGIN
  -- Fast path, in one statement: whole groups (subscription, period) the quota covers are charged, locking
  -- counters in subscription order, and their ledger rows written in (subscription, arrival) order; each
  -- turn reports the counter as it stood right after it (a running sum in arrival order). A keyed row
  -- whose twin another transaction committed meanwhile is not written (its id comes back NULL).
  WITH input AS MATERIALIZED (
    SELECT x.* FROM jsonb_to_recordset(p_turns) AS x(
      i integer, subscription_id uuid, scope uuid, channel text, chatbot_id text, session_id text,
      user_identifier text, operation_type text, estimated bigint, billed bigint, multiplier numeric,
      message_length integer, idempotency_key text, period_start timestamptz, created_at timestamptz,
      denial_reason text, id uuid, priority integer)
  ), groups AS (
    SELECT g.subscription_id, g.period_start, sum(g.billed)::bigint AS total
    FROM input g
    GROUP BY g.subscription_id, g.period_start
    HAVING bool_and(g.id IS NOT NULL AND g.denial_reason IS NULL
        AND (g.scope IS NULL OR g.scope = g.subscription_id))
      AND count(g.idempotency_key) = count(DISTINCT g.idempotency_key)
      AND NOT bool_or(g.idempotency_key IS NOT NULL AND EXISTS (
        SELECT 1 FROM usage_idempotency_keys k
        WHERE k.subscription_id = g.subscription_id AND k.idempotency_key = g.idempotency_key))
      -- Turns the quota reserve may refuse are decided one at a time (their limit is not the group's).
      AND NOT EXISTS (SELECT 1 FROM subscriptions r WHERE r.id = g.subscription_id
        AND r.quota_reserve_percent > 0 AND r.quota_reserve_min_priority > min(coalesce(g.priority, 10)))
  ), charged AS MATERIALIZED (
    SELECT c.* FROM omnimeter_charge_quota(
      ARRAY(SELECT g.subscription_id FROM groups g ORDER BY g.subscription_id, g.period_start),
      ARRAY(SELECT g.period_start FROM groups g ORDER BY g.subscription_id, g.period_start),
      ARRAY(SELECT g.total FROM groups g ORDER BY g.subscription_id, g.period_start),
      true) c
  ), fresh AS MATERIALIZED (
    SELECT u.*, s.token_limit AS lim,
      c.used_tokens
        - sum(u.billed) OVER (PARTITION BY u.subscription_id, u.period_start)
        + sum(u.billed) OVER (PARTITION BY u.subscription_id, u.period_start ORDER BY u.i) AS used_then
    FROM input u
    JOIN charged c ON c.subscription_id = u.subscription_id AND c.period_start = u.period_start
    JOIN subscriptions s ON s.id = u.subscription_id
  ), written AS MATERIALIZED (
    SELECT w.id FROM omnimeter_write_turns(ARRAY(
      SELECT ROW(r.id, r.subscription_id, r.channel, r.chatbot_id, r.session_id, r.user_identifier,
        r.operation_type, 'estimated', NULL, r.estimated, r.estimated, r.billed, r.multiplier, r.message_length,
        r.idempotency_key, r.period_start, r.created_at, NULL)::omnimeter_ledger_row
      FROM fresh r ORDER BY r.subscription_id, r.i)) w
  )
  SELECT array_agg(r.i), array_agg(CASE WHEN r.id IN (SELECT w.id FROM written w) THEN r.id END),
    array_agg(r.used_then), array_agg(r.lim), array_agg(r.billed), array_agg(r.subscription_id),
    array_agg(r.period_start)
  INTO v_fi, v_fid, v_fused, v_flim, v_fbilled, v_fsub, v_fperiod
  FROM fresh r;

  IF v_fi IS NOT NULL THEN
    IF array_position(v_fid, NULL) IS NOT NULL THEN
      -- Rare: a twin committed elsewhere meanwhile: give its charge back (this transaction holds the
      -- counter row's lock since the charge, so nobody saw the extra tokens).
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

    IF cardinality(v_fi) = jsonb_array_length(p_turns) THEN
      RETURN;
    END IF;
  END IF;

  -- What the fast path left: keyed groups with a key seen before, denials to record, turns out of scope,
  -- groups the quota (or its reserve) may not cover at once.
  v_turns := ARRAY(
    SELECT ROW(x.*)::omnimeter_batch_turn FROM jsonb_to_recordset(p_turns) AS x(
      i integer, subscription_id uuid, scope uuid, channel text, chatbot_id text, session_id text,
      user_identifier text, operation_type text, estimated bigint, billed bigint, multiplier numeric,
      message_length integer, idempotency_key text, period_start timestamptz, created_at timestamptz,
      denial_reason text, id uuid, priority integer)
    WHERE x.i <> ALL (coalesce(v_fi, '{}')));
  IF EXISTS (SELECT 1 FROM unnest(v_turns) u WHERE u.id IS NULL) THEN
    RAISE EXCEPTION 'omnimeter_consume_batch: every turn needs its id (the service assigns it)';
  END IF;

  -- Everything else, one turn at a time, exactly.
  FOR t IN
    SELECT u.* FROM unnest(v_turns) u
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
