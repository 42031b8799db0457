-- The outcomes answer in O(grid cells) (issue 14's speed target, after 0019). Design note: ARCHITECTURE.md
-- "Outcomes rollups". 0019 left two parts reading one row per session or per outcome of the period:
-- counting ledger_sessions (sessions meeting the period) and crediting outcome_touches (attribution).
-- Both become additive over the 15-minute grid, kept by statement-level triggers like 0019's:
--
-- outcome_credits / outcome_credit_days: per quarter-hour (and UTC day) of occurred_at, attribution model,
--   credited channel ('' = not credited) and outcome name: the credited outcomes (sum of shares) and their
--   value x share, under the default 7-day lookback. An outcome's credit depends on it and its touches
--   only, never on the period asked, so the period's credits are a sum of cells. Kept from the outcomes'
--   inserts and from outcome_touches' inserts and deletes (0019 rewrites an outcome's touches whole when a
--   turn that touches it arrives, moves or goes).
-- session_spans: per session, its span over all channels (quarter-hours of its first and last allowed turn).
-- session_edges / session_edge_days: per quarter-hour (and UTC day) and channel ('*' = over all channels),
--   the spans (ledger_sessions rows, or session_spans for '*') starting and ending there. The spans meeting
--   [S, E) are those ending at or after S minus those starting at or after E: two suffix sums. The spans that
--   meet the period but have no turn inside it (first before S, last at or after E, silent in between) are
--   read per row from the span indexes and checked against the ledger: none for a period ending now.

CREATE TABLE outcome_credits (
  subscription_id uuid NOT NULL,
  attribution text NOT NULL,
  bucket_start timestamptz NOT NULL,
  channel text NOT NULL,
  name text NOT NULL,
  conversions numeric NOT NULL,
  value numeric NOT NULL,
  PRIMARY KEY (subscription_id, attribution, bucket_start, channel, name)
);
CREATE TABLE outcome_credit_days (
  subscription_id uuid NOT NULL,
  attribution text NOT NULL,
  day date NOT NULL,
  channel text NOT NULL,
  name text NOT NULL,
  conversions numeric NOT NULL,
  value numeric NOT NULL,
  PRIMARY KEY (subscription_id, attribution, day, channel, name)
);
CREATE TABLE session_spans (
  subscription_id uuid NOT NULL,
  session_id text NOT NULL,
  first_bucket timestamptz NOT NULL,
  last_bucket timestamptz NOT NULL,
  PRIMARY KEY (subscription_id, session_id)
);
-- The sessions still going at or after a period's end (the only ones that may sleep through it).
CREATE INDEX session_spans_last ON session_spans (subscription_id, last_bucket) INCLUDE (first_bucket);
CREATE TABLE session_edges (
  subscription_id uuid NOT NULL,
  bucket_start timestamptz NOT NULL,
  channel text NOT NULL,
  starts bigint NOT NULL,
  ends bigint NOT NULL,
  PRIMARY KEY (subscription_id, bucket_start, channel)
);
CREATE TABLE session_edge_days (
  subscription_id uuid NOT NULL,
  day date NOT NULL,
  channel text NOT NULL,
  starts bigint NOT NULL,
  ends bigint NOT NULL,
  PRIMARY KEY (subscription_id, day, channel)
);
-- A period's named sessions: the outcomes of the period with a session, without reading the heap.
CREATE INDEX outcomes_occurred_session ON outcomes (subscription_id, occurred_at) INCLUDE (session_id)
  WHERE session_id IS NOT NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON outcome_credits, outcome_credit_days, session_spans, session_edges,
  session_edge_days TO omnimeter_app;
ALTER TABLE outcome_credits ENABLE ROW LEVEL SECURITY;
ALTER TABLE outcome_credit_days ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_spans ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_edges ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_edge_days ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON outcome_credits
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));
CREATE POLICY tenant_isolation ON outcome_credit_days
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));
CREATE POLICY tenant_isolation ON session_spans
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));
CREATE POLICY tenant_isolation ON session_edges
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));
CREATE POLICY tenant_isolation ON session_edge_days
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));

-- Signed changes handed from the triggers to the functions that add them.
CREATE TYPE omnimeter_credit_change AS (
  subscription_id uuid, occurred_at timestamptz, attribution text, channel text, name text,
  conversions numeric, value numeric);
CREATE TYPE omnimeter_edge_change AS (
  subscription_id uuid, session_id text, channel text, first_bucket timestamptz, last_bucket timestamptz,
  sign integer);

\ir ../functions/outcome_credits_add.sql
\ir ../functions/outcome_touch_credits.sql
\ir ../functions/outcome_credits_touches.sql
\ir ../functions/outcome_credits_outcomes.sql
\ir ../functions/session_edges_add.sql
\ir ../functions/session_edges_changed.sql
\ir ../functions/outcome_reads_rebuild.sql
-- The rebuild locks tables: the owner's tool, not the service's.
REVOKE EXECUTE ON FUNCTION omnimeter_outcome_reads_rebuild(uuid) FROM PUBLIC;

-- The backfill, before the triggers: every outcome, attribution fact and session span already recorded.
SELECT omnimeter_outcome_reads_rebuild(NULL);

CREATE TRIGGER outcomes_credits_insert
  AFTER INSERT ON outcomes REFERENCING NEW TABLE AS inserted_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_outcome_credits_outcomes();
CREATE TRIGGER outcome_touches_credits_insert
  AFTER INSERT ON outcome_touches REFERENCING NEW TABLE AS inserted_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_outcome_credits_touches();
CREATE TRIGGER outcome_touches_credits_delete
  AFTER DELETE ON outcome_touches REFERENCING OLD TABLE AS removed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_outcome_credits_touches();
CREATE TRIGGER ledger_sessions_edges_insert
  AFTER INSERT ON ledger_sessions REFERENCING NEW TABLE AS inserted_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_session_edges_changed();
CREATE TRIGGER ledger_sessions_edges_update
  AFTER UPDATE ON ledger_sessions REFERENCING OLD TABLE AS previous_rows NEW TABLE AS updated_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_session_edges_changed();
CREATE TRIGGER ledger_sessions_edges_delete
  AFTER DELETE ON ledger_sessions REFERENCING OLD TABLE AS removed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_session_edges_changed();
