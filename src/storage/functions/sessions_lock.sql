-- The session tables' per-subscription writer lock (migration 0025), held to the end of the transaction:
-- the session deriver (omnimeter_sessions_derive) takes it before applying a subscription's queued turns,
-- and so does every other writer of what the deriver writes (the converted-session facts of new outcomes,
-- corrections and deletions of turns, turns inserted outside the queue), before it writes any row the
-- deriver may also write: so two of them never wait on each other's rows in opposite orders, and an outcome
-- recorded while turns of its session are derived either sees those turns or is seen by them.
CREATE OR REPLACE FUNCTION omnimeter_sessions_lock(p_subscription uuid) RETURNS void
LANGUAGE sql AS $$
  SELECT pg_advisory_xact_lock(hashtextextended('sessions:' || p_subscription::text, 0));
$$;
