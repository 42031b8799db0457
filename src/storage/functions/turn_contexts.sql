-- A subscription (with its shared capacity, priority curve and quota reserve) and the overrides of every
-- channel it has configured, one row per configured channel (channel NULL when it has none): the meter
-- caches them together, so a turn on any of the subscription's channels finds its context without another
-- read.
CREATE OR REPLACE FUNCTION omnimeter_turn_contexts(p_entity_type text, p_entity_id text)
RETURNS TABLE (
  id uuid, entity_id text, entity_type text, plan text, token_limit bigint, status text, timezone text,
  period_anchor timestamptz, created_at timestamptz, updated_at timestamptz,
  capacity_requests_per_minute integer, capacity_tokens_per_minute integer, priority_curve smallint[],
  quota_reserve_percent smallint, quota_reserve_min_priority smallint, channel text,
  enabled boolean, requests_per_minute integer, tokens_per_minute integer, max_message_length integer,
  token_multiplier numeric, priority smallint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN QUERY
    SELECT s.id, s.entity_id, s.entity_type, s.plan, s.token_limit, s.status, s.timezone, s.period_anchor,
      s.created_at, s.updated_at, s.capacity_requests_per_minute, s.capacity_tokens_per_minute,
      s.priority_curve, s.quota_reserve_percent, s.quota_reserve_min_priority, c.channel, c.enabled,
      c.requests_per_minute, c.tokens_per_minute, c.max_message_length, c.token_multiplier, c.priority
    FROM subscriptions s
    LEFT JOIN channel_configurations c ON c.subscription_id = s.id
    WHERE s.entity_type = p_entity_type AND s.entity_id = p_entity_id;
END $$;
