-- The one way a decided turn enters the ledger, for live turns (omnimeter_consume_batch's fast and exact
-- paths) and imported ones (insertImportedTurns). The caller has already charged the quota counter (live)
-- or charges it from what this returns (import). A charged turn with an idempotency key claims the key in
-- usage_idempotency_keys first: ON CONFLICT DO NOTHING waits for a twin that holds the key uncommitted,
-- and a key already held (an earlier turn, import or twin in these rows) is not claimed, so that turn is
-- not written and is missing from the result; the caller gives its charge back or skips it. Rows without a
-- key and denials (which hold no key) are always written. Rows are written in the order given, which
-- callers make their lock order. Returns the rows written.
-- The same statement adds the rows it wrote to the rollups (omnimeter_rollup_turns, the ledger insert
-- trigger's work), and sets the transaction-local omnimeter.rollups_written around itself, which that
-- trigger's WHEN clause reads: on the consume path the trigger, its transition table and its nested calls
-- are not started (issue 18). Rows inserted any other way are still rolled up by the trigger.
-- Likewise omnimeter.sessions_queued (migration 0024): the allowed rows it writes are queued in
-- session_queue, and the ledger's session triggers (0019's outcomes, 0022's journeys) skip the statement;
-- omnimeter_sessions_derive applies the queue after the commit, and every reader of those tables calls it
-- first. Imported settled rows add their settlements here, as 0019's insert trigger would have.
-- Unless the session has omnimeter.sessions_inline = 'on' (migration 0026; the embedded database sets it
-- once per connection): then nothing is queued, the setting is not set, and those triggers derive the
-- sessions and add the settlements in this statement, as before 0024. PGlite's one connection would run a
-- deriver between its consumes anyway, so deferring saved nothing there and cost the queue's own writes.
CREATE OR REPLACE FUNCTION omnimeter_write_turns(p_rows omnimeter_ledger_row[])
RETURNS TABLE (id uuid, subscription_id uuid, period_start timestamptz, billed_tokens bigint, status text)
LANGUAGE plpgsql AS $$
-- The result's column names are also the ledger's; in this body a bare name is the column.
#variable_conflict use_column
DECLARE
  v_setting text;
  v_queue boolean := current_setting('omnimeter.sessions_inline', true) IS DISTINCT FROM 'on';
BEGIN
  -- Assignments, not PERFORM: a simple expression runs without an executor.
  v_setting := set_config('omnimeter.rollups_written', 'on', true);
  IF v_queue THEN
    v_setting := set_config('omnimeter.sessions_queued', 'on', true);
  END IF;
  -- PL/pgSQL, not SQL: its plan is prepared once per session, an SQL function's on every call.
  RETURN QUERY
  WITH input AS MATERIALIZED (
    SELECT r.* FROM unnest(p_rows) WITH ORDINALITY AS r
  ), plain AS (
    -- No key to claim: a plain insert, without ON CONFLICT's speculative insertion.
    INSERT INTO token_usage_logs (id, subscription_id, channel, chatbot_id, session_id, user_identifier,
      operation_type, status, denial_reason, estimated_tokens, raw_tokens, billed_tokens, token_multiplier,
      message_length, idempotency_key, period_start, created_at, settled_at)
    SELECT r.id, r.subscription_id, r.channel, r.chatbot_id, r.session_id, r.user_identifier,
      r.operation_type, r.status, r.denial_reason, r.estimated_tokens, r.raw_tokens, r.billed_tokens,
      r.token_multiplier, r.message_length, r.idempotency_key, r.period_start, r.created_at, r.settled_at
    FROM input r
    WHERE r.idempotency_key IS NULL OR r.status = 'denied'
    ORDER BY r.ordinality
    RETURNING token_usage_logs.id, token_usage_logs.subscription_id, token_usage_logs.period_start,
      token_usage_logs.billed_tokens, token_usage_logs.status
  ), claimed AS (
    INSERT INTO usage_idempotency_keys (subscription_id, idempotency_key, usage_id, created_at)
    SELECT r.subscription_id, r.idempotency_key, r.id, r.created_at
    FROM input r
    WHERE r.idempotency_key IS NOT NULL AND r.status <> 'denied'
    ORDER BY r.ordinality
    ON CONFLICT (subscription_id, idempotency_key) DO NOTHING
    RETURNING usage_idempotency_keys.usage_id
  ), keyed AS (
    INSERT INTO token_usage_logs (id, subscription_id, channel, chatbot_id, session_id, user_identifier,
      operation_type, status, denial_reason, estimated_tokens, raw_tokens, billed_tokens, token_multiplier,
      message_length, idempotency_key, period_start, created_at, settled_at)
    SELECT r.id, r.subscription_id, r.channel, r.chatbot_id, r.session_id, r.user_identifier,
      r.operation_type, r.status, r.denial_reason, r.estimated_tokens, r.raw_tokens, r.billed_tokens,
      r.token_multiplier, r.message_length, r.idempotency_key, r.period_start, r.created_at, r.settled_at
    FROM input r
    WHERE r.id IN (SELECT c.usage_id FROM claimed c)
    ORDER BY r.ordinality
    RETURNING token_usage_logs.id, token_usage_logs.subscription_id, token_usage_logs.period_start,
      token_usage_logs.billed_tokens, token_usage_logs.status
  ), written AS (
    SELECT p.id, p.subscription_id, p.period_start, p.billed_tokens, p.status FROM plain p
    UNION ALL
    SELECT k.id, k.subscription_id, k.period_start, k.billed_tokens, k.status FROM keyed k
  ), queued AS (
    -- Run whether read or not (a data-modifying WITH always runs to completion).
    INSERT INTO session_queue (subscription_id, usage_id, created_at)
    SELECT r.subscription_id, r.id, r.created_at
    FROM input r
    WHERE v_queue AND r.status <> 'denied' AND r.id IN (SELECT w.id FROM written w)
    ORDER BY r.ordinality
  ), rolled_up AS (
    SELECT omnimeter_rollup_turns(ARRAY(
      SELECT r FROM unnest(p_rows) r WHERE r.id IN (SELECT w.id FROM written w))) AS done,
      -- Only an import writes settled rows (the one-time filter keeps the call off the consume path);
      -- derived inline, the insert trigger adds them.
      (SELECT count(*) FROM (
        SELECT omnimeter_outcome_settlements_add(ARRAY(
          SELECT ROW(r.subscription_id, r.created_at, r.channel, NULL::text = 'error', NULL::integer,
            1)::omnimeter_settlement_change
          FROM unnest(p_rows) r WHERE r.status = 'settled' AND r.id IN (SELECT w.id FROM written w)))
        WHERE v_queue AND EXISTS (SELECT 1 FROM written w WHERE w.status = 'settled')) AS s) AS settled
  )
  -- The join with rolled_up's one row is what runs it (a SELECT in WITH runs only when read).
  SELECT w.id, w.subscription_id, w.period_start, w.billed_tokens, w.status
  FROM written w CROSS JOIN rolled_up;
  v_setting := set_config('omnimeter.rollups_written', '', true);
  IF v_queue THEN
    v_setting := set_config('omnimeter.sessions_queued', '', true);
  END IF;
END $$;
