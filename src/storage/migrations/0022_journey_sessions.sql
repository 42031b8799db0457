-- The journeys answer at scale (issue 15): each identifier's sessions, kept on insert, so the journeys
-- statement reads sessions instead of turns and needs no inactivity window at read time. They hold the
-- user_identifier, not the person: person links apply at read time, to past sessions too.
--
-- journey_sessions: per (subscription, identifier, channel, session id), its earliest allowed turn.
--   `shared`: another identifier used the session id on the channel (then linking may make the two rows
--   one session, so a period reads the row even when it started before the period).
-- journey_gap_sessions: per identifier and channel, its runs of allowed turns without a session id, each a
--   stretch of turns less than 30 minutes apart (first and last turn). Runs of one person's linked
--   identifiers on a channel merge as intervals at read time, which is exact.

CREATE TYPE omnimeter_identifier_key AS (subscription_id uuid, channel text, user_identifier text);

CREATE TABLE journey_sessions (
  subscription_id uuid NOT NULL,
  user_identifier text NOT NULL,
  channel text NOT NULL,
  session_id text NOT NULL,
  started_at timestamptz NOT NULL,
  shared boolean NOT NULL DEFAULT false,
  PRIMARY KEY (subscription_id, user_identifier, channel, session_id)
);
CREATE INDEX journey_sessions_session ON journey_sessions (subscription_id, channel, session_id);

CREATE TABLE journey_gap_sessions (
  subscription_id uuid NOT NULL,
  user_identifier text NOT NULL,
  channel text NOT NULL,
  started_at timestamptz NOT NULL,
  ended_at timestamptz NOT NULL,
  PRIMARY KEY (subscription_id, user_identifier, channel, ended_at)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON journey_sessions, journey_gap_sessions TO omnimeter_app;
ALTER TABLE journey_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE journey_gap_sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON journey_sessions
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));
CREATE POLICY tenant_isolation ON journey_gap_sessions
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));

\ir ../functions/journey_sessions_rebuild.sql
\ir ../functions/journey_sessions_ledger.sql

-- The backfill, before the trigger: every identifier with a turn already recorded.
SELECT omnimeter_journey_sessions_rebuild(ARRAY(
  SELECT DISTINCT ROW(subscription_id, channel, user_identifier)::omnimeter_identifier_key
  FROM token_usage_logs WHERE user_identifier IS NOT NULL AND status <> 'denied'));

CREATE TRIGGER token_usage_logs_journey_insert
  AFTER INSERT ON token_usage_logs REFERENCING NEW TABLE AS inserted_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_journey_sessions_ledger();
CREATE TRIGGER token_usage_logs_journey_update
  AFTER UPDATE ON token_usage_logs REFERENCING OLD TABLE AS previous_rows NEW TABLE AS updated_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_journey_sessions_ledger();
CREATE TRIGGER token_usage_logs_journey_delete
  AFTER DELETE ON token_usage_logs REFERENCING OLD TABLE AS removed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_journey_sessions_ledger();
