-- Signed session spans (migration 0021) into their edge counts: per quarter-hour (session_edges) and per UTC
-- day (session_edge_days), the spans that start (first turn) and end (last turn) there, per channel ('*':
-- the session over all channels), in key order. A period's sessions are then the spans ending at or after
-- its start minus those starting at or after its end, less the few that sleep through it.
CREATE OR REPLACE FUNCTION omnimeter_session_edges_add(p_changes omnimeter_edge_change[]) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO session_edges AS e (subscription_id, bucket_start, channel, starts, ends)
  SELECT subscription_id, bucket_start, channel, sum(starts), sum(ends)
  FROM (
    SELECT x.subscription_id, x.first_bucket AS bucket_start, x.channel, x.sign AS starts, 0 AS ends
    FROM unnest(p_changes) AS x
    UNION ALL
    SELECT x.subscription_id, x.last_bucket, x.channel, 0, x.sign FROM unnest(p_changes) AS x
  ) AS edges
  GROUP BY subscription_id, bucket_start, channel
  HAVING sum(starts) <> 0 OR sum(ends) <> 0
  ORDER BY 1, 2, 3
  ON CONFLICT (subscription_id, bucket_start, channel) DO UPDATE
  SET starts = e.starts + excluded.starts, ends = e.ends + excluded.ends;

  INSERT INTO session_edge_days AS e (subscription_id, day, channel, starts, ends)
  SELECT subscription_id, day, channel, sum(starts), sum(ends)
  FROM (
    SELECT x.subscription_id, (x.first_bucket AT TIME ZONE 'UTC')::date AS day, x.channel, x.sign AS starts,
      0 AS ends
    FROM unnest(p_changes) AS x
    UNION ALL
    SELECT x.subscription_id, (x.last_bucket AT TIME ZONE 'UTC')::date, x.channel, 0, x.sign
    FROM unnest(p_changes) AS x
  ) AS edges
  GROUP BY subscription_id, day, channel
  HAVING sum(starts) <> 0 OR sum(ends) <> 0
  ORDER BY 1, 2, 3
  ON CONFLICT (subscription_id, day, channel) DO UPDATE
  SET starts = e.starts + excluded.starts, ends = e.ends + excluded.ends;
$$;
