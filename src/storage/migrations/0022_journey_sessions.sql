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
SELECT omnimeter_journey_sessions_rebuild(NULL);

CREATE TRIGGER token_usage_logs_journey_insert
  AFTER INSERT ON token_usage_logs REFERENCING NEW TABLE AS inserted_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_journey_sessions_ledger();
CREATE TRIGGER token_usage_logs_journey_update
  AFTER UPDATE ON token_usage_logs REFERENCING OLD TABLE AS previous_rows NEW TABLE AS updated_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_journey_sessions_ledger();
CREATE TRIGGER token_usage_logs_journey_delete
  AFTER DELETE ON token_usage_logs REFERENCING OLD TABLE AS removed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_journey_sessions_ledger();

-- journey_answers: the journeys answers that took long to compute (aggregates as JSON), per subscription
-- and request (period, zone, channels), when computed and last read. The service answers from a row up to
-- its freshness bound (analytics/journeys.ts) and a background job re-derives the rows read lately before
-- they reach it. A change of links makes every row of the subscription stale at once (computed_at
-- -infinity): links apply to past turns, so no stored answer survives one.
CREATE TABLE journey_answers (
  subscription_id uuid NOT NULL,
  period_from date NOT NULL,
  period_to date NOT NULL,
  time_zone text NOT NULL,
  channels text[] NOT NULL,
  computed_at timestamptz NOT NULL,
  read_at timestamptz NOT NULL,
  aggregates jsonb NOT NULL,
  PRIMARY KEY (subscription_id, period_from, period_to, time_zone, channels)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON journey_answers TO omnimeter_app;
ALTER TABLE journey_answers ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON journey_answers
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));

\ir ../functions/journey_answers_stale.sql
CREATE TRIGGER person_identifiers_journey_answers
  AFTER INSERT OR UPDATE OR DELETE ON person_identifiers
  FOR EACH ROW EXECUTE FUNCTION omnimeter_journey_answers_stale();
