-- Recomputes the ledger_sessions rows of some (subscription, session, channel) keys from the ledger
-- (migration 0019): after a correction or deletion moved or removed one of their turns. Rare; it reads
-- the subscription's ledger rows of those sessions.
CREATE OR REPLACE FUNCTION omnimeter_ledger_sessions_refresh(p_keys omnimeter_session_key[]) RETURNS void
LANGUAGE sql AS $$
  DELETE FROM ledger_sessions s
  USING unnest(p_keys) AS k
  WHERE s.subscription_id = k.subscription_id AND s.session_id = k.session_id AND s.channel = k.channel;

  INSERT INTO ledger_sessions (subscription_id, session_id, channel, first_bucket, last_bucket)
  SELECT l.subscription_id, l.session_id, l.channel, omnimeter_bucket(min(l.created_at)),
    omnimeter_bucket(max(l.created_at))
  FROM token_usage_logs l
  JOIN (SELECT DISTINCT subscription_id, session_id, channel FROM unnest(p_keys)) AS k
    ON l.subscription_id = k.subscription_id AND l.session_id = k.session_id AND l.channel = k.channel
  WHERE l.status <> 'denied'
  GROUP BY l.subscription_id, l.session_id, l.channel;
$$;
