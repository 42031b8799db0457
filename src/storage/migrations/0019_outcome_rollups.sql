-- The outcomes answer from small pre-aggregated tables (issue 14's speed target). Design note:
-- ARCHITECTURE.md "Outcomes rollups". Statement-level triggers with transition tables on the ledger and on
-- turn_details keep them exact in the same transaction as the write, like the analytics rollups of 0005;
-- the backfill below computes them from the rows already there, so an existing database answers right.
--
-- outcome_buckets: per subscription, quarter-hour and channel: settled turns, errors, priced turns and
--   their exact cost (micro-units), and the sentiment count, sum and five buckets.
-- latency_quarters / latency_days: the settles' latency_ms as a log-spaced histogram (omnimeter_latency_bucket,
--   1% relative accuracy) per quarter-hour, and per UTC day for the whole days inside a period.
-- ledger_sessions: one row per (subscription, session, channel): the quarter-hours of its first and last
--   allowed turn. A period's sessions are the rows whose span meets it (exact on the 15-minute grid).
-- outcome_touches: per outcome without its own channel and per channel, its touches in the default 7-day
--   lookback (count, earliest and latest): the default answer's attribution under all three models without
--   reading the ledger. Another lookback probes the ledger per outcome, by two new ledger indexes.

CREATE TABLE outcome_buckets (
  subscription_id uuid NOT NULL,
  bucket_start timestamptz NOT NULL,
  channel text NOT NULL,
  settled bigint NOT NULL DEFAULT 0,
  errors bigint NOT NULL DEFAULT 0,
  priced bigint NOT NULL DEFAULT 0,
  cost_micros numeric NOT NULL DEFAULT 0,
  sentiment_count bigint NOT NULL DEFAULT 0,
  sentiment_sum numeric NOT NULL DEFAULT 0,
  very_negative bigint NOT NULL DEFAULT 0,
  negative bigint NOT NULL DEFAULT 0,
  neutral bigint NOT NULL DEFAULT 0,
  positive bigint NOT NULL DEFAULT 0,
  very_positive bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (subscription_id, bucket_start, channel)
);

CREATE TABLE latency_quarters (
  subscription_id uuid NOT NULL,
  bucket_start timestamptz NOT NULL,
  channel text NOT NULL,
  latency_bucket smallint NOT NULL,
  turns bigint NOT NULL,
  PRIMARY KEY (subscription_id, bucket_start, channel, latency_bucket)
);

CREATE TABLE latency_days (
  subscription_id uuid NOT NULL,
  day date NOT NULL,
  channel text NOT NULL,
  latency_bucket smallint NOT NULL,
  turns bigint NOT NULL,
  PRIMARY KEY (subscription_id, day, channel, latency_bucket)
);

CREATE TABLE ledger_sessions (
  subscription_id uuid NOT NULL,
  session_id text NOT NULL,
  channel text NOT NULL,
  first_bucket timestamptz NOT NULL,
  last_bucket timestamptz NOT NULL,
  PRIMARY KEY (subscription_id, session_id, channel)
);
-- A period's sessions: those whose last quarter-hour is at or after its start.
CREATE INDEX ledger_sessions_last ON ledger_sessions (subscription_id, last_bucket)
  INCLUDE (first_bucket, channel, session_id);

-- Attribution: each outcome of a period finds its session's or its user's touches in its lookback by one
-- index range (the latest or earliest one first), instead of the period's whole ledger.
CREATE INDEX token_usage_logs_session_time ON token_usage_logs (subscription_id, session_id, created_at, id)
  WHERE session_id IS NOT NULL;
CREATE INDEX token_usage_logs_user_time ON token_usage_logs (subscription_id, user_identifier, created_at, id)
  WHERE user_identifier IS NOT NULL;

CREATE TABLE outcome_touches (
  outcome_id uuid NOT NULL,
  subscription_id uuid NOT NULL,
  occurred_at timestamptz NOT NULL,
  channel text NOT NULL,
  touches bigint NOT NULL,
  first_at timestamptz NOT NULL,
  first_id uuid NOT NULL,
  last_at timestamptz NOT NULL,
  last_id uuid NOT NULL,
  PRIMARY KEY (outcome_id, channel)
);
CREATE INDEX outcome_touches_subscription_occurred ON outcome_touches (subscription_id, occurred_at);
-- The outcomes a new, corrected or deleted turn may touch: by user and by session, in time.
CREATE INDEX outcomes_user_occurred ON outcomes (subscription_id, user_identifier, occurred_at);
CREATE INDEX outcomes_session_occurred ON outcomes (subscription_id, session_id, occurred_at)
  WHERE session_id IS NOT NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON outcome_buckets, latency_quarters, latency_days, ledger_sessions,
  outcome_touches TO omnimeter_app;
ALTER TABLE outcome_buckets ENABLE ROW LEVEL SECURITY;
ALTER TABLE latency_quarters ENABLE ROW LEVEL SECURITY;
ALTER TABLE latency_days ENABLE ROW LEVEL SECURITY;
ALTER TABLE ledger_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE outcome_touches ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON outcome_buckets
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));
CREATE POLICY tenant_isolation ON latency_quarters
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));
CREATE POLICY tenant_isolation ON latency_days
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));
CREATE POLICY tenant_isolation ON outcome_touches
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));
CREATE POLICY tenant_isolation ON ledger_sessions
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));

-- Signed changes handed from the triggers to the functions that add them.
CREATE TYPE omnimeter_settlement_change AS (
  subscription_id uuid, created_at timestamptz, channel text, error boolean, latency_ms integer, sign integer);
CREATE TYPE omnimeter_detail_change AS (
  subscription_id uuid, created_at timestamptz, channel text, cost_micros numeric, sentiment numeric,
  sign integer);
CREATE TYPE omnimeter_session_key AS (subscription_id uuid, session_id text, channel text);
CREATE TYPE omnimeter_touch AS (
  subscription_id uuid, user_identifier text, session_id text, created_at timestamptz);

\ir ../functions/latency_bucket.sql
\ir ../functions/outcome_settlements_add.sql
\ir ../functions/outcome_details_add.sql
\ir ../functions/ledger_sessions_refresh.sql
\ir ../functions/outcome_touches_refresh.sql
\ir ../functions/outcomes_touched.sql
\ir ../functions/outcome_touches_inserted.sql
\ir ../functions/outcome_rollup_ledger.sql
\ir ../functions/outcome_rollup_details.sql
\ir ../functions/outcome_rollups_rebuild.sql
GRANT EXECUTE ON FUNCTION omnimeter_latency_bucket(integer) TO omnimeter_app;
-- The rebuild locks the ledger: the owner's tool, not the service's.
REVOKE EXECUTE ON FUNCTION omnimeter_outcome_rollups_rebuild(uuid) FROM PUBLIC;

-- The backfill, before the triggers: every settled turn, detail, session and outcome already recorded.
SELECT omnimeter_outcome_rollups_rebuild(NULL);

CREATE TRIGGER token_usage_logs_outcome_insert
  AFTER INSERT ON token_usage_logs REFERENCING NEW TABLE AS inserted_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_outcome_rollup_ledger();
CREATE TRIGGER token_usage_logs_outcome_update
  AFTER UPDATE ON token_usage_logs REFERENCING OLD TABLE AS previous_rows NEW TABLE AS updated_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_outcome_rollup_ledger();
CREATE TRIGGER token_usage_logs_outcome_delete
  AFTER DELETE ON token_usage_logs REFERENCING OLD TABLE AS removed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_outcome_rollup_ledger();
CREATE TRIGGER outcomes_touches_insert
  AFTER INSERT ON outcomes REFERENCING NEW TABLE AS inserted_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_outcome_touches_inserted();
CREATE TRIGGER turn_details_outcome_insert
  AFTER INSERT ON turn_details REFERENCING NEW TABLE AS inserted_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_outcome_rollup_details();
CREATE TRIGGER turn_details_outcome_update
  AFTER UPDATE ON turn_details REFERENCING OLD TABLE AS previous_rows NEW TABLE AS updated_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_outcome_rollup_details();
CREATE TRIGGER turn_details_outcome_delete
  AFTER DELETE ON turn_details REFERENCING OLD TABLE AS removed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_outcome_rollup_details();
