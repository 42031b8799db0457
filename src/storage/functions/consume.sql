-- The single-turn consume (the service no longer calls it): a keyed charge claims its key first,
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
