-- What inserted turns change in the journey session tables (migration 0022, 0024). An allowed turn with a
-- user_identifier and a session_id makes its identifier's row of that session (kept at its earliest turn:
-- a later turn only reads it). One without a session_id joins its identifier's gap runs on the channel:
-- the runs within 30 minutes of the batch's turns are taken out and put back merged with them, so a late
-- or out-of-order turn that falls between two runs joins them (exact: a run is a stretch of turns less
-- than 30 minutes apart, its ends being turns). Idempotent: a turn applied twice, or after a correction
-- recomputed its identifier's rows from the ledger, changes nothing more. Called by the ledger's insert
-- trigger and by omnimeter_sessions_derive (consumed turns, after their transaction committed).
CREATE OR REPLACE FUNCTION omnimeter_journey_sessions_inserted(p_rows token_usage_logs[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_fresh omnimeter_session_key[];
BEGIN
  WITH made AS (
    INSERT INTO journey_sessions AS s (subscription_id, user_identifier, channel, session_id, started_at)
    SELECT i.subscription_id, i.user_identifier, i.channel, i.session_id, min(i.created_at)
    FROM unnest(p_rows) AS i
    WHERE i.status <> 'denied' AND i.session_id IS NOT NULL AND i.user_identifier IS NOT NULL
    GROUP BY 1, 2, 3, 4
    -- An ongoing session's row is only read (an upsert would lock it, a write, even when it changes nothing).
    HAVING NOT EXISTS (
      SELECT 1 FROM journey_sessions s
      WHERE s.subscription_id = i.subscription_id AND s.user_identifier = i.user_identifier
        AND s.channel = i.channel AND s.session_id = i.session_id AND s.started_at <= min(i.created_at))
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (subscription_id, user_identifier, channel, session_id) DO UPDATE
    SET started_at = excluded.started_at
    WHERE excluded.started_at < s.started_at
    RETURNING s.subscription_id, s.session_id, s.channel, xmax = 0 AS fresh
  )
  SELECT array_agg(ROW(subscription_id, session_id, channel)::omnimeter_session_key) FILTER (WHERE fresh)
  INTO v_fresh FROM made;
  IF v_fresh IS NOT NULL THEN
    UPDATE journey_sessions s SET shared = true
    FROM unnest(v_fresh) AS k
    WHERE s.subscription_id = k.subscription_id AND s.channel = k.channel AND s.session_id = k.session_id
      AND NOT s.shared
      AND EXISTS (
        SELECT 1 FROM journey_sessions o
        WHERE o.subscription_id = s.subscription_id AND o.channel = s.channel AND o.session_id = s.session_id
          AND o.user_identifier <> s.user_identifier);
  END IF;

  IF EXISTS (
    SELECT 1 FROM unnest(p_rows) AS i
    WHERE i.status <> 'denied' AND i.session_id IS NULL AND i.user_identifier IS NOT NULL
  ) THEN
    WITH turns AS (
      SELECT subscription_id, user_identifier, channel, created_at FROM unnest(p_rows)
      WHERE status <> 'denied' AND session_id IS NULL AND user_identifier IS NOT NULL
    ), keys AS (
      SELECT subscription_id, user_identifier, channel, min(created_at) AS lo, max(created_at) AS hi
      FROM turns GROUP BY 1, 2, 3
    ), taken AS (
      DELETE FROM journey_gap_sessions g
      USING keys k
      WHERE g.subscription_id = k.subscription_id AND g.user_identifier = k.user_identifier
        AND g.channel = k.channel AND g.ended_at > k.lo - interval '30 minutes'
        AND g.started_at < k.hi + interval '30 minutes'
      RETURNING g.subscription_id, g.user_identifier, g.channel, g.started_at, g.ended_at
    ), pieces AS (
      SELECT subscription_id, user_identifier, channel, created_at AS started_at, created_at AS ended_at FROM turns
      UNION ALL
      SELECT * FROM taken
    ), marked AS (
      SELECT *, coalesce(started_at - max(ended_at) OVER (
          PARTITION BY subscription_id, user_identifier, channel ORDER BY started_at, ended_at
          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) >= interval '30 minutes', true) AS starts
      FROM pieces
    ), runs AS (
      SELECT *, count(*) FILTER (WHERE starts) OVER (
          PARTITION BY subscription_id, user_identifier, channel ORDER BY started_at, ended_at
          ROWS UNBOUNDED PRECEDING) AS run
      FROM marked
    )
    INSERT INTO journey_gap_sessions AS g (subscription_id, user_identifier, channel, started_at, ended_at)
    SELECT subscription_id, user_identifier, channel, min(started_at), max(ended_at) FROM runs
    GROUP BY subscription_id, user_identifier, channel, run
    ORDER BY 1, 2, 3, 5
    -- A concurrent batch of the same identifier may have put back a run ending at the same turn: two runs
    -- ending at one turn are one run.
    ON CONFLICT (subscription_id, user_identifier, channel, ended_at) DO UPDATE
    SET started_at = least(g.started_at, excluded.started_at);
  END IF;
END $$;
