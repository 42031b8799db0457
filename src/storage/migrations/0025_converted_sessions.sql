-- The outcomes answer's converted sessions without a probe per session (issue 14's speed target, after
-- 0021). Design note: ARCHITECTURE.md "Converted sessions (migration 0025)". Until now the answer read, for
-- each session an outcome of the period names, its ledger_sessions rows by key (about 40 k probes on
-- 1 M turns and 100 k outcomes) and, for spans that cross the period, the ledger. A session converted on a
-- channel in [S, E) has an outcome in [S, E) and a turn on that channel in [S, E); per (outcome naming a
-- session, channel) this keeps the session's latest turn at or before the outcome and its earliest turn
-- after it, which decide that for any period in one index range: some outcome o of the session in
-- [S, E) has turn_before >= S or turn_after < E.
--
-- Kept where the session tables are kept: new allowed turns widen the rows (omnimeter_outcome_sessions_inserted,
-- so the session deriver of 0024 for consumed turns and the ledger's insert trigger for the rest); new
-- outcomes naming a session, and corrections or deletions that move a session's turn, recompute the
-- session's rows from the ledger. One writer per subscription at a time: the deriver's advisory lock, now
-- omnimeter_sessions_lock, which every writer of what the deriver writes takes before writing any of it.

CREATE TABLE outcome_session_turns (
  subscription_id uuid NOT NULL,
  outcome_id uuid NOT NULL,
  channel text NOT NULL,
  session_id text NOT NULL,
  occurred_at timestamptz NOT NULL,
  turn_before timestamptz,
  turn_after timestamptz,
  PRIMARY KEY (outcome_id, channel)
);
-- A period's rows in one index range, without reading the heap.
CREATE INDEX outcome_session_turns_occurred ON outcome_session_turns (subscription_id, occurred_at)
  INCLUDE (channel, session_id, turn_before, turn_after);
GRANT SELECT, INSERT, UPDATE, DELETE ON outcome_session_turns TO omnimeter_app;
ALTER TABLE outcome_session_turns ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON outcome_session_turns
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));

CREATE TYPE omnimeter_session_turn AS (
  subscription_id uuid, session_id text, channel text, created_at timestamptz);

\ir ../functions/sessions_lock.sql
\ir ../functions/sessions_derive.sql
\ir ../functions/outcome_session_turns_add.sql
\ir ../functions/outcome_session_turns_refresh.sql
\ir ../functions/outcome_session_turns_outcomes.sql
\ir ../functions/outcome_sessions_inserted.sql
\ir ../functions/outcome_rollup_ledger.sql
\ir ../functions/outcome_session_turns_rebuild.sql
-- The rebuild is the owner's tool, not the service's.
REVOKE EXECUTE ON FUNCTION omnimeter_outcome_session_turns_rebuild(uuid) FROM PUBLIC;

-- The backfill, before the trigger: every session an outcome names, from its allowed turns.
SELECT omnimeter_outcome_session_turns_rebuild(NULL);

-- "0_": PostgreSQL fires a table's triggers of one event in name order, and this one takes the deriver's lock
-- (omnimeter_sessions_lock), so it must come before outcomes_credits_insert and outcomes_touches_insert
-- write rows (credits, touches) the deriver also writes.
CREATE TRIGGER outcomes_0_session_turns_insert
  AFTER INSERT ON outcomes REFERENCING NEW TABLE AS inserted_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_outcome_session_turns_outcomes();
