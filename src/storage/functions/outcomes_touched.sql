-- The outcomes whose attribution facts some turns may change (migration 0019): same subscription, same
-- user or session, no own channel, occurred_at within the default lookback (7 days) at or after the turn.
-- A consume's turns are "now", so only outcomes dated ahead of the clock (5 minutes at most) qualify:
-- two index probes per turn that almost always find nothing.
CREATE OR REPLACE FUNCTION omnimeter_outcomes_touched(p_turns omnimeter_touch[]) RETURNS uuid[]
LANGUAGE sql STABLE AS $$
  SELECT coalesce(array_agg(DISTINCT id), '{}') FROM (
    SELECT o.id FROM unnest(p_turns) AS t
    JOIN outcomes o ON o.subscription_id = t.subscription_id AND o.user_identifier = t.user_identifier
      AND o.occurred_at >= t.created_at AND o.occurred_at <= t.created_at + interval '7 days'
    WHERE o.channel IS NULL
    UNION ALL
    SELECT o.id FROM unnest(p_turns) AS t
    JOIN outcomes o ON o.subscription_id = t.subscription_id AND o.session_id = t.session_id
      AND o.occurred_at >= t.created_at AND o.occurred_at <= t.created_at + interval '7 days'
    WHERE o.channel IS NULL
  ) AS touched
$$;
