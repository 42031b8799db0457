-- Fast and light (issue 18): the consume transaction no longer derives the session tables. 0019's and
-- 0022's statement-level insert triggers on the ledger (ledger_sessions, and through 0021's trigger
-- session_spans and session_edges; outcome_touches; journey_sessions and journey_gap_sessions) cost a
-- lone turn two trigger start-ups and three nested ones. omnimeter_write_turns now queues the allowed turns
-- it writes in session_queue, in its own statement and transaction (so a committed turn is always either
-- derived or queued, across crashes), and sets omnimeter.sessions_queued around itself, which those two
-- triggers' WHEN reads. omnimeter_sessions_derive applies the queue with the triggers' own functions: a
-- background job a few times a second, and every reader of those tables for its subscription first
-- (read-your-writes). Rows inserted any other way (tests, generators) are still derived by the triggers;
-- corrections and deletions still recompute from the ledger in their transaction.

CREATE TABLE session_queue (
  subscription_id uuid NOT NULL,
  usage_id uuid NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (subscription_id, usage_id)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON session_queue TO omnimeter_app;
ALTER TABLE session_queue ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON session_queue
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));

\ir ../functions/outcome_sessions_inserted.sql
\ir ../functions/outcome_rollup_ledger.sql
\ir ../functions/journey_sessions_inserted.sql
\ir ../functions/journey_sessions_ledger.sql
\ir ../functions/write_turns.sql
\ir ../functions/sessions_derive.sql

DROP TRIGGER token_usage_logs_outcome_insert ON token_usage_logs;
CREATE TRIGGER token_usage_logs_outcome_insert
  AFTER INSERT ON token_usage_logs REFERENCING NEW TABLE AS inserted_rows
  FOR EACH STATEMENT
  WHEN (current_setting('omnimeter.sessions_queued', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION omnimeter_outcome_rollup_ledger();
DROP TRIGGER token_usage_logs_journey_insert ON token_usage_logs;
CREATE TRIGGER token_usage_logs_journey_insert
  AFTER INSERT ON token_usage_logs REFERENCING NEW TABLE AS inserted_rows
  FOR EACH STATEMENT
  WHEN (current_setting('omnimeter.sessions_queued', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION omnimeter_journey_sessions_ledger();

-- A settle moves no turn (migration 0024, settle.sql): the journey sessions' update trigger, which only
-- acts when a turn moved, is not started for its statements.
\ir ../functions/settle.sql
DROP TRIGGER token_usage_logs_journey_update ON token_usage_logs;
CREATE TRIGGER token_usage_logs_journey_update
  AFTER UPDATE ON token_usage_logs REFERENCING OLD TABLE AS previous_rows NEW TABLE AS updated_rows
  FOR EACH STATEMENT
  WHEN (current_setting('omnimeter.turns_unmoved', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION omnimeter_journey_sessions_ledger();
