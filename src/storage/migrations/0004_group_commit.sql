-- Group commit (issue 6): the metering decisions that arrive together are written by ONE call of
-- omnimeter_consume_batch, so they share one statement, one transaction and one commit (one WAL flush)
-- instead of paying each for its own. Every turn is still decided on its own, in arrival order within
-- its subscription, by the same rule as omnimeter_consume: the counter moves only WHERE
-- used + billed <= limit, with the limit read here and now.
--
-- Why the turns are processed in (subscription, arrival) order: turns of one subscription keep their
-- arrival order, so a batch is as fair as the calls; and each pass locks quota counter rows in one global
-- order, which keeps deadlocks between batches of different instances rare (a batch that takes both
-- passes below can still meet one; PostgreSQL detects it and the service retries the batch whole).
-- Within one instance, batches in flight never share a subscription (src/storage/group-commit.ts).
--
-- Idempotency without a subtransaction per turn (an EXCEPTION block per turn would open one, and more
-- than 64 subtransactions in one transaction overflow PostgreSQL's per-backend subxid cache, which slows
-- every other session's snapshots): a keyed turn first looks for a charged row with its key (this finds
-- a twin earlier in the same batch, and any committed one); then the ledger insert uses ON CONFLICT DO
-- NOTHING, which waits for a concurrent uncommitted twin (another batch, another instance) and, if that
-- twin commits, inserts nothing; the counter increment made a moment before is then taken back under
-- the row lock this transaction already holds. Either way exactly one charge survives per key.
--
-- Scope: a subscription API key's turn carries its subscription id in "scope"; a turn whose resolved
-- subscription is not that one is answered not_found and writes nothing (the service checks this too;
-- this is the second lock on the door, as row level security is for the single-turn path).
--
-- Two paths, one rule. The fast path is set-based: for each (subscription, period) whose turns are all
-- plain charges (no denial to record, no scope mismatch, no idempotency key twice in the batch, no key
-- already charged), one counter upsert adds the group's total WHERE used + total <= limit; if it fits, every
-- turn of the group fits (each turn's own check, in order, is implied by the total's), and all their ledger
-- rows go in with one INSERT. Statements per batch instead of three per turn. A group the quota cannot
-- cover whole, and every other turn, takes the exact per-turn loop, in (subscription, arrival) order.
--
-- Input: a jsonb array of objects with the fields of the record below ("i" numbers the turns; the
-- answer carries it back). "denial_reason" set: write that denial (billed 0) and decide nothing.
-- Output, one row per turn: i, outcome (allowed | quota_exceeded | duplicate | not_found | denied),
-- usage_id (allowed), used_tokens (the period's counter after the turn), token_limit.
CREATE TYPE omnimeter_batch_turn AS (
  i integer, subscription_id uuid, scope uuid, channel text, chatbot_id text, session_id text,
  user_identifier text, operation_type text, estimated bigint, billed bigint, multiplier numeric,
  message_length integer, idempotency_key text, period_start timestamptz, created_at timestamptz,
  denial_reason text);

CREATE FUNCTION omnimeter_consume_batch(p_turns jsonb)
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
        SELECT 1 FROM token_usage_logs l
        WHERE l.subscription_id = g.subscription_id AND l.idempotency_key = g.idempotency_key
          AND l.status <> 'denied'))
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

  -- Fast path, step 2: the charged groups' ledger rows, one INSERT. A keyed row whose twin another
  -- transaction committed meanwhile is not inserted (ON CONFLICT DO NOTHING waits for that twin).
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
    ), keyed AS (
      INSERT INTO token_usage_logs (id, subscription_id, channel, chatbot_id, session_id, user_identifier,
        operation_type, status, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, message_length,
        idempotency_key, period_start, created_at)
      SELECT r.id, r.subscription_id, r.channel, r.chatbot_id, r.session_id, r.user_identifier,
        r.operation_type, 'estimated', r.estimated, r.estimated, r.billed, r.multiplier, r.message_length,
        r.idempotency_key, r.period_start, r.created_at
      FROM fresh r
      WHERE r.idempotency_key IS NOT NULL
      ORDER BY r.subscription_id, r.i
      ON CONFLICT (subscription_id, idempotency_key) WHERE idempotency_key IS NOT NULL AND status <> 'denied'
        DO NOTHING
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
      SELECT 1 FROM token_usage_logs l
      WHERE l.subscription_id = t.subscription_id AND l.idempotency_key = t.idempotency_key
        AND l.status <> 'denied'
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
      INSERT INTO token_usage_logs (subscription_id, channel, chatbot_id, session_id, user_identifier,
        operation_type, status, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, message_length,
        idempotency_key, period_start, created_at)
      VALUES (t.subscription_id, t.channel, t.chatbot_id, t.session_id, t.user_identifier, t.operation_type,
        'estimated', t.estimated, t.estimated, t.billed, t.multiplier, t.message_length, t.idempotency_key,
        t.period_start, t.created_at)
      ON CONFLICT (subscription_id, idempotency_key) WHERE idempotency_key IS NOT NULL AND status <> 'denied'
        DO NOTHING
      RETURNING token_usage_logs.id INTO v_id;
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

GRANT EXECUTE ON FUNCTION omnimeter_consume_batch(jsonb) TO omnimeter_app;
