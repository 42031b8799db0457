-- Recomputes the attribution facts of some outcomes (migration 0019): per outcome without its own channel,
-- per channel, its touches in the default lookback (7 days up to occurred_at): their number and the
-- earliest and latest (time, turn id). The session's touches when it has any there, else the user's, as
-- the outcomes answer credits them. Called when an outcome is recorded and when a turn that may touch one
-- is inserted, corrected or deleted; each (outcome, channel) comes from one index range of the ledger.
CREATE OR REPLACE FUNCTION omnimeter_outcome_touches_refresh(p_outcomes uuid[]) RETURNS void
LANGUAGE sql AS $$
  DELETE FROM outcome_touches WHERE outcome_id = ANY(p_outcomes);

  INSERT INTO outcome_touches (outcome_id, subscription_id, occurred_at, channel, touches, first_at, first_id,
    last_at, last_id)
  SELECT o.id, o.subscription_id, o.occurred_at, t.channel, t.touches, t.first_at, t.first_id, t.last_at,
    t.last_id
  FROM outcomes o
  CROSS JOIN LATERAL (
    SELECT l.channel, count(*) AS touches, min(l.created_at) AS first_at,
      (array_agg(l.id ORDER BY l.created_at, l.id))[1] AS first_id, max(l.created_at) AS last_at,
      (array_agg(l.id ORDER BY l.created_at DESC, l.id DESC))[1] AS last_id
    FROM token_usage_logs l
    WHERE l.subscription_id = o.subscription_id AND l.session_id = o.session_id AND l.status <> 'denied'
      AND l.created_at >= o.occurred_at - interval '7 days' AND l.created_at <= o.occurred_at
    GROUP BY l.channel
  ) AS t
  WHERE o.id = ANY(p_outcomes) AND o.channel IS NULL AND o.session_id IS NOT NULL
  ORDER BY 1, 4;

  INSERT INTO outcome_touches (outcome_id, subscription_id, occurred_at, channel, touches, first_at, first_id,
    last_at, last_id)
  SELECT o.id, o.subscription_id, o.occurred_at, t.channel, t.touches, t.first_at, t.first_id, t.last_at,
    t.last_id
  FROM outcomes o
  CROSS JOIN LATERAL (
    SELECT l.channel, count(*) AS touches, min(l.created_at) AS first_at,
      (array_agg(l.id ORDER BY l.created_at, l.id))[1] AS first_id, max(l.created_at) AS last_at,
      (array_agg(l.id ORDER BY l.created_at DESC, l.id DESC))[1] AS last_id
    FROM token_usage_logs l
    WHERE l.subscription_id = o.subscription_id AND l.user_identifier = o.user_identifier
      AND l.status <> 'denied'
      AND l.created_at >= o.occurred_at - interval '7 days' AND l.created_at <= o.occurred_at
    GROUP BY l.channel
  ) AS t
  WHERE o.id = ANY(p_outcomes) AND o.channel IS NULL
    AND NOT EXISTS (SELECT 1 FROM outcome_touches x WHERE x.outcome_id = o.id)
  ORDER BY 1, 4;
$$;
