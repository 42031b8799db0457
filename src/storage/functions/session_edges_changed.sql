-- ledger_sessions rows written, widened or removed (migration 0021): their spans' edges move, and each
-- touched session's span over all channels (session_spans, edges under channel '*') is recomputed from
-- its ledger_sessions rows. Statement-level on ledger_sessions' inserts, updates and deletes; a consume
-- in a quarter-hour its session already spans changes no row, and this returns at the first test.
CREATE OR REPLACE FUNCTION omnimeter_session_edges_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_changes omnimeter_edge_change[];
  v_spans omnimeter_edge_change[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    v_changes := ARRAY(SELECT ROW(subscription_id, session_id, channel, first_bucket, last_bucket, 1)::omnimeter_edge_change
      FROM inserted_rows);
  ELSIF TG_OP = 'UPDATE' THEN
    v_changes := ARRAY(
      SELECT ROW(subscription_id, session_id, channel, first_bucket, last_bucket, 1)::omnimeter_edge_change
      FROM updated_rows
      UNION ALL
      SELECT ROW(subscription_id, session_id, channel, first_bucket, last_bucket, -1)::omnimeter_edge_change
      FROM previous_rows);
  ELSE
    v_changes := ARRAY(SELECT ROW(subscription_id, session_id, channel, first_bucket, last_bucket, -1)::omnimeter_edge_change
      FROM removed_rows);
  END IF;
  IF cardinality(v_changes) = 0 THEN
    RETURN NULL;
  END IF;
  -- The touched sessions' spans over all channels. First their session_spans rows are locked, in key order,
  -- created as "no span yet" ('infinity', '-infinity') when missing: a concurrent transaction writing the
  -- same session waits here until the other commits, and the next statements (each with a new snapshot)
  -- see its rows, so the before and after below are never stale.
  INSERT INTO session_spans AS s (subscription_id, session_id, first_bucket, last_bucket)
  SELECT DISTINCT c.subscription_id, c.session_id, timestamptz 'infinity', timestamptz '-infinity'
  FROM unnest(v_changes) AS c
  ORDER BY 1, 2
  ON CONFLICT (subscription_id, session_id) DO UPDATE SET first_bucket = s.first_bucket;
  -- Before and after, as signed changes of channel '*'.
  v_spans := ARRAY(
    WITH touched AS (
      SELECT DISTINCT c.subscription_id, c.session_id FROM unnest(v_changes) AS c
    ), before AS (
      SELECT s.subscription_id, s.session_id, s.first_bucket, s.last_bucket
      FROM session_spans s JOIN touched t USING (subscription_id, session_id)
      WHERE s.first_bucket <> 'infinity'
    ), after AS (
      SELECT l.subscription_id, l.session_id, min(l.first_bucket) AS first_bucket,
        max(l.last_bucket) AS last_bucket
      FROM ledger_sessions l JOIN touched t USING (subscription_id, session_id)
      GROUP BY l.subscription_id, l.session_id
    )
    SELECT ROW(b.subscription_id, b.session_id, '*', b.first_bucket, b.last_bucket, -1)::omnimeter_edge_change
    FROM before b LEFT JOIN after a USING (subscription_id, session_id)
    WHERE a.first_bucket IS DISTINCT FROM b.first_bucket OR a.last_bucket IS DISTINCT FROM b.last_bucket
    UNION ALL
    SELECT ROW(a.subscription_id, a.session_id, '*', a.first_bucket, a.last_bucket, 1)::omnimeter_edge_change
    FROM after a LEFT JOIN before b USING (subscription_id, session_id)
    WHERE a.first_bucket IS DISTINCT FROM b.first_bucket OR a.last_bucket IS DISTINCT FROM b.last_bucket);
  -- The rows take their new spans; a session without any ledger_sessions row left loses its row.
  UPDATE session_spans s SET first_bucket = m.first_bucket, last_bucket = m.last_bucket
  FROM unnest(v_spans) AS m
  WHERE m.sign = 1 AND s.subscription_id = m.subscription_id AND s.session_id = m.session_id;
  DELETE FROM session_spans s
  USING (SELECT DISTINCT c.subscription_id, c.session_id FROM unnest(v_changes) AS c) AS t
  WHERE s.subscription_id = t.subscription_id AND s.session_id = t.session_id
    AND (s.first_bucket = 'infinity'
      OR NOT EXISTS (SELECT 1 FROM ledger_sessions l
        WHERE l.subscription_id = s.subscription_id AND l.session_id = s.session_id));
  PERFORM omnimeter_session_edges_add(v_changes || v_spans);
  RETURN NULL;
END $$;
