-- Recomputes the journey session rows (migration 0022) of some identifiers (subscription, channel,
-- user_identifier) from the ledger, after a correction or deletion moved or removed one of their turns
-- (reading their allowed turns by token_usage_logs_user_time); or, given NULL, of every identifier (the
-- backfill, set-based over the whole ledger). The 30-minute gap is core/journeys.ts SESSION_GAP_MINUTES.
CREATE OR REPLACE FUNCTION omnimeter_journey_sessions_rebuild(p_keys omnimeter_identifier_key[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF p_keys IS NULL THEN
    DELETE FROM journey_sessions;
    DELETE FROM journey_gap_sessions;
  ELSE
    DELETE FROM journey_sessions s
    USING unnest(p_keys) AS k
    WHERE s.subscription_id = k.subscription_id AND s.user_identifier = k.user_identifier AND s.channel = k.channel;
    DELETE FROM journey_gap_sessions g
    USING unnest(p_keys) AS k
    WHERE g.subscription_id = k.subscription_id AND g.user_identifier = k.user_identifier AND g.channel = k.channel;
  END IF;

  -- The identifiers' allowed turns.
  CREATE TEMP TABLE journey_rebuild_turns ON COMMIT DROP AS
  SELECT l.subscription_id, l.user_identifier, l.channel, l.session_id, l.created_at
  FROM token_usage_logs l
  WHERE l.status <> 'denied' AND l.user_identifier IS NOT NULL AND p_keys IS NULL
  UNION ALL
  SELECT l.subscription_id, l.user_identifier, l.channel, l.session_id, l.created_at
  FROM (SELECT DISTINCT subscription_id, channel, user_identifier FROM unnest(p_keys)) AS k
  JOIN token_usage_logs l
    ON l.subscription_id = k.subscription_id AND l.user_identifier = k.user_identifier AND l.channel = k.channel
  WHERE l.status <> 'denied' AND p_keys IS NOT NULL;
  ANALYZE journey_rebuild_turns;

  INSERT INTO journey_sessions (subscription_id, user_identifier, channel, session_id, started_at)
  SELECT subscription_id, user_identifier, channel, session_id, min(created_at)
  FROM journey_rebuild_turns WHERE session_id IS NOT NULL
  GROUP BY 1, 2, 3, 4;

  -- A session id used by two identifiers on one channel: its rows are read even when they start before a
  -- period, since linking may make them one person's session.
  UPDATE journey_sessions s SET shared = true
  FROM (
    SELECT o.subscription_id, o.channel, o.session_id FROM journey_sessions o
    JOIN (SELECT DISTINCT subscription_id, channel, session_id FROM journey_rebuild_turns
      WHERE session_id IS NOT NULL) AS t
      ON o.subscription_id = t.subscription_id AND o.channel = t.channel AND o.session_id = t.session_id
    GROUP BY 1, 2, 3 HAVING count(*) > 1
  ) AS d
  WHERE s.subscription_id = d.subscription_id AND s.channel = d.channel AND s.session_id = d.session_id
    AND NOT s.shared;

  INSERT INTO journey_gap_sessions (subscription_id, user_identifier, channel, started_at, ended_at)
  SELECT subscription_id, user_identifier, channel, min(created_at), max(created_at) FROM (
    SELECT *, count(*) FILTER (WHERE starts)
      OVER (PARTITION BY subscription_id, user_identifier, channel ORDER BY created_at ROWS UNBOUNDED PRECEDING) AS run
    FROM (
      SELECT subscription_id, user_identifier, channel, created_at,
        coalesce(created_at - lag(created_at)
          OVER (PARTITION BY subscription_id, user_identifier, channel ORDER BY created_at)
          >= interval '30 minutes', true) AS starts
      FROM journey_rebuild_turns WHERE session_id IS NULL
    ) AS marked
  ) AS runs
  GROUP BY subscription_id, user_identifier, channel, run;

  DROP TABLE journey_rebuild_turns;
END $$;
