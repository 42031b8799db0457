-- Recomputes the journey session rows (migration 0022) of some identifiers (subscription, channel,
-- user_identifier) from the ledger: the backfill, and after a correction or deletion moved or removed one of
-- their turns. Reads those identifiers' allowed turns by token_usage_logs_user_time. The 30-minute gap is
-- core/journeys.ts SESSION_GAP_MINUTES.
CREATE OR REPLACE FUNCTION omnimeter_journey_sessions_rebuild(p_keys omnimeter_identifier_key[]) RETURNS void
LANGUAGE sql AS $$
  DELETE FROM journey_sessions s
  USING unnest(p_keys) AS k
  WHERE s.subscription_id = k.subscription_id AND s.user_identifier = k.user_identifier AND s.channel = k.channel;
  DELETE FROM journey_gap_sessions g
  USING unnest(p_keys) AS k
  WHERE g.subscription_id = k.subscription_id AND g.user_identifier = k.user_identifier AND g.channel = k.channel;

  INSERT INTO journey_sessions (subscription_id, user_identifier, channel, session_id, started_at)
  SELECT l.subscription_id, l.user_identifier, l.channel, l.session_id, min(l.created_at)
  FROM (SELECT DISTINCT subscription_id, channel, user_identifier FROM unnest(p_keys)) AS k
  JOIN token_usage_logs l
    ON l.subscription_id = k.subscription_id AND l.user_identifier = k.user_identifier AND l.channel = k.channel
  WHERE l.status <> 'denied' AND l.session_id IS NOT NULL
  GROUP BY 1, 2, 3, 4;

  -- A session id used by two identifiers on one channel: its rows are read even when they start before a
  -- period, since linking may make them one person's session.
  UPDATE journey_sessions s SET shared = true
  WHERE NOT s.shared
    AND (s.subscription_id, s.channel, s.session_id) IN (
      SELECT r.subscription_id, r.channel, r.session_id FROM journey_sessions r
      JOIN unnest(p_keys) AS k
        ON r.subscription_id = k.subscription_id AND r.user_identifier = k.user_identifier AND r.channel = k.channel)
    AND EXISTS (
      SELECT 1 FROM journey_sessions o
      WHERE o.subscription_id = s.subscription_id AND o.channel = s.channel AND o.session_id = s.session_id
        AND o.user_identifier <> s.user_identifier);

  INSERT INTO journey_gap_sessions (subscription_id, user_identifier, channel, started_at, ended_at)
  SELECT subscription_id, user_identifier, channel, min(created_at), max(created_at) FROM (
    SELECT *, count(*) FILTER (WHERE starts)
      OVER (PARTITION BY subscription_id, user_identifier, channel ORDER BY created_at ROWS UNBOUNDED PRECEDING) AS run
    FROM (
      SELECT l.subscription_id, l.user_identifier, l.channel, l.created_at,
        coalesce(l.created_at - lag(l.created_at)
          OVER (PARTITION BY l.subscription_id, l.user_identifier, l.channel ORDER BY l.created_at)
          >= interval '30 minutes', true) AS starts
      FROM (SELECT DISTINCT subscription_id, channel, user_identifier FROM unnest(p_keys)) AS k
      JOIN token_usage_logs l
        ON l.subscription_id = k.subscription_id AND l.user_identifier = k.user_identifier AND l.channel = k.channel
      WHERE l.status <> 'denied' AND l.session_id IS NULL
    ) AS marked
  ) AS runs
  GROUP BY subscription_id, user_identifier, channel, run;
$$;
