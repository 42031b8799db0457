-- Widens the converted-session facts (migration 0025) with some allowed turns of sessions: for each
-- outcome naming one of their sessions and each channel, the session's latest turn at or before the
-- outcome (turn_before) and its earliest turn after it (turn_after) on that channel. A session converted
-- on a channel in [S, E) is one with an outcome o in [S, E) and a turn on the channel in [S, E): exactly
-- when some such o has turn_before >= S or turn_after < E (a turn in [S, E) is either at or before o, and
-- then turn_before is at least it, or after o, and then turn_after is at most it). Merging keeps the
-- latest "before" and the earliest "after", so turns applied in any order, or twice, end exact.
-- The caller holds omnimeter_sessions_lock for the turns' subscriptions (omnimeter_outcome_sessions_inserted
-- and omnimeter_outcome_session_turns_refresh take it first), so an outcome recorded at the same moment
-- either sees these turns or is seen by them.
CREATE OR REPLACE FUNCTION omnimeter_outcome_session_turns_add(p_turns omnimeter_session_turn[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO outcome_session_turns AS s (subscription_id, outcome_id, channel, session_id, occurred_at,
    turn_before, turn_after)
  SELECT o.subscription_id, o.id, t.channel, o.session_id, o.occurred_at,
    max(t.created_at) FILTER (WHERE t.created_at <= o.occurred_at),
    min(t.created_at) FILTER (WHERE t.created_at > o.occurred_at)
  FROM unnest(p_turns) AS t
  JOIN outcomes o ON o.subscription_id = t.subscription_id AND o.session_id = t.session_id
  GROUP BY o.id, t.channel
  ORDER BY o.id, t.channel
  ON CONFLICT (outcome_id, channel) DO UPDATE
  SET turn_before = greatest(s.turn_before, excluded.turn_before),
    turn_after = least(s.turn_after, excluded.turn_after)
  WHERE excluded.turn_before > s.turn_before OR (s.turn_before IS NULL AND excluded.turn_before IS NOT NULL)
    OR excluded.turn_after < s.turn_after OR (s.turn_after IS NULL AND excluded.turn_after IS NOT NULL);
END $$;
