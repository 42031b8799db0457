-- Settlement: the turn's actual tokens replace its estimate, and the counter moves by the difference.
-- A UUIDv7 turn is found in the one partition of its time first; other ids in every partition.
-- With a model (sent now, or at consume) or a token split, the turn's details row records the model, the
-- split and the money cost at the price in force at the turn's time (omnimeter_turn_cost: NULL when
-- unpriced), in the same statement; a settle with neither writes nothing more than before.
-- A settle never moves a turn (its session, channel, time, identifier and allowed-ness stay): it sets the
-- transaction-local omnimeter.turns_unmoved around its statements, which the journey sessions' update
-- trigger's WHEN reads (migration 0024), so that trigger is not started for nothing on the hot path.
CREATE OR REPLACE FUNCTION omnimeter_settle(p_id uuid, p_actual bigint, p_settled_at timestamptz, p_outcome text,
  p_latency_ms integer, p_model text, p_input bigint, p_output bigint, p_currency text)
RETURNS TABLE (o_subscription_id uuid, o_channel text, o_previous_billed bigint, o_billed_tokens bigint,
  o_period_start timestamptz, o_used_tokens bigint, o_token_limit bigint, o_model text, o_cost_micros numeric)
LANGUAGE plpgsql AS $$
DECLARE
  v_at timestamptz := omnimeter_uuid7_time(p_id);
  v_model text := p_model;
  v_setting text;
BEGIN
  -- Assignments, not PERFORM: a simple expression runs without an executor.
  v_setting := set_config('omnimeter.turns_unmoved', 'on', true);
  IF v_model IS NULL THEN
    SELECT d.model INTO v_model FROM turn_details d WHERE d.usage_id = p_id;
  END IF;
  IF v_at IS NOT NULL THEN
    RETURN QUERY
      WITH target AS (
        SELECT l.id, l.created_at, l.billed_tokens FROM token_usage_logs l
        WHERE l.id = p_id AND l.created_at = v_at AND l.status = 'estimated'
        FOR UPDATE
      ), settled AS (
        UPDATE token_usage_logs t
        SET status = 'settled', raw_tokens = p_actual,
            billed_tokens = ceil(p_actual::numeric * t.token_multiplier)::bigint,
            settled_at = p_settled_at, outcome = p_outcome, latency_ms = p_latency_ms
        FROM target
        WHERE t.id = target.id AND t.created_at = v_at
        RETURNING t.id, t.subscription_id, t.channel, t.period_start, t.created_at, t.billed_tokens,
          target.billed_tokens AS previous_billed
      ), counter AS (
        UPDATE quota_counters q
        SET used_tokens = q.used_tokens + (settled.billed_tokens - settled.previous_billed)
        FROM settled
        WHERE q.subscription_id = settled.subscription_id AND q.period_start = settled.period_start
        RETURNING q.used_tokens
      ), details AS (
        INSERT INTO turn_details AS d (usage_id, subscription_id, created_at, channel, model, input_tokens,
          output_tokens, cost_micros)
        SELECT settled.id, settled.subscription_id, settled.created_at, settled.channel, v_model, p_input,
          p_output, omnimeter_turn_cost(v_model, p_currency, settled.created_at, p_input, p_output)
        FROM settled
        WHERE v_model IS NOT NULL OR p_input IS NOT NULL
        ON CONFLICT (usage_id) DO UPDATE SET model = excluded.model, input_tokens = excluded.input_tokens,
          output_tokens = excluded.output_tokens, cost_micros = excluded.cost_micros
        RETURNING d.cost_micros
      )
      SELECT settled.subscription_id, settled.channel, settled.previous_billed, settled.billed_tokens,
        settled.period_start, counter.used_tokens,
        (SELECT s.token_limit FROM subscriptions s WHERE s.id = settled.subscription_id),
        v_model, (SELECT details.cost_micros FROM details)
      FROM settled, counter;
    IF FOUND THEN
      v_setting := set_config('omnimeter.turns_unmoved', '', true);
      RETURN;
    END IF;
  END IF;
  -- Not a UUIDv7, or not found at its time (already settled, denied, unknown): every partition.
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
      RETURNING t.id, t.subscription_id, t.channel, t.period_start, t.created_at, t.billed_tokens,
        target.billed_tokens AS previous_billed
    ), counter AS (
      UPDATE quota_counters q
      SET used_tokens = q.used_tokens + (settled.billed_tokens - settled.previous_billed)
      FROM settled
      WHERE q.subscription_id = settled.subscription_id AND q.period_start = settled.period_start
      RETURNING q.used_tokens
    ), details AS (
      INSERT INTO turn_details AS d (usage_id, subscription_id, created_at, channel, model, input_tokens,
        output_tokens, cost_micros)
      SELECT settled.id, settled.subscription_id, settled.created_at, settled.channel, v_model, p_input,
        p_output, omnimeter_turn_cost(v_model, p_currency, settled.created_at, p_input, p_output)
      FROM settled
      WHERE v_model IS NOT NULL OR p_input IS NOT NULL
      ON CONFLICT (usage_id) DO UPDATE SET model = excluded.model, input_tokens = excluded.input_tokens,
        output_tokens = excluded.output_tokens, cost_micros = excluded.cost_micros
      RETURNING d.cost_micros
    )
    SELECT settled.subscription_id, settled.channel, settled.previous_billed, settled.billed_tokens,
      settled.period_start, counter.used_tokens,
      (SELECT s.token_limit FROM subscriptions s WHERE s.id = settled.subscription_id),
      v_model, (SELECT details.cost_micros FROM details)
    FROM settled, counter;
  v_setting := set_config('omnimeter.turns_unmoved', '', true);
END $$;
